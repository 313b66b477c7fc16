import type { MetricColumns } from '../run/run.events.js';
import {
  ChunkDirectory,
  chunkFragments,
  DEFAULT_DIR_PAGE_ENTRIES,
  type DirPageLoader,
  type MetricChunkDirDoc,
} from './metric-chunk-dir.js';

export {
  chunkFragments,
  DEFAULT_DIR_PAGE_ENTRIES,
  metricChunkDirId,
  type DirPageLoader,
  type MetricChunkDirDoc,
} from './metric-chunk-dir.js';

/**
 * Metric storage without a row per point: each (run, key) series is a sequence of chunks of at
 * most `chunk_size` points. A chunk holds its steps, timestamps and values as little-endian
 * Float64 arrays in base64, plus a summary (count, step/timestamp/value ranges, first and last
 * point). Every chunk but the last is full, so point i of the series (in storage order) lives in
 * chunk floor(i / chunk_size); only the last chunk is ever rewritten.
 *
 * The open (last, not yet full) chunk is stored as segments instead: one small document per append
 * holding just that append's points, so a write costs O(new points) rather than a rewrite of the
 * open chunk. When the open chunk fills, its segments are compacted into a chunk document and
 * deleted; when an open chunk has collected MAX_OPEN_SEGMENTS segments they are merged into one.
 * Readers see the open chunk as one chunk document either way (seriesChunkLoader).
 *
 * Points are kept in arrival order. The series remembers whether that order is still sorted by
 * MLflow's sampling order (step, timestamp, value) and by its history order (timestamp, step,
 * value); while it is, reads address points by index and touch only the chunks they need. Once it
 * is sorted in neither, a chunk directory (metric-chunk-dir.ts) tells which sealed chunks may hold
 * a given (step, timestamp).
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
  /**
   * The chunk directory, kept once the series is sorted in neither order: page ids in key order,
   * the pages' lower bounds, and how many chunks it covers (chunks [0, dir_chunks), all full).
   */
  readonly dir_pages?: readonly number[];
  readonly dir_bounds?: readonly number[];
  readonly dir_chunks?: number;
  /**
   * The open chunk (seq `chunks - 1`) as segments: their end offsets in the chunk, ascending
   * (segment i holds points [seg_ends[i-1] ?? 0, seg_ends[i])). Absent when every chunk is a
   * chunk document.
   */
  readonly seg_ends?: readonly number[];
}

/** Points appended to a series' open chunk by one append, as stored (columns as in a chunk). */
export interface MetricSegmentDoc {
  [field: string]: unknown;
  readonly series: string;
  readonly seq: number;
  /** Offset of its first point in the chunk; it holds [from, from + n). */
  readonly from: number;
  readonly n: number;
  readonly steps: string;
  readonly timestamps: string;
  readonly values: string;
}

/** Segments an open chunk may collect before they are merged into one. */
export const MAX_OPEN_SEGMENTS = 64;

/** Id of a series document: run ids hold no '/', so the first '/' separates run and key. */
export function metricSeriesId(runId: string, key: string): string {
  return `${runId}/${key}`;
}

/** Id of a chunk: zero-padded so id order is chunk order. */
export function metricChunkId(seriesId: string, seq: number): string {
  return `${seriesId}#${String(seq).padStart(10, '0')}`;
}

/**
 * Id of a segment of chunk `seq` holding points [from, to): ids differ from every chunk id (and
 * from each other, since a merged segment spans more points than any it replaces).
 */
export function metricSegmentId(seriesId: string, seq: number, from: number, to: number): string {
  return `${metricChunkId(seriesId, seq)}+${String(from).padStart(6, '0')}-${to}`;
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

/** Reads a stored segment of chunk `seq` holding points [from, to). */
export type SegmentLoader = (
  seq: number,
  from: number,
  to: number,
) => Promise<MetricSegmentDoc | undefined>;

/** Reads a series' stored chunks, open-chunk segments and chunk directory pages. */
export interface SeriesLoaders {
  readonly chunk: ChunkLoader;
  readonly segment: SegmentLoader;
  readonly dirPage: DirPageLoader;
}

/** What appending to a series changed: documents to store and delete, and how many points were new. */
export interface SeriesAppend {
  readonly series: MetricSeriesDoc | undefined;
  readonly chunks: readonly MetricChunkDoc[];
  readonly segments: readonly MetricSegmentDoc[];
  /** Ids of segments compacted into a chunk or merged into one segment: delete them. */
  readonly removedSegments: readonly string[];
  readonly dirPages: readonly MetricChunkDirDoc[];
  readonly appended: number;
}

/** Encodes points [from, from + n) of the columns as a segment of chunk `seq`. */
function encodeSegment(
  seriesId: string,
  seq: number,
  c: ChunkColumns,
  from: number,
  n: number,
): MetricSegmentDoc {
  const slice = (col: Float64Array): Float64Array => col.subarray(from, from + n);
  return {
    series: seriesId,
    seq,
    from,
    n,
    steps: encodeColumn(slice(c.steps), n),
    timestamps: encodeColumn(slice(c.timestamps), n),
    values: encodeColumn(slice(c.values), n),
  };
}

/** Segment [from, to) of the open chunk per the series' segment ends. */
function segmentBounds(ends: readonly number[]): [number, number][] {
  return ends.map((to, i) => [i === 0 ? 0 : ends[i - 1]!, to]);
}

/**
 * The open chunk of a series stored as segments, decoded with room for `capacity` points; undefined
 * when a segment is missing (compacted by a newer write than the series document read).
 */
async function loadSegments(
  series: MetricSeriesDoc,
  load: SegmentLoader,
  capacity: number,
): Promise<ChunkColumns | undefined> {
  const ends = series.seg_ends ?? [];
  const seq = series.chunks - 1;
  const n = ends.at(-1) ?? 0;
  const out = {
    n,
    steps: new Float64Array(Math.max(capacity, n)),
    timestamps: new Float64Array(Math.max(capacity, n)),
    values: new Float64Array(Math.max(capacity, n)),
  };
  for (const [from, to] of segmentBounds(ends)) {
    const doc = await load(seq, from, to);
    if (doc === undefined || doc.n !== to - from) return undefined;
    out.steps.set(decodeColumn(doc.steps, doc.n), from);
    out.timestamps.set(decodeColumn(doc.timestamps, doc.n), from);
    out.values.set(decodeColumn(doc.values, doc.n), from);
  }
  return out;
}

/**
 * A chunk loader for readers of a series: sealed chunks are chunk documents, the open chunk is
 * assembled from its segments. A read that races a compaction (a segment gone because the chunk
 * filled or its segments were merged) re-reads the series document via `reload` and tries again;
 * points only ever append, so the newer view holds every point the caller's series knew of.
 */
export function seriesChunkLoader(
  series: MetricSeriesDoc,
  load: { readonly chunk: ChunkLoader; readonly segment: SegmentLoader },
  reload?: () => Promise<MetricSeriesDoc | undefined>,
): ChunkLoader {
  const seriesId = metricSeriesId(series.run_id, series.key);
  return async (seq) => {
    let current: MetricSeriesDoc | undefined = series;
    for (let attempt = 0; attempt < 5 && current !== undefined; attempt++) {
      if (current.seg_ends === undefined || seq !== current.chunks - 1) return load.chunk(seq);
      const columns = await loadSegments(current, load.segment, 0);
      if (columns !== undefined) return encodeChunk(seriesId, seq, columns);
      if (reload === undefined) break;
      current = await reload();
    }
    return load.chunk(seq);
  };
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

  /** A chunk written by this append, with its columns (which must not change afterwards). */
  remember(doc: MetricChunkDoc, columns: ChunkColumns): void {
    this.docs.set(doc.seq, doc);
    this.decoded.set(doc.seq, columns);
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
 * A set of points for exact lookups: hashed by (step, timestamp) as one number (no strings to
 * build), chained, and compared with samePoint. Any number works as a bucket key; colliding keys
 * only make a chain longer.
 */
class PointSet {
  private readonly head = new Map<number, number>();
  private readonly next: number[] = [];
  private readonly steps: number[] = [];
  private readonly timestamps: number[] = [];
  private readonly values: number[] = [];

  private static bucket(step: number, timestamp: number): number {
    return step * 1_000_003 + timestamp;
  }

  addAll(c: ChunkColumns): void {
    for (let i = 0; i < c.n; i++) {
      const k = PointSet.bucket(c.steps[i]!, c.timestamps[i]!);
      this.next.push(this.head.get(k) ?? -1);
      this.head.set(k, this.steps.length);
      this.steps.push(c.steps[i]!);
      this.timestamps.push(c.timestamps[i]!);
      this.values.push(c.values[i]!);
    }
  }

  has(p: SeriesPoint): boolean {
    let i = this.head.get(PointSet.bucket(p.step, p.timestamp)) ?? -1;
    while (i >= 0) {
      const v = this.values[i]!;
      if (
        this.steps[i] === p.step &&
        this.timestamps[i] === p.timestamp &&
        (v === p.value || (Number.isNaN(v) && Number.isNaN(p.value)))
      ) {
        return true;
      }
      i = this.next[i]!;
    }
    return false;
  }
}

/**
 * Appends points to a series, dropping exact duplicates of points already stored (or earlier in
 * the same call). Writes only the open (last) chunk, any chunks it fills, and (for a series out of
 * order in both step and timestamp) the chunk directory pages those chunks land on. The duplicate
 * check costs nothing for a point beyond the series' ranges or after its last point in a sorted
 * order (the usual case); otherwise it binary-searches the chunk summaries of a sorted series, or
 * asks the chunk directory of an unsorted one which chunks may hold the points: either way it reads
 * about as many chunks as the points' keys touch, not the series' history.
 */
export async function appendToSeries(
  runId: string,
  key: string,
  current: MetricSeriesDoc | undefined,
  incoming: readonly SeriesPoint[],
  load: SeriesLoaders,
  chunkSize = DEFAULT_METRIC_CHUNK_SIZE,
  dirPageEntries = DEFAULT_DIR_PAGE_ENTRIES,
): Promise<SeriesAppend> {
  const seriesId = metricSeriesId(runId, key);
  const size = current?.chunk_size ?? chunkSize;
  // sorted by (step, timestamp, value): also (step, timestamp) key order, and equal points adjacent
  const points = [...incoming].sort(compareByStep);
  const cache = new ChunkCache(load.chunk);

  let count = current?.count ?? 0;
  let stepSorted = current?.step_sorted ?? true;
  let tsSorted = current?.ts_sorted ?? true;
  let stepMin = current?.step_min ?? Infinity;
  let stepMax = current?.step_max ?? -Infinity;
  let tsMin = current?.ts_min ?? Infinity;
  let tsMax = current?.ts_max ?? -Infinity;
  let last: SeriesPoint | null = current === undefined ? null : pointFromJson(current.last);

  // the open chunk: the last stored one while it has room (as segments, or as a partial chunk
  // document written before segments existed), else a new one; segments are read only when needed
  let openSeq = current?.chunks ?? 0;
  let openN = 0;
  let segEnds: readonly number[] = [];
  let legacyOpen: ChunkColumns | undefined;
  if (current !== undefined && current.chunks > 0) {
    if (current.seg_ends !== undefined && current.seg_ends.length > 0) {
      openSeq = current.chunks - 1;
      segEnds = current.seg_ends;
      openN = segEnds.at(-1)!;
    } else if (current.count < current.chunks * size) {
      const lastDoc = await cache.doc(current.chunks - 1);
      if (lastDoc.n < size) {
        openSeq = current.chunks - 1;
        legacyOpen = decodeChunk(lastDoc, size);
        openN = lastDoc.n;
      }
    }
  }
  const openAtStart = openSeq;
  let openColumns: ChunkColumns | undefined = legacyOpen;
  const loadOpen = async (): Promise<ChunkColumns> => {
    if (openColumns !== undefined) return openColumns;
    if (segEnds.length === 0) {
      openColumns = {
        n: 0,
        steps: new Float64Array(size),
        timestamps: new Float64Array(size),
        values: new Float64Array(size),
      };
      return openColumns;
    }
    const c = await loadSegments(current!, load.segment, size);
    if (c === undefined) throw new Error(`metric series ${seriesId}: a segment is missing`);
    openColumns = c;
    return c;
  };
  const dir =
    current?.dir_pages !== undefined && current.dir_bounds !== undefined
      ? ChunkDirectory.of(
          seriesId,
          { pages: current.dir_pages, bounds: current.dir_bounds },
          load.dirPage,
          dirPageEntries,
        )
      : undefined;
  const dirChunks = dir === undefined ? 0 : (current?.dir_chunks ?? 0);

  // which points are duplicates, decided against the series as stored before this call
  const dup = new Uint8Array(points.length);
  for (let i = 1; i < points.length; i++) {
    if (samePoint(points[i]!, points[i - 1]!)) dup[i] = 1;
  }
  if (current !== undefined && count > 0 && last !== null) {
    const check: number[] = [];
    for (let i = 0; i < points.length; i++) {
      const p = points[i]!;
      if (dup[i] === 1) continue;
      if (p.step < stepMin || p.step > stepMax || p.timestamp < tsMin || p.timestamp > tsMax)
        continue;
      if (stepSorted && compareByStep(p, last) > 0) continue;
      if (tsSorted && compareByTimestamp(p, last) > 0) continue;
      check.push(i);
    }
    if (check.length > 0) {
      await markStoredDuplicates(points, check, dup, {
        cache,
        open:
          openN > 0 ? await loadOpen() : { n: 0, steps: EMPTY, timestamps: EMPTY, values: EMPTY },
        sealed: openSeq,
        series: current,
        dir,
        dirChunks,
      });
    }
  }

  const fresh: SeriesPoint[] = [];
  for (let i = 0; i < points.length; i++) {
    if (dup[i] === 1) continue;
    const p = points[i]!;
    if (last !== null) {
      if (compareByStep(p, last) < 0) stepSorted = false;
      if (compareByTimestamp(p, last) < 0) tsSorted = false;
    }
    fresh.push(p);
    count += 1;
    last = p;
    if (p.step < stepMin) stepMin = p.step;
    if (p.step > stepMax) stepMax = p.step;
    if (p.timestamp < tsMin) tsMin = p.timestamp;
    if (p.timestamp > tsMax) tsMax = p.timestamp;
  }
  if (fresh.length === 0 || last === null) {
    return {
      series: current,
      chunks: [],
      segments: [],
      removedSegments: [],
      dirPages: [],
      appended: 0,
    };
  }

  const written: MetricChunkDoc[] = [];
  const segments: MetricSegmentDoc[] = [];
  const removedSegments: string[] = [];
  const dropOpenSegments = (): void => {
    for (const [from, to] of segmentBounds(segEnds)) {
      removedSegments.push(metricSegmentId(seriesId, openAtStart, from, to));
    }
    segEnds = [];
  };
  let next = 0;
  if (openN + fresh.length >= size) {
    // the open chunk fills: compact it (its segments and these points) into a chunk document
    let open = await loadOpen();
    const fill = (c: ChunkColumns, from: number): ChunkColumns => {
      let n = from;
      for (; n < size && next < fresh.length; next++, n++) {
        const p = fresh[next]!;
        c.steps[n] = p.step;
        c.timestamps[n] = p.timestamp;
        c.values[n] = p.value;
      }
      return { ...c, n };
    };
    dropOpenSegments();
    while (fresh.length - next + (openSeq === openAtStart ? openN : 0) >= size) {
      const full = fill(open, openSeq === openAtStart ? openN : 0);
      const doc = encodeChunk(seriesId, openSeq, full);
      written.push(doc);
      cache.remember(doc, full);
      openSeq += 1;
      open = {
        n: 0,
        steps: new Float64Array(size),
        timestamps: new Float64Array(size),
        values: new Float64Array(size),
      };
    }
    openN = 0;
    legacyOpen = undefined;
  }
  const rest = fresh.length - next;
  if (rest > 0) {
    const from = openSeq === openAtStart ? openN : 0;
    const to = from + rest;
    const tail = {
      n: rest,
      steps: new Float64Array(rest),
      timestamps: new Float64Array(rest),
      values: new Float64Array(rest),
    };
    for (let j = 0; j < rest; j++) {
      const p = fresh[next + j]!;
      tail.steps[j] = p.step;
      tail.timestamps[j] = p.timestamp;
      tail.values[j] = p.value;
    }
    if (legacyOpen !== undefined) {
      // a partial chunk document from before segments: keep rewriting it until it fills
      legacyOpen.steps.set(tail.steps, from);
      legacyOpen.timestamps.set(tail.timestamps, from);
      legacyOpen.values.set(tail.values, from);
      written.push(encodeChunk(seriesId, openSeq, { ...legacyOpen, n: to }));
    } else if (segEnds.length + 1 > MAX_OPEN_SEGMENTS) {
      // too many segments to read back cheaply: merge them and these points into one
      const open = await loadOpen();
      open.steps.set(tail.steps, from);
      open.timestamps.set(tail.timestamps, from);
      open.values.set(tail.values, from);
      dropOpenSegments();
      segments.push(encodeSegment(seriesId, openSeq, open, 0, to));
      segEnds = [to];
    } else {
      const doc = encodeSegment(seriesId, openSeq, tail, 0, rest);
      segments.push({ ...doc, from });
      segEnds = [...segEnds, to];
    }
    openN = to;
  }

  // sorted in neither order: the directory covers every full chunk (built once, when that starts)
  let dirPages: MetricChunkDirDoc[] = [];
  let dirFields: Partial<MetricSeriesDoc> = {};
  if (!stepSorted && !tsSorted) {
    const d = dir ?? ChunkDirectory.empty(seriesId, load.dirPage, dirPageEntries);
    for (let seq = dir === undefined ? 0 : dirChunks; seq < openSeq; seq++) {
      const c = await cache.columns(seq);
      await d.add(seq, chunkFragments(c.steps, c.timestamps, c.n));
    }
    dirPages = d.written();
    const state = d.state();
    dirFields = { dir_pages: state.pages, dir_bounds: state.bounds, dir_chunks: openSeq };
  }
  return {
    series: {
      run_id: runId,
      key,
      chunk_size: size,
      count,
      chunks: openSeq + (openN > 0 ? 1 : 0),
      step_sorted: stepSorted,
      ts_sorted: tsSorted,
      step_min: stepMin,
      step_max: stepMax,
      ts_min: tsMin,
      ts_max: tsMax,
      last: pointJson(last),
      ...dirFields,
      ...(segEnds.length > 0 ? { seg_ends: segEnds } : {}),
    },
    chunks: written,
    segments,
    removedSegments,
    dirPages,
    appended: fresh.length,
  };
}

const EMPTY = new Float64Array(0);

/**
 * Marks which of `points[check]` equal a stored point: the open chunk first, then the full chunks
 * [0, sealed) that may hold them: found by binary search over the summaries of a series sorted in
 * some order, else named by the chunk directory (plus any full chunk it does not cover yet).
 */
async function markStoredDuplicates(
  points: readonly SeriesPoint[],
  check: readonly number[],
  dup: Uint8Array,
  at: {
    readonly cache: ChunkCache;
    readonly open: ChunkColumns;
    readonly sealed: number;
    readonly series: MetricSeriesDoc;
    readonly dir: ChunkDirectory | undefined;
    readonly dirChunks: number;
  },
): Promise<void> {
  const { cache, open, sealed, series } = at;
  const openIds = new PointSet();
  openIds.addAll(open);
  const remaining: number[] = [];
  for (const i of check) {
    const p = points[i]!;
    if (openIds.has(p)) dup[i] = 1;
    else remaining.push(i);
  }
  if (remaining.length === 0 || sealed === 0) return;

  if (series.step_sorted || series.ts_sorted) {
    // chunk ranges are monotonic in the sorted order: a point's candidates are one contiguous run
    const byStep = series.step_sorted;
    const maxOf = (d: MetricChunkDoc): number => (byStep ? d.step_max : d.ts_max);
    const minOf = (d: MetricChunkDoc): number => (byStep ? d.step_min : d.ts_min);
    for (const i of remaining) {
      const p = points[i]!;
      const value = byStep ? p.step : p.timestamp;
      let seq = await firstSeq(sealed, async (s) => maxOf(await cache.doc(s)) >= value);
      for (; seq < sealed; seq++) {
        const d = await cache.doc(seq);
        if (minOf(d) > value) break;
        if (p.step < d.step_min || p.step > d.step_max) continue;
        if (p.timestamp < d.ts_min || p.timestamp > d.ts_max) continue;
        if (containsIn(await cache.columns(seq), p)) {
          dup[i] = 1;
          break;
        }
      }
    }
    return;
  }

  const stored = new PointSet();
  if (at.dir !== undefined) {
    const keys: number[] = [];
    for (const i of remaining) keys.push(points[i]!.step, points[i]!.timestamp);
    const found = await at.dir.candidates(keys);
    for (let seq = at.dirChunks; seq < sealed; seq++) found.add(seq);
    for (const seq of [...found].sort((a, b) => a - b)) {
      if (seq < sealed) stored.addAll(await cache.columns(seq));
    }
  } else {
    // a series stored before the directory existed: every full chunk whose ranges may hold them
    const stepLo = points[remaining[0]!]!.step;
    const stepHi = points[remaining[remaining.length - 1]!]!.step;
    for (let seq = 0; seq < sealed; seq++) {
      const d = await cache.doc(seq);
      if (d.step_max < stepLo || d.step_min > stepHi) continue;
      stored.addAll(await cache.columns(seq));
    }
  }
  for (const i of remaining) {
    const p = points[i]!;
    if (stored.has(p)) dup[i] = 1;
  }
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
 * points are read; otherwise every chunk is read, but for a range only those the chunk directory
 * (when `loadDir` is given and the series has one) says hold steps in it.
 */
export async function sampleSeries(
  series: MetricSeriesDoc,
  load: ChunkLoader,
  maxResults: number,
  range?: { readonly start: number; readonly end: number },
  loadDir?: DirPageLoader,
): Promise<SeriesPoint[]> {
  if (!series.step_sorted) {
    let points: SeriesPoint[];
    if (
      range !== undefined &&
      loadDir !== undefined &&
      series.dir_pages !== undefined &&
      series.dir_bounds !== undefined
    ) {
      const dir = ChunkDirectory.of(
        metricSeriesId(series.run_id, series.key),
        { pages: series.dir_pages, bounds: series.dir_bounds },
        loadDir,
      );
      const seqs = await dir.overlapping(range.start, -Infinity, range.end, Infinity);
      // chunks the directory does not cover yet: the open one
      for (let seq = series.dir_chunks ?? 0; seq < series.chunks; seq++) seqs.add(seq);
      points = [];
      for (const seq of [...seqs].sort((a, b) => a - b)) {
        const doc = await load(seq);
        if (doc === undefined) continue;
        for (const p of chunkPoints(decodeChunk(doc))) points.push(p);
      }
    } else {
      points = await allPoints(series, load);
    }
    const all = points
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
