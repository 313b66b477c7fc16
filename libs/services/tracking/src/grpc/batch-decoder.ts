/**
 * A decoder for the two streamed ingest requests (StreamMetricsRequest, IngestMetricsRequest: field
 * 1 is a MetricBatch) that reads the packed columns straight into typed arrays: int64 steps and
 * timestamps become numbers without the Long/string round trip of the generated decoder, and
 * values are copied as raw little-endian doubles. It reads the canonical proto3 encoding (packed
 * repeated fields, each column once per run); anything else (unpacked columns, a column split in
 * two) returns undefined and the caller falls back to the generated decoder, which accepts every
 * valid encoding. Unknown fields are skipped, as the generated decoder skips them.
 */

/** One run's columns, as typed arrays. */
export interface DecodedRunPoints {
  readonly runId: string;
  readonly keys: string[];
  readonly keyIndex: Uint32Array;
  readonly steps: Float64Array;
  readonly timestamps: Float64Array;
  readonly values: Float64Array;
}

export interface DecodedMetricBatch {
  readonly clientId: string;
  readonly clientBatchId: string;
  readonly runs: DecodedRunPoints[];
}

const TWO_32 = 4294967296;
const EMPTY_U32 = new Uint32Array(0);
const EMPTY_F64 = new Float64Array(0);

class Unsupported extends Error {}

/** Bounds-checked reads over one protobuf message. */
class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  byte(): number {
    if (this.pos >= this.end) throw new RangeError('premature end of input');
    return this.buf[this.pos++]!;
  }

  /** A varint as uint32 (higher bits dropped, as protobuf does for uint32). */
  uint32(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      if (shift < 28) value |= (b & 0x7f) << shift;
      else value |= (b & 0x0f) << 28;
      if (b < 0x80) return value >>> 0;
    }
    // the rest of a 10-byte varint
    for (let i = 0; i < 5; i++) if (this.byte() < 0x80) return value >>> 0;
    throw new RangeError('invalid varint');
  }

  /** A varint as int64, converted to a number; beyond +-2^53 it throws as longToNumber does. */
  int64(): number {
    let lo = 0;
    let hi = 0;
    let b = 0;
    let done = false;
    for (let shift = 0; shift < 28; shift += 7) {
      b = this.byte();
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        done = true;
        break;
      }
    }
    if (!done) {
      b = this.byte();
      lo |= (b & 0x0f) << 28;
      hi = (b & 0x7f) >> 4;
      if (b >= 0x80) {
        for (let shift = 3; shift < 32; shift += 7) {
          b = this.byte();
          hi |= (b & 0x7f) << shift;
          if (b < 0x80) {
            done = true;
            break;
          }
        }
        if (!done) throw new RangeError('invalid varint');
      }
    }
    let n: number;
    if (hi & 0x80000000) n = -((~hi >>> 0) * TWO_32 + (~lo >>> 0) + 1);
    else n = (hi >>> 0) * TWO_32 + (lo >>> 0);
    if (n > Number.MAX_SAFE_INTEGER)
      throw new Error('Value is larger than Number.MAX_SAFE_INTEGER');
    if (n < Number.MIN_SAFE_INTEGER)
      throw new Error('Value is smaller than Number.MIN_SAFE_INTEGER');
    return n;
  }

  /** Length of a length-delimited field; returns its end. */
  delimited(): number {
    const length = this.uint32();
    const end = this.pos + length;
    if (end > this.end) throw new RangeError('premature end of input');
    return end;
  }

  string(): string {
    const end = this.delimited();
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        while (this.byte() >= 0x80);
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.pos = this.delimited();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        // groups (3, 4) and invalid wire types: let the generated decoder judge them
        throw new Unsupported();
    }
    if (this.pos > this.end) throw new RangeError('premature end of input');
  }
}

/** Varints in [pos, end): the count of bytes without the continuation bit. */
function varintCount(buf: Buffer, pos: number, end: number): number {
  let n = 0;
  for (let i = pos; i < end; i++) if (buf[i]! < 0x80) n++;
  return n;
}

function packedUint32(r: Reader): Uint32Array {
  const end = r.delimited();
  const out = new Uint32Array(varintCount(r.buf, r.pos, end));
  for (let i = 0; r.pos < end; i++) out[i] = r.uint32();
  if (r.pos !== end) throw new RangeError('invalid packed field');
  return out;
}

function packedInt64(r: Reader): Float64Array {
  const end = r.delimited();
  const out = new Float64Array(varintCount(r.buf, r.pos, end));
  for (let i = 0; r.pos < end; i++) out[i] = r.int64();
  if (r.pos !== end) throw new RangeError('invalid packed field');
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

function packedDouble(r: Reader): Float64Array {
  const end = r.delimited();
  const bytes = end - r.pos;
  if (bytes % 8 !== 0) throw new RangeError('invalid packed double field');
  const out = new Float64Array(bytes / 8);
  const view = new Uint8Array(out.buffer);
  view.set(r.buf.subarray(r.pos, end));
  if (!LITTLE_ENDIAN) Buffer.from(out.buffer).swap64();
  r.pos = end;
  return out;
}

function runPoints(r: Reader, end: number): DecodedRunPoints {
  let runId = '';
  const keys: string[] = [];
  let keyIndex: Uint32Array | undefined;
  let steps: Float64Array | undefined;
  let timestamps: Float64Array | undefined;
  let values: Float64Array | undefined;
  const once = <T>(seen: T | undefined): void => {
    if (seen !== undefined) throw new Unsupported();
  };
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        runId = r.string();
        break;
      case 18:
        keys.push(r.string());
        break;
      case 26:
        once(keyIndex);
        keyIndex = packedUint32(r);
        break;
      case 34:
        once(steps);
        steps = packedInt64(r);
        break;
      case 42:
        once(timestamps);
        timestamps = packedInt64(r);
        break;
      case 50:
        once(values);
        values = packedDouble(r);
        break;
      case 24:
      case 32:
      case 40:
      case 49:
        throw new Unsupported(); // an unpacked column
      default:
        if (tag === 0) throw new RangeError('invalid tag 0');
        r.skip(tag & 7);
    }
  }
  if (r.pos !== end) throw new RangeError('premature end of input');
  return {
    runId,
    keys,
    keyIndex: keyIndex ?? EMPTY_U32,
    steps: steps ?? EMPTY_F64,
    timestamps: timestamps ?? EMPTY_F64,
    values: values ?? EMPTY_F64,
  };
}

function metricBatch(r: Reader, end: number): DecodedMetricBatch {
  let clientId = '';
  let clientBatchId = '';
  const runs: DecodedRunPoints[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) clientId = r.string();
    else if (tag === 18) clientBatchId = r.string();
    else if (tag === 26) {
      const runEnd = r.delimited();
      runs.push(runPoints(r, runEnd));
      r.pos = runEnd;
    } else if (tag === 0) throw new RangeError('invalid tag 0');
    else r.skip(tag & 7);
  }
  if (r.pos !== end) throw new RangeError('premature end of input');
  return { clientId, clientBatchId, runs };
}

/**
 * Decodes a StreamMetricsRequest or IngestMetricsRequest ({ batch }); undefined when the bytes use
 * an encoding this reader leaves to the generated decoder. Throws on bytes that are not a valid
 * message, or an int64 beyond 2^53 (with the generated decoder's message).
 */
export function decodeMetricRequest(buf: Buffer): { batch?: DecodedMetricBatch } | undefined {
  const r = new Reader(buf, 0, buf.length);
  let batch: DecodedMetricBatch | undefined;
  try {
    while (r.pos < r.end) {
      const tag = r.uint32();
      if (tag === 10) {
        if (batch !== undefined) return undefined; // a message split in two: merge semantics
        const end = r.delimited();
        batch = metricBatch(r, end);
        r.pos = end;
      } else if (tag === 0) throw new RangeError('invalid tag 0');
      else r.skip(tag & 7);
    }
  } catch (e) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  }
  return batch === undefined ? {} : { batch };
}

/** The fast decoder with the generated one behind it for encodings it leaves alone. */
export function metricRequestDecoder<T>(generated: (buf: Buffer) => T): (buf: Buffer) => T {
  return (buf) => (decodeMetricRequest(buf) as T | undefined) ?? generated(buf);
}
