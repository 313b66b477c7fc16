#!/usr/bin/env node
// `npm run bench [name...]`: builds, then runs each benchmark in bench/ (or the named ones) one
// after the other, so they never compete for the machine. Each writes bench/results/<name>.json.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
execFileSync(process.execPath, [path.join(root, 'tools/build.mjs'), '--quiet'], {
  stdio: 'inherit',
});
const wanted = process.argv.slice(2);
const all = readdirSync(path.join(root, 'bench'))
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .map((f) => f.replace(/\.ts$/, ''));
for (const name of wanted.length > 0 ? wanted : all) {
  if (!all.includes(name))
    throw new Error(`no benchmark bench/${name}.ts; have: ${all.join(', ')}`);
  console.error(`== bench ${name}`);
  execFileSync(process.execPath, [path.join(root, 'dist/bench', `${name}.js`)], {
    stdio: 'inherit',
    cwd: root,
  });
}
