import { mkdirSync } from 'node:fs';
import type { Clock } from '@ledgerflow/contracts';
import { dataFiles, type LedgerflowConfig } from '@ledgerflow/config';
import {
  AggregateStore,
  SqliteEventStore,
  systemClock,
  type EventStore,
} from '@ledgerflow/event-store';
import { ProjectionRunner, SqliteReadModelStore, type Projection } from '@ledgerflow/projections';

/** The embedded adapters, opened on one data directory. */
export interface EmbeddedPlatform {
  /** The event log every component uses (the SQLite store, or a wrapper of it given by the caller). */
  readonly eventStore: EventStore;
  readonly readModels: SqliteReadModelStore;
  readonly projections: ProjectionRunner;
  readonly aggregates: AggregateStore;
  /** The clock every event's occurredAt comes from (the wall clock unless a test injects one). */
  readonly clock: Clock;
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
  /** Lets tests put a wrapper (e.g. a deliberately slow store) between the services and the log. */
  wrapEventStore: (store: EventStore) => EventStore = (store) => store,
  /** Lets tests drive time (FakeClock); events, expiries and timelines all read this clock. */
  clock: Clock = systemClock,
): EmbeddedPlatform {
  mkdirSync(config.dataDir, { recursive: true });
  const files = dataFiles(config.dataDir);
  const eventStore = wrapEventStore(
    new SqliteEventStore({
      path: files.events,
      synchronous: config.sqliteSynchronous,
    }),
  );
  const readModels = new SqliteReadModelStore({ path: files.readModels });
  const runner = new ProjectionRunner({ eventStore, readModels, projections, logger: log });
  const aggregates = new AggregateStore(eventStore, clock);
  return {
    eventStore,
    readModels,
    projections: runner,
    aggregates,
    clock,
    async close() {
      await runner.stop();
      await readModels.close();
      await eventStore.close();
    },
  };
}
