import type { MetricColumns } from '../run/run.events.js';

/**
 * Metric storage without a row per point: each (run, key) series is a sequence of chunks of at
 * most `chunk_size` points. A chunk holds its steps, timestamps and values as little-endian
 * Float64 arrays in base64, plus a summary (count, step/timestamp/value ranges, first and last
 * point). Every chunk but the last is full, so point i of the series (in storage order) lives in
 * chunk floor(i / chunk_size); only the last chunk is ever rewritten.
 *
 * Points are kept in arrival order. The series remembers whether that order is still sorted by
 * MLflow's sampling order (step, timestamp, value) and by its history order (timestamp, step,
 * value); while it is, reads address points by index and touch only the chunks they need.
 */

/** Default points per chunk: a full chunk is ~24 KiB of payload, ~33 KiB as base64 JSON. */
export const DEFAULT_METRIC_CHUNK_SIZE = 1024;

/** A point in a series. NaN stays NaN (Float64 holds it); ordering treats it as MLflow's stored 0. */
export interface SeriesPoint {
  readonly step: number;
  readonly timestamp: number;
  readonly value: number;
}

/** A point in a JSON document: NaN as the string "NaN". */
export interface PointJson {
  readonly step: number;
  readonly timestamp: number;
  readonly value: number | 'NaN';
}

/** One chunk of a series, as stored. */
export interface MetricChunkDoc {
  [field: string]: unknown;
  readonly series: string;
  readonly seq: number;
  readonly n: number;
  readonly step_min: number;
  readonly step_max: number;
  readonly ts_min: number;
  readonly ts_max: number;
  /** Over non-NaN values; null when every value is NaN. */
  readonly value_min: number | null;
  readonly value_max: number | null;
  readonly first: PointJson;
  readonly last: PointJson;
  /** base64 of little-endian Float64 arrays, `n` entries each. */
  readonly steps: string;
  readonly timestamps: string;
  readonly values: string;
}

/** One (run, key) series: totals, ranges and whether arrival order is still sorted. */
export interface MetricSeriesDoc {
  [field: string]: unknown;
  readonly run_id: string;
  readonly key: string;
  readonly chunk_size: number;
  readonly count: number;
  readonly chunks: number;
  /** Arrival order is non-decreasing by (step, timestamp, value, is_nan). */
  readonly step_sorted: boolean;
  /** Arrival order is non-decreasing by (timestamp, step, value, is_nan). */
  readonly ts_sorted: boolean;
  readonly step_min: number;
  readonly step_max: number;
  readonly ts_min: number;
  readonly ts_max: number;
  /** The last point in arrival order. */
  readonly last: PointJson;
}

/** Id of a series document: run ids hold no '/', so the first '/' separates run and key. */
export function metricSeriesId(runId: string, key: string): string {
  return `${runId}/${key}`;
}

/** Id of a chunk: zero-padded so id order is chunk order. */
export function metricChunkId(seriesId: string, seq: number): string {
  return `${seriesId}#${String(seq).padStart(10, '0')}`;
}

// ---- ordering -------------------------------------------------------------------------------

function sortValue(v: number): number {
  return Number.isNaN(v) ? 0 : v;
}

function nanRank(v: number): number {
  return Number.isNaN(v) ? 1 : 0;
}

/** MLflow's sampling order: step, timestamp, value (NaN as 0), is_nan. */
export function compareByStep(a: SeriesPoint, b: SeriesPoint): number {
  return (
    a.step - b.step ||
    a.timestamp - b.timestamp ||
    sortValue(a.value) - sortValue(b.value) ||
    nanRank(a.value) - nanRank(b.value)
  );
}

/** MLflow's history order: timestamp, step, value (NaN as 0), is_nan. */
export function compareByTimestamp(a: SeriesPoint, b: SeriesPoint): number {
  return (
    a.timestamp - b.timestamp ||
    a.step - b.step ||
    sortValue(a.value) - sortValue(b.value) ||
    nanRank(a.value) - nanRank(b.value)
  );
}

/** Same metric point: equal step, timestamp and value, NaN equal to NaN. */
export function samePoint(a: SeriesPoint, b: SeriesPoint): boolean {
  return (
    a.step === b.step &&
    a.timestamp === b.timestamp &&
    (a.value === b.value || (Number.isNaN(a.value) && Number.isNaN(b.value)))
  );
}

// ---- codec ----------------------------------------------------------------------------------

/** A chunk's columns, decoded. */
export interface ChunkColumns {
  readonly n: number;
  readonly steps: Float64Array;
  readonly timestamps: Float64Array;
  readonly values: Float64Array;
}

function encodeColumn(column: Float64Array, n: number): string {
  const bytes = Buffer.from(column.buffer, column.byteOffset, n * 8);
  if (new Uint8Array(new Float64Array([1]).buffer)[7] === 0) {
    // big-endian host: store little-endian regardless
    const copy = Buffer.from(bytes);
    copy.swap64();
    return copy.toString('base64');
  }
  return bytes.toString('base64');
}

function decodeColumn(text: string, n: number, capacity = n): Float64Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== n * 8)
    throw new Error(`metric chunk column holds ${bytes.length} bytes, expected ${n * 8}`);
  if (new Uint8Array(new Float64Array([1]).buffer)[7] === 0) bytes.swap64();
  const out = new Float64Array(capacity);
  // copy: the Buffer may sit at an offset that a Float64Array view cannot start at
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** Entry i of a base64 Float64 column, decoding only the 4-character groups that hold it. */
function entryAt(text: string, i: number): number {
  const byte = i * 8;
  const group = Math.floor(byte / 3);
  const end = Math.ceil((byte + 8) / 3);
  const bytes = Buffer.from(text.slice(group * 4, end * 4), 'base64');
  return bytes.readDoubleLE(byte - group * 3);
}

/** Point i of a chunk without decoding its columns (a sampled read touches one point per chunk). */
export function chunkPointAt(doc: MetricChunkDoc, i: number): SeriesPoint {
  return {
    step: entryAt(doc.steps, i),
    timestamp: entryAt(doc.timestamps, i),
    value: entryAt(doc.values, i),
  };
}

/** Decodes a chunk's columns; `capacity` leaves room to append. */
export function decodeChunk(doc: MetricChunkDoc, capacity = doc.n): ChunkColumns {
  return {
    n: doc.n,
    steps: decodeColumn(doc.steps, doc.n, capacity),
    timestamps: decodeColumn(doc.timestamps, doc.n, capacity),
    values: decodeColumn(doc.values, doc.n, capacity),
  };
}

export function pointJson(p: SeriesPoint): PointJson {
  return {
    step: p.step,
    timestamp: p.timestamp,
    value: Number.isNaN(p.value) ? 'NaN' : p.value,
  };
}

export function pointFromJson(p: PointJson): SeriesPoint {
  return {
    step: p.step,
    timestamp: p.timestamp,
    value: p.value === 'NaN' ? Number.NaN : p.value,
  };
}

function pointAt(c: ChunkColumns, i: number): SeriesPoint {
  return { step: c.steps[i]!, timestamp: c.timestamps[i]!, value: c.values[i]! };
}

/** Encodes `n` points of the columns as a chunk document with its summary. */
export function encodeChunk(seriesId: string, seq: number, c: ChunkColumns): MetricChunkDoc {
  if (c.n === 0) throw new Error('a metric chunk holds at least one point');
  let stepMin = Infinity;
  let stepMax = -Infinity;
  let tsMin = Infinity;
  let tsMax = -Infinity;
  let valueMin: number | null = null;
  let valueMax: number | null = null;
  for (let i = 0; i < c.n; i++) {
    const s = c.steps[i]!;
    const t = c.timestamps[i]!;
    const v = c.values[i]!;
    if (s < stepMin) stepMin = s;
    if (s > stepMax) stepMax = s;
    if (t < tsMin) tsMin = t;
    if (t > tsMax) tsMax = t;
    if (!Number.isNaN(v)) {
      if (valueMin === null || v < valueMin) valueMin = v;
      if (valueMax === null || v > valueMax) valueMax = v;
    }
  }
  return {
    series: seriesId,
    seq,
    n: c.n,
    step_min: stepMin,
    step_max: stepMax,
    ts_min: tsMin,
    ts_max: tsMax,
    value_min: valueMin,
    value_max: valueMax,
    first: pointJson(pointAt(c, 0)),
    last: pointJson(pointAt(c, c.n - 1)),
    steps: encodeColumn(c.steps, c.n),
    timestamps: encodeColumn(c.timestamps, c.n),
    values: encodeColumn(c.values, c.n),
  };
}

/** The points of one chunk, in arrival order. */
export function chunkPoints(c: ChunkColumns, from = 0, to = c.n): SeriesPoint[] {
  const out: SeriesPoint[] = [];
  for (let i = from; i < to; i++) out.push(pointAt(c, i));
  return out;
}

// ---- events ---------------------------------------------------------------------------------

/** A MetricsLogged batch grouped by key (first-seen key order); NaN restored from `nan`. */
export function pointsByKey(batch: MetricColumns): Map<string, SeriesPoint[]> {
  const nan = new Set(batch.nan ?? []);
  const out = new Map<string, SeriesPoint[]>();
  for (let i = 0; i < batch.k.length; i++) {
    const key = batch.keys[batch.k[i]!]!;
    let list = out.get(key);
    if (list === undefined) {
      list = [];
      out.set(key, list);
    }
    list.push({
      step: batch.s[i]!,
      timestamp: batch.t[i]!,
      value: nan.has(i) ? Number.NaN : batch.v[i]!,
    });
  }
  return out;
}

// ---- appending ------------------------------------------------------------------------------

/** Reads a stored chunk by sequence number (a projection passes its writer's get). */
export type ChunkLoader = (seq: number) => Promise<MetricChunkDoc | undefined>;

/** What appending to a series changed: documents to store, and how many points were new. */
export interface SeriesAppend {
  readonly series: MetricSeriesDoc | undefined;
  readonly chunks: readonly MetricChunkDoc[];
  readonly appended: number;
}

class ChunkCache {
  private readonly docs = new Map<number, MetricChunkDoc>();
  private readonly decoded = new Map<number, ChunkColumns>();
  constructor(private readonly load: ChunkLoader) {}

  async doc(seq: number): Promise<MetricChunkDoc> {
    let doc = this.docs.get(seq);
    if (doc === undefined) {
      doc = await this.load(seq);
      if (doc === undefined) throw new Error(`metric chunk ${seq} is missing`);
      this.docs.set(seq, doc);
    }
    return doc;
  }

  async columns(seq: number): Promise<ChunkColumns> {
    let c = this.decoded.get(seq);
    if (c === undefined) {
      c = decodeChunk(await this.doc(seq));
      this.decoded.set(seq, c);
    }
    return c;
  }

  remember(doc: MetricChunkDoc): void {
    this.docs.set(doc.seq, doc);
    this.decoded.delete(doc.seq);
  }
}

/** The first seq in [0, count) for which `pred` holds, given it is monotonic (false…true); count if none. */
async function firstSeq(count: number, pred: (seq: number) => Promise<boolean>): Promise<number> {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (await pred(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function containsIn(c: ChunkColumns, p: SeriesPoint, to = c.n): boolean {
  for (let i = 0; i < to; i++) {
    if (
      c.steps[i] === p.step &&
      c.timestamps[i] === p.timestamp &&
      (c.values[i] === p.value || (Number.isNaN(c.values[i]!) && Number.isNaN(p.value)))
    ) {
      return true;
    }
  }
  return false;
}

/**
 * Appends points to a series, dropping exact duplicates of points already stored (or earlier in
 * the same call). Writes only the open (last) chunk and any chunks it fills. The duplicate check
 * costs nothing for a point beyond the series' ranges or after its last point in a sorted order
 * (the usual case); otherwise it binary-searches the chunk summaries of a sorted series, and only
 * a series that arrived out of order scans its chunks.
 */
export async function appendToSeries(
  runId: string,
  key: string,
  current: MetricSeriesDoc | undefined,
  incoming: readonly SeriesPoint[],
  load: ChunkLoader,
  chunkSize = DEFAULT_METRIC_CHUNK_SIZE,
): Promise<SeriesAppend> {
  const seriesId = metricSeriesId(runId, key);
  const size = current?.chunk_size ?? chunkSize;
  const points = [...incoming].sort(compareByStep);
  const cache = new ChunkCache(load);

  let count = current?.count ?? 0;
  let stepSorted = current?.step_sorted ?? true;
  let tsSorted = current?.ts_sorted ?? true;
  let stepMin = current?.step_min ?? Infinity;
  let stepMax = current?.step_max ?? -Infinity;
  let tsMin = current?.ts_min ?? Infinity;
  let tsMax = current?.ts_max ?? -Infinity;
  let last: SeriesPoint | null = current === undefined ? null : pointFromJson(current.last);

  // the open chunk: the last stored one while it has room, else a new one
  let openSeq = current?.chunks ?? 0;
  let open: { steps: Float64Array; timestamps: Float64Array; values: Float64Array; n: number } = {
    steps: new Float64Array(size),
    timestamps: new Float64Array(size),
    values: new Float64Array(size),
    n: 0,
  };
  if (current !== undefined && current.chunks > 0) {
    const lastDoc = await cache.doc(current.chunks - 1);
    if (lastDoc.n < size) {
      openSeq = current.chunks - 1;
      const c = decodeChunk(lastDoc, size);
      open = { steps: c.steps, timestamps: c.timestamps, values: c.values, n: c.n };
    }
  }
  const written: MetricChunkDoc[] = [];
  let appended = 0;
  let openDirty = false;

  const storedDuplicate = async (p: SeriesPoint): Promise<boolean> => {
    if (count === 0 || last === null) return false;
    if (p.step < stepMin || p.step > stepMax || p.timestamp < tsMin || p.timestamp > tsMax)
      return false;
    if (stepSorted && compareByStep(p, last) > 0) return false;
    if (tsSorted && compareByTimestamp(p, last) > 0) return false;
    if (containsIn(open, p, open.n)) return true;
    let candidates: number[];
    if (stepSorted || tsSorted) {
      // chunk ranges are monotonic in the sorted order: the candidates are one contiguous run
      const field = stepSorted ? 'step' : 'ts';
      const value = stepSorted ? p.step : p.timestamp;
      const maxOf = (d: MetricChunkDoc): number => (field === 'step' ? d.step_max : d.ts_max);
      const minOf = (d: MetricChunkDoc): number => (field === 'step' ? d.step_min : d.ts_min);
      let seq = await firstSeq(openSeq, async (s) => maxOf(await cache.doc(s)) >= value);
      candidates = [];
      while (seq < openSeq && minOf(await cache.doc(seq)) <= value) candidates.push(seq++);
    } else {
      candidates = Array.from({ length: openSeq }, (_, i) => i);
    }
    for (const seq of candidates) {
      const d = await cache.doc(seq);
      if (p.step < d.step_min || p.step > d.step_max) continue;
      if (p.timestamp < d.ts_min || p.timestamp > d.ts_max) continue;
      if (containsIn(await cache.columns(seq), p)) return true;
    }
    return false;
  };

  for (const p of points) {
    if (await storedDuplicate(p)) continue;
    if (last !== null) {
      if (compareByStep(p, last) < 0) stepSorted = false;
      if (compareByTimestamp(p, last) < 0) tsSorted = false;
    }
    open.steps[open.n] = p.step;
    open.timestamps[open.n] = p.timestamp;
    open.values[open.n] = p.value;
    open.n += 1;
    openDirty = true;
    count += 1;
    appended += 1;
    last = p;
    if (p.step < stepMin) stepMin = p.step;
    if (p.step > stepMax) stepMax = p.step;
    if (p.timestamp < tsMin) tsMin = p.timestamp;
    if (p.timestamp > tsMax) tsMax = p.timestamp;
    if (open.n === size) {
      const doc = encodeChunk(seriesId, openSeq, open);
      written.push(doc);
      cache.remember(doc);
      openSeq += 1;
      open = {
        steps: new Float64Array(size),
        timestamps: new Float64Array(size),
        values: new Float64Array(size),
        n: 0,
      };
      openDirty = false;
    }
  }

  if (appended === 0 || last === null) return { series: current, chunks: [], appended: 0 };
  if (openDirty && open.n > 0) written.push(encodeChunk(seriesId, openSeq, open));
  return {
    series: {
      run_id: runId,
      key,
      chunk_size: size,
      count,
      chunks: openSeq + (open.n > 0 ? 1 : 0),
      step_sorted: stepSorted,
      ts_sorted: tsSorted,
      step_min: stepMin,
      step_max: stepMax,
      ts_min: tsMin,
      ts_max: tsMax,
      last: pointJson(last),
    },
    chunks: written,
    appended,
  };
}

// ---- reading --------------------------------------------------------------------------------

/** Every point of a series in arrival order (chunk by chunk). */
async function allPoints(series: MetricSeriesDoc, load: ChunkLoader): Promise<SeriesPoint[]> {
  const out: SeriesPoint[] = [];
  for (let seq = 0; seq < series.chunks; seq++) {
    const doc = await load(seq);
    if (doc === undefined) break;
    for (const p of chunkPoints(decodeChunk(doc))) out.push(p);
  }
  return out;
}

/**
 * A page of the history in MLflow's order (timestamp, step, value), from `offset`, at most `limit`
 * points (all when undefined); `more` tells whether points remain. A series that arrived in that
 * order is read from the chunk holding `offset` on; otherwise every chunk is read and sorted.
 */
export async function readHistory(
  series: MetricSeriesDoc,
  load: ChunkLoader,
  offset: number,
  limit: number | undefined,
): Promise<{ points: SeriesPoint[]; more: boolean }> {
  const end = limit === undefined ? series.count : Math.min(series.count, offset + limit);
  if (!series.ts_sorted) {
    const all = (await allPoints(series, load)).sort(compareByTimestamp);
    return { points: all.slice(offset, end), more: end < all.length };
  }
  const points: SeriesPoint[] = [];
  const size = series.chunk_size;
  for (let seq = Math.floor(offset / size); seq < series.chunks && offset < end; seq++) {
    const doc = await load(seq);
    if (doc === undefined) break;
    const c = decodeChunk(doc);
    const from = offset - seq * size;
    const to = Math.min(c.n, end - seq * size);
    for (const p of chunkPoints(c, from, to)) points.push(p);
    offset = seq * size + to;
  }
  return { points, more: end < series.count };
}

/**
 * Which rows of `n` (ordered) rows MLflow's SQL store keeps when sampling to `maxResults`:
 * NTILE(maxResults) buckets, the first row of each, with the last bucket's pick replaced by the
 * last row so the end is kept (and only the last row when maxResults is 1). All rows when n fits.
 */
export function sampleIndices(n: number, maxResults: number): number[] {
  if (n <= 0) return [];
  const b = Math.max(1, maxResults);
  if (n <= b) return Array.from({ length: n }, (_, i) => i);
  const q = Math.floor(n / b);
  const r = n % b;
  const out: number[] = [];
  for (let i = 0; i < b; i++) out.push(i * q + Math.min(i, r));
  out[out.length - 1] = n - 1;
  return out;
}

/**
 * MLflow's get-history-bulk-interval sample of one series: the points with step in [start, end]
 * (all when no range), ordered by (step, timestamp, value), sampled by `sampleIndices`. For a
 * series that arrived in step order only the chunks that hold the range's bounds and the sampled
 * points are read; otherwise every chunk is read.
 */
export async function sampleSeries(
  series: MetricSeriesDoc,
  load: ChunkLoader,
  maxResults: number,
  range?: { readonly start: number; readonly end: number },
): Promise<SeriesPoint[]> {
  if (!series.step_sorted) {
    const all = (await allPoints(series, load))
      .filter((p) => range === undefined || (p.step >= range.start && p.step <= range.end))
      .sort(compareByStep);
    return sampleIndices(all.length, maxResults).map((i) => all[i]!);
  }
  const cache = new ChunkCache(load);
  const size = series.chunk_size;
  // first index whose step satisfies `ok` (monotonic over a step-sorted series)
  const firstIndex = async (ok: (step: number) => boolean): Promise<number> => {
    const seq = await firstSeq(series.chunks, async (s) => ok((await cache.doc(s)).step_max));
    if (seq >= series.chunks) return series.count;
    const c = await cache.columns(seq);
    let i = 0;
    while (i < c.n && !ok(c.steps[i]!)) i++;
    return seq * size + i;
  };
  let lo = 0;
  let hi = series.count;
  if (range !== undefined) {
    lo = await firstIndex((s) => s >= range.start);
    hi = await firstIndex((s) => s > range.end);
  }
  const out: SeriesPoint[] = [];
  for (const i of sampleIndices(hi - lo, maxResults)) {
    const index = lo + i;
    const seq = Math.floor(index / size);
    const doc = await cache.doc(seq);
    const at = index - seq * size;
    if (at >= doc.n) break;
    out.push(chunkPointAt(doc, at));
  }
  return out;
}
