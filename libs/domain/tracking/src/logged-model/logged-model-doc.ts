import type { LifecycleStage } from '../experiment/experiment.decider.js';
import type { KeyValue } from '../experiment/experiment.events.js';
import type { Recorded } from '../read-models/tracking-docs.js';
import type { MetricColumns } from '../run/run.events.js';
import type { LoggedModelEvent, LoggedModelStatus } from './logged-model.events.js';

/** A metric point linked to a logged model (Metric.model_id), as LoggedModelData lists them. */
export interface LoggedModelMetric {
  readonly key: string;
  /** 0 when is_nan, as run metrics store NaN. */
  readonly value: number;
  readonly timestamp: number;
  readonly step: number;
  readonly run_id: string;
  readonly dataset_name?: string;
  readonly dataset_digest?: string;
  readonly is_nan?: true;
}

/** Read model of one logged model, in MLflow's LoggedModelInfo/LoggedModelData field names. */
export interface LoggedModelDoc {
  [field: string]: unknown;
  readonly model_id: string;
  readonly experiment_id: string;
  readonly name: string;
  readonly artifact_uri: string;
  readonly creation_timestamp_ms: number;
  readonly last_updated_timestamp_ms: number;
  readonly status: LoggedModelStatus;
  readonly lifecycle_stage: LifecycleStage;
  readonly model_type?: string;
  readonly source_run_id?: string;
  readonly tags: readonly KeyValue[];
  readonly params: readonly KeyValue[];
  readonly metrics: readonly LoggedModelMetric[];
}

function upsert(list: readonly KeyValue[], entries: readonly KeyValue[]): KeyValue[] {
  const byKey = new Map(list.map((t) => [t.key, t.value]));
  for (const e of entries) byKey.set(e.key, e.value);
  return [...byKey].map(([key, value]) => ({ key, value }));
}

/** Folds a logged-model event into its read-model document. */
export function evolveLoggedModelDoc(
  doc: LoggedModelDoc | undefined,
  event: LoggedModelEvent,
  at: Recorded,
): LoggedModelDoc | undefined {
  if (event.type === 'LoggedModelCreated') {
    const d = event.data;
    return {
      model_id: d.modelId,
      experiment_id: d.experimentId,
      name: d.name,
      artifact_uri: d.artifactUri,
      creation_timestamp_ms: at.occurredAt,
      last_updated_timestamp_ms: at.occurredAt,
      status: 'LOGGED_MODEL_PENDING',
      lifecycle_stage: 'active',
      ...(d.modelType === undefined ? {} : { model_type: d.modelType }),
      ...(d.sourceRunId === undefined ? {} : { source_run_id: d.sourceRunId }),
      tags: upsert([], d.tags),
      params: upsert([], d.params),
      metrics: [],
    };
  }
  if (doc === undefined) return undefined;
  switch (event.type) {
    case 'LoggedModelFinalized':
      return { ...doc, status: event.data.status, last_updated_timestamp_ms: at.occurredAt };
    case 'LoggedModelDeleted':
      return { ...doc, lifecycle_stage: 'deleted', last_updated_timestamp_ms: at.occurredAt };
    // MLflow changes no timestamp for tags and params
    case 'LoggedModelTagsSet':
      return { ...doc, tags: upsert(doc.tags, event.data.tags) };
    case 'LoggedModelTagDeleted':
      return { ...doc, tags: doc.tags.filter((t) => t.key !== event.data.key) };
    case 'LoggedModelParamsLogged':
      return { ...doc, params: upsert(doc.params, event.data.params) };
  }
}

/** The points of a metric batch that name a model (MetricColumns.extras), grouped by model id. */
export function modelMetricsOf(
  runId: string,
  batch: MetricColumns,
): Map<string, LoggedModelMetric[]> {
  const out = new Map<string, LoggedModelMetric[]>();
  if (batch.extras === undefined || batch.extras.length === 0) return out;
  const nan = new Set(batch.nan ?? []);
  for (const extra of batch.extras) {
    if (!extra.model_id) continue;
    const i = extra.i;
    const key = batch.keys[batch.k[i] ?? -1];
    if (key === undefined) continue;
    const point: LoggedModelMetric = {
      key,
      value: nan.has(i) ? 0 : (batch.v[i] ?? 0),
      timestamp: batch.t[i] ?? 0,
      step: batch.s[i] ?? 0,
      run_id: runId,
      ...(extra.dataset_name ? { dataset_name: extra.dataset_name } : {}),
      ...(extra.dataset_digest ? { dataset_digest: extra.dataset_digest } : {}),
      ...(nan.has(i) ? { is_nan: true as const } : {}),
    };
    const list = out.get(extra.model_id) ?? [];
    list.push(point);
    out.set(extra.model_id, list);
  }
  return out;
}

/**
 * Adds model-linked metric points. A point with the same (key, timestamp, step, run) as one
 * already there is dropped, as MLflow's primary key on logged_model_metrics keeps the first.
 */
export function withModelMetrics(
  doc: LoggedModelDoc,
  points: readonly LoggedModelMetric[],
): LoggedModelDoc {
  const id = (m: LoggedModelMetric): string =>
    JSON.stringify([m.key, m.timestamp, m.step, m.run_id]);
  const seen = new Set(doc.metrics.map(id));
  const metrics = [...doc.metrics];
  for (const p of points) {
    if (seen.has(id(p))) continue;
    seen.add(id(p));
    metrics.push(p);
  }
  return metrics.length === doc.metrics.length ? doc : { ...doc, metrics };
}
