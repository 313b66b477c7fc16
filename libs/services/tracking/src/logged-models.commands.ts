import { Inject, Injectable } from '@nestjs/common';
import { runWithExperiment } from './run-facts.js';
import type { DomainEvent, EventMetadata } from '@ledgerflow/contracts';
import {
  experimentDecider,
  experimentStream,
  generateRunName,
  loggedModelDecider,
  loggedModelStream,
  runModelsDecider,
  runStream,
  type KeyValue,
  type LoggedModelCommand,
  type RunModelsCommand,
  type RunModelsCommandEnvelope,
} from '@ledgerflow/domain-tracking';
import {
  AGGREGATE_STORE,
  type AggregateCommand,
  type AggregateStore,
} from '@ledgerflow/event-store';
import type { ProjectionRunner } from '@ledgerflow/projections';
import { PROJECTION_RUNNER, RANDOM } from './tokens.js';

type AnyCommand = AggregateCommand<unknown, unknown, DomainEvent>;

/** What POST /mlflow/logged-models carries, parsed. */
export interface CreateLoggedModelInput {
  readonly experimentId: string;
  readonly name: string | null;
  readonly modelType: string | null;
  readonly sourceRunId: string | null;
  readonly params: readonly KeyValue[];
  readonly tags: readonly KeyValue[];
}

/**
 * The write side of logged models and of a run's model links. Every method returns once the read
 * models show its effect.
 */
@Injectable()
export class LoggedModelCommands {
  constructor(
    @Inject(AGGREGATE_STORE) private readonly aggregates: AggregateStore,
    @Inject(PROJECTION_RUNNER) private readonly projections: ProjectionRunner,
    @Inject(RANDOM) private readonly random: () => number,
  ) {}

  private async settle(p: Promise<{ lastPosition: number }>): Promise<void> {
    const { lastPosition } = await p;
    await this.projections.readYourWrites(lastPosition);
  }

  /** Creates a PENDING logged model with the given id in an active experiment. */
  async create(
    input: CreateLoggedModelInput,
    modelId: string,
    metadata: EventMetadata,
  ): Promise<void> {
    const command = {
      stream: loggedModelStream(modelId),
      decider: loggedModelDecider,
      command: undefined,
      prepare: async (): Promise<LoggedModelCommand> => {
        const { state } = await this.aggregates.load(
          experimentStream(input.experimentId),
          experimentDecider,
        );
        return {
          type: 'CreateLoggedModel',
          modelId,
          experimentId: input.experimentId,
          experiment: {
            exists: state.exists,
            lifecycleStage: state.lifecycleStage,
            artifactLocation: state.artifactLocation,
          },
          name: input.name,
          generatedName: generateRunName(this.random),
          modelType: input.modelType,
          sourceRunId: input.sourceRunId,
          params: input.params,
          tags: input.tags,
        };
      },
    } as unknown as AnyCommand;
    await this.settle(this.aggregates.executeAll([command], metadata));
  }

  /** Runs any other command against an existing logged model. */
  async model(
    command: Exclude<LoggedModelCommand, { type: 'CreateLoggedModel' }>,
    metadata: EventMetadata,
  ): Promise<void> {
    const c = {
      stream: loggedModelStream(command.modelId),
      decider: loggedModelDecider,
      command,
    } as unknown as AnyCommand;
    await this.settle(this.aggregates.executeAll([c], metadata));
  }

  /** Links models to a run (runs/outputs) or records a 2.x MLmodel (runs/log-model). */
  async run(command: RunModelsCommand, metadata: EventMetadata): Promise<void> {
    const c = {
      stream: runStream(command.runId),
      decider: runModelsDecider,
      command: undefined,
      prepare: async (): Promise<RunModelsCommandEnvelope> => ({
        command,
        experiment: (await runWithExperiment(this.aggregates, command.runId)).experiment,
      }),
    } as unknown as AnyCommand;
    await this.settle(this.aggregates.executeAll([c], metadata));
  }
}
