import {
  appendToSeries,
  chunkPointAt,
  compareByStep,
  compareByTimestamp,
  decodeChunk,
  samePoint,
  metricChunkId,
  metricSeriesId,
  readHistory,
  sampleIndices,
  sampleSeries,
  seriesChunkLoader,
  metricSegmentId,
  MAX_OPEN_SEGMENTS,
  type MetricChunkDirDoc,
  type MetricSegmentDoc,
  type MetricChunkDoc,
  type MetricSeriesDoc,
  type SeriesPoint,
} from './metric-chunks.js';

/** A series kept in maps, counting chunk, segment and directory page reads, and chunk writes. */
class SeriesStore {
  series: MetricSeriesDoc | undefined;
  readonly chunks = new Map<number, MetricChunkDoc>();
  readonly segments = new Map<string, MetricSegmentDoc>();
  segmentReads = 0;
  lastSegments: string[] = [];
  lastRemoved: string[] = [];
  readonly dir = new Map<number, MetricChunkDirDoc>();
  reads = 0;
  dirReads = 0;
  lastWrites: number[] = [];
  lastDirWrites: number[] = [];
  constructor(
    private readonly chunkSize: number,
    private readonly dirPageEntries?: number,
  ) {}

  readonly loadChunk = async (seq: number): Promise<MetricChunkDoc | undefined> => {
    this.reads += 1;
    return this.chunks.get(seq);
  };

  readonly loadSegment = async (
    seq: number,
    from: number,
    to: number,
  ): Promise<MetricSegmentDoc | undefined> => {
    this.segmentReads += 1;
    return this.segments.get(metricSegmentId('run1/loss', seq, from, to));
  };

  /** What readers use: sealed chunks as stored, the open chunk from its segments. */
  readonly load = async (seq: number): Promise<MetricChunkDoc | undefined> =>
    seriesChunkLoader(this.series!, { chunk: this.loadChunk, segment: this.loadSegment })(seq);

  readonly loadDir = async (page: number): Promise<MetricChunkDirDoc | undefined> => {
    this.dirReads += 1;
    // stored documents come back frozen, as from a cached read model collection
    const doc = this.dir.get(page);
    return doc === undefined
      ? undefined
      : Object.freeze({ ...doc, entries: Object.freeze([...doc.entries]) });
  };

  async append(points: readonly SeriesPoint[]): Promise<number> {
    const r = await appendToSeries(
      'run1',
      'loss',
      this.series,
      points,
      { chunk: this.loadChunk, segment: this.loadSegment, dirPage: this.loadDir },
      this.chunkSize,
      this.dirPageEntries,
    );
    this.series = r.series;
    this.lastWrites = r.chunks.map((c) => c.seq);
    this.lastSegments = r.segments.map((g) =>
      metricSegmentId('run1/loss', g.seq, g.from, g.from + g.n),
    );
    this.lastRemoved = [...r.removedSegments];
    for (const id of r.removedSegments) this.segments.delete(id);
    for (const g of r.segments) {
      this.segments.set(metricSegmentId('run1/loss', g.seq, g.from, g.from + g.n), g);
    }
    this.lastDirWrites = r.dirPages.map((p) => p.page);
    for (const c of r.chunks) this.chunks.set(c.seq, c);
    for (const p of r.dirPages) this.dir.set(p.page, p);
    return r.appended;
  }

  async all(): Promise<SeriesPoint[]> {
    const out: SeriesPoint[] = [];
    for (let seq = 0; seq < (this.series?.chunks ?? 0); seq++) {
      const c = decodeChunk((await this.load(seq))!);
      for (let i = 0; i < c.n; i++)
        out.push({ step: c.steps[i]!, timestamp: c.timestamps[i]!, value: c.values[i]! });
    }
    return out;
  }
}

const pt = (step: number, value = step / 10, timestamp = 1000 + step): SeriesPoint => ({
  step,
  timestamp,
  value,
});
const range = (n: number, from = 0): SeriesPoint[] =>
  Array.from({ length: n }, (_, i) => pt(from + i));

/** A seeded PRNG (mulberry32), so a failing case can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(xs: T[], rand: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** MLflow's semantics, by brute force: a point is stored unless it equals one stored before. */
function modelAppend(model: SeriesPoint[], batch: readonly SeriesPoint[]): number {
  let added = 0;
  for (const p of [...batch].sort(compareByStep)) {
    if (model.some((q) => samePoint(p, q))) continue;
    model.push(p);
    added += 1;
  }
  return added;
}

describe('metric chunks', () => {
  it('names series and chunks so that id order is chunk order', () => {
    expect(metricSeriesId('abc', 'a/b')).toBe('abc/a/b');
    expect(metricChunkId('abc/x', 2) < metricChunkId('abc/x', 10)).toBe(true);
  });

  it('fills chunks to their size, writes only the open chunk, and keeps summaries', async () => {
    const s = new SeriesStore(4);
    expect(await s.append(range(6))).toBe(6);
    expect(s.series).toMatchObject({ count: 6, chunks: 2, step_sorted: true, ts_sorted: true });
    expect(s.chunks.get(0)).toMatchObject({
      n: 4,
      step_min: 0,
      step_max: 3,
      ts_min: 1000,
      ts_max: 1003,
      value_min: 0,
      value_max: 0.3,
      first: { step: 0, timestamp: 1000, value: 0 },
      last: { step: 3, timestamp: 1003, value: 0.3 },
    });
    s.reads = 0;
    await s.append([pt(6)]);
    // the closed chunk 0 is neither read nor written again; the open chunk 1 gets a segment
    expect(s.lastWrites).toEqual([]);
    expect(s.lastSegments).toEqual([metricSegmentId('run1/loss', 1, 2, 3)]);
    expect(s.reads).toBe(0);
    expect(await s.all()).toEqual(range(7));
  });

  it('writes each append to the open chunk as a segment, compacted when the chunk fills', async () => {
    const s = new SeriesStore(8);
    await s.append(range(3));
    await s.append(range(2, 3));
    s.segmentReads = 0;
    await s.append([pt(5)]);
    // a point past the end needs no read of the open chunk
    expect(s.segmentReads).toBe(0);
    expect(s.series).toMatchObject({ count: 6, chunks: 1, seg_ends: [3, 5, 6] });
    expect(s.chunks.size).toBe(0);
    expect(s.segments.size).toBe(3);
    expect(await s.all()).toEqual(range(6));

    // a duplicate of a point in a segment is found there
    expect(await s.append([pt(4)])).toBe(0);

    // the chunk fills: its segments and the new points become chunk 0, the rest a segment of chunk 1
    expect(await s.append(range(4, 6))).toBe(4);
    expect(s.lastWrites).toEqual([0]);
    expect(s.lastRemoved).toHaveLength(3);
    expect([...s.segments.keys()]).toEqual([metricSegmentId('run1/loss', 1, 0, 2)]);
    expect(s.series).toMatchObject({ count: 10, chunks: 2, seg_ends: [2] });
    expect(s.chunks.get(0)).toMatchObject({ n: 8, step_min: 0, step_max: 7 });
    expect(await s.all()).toEqual(range(10));

    // a batch spanning several chunks seals each one, and ends on a full chunk without a segment
    expect(await s.append(range(22, 10))).toBe(22);
    expect(s.lastWrites).toEqual([1, 2, 3]);
    expect(s.segments.size).toBe(0);
    expect(s.series).toMatchObject({ count: 32, chunks: 4 });
    expect(s.series!.seg_ends).toBeUndefined();
    expect(await s.all()).toEqual(range(32));
  });

  it('merges the segments of an open chunk once there are too many', async () => {
    const s = new SeriesStore(1024);
    for (let i = 0; i < MAX_OPEN_SEGMENTS; i++) await s.append([pt(i)]);
    expect(s.segments.size).toBe(MAX_OPEN_SEGMENTS);
    s.segmentReads = 0;
    await s.append([pt(MAX_OPEN_SEGMENTS)]);
    expect(s.segmentReads).toBe(MAX_OPEN_SEGMENTS);
    expect(s.lastRemoved).toHaveLength(MAX_OPEN_SEGMENTS);
    expect([...s.segments.keys()]).toEqual([
      metricSegmentId('run1/loss', 0, 0, MAX_OPEN_SEGMENTS + 1),
    ]);
    expect(s.series!.seg_ends).toEqual([MAX_OPEN_SEGMENTS + 1]);
    await s.append([pt(MAX_OPEN_SEGMENTS + 1)]);
    expect(s.segments.size).toBe(2);
    expect(await s.all()).toEqual(range(MAX_OPEN_SEGMENTS + 2));
  });

  it('gives a reader that raced a compaction the chunk from a fresh series document', async () => {
    const s = new SeriesStore(8);
    await s.append(range(5));
    const before = s.series!;
    await s.append(range(5, 5)); // chunk 0 fills: its segments are deleted
    expect(s.segments.has(metricSegmentId('run1/loss', 0, 0, 5))).toBe(false);
    const stale = seriesChunkLoader(before, { chunk: s.loadChunk, segment: s.loadSegment });
    const fresh = seriesChunkLoader(
      before,
      { chunk: s.loadChunk, segment: s.loadSegment },
      async () => s.series,
    );
    // without a way to re-read the series it falls back to the chunk document, now written
    expect(decodeChunk((await stale(0))!).n).toBe(8);
    expect(decodeChunk((await fresh(0))!).n).toBe(8);
  });

  it('reads single points straight from the base64 columns, at every byte alignment', async () => {
    const s = new SeriesStore(7);
    const points = [
      pt(0, Number.NaN),
      ...range(6, 1).map((p) => ({ ...p, value: -p.value * 1e300 })),
    ];
    await s.append(points);
    const doc = s.chunks.get(0)!;
    points.forEach((p, i) => expect(chunkPointAt(doc, i)).toEqual(p));
  });

  it('keeps NaN in the payload, and the value range over the other values', async () => {
    const s = new SeriesStore(4);
    await s.append([pt(0, Number.NaN), pt(1, 2), pt(2, -1)]);
    expect(await s.load(0)).toMatchObject({
      value_min: -1,
      value_max: 2,
      first: { value: 'NaN' },
    });
    expect(Number.isNaN((await s.all())[0]!.value)).toBe(true);
  });

  it('drops exact duplicates, within a call and across calls, with NaN equal to NaN', async () => {
    const s = new SeriesStore(4);
    expect(await s.append([pt(0), pt(0), pt(1, Number.NaN)])).toBe(2);
    expect(await s.append([pt(0), pt(1, Number.NaN), pt(1, 0)])).toBe(1);
    expect(await s.append(range(10))).toBe(9);
    // a retry of old points finds them in closed chunks
    expect(await s.append(range(10))).toBe(0);
    expect(s.series?.count).toBe(12);
    // same step and value, other timestamp: a new point
    expect(await s.append([pt(3, 0.3, 5)])).toBe(1);
  });

  it('checks a point past the last one without reading any closed chunk', async () => {
    const s = new SeriesStore(4);
    await s.append(range(40));
    s.reads = 0;
    await s.append([pt(40)]);
    expect(s.reads + s.segmentReads).toBe(0); // the last chunk is full: nothing to read
    s.reads = 0;
    expect(await s.append([pt(5)])).toBe(0);
    // binary search over the chunk summaries, not a scan of all ten chunks
    expect(s.reads).toBeLessThanOrEqual(6);
  });

  it('accepts steps out of order, marks the series unsorted, and still finds duplicates', async () => {
    const s = new SeriesStore(4);
    await s.append([pt(5), pt(6), pt(7)]);
    await s.append([pt(1), pt(9)]);
    expect(s.series).toMatchObject({ step_sorted: false, ts_sorted: false, count: 5 });
    expect(await s.append([pt(5), pt(9), pt(1)])).toBe(0);
    expect(await s.append([pt(2)])).toBe(1);
  });

  it('sorts points within one call so an out-of-order batch stays sorted', async () => {
    const s = new SeriesStore(4);
    await s.append([pt(3), pt(1), pt(2), pt(0)]);
    expect(s.series).toMatchObject({ step_sorted: true, ts_sorted: true });
    expect(await s.all()).toEqual(range(4));
  });
});

describe('out-of-order series and the chunk directory', () => {
  /** Steps 0..blocks*block-1 sent block by block in a shuffled order, leaving out `skip` blocks. */
  async function shuffledSeries(
    s: SeriesStore,
    blocks: number,
    block: number,
    skip: readonly number[] = [],
    seed = 1,
  ): Promise<void> {
    const order = shuffle(
      Array.from({ length: blocks }, (_, b) => b).filter((b) => !skip.includes(b)),
      rng(seed),
    );
    for (const b of order) await s.append(range(block, b * block));
  }

  it('drops duplicates of old points of an out-of-order series, NaN and within-call ones too', async () => {
    const s = new SeriesStore(4);
    await s.append([pt(50), pt(51, Number.NaN), pt(52)]);
    await s.append(range(20, 0));
    await s.append([pt(30, Number.NaN, 5), pt(31)]);
    await s.append(range(12, 60));
    expect(s.series).toMatchObject({ step_sorted: false, ts_sorted: false, count: 37 });
    expect(s.series?.dir_chunks).toBe(9);
    // old points in full chunks, NaN against NaN, a repeat within the call, and two new points
    expect(
      await s.append([
        pt(51, Number.NaN),
        pt(3),
        pt(30, Number.NaN, 5),
        pt(30, Number.NaN, 5),
        pt(65),
        pt(31),
        pt(40),
        pt(40),
        pt(51, 0),
      ]),
    ).toBe(2);
    expect(s.series?.count).toBe(39);
    // a NaN is not a duplicate of a number at the same step and timestamp, nor the reverse
    expect(await s.append([pt(52, Number.NaN), pt(30, 0, 5)])).toBe(2);
    expect(await s.append(range(20, 0))).toBe(0);
    // a series document without a directory (an older read model) falls back to the chunk ranges
    s.series = Object.fromEntries(
      Object.entries(s.series!).filter(([field]) => !field.startsWith('dir_')),
    ) as MetricSeriesDoc;
    expect(await s.append([pt(3), pt(65), pt(51, Number.NaN), pt(41)])).toBe(1);
    expect(s.series.dir_chunks).toBe(10);
  });

  it('reads a bounded number of chunks per append, however many the series holds', async () => {
    const s = new SeriesStore(16);
    await shuffledSeries(s, 321, 10, [100, 200]);
    expect(s.series).toMatchObject({ step_sorted: false, ts_sorted: false, count: 3190 });
    expect(s.series!.chunks).toBeGreaterThanOrEqual(200);
    expect(s.series!.dir_pages!.length).toBeGreaterThan(1);

    // a block never sent, inside the series' ranges: no full chunk holds those keys
    s.reads = 0;
    s.dirReads = 0;
    expect(await s.append(range(10, 1000))).toBe(10);
    expect(s.reads).toBeLessThanOrEqual(2);
    expect(s.dirReads).toBeLessThanOrEqual(2);

    // an old block resent: only the chunks that hold it are read
    s.reads = 0;
    s.dirReads = 0;
    expect(await s.append(range(10, 570))).toBe(0);
    expect(s.reads).toBeLessThanOrEqual(4);
    expect(s.dirReads).toBeLessThanOrEqual(2);

    // half old, half new, straddling two blocks
    s.reads = 0;
    expect(await s.append(range(10, 1995))).toBe(5);
    expect(s.reads).toBeLessThanOrEqual(4);

    // a step-range sample reads only the chunks the directory names
    s.reads = 0;
    const sample = await sampleSeries(s.series!, s.load, 100, { start: 570, end: 579 }, s.loadDir);
    expect(sample).toEqual(range(10, 570));
    expect(s.reads).toBeLessThanOrEqual(4);
  });

  it('stores exactly what MLflow would, on random out-of-order input (seeded)', async () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rand = rng(seed);
      const s = new SeriesStore(2 + Math.floor(rand() * 6), [2, 4, 256][seed % 3]);
      const model: SeriesPoint[] = [];
      const sent: SeriesPoint[] = [];
      const values = [0, -0, 1, 0.5, Number.NaN, -2];
      const fresh = (): SeriesPoint => {
        const p = {
          step: Math.floor(rand() * 60),
          timestamp: Math.floor(rand() * 40),
          value: rand() < 0.8 ? values[Math.floor(rand() * values.length)]! : rand(),
        };
        sent.push(p);
        return p;
      };
      for (let b = 0; b < 40; b++) {
        const batch: SeriesPoint[] = [];
        const n = 1 + Math.floor(rand() * 12);
        for (let i = 0; i < n; i++) {
          const old = sent.length > 0 && rand() < 0.35;
          batch.push(old ? sent[Math.floor(rand() * sent.length)]! : fresh());
        }
        const expected = modelAppend(model, batch);
        expect({ seed, batch: b, appended: await s.append(batch) }).toEqual({
          seed,
          batch: b,
          appended: expected,
        });
      }
      expect(await s.all()).toEqual(model);
      // everything again, in random batches: nothing is new
      const again = shuffle([...model], rand);
      for (let i = 0; i < again.length; i += 7) {
        expect(await s.append(again.slice(i, i + 7))).toBe(0);
      }
      expect((await readHistory(s.series!, s.load, 0, undefined)).points).toEqual(
        [...model].sort(compareByTimestamp),
      );
      const inRange = model.filter((p) => p.step >= 10 && p.step <= 30).sort(compareByStep);
      expect(
        await sampleSeries(s.series!, s.load, 1000, { start: 10, end: 30 }, s.loadDir),
      ).toEqual(inRange);
    }
  });
});

describe('metric history', () => {
  it('pages in (timestamp, step, value) order from the chunk that holds the offset', async () => {
    const s = new SeriesStore(4);
    await s.append(range(10));
    s.reads = 0;
    const page = await readHistory(s.series!, s.load, 3, 3);
    expect(page).toEqual({ points: range(3, 3), more: true });
    expect(s.reads).toBe(2); // chunks 0 and 1 of 0..2
    expect(await readHistory(s.series!, s.load, 8, 5)).toEqual({
      points: range(2, 8),
      more: false,
    });
    expect((await readHistory(s.series!, s.load, 0, undefined)).points).toEqual(range(10));
  });

  it('sorts a series that arrived out of timestamp order', async () => {
    const s = new SeriesStore(4);
    const points = [pt(0, 1, 30), pt(1, 1, 10), pt(2, 1, 20), pt(3, Number.NaN, 10), pt(3, 0, 10)];
    await s.append(points);
    const got = (await readHistory(s.series!, s.load, 0, undefined)).points;
    expect(got).toEqual([...points].sort(compareByTimestamp));
    expect(got.map((p) => p.step)).toEqual([1, 3, 3, 2, 0]);
    // 0 before NaN at the same (timestamp, step): NaN compares as its stored 0, then is_nan
    expect(got[1]!.value).toBe(0);
  });
});

describe('metric sampling', () => {
  it('picks the first row of each NTILE bucket and always the last row', () => {
    expect(sampleIndices(0, 5)).toEqual([]);
    expect(sampleIndices(3, 5)).toEqual([0, 1, 2]);
    expect(sampleIndices(10, 1)).toEqual([9]);
    expect(sampleIndices(10, 2)).toEqual([0, 9]);
    // NTILE(3) over 10 rows: buckets of 4, 3, 3 start at 0, 4, 7; the last pick becomes row 9
    expect(sampleIndices(10, 3)).toEqual([0, 4, 9]);
    expect(sampleIndices(10, 4)).toEqual([0, 3, 6, 9]);
    const big = sampleIndices(10_000_000, 320);
    expect(big).toHaveLength(320);
    expect(big[0]).toBe(0);
    expect(big[319]).toBe(9_999_999);
  });

  it('samples a sorted series reading only the chunks it needs, keeping first and last', async () => {
    const s = new SeriesStore(10);
    await s.append(range(1000));
    s.reads = 0;
    const sample = await sampleSeries(s.series!, s.load, 5);
    expect(sample.map((p) => p.step)).toEqual([0, 200, 400, 600, 999]);
    expect(s.reads).toBe(5);
  });

  it('samples within [start, end], finding the bounds by binary search', async () => {
    const s = new SeriesStore(10);
    await s.append(range(1000));
    s.reads = 0;
    const sample = await sampleSeries(s.series!, s.load, 4, { start: 105, end: 204 });
    expect(sample.map((p) => p.step)).toEqual([105, 130, 155, 204]);
    expect(s.reads).toBeLessThanOrEqual(30);
    expect(await sampleSeries(s.series!, s.load, 4, { start: 2000, end: 3000 })).toEqual([]);
    expect(
      (await sampleSeries(s.series!, s.load, 4, { start: 7, end: 7 })).map((p) => p.step),
    ).toEqual([7]);
  });

  it('never returns more than max_results', async () => {
    const s = new SeriesStore(8);
    await s.append(range(100));
    for (const max of [1, 2, 7, 99, 100, 2500]) {
      const sample = await sampleSeries(s.series!, s.load, max);
      expect(sample.length).toBe(Math.min(max, 100));
      expect(sample[sample.length - 1]!.step).toBe(99);
    }
  });

  it('samples an out-of-order series over all its rows in (step, timestamp, value) order', async () => {
    const s = new SeriesStore(4);
    const points = [pt(5), pt(1), pt(9), pt(3), pt(3, 7, 1), pt(0), pt(8)];
    for (const p of points) await s.append([p]);
    expect(s.series?.step_sorted).toBe(false);
    const sorted = [...points].sort(compareByStep);
    expect(await sampleSeries(s.series!, s.load, 100)).toEqual(sorted);
    expect((await sampleSeries(s.series!, s.load, 3)).map((p) => p.step)).toEqual([0, 3, 9]);
    expect(
      (await sampleSeries(s.series!, s.load, 10, { start: 2, end: 8 })).map((p) => p.step),
    ).toEqual([3, 3, 5, 8]);
  });
});
