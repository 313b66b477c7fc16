import { Inject, Injectable } from '@nestjs/common';
import { runWithExperiment } from './run-facts.js';
import type { DomainEvent, EventMetadata } from '@ledgerflow/contracts';
import {
  runInputsDecider,
  runStream,
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
      prepare: async (): Promise<RunInputsCommandEnvelope> => ({
        command,
        experiment: (await runWithExperiment(this.aggregates, command.runId)).experiment,
      }),
    } as unknown as AnyCommand;
    const { lastPosition } = await this.aggregates.executeAll([c], metadata);
    await this.projections.readYourWrites(lastPosition);
  }
}
