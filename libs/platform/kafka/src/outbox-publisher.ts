import type { RecordedEvent } from '@ledgerflow/contracts';
import type { EventStore, Subscription } from '@ledgerflow/event-store';
import type { LedgerflowMetrics } from '@ledgerflow/telemetry';
import type { CheckpointStore } from './checkpoints.js';
import type { EventBus, OutgoingEvent } from './event-bus.js';

export interface OutboxPublisherOptions {
  /** Checkpoint name and metrics label, unique per log and topic (e.g. `outbox:tracking`). */
  readonly name: string;
  readonly eventStore: EventStore;
  readonly bus: EventBus;
  readonly checkpoints: CheckpointStore;
  /** Every event of the log goes to this topic, keyed by its stream id. */
  readonly topic: string;
  /**
   * How often an idle publisher re-reads the log for appends of other processes (default 250 ms);
   * appends in this process wake it at once.
   */
  readonly idlePollMs?: number;
  /** Largest number of events per send (default 500). */
  readonly batchSize?: number;
  /** First and largest pause between retries of a failed send (default 200 ms and 5 s). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  readonly metrics?: LedgerflowMetrics;
  readonly log?: (level: 'warn' | 'info', message: string) => void;
}

export interface OutboxStatus {
  /** Last position published and checkpointed. */
  readonly position: number;
  readonly running: boolean;
  /** Consecutive failed sends (0 when healthy) and the last error. */
  readonly failures: number;
  readonly lastError: string | null;
}

/**
 * Publishes committed events from the event store to the bus: reads the log after the stored
 * checkpoint, publishes a batch (resolved only once Kafka has it durably: acks=all, idempotent
 * producer), then stores the batch's last position as the checkpoint. An event is therefore never
 * lost between the store and Kafka, and a crash between a send and its checkpoint republishes at
 * most that unacknowledged tail; consumers drop the duplicates by log position.
 *
 * Each message names the previous event's position (`ledgerflow-prev-position`), so a consumer can
 * rebuild exact log order across partitions.
 */
export class OutboxPublisher {
  private position = 0;
  private running = false;
  private failures = 0;
  private lastError: string | null = null;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private stopWake: (() => void) | undefined;
  private signalled = false;
  private notifier: Subscription | undefined;
  private readonly waiters = new Set<{ position: number; resolve: () => void }>();

  constructor(private readonly options: OutboxPublisherOptions) {}

  /** Loads the checkpoint and starts publishing in the background. */
  async start(): Promise<void> {
    if (this.running) return;
    await this.options.bus.ensureTopics([{ name: this.options.topic }]);
    this.position = await this.options.checkpoints.load(this.options.name);
    this.running = true;
    // Appends in this process wake the loop at once; a poll (idlePollMs) covers other writers.
    const head = await this.options.eventStore.headPosition();
    this.notifier = this.options.eventStore.subscribe(head, () => this.signal(), { batchSize: 1 });
    this.options.metrics?.outboxCheckpoint.set({ publisher: this.options.name }, this.position);
    this.loop = this.run();
  }

  /** Stops after the send in flight (its checkpoint is stored if it succeeded). */
  async stop(): Promise<void> {
    this.running = false;
    this.stopWake?.();
    await this.notifier?.close().catch(() => {});
    await this.loop;
    for (const w of this.waiters) w.resolve();
    this.waiters.clear();
  }

  status(): OutboxStatus {
    return {
      position: this.position,
      running: this.running,
      failures: this.failures,
      lastError: this.lastError,
    };
  }

  /** Resolves once everything up to `position` is published and checkpointed. */
  waitFor(position: number, timeoutMs = 30_000): Promise<void> {
    if (this.position >= position) return Promise.resolve();
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
            `outbox '${this.options.name}' did not reach position ${position} within ${timeoutMs} ms (at ${this.position}${this.lastError !== null ? `; last error: ${this.lastError}` : ''})`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private signal(): void {
    this.signalled = true;
    this.wakeUp?.();
  }

  /** Sleeps `ms`; stop() ends it, and so does an append when `wakeOnAppend`. */
  private sleep(ms: number, wakeOnAppend: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        this.stopWake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = wakeOnAppend ? done : undefined;
      this.stopWake = done;
    });
  }

  private async run(): Promise<void> {
    const { eventStore, bus, checkpoints, topic, name, metrics } = this.options;
    const batchSize = this.options.batchSize ?? 500;
    const minDelay = this.options.retryMinMs ?? 200;
    const maxDelay = this.options.retryMaxMs ?? 5000;
    while (this.running) {
      this.signalled = false;
      let events: RecordedEvent[];
      try {
        events = await eventStore.readAll(this.position, batchSize);
        if (events.length === 0) {
          const head = await eventStore.headPosition();
          metrics?.outboxDepth.set({ publisher: name }, Math.max(0, head - this.position));
          if (!this.signalled) await this.sleep(this.options.idlePollMs ?? 250, true);
          continue;
        }
        let prev = this.position;
        const outgoing: OutgoingEvent[] = events.map((event) => {
          const out = { event, prevPosition: prev };
          prev = event.position;
          return out;
        });
        await bus.publish(topic, outgoing);
        const last = events.at(-1)!;
        await checkpoints.save(name, last);
        this.position = last.position;
        this.failures = 0;
        this.lastError = null;
        metrics?.outboxPublished.inc({ publisher: name, topic }, events.length);
        metrics?.outboxCheckpoint.set({ publisher: name }, this.position);
        const head = await eventStore.headPosition();
        metrics?.outboxDepth.set({ publisher: name }, Math.max(0, head - this.position));
        for (const w of this.waiters) {
          if (w.position <= this.position) {
            this.waiters.delete(w);
            w.resolve();
          }
        }
      } catch (error) {
        this.failures++;
        this.lastError = error instanceof Error ? error.message : String(error);
        const delay = Math.min(maxDelay, minDelay * 2 ** Math.min(this.failures - 1, 10));
        this.options.log?.(
          'warn',
          `outbox '${name}': publishing after position ${this.position} failed (attempt ${this.failures}, retry in ${delay} ms): ${this.lastError}`,
        );
        if (this.running) await this.sleep(delay, false);
      }
    }
  }
}
