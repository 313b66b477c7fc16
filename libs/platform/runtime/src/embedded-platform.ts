import { mkdirSync } from 'node:fs';
import type { Clock } from '@ledgerflow/contracts';
import { dataFiles, type LedgerflowConfig } from '@ledgerflow/config';
import {
  AggregateStore,
  SqliteEventStore,
  systemClock,
  type EventStore,
} from '@ledgerflow/event-store';
import {
  ProjectionRunner,
  SplitReadModelStore,
  SqliteReadModelStore,
  type Projection,
  type ReadModelStore,
} from '@ledgerflow/projections';
import type { ReadModelLag } from './platform.module.js';
import { WorkerReadModelStore } from './worker-read-model-store.js';

/**
 * Events the read models may trail the log by behind writers that do not wait for them (gRPC
 * ingest acks once a batch is in the log). With the metric history on a worker thread, ingest
 * could otherwise outrun it without limit; 16 batches (0.8M points at 50k per batch) keep a live view within about half a second at full load.
 */
export const MAX_READ_MODEL_LAG_EVENTS = 16;

/** The embedded adapters, opened on one data directory. */
export interface EmbeddedPlatform {
  /** The event log every component uses (the SQLite store, or a wrapper of it given by the caller). */
  readonly eventStore: EventStore;
  /**
   * Read models: `read-models.db`, plus the projections that declare `offThread` (the metric
   * history) in a file of their own, applied on a worker thread (see WorkerReadModelStore).
   */
  readonly readModels: ReadModelStore;
  readonly projections: ProjectionRunner;
  readonly aggregates: AggregateStore;
  /** The clock every event's occurredAt comes from (the wall clock unless a test injects one). */
  readonly clock: Clock;
  /** Paces gRPC ingest to the read models (MAX_READ_MODEL_LAG_EVENTS); see ReadModelLag. */
  readonly readModelLag: ReadModelLag;
  close(): Promise<void>;
}

/**
 * Opens the SQLite event log and read models under the data dir. The projection runner is created
 * but not started: the server starts it (catch-up), the rebuild command drives it itself.
 */
export function openEmbeddedPlatform(
  config: Pick<LedgerflowConfig, 'dataDir' | 'sqliteSynchronous' | 'projectionWorker'>,
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
  const main = new SqliteReadModelStore({ path: files.readModels });
  const offThread = projections.filter((p) => p.offThread !== undefined);
  let readModels: ReadModelStore = main;
  if (offThread.length > 0) {
    try {
      const side = new WorkerReadModelStore({
        path: files.workerReadModels,
        eventsPath: files.events,
        projections: offThread,
        inline: config.projectionWorker === false,
      });
      readModels = new SplitReadModelStore(main, side, offThread);
      const names = offThread.map((p) => p.name).join(', ');
      log(
        side.threaded
          ? `read models applied on a worker thread: ${names}`
          : `read models applied on the main thread (own file): ${names}`,
      );
    } catch (error) {
      void main.close();
      void eventStore.close();
      throw error;
    }
  }
  const runner = new ProjectionRunner({ eventStore, readModels, projections, logger: log });
  const aggregates = new AggregateStore(eventStore, clock);
  const readModelLag: ReadModelLag = {
    within: (position) =>
      runner.waitFor(position - MAX_READ_MODEL_LAG_EVENTS, 30_000).catch(() => undefined),
  };
  return {
    eventStore,
    readModels,
    projections: runner,
    aggregates,
    clock,
    readModelLag,
    async close() {
      await runner.stop();
      await readModels.close();
      await eventStore.close();
    },
  };
}
