import type { RecordedEvent } from '@ledgerflow/contracts';
import type { Projection, ReadModelWriter } from '@ledgerflow/projections';

export const DEPLOYMENT_TARGETS = 'deployment_targets';

/** What a deployment can serve of one registered model: its live versions' stages and its aliases. */
export interface DeploymentTargetDoc {
  [field: string]: unknown;
  readonly model_id: string;
  readonly name: string;
  /** Live (not deleted) versions, by number. */
  readonly versions: readonly {
    readonly version: number;
    readonly stage: string;
    readonly storage_location: string;
  }[];
  /** By alias name. */
  readonly aliases: readonly { readonly alias: string; readonly version: number }[];
  /** Registry log position of the last change (the registry's log in distributed mode). */
  readonly position: number;
}

/**
 * The fields of the registry's published events this read model uses (the registry topic's
 * payload, `ledgerflow.registry.events.v1`): read as data, not through the registry's types, so
 * the deployment context depends on the published event shape only.
 */
interface RegistryFacts {
  readonly modelId?: string;
  readonly name?: string;
  readonly version?: number;
  readonly storageLocation?: string;
  readonly toStage?: string;
  readonly archived?: readonly { readonly version: number }[];
  readonly alias?: string;
  readonly removedAliases?: readonly string[];
}

const byVersion = (a: { version: number }, b: { version: number }) => a.version - b.version;
const byAlias = (a: { alias: string }, b: { alias: string }) =>
  a.alias < b.alias ? -1 : a.alias > b.alias ? 1 : 0;

/**
 * Deployment's view of the model registry, fed by the registry's stage and alias changes: in
 * distributed mode the deployment service consumes them from Kafka (`ledgerflow.registry.events.v1`,
 * exactly once, in registry log order, see BusProjectionRunner); embedded mode applies the same
 * projection to the one shared log. Events of other contexts are ignored.
 */
export const deploymentTargetsProjection: Projection = {
  name: 'deployment-targets',
  version: 1,
  collections: [{ name: DEPLOYMENT_TARGETS, indexes: ['name'] }],
  async apply(event: RecordedEvent, w: ReadModelWriter): Promise<void> {
    if (
      !event.stream.startsWith('registered-model-') ||
      event.stream.startsWith('registered-model-name-')
    )
      return;
    const data = event.data as RegistryFacts;
    const modelId = data.modelId;
    if (typeof modelId !== 'string') return;
    if (event.type === 'RegisteredModelCreated') {
      const doc: DeploymentTargetDoc = {
        model_id: modelId,
        name: data.name ?? '',
        versions: [],
        aliases: [],
        position: event.position,
      };
      await w.put(DEPLOYMENT_TARGETS, modelId, doc);
      return;
    }
    const doc = await w.get<DeploymentTargetDoc>(DEPLOYMENT_TARGETS, modelId);
    if (doc === undefined) return;
    const put = (change: Partial<DeploymentTargetDoc>) =>
      w.put(DEPLOYMENT_TARGETS, modelId, { ...doc, ...change, position: event.position });
    const version = data.version ?? 0;
    switch (event.type) {
      case 'RegisteredModelRenamed':
        await put({ name: data.name ?? doc.name });
        return;
      case 'RegisteredModelDeleted':
        await w.delete(DEPLOYMENT_TARGETS, modelId);
        return;
      case 'ModelVersionCreated':
        await put({
          versions: [
            ...doc.versions.filter((v) => v.version !== version),
            { version, stage: 'None', storage_location: data.storageLocation ?? '' },
          ].sort(byVersion),
        });
        return;
      case 'ModelVersionStageTransitioned': {
        const archived = new Set((data.archived ?? []).map((a) => a.version));
        await put({
          versions: doc.versions.map((v) =>
            v.version === version
              ? { ...v, stage: data.toStage ?? v.stage }
              : archived.has(v.version)
                ? { ...v, stage: 'Archived' }
                : v,
          ),
        });
        return;
      }
      case 'ModelVersionDeleted': {
        const removed = new Set(data.removedAliases ?? []);
        await put({
          versions: doc.versions.filter((v) => v.version !== version),
          aliases: doc.aliases.filter((a) => !removed.has(a.alias) && a.version !== version),
        });
        return;
      }
      case 'RegisteredModelAliasSet':
        await put({
          aliases: [
            ...doc.aliases.filter((a) => a.alias !== data.alias),
            { alias: data.alias ?? '', version },
          ].sort(byAlias),
        });
        return;
      case 'RegisteredModelAliasDeleted':
        await put({ aliases: doc.aliases.filter((a) => a.alias !== data.alias) });
        return;
      default:
        return;
    }
  },
};
