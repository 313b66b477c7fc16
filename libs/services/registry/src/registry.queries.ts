import { Inject, Injectable } from '@nestjs/common';
import { invalidParameter, notFound, MlflowError } from '@ledgerflow/contracts';
import {
  MODEL_VERSION_STAGES,
  modelVersionStream,
  registeredModelNameStream,
  registeredModelStream,
  searchModelVersions,
  searchRegisteredModels,
  versionDocId,
  type ModelVersionDoc,
  type ModelVersionStage,
  type RegisteredModelDoc,
  type RegistrySearch,
} from '@ledgerflow/domain-registry';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import type { ProjectionRunner, ReadModelReader } from '@ledgerflow/projections';
import { PROJECTION_RUNNER, READ_MODEL_READER } from '@ledgerflow/runtime';
import { MODEL_VERSIONS, REGISTERED_MODELS, registryProjection } from './registry.projection.js';

export function modelNotFound(name: string): MlflowError {
  return notFound(`Registered Model with name=${name} not found`);
}

export function versionNotFound(name: string, version: number | string): MlflowError {
  return notFound(`Model Version (name=${name}, version=${version}) not found`);
}

/** For each stage (in the order given), the highest-numbered live version in it. */
export function latestPerStage(
  versions: readonly ModelVersionDoc[],
  stages: readonly ModelVersionStage[] = MODEL_VERSION_STAGES,
): ModelVersionDoc[] {
  const out: ModelVersionDoc[] = [];
  for (const stage of new Set(stages)) {
    let best: ModelVersionDoc | undefined;
    for (const v of versions)
      if (
        !v.deleted &&
        v.current_stage === stage &&
        (best === undefined || v.version > best.version)
      )
        best = v;
    if (best !== undefined) out.push(best);
  }
  return out;
}

/** The read side of the registry: answers from the registry read models only. */
@Injectable()
export class RegistryQueries {
  constructor(
    @Inject(READ_MODEL_READER) private readonly reader: ReadModelReader,
    @Inject(PROJECTION_RUNNER) private readonly projections: ProjectionRunner,
    @Inject(EVENT_STORE) private readonly events: EventStore,
  ) {}

  /**
   * A registered model by name. While a write was answered ahead of the read models
   * (readYourWrites gave up waiting), it is rebuilt from its streams in the log instead, so the
   * answer to that write and reads right after it show it.
   */
  async model(name: string): Promise<RegisteredModelDoc> {
    const doc = this.projections.behind()
      ? await this.modelFromLog(name)
      : (await this.reader.find<RegisteredModelDoc>(REGISTERED_MODELS, 'name', name))[0];
    if (doc === undefined) throw modelNotFound(name);
    return doc;
  }

  private async modelFromLog(name: string): Promise<RegisteredModelDoc | undefined> {
    const claims = await this.events.readStream(registeredModelNameStream(name));
    const last = claims.at(-1);
    if (last?.type !== 'RegisteredModelNameClaimed') return undefined;
    const { modelId } = last.data as { modelId: string };
    const view = await this.projections.viewOfStreams(registryProjection.name, [
      registeredModelStream(modelId),
    ]);
    return view.get<RegisteredModelDoc>(REGISTERED_MODELS, modelId);
  }

  /** Every version of a model, deleted ones included, in version order (one read: a consistent view). */
  versionsOf(modelId: string): Promise<ModelVersionDoc[]> {
    return this.reader.find<ModelVersionDoc>(MODEL_VERSIONS, 'model_id', modelId);
  }

  async modelWithLatest(
    name: string,
  ): Promise<{ model: RegisteredModelDoc; latest: ModelVersionDoc[] }> {
    const model = await this.model(name);
    return { model, latest: latestPerStage(await this.versionsOf(model.model_id)) };
  }

  async latestVersions(
    name: string,
    stages: readonly ModelVersionStage[],
  ): Promise<ModelVersionDoc[]> {
    const model = await this.model(name);
    const versions = await this.versionsOf(model.model_id);
    return latestPerStage(versions, stages.length > 0 ? stages : MODEL_VERSION_STAGES);
  }

  async version(name: string, version: number): Promise<ModelVersionDoc> {
    const model = await this.model(name);
    const reader = this.projections.behind()
      ? await this.projections.viewOfStreams(registryProjection.name, [
          registeredModelStream(model.model_id),
          modelVersionStream(model.model_id, version),
        ])
      : this.reader;
    const doc = await reader.get<ModelVersionDoc>(
      MODEL_VERSIONS,
      versionDocId(model.model_id, version),
    );
    if (doc === undefined || doc.deleted) throw versionNotFound(name, version);
    return doc;
  }

  async versionByAlias(name: string, alias: string): Promise<ModelVersionDoc> {
    const model = await this.model(name);
    if (alias.toLowerCase() === 'latest') {
      const live = (await this.versionsOf(model.model_id)).filter((v) => !v.deleted);
      const highest = live.reduce<ModelVersionDoc | undefined>(
        (best, v) => (best === undefined || v.version > best.version ? v : best),
        undefined,
      );
      if (highest === undefined) throw notFound(`Latest version not found for model ${name}.`);
      return highest;
    }
    const target = model.aliases.find((a) => a.alias === alias);
    if (target === undefined) throw invalidParameter(`Registered model alias ${alias} not found.`);
    return this.version(name, target.version);
  }

  /** `readable` (the caller's read scope) filters before the search, so paging stays right. */
  async searchModels(
    query: RegistrySearch,
    readable?: (name: string) => boolean,
  ): Promise<{
    models: { model: RegisteredModelDoc; latest: ModelVersionDoc[] }[];
    nextPageToken?: string;
  }> {
    const all = await this.reader.scan<RegisteredModelDoc>(REGISTERED_MODELS);
    const result = searchRegisteredModels(
      readable === undefined ? all : all.filter((m) => readable(m.name)),
      query,
    );
    const models = [];
    for (const model of result.models)
      models.push({ model, latest: latestPerStage(await this.versionsOf(model.model_id)) });
    return result.nextPageToken === undefined
      ? { models }
      : { models, nextPageToken: result.nextPageToken };
  }

  async searchVersions(
    query: RegistrySearch,
    readable?: (name: string) => boolean,
  ): Promise<{ versions: ModelVersionDoc[]; nextPageToken?: string }> {
    const all = await this.reader.scan<ModelVersionDoc>(MODEL_VERSIONS);
    return searchModelVersions(
      readable === undefined ? all : all.filter((v) => readable(v.name)),
      query,
    );
  }

  /** Where a version's artifacts are: storage_location, else source (MLflow's download URI). */
  async downloadUri(name: string, version: number): Promise<string> {
    const doc = await this.version(name, version);
    return doc.storage_location || doc.source;
  }
}
