import { GENESIS_HASH, verifyChain } from '@ledgerflow/contracts';
import type { ChainVerification, NewEvent, RecordedEvent } from '@ledgerflow/contracts';
import {
  checkMaxCount,
  DuplicateEventIdError,
  prepareWrites,
  sealEvent,
  toRecordedEvent,
} from './append-preparation.js';
import type { SealedEvent } from './append-preparation.js';
import { AppendNotifier, CatchUpSubscription } from './catch-up-subscription.js';
import { revisionMatches, WrongExpectedRevisionError } from './event-store.js';
import type {
  AppendResult,
  EventStore,
  ExpectedRevision,
  ReadStreamOptions,
  StreamWrite,
  SubscribeOptions,
  Subscription,
  SubscriptionHandler,
} from './event-store.js';

/**
 * The event log in process memory, for tests and throwaway runs. Same semantics as the SQLite
 * adapter, hash chain included; events are kept as their stored JSON text and parsed on read, so
 * a reader can neither see nor cause later mutation of the data it got.
 */
export class InMemoryEventStore implements EventStore {
  private readonly log: SealedEvent[] = [];
  /** Log indexes (position - 1) of each stream's events, in revision order. */
  private readonly streams = new Map<string, number[]>();
  private readonly ids = new Set<string>();
  private readonly notifier = new AppendNotifier();
  private readonly subscriptions = new Set<CatchUpSubscription>();
  private closed = false;

  async append(
    stream: string,
    expectedRevision: ExpectedRevision,
    events: readonly NewEvent[],
  ): Promise<AppendResult> {
    return this.appendMulti([{ stream, expectedRevision, events }]);
  }

  async appendMulti(writes: readonly StreamWrite[]): Promise<AppendResult> {
    this.assertOpen();
    const prepared = prepareWrites(writes);
    // Check everything before changing anything, so a failed append writes nothing.
    for (const write of prepared) {
      const actual = this.revisionOf(write.stream);
      if (!revisionMatches(write.expectedRevision, actual)) {
        throw new WrongExpectedRevisionError(write.stream, write.expectedRevision, actual);
      }
      for (const { event } of write.events) {
        if (this.ids.has(event.id)) throw new DuplicateEventIdError(event.id);
      }
    }
    const recorded: RecordedEvent[] = [];
    const revisions = new Map<string, number>();
    for (const write of prepared) {
      const indexes = this.streams.get(write.stream) ?? [];
      for (const p of write.events) {
        const position = this.log.length + 1;
        const sealed = sealEvent(p, write.stream, indexes.length, position, this.headHash());
        this.log.push(sealed);
        indexes.push(position - 1);
        this.ids.add(p.event.id);
        recorded.push(toRecordedEvent(sealed, p.event.data));
      }
      if (indexes.length > 0) this.streams.set(write.stream, indexes);
      revisions.set(write.stream, this.revisionOf(write.stream));
    }
    this.notifier.notify();
    return { events: recorded, lastPosition: this.log.length, revisions };
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    checkMaxCount(options.maxCount);
    const indexes = this.streams.get(stream) ?? [];
    const from = Math.max(0, options.fromRevision ?? 0);
    const to = options.maxCount === undefined ? indexes.length : from + options.maxCount;
    return indexes.slice(from, to).map((i) => toRecordedEvent(this.log[i]!));
  }

  async streamRevision(stream: string): Promise<number> {
    return this.revisionOf(stream);
  }

  async readAll(afterPosition: number, maxCount?: number): Promise<RecordedEvent[]> {
    checkMaxCount(maxCount);
    const from = Math.max(0, afterPosition);
    const to = maxCount === undefined ? this.log.length : from + maxCount;
    return this.log.slice(from, to).map((sealed) => toRecordedEvent(sealed));
  }

  async headPosition(): Promise<number> {
    return this.log.length;
  }

  subscribe(
    afterPosition: number,
    handler: SubscriptionHandler,
    options?: SubscribeOptions,
  ): Subscription {
    this.assertOpen();
    const subscription = new CatchUpSubscription(
      { readAll: (after, max) => this.readAll(after, max), notifier: this.notifier },
      afterPosition,
      handler,
      options,
    );
    this.subscriptions.add(subscription);
    void subscription.stopped.then(() => this.subscriptions.delete(subscription));
    return subscription;
  }

  async verify(): Promise<ChainVerification> {
    return verifyChain(this.log);
  }

  async close(): Promise<void> {
    this.closed = true;
    // A subscription that already failed reported through onError or rejects its own close().
    await Promise.allSettled([...this.subscriptions].map((s) => s.close()));
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('event store is closed');
  }

  private revisionOf(stream: string): number {
    return (this.streams.get(stream)?.length ?? 0) - 1;
  }

  private headHash(): string {
    return this.log.at(-1)?.hash ?? GENESIS_HASH;
  }
}
