import { metricSeriesOf, packRunPoints, type MetricBatchIngested } from './metric-batch.js';

describe('packed metric batches', () => {
  it('round-trip typed columns, NaN included, through the event', () => {
    const event: MetricBatchIngested = {
      type: 'MetricBatchIngested',
      data: {
        clientId: 'c',
        clientBatchId: 'b1',
        runs: [
          packRunPoints(
            'r1',
            ['loss', 'acc'],
            Uint32Array.of(0, 1, 0),
            Float64Array.of(1, 1, 2),
            Float64Array.of(10, 10, 20),
            Float64Array.of(0.5, NaN, -1.7976931348623157e308),
          ),
        ],
      },
    };
    const [series] = metricSeriesOf(JSON.parse(JSON.stringify(event)) as MetricBatchIngested);
    expect(series!.runId).toBe('r1');
    expect(Array.from(series!.k)).toEqual([0, 1, 0]);
    expect(Array.from(series!.s)).toEqual([1, 1, 2]);
    expect(Array.from(series!.v)).toEqual([0.5, NaN, -1.7976931348623157e308]);
  });

  it('packs steps and timestamps as delta varints, exact at the extremes', () => {
    const steps = Float64Array.of(0, 1, 2, -5, 1e12, -(2 ** 50), 2 ** 51, 7);
    const timestamps = Float64Array.of(
      1_700_000_000_000,
      1_700_000_000_000,
      1_700_000_000_001,
      1_699_999_999_000,
      0,
      2 ** 52 - 1,
      2 ** 52 - 1,
      5,
    );
    const keyIndex = Uint32Array.of(0, 1, 0, 300, 2 ** 32 - 1, 0, 1, 2);
    const values = Float64Array.of(1, NaN, -0, Infinity, 5e-324, 2, 3, 4);
    const packed = packRunPoints('r', ['a'], keyIndex, steps, timestamps, values);
    expect(packed.enc).toBe('dv');
    const [series] = metricSeriesOf({
      type: 'MetricBatchIngested',
      data: JSON.parse(JSON.stringify({ clientId: 'c', clientBatchId: 'b', runs: [packed] })),
    });
    expect(Array.from(series!.s)).toEqual(Array.from(steps));
    expect(Array.from(series!.t)).toEqual(Array.from(timestamps));
    expect(Array.from(series!.k)).toEqual(Array.from(keyIndex));
    expect(Object.is(series!.v[2], -0)).toBe(true);
    expect(Array.from(series!.v)).toEqual(Array.from(values));

    // a training loop's columns take a byte or two per point, against 8 raw
    const n = 10_000;
    const loop = packRunPoints(
      'r',
      ['loss'],
      new Uint32Array(n),
      Float64Array.from({ length: n }, (_, i) => i),
      Float64Array.from({ length: n }, (_, i) => 1_700_000_000_000 + Math.floor(i / 10)),
      new Float64Array(n),
    );
    expect(Buffer.from(loop.s, 'base64').length).toBe(n);
    expect(Buffer.from(loop.t, 'base64').length).toBeLessThan(n + 10);
  });

  it('falls back to raw columns when a difference is beyond 2^52, and reads raw events', () => {
    const steps = Float64Array.of(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    const raw = packRunPoints(
      'r',
      ['a'],
      Uint32Array.of(0, 0),
      steps,
      Float64Array.of(1, 2),
      Float64Array.of(3, 4),
    );
    expect(raw.enc).toBeUndefined();
    const [series] = metricSeriesOf({
      type: 'MetricBatchIngested',
      data: { clientId: 'c', clientBatchId: 'b', runs: [raw] },
    });
    expect(Array.from(series!.s)).toEqual(Array.from(steps));
    expect(Array.from(series!.t)).toEqual([1, 2]);
  });

  it('refuses a varint column that ends early or runs over', () => {
    const packed = packRunPoints(
      'r',
      ['a'],
      Uint32Array.of(0, 0),
      Float64Array.of(1, 200),
      Float64Array.of(1, 2),
      Float64Array.of(3, 4),
    );
    const short = { ...packed, s: Buffer.from([2]).toString('base64') };
    const long = { ...packed, s: Buffer.from([2, 2, 2]).toString('base64') };
    for (const bad of [short, long]) {
      expect(() =>
        metricSeriesOf({
          type: 'MetricBatchIngested',
          data: { clientId: 'c', clientBatchId: 'b', runs: [bad] },
        }),
      ).toThrow(RangeError);
    }
  });

  it('restores NaN in REST metric events', () => {
    const [series] = metricSeriesOf({
      type: 'MetricsLogged',
      data: { runId: 'r', keys: ['a'], k: [0, 0], v: [1, 0], t: [5, 6], s: [0, 1], nan: [1] },
    });
    expect(Array.from(series!.v)).toEqual([1, NaN]);
  });

  it('ignores other events', () => {
    expect(metricSeriesOf({ type: 'RunCreated', data: {} })).toEqual([]);
  });
});
