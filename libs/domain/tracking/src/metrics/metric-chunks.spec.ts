import {
  appendToSeries,
  chunkPointAt,
  compareByStep,
  compareByTimestamp,
  decodeChunk,
  metricChunkId,
  metricSeriesId,
  readHistory,
  sampleIndices,
  sampleSeries,
  type MetricChunkDoc,
  type MetricSeriesDoc,
  type SeriesPoint,
} from './metric-chunks.js';

/** A series kept in maps, counting chunk reads and writes. */
class SeriesStore {
  series: MetricSeriesDoc | undefined;
  readonly chunks = new Map<number, MetricChunkDoc>();
  reads = 0;
  lastWrites: number[] = [];
  constructor(private readonly chunkSize: number) {}

  readonly load = async (seq: number): Promise<MetricChunkDoc | undefined> => {
    this.reads += 1;
    return this.chunks.get(seq);
  };

  async append(points: readonly SeriesPoint[]): Promise<number> {
    const r = await appendToSeries('run1', 'loss', this.series, points, this.load, this.chunkSize);
    this.series = r.series;
    this.lastWrites = r.chunks.map((c) => c.seq);
    for (const c of r.chunks) this.chunks.set(c.seq, c);
    return r.appended;
  }

  all(): SeriesPoint[] {
    const out: SeriesPoint[] = [];
    for (let seq = 0; seq < (this.series?.chunks ?? 0); seq++) {
      const c = decodeChunk(this.chunks.get(seq)!);
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
    // the closed chunk 0 is neither read nor written again
    expect(s.lastWrites).toEqual([1]);
    expect(s.reads).toBe(1);
    expect(s.all()).toEqual(range(7));
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
    expect(s.chunks.get(0)).toMatchObject({
      value_min: -1,
      value_max: 2,
      first: { value: 'NaN' },
    });
    expect(Number.isNaN(s.all()[0]!.value)).toBe(true);
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
    expect(s.reads).toBe(1); // only the open chunk
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
    expect(s.all()).toEqual(range(4));
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
