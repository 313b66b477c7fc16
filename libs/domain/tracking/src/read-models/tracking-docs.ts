import type { ExperimentEvent, KeyValue } from '../experiment/experiment.events.js';
import type { LifecycleStage } from '../experiment/experiment.decider.js';
import {
  RUN_NAME_TAG,
  type DatasetInputRecord,
  type MetricColumns,
  type RunEvent,
  type RunStatus,
} from '../run/run.events.js';

/** Read model of one experiment, in MLflow's field names. */
export interface ExperimentDoc {
  [field: string]: unknown;
  readonly experiment_id: string;
  readonly name: string;
  readonly artifact_location: string;
  readonly lifecycle_stage: LifecycleStage;
  readonly creation_time: number;
  readonly last_update_time: number;
  readonly tags: readonly KeyValue[];
}

/** Read model of one run's info, tags and params, in MLflow's field names. */
export interface RunDoc {
  [field: string]: unknown;
  readonly run_id: string;
  readonly experiment_id: string;
  readonly run_name: string;
  readonly user_id: string;
  readonly status: RunStatus;
  readonly start_time: number;
  readonly end_time?: number;
  readonly artifact_uri: string;
  readonly lifecycle_stage: LifecycleStage;
  readonly deleted_time?: number;
  readonly tags: readonly KeyValue[];
  readonly params: readonly KeyValue[];
  /** Latest value per key: the max by (step, timestamp, value), as MLflow's latest_metrics. */
  readonly metrics?: readonly LatestMetric[];
  readonly dataset_inputs?: readonly DatasetInputRecord[];
  readonly model_inputs?: readonly { readonly model_id: string }[];
  readonly model_outputs?: readonly { readonly model_id: string; readonly step: number }[];
}

/** One key's latest metric on a run. NaN is kept as value 0 with is_nan, as MLflow stores it. */
export interface LatestMetric {
  readonly key: string;
  readonly value: number;
  readonly timestamp: number;
  readonly step: number;
  readonly is_nan?: true;
}

/** Where an event sits in the log: what folds may use besides the event itself. */
export interface Recorded {
  readonly occurredAt: number;
  readonly position: number;
}

function upsert(list: readonly KeyValue[], entries: readonly KeyValue[]): KeyValue[] {
  const out = list.map((t) => ({ ...t }));
  for (const e of entries) {
    const existing = out.find((t) => t.key === e.key);
    if (existing) (existing as { value: string }).value = e.value;
    else out.push({ key: e.key, value: e.value });
  }
  return out;
}

/** Folds an experiment event into its read-model document. */
export function evolveExperimentDoc(
  doc: ExperimentDoc | undefined,
  event: ExperimentEvent,
  at: Recorded,
): ExperimentDoc | undefined {
  if (event.type === 'ExperimentCreated') {
    return {
      experiment_id: event.data.experimentId,
      name: event.data.name,
      artifact_location: event.data.artifactLocation,
      lifecycle_stage: 'active',
      creation_time: at.occurredAt,
      last_update_time: at.occurredAt,
      tags: upsert([], event.data.tags),
    };
  }
  if (doc === undefined) return undefined;
  switch (event.type) {
    case 'ExperimentRenamed':
      return { ...doc, name: event.data.name, last_update_time: at.occurredAt };
    case 'ExperimentDeleted':
      return { ...doc, lifecycle_stage: 'deleted', last_update_time: at.occurredAt };
    case 'ExperimentRestored':
      return { ...doc, lifecycle_stage: 'active', last_update_time: at.occurredAt };
    case 'ExperimentTagSet':
      return { ...doc, tags: upsert(doc.tags, [{ key: event.data.key, value: event.data.value }]) };
    case 'ExperimentTagDeleted':
      return { ...doc, tags: doc.tags.filter((t) => t.key !== event.data.key) };
  }
}

function withoutDeletedTime(doc: RunDoc): RunDoc {
  const { deleted_time: _dropped, ...rest } = doc;
  return rest;
}

/** Folds a run event into its read-model document. */
export function evolveRunDoc(
  doc: RunDoc | undefined,
  event: RunEvent,
  at: Recorded,
): RunDoc | undefined {
  if (event.type === 'RunCreated') {
    const d = event.data;
    return {
      run_id: d.runId,
      experiment_id: d.experimentId,
      run_name: d.runName,
      user_id: d.userId,
      status: 'RUNNING',
      start_time: d.startTime,
      artifact_uri: d.artifactUri,
      lifecycle_stage: 'active',
      tags: upsert([], d.tags),
      params: [],
    };
  }
  if (doc === undefined) return undefined;
  switch (event.type) {
    case 'RunUpdated': {
      const d = event.data;
      let next: RunDoc = { ...doc };
      if (d.status !== undefined) next = { ...next, status: d.status };
      if (d.endTime !== undefined) next = { ...next, end_time: d.endTime };
      if (d.runName !== undefined) {
        next = {
          ...next,
          run_name: d.runName,
          tags: upsert(next.tags, [{ key: RUN_NAME_TAG, value: d.runName }]),
        };
      }
      return next;
    }
    case 'RunDeleted':
      return { ...doc, lifecycle_stage: 'deleted', deleted_time: at.occurredAt };
    case 'RunRestored':
      return withoutDeletedTime({ ...doc, lifecycle_stage: 'active' });
    case 'RunTagsSet': {
      const tags = upsert(doc.tags, event.data.tags);
      const name = event.data.tags.filter((t) => t.key === RUN_NAME_TAG).pop()?.value;
      return name === undefined ? { ...doc, tags } : { ...doc, tags, run_name: name };
    }
    case 'RunTagDeleted':
      return { ...doc, tags: doc.tags.filter((t) => t.key !== event.data.key) };
    case 'RunParamsLogged':
      return { ...doc, params: upsert(doc.params, event.data.params) };
    case 'MetricsLogged':
      return { ...doc, metrics: latestMetricsAfter(doc.metrics ?? [], event.data) };
    case 'RunInputsLogged': {
      // MLflow links a (name, digest) to a run once: logging it again, even with other tags
      // (another context), changes nothing
      const same = (a: DatasetInputRecord, b: DatasetInputRecord): boolean =>
        a.dataset.name === b.dataset.name && a.dataset.digest === b.dataset.digest;
      const datasets = [...(doc.dataset_inputs ?? [])];
      for (const d of event.data.datasets) if (!datasets.some((x) => same(x, d))) datasets.push(d);
      const models = [...(doc.model_inputs ?? [])];
      for (const m of event.data.models ?? [])
        if (!models.some((x) => x.model_id === m.model_id)) models.push(m);
      return { ...doc, dataset_inputs: datasets, model_inputs: models };
    }
    case 'RunOutputsLogged': {
      const outputs = [...(doc.model_outputs ?? [])];
      for (const m of event.data.models) {
        if (!outputs.some((x) => x.model_id === m.model_id && x.step === m.step)) outputs.push(m);
      }
      return { ...doc, model_outputs: outputs };
    }
  }
}

/**
 * MLflow's rule for a key's latest metric: a point replaces it when (step, timestamp, value) is
 * strictly greater; a NaN value compares as the 0 it is stored as.
 */
export function isMoreRecent(
  a: { step: number; timestamp: number; value: number },
  b: { step: number; timestamp: number; value: number },
): boolean {
  if (a.step !== b.step) return a.step > b.step;
  if (a.timestamp !== b.timestamp) return a.timestamp > b.timestamp;
  return a.value > b.value;
}

/** Folds a metric batch into the latest-per-key list (cost grows with the batch, never the history). */
export function latestMetricsAfter(
  current: readonly LatestMetric[],
  batch: MetricColumns,
): LatestMetric[] {
  const byKey = new Map(current.map((m) => [m.key, m]));
  const nan = new Set(batch.nan ?? []);
  for (let i = 0; i < batch.k.length; i++) {
    const key = batch.keys[batch.k[i]!]!;
    const candidate: LatestMetric = nan.has(i)
      ? { key, value: 0, timestamp: batch.t[i]!, step: batch.s[i]!, is_nan: true }
      : { key, value: batch.v[i]!, timestamp: batch.t[i]!, step: batch.s[i]! };
    const existing = byKey.get(key);
    if (existing === undefined || isMoreRecent(candidate, existing)) byKey.set(key, candidate);
  }
  return [...byKey.values()];
}

/** A run document after its experiment was deleted or restored (MLflow cascades both). */
export function cascadeExperimentLifecycle(
  doc: RunDoc,
  stage: LifecycleStage,
  at: Recorded,
): RunDoc {
  return stage === 'deleted'
    ? { ...doc, lifecycle_stage: 'deleted', deleted_time: at.occurredAt }
    : withoutDeletedTime({ ...doc, lifecycle_stage: 'active' });
}
