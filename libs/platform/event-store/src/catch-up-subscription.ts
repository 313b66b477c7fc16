import type { RecordedEvent } from '@ledgerflow/contracts';
import type { SubscribeOptions, Subscription, SubscriptionHandler } from './event-store.js';

/** Wakes waiting subscriptions after each commit; shared by the adapters. */
export class AppendNotifier {
  private readonly listeners = new Set<() => void>();

  /** Registers a wake-up callback; returns its removal. */
  listen(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells every listener the log may have grown. */
  notify(): void {
    for (const listener of this.listeners) listener();
  }
}

/** What a catch-up subscription needs from its store. */
export interface SubscriptionSource {
  readAll(afterPosition: number, maxCount: number): Promise<RecordedEvent[]>;
  readonly notifier: AppendNotifier;
  /**
   * How often an idle subscription re-reads the log on its own, for appends that no in-process
   * notification announces (another process writing the same SQLite file). Undefined: never.
   */
  readonly pollIntervalMs?: number;
}

const DEFAULT_BATCH_SIZE = 1000;

/**
 * Reads the log in batches from a position and hands each batch to the handler, one at a time;
 * when caught up it sleeps until a commit notification, a poll tick or close().
 */
export class CatchUpSubscription implements Subscription {
  private current: number;
  private closed = false;
  /** Set by a wake-up that arrives while a read or handler is in flight, so it is not lost. */
  private signalled = false;
  private wake: (() => void) | undefined;
  private failure: { error: unknown } | undefined;
  private readonly stopListening: () => void;
  private readonly done: Promise<void>;

  constructor(
    private readonly source: SubscriptionSource,
    afterPosition: number,
    private readonly handler: SubscriptionHandler,
    private readonly options: SubscribeOptions = {},
  ) {
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    }
    this.current = Math.max(0, afterPosition);
    this.stopListening = source.notifier.listen(() => this.signal());
    this.done = this.run(batchSize);
  }

  get position(): number {
    return this.current;
  }

  /** Settles (never rejects) once delivery has ended, by close() or by an error. */
  get stopped(): Promise<void> {
    return this.done;
  }

  /** Stops delivery; resolves after the in-flight batch, or rejects with the handler's error when no onError was given. */
  async close(): Promise<void> {
    this.closed = true;
    this.signal();
    await this.done;
    if (this.failure !== undefined && this.options.onError === undefined) throw this.failure.error;
  }

  private signal(): void {
    this.signalled = true;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async run(batchSize: number): Promise<void> {
    try {
      while (!this.closed) {
        this.signalled = false;
        const batch = await this.source.readAll(this.current, batchSize);
        if (this.closed) break;
        const last = batch.at(-1);
        if (last === undefined) {
          if (!this.signalled) await this.idle();
          continue;
        }
        await this.handler(batch);
        this.current = last.position;
      }
    } catch (error: unknown) {
      this.failure = { error };
      this.options.onError?.(error);
    } finally {
      this.stopListening();
    }
  }

  private idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      this.wake = () => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
      if (this.source.pollIntervalMs !== undefined) {
        timer = setTimeout(() => this.signal(), this.source.pollIntervalMs);
        // A quiet subscription alone should not keep a process (or a test runner) alive.
        timer.unref();
      }
    });
  }
}
