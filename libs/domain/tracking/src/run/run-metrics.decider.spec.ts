import { deciderSpec } from '@ledgerflow/testing';
import { MAX_METRIC_VALUE, type MetricPoint } from '../metrics/metric-points.js';
import { runDecider, type ExperimentFacts, type RunCommand } from './run.decider.js';
import type { RunEvent } from './run.events.js';

const active: ExperimentFacts = { exists: true, lifecycleStage: 'active', restoredAtPosition: 0 };
const created: RunEvent = {
  type: 'RunCreated',
  data: {
    runId: 'r1',
    experimentId: '1',
    userId: 'ada',
    runName: 'baseline',
    startTime: 1000,
    artifactUri: 'mlflow-artifacts:/1/r1/artifacts',
    tags: [{ key: 'mlflow.runName', value: 'baseline' }],
  },
};
const paramLogged: RunEvent = {
  type: 'RunParamsLogged',
  data: { runId: 'r1', params: [{ key: 'lr', value: '0.1' }] },
};
const on = (command: RunCommand, experiment: ExperimentFacts = active) => ({ command, experiment });
const m = (key: string, value: number, step = 0, timestamp = 100): MetricPoint => ({
  key,
  value,
  step,
  timestamp,
});
const batch = (over: Partial<Extract<RunCommand, { type: 'LogBatch' }>> = {}): RunCommand => ({
  type: 'LogBatch',
  runId: 'r1',
  metrics: [],
  params: [],
  tags: [],
  ...over,
});
const many = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

describe('run decider: LogMetrics and LogBatch', () => {
  const spec = deciderSpec(runDecider);

  it('logs metrics as one columnar event, NaN as 0 with its index, Infinity clamped', () => {
    spec
      .given([created])
      .when(
        on({
          type: 'LogMetrics',
          runId: 'r1',
          metrics: [
            m('loss', 0.5, 1, 10),
            m('acc', Number.NaN, 1, 10),
            m('loss', Number.POSITIVE_INFINITY, 2, 11),
            m('loss', Number.NEGATIVE_INFINITY, 3, 12),
          ],
        }),
      )
      .then([
        {
          type: 'MetricsLogged',
          data: {
            runId: 'r1',
            keys: ['loss', 'acc'],
            k: [0, 1, 0, 0],
            v: [0.5, 0, MAX_METRIC_VALUE, -MAX_METRIC_VALUE],
            t: [10, 10, 11, 12],
            s: [1, 1, 2, 3],
            nan: [1],
          },
        },
      ]);
  });

  it('drops exact duplicates within a request (key, timestamp, step, value), keeping the first', () => {
    spec
      .given([created])
      .when(
        on({
          type: 'LogMetrics',
          runId: 'r1',
          metrics: [
            m('loss', 1, 0),
            m('loss', 1, 0),
            m('loss', 2, 0),
            m('x', Number.NaN),
            m('x', Number.NaN),
          ],
        }),
      )
      .then([
        {
          type: 'MetricsLogged',
          data: {
            runId: 'r1',
            keys: ['loss', 'x'],
            k: [0, 0, 1],
            v: [1, 2, 0],
            t: [100, 100, 100],
            s: [0, 0, 0],
            nan: [2],
          },
        },
      ]);
  });

  it('appends params, metrics and tags of a batch in that order, in one decision', () => {
    spec
      .given([created, paramLogged])
      .when(
        on(
          batch({
            metrics: [m('loss', 1)],
            params: [
              { key: 'lr', value: '0.1' },
              { key: 'depth', value: '3' },
            ],
            tags: [
              { key: 't', value: 'a' },
              { key: 't', value: 'b' },
            ],
          }),
        ),
      )
      .then([
        { type: 'RunParamsLogged', data: { runId: 'r1', params: [{ key: 'depth', value: '3' }] } },
        {
          type: 'MetricsLogged',
          data: { runId: 'r1', keys: ['loss'], k: [0], v: [1], t: [100], s: [0] },
        },
        { type: 'RunTagsSet', data: { runId: 'r1', tags: [{ key: 't', value: 'b' }] } },
      ]);
  });

  it('writes nothing when a param conflicts, even with valid metrics and tags beside it', () => {
    spec
      .given([created, paramLogged])
      .when(
        on(
          batch({
            metrics: [m('loss', 1)],
            params: [{ key: 'lr', value: '0.2' }],
            tags: [{ key: 't', value: 'a' }],
          }),
        ),
      )
      .thenThrows('INVALID_PARAMETER_VALUE', /Changing param values is not allowed/);
  });

  it('refuses duplicate param keys in one batch, listing the repeats', () => {
    spec
      .given([created])
      .when(
        on(
          batch({
            params: [
              { key: 'a', value: '1' },
              { key: 'a', value: '1' },
            ],
          }),
        ),
      )
      .thenThrows(
        'INVALID_PARAMETER_VALUE',
        "Duplicate parameter keys have been submitted: ['a']. Please ensure the request contains only one param value per param key.",
      );
  });

  it.each([
    ['metrics', { metrics: many(1001, (i) => m('k', i, i)) }, 1000, 1001],
    ['params', { params: many(101, (i) => ({ key: `p${i}`, value: '1' })) }, 100, 101],
    ['tags', { tags: many(101, (i) => ({ key: `t${i}`, value: '1' })) }, 100, 101],
    [
      'metrics, params, and tags',
      {
        metrics: many(950, (i) => m('k', i, i)),
        params: many(30, (i) => ({ key: `p${i}`, value: '1' })),
        tags: many(30, (i) => ({ key: `t${i}`, value: '1' })),
      },
      1000,
      1010,
    ],
  ])('enforces the batch limit on %s', (entity, over, limit, got) => {
    spec
      .given([created])
      .when(on(batch(over)))
      .thenThrows(
        'INVALID_PARAMETER_VALUE',
        `A batch logging request can contain at most ${limit} ${entity}. Got ${got} ${entity}. Please split up ${entity} across multiple requests and try again.`,
      );
  });

  it('accepts exactly 1000 metrics', () => {
    spec
      .given([created])
      .when(on(batch({ metrics: many(1000, (i) => m('k', i, i)) })))
      .then([
        {
          type: 'MetricsLogged',
          data: {
            runId: 'r1',
            keys: ['k'],
            k: many(1000, () => 0),
            v: many(1000, (i) => i),
            t: many(1000, () => 100),
            s: many(1000, (i) => i),
          },
        },
      ]);
  });

  it('refuses metrics and batches on a deleted run or a run of a deleted experiment', () => {
    const deleted: RunEvent = { type: 'RunDeleted', data: { runId: 'r1' } };
    spec
      .given([created, deleted])
      .when(on({ type: 'LogMetrics', runId: 'r1', metrics: [m('loss', 1)] }))
      .thenThrows('INVALID_PARAMETER_VALUE', "must be in the 'active' state");
    spec
      .given([created, deleted])
      .when(on(batch({ metrics: [m('loss', 1)] })))
      .thenThrows('INVALID_PARAMETER_VALUE', "must be in the 'active' state");
    spec
      .given([created])
      .when(on(batch({ metrics: [m('loss', 1)] }), { ...active, lifecycleStage: 'deleted' }))
      .thenThrows('INVALID_PARAMETER_VALUE', "must be in the 'active' state");
  });

  it('answers an unknown run with RESOURCE_DOES_NOT_EXIST', () => {
    spec
      .given([])
      .when(on({ type: 'LogMetrics', runId: 'r1', metrics: [m('loss', 1)] }))
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
    spec.given([]).when(on(batch())).thenThrows('RESOURCE_DOES_NOT_EXIST');
  });

  it('produces no event for an empty batch', () => {
    spec.given([created]).when(on(batch())).then([]);
  });
});
