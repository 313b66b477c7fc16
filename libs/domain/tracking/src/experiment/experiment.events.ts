import type { DomainEvent } from '@ledgerflow/contracts';

export interface KeyValue {
  readonly key: string;
  readonly value: string;
}

export type ExperimentCreated = DomainEvent<
  'ExperimentCreated',
  {
    readonly experimentId: string;
    readonly name: string;
    readonly artifactLocation: string;
    readonly tags: readonly KeyValue[];
  }
>;
export type ExperimentRenamed = DomainEvent<
  'ExperimentRenamed',
  { readonly experimentId: string; readonly name: string; readonly previousName: string }
>;
export type ExperimentDeleted = DomainEvent<'ExperimentDeleted', { readonly experimentId: string }>;
export type ExperimentRestored = DomainEvent<
  'ExperimentRestored',
  { readonly experimentId: string }
>;
export type ExperimentTagSet = DomainEvent<
  'ExperimentTagSet',
  { readonly experimentId: string; readonly key: string; readonly value: string }
>;
export type ExperimentTagDeleted = DomainEvent<
  'ExperimentTagDeleted',
  { readonly experimentId: string; readonly key: string }
>;

export type ExperimentEvent =
  | ExperimentCreated
  | ExperimentRenamed
  | ExperimentDeleted
  | ExperimentRestored
  | ExperimentTagSet
  | ExperimentTagDeleted;

/** Experiment names are unique across active and deleted experiments: one claim stream per name. */
export type ExperimentNameClaimed = DomainEvent<
  'ExperimentNameClaimed',
  { readonly name: string; readonly experimentId: string }
>;
export type ExperimentNameReleased = DomainEvent<
  'ExperimentNameReleased',
  { readonly name: string; readonly experimentId: string }
>;
export type ExperimentNameEvent = ExperimentNameClaimed | ExperimentNameReleased;

export const EXPERIMENT_EVENT_TYPES = [
  'ExperimentCreated',
  'ExperimentRenamed',
  'ExperimentDeleted',
  'ExperimentRestored',
  'ExperimentTagSet',
  'ExperimentTagDeleted',
] as const;

/** Stream ids. */
export const experimentStream = (experimentId: string): string => `experiment-${experimentId}`;
export const experimentNameStream = (name: string): string => `experiment-name-${name}`;
