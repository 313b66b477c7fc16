import type { DomainEvent } from '@ledgerflow/contracts';
import type { KeyValue } from '../experiment/experiment.events.js';

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';
export const RUN_STATUSES: readonly RunStatus[] = [
  'RUNNING',
  'SCHEDULED',
  'FINISHED',
  'FAILED',
  'KILLED',
];

export type RunCreated = DomainEvent<
  'RunCreated',
  {
    readonly runId: string;
    readonly experimentId: string;
    readonly userId: string;
    readonly runName: string;
    readonly startTime: number;
    readonly artifactUri: string;
    readonly tags: readonly KeyValue[];
  }
>;
export type RunUpdated = DomainEvent<
  'RunUpdated',
  {
    readonly runId: string;
    readonly status?: RunStatus;
    readonly endTime?: number;
    readonly runName?: string;
  }
>;
export type RunDeleted = DomainEvent<'RunDeleted', { readonly runId: string }>;
export type RunRestored = DomainEvent<'RunRestored', { readonly runId: string }>;
/** Tags set on a run; a `mlflow.runName` tag also renames the run. */
export type RunTagsSet = DomainEvent<
  'RunTagsSet',
  { readonly runId: string; readonly tags: readonly KeyValue[] }
>;
export type RunTagDeleted = DomainEvent<
  'RunTagDeleted',
  { readonly runId: string; readonly key: string }
>;
/** Only params not logged before; re-logging the same value produces no event. */
export type RunParamsLogged = DomainEvent<
  'RunParamsLogged',
  { readonly runId: string; readonly params: readonly KeyValue[] }
>;

/**
 * Metric points for one run, columnar (one event per batch, never one per point): point i is
 * (keys[k[i]], value v[i], timestamp t[i] ms, step s[i]). JSON cannot hold NaN, so a NaN value is
 * stored as 0 with its index listed in `nan`; +-Infinity arrives already clamped to +-MAX_VALUE, as
 * MLflow stores it. `extras` carries MLflow 3's optional per-point model_id / dataset fields.
 */
export interface MetricColumns {
  readonly keys: readonly string[];
  readonly k: readonly number[];
  readonly v: readonly number[];
  readonly t: readonly number[];
  readonly s: readonly number[];
  readonly nan?: readonly number[];
  readonly extras?: readonly {
    readonly i: number;
    readonly model_id?: string;
    readonly dataset_name?: string;
    readonly dataset_digest?: string;
  }[];
}
export type MetricsLogged = DomainEvent<
  'MetricsLogged',
  { readonly runId: string } & MetricColumns
>;

/** A dataset as MLflow's log-inputs carries it. */
export interface DatasetRecord {
  readonly name: string;
  readonly digest: string;
  readonly source_type: string;
  readonly source: string;
  readonly schema?: string;
  readonly profile?: string;
}
export interface DatasetInputRecord {
  readonly tags: readonly KeyValue[];
  readonly dataset: DatasetRecord;
}
/** Datasets (and 3.x model inputs) used by a run. */
export type RunInputsLogged = DomainEvent<
  'RunInputsLogged',
  {
    readonly runId: string;
    readonly datasets: readonly DatasetInputRecord[];
    readonly models?: readonly { readonly model_id: string }[];
  }
>;
/** 3.x logged models produced by a run (runs/outputs). */
export type RunOutputsLogged = DomainEvent<
  'RunOutputsLogged',
  {
    readonly runId: string;
    readonly models: readonly { readonly model_id: string; readonly step: number }[];
  }
>;

export type RunEvent =
  | RunCreated
  | RunUpdated
  | RunDeleted
  | RunRestored
  | RunTagsSet
  | RunTagDeleted
  | RunParamsLogged
  | MetricsLogged
  | RunInputsLogged
  | RunOutputsLogged;

export const RUN_EVENT_TYPES = [
  'MetricsLogged',
  'RunInputsLogged',
  'RunOutputsLogged',
  'MetricsLogged',
  'RunInputsLogged',
  'RunOutputsLogged',
  'RunCreated',
  'RunUpdated',
  'RunDeleted',
  'RunRestored',
  'RunTagsSet',
  'RunTagDeleted',
  'RunParamsLogged',
] as const;

export const runStream = (runId: string): string => `run-${runId}`;

export const RUN_NAME_TAG = 'mlflow.runName';
export const PARENT_RUN_ID_TAG = 'mlflow.parentRunId';
export const USER_TAG = 'mlflow.user';
