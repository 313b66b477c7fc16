#!/usr/bin/env node
// The `ledgerflow` command. Runs the compiled CLI from dist/ (built by `npm run build`).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'dist/apps/cli/src/main.js');
if (!existsSync(main)) {
  console.error(
    'ledgerflow: dist/ is missing; run `npm run build` first (npm start does it for you).',
  );
  process.exit(2);
}
await import(pathToFileURL(main).href);
