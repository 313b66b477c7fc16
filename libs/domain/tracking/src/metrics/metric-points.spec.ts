import { MAX_METRIC_VALUE, metricColumnsOf, type MetricPoint } from './metric-points.js';

const m = (key: string, value: number, step = 0, timestamp = 1000): MetricPoint => ({
  key,
  value,
  step,
  timestamp,
});

describe('metricColumnsOf', () => {
  it('drops exact duplicates within a batch, keeping the first, with NaN equal to NaN', () => {
    const cols = metricColumnsOf([
      m('a', 1),
      m('a', 1), // duplicate
      m('a', 2), // other value
      m('b', 1), // other key
      m('a', 1, 1), // other step
      m('a', 1, 0, 1001), // other timestamp
      m('a', Number.NaN),
      m('a', Number.NaN), // duplicate NaN
      m('a', 0), // 0 is not NaN (NaN is stored as 0)
      m('a', Number.POSITIVE_INFINITY),
      m('a', MAX_METRIC_VALUE), // equal once +Inf is clamped
    ]);
    expect(cols.keys).toEqual(['a', 'b']);
    expect(cols.k).toEqual([0, 0, 1, 0, 0, 0, 0, 0]);
    expect(cols.v).toEqual([1, 2, 1, 1, 1, 0, 0, MAX_METRIC_VALUE]);
    expect(cols.s).toEqual([0, 0, 0, 1, 0, 0, 0, 0]);
    expect(cols.t).toEqual([1000, 1000, 1000, 1000, 1001, 1000, 1000, 1000]);
    expect(cols.nan).toEqual([5]);
  });

  it('keeps every point of a batch without duplicates, in order', () => {
    const points = Array.from({ length: 1000 }, (_, i) => m(`k${i % 100}`, i / 7, i >> 4, 5));
    const cols = metricColumnsOf(points);
    expect(cols.k).toHaveLength(1000);
    expect(cols.v).toEqual(points.map((p) => p.value));
    expect(cols.nan).toBeUndefined();
  });
});
