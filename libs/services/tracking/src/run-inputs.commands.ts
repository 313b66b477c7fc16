import { Inject, Injectable } from '@nestjs/common';
import type { DomainEvent, EventMetadata } from '@ledgerflow/contracts';
import {
  experimentDecider,
  experimentStream,
  runDecider,
  runInputsDecider,
  runStream,
  type ExperimentFacts,
  type LogRunInputs,
  type RunInputsCommandEnvelope,
} from '@ledgerflow/domain-tracking';
import {
  AGGREGATE_STORE,
  type AggregateCommand,
  type AggregateStore,
} from '@ledgerflow/event-store';
import type { ProjectionRunner } from '@ledgerflow/projections';
import { PROJECTION_RUNNER } from './tokens.js';

type AnyCommand = AggregateCommand<unknown, unknown, DomainEvent>;

/** runs/log-inputs: returns once the run read model shows the inputs. */
@Injectable()
export class RunInputsCommands {
  constructor(
    @Inject(AGGREGATE_STORE) private readonly aggregates: AggregateStore,
    @Inject(PROJECTION_RUNNER) private readonly projections: ProjectionRunner,
  ) {}

  async logInputs(command: LogRunInputs, metadata: EventMetadata): Promise<void> {
    const c = {
      stream: runStream(command.runId),
      decider: runInputsDecider,
      command: undefined,
      // decided against the run's experiment as it is now (a deleted experiment blocks writes)
      prepare: async (): Promise<RunInputsCommandEnvelope> => {
        const { state } = await this.aggregates.load(runStream(command.runId), runDecider);
        let experiment: ExperimentFacts = {
          exists: false,
          lifecycleStage: 'active',
          restoredAtPosition: 0,
        };
        if (state.exists) {
          const { state: e } = await this.aggregates.load(
            experimentStream(state.experimentId),
            experimentDecider,
          );
          experiment = {
            exists: e.exists,
            lifecycleStage: e.lifecycleStage,
            restoredAtPosition: e.restoredAtPosition,
          };
        }
        return { command, experiment };
      },
    } as unknown as AnyCommand;
    const { lastPosition } = await this.aggregates.executeAll([c], metadata);
    await this.projections.waitFor(lastPosition);
  }
}
