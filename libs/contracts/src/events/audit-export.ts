import type { RecordedEvent } from './envelope.js';
import { computeEventHash, GENESIS_HASH, type HashedEventFields } from './hash-chain.js';

/**
 * One line of an audit export (JSON Lines): the whole stored event with its hash-chain link, so a
 * file can be re-hashed offline. `data` is the event data as stored; its JSON.stringify text is what
 * the hash covers (the store writes exactly that text).
 */
export interface AuditExportLine {
  readonly position: number;
  readonly id: string;
  readonly stream: string;
  readonly revision: number;
  readonly type: string;
  readonly schemaVersion: number;
  readonly occurredAt: number;
  readonly metadata: {
    readonly actor: string;
    readonly correlationId: string;
    readonly causationId: string | null;
    readonly traceId: string | null;
    readonly reason: string | null;
  };
  readonly data: unknown;
  readonly prevHash: string;
  readonly hash: string;
}

/** The export line of a recorded event (one JSON object, no trailing newline). */
export function auditExportLine(event: RecordedEvent): string {
  const line: AuditExportLine = {
    position: event.position,
    id: event.id,
    stream: event.stream,
    revision: event.revision,
    type: event.type,
    schemaVersion: event.schemaVersion,
    occurredAt: event.occurredAt,
    metadata: {
      actor: event.metadata.actor,
      correlationId: event.metadata.correlationId,
      causationId: event.metadata.causationId,
      traceId: event.metadata.traceId ?? null,
      reason: event.metadata.reason ?? null,
    },
    data: event.data,
    prevHash: event.prevHash,
    hash: event.hash,
  };
  return JSON.stringify(line);
}

/** Result of checking an export: where it starts and ends, or the first line that fails. */
export type AuditExportVerification =
  | {
      readonly ok: true;
      readonly count: number;
      /** First and last positions in the file (0 when the file holds no events). */
      readonly fromPosition: number;
      readonly toPosition: number;
      /** The prevHash the file starts from: GENESIS_HASH when it starts at position 1. */
      readonly anchorHash: string;
      readonly headHash: string;
    }
  | {
      readonly ok: false;
      readonly count: number;
      /** 1-based line number in the file. */
      readonly line: number;
      readonly position: number | null;
      readonly eventId: string | null;
      readonly reason: string;
    };

type ParsedLine = { fields: HashedEventFields; hash: string } | { error: string };

const str = (v: unknown): v is string => typeof v === 'string';
const int = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const strOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

function parseLine(text: string): ParsedLine & { position?: number; id?: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { error: 'not valid JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return { error: 'not a JSON object' };
  const o = raw as Record<string, unknown>;
  const m = o['metadata'] as Record<string, unknown> | undefined;
  const position = int(o['position']) ? o['position'] : undefined;
  const id = str(o['id']) ? o['id'] : undefined;
  const where = {
    ...(position === undefined ? {} : { position }),
    ...(id === undefined ? {} : { id }),
  };
  if (
    position === undefined ||
    id === undefined ||
    !str(o['stream']) ||
    !int(o['revision']) ||
    !str(o['type']) ||
    !int(o['schemaVersion']) ||
    !int(o['occurredAt']) ||
    typeof m !== 'object' ||
    m === null ||
    !str(m['actor']) ||
    !str(m['correlationId']) ||
    !strOrNull(m['causationId']) ||
    !strOrNull(m['traceId'] ?? null) ||
    !strOrNull(m['reason'] ?? null) ||
    !('data' in o) ||
    !str(o['prevHash']) ||
    !str(o['hash'])
  )
    return { ...where, error: 'a required field is missing or has the wrong type' };
  return {
    ...where,
    hash: o['hash'],
    fields: {
      id,
      stream: o['stream'],
      revision: o['revision'],
      position,
      type: o['type'],
      schemaVersion: o['schemaVersion'],
      occurredAt: o['occurredAt'],
      actor: m['actor'],
      correlationId: m['correlationId'],
      causationId: m['causationId'],
      traceId: (m['traceId'] ?? null) as string | null,
      reason: (m['reason'] ?? null) as string | null,
      dataJson: JSON.stringify(o['data']),
      prevHash: o['prevHash'],
    },
  };
}

/**
 * Checks an export line by line, without holding the file: push each line, then ask for the
 * result. Stops at the first failure (later pushes are ignored).
 */
export class AuditExportVerifier {
  private lineNo = 0;
  private count = 0;
  private prev: string | undefined;
  private expected = 0;
  private from = 0;
  private anchor = GENESIS_HASH;
  private failure: AuditExportVerification | undefined;

  /** Checks one line (blank lines are ignored); false once the export has failed. */
  push(text: string): boolean {
    if (this.failure !== undefined) return false;
    this.lineNo += 1;
    if (text.trim() === '') return true;
    const parsed = parseLine(text);
    const fail = (reason: string): false => {
      this.failure = {
        ok: false,
        count: this.count,
        line: this.lineNo,
        position: parsed.position ?? null,
        eventId: parsed.id ?? null,
        reason,
      };
      return false;
    };
    if ('error' in parsed) return fail(parsed.error);
    const { fields, hash } = parsed;
    if (this.prev === undefined) {
      this.from = fields.position;
      this.anchor = fields.prevHash;
      if (fields.position === 1 && fields.prevHash !== GENESIS_HASH)
        return fail('position 1 must link to the genesis hash');
    } else {
      if (fields.position !== this.expected)
        return fail(
          `expected position ${this.expected} next, found ${fields.position} (events missing or reordered)`,
        );
      if (fields.prevHash !== this.prev)
        return fail(`prev_hash does not link to the hash of position ${fields.position - 1}`);
    }
    if (computeEventHash(fields) !== hash)
      return fail('content does not match its hash (the event was edited)');
    this.prev = hash;
    this.expected = fields.position + 1;
    this.count += 1;
    return true;
  }

  /** The verdict on the lines pushed so far. */
  result(): AuditExportVerification {
    if (this.failure !== undefined) return this.failure;
    return {
      ok: true,
      count: this.count,
      fromPosition: this.from,
      toPosition: this.count === 0 ? 0 : this.expected - 1,
      anchorHash: this.anchor,
      headHash: this.prev ?? this.anchor,
    };
  }
}

/**
 * Checks an export offline: every line parses, positions are contiguous, every prevHash links to
 * the previous line's hash (the first line's to GENESIS_HASH when it is position 1), and every hash
 * matches its line's content. Blank lines are ignored. A file that starts after position 1 is
 * anchored on its first prevHash; compare that with a trusted head to tie it to the full log.
 */
export function verifyAuditExport(lines: Iterable<string>): AuditExportVerification {
  const verifier = new AuditExportVerifier();
  for (const line of lines) if (!verifier.push(line)) break;
  return verifier.result();
}
