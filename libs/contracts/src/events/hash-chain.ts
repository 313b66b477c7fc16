import { createHash } from 'node:crypto';
import type { RecordedEvent } from './envelope.js';

/** The prevHash of the first event in a log. */
export const GENESIS_HASH = '0'.repeat(64);

/** The fields of a stored event that its hash covers; `dataJson` is the exact stored JSON text. */
export interface HashedEventFields {
  readonly id: string;
  readonly stream: string;
  readonly revision: number;
  readonly position: number;
  readonly type: string;
  readonly schemaVersion: number;
  readonly occurredAt: number;
  readonly actor: string;
  readonly correlationId: string;
  readonly causationId: string | null;
  readonly traceId: string | null;
  readonly reason: string | null;
  readonly dataJson: string;
  readonly prevHash: string;
}

/**
 * sha256 (hex) over an event's header, its data as stored, and the previous event's hash.
 * The header is a JSON array in fixed field order, so the encoding is unambiguous.
 */
export function computeEventHash(f: HashedEventFields): string {
  const header = JSON.stringify([
    'ledgerflow.event.v1',
    f.id,
    f.stream,
    f.revision,
    f.position,
    f.type,
    f.schemaVersion,
    f.occurredAt,
    f.actor,
    f.correlationId,
    f.causationId,
    f.traceId,
    f.reason,
    f.prevHash,
  ]);
  return createHash('sha256').update(header).update('\n').update(f.dataJson).digest('hex');
}

/** Hash fields of a recorded event whose data is re-serialised with JSON.stringify. */
export function hashFieldsOf(
  event: RecordedEvent,
  dataJson = JSON.stringify(event.data),
): HashedEventFields {
  return {
    id: event.id,
    stream: event.stream,
    revision: event.revision,
    position: event.position,
    type: event.type,
    schemaVersion: event.schemaVersion,
    occurredAt: event.occurredAt,
    actor: event.metadata.actor,
    correlationId: event.metadata.correlationId,
    causationId: event.metadata.causationId,
    traceId: event.metadata.traceId ?? null,
    reason: event.metadata.reason ?? null,
    dataJson,
    prevHash: event.prevHash,
  };
}

/** The first place where a chain of events fails verification. */
export interface ChainBreak {
  readonly position: number;
  readonly eventId: string | null;
  readonly reason: string;
}

export type ChainVerification =
  | {
      readonly ok: true;
      readonly count: number;
      readonly headPosition: number;
      readonly headHash: string;
    }
  | ({ readonly ok: false; readonly count: number } & ChainBreak);

/**
 * Verifies a log read in position order: positions are contiguous from 1, every prevHash links to
 * the previous hash, and every hash matches the content.
 */
export function verifyChain(
  events: Iterable<{ readonly fields: HashedEventFields; readonly hash: string }>,
): ChainVerification {
  let expectedPosition = 1;
  let prev = GENESIS_HASH;
  let count = 0;
  for (const { fields, hash } of events) {
    if (fields.position !== expectedPosition) {
      return {
        ok: false,
        count,
        position: expectedPosition,
        eventId: null,
        reason: `event at position ${expectedPosition} is missing (next stored position is ${fields.position}, id ${fields.id})`,
      };
    }
    if (fields.prevHash !== prev) {
      return {
        ok: false,
        count,
        position: fields.position,
        eventId: fields.id,
        reason: `prev_hash does not link to the hash of position ${fields.position - 1}`,
      };
    }
    if (computeEventHash(fields) !== hash) {
      return {
        ok: false,
        count,
        position: fields.position,
        eventId: fields.id,
        reason: 'content does not match its hash (the event was edited)',
      };
    }
    prev = hash;
    expectedPosition += 1;
    count += 1;
  }
  return { ok: true, count, headPosition: expectedPosition - 1, headHash: prev };
}
