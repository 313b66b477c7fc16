import type { Projection, ReadModelStore } from '@ledgerflow/projections';
import { tracedProjection, type LedgerflowMetrics } from '@ledgerflow/telemetry';
import type { BusMessage, BusOffset, BusSubscription, EventBus } from './event-bus.js';

export interface BusProjectionRunnerOptions {
  readonly bus: EventBus;
  /** Topics that together carry a whole source log (published by an OutboxPublisher). */
  readonly topics: readonly string[];
  readonly readModels: ReadModelStore;
  readonly projection: Projection;
  /** Consumer group (default `ledgerflow.projection.<name>`); one active member per projection. */
  readonly groupId?: string;
  /** Messages held back waiting for an earlier position before partitions are paused (default 10000). */
  readonly maxBuffered?: number;
  /** Largest batch applied in one read-model transaction (default 1000). */
  readonly batchSize?: number;
  /** Span per applied event, in the trace of the request that caused it (default true). */
  readonly trace?: boolean;
  readonly metrics?: LedgerflowMetrics;
  readonly onError?: (error: unknown) => void;
  /** First wait before subscribing again after the subscription stopped (doubles, up to 30 s; default 500 ms). */
  readonly resubscribeDelayMs?: number;
}

interface PartitionQueue {
  readonly topic: string;
  readonly partition: number;
  /** Delivered messages of this partition not yet committed, in offset order. */
  readonly entries: { readonly offset: string; readonly position: number }[];
}

/** A message without `ledgerflow-prev-position`: the topic is not a whole-log outbox topic. */
export class UnorderedTopicError extends Error {
  override readonly name = 'UnorderedTopicError';
}

/**
 * Applies a Kafka-fed (or in-process bus) stream of a log's events to a read model in exact log
 * order, exactly once:
 * - messages come from several partitions; each names the previous event's position, so the runner
 *   holds back an event until its predecessor is applied (per-key order is Kafka's, global order is
 *   rebuilt here), and a read model fed this way equals an embedded replay of the same log;
 * - the read-model store's checkpoint is the source of truth: events at or below it are skipped
 *   (redeliveries after a crash, duplicates from an outbox restart), and a batch's documents and
 *   checkpoint commit together;
 * - consumer offsets are committed only after the events they cover are applied, so a consumer
 *   killed between its write and its offset commit re-reads those messages and applies nothing twice.
 */
export class BusProjectionRunner {
  private applied = 0;
  private subscription: BusSubscription | undefined;
  private readonly byPrev = new Map<number, BusMessage>();
  private readonly queues = new Map<string, PartitionQueue>();
  private readonly paused = new Set<string>();
  private readonly waiters = new Set<{ position: number; resolve: () => void }>();
  private readonly projection: Projection;
  private failure: unknown;
  private redeliveries = 0;
  /** Why the subscription stopped, while the runner is subscribing again. */
  private stoppedBy: Error | undefined;
  private restarts = 0;
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private stopping = false;

  constructor(private readonly options: BusProjectionRunnerOptions) {
    this.projection =
      options.trace === false ? options.projection : tracedProjection(options.projection);
    options.metrics?.observeCheckpoints(() => [
      { name: options.projection.name, position: this.applied },
    ]);
  }

  get name(): string {
    return this.options.projection.name;
  }

  /** Last log position applied to the read model. */
  get position(): number {
    return this.applied;
  }

  get groupId(): string {
    return this.options.groupId ?? `ledgerflow.projection.${this.options.projection.name}`;
  }

  async start(): Promise<void> {
    this.stopping = false;
    await this.subscribe();
  }

  private async subscribe(): Promise<void> {
    const { readModels, projection, bus } = this.options;
    await readModels.setup(this.projection);
    const stored = await readModels.checkpoint(projection.name);
    if (stored.version !== null && stored.version !== projection.version) {
      throw new Error(
        `read model '${projection.name}' was built by version ${stored.version}, not ${projection.version}: rebuild it from the log (ledgerflow rebuild ${projection.name})`,
      );
    }
    this.applied = stored.position;
    // A restarted runner starts from the store's checkpoint and the group's committed offsets.
    this.byPrev.clear();
    this.queues.clear();
    this.paused.clear();
    this.failure = undefined;
    this.subscription = await bus.subscribe({
      groupId: this.groupId,
      topics: this.options.topics,
      commit: 'manual',
      fromBeginning: true,
      handler: (messages, sub) => this.receive(messages, sub),
      onError: (e) => this.options.onError?.(e),
      onStopped: (e) => this.resubscribe(e),
    });
    this.stoppedBy = undefined;
    if (this.stopping) {
      // stop() ran while this subscription was being made: it must not outlive the runner
      await this.subscription.close();
      this.subscription = undefined;
    }
  }

  /**
   * The subscription stopped for good (a consumer crash its client does not restart after): after a
   * back-off, leave the group and subscribe again from the store's checkpoint, as a restarted
   * process would. An error that comes back every time keeps the runner retrying, slower each time,
   * and not ready (status().stopped) until a subscription holds.
   */
  private resubscribe(error: Error): void {
    if (this.stopping || this.restartTimer !== undefined) return;
    this.stoppedBy = error;
    this.restarts++;
    this.options.onError?.(error);
    const first = this.options.resubscribeDelayMs ?? 500;
    const delay = Math.min(30_000, first * 2 ** Math.min(this.restarts - 1, 10));
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void (async () => {
        await this.subscription?.close().catch(() => undefined);
        this.subscription = undefined;
        if (this.stopping) return;
        await this.subscribe();
      })().catch((e: unknown) => this.resubscribe(e instanceof Error ? e : new Error(String(e))));
    }, delay);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.subscription?.close();
    this.subscription = undefined;
  }

  /** Resolves once the read model has applied `position`. */
  waitFor(position: number, timeoutMs = 30_000): Promise<void> {
    if (this.applied >= position) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        position,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new Error(
            `read model '${this.name}' did not reach position ${position} within ${timeoutMs} ms (at ${this.applied}, ${this.byPrev.size} held back)`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  status(): {
    name: string;
    position: number;
    buffered: number;
    redelivered: number;
    failed: boolean;
    stopped: string | undefined;
    restarts: number;
  } {
    return {
      name: this.name,
      position: this.applied,
      /** Messages held back for an earlier position. */
      buffered: this.byPrev.size,
      /** Messages received for events already applied (redeliveries and republished duplicates), skipped. */
      redelivered: this.redeliveries,
      failed: this.failure !== undefined,
      /** Why the subscription stopped, while the runner subscribes again (undefined when subscribed). */
      stopped: this.stoppedBy?.message,
      /** Times the subscription stopped by itself and was made again. */
      restarts: this.restarts,
    };
  }

  private async receive(messages: readonly BusMessage[], sub: BusSubscription): Promise<void> {
    for (const m of messages) {
      if (m.prevPosition === null) {
        throw new UnorderedTopicError(
          `message ${m.topic}/${m.partition}@${m.offset} has no previous-position header: '${m.topic}' is not a whole-log outbox topic`,
        );
      }
      const key = `${m.topic}/${m.partition}`;
      let queue = this.queues.get(key);
      if (queue === undefined) {
        queue = { topic: m.topic, partition: m.partition, entries: [] };
        this.queues.set(key, queue);
      }
      queue.entries.push({ offset: m.offset, position: m.event.position });
      if (m.event.position <= this.applied || this.byPrev.has(m.prevPosition)) {
        this.redeliveries++;
      }
      if (m.event.position > this.applied) this.byPrev.set(m.prevPosition, m);
    }
    await this.drain();
    const done = this.committable();
    if (done.length > 0) await sub.commit(done);
    this.flowControl(sub);
  }

  /** Applies every held-back event whose predecessor is applied, in log order. */
  private async drain(): Promise<void> {
    const batchSize = this.options.batchSize ?? 1000;
    for (;;) {
      const batch = [];
      const taken: number[] = [];
      let at = this.applied;
      for (let next = this.byPrev.get(at); next !== undefined; next = this.byPrev.get(at)) {
        taken.push(at);
        batch.push(next.event);
        at = next.event.position;
        if (batch.length >= batchSize) break;
      }
      if (batch.length === 0) break;
      try {
        await this.options.readModels.applyBatch(this.projection, batch);
      } catch (error) {
        // The messages stay held: a batch spans partitions, and only the partition whose delivery
        // failed is delivered again; the others' messages would otherwise be gone until a restart.
        this.failure = error;
        throw error;
      }
      for (const prev of taken) this.byPrev.delete(prev);
      // the consumer redelivers a failed batch: once it applies, the runner is healthy again
      this.failure = undefined;
      this.applied = at;
      for (const w of this.waiters) {
        if (w.position <= this.applied) {
          this.waiters.delete(w);
          w.resolve();
        }
      }
    }
    // Anything left at or below the checkpoint is a duplicate of an applied event.
    for (const prev of this.byPrev.keys()) {
      if (prev < this.applied) this.byPrev.delete(prev);
    }
  }

  /** Per partition, the last offset such that it and everything before it is applied. */
  private committable(): BusOffset[] {
    const out: BusOffset[] = [];
    for (const queue of this.queues.values()) {
      let last: string | undefined;
      while (queue.entries.length > 0 && queue.entries[0]!.position <= this.applied) {
        last = queue.entries.shift()!.offset;
      }
      if (last !== undefined) {
        out.push({ topic: queue.topic, partition: queue.partition, offset: last });
      }
    }
    return out;
  }

  /**
   * Bounds memory when one partition runs far ahead of another: partitions that have messages
   * held back are paused (the next event needed is never among them), and resumed once drained.
   */
  private flowControl(sub: BusSubscription): void {
    const max = this.options.maxBuffered ?? 10_000;
    if (this.byPrev.size > max) {
      for (const [key, queue] of this.queues) {
        if (queue.entries.length > 0 && !this.paused.has(key)) {
          this.paused.add(key);
          sub.pause(queue.topic, queue.partition);
        }
      }
    } else if (this.byPrev.size <= max / 2 && this.paused.size > 0) {
      for (const key of this.paused) {
        const queue = this.queues.get(key)!;
        sub.resume(queue.topic, queue.partition);
      }
      this.paused.clear();
    }
  }
}
