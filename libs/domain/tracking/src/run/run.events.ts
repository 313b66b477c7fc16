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

export type RunEvent =
  RunCreated | RunUpdated | RunDeleted | RunRestored | RunTagsSet | RunTagDeleted | RunParamsLogged;

export const RUN_EVENT_TYPES = [
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
