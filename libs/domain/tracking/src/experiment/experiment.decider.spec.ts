import { deciderSpec } from '@ledgerflow/testing';
import { experimentDecider, experimentNameDecider } from './experiment.decider.js';
import type { ExperimentEvent } from './experiment.events.js';

const created: ExperimentEvent = {
  type: 'ExperimentCreated',
  data: {
    experimentId: '1',
    name: 'fraud',
    artifactLocation: 'mlflow-artifacts:/1',
    tags: [{ key: 'team', value: 'risk' }],
  },
};
const deleted: ExperimentEvent = { type: 'ExperimentDeleted', data: { experimentId: '1' } };

describe('experiment decider', () => {
  const spec = deciderSpec(experimentDecider);

  it('creates an experiment once', () => {
    spec
      .given([])
      .when({
        type: 'CreateExperiment',
        experimentId: '1',
        name: 'fraud',
        artifactLocation: 'mlflow-artifacts:/1',
        tags: [{ key: 'team', value: 'risk' }],
      })
      .then([created]);
    spec
      .given([created])
      .when({
        type: 'CreateExperiment',
        experimentId: '1',
        name: 'x',
        artifactLocation: 'a',
        tags: [],
      })
      .thenThrows('RESOURCE_ALREADY_EXISTS');
  });

  it('renames an active experiment, and refuses a deleted one with INVALID_STATE', () => {
    spec
      .given([created])
      .when({ type: 'RenameExperiment', experimentId: '1', newName: 'fraud-v2' })
      .then([
        {
          type: 'ExperimentRenamed',
          data: { experimentId: '1', name: 'fraud-v2', previousName: 'fraud' },
        },
      ]);
    spec
      .given([created, deleted])
      .when({ type: 'RenameExperiment', experimentId: '1', newName: 'z' })
      .thenThrows('INVALID_STATE');
  });

  it('deletes only active experiments and restores only deleted ones', () => {
    spec.given([created]).when({ type: 'DeleteExperiment', experimentId: '1' }).then([deleted]);
    spec
      .given([created, deleted])
      .when({ type: 'DeleteExperiment', experimentId: '1' })
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
    spec
      .given([created, deleted])
      .when({ type: 'RestoreExperiment', experimentId: '1' })
      .then([{ type: 'ExperimentRestored', data: { experimentId: '1' } }]);
    spec
      .given([created])
      .when({ type: 'RestoreExperiment', experimentId: '1' })
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
  });

  it('refuses to delete the Default experiment', () => {
    spec
      .given([
        {
          type: 'ExperimentCreated',
          data: { experimentId: '0', name: 'Default', artifactLocation: 'x', tags: [] },
        },
      ])
      .when({ type: 'DeleteExperiment', experimentId: '0' })
      .thenThrows('INVALID_PARAMETER_VALUE', /default experiment/);
  });

  it('sets tags on active experiments only, and deletes only existing tags', () => {
    spec
      .given([created])
      .when({ type: 'SetExperimentTag', experimentId: '1', key: 'k', value: 'v' })
      .then([{ type: 'ExperimentTagSet', data: { experimentId: '1', key: 'k', value: 'v' } }]);
    spec
      .given([created, deleted])
      .when({ type: 'SetExperimentTag', experimentId: '1', key: 'k', value: 'v' })
      .thenThrows('INVALID_PARAMETER_VALUE');
    spec
      .given([created])
      .when({ type: 'DeleteExperimentTag', experimentId: '1', key: 'nope' })
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
    spec
      .given([created])
      .when({ type: 'DeleteExperimentTag', experimentId: '1', key: 'team' })
      .then([{ type: 'ExperimentTagDeleted', data: { experimentId: '1', key: 'team' } }]);
  });

  it('answers unknown experiments with RESOURCE_DOES_NOT_EXIST', () => {
    spec
      .given([])
      .when({ type: 'SetExperimentTag', experimentId: '9', key: 'k', value: 'v' })
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
  });
});

describe('experiment name claims', () => {
  const spec = deciderSpec(experimentNameDecider);

  it('gives a name to one experiment at a time, and frees it on release', () => {
    const claimed = {
      type: 'ExperimentNameClaimed',
      data: { name: 'a', experimentId: '1' },
    } as const;
    spec
      .given([])
      .when({ type: 'ClaimExperimentName', name: 'a', experimentId: '1' })
      .then([claimed]);
    spec
      .given([claimed])
      .when({ type: 'ClaimExperimentName', name: 'a', experimentId: '2' })
      .thenThrows('RESOURCE_ALREADY_EXISTS');
    const released = {
      type: 'ExperimentNameReleased',
      data: { name: 'a', experimentId: '1' },
    } as const;
    spec
      .given([claimed])
      .when({ type: 'ReleaseExperimentName', name: 'a', experimentId: '1' })
      .then([released]);
    spec
      .given([claimed, released])
      .when({ type: 'ClaimExperimentName', name: 'a', experimentId: '2' })
      .then([{ type: 'ExperimentNameClaimed', data: { name: 'a', experimentId: '2' } }]);
  });
});
