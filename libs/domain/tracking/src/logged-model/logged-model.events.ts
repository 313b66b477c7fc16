import type { DomainEvent } from '@ledgerflow/contracts';
import type { KeyValue } from '../experiment/experiment.events.js';

/** MLflow 3's LoggedModelStatus, by its proto enum name. */
export type LoggedModelStatus =
  | 'LOGGED_MODEL_STATUS_UNSPECIFIED'
  | 'LOGGED_MODEL_PENDING'
  | 'LOGGED_MODEL_READY'
  | 'LOGGED_MODEL_UPLOAD_FAILED';

/** Proto enum numbers, as clients may send them. */
export const LOGGED_MODEL_STATUS_NUMBERS: Readonly<Record<number, LoggedModelStatus>> = {
  0: 'LOGGED_MODEL_STATUS_UNSPECIFIED',
  1: 'LOGGED_MODEL_PENDING',
  2: 'LOGGED_MODEL_READY',
  3: 'LOGGED_MODEL_UPLOAD_FAILED',
};
export const LOGGED_MODEL_STATUSES: readonly LoggedModelStatus[] = Object.values(
  LOGGED_MODEL_STATUS_NUMBERS,
);

/** A logged model created PENDING in an active experiment (POST /mlflow/logged-models). */
export type LoggedModelCreated = DomainEvent<
  'LoggedModelCreated',
  {
    readonly modelId: string;
    readonly experimentId: string;
    readonly name: string;
    readonly artifactUri: string;
    readonly modelType?: string;
    readonly sourceRunId?: string;
    readonly params: readonly KeyValue[];
    readonly tags: readonly KeyValue[];
  }
>;
/** Upload finished (READY) or failed (UPLOAD_FAILED). */
export type LoggedModelFinalized = DomainEvent<
  'LoggedModelFinalized',
  { readonly modelId: string; readonly status: LoggedModelStatus }
>;
/** Soft delete: the model disappears from get and search, as in MLflow. */
export type LoggedModelDeleted = DomainEvent<'LoggedModelDeleted', { readonly modelId: string }>;
export type LoggedModelTagsSet = DomainEvent<
  'LoggedModelTagsSet',
  { readonly modelId: string; readonly tags: readonly KeyValue[] }
>;
export type LoggedModelTagDeleted = DomainEvent<
  'LoggedModelTagDeleted',
  { readonly modelId: string; readonly key: string }
>;
/** Only params not logged before; re-logging the same value produces no event. */
export type LoggedModelParamsLogged = DomainEvent<
  'LoggedModelParamsLogged',
  { readonly modelId: string; readonly params: readonly KeyValue[] }
>;

export type LoggedModelEvent =
  | LoggedModelCreated
  | LoggedModelFinalized
  | LoggedModelDeleted
  | LoggedModelTagsSet
  | LoggedModelTagDeleted
  | LoggedModelParamsLogged;

export const LOGGED_MODEL_EVENT_TYPES = [
  'LoggedModelCreated',
  'LoggedModelFinalized',
  'LoggedModelDeleted',
  'LoggedModelTagsSet',
  'LoggedModelTagDeleted',
  'LoggedModelParamsLogged',
] as const;

export const loggedModelStream = (modelId: string): string => `logged-model-${modelId}`;
