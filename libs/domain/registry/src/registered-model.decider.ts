import { MlflowError, invalidParameter, notFound, type Decider } from '@ledgerflow/contracts';
import type {
  ModelVersionStage,
  RegisteredModelEvent,
  RegisteredModelNameEvent,
  RegistryTag,
} from './registry.events.js';

export type RegisteredModelCommand =
  | {
      readonly type: 'CreateRegisteredModel';
      readonly modelId: string;
      readonly name: string;
      readonly description: string;
      readonly tags: readonly RegistryTag[];
    }
  | { readonly type: 'RenameRegisteredModel'; readonly newName: string }
  | { readonly type: 'UpdateRegisteredModel'; readonly description: string }
  | { readonly type: 'DeleteRegisteredModel' }
  | { readonly type: 'SetRegisteredModelTag'; readonly key: string; readonly value: string }
  | { readonly type: 'DeleteRegisteredModelTag'; readonly key: string }
  | {
      readonly type: 'SetRegisteredModelAlias';
      readonly alias: string;
      readonly version: number;
      readonly expectedRevision?: number;
    }
  | {
      readonly type: 'DeleteRegisteredModelAlias';
      readonly alias: string;
      readonly expectedRevision?: number;
    }
  | {
      readonly type: 'CreateModelVersion';
      readonly source: string;
      readonly storageLocation: string;
      readonly runId: string;
      readonly runLink: string;
      readonly description: string;
      readonly tags: readonly RegistryTag[];
      readonly loggedModelId: string;
    }
  | {
      readonly type: 'TransitionModelVersionStage';
      readonly version: number;
      readonly stage: ModelVersionStage;
      readonly archiveExistingVersions: boolean;
      readonly expectedRevision?: number;
    }
  | { readonly type: 'DeleteModelVersion'; readonly version: number }
  /** Emits nothing; refuses unless the version is live (guards edits on the version's own stream). */
  | { readonly type: 'RequireLiveModelVersion'; readonly version: number };

export interface VersionPlacement {
  readonly stage: ModelVersionStage;
  readonly deleted: boolean;
  /** Tag keys the version was created with (later tag edits live on the version's own stream). */
  readonly initialTagKeys: readonly string[];
}

/** What the model stream knows: the model, and where each of its versions stands. */
export interface RegisteredModelState {
  readonly exists: boolean;
  readonly deleted: boolean;
  readonly modelId: string;
  readonly name: string;
  readonly description: string;
  readonly tags: ReadonlyMap<string, string>;
  readonly aliases: ReadonlyMap<string, number>;
  readonly versions: ReadonlyMap<number, VersionPlacement>;
  /** Highest version number ever given out (deleted versions included); 0 before the first. */
  readonly lastVersion: number;
  /**
   * The stream's revision after the last folded event (-1 before any): what a client passes as
   * `expected_version` to guard a transition or alias move against a stale view.
   */
  readonly revision: number;
}

const initial: RegisteredModelState = {
  exists: false,
  deleted: false,
  modelId: '',
  name: '',
  description: '',
  tags: new Map(),
  aliases: new Map(),
  versions: new Map(),
  lastVersion: 0,
  revision: -1,
};

function requireModel(state: RegisteredModelState, name?: string): void {
  if (!state.exists || state.deleted) {
    throw notFound(`Registered Model with name=${name ?? state.name} not found`);
  }
}

function requireVersion(state: RegisteredModelState, version: number): VersionPlacement {
  const v = state.versions.get(version);
  if (v === undefined || v.deleted) {
    throw notFound(`Model Version (name=${state.name}, version=${version}) not found`);
  }
  return v;
}

/** A one-line account of the model's stages and aliases, for conflict messages. */
export function describePlacement(state: RegisteredModelState): string {
  const byStage: string[] = [];
  for (const stage of ['Production', 'Staging', 'Archived'] as const) {
    const vs = [...state.versions]
      .filter(([, v]) => !v.deleted && v.stage === stage)
      .map(([n]) => n)
      .sort((a, b) => a - b);
    if (vs.length > 0) byStage.push(`${stage}: ${vs.join(', ')}`);
  }
  const aliases = [...state.aliases]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([a, v]) => `@${a}=${v}`);
  const parts = [...byStage, ...aliases];
  return parts.length > 0 ? parts.join('; ') : 'no stages or aliases set';
}

function checkExpected(state: RegisteredModelState, expected: number | undefined): void {
  if (expected === undefined || expected === state.revision) return;
  throw new MlflowError(
    'RESOURCE_CONFLICT',
    `Registered model '${state.name}' changed since revision ${expected}: it is at revision ${state.revision} (${describePlacement(state)}).`,
  );
}

const ref = (s: RegisteredModelState) => ({ modelId: s.modelId, name: s.name });

/**
 * The registered-model aggregate (stream `registered-model-<modelId>`). It owns the invariants that
 * span versions: numbering, stage placement (one atomic event per transition, archiving included)
 * and aliases. A version's description and tags live on its own stream (modelVersionDecider).
 */
export const registeredModelDecider: Decider<
  RegisteredModelCommand,
  RegisteredModelState,
  RegisteredModelEvent
> = {
  initialState: () => initial,

  decide(command, state) {
    switch (command.type) {
      case 'CreateRegisteredModel':
        if (state.exists) {
          throw new MlflowError(
            'RESOURCE_ALREADY_EXISTS',
            `Registered Model (name=${command.name}) already exists.`,
          );
        }
        return [
          {
            type: 'RegisteredModelCreated',
            data: {
              modelId: command.modelId,
              name: command.name,
              description: command.description,
              tags: command.tags,
            },
          },
        ];
      case 'RenameRegisteredModel':
        requireModel(state);
        if (command.newName === state.name) return [];
        return [
          {
            type: 'RegisteredModelRenamed',
            data: { modelId: state.modelId, name: command.newName, previousName: state.name },
          },
        ];
      case 'UpdateRegisteredModel':
        requireModel(state);
        return [
          {
            type: 'RegisteredModelDescriptionUpdated',
            data: { ...ref(state), description: command.description },
          },
        ];
      case 'DeleteRegisteredModel':
        requireModel(state);
        return [
          {
            type: 'RegisteredModelDeleted',
            data: {
              ...ref(state),
              versions: [...state.versions.keys()].sort((a, b) => a - b),
            },
          },
        ];
      case 'SetRegisteredModelTag':
        requireModel(state);
        return [
          {
            type: 'RegisteredModelTagSet',
            data: { ...ref(state), key: command.key, value: command.value },
          },
        ];
      case 'DeleteRegisteredModelTag':
        requireModel(state);
        // MLflow: deleting a missing registered-model tag is a no-op
        if (!state.tags.has(command.key)) return [];
        return [{ type: 'RegisteredModelTagDeleted', data: { ...ref(state), key: command.key } }];
      case 'SetRegisteredModelAlias': {
        requireModel(state);
        checkExpected(state, command.expectedRevision);
        requireVersion(state, command.version);
        const previous = state.aliases.get(command.alias) ?? null;
        if (previous === command.version) return [];
        return [
          {
            type: 'RegisteredModelAliasSet',
            data: {
              ...ref(state),
              alias: command.alias,
              version: command.version,
              previousVersion: previous,
            },
          },
        ];
      }
      case 'DeleteRegisteredModelAlias': {
        requireModel(state);
        checkExpected(state, command.expectedRevision);
        const version = state.aliases.get(command.alias);
        // MLflow: deleting an alias that is not set is a no-op
        if (version === undefined) return [];
        return [
          {
            type: 'RegisteredModelAliasDeleted',
            data: { ...ref(state), alias: command.alias, version },
          },
        ];
      }
      case 'CreateModelVersion':
        requireModel(state);
        return [
          {
            type: 'ModelVersionCreated',
            data: {
              ...ref(state),
              version: state.lastVersion + 1,
              source: command.source,
              storageLocation: command.storageLocation,
              runId: command.runId,
              runLink: command.runLink,
              description: command.description,
              tags: command.tags,
              loggedModelId: command.loggedModelId,
            },
          },
        ];
      case 'TransitionModelVersionStage': {
        requireModel(state);
        checkExpected(state, command.expectedRevision);
        const current = requireVersion(state, command.version);
        if (
          command.archiveExistingVersions &&
          command.stage !== 'Staging' &&
          command.stage !== 'Production'
        ) {
          // MLflow raises this without an error code (a 500 the client retries); 400 is the honest answer
          throw invalidParameter(
            `Model version transition cannot archive existing model versions because '${command.stage}' is not an Active stage. Valid stages are Staging, Production`,
          );
        }
        const archived = command.archiveExistingVersions
          ? [...state.versions]
              .filter(([n, v]) => n !== command.version && !v.deleted && v.stage === command.stage)
              .sort(([a], [b]) => a - b)
              .map(([n, v]) => ({ version: n, fromStage: v.stage }))
          : [];
        return [
          {
            type: 'ModelVersionStageTransitioned',
            data: {
              ...ref(state),
              version: command.version,
              fromStage: current.stage,
              toStage: command.stage,
              archiveExistingVersions: command.archiveExistingVersions,
              archived,
            },
          },
        ];
      }
      case 'RequireLiveModelVersion':
        requireModel(state);
        requireVersion(state, command.version);
        return [];
      case 'DeleteModelVersion': {
        requireModel(state);
        const current = requireVersion(state, command.version);
        const removedAliases = [...state.aliases]
          .filter(([, v]) => v === command.version)
          .map(([a]) => a)
          .sort();
        return [
          {
            type: 'ModelVersionDeleted',
            data: { ...ref(state), version: command.version, stage: current.stage, removedAliases },
          },
        ];
      }
    }
  },

  evolve(state, event) {
    const revision = state.revision + 1;
    switch (event.type) {
      case 'RegisteredModelCreated':
        return {
          ...initial,
          exists: true,
          modelId: event.data.modelId,
          name: event.data.name,
          description: event.data.description,
          tags: new Map(event.data.tags.map((t) => [t.key, t.value])),
          revision,
        };
      case 'RegisteredModelRenamed':
        return { ...state, name: event.data.name, revision };
      case 'RegisteredModelDescriptionUpdated':
        return { ...state, description: event.data.description, revision };
      case 'RegisteredModelTagSet': {
        const tags = new Map(state.tags);
        tags.set(event.data.key, event.data.value);
        return { ...state, tags, revision };
      }
      case 'RegisteredModelTagDeleted': {
        const tags = new Map(state.tags);
        tags.delete(event.data.key);
        return { ...state, tags, revision };
      }
      case 'RegisteredModelAliasSet': {
        const aliases = new Map(state.aliases);
        aliases.set(event.data.alias, event.data.version);
        return { ...state, aliases, revision };
      }
      case 'RegisteredModelAliasDeleted': {
        const aliases = new Map(state.aliases);
        aliases.delete(event.data.alias);
        return { ...state, aliases, revision };
      }
      case 'RegisteredModelDeleted':
        return {
          ...state,
          deleted: true,
          aliases: new Map(),
          tags: new Map(),
          versions: new Map(),
          revision,
        };
      case 'ModelVersionCreated': {
        const versions = new Map(state.versions);
        versions.set(event.data.version, {
          stage: 'None',
          deleted: false,
          initialTagKeys: event.data.tags.map((t) => t.key),
        });
        return {
          ...state,
          versions,
          lastVersion: Math.max(state.lastVersion, event.data.version),
          revision,
        };
      }
      case 'ModelVersionStageTransitioned': {
        const versions = new Map(state.versions);
        const move = (version: number, stage: ModelVersionStage) => {
          const v = versions.get(version);
          if (v) versions.set(version, { ...v, stage });
        };
        for (const a of event.data.archived) move(a.version, 'Archived');
        move(event.data.version, event.data.toStage);
        return { ...state, versions, revision };
      }
      case 'ModelVersionDeleted': {
        const versions = new Map(state.versions);
        const v = versions.get(event.data.version);
        if (v) versions.set(event.data.version, { ...v, deleted: true });
        const aliases = new Map(state.aliases);
        for (const a of event.data.removedAliases) aliases.delete(a);
        return { ...state, versions, aliases, revision };
      }
    }
  },
};

export type RegisteredModelNameCommand =
  | { readonly type: 'ClaimRegisteredModelName'; readonly name: string; readonly modelId: string }
  | {
      readonly type: 'ReleaseRegisteredModelName';
      readonly name: string;
      readonly modelId: string;
    };

export interface RegisteredModelNameState {
  readonly owner: string | null;
}

/** Guards name uniqueness (stream `registered-model-name-<name>`): one owner at a time (ADR 0003). */
export const registeredModelNameDecider: Decider<
  RegisteredModelNameCommand,
  RegisteredModelNameState,
  RegisteredModelNameEvent
> = {
  initialState: () => ({ owner: null }),
  decide(command, state) {
    switch (command.type) {
      case 'ClaimRegisteredModelName':
        if (state.owner !== null && state.owner !== command.modelId) {
          throw new MlflowError(
            'RESOURCE_ALREADY_EXISTS',
            `Registered Model (name=${command.name}) already exists.`,
          );
        }
        return state.owner === command.modelId
          ? []
          : [
              {
                type: 'RegisteredModelNameClaimed',
                data: { name: command.name, modelId: command.modelId },
              },
            ];
      case 'ReleaseRegisteredModelName':
        return state.owner === command.modelId
          ? [
              {
                type: 'RegisteredModelNameReleased',
                data: { name: command.name, modelId: command.modelId },
              },
            ]
          : [];
    }
  },
  evolve(_state, event) {
    return event.type === 'RegisteredModelNameClaimed'
      ? { owner: event.data.modelId }
      : { owner: null };
  },
};
