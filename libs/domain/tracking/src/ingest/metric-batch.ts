import type { DomainEvent } from '@ledgerflow/contracts';
import type { MetricColumns } from '../run/run.events.js';
import { isMoreRecent, type LatestMetric } from '../read-models/tracking-docs.js';

/**
 * One run's points inside an ingested batch, packed, each column base64-encoded. Packed columns
 * keep a million-point batch cheap to store, hash and replay, and let NaN travel without a side
 * list. Two encodings:
 *  - raw (no `enc`): k a little-endian Uint32Array, s, t and v little-endian Float64Arrays;
 *  - `enc: 'dv'` (written since the delta encoding was added): k as unsigned varints, s and t as
 *    zigzag varints of each entry's difference to the one before (the first to 0), v raw Float64.
 *    Steps and timestamps of a training loop change by small amounts, so a point takes about 11
 *    bytes instead of 28: less to serialise, hash, write, fsync and parse.
 */
export interface PackedRunPoints {
  readonly runId: string;
  readonly keys: readonly string[];
  readonly n: number;
  readonly enc?: 'dv';
  readonly k: string;
  readonly s: string;
  readonly t: string;
  readonly v: string;
}

/** A batch streamed over gRPC: one event per batch, whatever its number of points and runs. */
export type MetricBatchIngested = DomainEvent<
  'MetricBatchIngested',
  {
    readonly clientId: string;
    readonly clientBatchId: string;
    readonly runs: readonly PackedRunPoints[];
  }
>;

export const ingestStream = (clientId: string): string => `ingest-${clientId}`;

/** One run's points as typed columns, whichever event carried them. */
export interface MetricSeries {
  readonly runId: string;
  readonly keys: readonly string[];
  readonly k: ArrayLike<number>;
  readonly s: ArrayLike<number>;
  readonly t: ArrayLike<number>;
  /** Values, NaN included. */
  readonly v: ArrayLike<number>;
}

function typed<T extends Float64Array | Uint32Array>(
  b64: string,
  n: number,
  Kind: { new (buf: ArrayBuffer): T; BYTES_PER_ELEMENT: number },
): T {
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length !== n * Kind.BYTES_PER_ELEMENT)
    throw new RangeError(
      `packed column holds ${bytes.length} bytes, expected ${n * Kind.BYTES_PER_ELEMENT}`,
    );
  // copy into an aligned buffer: Buffer.from may hand back an unaligned slice of its pool
  const copy = new ArrayBuffer(bytes.length);
  new Uint8Array(copy).set(bytes);
  return new Kind(copy);
}

function b64(view: Float64Array | Uint32Array): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
}

/** Largest difference the delta encoding takes: its zigzag form stays an exact integer. */
const MAX_DELTA = 2 ** 52 - 1;

/** Bytes of the varint of a non-negative integer below 2^53. */
function writeVarint(out: Buffer, at: number, x: number): number {
  while (x >= 128) {
    out[at++] = (x % 128) | 128;
    x = Math.floor(x / 128);
  }
  out[at++] = x;
  return at;
}

/** Zigzag varints of the differences between entries, or undefined if one is too large. */
function deltaVarints(col: Float64Array): string | undefined {
  const out = Buffer.allocUnsafe(col.length * 8 + 8);
  let at = 0;
  let prev = 0;
  for (let i = 0; i < col.length; i++) {
    const x = col[i]!;
    const d = x - prev;
    if (!Number.isInteger(d) || d > MAX_DELTA || d < -MAX_DELTA) return undefined;
    at = writeVarint(out, at, d >= 0 ? 2 * d : -2 * d - 1);
    prev = x;
  }
  return out.toString('base64', 0, at);
}

function varints(col: Uint32Array): string {
  const out = Buffer.allocUnsafe(col.length * 5);
  let at = 0;
  for (let i = 0; i < col.length; i++) at = writeVarint(out, at, col[i]!);
  return out.toString('base64', 0, at);
}

/** Reads `n` varints; with `delta`, zigzag differences summed back into values. */
function readVarints(b64text: string, n: number, delta: boolean): Float64Array {
  const bytes = Buffer.from(b64text, 'base64');
  const out = new Float64Array(n);
  let at = 0;
  let prev = 0;
  for (let i = 0; i < n; i++) {
    let x = 0;
    let mul = 1;
    for (;;) {
      if (at >= bytes.length) throw new RangeError('packed varint column ends early');
      const b = bytes[at++]!;
      x += (b & 127) * mul;
      if (b < 128) break;
      mul *= 128;
    }
    if (delta) {
      prev += x % 2 === 0 ? x / 2 : -(x + 1) / 2;
      out[i] = prev;
    } else out[i] = x;
  }
  if (at !== bytes.length) throw new RangeError('packed varint column has trailing bytes');
  return out;
}

/**
 * Packs typed columns for an event: delta varints for k, s and t (raw when a difference is beyond
 * 2^52, which safe-integer steps and timestamps can only reach at the extremes).
 */
export function packRunPoints(
  runId: string,
  keys: readonly string[],
  k: Uint32Array,
  s: Float64Array,
  t: Float64Array,
  v: Float64Array,
): PackedRunPoints {
  const steps = deltaVarints(s);
  const timestamps = steps === undefined ? undefined : deltaVarints(t);
  if (steps === undefined || timestamps === undefined)
    return { runId, keys, n: k.length, k: b64(k), s: b64(s), t: b64(t), v: b64(v) };
  return { runId, keys, n: k.length, enc: 'dv', k: varints(k), s: steps, t: timestamps, v: b64(v) };
}

/** Unpacks one run's points, in either encoding. */
export function unpackRunPoints(p: PackedRunPoints): MetricSeries {
  if (p.enc === 'dv') {
    return {
      runId: p.runId,
      keys: p.keys,
      k: readVarints(p.k, p.n, false),
      s: readVarints(p.s, p.n, true),
      t: readVarints(p.t, p.n, true),
      v: typed(p.v, p.n, Float64Array),
    };
  }
  return {
    runId: p.runId,
    keys: p.keys,
    k: typed(p.k, p.n, Uint32Array),
    s: typed(p.s, p.n, Float64Array),
    t: typed(p.t, p.n, Float64Array),
    v: typed(p.v, p.n, Float64Array),
  };
}

/** The series of a REST MetricsLogged event, with NaN restored. */
export function seriesOfColumns(runId: string, c: MetricColumns): MetricSeries {
  if (c.nan === undefined || c.nan.length === 0)
    return { runId, keys: c.keys, k: c.k, s: c.s, t: c.t, v: c.v };
  const v = Float64Array.from(c.v);
  for (const i of c.nan) v[i] = NaN;
  return { runId, keys: c.keys, k: c.k, s: c.s, t: c.t, v };
}

/** Every run's series carried by a metric event (REST or gRPC), or none for other events. */
export function metricSeriesOf(event: {
  readonly type: string;
  readonly data: unknown;
}): MetricSeries[] {
  if (event.type === 'MetricsLogged') {
    const d = event.data as { runId: string } & MetricColumns;
    return [seriesOfColumns(d.runId, d)];
  }
  if (event.type === 'MetricBatchIngested') {
    return (event.data as MetricBatchIngested['data']).runs.map(unpackRunPoints);
  }
  return [];
}

/**
 * Folds one series into a run's latest-per-key list with MLflow's rule (see isMoreRecent); NaN is
 * kept as value 0 with is_nan, as MLflow stores it.
 */
export function latestMetricsAfterSeries(
  current: readonly LatestMetric[],
  series: MetricSeries,
): LatestMetric[] {
  const byKey = new Map(current.map((m) => [m.key, m]));
  for (let i = 0; i < series.k.length; i++) {
    const key = series.keys[series.k[i]!]!;
    const value = series.v[i]!;
    const candidate: LatestMetric = Number.isNaN(value)
      ? { key, value: 0, timestamp: series.t[i]!, step: series.s[i]!, is_nan: true }
      : { key, value, timestamp: series.t[i]!, step: series.s[i]! };
    const existing = byKey.get(key);
    if (existing === undefined || isMoreRecent(candidate, existing)) byKey.set(key, candidate);
  }
  return [...byKey.values()];
}

/** A series grouped by key (first-seen key order), as points for the metric chunk store. */
export function pointsByKeyOfSeries(
  series: MetricSeries,
): Map<string, { step: number; timestamp: number; value: number }[]> {
  const out = new Map<string, { step: number; timestamp: number; value: number }[]>();
  for (let i = 0; i < series.k.length; i++) {
    const key = series.keys[series.k[i]!]!;
    let list = out.get(key);
    if (list === undefined) {
      list = [];
      out.set(key, list);
    }
    list.push({ step: series.s[i]!, timestamp: series.t[i]!, value: series.v[i]! });
  }
  return out;
}
