// Shared jest settings. Tests run as native ES modules (NestJS 12 ships ESM only),
// transformed by @swc/jest. Type-checking is the separate `typecheck` target.
const path = require('node:path');
const tsconfig = require('./tsconfig.base.json');

process.env.TZ = 'UTC';

const root = __dirname;
const moduleNameMapper = {
  // TypeScript sources import siblings as './x.js' (NodeNext); jest resolves the .ts file.
  '^(\\.{1,2}/.*)\\.js$': '$1',
};
for (const [alias, [target]] of Object.entries(tsconfig.compilerOptions.paths)) {
  moduleNameMapper[`^${alias.replace(/[/]/g, '\\/')}$`] = path.join(root, target);
}

/** @param {string} projectDir @param {string} name */
function jestConfig(projectDir, name) {
  return {
    displayName: name,
    rootDir: projectDir,
    testEnvironment: 'node',
    extensionsToTreatAsEsm: ['.ts'],
    moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
    moduleNameMapper,
    testMatch: ['<rootDir>/**/*.spec.ts'],
    transform: {
      '^.+\\.ts$': [
        '@swc/jest',
        {
          jsc: {
            parser: { syntax: 'typescript', decorators: true },
            transform: { legacyDecorator: true, decoratorMetadata: true },
            target: 'es2022',
          },
          module: { type: 'es6' },
          sourceMaps: 'inline',
        },
      ],
    },
    testTimeout: 60_000,
  };
}

module.exports = { jestConfig };
