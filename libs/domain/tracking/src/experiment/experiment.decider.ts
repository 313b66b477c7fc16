import { MlflowError, invalidParameter, notFound, type Decider } from '@ledgerflow/contracts';
import type { ExperimentEvent, ExperimentNameEvent, KeyValue } from './experiment.events.js';

export type LifecycleStage = 'active' | 'deleted';

export type ExperimentCommand =
  | {
      readonly type: 'CreateExperiment';
      readonly experimentId: string;
      readonly name: string;
      readonly artifactLocation: string;
      readonly tags: readonly KeyValue[];
    }
  | { readonly type: 'RenameExperiment'; readonly experimentId: string; readonly newName: string }
  | { readonly type: 'DeleteExperiment'; readonly experimentId: string }
  | { readonly type: 'RestoreExperiment'; readonly experimentId: string }
  | {
      readonly type: 'SetExperimentTag';
      readonly experimentId: string;
      readonly key: string;
      readonly value: string;
    }
  | { readonly type: 'DeleteExperimentTag'; readonly experimentId: string; readonly key: string };

export interface ExperimentState {
  readonly exists: boolean;
  readonly experimentId: string;
  readonly name: string;
  readonly artifactLocation: string;
  readonly lifecycleStage: LifecycleStage;
  readonly tags: ReadonlyMap<string, string>;
  /** Log position of the last restore; run deletions before it were undone by the restore. */
  readonly restoredAtPosition: number;
}

const initial: ExperimentState = {
  exists: false,
  experimentId: '',
  name: '',
  artifactLocation: '',
  lifecycleStage: 'active',
  tags: new Map(),
  restoredAtPosition: 0,
};

function requireExists(state: ExperimentState, id: string): void {
  if (!state.exists) throw notFound(`No Experiment with id=${id} exists`);
}

function requireActive(state: ExperimentState): void {
  if (state.lifecycleStage !== 'active') {
    throw invalidParameter(
      `The experiment ${state.experimentId} must be in the 'active' state. Current state is ${state.lifecycleStage}.`,
    );
  }
}

/** The experiment aggregate (stream `experiment-<id>`). */
export const experimentDecider: Decider<ExperimentCommand, ExperimentState, ExperimentEvent> = {
  initialState: () => initial,

  decide(command, state) {
    switch (command.type) {
      case 'CreateExperiment':
        if (state.exists) {
          throw new MlflowError(
            'RESOURCE_ALREADY_EXISTS',
            `Experiment id=${command.experimentId} already exists.`,
          );
        }
        return [
          {
            type: 'ExperimentCreated',
            data: {
              experimentId: command.experimentId,
              name: command.name,
              artifactLocation: command.artifactLocation,
              tags: command.tags,
            },
          },
        ];
      case 'RenameExperiment':
        requireExists(state, command.experimentId);
        if (state.lifecycleStage !== 'active') {
          // MLflow's code, but 400: a 5xx would make the client retry a hopeless request for minutes
          throw new MlflowError('INVALID_STATE', 'Cannot rename a non-active experiment.', 400);
        }
        if (command.newName === state.name) return [];
        return [
          {
            type: 'ExperimentRenamed',
            data: {
              experimentId: command.experimentId,
              name: command.newName,
              previousName: state.name,
            },
          },
        ];
      case 'DeleteExperiment':
        if (!state.exists || state.lifecycleStage !== 'active') {
          throw notFound(`No Experiment with id=${command.experimentId} exists`);
        }
        if (command.experimentId === '0') {
          throw invalidParameter(
            "Cannot delete the default experiment '0'. This is an internally reserved experiment.",
          );
        }
        return [{ type: 'ExperimentDeleted', data: { experimentId: command.experimentId } }];
      case 'RestoreExperiment':
        if (!state.exists || state.lifecycleStage !== 'deleted') {
          throw notFound(`No Experiment with id=${command.experimentId} exists`);
        }
        return [{ type: 'ExperimentRestored', data: { experimentId: command.experimentId } }];
      case 'SetExperimentTag':
        requireExists(state, command.experimentId);
        requireActive(state);
        return [
          {
            type: 'ExperimentTagSet',
            data: { experimentId: command.experimentId, key: command.key, value: command.value },
          },
        ];
      case 'DeleteExperimentTag':
        requireExists(state, command.experimentId);
        requireActive(state);
        if (!state.tags.has(command.key)) {
          throw notFound(
            `No tag with name: ${command.key} in experiment with id ${command.experimentId}`,
          );
        }
        return [
          {
            type: 'ExperimentTagDeleted',
            data: { experimentId: command.experimentId, key: command.key },
          },
        ];
    }
  },

  evolve(state, event, place) {
    switch (event.type) {
      case 'ExperimentCreated':
        return {
          exists: true,
          experimentId: event.data.experimentId,
          name: event.data.name,
          artifactLocation: event.data.artifactLocation,
          lifecycleStage: 'active',
          tags: new Map(event.data.tags.map((t) => [t.key, t.value])),
          restoredAtPosition: 0,
        };
      case 'ExperimentRenamed':
        return { ...state, name: event.data.name };
      case 'ExperimentDeleted':
        return { ...state, lifecycleStage: 'deleted' };
      case 'ExperimentRestored':
        return { ...state, lifecycleStage: 'active', restoredAtPosition: place.position };
      case 'ExperimentTagSet': {
        const tags = new Map(state.tags);
        tags.set(event.data.key, event.data.value);
        return { ...state, tags };
      }
      case 'ExperimentTagDeleted': {
        const tags = new Map(state.tags);
        tags.delete(event.data.key);
        return { ...state, tags };
      }
    }
  },
};

export type ExperimentNameCommand =
  | { readonly type: 'ClaimExperimentName'; readonly name: string; readonly experimentId: string }
  | {
      readonly type: 'ReleaseExperimentName';
      readonly name: string;
      readonly experimentId: string;
    };

export interface ExperimentNameState {
  readonly owner: string | null;
}

/** Guards name uniqueness (stream `experiment-name-<name>`): one owner at a time. */
export const experimentNameDecider: Decider<
  ExperimentNameCommand,
  ExperimentNameState,
  ExperimentNameEvent
> = {
  initialState: () => ({ owner: null }),
  decide(command, state) {
    switch (command.type) {
      case 'ClaimExperimentName':
        if (state.owner !== null && state.owner !== command.experimentId) {
          throw new MlflowError(
            'RESOURCE_ALREADY_EXISTS',
            `Experiment(name=${command.name}) already exists.`,
          );
        }
        return state.owner === command.experimentId
          ? []
          : [
              {
                type: 'ExperimentNameClaimed',
                data: { name: command.name, experimentId: command.experimentId },
              },
            ];
      case 'ReleaseExperimentName':
        return state.owner === command.experimentId
          ? [
              {
                type: 'ExperimentNameReleased',
                data: { name: command.name, experimentId: command.experimentId },
              },
            ]
          : [];
    }
  },
  evolve(_state, event) {
    return event.type === 'ExperimentNameClaimed'
      ? { owner: event.data.experimentId }
      : { owner: null };
  },
};
