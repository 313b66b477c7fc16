import { Inject, Injectable } from '@nestjs/common';
import type { EventMetadata } from '@ledgerflow/contracts';
import {
  experimentDecider,
  experimentNameDecider,
  experimentNameStream,
  experimentStream,
  generateRunName,
  runDecider,
  runStream,
  type ExperimentCommand,
  type KeyValue,
  type RunCommand,
  type RunCommandEnvelope,
} from '@ledgerflow/domain-tracking';
import {
  AGGREGATE_STORE,
  type AggregateCommand,
  type AggregateStore,
} from '@ledgerflow/event-store';
import type { ProjectionRunner } from '@ledgerflow/projections';
import type { DomainEvent } from '@ledgerflow/contracts';
import { experimentFacts, runWithExperiment } from './run-facts.js';
import { PROJECTION_RUNNER, RANDOM } from './tokens.js';

type AnyCommand = AggregateCommand<unknown, unknown, DomainEvent>;

/** A simple async mutex: experiment ids are allocated one at a time. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/**
 * The write side of tracking: validated input in, events out. Every method returns once the
 * read models show its effect, so a client reading right after a write sees it.
 */
@Injectable()
export class TrackingCommands {
  private readonly idLock = new Mutex();
  private maxExperimentId: number | null = null;

  constructor(
    @Inject(AGGREGATE_STORE) private readonly aggregates: AggregateStore,
    @Inject(PROJECTION_RUNNER) private readonly projections: ProjectionRunner,
    @Inject(RANDOM) private readonly random: () => number,
  ) {}

  private async settle(p: Promise<{ lastPosition: number }>): Promise<void> {
    const { lastPosition } = await p;
    await this.projections.readYourWrites(lastPosition);
  }

  private experimentCommand(experimentId: string, command: ExperimentCommand): AnyCommand {
    return { stream: experimentStream(experimentId), decider: experimentDecider, command };
  }

  private async nextExperimentId(): Promise<string> {
    if (this.maxExperimentId === null) {
      let id = 0;
      while (
        (await this.aggregates.load(experimentStream(String(id + 1)), experimentDecider))
          .revision >= 0
      )
        id += 1;
      this.maxExperimentId = id;
    }
    this.maxExperimentId += 1;
    return String(this.maxExperimentId);
  }

  /** Creates the built-in experiment "0" (named Default) if the log does not have it yet. */
  async ensureDefaultExperiment(
    defaultArtifactRoot: string,
    metadata: EventMetadata,
  ): Promise<void> {
    const { revision } = await this.aggregates.load(experimentStream('0'), experimentDecider);
    if (revision >= 0) return;
    await this.createWithId('0', 'Default', joinUri(defaultArtifactRoot, '0'), [], metadata);
  }

  async createExperiment(
    name: string,
    artifactLocation: string | undefined,
    defaultArtifactRoot: string,
    tags: readonly KeyValue[],
    metadata: EventMetadata,
  ): Promise<string> {
    return this.idLock.run(async () => {
      const id = await this.nextExperimentId();
      try {
        await this.createWithId(
          id,
          name,
          artifactLocation ?? joinUri(defaultArtifactRoot, id),
          tags,
          metadata,
        );
      } catch (e) {
        // the append may have committed before the failure (e.g. a timeout waiting for the
        // projection): scan the log again next time instead of handing out this id again
        this.maxExperimentId = null;
        throw e;
      }
      return id;
    });
  }

  private async createWithId(
    id: string,
    name: string,
    artifactLocation: string,
    tags: readonly KeyValue[],
    metadata: EventMetadata,
  ): Promise<void> {
    await this.settle(
      this.aggregates.executeAll(
        [
          {
            stream: experimentNameStream(name),
            decider: experimentNameDecider,
            command: { type: 'ClaimExperimentName', name, experimentId: id },
          },
          this.experimentCommand(id, {
            type: 'CreateExperiment',
            experimentId: id,
            name,
            artifactLocation,
            tags,
          }),
        ],
        metadata,
      ),
    );
  }

  async renameExperiment(
    experimentId: string,
    newName: string,
    metadata: EventMetadata,
  ): Promise<void> {
    const { state } = await this.aggregates.load(experimentStream(experimentId), experimentDecider);
    const oldName = state.name;
    const rename = this.experimentCommand(experimentId, {
      type: 'RenameExperiment',
      experimentId,
      newName,
    });
    if (!state.exists || oldName === newName) {
      await this.settle(this.aggregates.executeAll([rename], metadata));
      return;
    }
    // the rename is decided first so an invalid rename fails before any name is claimed
    await this.settle(
      this.aggregates.executeAll(
        [
          rename,
          {
            stream: experimentNameStream(newName),
            decider: experimentNameDecider,
            command: { type: 'ClaimExperimentName', name: newName, experimentId },
          },
          {
            stream: experimentNameStream(oldName),
            decider: experimentNameDecider,
            command: { type: 'ReleaseExperimentName', name: oldName, experimentId },
          },
        ],
        metadata,
      ),
    );
  }

  async experiment(
    experimentId: string,
    command: ExperimentCommand,
    metadata: EventMetadata,
  ): Promise<void> {
    await this.settle(
      this.aggregates.executeAll([this.experimentCommand(experimentId, command)], metadata),
    );
  }

  async createRun(
    input: {
      experimentId: string;
      userId: string;
      runName: string | null;
      startTime: number;
      tags: readonly KeyValue[];
    },
    runId: string,
    metadata: EventMetadata,
  ): Promise<string> {
    const { state: experiment } = await this.aggregates.load(
      experimentStream(input.experimentId),
      experimentDecider,
    );
    const artifactUri = joinUri(experiment.artifactLocation, `${runId}/artifacts`);
    const runCommand = {
      stream: runStream(runId),
      decider: runDecider,
      command: undefined,
      prepare: async (): Promise<RunCommandEnvelope> => ({
        command: {
          type: 'CreateRun',
          runId,
          experimentId: input.experimentId,
          userId: input.userId,
          runName: input.runName,
          generatedRunName: generateRunName(this.random),
          startTime: input.startTime,
          artifactUri,
          tags: input.tags,
        },
        experiment: await experimentFacts(this.aggregates, input.experimentId),
      }),
    } as unknown as AnyCommand;
    await this.settle(this.aggregates.executeAll([runCommand], metadata));
    return runId;
  }

  /** Runs a command against a run, deciding with the run's experiment as it is now. */
  async run(runId: string, command: RunCommand, metadata: EventMetadata): Promise<void> {
    const runCommand = {
      stream: runStream(runId),
      decider: runDecider,
      command: undefined,
      prepare: async (): Promise<RunCommandEnvelope> => ({
        command,
        experiment: (await runWithExperiment(this.aggregates, runId)).experiment,
      }),
    } as unknown as AnyCommand;
    await this.settle(this.aggregates.executeAll([runCommand], metadata));
  }
}

/** Joins a URI root and a path segment with exactly one slash (`mlflow-artifacts:` + `1` → `mlflow-artifacts:/1`). */
export function joinUri(root: string, segment: string): string {
  return `${root.replace(/\/+$/, '')}/${segment}`;
}
