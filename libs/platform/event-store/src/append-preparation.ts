import { computeEventHash } from '@ledgerflow/contracts';
import type { HashedEventFields, NewEvent, RecordedEvent } from '@ledgerflow/contracts';
import type { ExpectedRevision, StreamWrite } from './event-store.js';

/** An event id is already in the log (or twice in one append); nothing was written. */
export class DuplicateEventIdError extends Error {
  override readonly name = 'DuplicateEventIdError';
  constructor(readonly eventId: string) {
    super(`event id '${eventId}' is already in the log`);
  }
}

/** A new event with its data serialised once, so the hashed text is exactly the stored text. */
export interface PreparedEvent {
  readonly event: NewEvent;
  readonly dataJson: string;
}

/** One stream's part of an append, validated and serialised before it is queued. */
export interface PreparedWrite {
  readonly stream: string;
  readonly expectedRevision: ExpectedRevision;
  readonly events: readonly PreparedEvent[];
}

/** A stored event's hashed fields and hash: what both adapters keep and what verify() re-checks. */
export interface SealedEvent {
  readonly fields: HashedEventFields;
  readonly hash: string;
}

function checkExpectedRevision(stream: string, expected: ExpectedRevision): void {
  if (typeof expected === 'number') {
    if (!Number.isSafeInteger(expected) || expected < -1) {
      throw new RangeError(
        `stream '${stream}': expected revision must be an integer >= -1, got ${expected}`,
      );
    }
    return;
  }
  if (expected !== 'any' && expected !== 'no_stream' && expected !== 'stream_exists') {
    throw new RangeError(`stream '${stream}': unknown expected revision '${String(expected)}'`);
  }
}

function prepareEvent(stream: string, event: NewEvent): PreparedEvent {
  if (typeof event.id !== 'string' || event.id === '') {
    throw new TypeError(`stream '${stream}': event id must be a non-empty string`);
  }
  if (typeof event.type !== 'string' || event.type === '') {
    throw new TypeError(`event ${event.id}: type must be a non-empty string`);
  }
  if (!Number.isSafeInteger(event.schemaVersion) || event.schemaVersion < 1) {
    throw new TypeError(`event ${event.id}: schemaVersion must be a positive integer`);
  }
  if (!Number.isSafeInteger(event.occurredAt)) {
    throw new TypeError(`event ${event.id}: occurredAt must be integer epoch milliseconds`);
  }
  const { metadata } = event;
  if (typeof metadata.actor !== 'string' || typeof metadata.correlationId !== 'string') {
    throw new TypeError(
      `event ${event.id}: metadata.actor and metadata.correlationId are required`,
    );
  }
  // JSON.stringify returns undefined for undefined/functions; such data could never be re-read.
  const dataJson = JSON.stringify(event.data) as string | undefined;
  if (dataJson === undefined) {
    throw new TypeError(`event ${event.id}: data is not JSON-serialisable`);
  }
  return { event, dataJson };
}

/**
 * Validates and serialises an append before it touches the log, so that a bad request fails on
 * its own instead of inside a shared group-commit transaction.
 * Rejects an append with no events at all (RangeError): a caller with nothing to write should not
 * take a place in the log's ordering, and a silent no-op would hide a decider bug. A write with an
 * empty `events` list inside a non-empty appendMulti is allowed: it only asserts its revision.
 */
export function prepareWrites(writes: readonly StreamWrite[]): PreparedWrite[] {
  const seenStreams = new Set<string>();
  const seenIds = new Set<string>();
  let total = 0;
  const prepared = writes.map((write): PreparedWrite => {
    if (typeof write.stream !== 'string' || write.stream === '') {
      throw new TypeError('stream name must be a non-empty string');
    }
    if (seenStreams.has(write.stream)) {
      throw new TypeError(`stream '${write.stream}' appears more than once in one append`);
    }
    seenStreams.add(write.stream);
    checkExpectedRevision(write.stream, write.expectedRevision);
    const events = write.events.map((event) => {
      const p = prepareEvent(write.stream, event);
      if (seenIds.has(event.id)) throw new DuplicateEventIdError(event.id);
      seenIds.add(event.id);
      return p;
    });
    total += events.length;
    return { stream: write.stream, expectedRevision: write.expectedRevision, events };
  });
  if (total === 0) throw new RangeError('an append needs at least one event');
  return prepared;
}

/** Gives a prepared event its place in the log and its hash-chain link. */
export function sealEvent(
  prepared: PreparedEvent,
  stream: string,
  revision: number,
  position: number,
  prevHash: string,
): SealedEvent {
  const { event, dataJson } = prepared;
  const fields: HashedEventFields = {
    id: event.id,
    stream,
    revision,
    position,
    type: event.type,
    schemaVersion: event.schemaVersion,
    occurredAt: event.occurredAt,
    actor: event.metadata.actor,
    correlationId: event.metadata.correlationId,
    causationId: event.metadata.causationId ?? null,
    traceId: event.metadata.traceId ?? null,
    reason: event.metadata.reason ?? null,
    dataJson,
    prevHash,
  };
  return { fields, hash: computeEventHash(fields) };
}

/**
 * The recorded form of a stored event. Optional metadata comes back as explicit nulls, and `data`
 * is the parsed stored text (what every later reader sees) unless the caller passes it.
 */
export function toRecordedEvent(
  sealed: SealedEvent,
  data: unknown = JSON.parse(sealed.fields.dataJson),
): RecordedEvent {
  const f = sealed.fields;
  return {
    id: f.id,
    stream: f.stream,
    revision: f.revision,
    position: f.position,
    type: f.type,
    schemaVersion: f.schemaVersion,
    occurredAt: f.occurredAt,
    data,
    metadata: {
      actor: f.actor,
      correlationId: f.correlationId,
      causationId: f.causationId,
      traceId: f.traceId,
      reason: f.reason,
    },
    prevHash: f.prevHash,
    hash: sealed.hash,
  };
}

/** Checks an optional count argument: a non-negative integer, or undefined for "no limit". */
export function checkMaxCount(maxCount: number | undefined): void {
  if (maxCount !== undefined && (!Number.isSafeInteger(maxCount) || maxCount < 0)) {
    throw new RangeError(`maxCount must be a non-negative integer, got ${maxCount}`);
  }
}
