// The synthetic runs of the search benchmarks: N runs of 20 params, 20 metrics and 10 tags each.
// One definition, three forms: the events Ledgerflow appends, the Run JSON MLflow's REST API shows,
// and the formulas bench/reference/load_mlflow_runs.py uses to load the reference server, so every
// side of a comparison holds the same data, value for value.
import type { NewEvent } from '@ledgerflow/contracts';

export const PARAMS = 20;
export const METRICS = 20;
export const TAGS = 10;
export const BASE_TIME = 1_700_000_000_000;
/** Values of p1: a third of the runs match `params.p1 = 'x'`. */
export const P1_VALUES = ['x', 'y', 'z'] as const;

/** Run i's id: 32 hex digits, like MLflow's uuid4 hex. */
export const runId = (i: number): string => i.toString(16).padStart(32, '0');

/** Metric m<j> of run i: a hash spread evenly over [0, 1), so `m1 > 0.5` keeps about half. */
export const metricValue = (i: number, j: number): number =>
  ((i * 2654435761 + j * 40503) % 4294967296) / 4294967296;

export const startTime = (i: number): number => BASE_TIME + i * 1000;

export interface KeyValue {
  readonly key: string;
  readonly value: string;
}

export const runParams = (i: number): KeyValue[] =>
  Array.from({ length: PARAMS }, (_, j) => ({
    key: `p${j}`,
    value: j === 1 ? P1_VALUES[i % 3]! : `v${(i * 7 + j) % 100}`,
  }));

/** Ten user tags plus the mlflow.runName tag every run carries. */
export const runTags = (i: number): KeyValue[] => [
  ...Array.from({ length: TAGS }, (_, j) => ({ key: `t${j}`, value: `tag${(i + j) % 10}` })),
  { key: 'mlflow.runName', value: `run-${i}` },
];

/** The events the tracking service appends for run i (stream `run-<id>`). */
export function runEvents(i: number, experimentId: string): NewEvent[] {
  const id = runId(i);
  const start = startTime(i);
  const metadata = { actor: 'bench', correlationId: `bench-${i}`, causationId: null };
  const ev = (n: number, type: string, data: unknown): NewEvent => ({
    id: `${id}-${n}`,
    type,
    schemaVersion: 1,
    occurredAt: start,
    data,
    metadata,
  });
  return [
    ev(0, 'RunCreated', {
      runId: id,
      experimentId,
      userId: 'bench',
      runName: `run-${i}`,
      startTime: start,
      artifactUri: `mlflow-artifacts:/${experimentId}/${id}/artifacts`,
      tags: runTags(i),
    }),
    ev(1, 'RunParamsLogged', { runId: id, params: runParams(i) }),
    ev(2, 'MetricsLogged', {
      runId: id,
      keys: Array.from({ length: METRICS }, (_, j) => `m${j}`),
      k: Array.from({ length: METRICS }, (_, j) => j),
      v: Array.from({ length: METRICS }, (_, j) => metricValue(i, j)),
      t: Array.from({ length: METRICS }, () => start),
      s: Array.from({ length: METRICS }, () => 0),
    }),
    ev(3, 'RunUpdated', { runId: id, status: 'FINISHED', endTime: start + 500 }),
  ];
}

/** Run i as MLflow's REST API returns it (runs/get, runs/search). */
export function runJson(i: number, experimentId: string): Record<string, unknown> {
  const id = runId(i);
  const start = startTime(i);
  return {
    info: {
      run_id: id,
      run_uuid: id,
      run_name: `run-${i}`,
      experiment_id: experimentId,
      user_id: 'bench',
      status: 'FINISHED',
      start_time: start,
      end_time: start + 500,
      artifact_uri: `mlflow-artifacts:/${experimentId}/${id}/artifacts`,
      lifecycle_stage: 'active',
    },
    data: {
      metrics: Array.from({ length: METRICS }, (_, j) => ({
        key: `m${j}`,
        value: metricValue(i, j),
        timestamp: start,
        step: 0,
      })),
      params: runParams(i),
      tags: runTags(i),
    },
    inputs: {},
    outputs: {},
  };
}

/**
 * The ids a search for `metrics.m1 > threshold and params.p1 = 'x'` ordered by `metrics.m<key>
 * DESC` must return first, computed straight from the formulas (the oracle for a benchmark run).
 */
export function expectedTop(
  runs: number,
  threshold: number,
  orderMetric: number,
  limit: number,
): string[] {
  const hits: number[] = [];
  for (let i = 0; i < runs; i++) {
    if (metricValue(i, 1) > threshold && P1_VALUES[i % 3] === 'x') hits.push(i);
  }
  hits.sort(
    (a, b) =>
      metricValue(b, orderMetric) - metricValue(a, orderMetric) ||
      startTime(b) - startTime(a) ||
      (runId(a) < runId(b) ? -1 : 1),
  );
  return hits.slice(0, limit).map(runId);
}
