import { Worker } from 'node:worker_threads';
import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  ProjectionApplyError,
  SqliteReadModelStore,
  type Projection,
  type ReadModelReader,
  type ReadModelStore,
} from '@ledgerflow/projections';
import type {
  ReadModelWorkerInit,
  ReadModelWorkerReply,
  ReadModelWorkerRequest,
} from './read-model-worker.js';

export interface WorkerReadModelStoreOptions {
  /** The database file of these read models (not the main read-model file: one writer per file). */
  readonly path: string;
  /** The event log the worker reads each batch's events from. */
  readonly eventsPath: string;
  /** The projections applied by the worker; each needs `offThread` and no cached collection. */
  readonly projections: readonly Projection[];
  /** Apply on the calling thread instead (what happens anyway when the code is not compiled JS). */
  readonly inline?: boolean;
}

const WORKER_URL = new URL('./read-model-worker.js', import.meta.url);

/** Whether a module URL can be loaded by a plain worker thread (compiled JS, not a test runner's TS). */
function runnable(url: string): boolean {
  return /\.(?:js|mjs)$/.test(url);
}

interface Pending {
  /** Failures of a batch are answered, not thrown: the reply says which. */
  readonly resolve: (reply: ReadModelWorkerReply) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Read models applied on a worker thread, in a SQLite file of their own: the worker holds the
 * only write connection to it and reads each batch's events from the log itself, so the main
 * thread's part of a batch is one message each way. Queries, checkpoints, setup, drop and content
 * hashes use a connection of the calling thread (SqliteReadModelStore on the same file); the
 * projection runner drives these only while no batch of the projection is in flight, so they
 * never contend with the worker. A batch resolves once the worker has committed it, so the
 * runner's positions, and with them read-your-writes, mean what they mean for any other store.
 * If the worker dies, every batch fails from then on (the runner reports the projection failed).
 * When the worker script or a projection is not compiled JS (TypeScript under a test runner), or
 * `inline` is set, batches are applied on the calling thread into the same separate file.
 */
export class WorkerReadModelStore implements ReadModelStore {
  readonly reader: ReadModelReader;
  private readonly local: SqliteReadModelStore;
  private readonly worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  private exited: Promise<void> | undefined;

  constructor(options: WorkerReadModelStoreOptions) {
    const sources = options.projections.map((p) => {
      if (p.offThread === undefined) {
        throw new Error(
          `read model '${p.name}' cannot run on a worker thread: no offThread source`,
        );
      }
      if (p.collections.some((c) => c.cached === true)) {
        throw new Error(`read model '${p.name}' has cached collections: it cannot run off-thread`);
      }
      return p.offThread;
    });
    this.local = new SqliteReadModelStore({ path: options.path });
    this.reader = this.local.reader;
    const offThread =
      options.inline !== true && runnable(WORKER_URL.href) && sources.every((s) => runnable(s.url));
    if (!offThread) return;
    const init: ReadModelWorkerInit = {
      path: options.path,
      eventsPath: options.eventsPath,
      projections: sources,
    };
    const worker = new Worker(WORKER_URL, { workerData: init });
    this.worker = worker;
    worker.on('message', (reply: ReadModelWorkerReply) => this.settle(reply));
    worker.on('error', (error) => this.stopAll(error));
    this.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        this.stopAll(new Error(`the read-model worker exited (code ${code})`));
        resolve();
      });
    });
  }

  /** Whether batches run on a worker thread (false: on the calling thread). */
  get threaded(): boolean {
    return this.worker !== undefined;
  }

  setup(projection: Projection): Promise<void> {
    return this.local.setup(projection);
  }

  checkpoint(name: string): Promise<{ position: number; version: number | null }> {
    return this.local.checkpoint(name);
  }

  async applyBatch(projection: Projection, events: readonly RecordedEvent[]): Promise<number> {
    const worker = this.worker;
    if (worker === undefined) return this.local.applyBatch(projection, events);
    const first = events[0];
    const last = events.at(-1);
    if (first === undefined || last === undefined) return 0;
    const reply = await this.request(worker, {
      op: 'apply',
      projection: projection.name,
      first: first.position,
      last: last.position,
    });
    if (reply.ok) return reply.applied;
    const failed =
      reply.position === null ? undefined : events.find((e) => e.position === reply.position);
    if (failed !== undefined) {
      throw new ProjectionApplyError(
        projection.name,
        failed,
        new Error(reply.cause ?? reply.message),
      );
    }
    const error = new Error(reply.message);
    error.name = reply.name;
    throw error;
  }

  drop(projection: Projection): Promise<void> {
    return this.local.drop(projection);
  }

  contentHash(projection: Projection): Promise<string> {
    return this.local.contentHash(projection);
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (worker !== undefined && this.failure === undefined) {
      // after every batch already sent: the worker answers requests in order
      await this.request(worker, { op: 'close' }).catch(() => undefined);
      // it has closed its databases and leaves by itself (writing a --cpu-prof profile, if any)
      const timer = setTimeout(() => void worker.terminate(), 2000);
      await this.exited;
      clearTimeout(timer);
    }
    await worker?.terminate();
    await this.exited;
    await this.local.close();
  }

  private request(
    worker: Worker,
    message: { op: 'apply'; projection: string; first: number; last: number } | { op: 'close' },
  ): Promise<ReadModelWorkerReply> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<ReadModelWorkerReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, ...message } satisfies ReadModelWorkerRequest);
    });
  }

  private settle(reply: ReadModelWorkerReply): void {
    const pending = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    pending?.resolve(reply);
  }

  private stopAll(error: Error): void {
    this.failure ??= error;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(this.failure);
    }
  }
}
