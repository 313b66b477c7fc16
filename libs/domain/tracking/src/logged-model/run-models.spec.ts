import { deciderSpec } from '@ledgerflow/testing';
import type { ExperimentFacts } from '../run/run.decider.js';
import type { RunEvent } from '../run/run.events.js';
import {
  LOG_MODEL_HISTORY_TAG,
  parseModelJson,
  pyJsonDumps,
  runModelsDecider,
  type RunModelsCommand,
} from './run-models.js';

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
    tags: [],
  },
};
const on = (command: RunModelsCommand, experiment: ExperimentFacts = active) => ({
  command,
  experiment,
});
const now = () => '2026-03-03 09:00:00.000000';
const modelJson = JSON.stringify({
  run_id: 'r1',
  artifact_path: 'model',
  utc_time_created: '2026-03-03 08:00:00.000000',
  flavors: { sklearn: { sklearn_version: '1.5', config: { x: 1 } }, python_function: {} },
  signature: { inputs: '[]' },
});

describe('run models (runs/outputs and runs/log-model)', () => {
  const spec = deciderSpec(runModelsDecider);

  it('links output models to an active run; MLflow does not check that they exist', () => {
    spec
      .given([created])
      .when(on({ type: 'LogRunOutputs', runId: 'r1', models: [{ model_id: 'm-x', step: 3 }] }))
      .then([
        { type: 'RunOutputsLogged', data: { runId: 'r1', models: [{ model_id: 'm-x', step: 3 }] } },
      ]);
    spec
      .given([])
      .when(on({ type: 'LogRunOutputs', runId: 'r1', models: [] }))
      .thenThrows('RESOURCE_DOES_NOT_EXIST', 'Run with id=r1 not found');
    spec
      .given([created, { type: 'RunDeleted', data: { runId: 'r1' } }])
      .when(on({ type: 'LogRunOutputs', runId: 'r1', models: [{ model_id: 'm-x', step: 0 }] }))
      .thenThrows('INVALID_PARAMETER_VALUE', "must be in the 'active' state");
  });

  it('keeps what Model.get_tags_dict keeps from model_json, and refuses malformed ones', () => {
    expect(parseModelJson(modelJson, now)).toEqual({
      run_id: 'r1',
      artifact_path: 'model',
      utc_time_created: '2026-03-03 08:00:00.000000',
      model_uuid: null,
      flavors: { sklearn: { sklearn_version: '1.5' }, python_function: {} },
    });
    expect(
      parseModelJson(
        JSON.stringify({ run_id: null, artifact_path: 'm', utc_time_created: null, flavors: {} }),
        now,
      ),
    ).toEqual({ artifact_path: 'm', utc_time_created: now(), model_uuid: null, flavors: {} });
    expect(() => parseModelJson('{nope', now)).toThrow('is not a valid JSON');
    expect(() => parseModelJson('[1]', now)).toThrow('is not a JSON object');
    expect(() => parseModelJson('{"run_id": "r1", "flavors": {}}', now)).toThrow(
      "Model json is missing mandatory fields: {'artifact_path', 'utc_time_created'}",
    );
  });

  it('appends to the mlflow.log-model.history tag as Python json.dumps writes it', () => {
    const entry = parseModelJson(modelJson, now);
    const first = pyJsonDumps([entry]);
    expect(first).toBe(
      '[{"run_id": "r1", "artifact_path": "model", "utc_time_created": "2026-03-03 08:00:00.000000", "model_uuid": null, "flavors": {"sklearn": {"sklearn_version": "1.5"}, "python_function": {}}}]',
    );
    spec
      .given([created])
      .when(on({ type: 'RecordLoggedModel', runId: 'r1', entry }))
      .then([
        {
          type: 'RunTagsSet',
          data: { runId: 'r1', tags: [{ key: LOG_MODEL_HISTORY_TAG, value: first }] },
        },
      ]);
    spec
      .given([
        created,
        {
          type: 'RunTagsSet',
          data: { runId: 'r1', tags: [{ key: LOG_MODEL_HISTORY_TAG, value: first }] },
        },
      ])
      .when(on({ type: 'RecordLoggedModel', runId: 'r1', entry }))
      .then([
        {
          type: 'RunTagsSet',
          data: {
            runId: 'r1',
            tags: [{ key: LOG_MODEL_HISTORY_TAG, value: pyJsonDumps([entry, entry]) }],
          },
        },
      ]);
    expect(pyJsonDumps({ s: 'é\n' })).toBe('{"s": "\\u00e9\\n"}');
  });
});
