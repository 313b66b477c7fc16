import type { DomainEvent } from '@ledgerflow/contracts';

export interface RegistryTag {
  readonly key: string;
  readonly value: string;
}

/** MLflow's model-version stages (canonical spelling). `Deleted_Internal` is never stored. */
export type ModelVersionStage = 'None' | 'Staging' | 'Production' | 'Archived';
export const MODEL_VERSION_STAGES: readonly ModelVersionStage[] = [
  'None',
  'Staging',
  'Production',
  'Archived',
];

/**
 * Every registry event names its registered model by id (stable across renames) and by the name
 * it had when the event happened, so a timeline reads well without a lookup.
 */
interface ModelRef {
  readonly modelId: string;
  readonly name: string;
}
interface VersionRef extends ModelRef {
  /** The version number (MLflow shows it as a string; it is an integer ≥ 1). */
  readonly version: number;
}

// ---- stream `registered-model-<modelId>`: the model and the placement of its versions ----

export type RegisteredModelCreated = DomainEvent<
  'RegisteredModelCreated',
  ModelRef & { readonly description: string; readonly tags: readonly RegistryTag[] }
>;
export type RegisteredModelRenamed = DomainEvent<
  'RegisteredModelRenamed',
  ModelRef & { readonly previousName: string }
>;
export type RegisteredModelDescriptionUpdated = DomainEvent<
  'RegisteredModelDescriptionUpdated',
  ModelRef & { readonly description: string }
>;
export type RegisteredModelTagSet = DomainEvent<
  'RegisteredModelTagSet',
  ModelRef & { readonly key: string; readonly value: string }
>;
export type RegisteredModelTagDeleted = DomainEvent<
  'RegisteredModelTagDeleted',
  ModelRef & { readonly key: string }
>;
/** An alias now points at `version`; `previousVersion` is where it pointed before (null: new alias). */
export type RegisteredModelAliasSet = DomainEvent<
  'RegisteredModelAliasSet',
  ModelRef & {
    readonly alias: string;
    readonly version: number;
    readonly previousVersion: number | null;
  }
>;
export type RegisteredModelAliasDeleted = DomainEvent<
  'RegisteredModelAliasDeleted',
  ModelRef & { readonly alias: string; readonly version: number }
>;
/** Hard delete (MLflow semantics): the model, its versions, tags and aliases are gone; the name is free. */
export type RegisteredModelDeleted = DomainEvent<
  'RegisteredModelDeleted',
  ModelRef & { readonly versions: readonly number[] }
>;
/** A version is born READY with the next number (numbers are never reused, deleted ones included). */
export type ModelVersionCreated = DomainEvent<
  'ModelVersionCreated',
  VersionRef & {
    /** The source as the client sent it (`runs:/…`, `models:/m-…`, a URI). */
    readonly source: string;
    /** Where the artifacts are: the resolved source (a run's artifact URI, a logged model's location). */
    readonly storageLocation: string;
    readonly runId: string;
    readonly runLink: string;
    readonly description: string;
    readonly tags: readonly RegistryTag[];
    /** The 3.x logged model this version promotes ('' for none). */
    readonly loggedModelId: string;
  }
>;
/**
 * One atomic stage change: `version` moves from `fromStage` to `toStage`, and (with
 * archive_existing_versions) every version listed in `archived` moves to Archived in the same event.
 */
export type ModelVersionStageTransitioned = DomainEvent<
  'ModelVersionStageTransitioned',
  VersionRef & {
    readonly fromStage: ModelVersionStage;
    readonly toStage: ModelVersionStage;
    readonly archiveExistingVersions: boolean;
    readonly archived: readonly {
      readonly version: number;
      readonly fromStage: ModelVersionStage;
    }[];
  }
>;
/** Soft delete: the number stays taken; the aliases that pointed at the version are removed. */
export type ModelVersionDeleted = DomainEvent<
  'ModelVersionDeleted',
  VersionRef & { readonly stage: ModelVersionStage; readonly removedAliases: readonly string[] }
>;

export type RegisteredModelEvent =
  | RegisteredModelCreated
  | RegisteredModelRenamed
  | RegisteredModelDescriptionUpdated
  | RegisteredModelTagSet
  | RegisteredModelTagDeleted
  | RegisteredModelAliasSet
  | RegisteredModelAliasDeleted
  | RegisteredModelDeleted
  | ModelVersionCreated
  | ModelVersionStageTransitioned
  | ModelVersionDeleted;

// ---- stream `model-version-<modelId>-<version>`: a version's own annotations ----

export type ModelVersionDescriptionUpdated = DomainEvent<
  'ModelVersionDescriptionUpdated',
  VersionRef & { readonly description: string }
>;
export type ModelVersionTagSet = DomainEvent<
  'ModelVersionTagSet',
  VersionRef & { readonly key: string; readonly value: string }
>;
export type ModelVersionTagDeleted = DomainEvent<
  'ModelVersionTagDeleted',
  VersionRef & { readonly key: string }
>;

export type ModelVersionEvent =
  ModelVersionDescriptionUpdated | ModelVersionTagSet | ModelVersionTagDeleted;

// ---- stream `registered-model-name-<name>`: one owner per name ----

export type RegisteredModelNameClaimed = DomainEvent<
  'RegisteredModelNameClaimed',
  { readonly name: string; readonly modelId: string }
>;
export type RegisteredModelNameReleased = DomainEvent<
  'RegisteredModelNameReleased',
  { readonly name: string; readonly modelId: string }
>;
export type RegisteredModelNameEvent = RegisteredModelNameClaimed | RegisteredModelNameReleased;

/** Every event a registry fold understands (name claims carry no registry state of their own). */
export type RegistryEvent = RegisteredModelEvent | ModelVersionEvent;

export const REGISTERED_MODEL_EVENT_TYPES = [
  'RegisteredModelCreated',
  'RegisteredModelRenamed',
  'RegisteredModelDescriptionUpdated',
  'RegisteredModelTagSet',
  'RegisteredModelTagDeleted',
  'RegisteredModelAliasSet',
  'RegisteredModelAliasDeleted',
  'RegisteredModelDeleted',
  'ModelVersionCreated',
  'ModelVersionStageTransitioned',
  'ModelVersionDeleted',
] as const satisfies readonly RegisteredModelEvent['type'][];

export const MODEL_VERSION_EVENT_TYPES = [
  'ModelVersionDescriptionUpdated',
  'ModelVersionTagSet',
  'ModelVersionTagDeleted',
] as const satisfies readonly ModelVersionEvent['type'][];

/** The event types that carry registry state (what projections and as-of folds subscribe to). */
export const REGISTRY_EVENT_TYPES: readonly RegistryEvent['type'][] = [
  ...REGISTERED_MODEL_EVENT_TYPES,
  ...MODEL_VERSION_EVENT_TYPES,
];

const REGISTRY_TYPE_SET: ReadonlySet<string> = new Set(REGISTRY_EVENT_TYPES);

/** Narrows any recorded event to a registry event. */
export function isRegistryEvent<T extends { readonly type: string }>(e: T): e is T & RegistryEvent {
  return REGISTRY_TYPE_SET.has(e.type);
}

/** Stream ids. */
export const registeredModelStream = (modelId: string): string => `registered-model-${modelId}`;
export const modelVersionStream = (modelId: string, version: number): string =>
  `model-version-${modelId}-${version}`;
export const registeredModelNameStream = (name: string): string => `registered-model-name-${name}`;
