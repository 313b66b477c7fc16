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
