import { performance } from 'node:perf_hooks';
import type { RecordedEvent } from '@ledgerflow/contracts';
import type { EventStore, Subscription } from '@ledgerflow/event-store';
import { InMemoryReadModelStore } from './in-memory-read-model-store.js';
import type { Projection, ReadModelReader, ReadModelStore } from './projection.js';
import { ProjectionApplyError, describeError } from './read-model-errors.js';
import { SerialQueue } from './serial-queue.js';

export interface ProjectionRunnerOptions {
  readonly eventStore: EventStore;
  readonly readModels: ReadModelStore;
  readonly projections: readonly Projection[];
  /** Largest batch applied in one read-model transaction (default 1000). */
  readonly batchSize?: number;
  /** Default timeout of waitFor (10 s); a networked read-model store may need more. */
  readonly waitTimeoutMs?: number;
  /** Receives one line per notable event: rebuilds, failures. */
  readonly logger?: (message: string) => void;
}

/** Why a projection stopped: the error its batch failed with, and the event that caused it when known. */
export interface ProjectionFailure {
  readonly message: string;
  /** Log position of the event `apply` threw on; null when the failure was not in `apply`. */
  readonly eventPosition: number | null;
  readonly cause: unknown;
}

export type ProjectionState = 'stopped' | 'running' | 'rebuilding' | 'failed';

export interface ProjectionStatus {
  readonly name: string;
  readonly version: number;
  /** Last log position applied to the read model. */
  readonly position: number;
  readonly state: ProjectionState;
  readonly error: ProjectionFailure | null;
}

export interface RebuildResult {
  /** Events applied during the replay. */
  readonly events: number;
  readonly ms: number;
}

/** A projection stopped on an error, so a position it has not reached will never be reached. */
export class ProjectionFailedError extends Error {
  override readonly name = 'ProjectionFailedError';
  constructor(
    readonly projection: string,
    readonly failure: ProjectionFailure,
  ) {
    super(`projection '${projection}' has stopped: ${failure.message}`, { cause: failure.cause });
  }
}

/** waitFor gave up: some projection had not reached the position in time. */
export class ProjectionWaitTimeoutError extends Error {
  override readonly name = 'ProjectionWaitTimeoutError';
  constructor(
    readonly position: number,
    readonly timeoutMs: number,
    readonly lagging: readonly { readonly name: string; readonly position: number }[],
  ) {
    super(
      `read models did not reach position ${position} within ${timeoutMs} ms (${lagging
        .map((p) => `${p.name} at ${p.position}`)
        .join(', ')})`,
    );
  }
}

interface Runtime {
  readonly projection: Projection;
  position: number;
  state: ProjectionState;
  failure: ProjectionFailure | null;
  subscription: Subscription | undefined;
  /** Bumped whenever the subscription is replaced, so callbacks of an old one are ignored. */
  generation: number;
}

interface Waiter {
  readonly position: number;
  /** The projections that must reach the position; all when undefined. */
  readonly only: ReadonlySet<Runtime> | undefined;
  resolve(): void;
  reject(error: Error): void;
}

const DEFAULT_BATCH_SIZE = 1000;
const DEFAULT_WAIT_MS = 10_000;

/**
 * Keeps read models up to date with the log: on start each projection catches up from its
 * checkpoint (rebuilt first when its version changed), then follows the log live. A projection
 * that fails stops where it is, never skipping the event, and reports the error via status().
 */
export class ProjectionRunner {
  private readonly eventStore: EventStore;
  private readonly readModels: ReadModelStore;
  private readonly batchSize: number;
  private readonly log: (message: string) => void;
  private readonly runtimes: readonly Runtime[];
  private readonly waiters = new Set<Waiter>();
  private readonly lifecycle = new SerialQueue();
  private running = false;
  private readonly waitTimeoutMs: number;
  /** Highest position a write was answered at without its read models showing it. */
  private answeredAhead = 0;
  private lagged = 0;

  constructor(options: ProjectionRunnerOptions) {
    this.waitTimeoutMs = options.waitTimeoutMs ?? DEFAULT_WAIT_MS;
    this.eventStore = options.eventStore;
    this.readModels = options.readModels;
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    if (!Number.isSafeInteger(this.batchSize) || this.batchSize < 1) {
      throw new RangeError(`batchSize must be a positive integer, got ${this.batchSize}`);
    }
    this.log = options.logger ?? (() => undefined);
    const names = new Set<string>();
    for (const p of options.projections) {
      if (names.has(p.name)) throw new Error(`two projections are named '${p.name}'`);
      names.add(p.name);
    }
    this.runtimes = options.projections.map((projection) => ({
      projection,
      position: 0,
      state: 'stopped',
      failure: null,
      subscription: undefined,
      generation: 0,
    }));
  }

  /**
   * Sets up every projection and subscribes it from its checkpoint; resolves once all have caught
   * up to the head observed at start. Rejects with ProjectionFailedError when one fails first (the
   * others keep running: call stop() if that is fatal).
   */
  async start(): Promise<void> {
    const head = await this.lifecycle.run(async () => {
      if (this.running) throw new Error('projection runner is already started');
      const observed = await this.eventStore.headPosition();
      for (const runtime of this.runtimes) await this.prepare(runtime, observed);
      this.running = true;
      for (const runtime of this.runtimes) this.subscribe(runtime);
      return observed;
    });
    await this.reach(head, undefined, undefined);
  }

  /**
   * Resolves once every projection has applied the log up to `position` (read-your-writes after an
   * append). Rejects with ProjectionFailedError if one stops first, ProjectionWaitTimeoutError after
   * `timeoutMs` (default the runner's waitTimeoutMs, 10 s). `projections` narrows the wait to the
   * named ones.
   */
  waitFor(
    position: number,
    timeoutMs: number = this.waitTimeoutMs,
    projections?: readonly string[],
  ): Promise<void> {
    const only = projections === undefined ? undefined : new Set<Runtime>();
    for (const name of projections ?? []) {
      const runtime = this.runtimes.find((r) => r.projection.name === name);
      if (runtime === undefined) return Promise.reject(new Error(`no projection named '${name}'`));
      only?.add(runtime);
    }
    return this.reach(position, timeoutMs, only);
  }

  /**
   * Read-your-writes after an append that has committed: resolves true once every projection shows
   * `position`. When a read model does not get there within `timeoutMs` (a slow or unreachable
   * read-model store, a projection stopped on an error, a runner stopping), it resolves false
   * instead of rejecting: the write is durable, so the request that made it must succeed (an error
   * would make clients retry a write that has happened: MLflow's client resends every 5xx). The lag
   * is logged and counted (readYourWritesTimeouts), and behind() tells queries that a write was
   * answered ahead of its read models.
   */
  async readYourWrites(
    position: number,
    timeoutMs: number = this.waitTimeoutMs,
    projections?: readonly string[],
  ): Promise<boolean> {
    try {
      await this.waitFor(position, timeoutMs, projections);
      return true;
    } catch (error) {
      this.lagged++;
      this.answeredAhead = Math.max(this.answeredAhead, position);
      this.log(
        `a write at position ${position} is answered before its read models show it: ${describeError(error)}`,
      );
      return false;
    }
  }

  /**
   * True while some read model has not applied a write that readYourWrites answered without it:
   * reads may be stale, and a query that misses an entity may look it up in the log instead.
   */
  behind(): boolean {
    return this.answeredAhead > 0 && this.runtimes.some((r) => r.position < this.answeredAhead);
  }

  /**
   * What the projection named `name` makes of `streams` alone, replayed from the log into memory:
   * for a point read that must not wait for (or trust) a lagging read model, e.g. the answer to a
   * write readYourWrites gave up on. Only documents built from these streams' events are there.
   */
  async viewOfStreams(name: string, streams: readonly string[]): Promise<ReadModelReader> {
    const { projection } = this.runtimeNamed(name);
    const events = (await Promise.all(streams.map((s) => this.eventStore.readStream(s))))
      .flat()
      .sort((a, b) => a.position - b.position);
    const store = new InMemoryReadModelStore();
    await store.setup(projection);
    if (events.length > 0) await store.applyBatch(projection, events);
    return store.reader;
  }

  /** Writes answered before their read models showed them (readYourWrites gave up waiting). */
  get readYourWritesTimeouts(): number {
    return this.lagged;
  }

  /**
   * Drops one projection's read model (all of them without a name), replays the log from the start
   * to the head, then resumes following the log if the runner is started.
   */
  async rebuild(name?: string): Promise<RebuildResult> {
    const targets = name === undefined ? this.runtimes : [this.runtimeNamed(name)];
    return this.lifecycle.run(async () => {
      const started = performance.now();
      let events = 0;
      for (const runtime of targets) events += await this.rebuildOne(runtime);
      return { events, ms: performance.now() - started };
    });
  }

  /** Applied log position of each projection, by name. */
  positions(): Map<string, number> {
    return new Map(this.runtimes.map((r) => [r.projection.name, r.position]));
  }

  /** Each projection's position, state and, when it has stopped on an error, that error. */
  status(): ProjectionStatus[] {
    return this.runtimes.map((r) => ({
      name: r.projection.name,
      version: r.projection.version,
      position: r.position,
      state: r.state,
      error: r.failure,
    }));
  }

  /** Closes every subscription (after its in-flight batch) and rejects pending waitFor calls. */
  async stop(): Promise<void> {
    await this.lifecycle.run(async () => {
      this.running = false;
      await Promise.all(this.runtimes.map((r) => this.unsubscribe(r)));
      for (const r of this.runtimes) if (r.state !== 'failed') r.state = 'stopped';
      this.settleWaiters();
    });
  }

  private runtimeNamed(name: string): Runtime {
    const runtime = this.runtimes.find((r) => r.projection.name === name);
    if (runtime === undefined) throw new Error(`no projection named '${name}'`);
    return runtime;
  }

  private async prepare(runtime: Runtime, head: number): Promise<void> {
    const { projection } = runtime;
    await this.readModels.setup(projection);
    const checkpoint = await this.readModels.checkpoint(projection.name);
    runtime.failure = null;
    runtime.position = checkpoint.position;
    let reason: string | undefined;
    if (checkpoint.version !== null && checkpoint.version !== projection.version) {
      reason = `it was built by version ${checkpoint.version}, the code is version ${projection.version}`;
    } else if (checkpoint.position > head) {
      reason = `its checkpoint ${checkpoint.position} is past the head of the log (${head})`;
    }
    if (reason !== undefined) {
      this.log(`rebuilding read model '${projection.name}': ${reason}`);
      await this.readModels.drop(projection);
      await this.readModels.setup(projection);
      runtime.position = 0;
    }
  }

  private subscribe(runtime: Runtime): void {
    const generation = ++runtime.generation;
    runtime.state = 'running';
    runtime.subscription = this.eventStore.subscribe(
      runtime.position,
      async (events) => {
        if (generation !== runtime.generation) return;
        await this.applyBatch(runtime, events);
      },
      {
        batchSize: this.batchSize,
        onError: (error) => {
          if (generation === runtime.generation) this.fail(runtime, error);
        },
      },
    );
  }

  private async unsubscribe(runtime: Runtime): Promise<void> {
    runtime.generation += 1;
    const subscription = runtime.subscription;
    runtime.subscription = undefined;
    // Its failure, if any, is already recorded by onError.
    await subscription?.close().catch(() => undefined);
  }

  private async applyBatch(runtime: Runtime, events: readonly RecordedEvent[]): Promise<number> {
    // Never apply past a failed event: throwing again keeps the subscription stopped.
    if (runtime.failure !== null)
      throw new ProjectionFailedError(runtime.projection.name, runtime.failure);
    let applied: number;
    try {
      applied = await this.readModels.applyBatch(runtime.projection, events);
    } catch (error) {
      this.fail(runtime, error);
      throw error;
    }
    const last = events.at(-1);
    if (last !== undefined && last.position > runtime.position) runtime.position = last.position;
    this.settleWaiters();
    return applied;
  }

  private fail(runtime: Runtime, error: unknown): void {
    if (runtime.failure !== null) return;
    runtime.failure = {
      message: describeError(error),
      eventPosition: error instanceof ProjectionApplyError ? error.position : null,
      cause: error,
    };
    runtime.state = 'failed';
    this.log(
      `projection '${runtime.projection.name}' stopped at position ${runtime.position}: ${runtime.failure.message}`,
    );
    this.settleWaiters();
  }

  private async rebuildOne(runtime: Runtime): Promise<number> {
    const { projection } = runtime;
    await this.unsubscribe(runtime);
    runtime.state = 'rebuilding';
    runtime.failure = null;
    await this.readModels.drop(projection);
    await this.readModels.setup(projection);
    runtime.position = 0;
    const head = await this.eventStore.headPosition();
    let events = 0;
    while (runtime.position < head) {
      const batch = await this.eventStore.readAll(
        runtime.position,
        Math.min(this.batchSize, head - runtime.position),
      );
      if (batch.length === 0) break;
      events += await this.applyBatch(runtime, batch);
    }
    this.log(`rebuilt read model '${projection.name}' from ${events} events`);
    if (this.running) this.subscribe(runtime);
    else runtime.state = 'stopped';
    return events;
  }

  private reach(
    position: number,
    timeoutMs: number | undefined,
    only: ReadonlySet<Runtime> | undefined,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        position,
        only,
        resolve: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          reject(error);
        },
      };
      this.waiters.add(waiter);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const lagging = this.runtimes
            .filter((r) => (only === undefined || only.has(r)) && r.position < position)
            .map((r) => ({ name: r.projection.name, position: r.position }));
          waiter.reject(new ProjectionWaitTimeoutError(position, timeoutMs, lagging));
        }, timeoutMs);
      }
      this.settle(waiter);
    });
  }

  private settleWaiters(): void {
    for (const waiter of [...this.waiters]) this.settle(waiter);
  }

  private settle(waiter: Waiter): void {
    let reached = true;
    for (const r of this.runtimes) {
      if (waiter.only !== undefined && !waiter.only.has(r)) continue;
      if (r.position >= waiter.position) continue;
      if (r.failure !== null) {
        waiter.reject(new ProjectionFailedError(r.projection.name, r.failure));
        return;
      }
      reached = false;
    }
    if (reached) waiter.resolve();
    else if (!this.running && !this.runtimes.some((r) => r.state === 'rebuilding')) {
      waiter.reject(
        new Error(
          `projection runner is stopped: read models will not reach position ${waiter.position}`,
        ),
      );
    }
  }
}
