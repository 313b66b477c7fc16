#!/usr/bin/env node
// Compiles every non-test TypeScript file under apps/, libs/ and bench/ to ES modules in dist/,
// keeping the directory layout. Workspace aliases (@ledgerflow/*) become relative imports, so
// the output runs on plain Node with no loader. Type-checking is `npm run typecheck`, not this.
import { transformFile } from '@swc/core';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const finalRoot = path.join(root, 'dist');
// Built beside dist/ and swapped in at the end, so a concurrent build or a running process never
// sees a half-written dist/.
const outRoot = path.join(root, `.dist-building-${process.pid}-${Date.now()}`);
const swcrc = JSON.parse(await readFile(path.join(root, '.swcrc'), 'utf8'));
const tsconfig = JSON.parse(await readFile(path.join(root, 'tsconfig.base.json'), 'utf8'));
const aliases = new Map(
  Object.entries(tsconfig.compilerOptions.paths).map(([alias, [target]]) => [
    alias,
    path.join(outRoot, target.replace(/\.ts$/, '.js')),
  ]),
);

async function* walk(dir) {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name === 'node_modules' || e.name === 'results' || e.name.startsWith('.')) continue;
      yield* walk(p);
    } else if (
      e.name.endsWith('.ts') &&
      !e.name.endsWith('.spec.ts') &&
      !e.name.endsWith('.d.ts')
    ) {
      yield p;
    }
  }
}

function rewriteAliases(code, outFile) {
  return code.replace(
    /(from\s+|import\s*\(\s*|import\s+)(['"])(@ledgerflow\/[\w-]+)\2/g,
    (m, pre, q, spec) => {
      const target = aliases.get(spec);
      if (!target) throw new Error(`${outFile}: unknown workspace import ${spec}`);
      let rel = path.relative(path.dirname(outFile), target).split(path.sep).join('/');
      if (!rel.startsWith('.')) rel = `./${rel}`;
      return `${pre}${q}${rel}${q}`;
    },
  );
}

const started = Date.now();
const jobs = [];
for (const top of ['apps', 'libs', 'bench']) {
  for await (const file of walk(path.join(root, top))) {
    const rel = path.relative(root, file);
    const outFile = path.join(outRoot, rel.replace(/\.ts$/, '.js'));
    jobs.push(
      (async () => {
        const { code, map } = await transformFile(file, {
          ...swcrc,
          swcrc: false,
          filename: file,
          sourceMaps: true,
          sourceFileName: path.relative(path.dirname(outFile), file),
        });
        await mkdir(path.dirname(outFile), { recursive: true });
        await writeFile(
          outFile,
          `${rewriteAliases(code, outFile)}\n//# sourceMappingURL=${path.basename(outFile)}.map\n`,
        );
        if (map) await writeFile(`${outFile}.map`, map);
      })(),
    );
  }
}
await Promise.all(jobs);
await writeFile(path.join(outRoot, 'package.json'), '{ "type": "module" }\n');
const retired = path.join(root, `.dist-retired-${process.pid}-${Date.now()}`);
await rename(finalRoot, retired).catch(() => undefined);
await rename(outRoot, finalRoot);
await rm(retired, { recursive: true, force: true });
if (!process.argv.includes('--quiet')) {
  console.error(`built ${jobs.length} files into dist/ in ${Date.now() - started} ms`);
}
