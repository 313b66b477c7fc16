import type { ChainVerification, NewEvent } from '@ledgerflow/contracts';
import type {
  AppendResult,
  EventStore,
  ExpectedRevision,
  ReadStreamOptions,
  StreamWrite,
  SubscribeOptions,
  SubscriptionHandler,
} from '@ledgerflow/event-store';

/**
 * An EventStore whose appends take at least `delayMs` longer (a slow or saturated disk), for
 * overload tests. Everything else passes straight through to the real store it wraps.
 */
export class SlowEventStore implements EventStore {
  /** Appends started and not yet finished: how much work the slowness has queued up. */
  pending = 0;
  maxPending = 0;

  constructor(
    private readonly inner: EventStore,
    private readonly delayMs: number,
  ) {}

  private async slow<T>(work: () => Promise<T>): Promise<T> {
    this.pending += 1;
    this.maxPending = Math.max(this.maxPending, this.pending);
    try {
      await new Promise((r) => setTimeout(r, this.delayMs));
      return await work();
    } finally {
      this.pending -= 1;
    }
  }

  append(
    stream: string,
    expectedRevision: ExpectedRevision,
    events: readonly NewEvent[],
  ): Promise<AppendResult> {
    return this.slow(() => this.inner.append(stream, expectedRevision, events));
  }
  appendMulti(writes: readonly StreamWrite[]): Promise<AppendResult> {
    return this.slow(() => this.inner.appendMulti(writes));
  }
  readStream(stream: string, options?: ReadStreamOptions) {
    return this.inner.readStream(stream, options);
  }
  streamRevision(stream: string) {
    return this.inner.streamRevision(stream);
  }
  readAll(afterPosition: number, maxCount?: number) {
    return this.inner.readAll(afterPosition, maxCount);
  }
  headPosition() {
    return this.inner.headPosition();
  }
  subscribe(afterPosition: number, handler: SubscriptionHandler, options?: SubscribeOptions) {
    return this.inner.subscribe(afterPosition, handler, options);
  }
  verify(): Promise<ChainVerification> {
    return this.inner.verify();
  }
  close() {
    return this.inner.close();
  }
}
