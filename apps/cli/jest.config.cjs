const { jestConfig } = require('../../jest.preset.cjs');

const config = jestConfig(__dirname, 'cli');
// The distributed specs (a whole cluster on real engines, fault injection) run under
// `npm run test:distributed` (LEDGERFLOW_DISTRIBUTED_TESTS=1), not in `npm test`.
if (process.env.LEDGERFLOW_DISTRIBUTED_TESTS !== '1') {
  config.testPathIgnorePatterns = ['/node_modules/', '\\.distributed\\.spec\\.ts$'];
}
module.exports = config;
