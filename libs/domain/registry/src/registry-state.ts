import { isRegistryEvent, type ModelVersionStage, type RegistryEvent } from './registry.events.js';

/** A version as the registry shows it after folding events. */
export interface RegistryVersionView {
  readonly version: number;
  source: string;
  storageLocation: string;
  runId: string;
  runLink: string;
  loggedModelId: string;
  description: string;
  readonly tags: Map<string, string>;
  stage: ModelVersionStage;
  deleted: boolean;
  readonly createdAt: number;
  readonly createdBy: string;
  updatedAt: number;
}

/** A registered model as the registry shows it after folding events. */
export interface RegistryModelView {
  readonly modelId: string;
  name: string;
  description: string;
  readonly tags: Map<string, string>;
  readonly aliases: Map<string, number>;
  readonly versions: Map<number, RegistryVersionView>;
  readonly createdAt: number;
  readonly createdBy: string;
  updatedAt: number;
}

/** The whole registry at one log position: live models by id (deleted models are dropped). */
export interface RegistryState {
  readonly models: Map<string, RegistryModelView>;
  /** Log position of the last folded event (0 before any). */
  position: number;
  /** occurredAt of the last folded event (0 before any). */
  at: number;
}

/** The facts a registry fold needs from a recorded event (RecordedEvent satisfies it). */
export interface FoldableEvent {
  readonly type: string;
  readonly data: unknown;
  readonly occurredAt: number;
  readonly position?: number;
  readonly metadata?: { readonly actor: string };
}

export function emptyRegistryState(): RegistryState {
  return { models: new Map(), position: 0, at: 0 };
}

/**
 * Folds one event into the state, in place (the fold is pure from the outside: the same events in
 * the same order always give the same state). Non-registry events are skipped, so a caller may feed
 * the whole log.
 */
export function applyRegistryEvent(state: RegistryState, recorded: FoldableEvent): RegistryState {
  if (recorded.position !== undefined) state.position = recorded.position;
  if (!isRegistryEvent(recorded)) return state;
  state.at = recorded.occurredAt;
  const e = recorded as unknown as RegistryEvent;
  const at = recorded.occurredAt;
  const actor = recorded.metadata?.actor ?? '';
  if (e.type === 'RegisteredModelCreated') {
    state.models.set(e.data.modelId, {
      modelId: e.data.modelId,
      name: e.data.name,
      description: e.data.description,
      tags: new Map(e.data.tags.map((t) => [t.key, t.value])),
      aliases: new Map(),
      versions: new Map(),
      createdAt: at,
      createdBy: actor,
      updatedAt: at,
    });
    return state;
  }
  const model = state.models.get(e.data.modelId);
  if (model === undefined) return state;
  const version = (n: number): RegistryVersionView | undefined => model.versions.get(n);
  switch (e.type) {
    case 'RegisteredModelRenamed':
      model.name = e.data.name;
      model.updatedAt = at;
      break;
    case 'RegisteredModelDescriptionUpdated':
      model.description = e.data.description;
      model.updatedAt = at;
      break;
    case 'RegisteredModelTagSet':
      model.tags.set(e.data.key, e.data.value);
      break;
    case 'RegisteredModelTagDeleted':
      model.tags.delete(e.data.key);
      break;
    case 'RegisteredModelAliasSet':
      model.aliases.set(e.data.alias, e.data.version);
      break;
    case 'RegisteredModelAliasDeleted':
      model.aliases.delete(e.data.alias);
      break;
    case 'RegisteredModelDeleted':
      state.models.delete(e.data.modelId);
      break;
    case 'ModelVersionCreated':
      model.versions.set(e.data.version, {
        version: e.data.version,
        source: e.data.source,
        storageLocation: e.data.storageLocation,
        runId: e.data.runId,
        runLink: e.data.runLink,
        loggedModelId: e.data.loggedModelId,
        description: e.data.description,
        tags: new Map(e.data.tags.map((t) => [t.key, t.value])),
        stage: 'None',
        deleted: false,
        createdAt: at,
        createdBy: actor,
        updatedAt: at,
      });
      model.updatedAt = at;
      break;
    case 'ModelVersionStageTransitioned': {
      for (const a of e.data.archived) {
        const v = version(a.version);
        if (v) {
          v.stage = 'Archived';
          v.updatedAt = at;
        }
      }
      const v = version(e.data.version);
      if (v) {
        v.stage = e.data.toStage;
        v.updatedAt = at;
      }
      model.updatedAt = at;
      break;
    }
    case 'ModelVersionDeleted': {
      const v = version(e.data.version);
      if (v) {
        // MLflow redacts a deleted version's lineage
        v.deleted = true;
        v.source = 'REDACTED-SOURCE-PATH';
        v.storageLocation = 'REDACTED-SOURCE-PATH';
        v.runId = 'REDACTED-RUN-ID';
        v.runLink = 'REDACTED-RUN-LINK';
        v.updatedAt = at;
      }
      for (const a of e.data.removedAliases) model.aliases.delete(a);
      model.updatedAt = at;
      break;
    }
    case 'ModelVersionDescriptionUpdated': {
      const v = version(e.data.version);
      if (v) {
        v.description = e.data.description;
        v.updatedAt = at;
      }
      model.updatedAt = at;
      break;
    }
    case 'ModelVersionTagSet':
      version(e.data.version)?.tags.set(e.data.key, e.data.value);
      break;
    case 'ModelVersionTagDeleted':
      version(e.data.version)?.tags.delete(e.data.key);
      break;
  }
  return state;
}

/** Folds events (in log order) into a fresh registry state. */
export function registryStateFold(
  events: Iterable<FoldableEvent>,
  state: RegistryState = emptyRegistryState(),
): RegistryState {
  for (const e of events) applyRegistryEvent(state, e);
  return state;
}

/** One model's stages and aliases, as plain data (what "as of an instant" compares). */
export interface RegistryPlacementSnapshot {
  readonly name: string;
  /** Stage → live version numbers in it, ascending; every stage present (possibly empty). */
  readonly stages: Readonly<Record<ModelVersionStage, readonly number[]>>;
  /** Alias → version, keys sorted. */
  readonly aliases: Readonly<Record<string, number>>;
  /** Live version numbers, ascending. */
  readonly versions: readonly number[];
}

/** Every live model's stages and aliases, sorted by name. */
export function registryPlacements(state: RegistryState): RegistryPlacementSnapshot[] {
  return [...state.models.values()]
    .map((m) => {
      const live = [...m.versions.values()]
        .filter((v) => !v.deleted)
        .sort((a, b) => a.version - b.version);
      const inStage = (s: ModelVersionStage) =>
        live.filter((v) => v.stage === s).map((v) => v.version);
      return {
        name: m.name,
        stages: {
          None: inStage('None'),
          Staging: inStage('Staging'),
          Production: inStage('Production'),
          Archived: inStage('Archived'),
        },
        aliases: Object.fromEntries(
          [...m.aliases].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        ),
        versions: live.map((v) => v.version),
      };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
