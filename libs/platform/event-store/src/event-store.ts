import type { ChainVerification, NewEvent, RecordedEvent } from '@ledgerflow/contracts';

/**
 * What the writer believes about a stream before appending:
 * a revision number (0-based, the stream's last event), `no_stream`, `stream_exists` or `any`.
 */
export type ExpectedRevision = number | 'any' | 'no_stream' | 'stream_exists';

/** One stream's part of an atomic append. */
export interface StreamWrite {
  readonly stream: string;
  readonly expectedRevision: ExpectedRevision;
  readonly events: readonly NewEvent[];
}

export interface AppendResult {
  /** The stored events, in log order. */
  readonly events: readonly RecordedEvent[];
  /** Position of the last stored event (the head of the log after this append). */
  readonly lastPosition: number;
  /** Each written stream's new revision. */
  readonly revisions: ReadonlyMap<string, number>;
}

export interface ReadStreamOptions {
  /** First revision to return (default 0). */
  readonly fromRevision?: number;
  readonly maxCount?: number;
}

/** Called with each batch of events in log order; the next batch waits for the promise. */
export type SubscriptionHandler = (events: readonly RecordedEvent[]) => Promise<void> | void;

export interface SubscribeOptions {
  /** Largest batch handed to the handler (default 1000). */
  readonly batchSize?: number;
  /** Called when the handler throws; the subscription stops. */
  readonly onError?: (error: unknown) => void;
}

export interface Subscription {
  /** Position of the last event handed to the handler and completed. */
  readonly position: number;
  /** Stops delivery; resolves after the in-flight batch completes. */
  close(): Promise<void>;
}

/** The append-only event log port. Every adapter passes the shared contract suite in libs/testing. */
export interface EventStore {
  /**
   * Appends events to one stream if its revision matches; all or nothing. Rejects with
   * WrongExpectedRevisionError on a conflict, DuplicateEventIdError for a known event id, and
   * RangeError for an empty `events` list (nothing to append is a caller bug, not a no-op).
   */
  append(
    stream: string,
    expectedRevision: ExpectedRevision,
    events: readonly NewEvent[],
  ): Promise<AppendResult>;
  /**
   * Appends to several streams atomically: every expectation holds and all events are stored, or
   * nothing is. A write with no events only asserts its stream's revision; at least one write must
   * carry events, and a stream may appear only once.
   */
  appendMulti(writes: readonly StreamWrite[]): Promise<AppendResult>;
  /** A stream's events from a revision on, in revision order; empty when the stream does not exist. */
  readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /** The stream's last revision, or -1 when it does not exist. */
  streamRevision(stream: string): Promise<number>;
  /**
   * Events with position greater than `afterPosition`, in log order. A page may hold fewer than
   * `maxCount` events (an adapter may cap a page's size in bytes); only an empty page means the end.
   */
  readAll(afterPosition: number, maxCount?: number): Promise<RecordedEvent[]>;
  /** Position of the last event in the log, 0 when empty. */
  headPosition(): Promise<number>;
  /** Catch-up subscription: delivers every event after `afterPosition`, then new ones as they are appended. */
  subscribe(
    afterPosition: number,
    handler: SubscriptionHandler,
    options?: SubscribeOptions,
  ): Subscription;
  /** Re-hashes the whole log and checks every link and the stored head. */
  verify(): Promise<ChainVerification>;
  close(): Promise<void>;
}

/** The stream's actual revision did not match the expected one; nothing was written. */
export class WrongExpectedRevisionError extends Error {
  override readonly name = 'WrongExpectedRevisionError';
  constructor(
    readonly stream: string,
    readonly expected: ExpectedRevision,
    readonly actual: number,
  ) {
    super(
      `wrong expected revision for stream '${stream}': expected ${String(expected)}, actual ${actual === -1 ? 'no_stream' : actual}`,
    );
  }
}

/** Whether `actual` (-1 for an absent stream) satisfies `expected`. */
export function revisionMatches(expected: ExpectedRevision, actual: number): boolean {
  switch (expected) {
    case 'any':
      return true;
    case 'no_stream':
      return actual === -1;
    case 'stream_exists':
      return actual >= 0;
    default:
      return actual === expected;
  }
}
