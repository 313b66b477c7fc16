import { Global, Inject, Injectable, Module } from '@nestjs/common';
import type { EventMetadata } from '@ledgerflow/contracts';
import {
  loggedModelDecider,
  loggedModelStream,
  runStream,
  type ExperimentDoc,
  type LoggedModelCommand,
  type LoggedModelDoc,
  type RunDoc,
} from '@ledgerflow/domain-tracking';
import { AGGREGATE_STORE, type AggregateStore } from '@ledgerflow/event-store';
import type { ProjectionRunner, ReadModelReader } from '@ledgerflow/projections';
import {
  TRACKING_LOOKUP,
  type ExperimentFacts,
  type LoggedModelFacts,
  type RunFacts,
  type TrackingLookup,
} from '@ledgerflow/service-calls';
import { LOGGED_MODELS, loggedModelsProjection } from './logged-models.projection.js';
import { PROJECTION_RUNNER, READ_MODEL_READER } from './tokens.js';
import { EXPERIMENTS, RUNS, trackingProjection } from './tracking.projection.js';

/** The logged-model tag listing the registry versions made from it (MLflow's mlflow.modelVersions). */
export const MODEL_VERSIONS_TAG = 'mlflow.modelVersions';

/**
 * The tag value after listing `entry` (kept when already listed; an unreadable value is replaced),
 * or undefined when nothing changes.
 */
export function withModelVersion(
  current: string | undefined,
  entry: { readonly name: string; readonly version: string },
): string | undefined {
  let listed: { name: string; version: string }[] = [];
  try {
    const parsed: unknown = JSON.parse(current ?? '[]');
    if (Array.isArray(parsed)) listed = parsed as { name: string; version: string }[];
  } catch {
    // an unreadable tag is replaced
  }
  if (listed.some((v) => v.name === entry.name && v.version === entry.version)) return undefined;
  return JSON.stringify([...listed, { name: entry.name, version: entry.version }]);
}

/**
 * TrackingLookup answered in process from the tracking read models: what the other modules use in
 * embedded mode, and what tracking-ingest serves over gRPC in distributed mode.
 */
@Injectable()
export class InProcessTrackingLookup implements TrackingLookup {
  readonly sharesLog = true;

  constructor(
    @Inject(READ_MODEL_READER) private readonly reader: ReadModelReader,
    @Inject(AGGREGATE_STORE) private readonly aggregates: AggregateStore,
    @Inject(PROJECTION_RUNNER) private readonly projections: ProjectionRunner,
  ) {}

  async run(runId: string): Promise<RunFacts | undefined> {
    // while a write was answered ahead of the read models, the run comes from its own stream
    const reader = this.projections.behind()
      ? await this.projections.viewOfStreams(trackingProjection.name, [runStream(runId)])
      : this.reader;
    const doc = await reader.get<RunDoc>(RUNS, runId);
    if (doc === undefined) return undefined;
    return {
      run_id: doc.run_id,
      experiment_id: doc.experiment_id,
      artifact_uri: doc.artifact_uri,
      lifecycle_stage: doc.lifecycle_stage,
      status: doc.status,
      user_id: doc.user_id,
    };
  }

  async loggedModel(modelId: string): Promise<LoggedModelFacts | undefined> {
    const reader = this.projections.behind()
      ? await this.projections.viewOfStreams(loggedModelsProjection.name, [
          loggedModelStream(modelId),
        ])
      : this.reader;
    const doc = await reader.get<LoggedModelDoc>(LOGGED_MODELS, modelId);
    if (doc === undefined) return undefined;
    return {
      model_id: doc.model_id,
      experiment_id: doc.experiment_id,
      name: doc.name,
      artifact_uri: doc.artifact_uri,
      lifecycle_stage: doc.lifecycle_stage,
      ...(doc.source_run_id === undefined || doc.source_run_id === ''
        ? {}
        : { source_run_id: doc.source_run_id }),
    };
  }

  async experiment(experimentId: string): Promise<ExperimentFacts | undefined> {
    return experimentFacts(await this.reader.get<ExperimentDoc>(EXPERIMENTS, experimentId));
  }

  async experimentByName(name: string): Promise<ExperimentFacts | undefined> {
    const [doc] = await this.reader.find<ExperimentDoc>(EXPERIMENTS, 'name', name);
    return experimentFacts(doc);
  }

  async linkModelVersion(
    modelId: string,
    version: { readonly name: string; readonly version: string },
    metadata: EventMetadata,
  ): Promise<void> {
    const stream = loggedModelStream(modelId);
    const result = await this.aggregates.executeAll(
      [
        {
          stream,
          decider: loggedModelDecider,
          command: null,
          prepare: async (): Promise<LoggedModelCommand> => {
            const { state } = await this.aggregates.load(stream, loggedModelDecider);
            const value = withModelVersion(state.tags.get(MODEL_VERSIONS_TAG), version);
            return {
              type: 'SetLoggedModelTags',
              modelId,
              tags: value === undefined ? [] : [{ key: MODEL_VERSIONS_TAG, value }],
            };
          },
        },
      ],
      metadata,
    );
    await this.projections.readYourWrites(result.lastPosition);
  }
}

function experimentFacts(doc: ExperimentDoc | undefined): ExperimentFacts | undefined {
  if (doc === undefined) return undefined;
  return {
    experiment_id: doc.experiment_id,
    name: doc.name,
    artifact_location: doc.artifact_location,
    lifecycle_stage: doc.lifecycle_stage,
  };
}

/**
 * Provides TRACKING_LOOKUP to every module of the process (global): imported by TrackingModule,
 * so where tracking runs in the same process the others ask it directly.
 */
@Global()
@Module({
  providers: [
    InProcessTrackingLookup,
    { provide: TRACKING_LOOKUP, useExisting: InProcessTrackingLookup },
  ],
  exports: [TRACKING_LOOKUP, InProcessTrackingLookup],
})
export class TrackingLookupModule {}
