#!/usr/bin/env node
// `npm run bench [name...]`: builds, then runs each benchmark in bench/ (or the named ones) one
// after the other, so they never compete for the machine. Each writes bench/results/<name>.json.
// Arguments from the first `--flag` on are passed to every benchmark run:
//   npm run bench -- ingest --seconds 5 --sustain-seconds 20
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
execFileSync(process.execPath, [path.join(root, 'tools/build.mjs'), '--quiet'], {
  stdio: 'inherit',
});
const args = process.argv.slice(2);
const firstFlag = args.findIndex((a) => a.startsWith('--'));
const wanted = firstFlag < 0 ? args : args.slice(0, firstFlag);
const flags = firstFlag < 0 ? [] : args.slice(firstFlag);
const all = readdirSync(path.join(root, 'bench'))
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .map((f) => f.replace(/\.ts$/, ''));
for (const name of wanted.length > 0 ? wanted : all) {
  if (!all.includes(name))
    throw new Error(`no benchmark bench/${name}.ts; have: ${all.join(', ')}`);
  console.error(`== bench ${name}`);
  execFileSync(process.execPath, [path.join(root, 'dist/bench', `${name}.js`), ...flags], {
    stdio: 'inherit',
    cwd: root,
  });
}
