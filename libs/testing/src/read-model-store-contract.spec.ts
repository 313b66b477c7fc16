import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { InMemoryReadModelStore, SqliteReadModelStore } from '@ledgerflow/projections';
import { describeReadModelStoreContract } from './read-model-store-contract.js';

describeReadModelStoreContract('InMemoryReadModelStore', () => new InMemoryReadModelStore());

const dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-read-models-'));
let files = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeReadModelStoreContract(
  'SqliteReadModelStore',
  () => new SqliteReadModelStore({ path: path.join(dir, `read-models-${(files += 1)}.db`) }),
);
