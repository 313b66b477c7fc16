import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  isRegistryEvent,
  versionDocId,
  type ModelVersionDoc,
  type RegisteredModelDoc,
  type RegistryEvent,
} from '@ledgerflow/domain-registry';
import type { Projection, ReadModelWriter } from '@ledgerflow/projections';

export const REGISTERED_MODELS = 'registered_models';
export const MODEL_VERSIONS = 'model_versions';

const REDACTED = {
  source: 'REDACTED-SOURCE-PATH',
  storage_location: 'REDACTED-SOURCE-PATH',
  run_id: 'REDACTED-RUN-ID',
  run_link: 'REDACTED-RUN-LINK',
};

const byKey = (a: { key: string }, b: { key: string }) =>
  a.key < b.key ? -1 : a.key > b.key ? 1 : 0;

function upsertTag(
  tags: readonly { key: string; value: string }[],
  key: string,
  value: string,
): { key: string; value: string }[] {
  return [...tags.filter((t) => t.key !== key), { key, value }].sort(byKey);
}

/**
 * The registry's read models: `registered_models` (by model id, indexed by name) and
 * `model_versions` (by model id + padded number, indexed by model, name and run). A transition
 * with archiving is one event, so every version it moves changes in the same projection
 * transaction: a reader never sees zero or two versions in the target stage mid-change.
 * Built only from events (timestamps are the events' occurredAt), so a rebuild gives the same
 * content hash.
 */
export const registryProjection: Projection = {
  name: 'registry',
  version: 1,
  collections: [
    // cached: searches scan these collections, and readers then cost no I/O or parsing
    { name: REGISTERED_MODELS, indexes: ['name'], cached: true },
    { name: MODEL_VERSIONS, indexes: ['model_id', 'name', 'run_id'], cached: true },
  ],
  async apply(event: RecordedEvent, w: ReadModelWriter): Promise<void> {
    if (!isRegistryEvent(event)) return;
    const e = event as unknown as RegistryEvent;
    const at = event.occurredAt;
    const modelId = e.data.modelId;
    const onModelStream = event.stream.startsWith('registered-model-');

    if (e.type === 'RegisteredModelCreated') {
      const doc: RegisteredModelDoc = {
        model_id: modelId,
        name: e.data.name,
        creation_timestamp: at,
        last_updated_timestamp: at,
        user_id: event.metadata.actor,
        description: e.data.description,
        tags: [...e.data.tags].sort(byKey),
        aliases: [],
        revision: event.revision,
      };
      await w.put(REGISTERED_MODELS, modelId, doc);
      return;
    }
    const model = await w.get<RegisteredModelDoc>(REGISTERED_MODELS, modelId);
    if (model === undefined) return;
    let next: RegisteredModelDoc = onModelStream ? { ...model, revision: event.revision } : model;
    const touch = () => (next = { ...next, last_updated_timestamp: at });
    const versionId = (n: number) => versionDocId(modelId, n);
    const updateVersion = async (
      n: number,
      change: (v: ModelVersionDoc) => ModelVersionDoc,
    ): Promise<void> => {
      const v = await w.get<ModelVersionDoc>(MODEL_VERSIONS, versionId(n));
      if (v !== undefined) await w.put(MODEL_VERSIONS, versionId(n), change(v));
    };
    const allVersionIds = () => w.findIds(MODEL_VERSIONS, 'model_id', modelId);

    switch (e.type) {
      case 'RegisteredModelRenamed':
        next = { ...next, name: e.data.name };
        touch();
        // versions move with their model
        for (const id of await allVersionIds()) {
          const v = await w.get<ModelVersionDoc>(MODEL_VERSIONS, id);
          if (v !== undefined) await w.put(MODEL_VERSIONS, id, { ...v, name: e.data.name });
        }
        break;
      case 'RegisteredModelDescriptionUpdated':
        next = { ...next, description: e.data.description };
        touch();
        break;
      case 'RegisteredModelTagSet':
        next = { ...next, tags: upsertTag(next.tags, e.data.key, e.data.value) };
        break;
      case 'RegisteredModelTagDeleted':
        next = { ...next, tags: next.tags.filter((t) => t.key !== e.data.key) };
        break;
      case 'RegisteredModelAliasSet': {
        const { alias, version, previousVersion } = e.data;
        next = {
          ...next,
          aliases: [...next.aliases.filter((a) => a.alias !== alias), { alias, version }].sort(
            (a, b) => (a.alias < b.alias ? -1 : a.alias > b.alias ? 1 : 0),
          ),
        };
        if (previousVersion !== null)
          await updateVersion(previousVersion, (v) => ({
            ...v,
            aliases: v.aliases.filter((a) => a !== alias),
          }));
        await updateVersion(version, (v) => ({
          ...v,
          aliases: [...v.aliases.filter((a) => a !== alias), alias].sort(),
        }));
        break;
      }
      case 'RegisteredModelAliasDeleted':
        next = { ...next, aliases: next.aliases.filter((a) => a.alias !== e.data.alias) };
        await updateVersion(e.data.version, (v) => ({
          ...v,
          aliases: v.aliases.filter((a) => a !== e.data.alias),
        }));
        break;
      case 'RegisteredModelDeleted':
        for (const id of await allVersionIds()) await w.delete(MODEL_VERSIONS, id);
        await w.delete(REGISTERED_MODELS, modelId);
        return;
      case 'ModelVersionCreated': {
        const d = e.data;
        const doc: ModelVersionDoc = {
          model_id: modelId,
          name: d.name,
          version: d.version,
          creation_timestamp: at,
          last_updated_timestamp: at,
          user_id: event.metadata.actor,
          current_stage: 'None',
          description: d.description,
          source: d.source,
          storage_location: d.storageLocation,
          run_id: d.runId,
          run_link: d.runLink,
          logged_model_id: d.loggedModelId,
          tags: [...d.tags].sort(byKey),
          aliases: [],
          deleted: false,
        };
        await w.put(MODEL_VERSIONS, versionId(d.version), doc);
        touch();
        break;
      }
      case 'ModelVersionStageTransitioned':
        for (const a of e.data.archived)
          await updateVersion(a.version, (v) => ({
            ...v,
            current_stage: 'Archived',
            last_updated_timestamp: at,
          }));
        await updateVersion(e.data.version, (v) => ({
          ...v,
          current_stage: e.data.toStage,
          last_updated_timestamp: at,
        }));
        touch();
        break;
      case 'ModelVersionDeleted': {
        const removed = new Set(e.data.removedAliases);
        next = { ...next, aliases: next.aliases.filter((a) => !removed.has(a.alias)) };
        await updateVersion(e.data.version, (v) => ({
          ...v,
          ...REDACTED,
          current_stage: 'Deleted_Internal',
          aliases: [],
          deleted: true,
          last_updated_timestamp: at,
        }));
        touch();
        break;
      }
      case 'ModelVersionDescriptionUpdated':
        await updateVersion(e.data.version, (v) => ({
          ...v,
          description: e.data.description,
          last_updated_timestamp: at,
        }));
        touch();
        break;
      case 'ModelVersionTagSet':
        await updateVersion(e.data.version, (v) => ({
          ...v,
          tags: upsertTag(v.tags, e.data.key, e.data.value),
        }));
        break;
      case 'ModelVersionTagDeleted':
        await updateVersion(e.data.version, (v) => ({
          ...v,
          tags: v.tags.filter((t) => t.key !== e.data.key),
        }));
        break;
    }
    if (next !== model) await w.put(REGISTERED_MODELS, modelId, next);
  },
};
