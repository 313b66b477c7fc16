import { mkdirSync } from 'node:fs';
import { dataFiles, type LedgerflowConfig } from '@ledgerflow/config';
import { AggregateStore, SqliteEventStore, systemClock } from '@ledgerflow/event-store';
import { ProjectionRunner, SqliteReadModelStore, type Projection } from '@ledgerflow/projections';

/** The embedded adapters, opened on one data directory. */
export interface EmbeddedPlatform {
  readonly eventStore: SqliteEventStore;
  readonly readModels: SqliteReadModelStore;
  readonly projections: ProjectionRunner;
  readonly aggregates: AggregateStore;
  close(): Promise<void>;
}

/**
 * Opens the SQLite event log and read models under the data dir. The projection runner is created
 * but not started: the server starts it (catch-up), the rebuild command drives it itself.
 */
export function openEmbeddedPlatform(
  config: Pick<LedgerflowConfig, 'dataDir' | 'sqliteSynchronous'>,
  projections: readonly Projection[],
  log: (message: string) => void = () => undefined,
): EmbeddedPlatform {
  mkdirSync(config.dataDir, { recursive: true });
  const files = dataFiles(config.dataDir);
  const eventStore = new SqliteEventStore({
    path: files.events,
    synchronous: config.sqliteSynchronous,
  });
  const readModels = new SqliteReadModelStore({ path: files.readModels });
  const runner = new ProjectionRunner({ eventStore, readModels, projections, logger: log });
  const aggregates = new AggregateStore(eventStore, systemClock);
  return {
    eventStore,
    readModels,
    projections: runner,
    aggregates,
    async close() {
      await runner.stop();
      await readModels.close();
      await eventStore.close();
    },
  };
}
