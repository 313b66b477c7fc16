import type { RecordedEvent } from '@ledgerflow/contracts';
import type { TopicSpec } from './topics.js';

/** An event to publish, with the log position of the event published before it on the topic. */
export interface OutgoingEvent {
  readonly event: RecordedEvent;
  /**
   * Position of the previous event of the same source log on this topic (0 before the first), when
   * the publisher publishes the whole log; lets a consumer apply events in exact log order across
   * partitions. Null or absent when unknown (a filtered topic).
   */
  readonly prevPosition?: number | null;
}

/** One delivered message. Offsets are Kafka's (decimal strings); the in-process bus counts from 0. */
export interface BusMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** The stream id (the message key). */
  readonly key: string;
  readonly event: RecordedEvent;
  readonly prevPosition: number | null;
  /** All headers, including `traceparent` when the publisher was traced. */
  readonly headers: Readonly<Record<string, string>>;
}

/** Where a consumer group is done with a partition: `offset` and everything before it. */
export interface BusOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

export interface BusSubscribeOptions {
  /** Consumer group: each group gets every message once; its members share the partitions. */
  readonly groupId: string;
  readonly topics: readonly string[];
  /**
   * Receives the messages fetched from one partition, in partition order. Batches are handed over
   * one at a time. A throw redelivers the batch after a pause (and is reported to `onError`).
   */
  handler(messages: readonly BusMessage[], subscription: BusSubscription): Promise<void>;
  /**
   * `auto` (default): a batch's offsets are committed once the handler resolves. `manual`: only
   * what the handler passes to `subscription.commit` (for consumers that hold messages back).
   */
  readonly commit?: 'auto' | 'manual';
  /** Where a group without committed offsets starts (default: the beginning). */
  readonly fromBeginning?: boolean;
  readonly onError?: (error: unknown) => void;
  /**
   * The subscription stopped by itself and will not resume: the owner must subscribe again to go
   * on. Kafka: the consumer crashed on an error kafkajs does not restart after (a TypeError,
   * RangeError, ReferenceError or SyntaxError thrown by the handler, or an error marked not
   * retriable). Not called for close().
   */
  readonly onStopped?: (error: Error) => void;
}

export interface BusSubscription {
  /** Commits the group's progress: each given message and everything before it in its partition. */
  commit(offsets: readonly BusOffset[]): Promise<void>;
  /** Stops fetching a partition (messages already fetched are still delivered). */
  pause(topic: string, partition: number): void;
  resume(topic: string, partition: number): void;
  /** Leaves the group; resolves after the batch in flight. Uncommitted messages are redelivered to the group later. */
  close(): Promise<void>;
}

/**
 * The event bus port: facts other services react to. Embedded mode uses the in-process adapter,
 * distributed mode Kafka. Messages are keyed by stream id, so one stream's events stay in order.
 */
export interface EventBus {
  /** Creates absent topics (existing ones are left as they are). */
  ensureTopics(topics: readonly TopicSpec[]): Promise<void>;
  /** Publishes in order; resolves once every event is durable (Kafka: acks=all, idempotent producer). */
  publish(topic: string, events: readonly OutgoingEvent[]): Promise<void>;
  subscribe(options: BusSubscribeOptions): Promise<BusSubscription>;
  close(): Promise<void>;
}

/** Message header names. Values are strings; the payload is the event envelope as JSON. */
export const HEADERS = {
  eventId: 'ledgerflow-event-id',
  eventType: 'ledgerflow-event-type',
  schemaVersion: 'ledgerflow-schema-version',
  position: 'ledgerflow-position',
  prevPosition: 'ledgerflow-prev-position',
  contentType: 'content-type',
} as const;

/** Key, payload and headers of an event's message (trace headers are added by the adapter). */
export function encodeEvent(out: OutgoingEvent): {
  key: string;
  value: string;
  headers: Record<string, string>;
} {
  const { event } = out;
  const headers: Record<string, string> = {
    [HEADERS.eventId]: event.id,
    [HEADERS.eventType]: event.type,
    [HEADERS.schemaVersion]: String(event.schemaVersion),
    [HEADERS.position]: String(event.position),
    [HEADERS.contentType]: 'application/json',
  };
  if (out.prevPosition !== undefined && out.prevPosition !== null) {
    headers[HEADERS.prevPosition] = String(out.prevPosition);
  }
  return { key: event.stream, value: JSON.stringify(event), headers };
}

/** The event and chain link of a received message. Throws on a payload that is not an event. */
export function decodeEvent(
  value: string,
  headers: Readonly<Record<string, string>>,
): { event: RecordedEvent; prevPosition: number | null } {
  const event = JSON.parse(value) as RecordedEvent;
  if (
    typeof event !== 'object' ||
    event === null ||
    typeof event.id !== 'string' ||
    typeof event.stream !== 'string' ||
    !Number.isSafeInteger(event.position)
  ) {
    throw new TypeError('message payload is not a recorded event');
  }
  const prev = headers[HEADERS.prevPosition];
  return { event, prevPosition: prev === undefined ? null : Number(prev) };
}
