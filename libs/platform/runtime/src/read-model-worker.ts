// Worker thread of WorkerReadModelStore: applies batches of the projections it hosts to their own
// SQLite read-model file. The main thread hands it only positions; it reads those events from the
// log itself (read-only connection), so neither parsing nor copying events costs the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import type { RecordedEvent } from '@ledgerflow/contracts';
import { SqliteEventStore } from '@ledgerflow/event-store';
import {
  describeError,
  ProjectionApplyError,
  SqliteReadModelStore,
  type OffThreadSource,
  type Projection,
} from '@ledgerflow/projections';

/** What the main thread starts the worker with. */
export interface ReadModelWorkerInit {
  /** The read-model database this worker writes. */
  readonly path: string;
  /** The event log, opened read-only. */
  readonly eventsPath: string;
  readonly projections: readonly OffThreadSource[];
}

export type ReadModelWorkerRequest =
  | {
      readonly id: number;
      readonly op: 'apply';
      readonly projection: string;
      /** Log positions of the batch's first and last events (a batch is contiguous). */
      readonly first: number;
      readonly last: number;
    }
  | { readonly id: number; readonly op: 'close' };

export type ReadModelWorkerReply =
  | { readonly id: number; readonly ok: true; readonly applied: number }
  | {
      readonly id: number;
      readonly ok: false;
      readonly name: string;
      readonly message: string;
      /** Set when `apply` threw on an event (a ProjectionApplyError): its position and cause. */
      readonly position: number | null;
      readonly cause: string | null;
    };

const port = parentPort;
if (port === null) throw new Error('read-model-worker.js runs as a worker thread only');
const init = workerData as ReadModelWorkerInit;

const projections = new Map<string, Projection>();
for (const source of init.projections) {
  const mod = (await import(source.url)) as Record<string, unknown>;
  const projection = mod[source.exportName] as Projection | undefined;
  if (projection === undefined || typeof projection.apply !== 'function') {
    throw new Error(`${source.url} has no projection export '${source.exportName}'`);
  }
  projections.set(projection.name, projection);
}
const log = new SqliteEventStore({ path: init.eventsPath, readonly: true });
const store = new SqliteReadModelStore({ path: init.path });
const prepared = new Set<string>();

async function eventsBetween(first: number, last: number): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  let after = first - 1;
  while (after < last) {
    const page = await log.readAll(after, last - after);
    if (page.length === 0) throw new Error(`the event log ends at ${after}, before ${last}`);
    for (const event of page) if (event.position <= last) events.push(event);
    after = page.at(-1)!.position;
  }
  return events;
}

async function apply(name: string, first: number, last: number): Promise<number> {
  const projection = projections.get(name);
  if (projection === undefined) throw new Error(`this worker does not host read model '${name}'`);
  if (!prepared.has(name)) {
    // the main thread has created the tables; this registers the collections with this connection
    await store.setup(projection);
    prepared.add(name);
  }
  return store.applyBatch(projection, await eventsBetween(first, last));
}

// One request at a time, in order: batches of one projection must commit in log order.
let queue: Promise<void> = Promise.resolve();
port.on('message', (request: ReadModelWorkerRequest) => {
  queue = queue.then(async () => {
    if (request.op === 'close') {
      await store.close();
      await log.close();
      port.postMessage({ id: request.id, ok: true, applied: 0 } satisfies ReadModelWorkerReply);
      port.close();
      return;
    }
    let reply: ReadModelWorkerReply;
    try {
      reply = {
        id: request.id,
        ok: true,
        applied: await apply(request.projection, request.first, request.last),
      };
    } catch (error) {
      const applyError = error instanceof ProjectionApplyError ? error : undefined;
      reply = {
        id: request.id,
        ok: false,
        name: error instanceof Error ? error.name : 'Error',
        message: describeError(error),
        position: applyError?.position ?? null,
        cause: applyError === undefined ? null : describeError(applyError.cause),
      };
    }
    port.postMessage(reply);
  });
});
