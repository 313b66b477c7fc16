import type { DomainEvent } from '@ledgerflow/contracts';
import type { MetricColumns } from '../run/run.events.js';
import { isMoreRecent, type LatestMetric } from '../read-models/tracking-docs.js';

/**
 * One run's points inside an ingested batch, packed: k is a little-endian Uint32Array, s, t and v
 * are little-endian Float64Arrays, each base64-encoded. Packed columns keep a million-point batch
 * cheap to store, hash and replay, and let NaN travel without a side list.
 */
export interface PackedRunPoints {
  readonly runId: string;
  readonly keys: readonly string[];
  readonly n: number;
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

/** Packs typed columns for an event. */
export function packRunPoints(
  runId: string,
  keys: readonly string[],
  k: Uint32Array,
  s: Float64Array,
  t: Float64Array,
  v: Float64Array,
): PackedRunPoints {
  return { runId, keys, n: k.length, k: b64(k), s: b64(s), t: b64(t), v: b64(v) };
}

/** Unpacks one run's points. */
export function unpackRunPoints(p: PackedRunPoints): MetricSeries {
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
