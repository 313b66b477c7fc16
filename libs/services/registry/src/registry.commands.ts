import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { DomainEvent, EventMetadata } from '@ledgerflow/contracts';
import {
  modelVersionDecider,
  modelVersionStream,
  registeredModelDecider,
  registeredModelNameDecider,
  registeredModelNameStream,
  registeredModelStream,
  type ModelVersionCommand,
  type ModelVersionStage,
  type RegisteredModelCommand,
  type RegistryTag,
} from '@ledgerflow/domain-registry';
import {
  loggedModelDecider,
  loggedModelStream,
  type LoggedModelCommand,
} from '@ledgerflow/domain-tracking';
import {
  AGGREGATE_STORE,
  type AggregateCommand,
  type AggregateStore,
  type ExecuteResult,
} from '@ledgerflow/event-store';
import type { ProjectionRunner } from '@ledgerflow/projections';
import { PROJECTION_RUNNER } from '@ledgerflow/runtime';
import { TRACKING_LOOKUP, type TrackingLookup } from '@ledgerflow/service-calls';
import { modelNotFound, versionNotFound } from './registry.queries.js';
import type { ResolvedSource } from './model-source.js';

type AnyCommand = AggregateCommand<unknown, unknown, DomainEvent>;

/** The logged-model tag listing the registry versions made from it (MLflow's mlflow.modelVersions). */
const MODEL_VERSIONS_TAG = 'mlflow.modelVersions';

type VersionEdit =
  | { readonly type: 'UpdateModelVersion'; readonly description: string }
  | { readonly type: 'SetModelVersionTag'; readonly key: string; readonly value: string }
  | { readonly type: 'DeleteModelVersionTag'; readonly key: string };

/**
 * The write side of the registry: validated input in, events out (one atomic append per request).
 * Names resolve to model ids through the name-claim streams, never through a read model, so a
 * command always acts on the current owner of a name. Every method returns once the read models
 * show its effect.
 */
@Injectable()
export class RegistryCommands {
  constructor(
    @Inject(AGGREGATE_STORE) private readonly aggregates: AggregateStore,
    @Inject(PROJECTION_RUNNER) private readonly projections: ProjectionRunner,
    @Inject(TRACKING_LOOKUP) private readonly tracking: TrackingLookup,
  ) {}

  private async settle(p: Promise<ExecuteResult>): Promise<ExecuteResult> {
    const result = await p;
    await this.projections.readYourWrites(result.lastPosition);
    return result;
  }

  /** The id of the model that owns `name` now (404 when none). */
  async modelIdOf(name: string): Promise<string> {
    const { state } = await this.aggregates.load(
      registeredModelNameStream(name),
      registeredModelNameDecider,
    );
    if (state.owner === null) throw modelNotFound(name);
    return state.owner;
  }

  private modelCommand(modelId: string, command: RegisteredModelCommand): AnyCommand {
    return {
      stream: registeredModelStream(modelId),
      decider: registeredModelDecider,
      command,
    };
  }

  private nameCommand(
    type: 'ClaimRegisteredModelName' | 'ReleaseRegisteredModelName',
    name: string,
    modelId: string,
  ): AnyCommand {
    return {
      stream: registeredModelNameStream(name),
      decider: registeredModelNameDecider,
      command: { type, name, modelId },
    };
  }

  /** Runs one command on the model that owns `name`. */
  async onModel(
    name: string,
    command: RegisteredModelCommand,
    metadata: EventMetadata,
  ): Promise<ExecuteResult> {
    const modelId = await this.modelIdOf(name);
    return this.settle(this.aggregates.executeAll([this.modelCommand(modelId, command)], metadata));
  }

  async createRegisteredModel(
    input: { name: string; description: string; tags: readonly RegistryTag[] },
    metadata: EventMetadata,
  ): Promise<void> {
    const modelId = randomUUID().replaceAll('-', '');
    await this.settle(
      this.aggregates.executeAll(
        [
          this.nameCommand('ClaimRegisteredModelName', input.name, modelId),
          this.modelCommand(modelId, { type: 'CreateRegisteredModel', modelId, ...input }),
        ],
        metadata,
      ),
    );
  }

  async renameRegisteredModel(
    name: string,
    newName: string,
    metadata: EventMetadata,
  ): Promise<void> {
    const modelId = await this.modelIdOf(name);
    if (newName === name) return;
    await this.settle(
      this.aggregates.executeAll(
        [
          this.modelCommand(modelId, { type: 'RenameRegisteredModel', newName }),
          this.nameCommand('ClaimRegisteredModelName', newName, modelId),
          this.nameCommand('ReleaseRegisteredModelName', name, modelId),
        ],
        metadata,
      ),
    );
  }

  async deleteRegisteredModel(name: string, metadata: EventMetadata): Promise<void> {
    const modelId = await this.modelIdOf(name);
    await this.settle(
      this.aggregates.executeAll(
        [
          this.modelCommand(modelId, { type: 'DeleteRegisteredModel' }),
          this.nameCommand('ReleaseRegisteredModelName', name, modelId),
        ],
        metadata,
      ),
    );
  }

  /**
   * Registers a new version (READY); resolves to its number. A version promoted from a 3.x logged
   * model also lists itself in the logged model's `mlflow.modelVersions` tag (as MLflow's server
   * does): in the same atomic append when tracking's streams share this log (embedded mode),
   * otherwise by asking tracking once the version exists (idempotent, so a retried request
   * completes the link).
   */
  async createModelVersion(
    name: string,
    input: ResolvedSource & { runLink: string; description: string; tags: readonly RegistryTag[] },
    metadata: EventMetadata,
  ): Promise<number> {
    const modelId = await this.modelIdOf(name);
    const modelStream = registeredModelStream(modelId);
    const commands: AnyCommand[] = [
      this.modelCommand(modelId, { type: 'CreateModelVersion', ...input }),
    ];
    if (input.loggedModelId !== '' && this.tracking.sharesLog) {
      const loggedModelId = input.loggedModelId;
      commands.push({
        stream: loggedModelStream(loggedModelId),
        decider: loggedModelDecider,
        // decided from `prepare`: the number is the one the model stream is about to give out
        command: null,
        prepare: async (): Promise<LoggedModelCommand> => {
          const model = await this.aggregates.load(modelStream, registeredModelDecider);
          const logged = await this.aggregates.load(
            loggedModelStream(loggedModelId),
            loggedModelDecider,
          );
          const entry = { name: model.state.name, version: String(model.state.lastVersion + 1) };
          let listed: { name: string; version: string }[] = [];
          try {
            const parsed: unknown = JSON.parse(logged.state.tags.get(MODEL_VERSIONS_TAG) ?? '[]');
            if (Array.isArray(parsed)) listed = parsed as { name: string; version: string }[];
          } catch {
            // an unreadable tag is replaced
          }
          if (!listed.some((v) => v.name === entry.name && v.version === entry.version))
            listed = [...listed, entry];
          return {
            type: 'SetLoggedModelTags',
            modelId: loggedModelId,
            tags: [{ key: MODEL_VERSIONS_TAG, value: JSON.stringify(listed) }],
          };
        },
      });
    }
    const result = await this.settle(this.aggregates.executeAll(commands, metadata));
    const created = result.events.find((e) => e.type === 'ModelVersionCreated');
    const version = (created?.data as { version: number }).version;
    if (input.loggedModelId !== '' && !this.tracking.sharesLog)
      await this.tracking.linkModelVersion(
        input.loggedModelId,
        { name, version: String(version) },
        metadata,
      );
    return version;
  }

  async transitionStage(
    name: string,
    input: {
      version: number;
      stage: ModelVersionStage;
      archiveExistingVersions: boolean;
      expectedRevision?: number;
    },
    metadata: EventMetadata,
  ): Promise<void> {
    await this.onModel(name, { type: 'TransitionModelVersionStage', ...input }, metadata);
  }

  /** A version's description or tags: its own stream, checked against the model's placement. */
  async editVersion(
    name: string,
    version: number,
    edit: VersionEdit,
    metadata: EventMetadata,
  ): Promise<void> {
    const modelId = await this.modelIdOf(name);
    const prepare = async (): Promise<ModelVersionCommand> => {
      const { state } = await this.aggregates.load(
        registeredModelStream(modelId),
        registeredModelDecider,
      );
      const placement = state.versions.get(version);
      if (!state.exists || state.deleted) throw modelNotFound(name);
      if (placement === undefined || placement.deleted) throw versionNotFound(name, version);
      return {
        ...edit,
        modelId,
        name: state.name,
        version,
        live: true,
        initialTagKeys: placement.initialTagKeys,
      };
    };
    await this.settle(
      this.aggregates.executeAll(
        [
          // taken first, so the edit waits for (and is checked after) any change to the model
          this.modelCommand(modelId, { type: 'RequireLiveModelVersion', version }),
          {
            stream: modelVersionStream(modelId, version),
            decider: modelVersionDecider,
            // decided from `prepare`, which reads the model's placement at execution time
            command: null,
            prepare,
          },
        ],
        metadata,
      ),
    );
  }
}
