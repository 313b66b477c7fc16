import { randomUUID } from 'node:crypto';
import type {
  Clock,
  Decider,
  DomainEvent,
  EventMetadata,
  IdGenerator,
  NewEvent,
  RecordedEvent,
} from '@ledgerflow/contracts';
import { WrongExpectedRevisionError, type EventStore, type StreamWrite } from './event-store.js';

/** Wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** uuid4 as 32 lowercase hex characters (MLflow's run id format). */
export const uuidHexIds: IdGenerator = { next: () => randomUUID().replaceAll('-', '') };

interface Cached {
  revision: number;
  state: unknown;
}

/** One aggregate's part of a command: its stream, its decider and the command. */
export interface AggregateCommand<C, S, E extends DomainEvent> {
  readonly stream: string;
  readonly decider: Decider<C, S, E>;
  readonly command: C;
  /** Decides against facts loaded at execution time (e.g. other aggregates' state). */
  readonly prepare?: () => Promise<C>;
}

export interface ExecuteResult {
  readonly events: readonly RecordedEvent[];
  /** Head of the log after the append, or the current head when nothing was appended. */
  readonly lastPosition: number;
}

/**
 * Loads aggregates by folding their streams (with an in-memory cache of recent states, topped up
 * from the stream, so loading costs only the events since the last load), runs deciders, and
 * appends the resulting events with the expected revision. A concurrent writer causes a retry
 * against the fresh state, never a lost update.
 */
export class AggregateStore {
  private readonly cache = new Map<string, Cached>();
  /** Tail of the queue of commands per stream: one command per stream at a time in this process. */
  private readonly locks = new Map<string, Promise<void>>();

  constructor(
    private readonly events: EventStore,
    private readonly clock: Clock = systemClock,
    private readonly ids: IdGenerator = { next: () => randomUUID() },
    private readonly maxCached = 20_000,
  ) {}

  /** Current state and revision of one aggregate (-1 when its stream does not exist). */
  async load<C, S, E extends DomainEvent>(
    stream: string,
    decider: Decider<C, S, E>,
  ): Promise<{ state: S; revision: number }> {
    const cached = this.cache.get(stream);
    let state = cached ? (cached.state as S) : decider.initialState();
    let revision = cached ? cached.revision : -1;
    const newer = await this.events.readStream(stream, { fromRevision: revision + 1 });
    for (const e of newer) {
      state = decider.evolve(state, e as unknown as E, e);
      revision = e.revision;
    }
    this.remember(stream, revision, state);
    return { state, revision };
  }

  /** Decides one command and appends its events (retrying on a concurrent write). */
  async execute<C, S, E extends DomainEvent>(
    cmd: AggregateCommand<C, S, E>,
    metadata: EventMetadata,
  ): Promise<ExecuteResult> {
    return this.executeAll([cmd], metadata);
  }

  /**
   * Decides several aggregates' commands and appends all their events atomically. Commands on the
   * same stream in this process take turns, so they do not race each other into revision
   * conflicts; a writer in another process still causes a conflict, and a retry.
   */
  async executeAll(
    cmds: readonly AggregateCommand<unknown, unknown, DomainEvent>[],
    metadata: EventMetadata,
    attempts = 8,
  ): Promise<ExecuteResult> {
    const release = await this.lock([...new Set(cmds.map((c) => c.stream))].sort());
    try {
      return await this.decideAndAppend(cmds, metadata, attempts);
    } finally {
      release();
    }
  }

  /** Waits for the given streams (taken in sorted order, so two callers never deadlock). */
  private async lock(streams: readonly string[]): Promise<() => void> {
    const releases: (() => void)[] = [];
    for (const stream of streams) {
      const previous = this.locks.get(stream) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((r) => (release = r));
      const tail = previous.then(() => mine);
      this.locks.set(stream, tail);
      await previous;
      releases.push(() => {
        release();
        if (this.locks.get(stream) === tail) this.locks.delete(stream);
      });
    }
    return () => releases.forEach((r) => r());
  }

  private async decideAndAppend(
    cmds: readonly AggregateCommand<unknown, unknown, DomainEvent>[],
    metadata: EventMetadata,
    attempts: number,
  ): Promise<ExecuteResult> {
    for (let attempt = 1; ; attempt++) {
      const writes: StreamWrite[] = [];
      const decidedStates: {
        stream: string;
        state: unknown;
        decider: Decider<unknown, unknown, DomainEvent>;
      }[] = [];
      const now = this.clock.now();
      const ctx = { now, newId: () => this.ids.next() };
      for (const cmd of cmds) {
        const { state, revision } = await this.load(cmd.stream, cmd.decider);
        const command = cmd.prepare ? await cmd.prepare() : cmd.command;
        const decided = cmd.decider.decide(command, state, ctx);
        if (decided.length === 0) continue;
        decidedStates.push({ stream: cmd.stream, state, decider: cmd.decider });
        writes.push({
          stream: cmd.stream,
          expectedRevision: revision === -1 ? 'no_stream' : revision,
          events: decided.map((e): NewEvent => ({
            id: this.ids.next(),
            type: e.type,
            schemaVersion: 1,
            occurredAt: now,
            data: e.data,
            metadata,
          })),
        });
      }
      if (writes.length === 0)
        return { events: [], lastPosition: await this.events.headPosition() };
      try {
        const result =
          writes.length === 1 && writes[0]
            ? await this.events.append(
                writes[0].stream,
                writes[0].expectedRevision,
                writes[0].events,
              )
            : await this.events.appendMulti(writes);
        // The append proved the decided-on state current, so fold our own events into the cache:
        // the next load of these streams reads nothing back from the log.
        for (const { stream, state, decider } of decidedStates) {
          let next = state;
          for (const e of result.events) if (e.stream === stream) next = decider.evolve(next, e, e);
          const revision = result.revisions.get(stream);
          if (revision !== undefined) this.remember(stream, revision, next);
        }
        return { events: result.events, lastPosition: result.lastPosition };
      } catch (error) {
        if (error instanceof WrongExpectedRevisionError && attempt < attempts) {
          this.cache.delete(error.stream);
          continue;
        }
        throw error;
      }
    }
  }

  private remember(stream: string, revision: number, state: unknown): void {
    if (revision < 0) return;
    this.cache.delete(stream);
    this.cache.set(stream, { revision, state });
    if (this.cache.size > this.maxCached) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
  }
}
