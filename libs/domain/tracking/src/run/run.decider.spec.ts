import { deciderSpec } from '@ledgerflow/testing';
import {
  effectiveRunLifecycle,
  runDecider,
  type ExperimentFacts,
  type RunCommand,
} from './run.decider.js';
import type { RunEvent } from './run.events.js';

const active: ExperimentFacts = { exists: true, lifecycleStage: 'active', restoredAtPosition: 0 };
const created: RunEvent = {
  type: 'RunCreated',
  data: {
    runId: 'r1',
    experimentId: '1',
    userId: 'ada',
    runName: 'baseline',
    startTime: 1000,
    artifactUri: 'mlflow-artifacts:/1/r1/artifacts',
    tags: [{ key: 'mlflow.runName', value: 'baseline' }],
  },
};
const on = (command: RunCommand, experiment: ExperimentFacts = active) => ({ command, experiment });
const create = (over: Partial<Extract<RunCommand, { type: 'CreateRun' }>> = {}): RunCommand => ({
  type: 'CreateRun',
  runId: 'r1',
  experimentId: '1',
  userId: 'ada',
  runName: null,
  generatedRunName: 'brave-owl-7',
  startTime: 1000,
  artifactUri: 'mlflow-artifacts:/1/r1/artifacts',
  tags: [],
  ...over,
});

describe('run decider', () => {
  const spec = deciderSpec(runDecider);

  it('names a run from run_name, else the mlflow.runName tag, else a generated name, and always stores the tag', () => {
    spec
      .given([])
      .when(on(create({ runName: 'baseline' })))
      .then([created]);
    spec
      .given([])
      .when(on(create({ tags: [{ key: 'mlflow.runName', value: 'baseline' }] })))
      .then([created]);
    spec
      .given([])
      .when(on(create()))
      .then([
        {
          type: 'RunCreated',
          data: {
            ...created.data,
            runName: 'brave-owl-7',
            tags: [{ key: 'mlflow.runName', value: 'brave-owl-7' }],
          },
        },
      ]);
  });

  it('refuses a run_name that disagrees with the mlflow.runName tag', () => {
    spec
      .given([])
      .when(on(create({ runName: 'a', tags: [{ key: 'mlflow.runName', value: 'b' }] })))
      .thenThrows('INVALID_PARAMETER_VALUE', /different values/);
  });

  it('needs an active experiment to create a run', () => {
    spec
      .given([])
      .when(on(create(), { ...active, lifecycleStage: 'deleted' }))
      .thenThrows('INVALID_PARAMETER_VALUE', /active/);
    spec
      .given([])
      .when(on(create(), { ...active, exists: false }))
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
  });

  it('keeps params immutable: the same value is a no-op, a new value is refused', () => {
    const logged: RunEvent = {
      type: 'RunParamsLogged',
      data: { runId: 'r1', params: [{ key: 'lr', value: '0.1' }] },
    };
    spec
      .given([created])
      .when(on({ type: 'LogRunParams', runId: 'r1', params: [{ key: 'lr', value: '0.1' }] }))
      .then([logged]);
    spec
      .given([created, logged])
      .when(on({ type: 'LogRunParams', runId: 'r1', params: [{ key: 'lr', value: '0.1' }] }))
      .then([]);
    spec
      .given([created, logged])
      .when(on({ type: 'LogRunParams', runId: 'r1', params: [{ key: 'lr', value: '0.2' }] }))
      .thenThrows('INVALID_PARAMETER_VALUE', /Changing param values is not allowed/);
  });

  it('refuses writes to a deleted run, and accepts them after a restore', () => {
    const deleted: RunEvent = { type: 'RunDeleted', data: { runId: 'r1' } };
    const write = on({ type: 'SetRunTags', runId: 'r1', tags: [{ key: 'k', value: 'v' }] });
    spec
      .given([created, deleted])
      .when(write)
      .thenThrows('INVALID_PARAMETER_VALUE', /must be in the 'active' state/);
    spec
      .given([created, deleted, { type: 'RunRestored', data: { runId: 'r1' } }])
      .when(write)
      .then([{ type: 'RunTagsSet', data: { runId: 'r1', tags: [{ key: 'k', value: 'v' }] } }]);
  });

  it('treats runs of a deleted experiment as deleted, and a restore of the experiment as restoring them', () => {
    spec
      .given([created])
      .when(
        on(
          { type: 'UpdateRun', runId: 'r1', status: 'FINISHED', endTime: 5, runName: null },
          { ...active, lifecycleStage: 'deleted' },
        ),
      )
      .thenThrows('INVALID_PARAMETER_VALUE');
    // deleted by itself at position 2, experiment restored later at position 5: active again (MLflow restores all runs)
    const state = runDecider.evolve(
      runDecider.evolve(runDecider.initialState(), created, { position: 1, occurredAt: 0 }),
      { type: 'RunDeleted', data: { runId: 'r1' } },
      { position: 2, occurredAt: 0 },
    );
    expect(effectiveRunLifecycle(state, { ...active, restoredAtPosition: 5 })).toBe('active');
    expect(effectiveRunLifecycle(state, { ...active, restoredAtPosition: 1 })).toBe('deleted');
  });

  it('keeps the last value of a repeated tag key in one batch', () => {
    spec
      .given([created])
      .when(
        on({
          type: 'SetRunTags',
          runId: 'r1',
          tags: [
            { key: 'a', value: '1' },
            { key: 'a', value: '2' },
          ],
        }),
      )
      .then([{ type: 'RunTagsSet', data: { runId: 'r1', tags: [{ key: 'a', value: '2' }] } }]);
  });

  it('deletes only tags that exist', () => {
    spec
      .given([created])
      .when(on({ type: 'DeleteRunTag', runId: 'r1', key: 'missing' }))
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
  });

  it('answers unknown runs with RESOURCE_DOES_NOT_EXIST', () => {
    spec
      .given([])
      .when(on({ type: 'DeleteRun', runId: 'nope' }))
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
  });
});
