// Test fixture, run as its own process: the embedded server with a deliberately slow event log
// (every append waits SLOW_APPEND_MS first), for the ingest overload test.
//   node dist/apps/cli/src/testing/slow-storage-server.js <dataDir> <slowAppendMs> '<ingest limits json>'
// Prints one line `READY <httpPort> <grpcPort>` when serving.
import { loadConfig } from '@ledgerflow/config';
import { IngestGrpcServer } from '@ledgerflow/service-tracking';
import { SlowEventStore } from '@ledgerflow/testing';
import { startEmbeddedServer } from '../commands/server.js';

const [dataDir, slowMs, limits] = process.argv.slice(2);
if (!dataDir || !slowMs)
  throw new Error('usage: slow-storage-server.js <dataDir> <slowAppendMs> [limits json]');
const base = loadConfig({});
const server = await startEmbeddedServer(
  {
    ...base,
    port: 0,
    grpcPort: 0,
    dataDir,
    logLevel: 'error',
    sqliteSynchronous: 'normal',
    ingest: { ...base.ingest, ...(limits ? (JSON.parse(limits) as object) : {}) },
  },
  { wrapEventStore: (store) => new SlowEventStore(store, Number(slowMs)) },
);
const ingest = server.app.get(IngestGrpcServer);
process.stdout.write(`READY ${new URL(server.url).port} ${ingest.port}\n`);
// report admission-queue depth so the test can see push-back
setInterval(() => process.stdout.write(`QUEUED ${ingest.ingest.flow.queued}\n`), 50).unref();
if (process.env['LEDGERFLOW_FIXTURE_MEMORY']) {
  setInterval(() => {
    const m = process.memoryUsage();
    const mb = (n: number): string => (n / 2 ** 20).toFixed(0);
    process.stderr.write(
      `mem rss ${mb(m.rss)} heap ${mb(m.heapUsed)}/${mb(m.heapTotal)} external ${mb(m.external)} buffers ${mb(m.arrayBuffers)} inflight ${ingest.ingest.flow.inFlightPoints}\n`,
    );
  }, 2000).unref();
}
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
