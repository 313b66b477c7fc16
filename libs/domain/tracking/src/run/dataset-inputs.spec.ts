import { MlflowError } from '@ledgerflow/contracts';
import { deciderSpec } from '@ledgerflow/testing';
import { evolveRunDoc, type RunDoc } from '../read-models/tracking-docs.js';
import type { ExperimentFacts } from './run.decider.js';
import type { DatasetInputRecord, RunEvent } from './run.events.js';
import {
  newDatasetInputs,
  parseDatasetInputs,
  parseModelInputs,
  runInputsDecider,
  type LogRunInputs,
} from './dataset-inputs.js';

const dataset = (over: Record<string, unknown> = {}) => ({
  name: 'iris',
  digest: 'abc123',
  source_type: 'local',
  source: '{"uri": "/data/iris.csv"}',
  ...over,
});
const input = (d: Record<string, unknown> = {}, tags: unknown[] = []) => ({
  tags,
  dataset: dataset(d),
});

function messageOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MlflowError);
    expect((e as MlflowError).code).toBe('INVALID_PARAMETER_VALUE');
    return (e as MlflowError).message;
  }
  return undefined;
}

describe('log-inputs validation', () => {
  it('keeps every field, and schema and profile only when given', () => {
    expect(
      parseDatasetInputs([
        input({ schema: '{}', profile: '{"rows": 3}' }, [
          { key: 'mlflow.data.context', value: 'training' },
        ]),
        input({ name: 'wine' }),
      ]),
    ).toEqual([
      {
        tags: [{ key: 'mlflow.data.context', value: 'training' }],
        dataset: { ...dataset(), schema: '{}', profile: '{"rows": 3}' },
      },
      { tags: [], dataset: dataset({ name: 'wine' }) },
    ]);
  });

  it.each([
    ['name', 500],
    ['digest', 36],
    ['source', 65535],
    ['schema', 1048575],
    ['profile', 16777215],
  ])('limits dataset %s to %d characters', (field, max) => {
    expect(messageOf(() => parseDatasetInputs([input({ [field]: 'x'.repeat(max) })]))).toBe(
      undefined,
    );
    expect(messageOf(() => parseDatasetInputs([input({ [field]: 'x'.repeat(max + 1) })]))).toBe(
      `'${field}' exceeds the maximum length of ${max} characters`,
    );
  });

  it.each([
    ['key', 255],
    ['value', 500],
  ])('limits input tag %s to %d characters', (field, max) => {
    const tag = (n: number) => ({ key: 'k', value: 'v', [field]: 'x'.repeat(n) });
    expect(messageOf(() => parseDatasetInputs([input({}, [tag(max)])]))).toBeUndefined();
    expect(messageOf(() => parseDatasetInputs([input({}, [tag(max + 1)])]))).toBe(
      `'${field}' exceeds the maximum length of ${max} characters`,
    );
  });

  it.each(['name', 'digest', 'source_type', 'source'])('requires dataset %s', (field) => {
    expect(messageOf(() => parseDatasetInputs([input({ [field]: null })]))).toBe(
      `Dataset ${field} cannot be None`,
    );
  });

  it('requires the dataset, tag keys and values, string fields and a model id', () => {
    expect(messageOf(() => parseDatasetInputs([{ tags: [] }]))).toBe('Dataset cannot be None');
    expect(messageOf(() => parseDatasetInputs([input({}, [{ value: 'v' }])]))).toBe(
      'InputTag key cannot be None',
    );
    expect(messageOf(() => parseDatasetInputs([input({}, [{ key: 'k' }])]))).toBe(
      'InputTag value cannot be None',
    );
    expect(messageOf(() => parseDatasetInputs([input({ name: 5 })]))).toMatch(
      /Invalid value 5 for parameter 'datasets\[0\].dataset.name'/,
    );
    expect(messageOf(() => parseDatasetInputs(['x']))).toMatch(/datasets\[0\]/);
    expect(messageOf(() => parseDatasetInputs([{ tags: 'x', dataset: dataset() }]))).toMatch(
      /tags/,
    );
    expect(messageOf(() => parseModelInputs([{}]))).toMatch(/models\[0\].model_id/);
    expect(parseModelInputs([{ model_id: 'm-1' }])).toEqual([{ model_id: 'm-1' }]);
  });
});

const record = (name: string, digest: string, context?: string): DatasetInputRecord => ({
  tags: context === undefined ? [] : [{ key: 'mlflow.data.context', value: context }],
  dataset: { name, digest, source_type: 'local', source: 's' },
});

describe('dataset dedup', () => {
  it('keeps the first of a (name, digest) in a request and skips ones the run has', () => {
    expect(
      newDatasetInputs(
        [record('a', '1')],
        [record('a', '1', 'eval'), record('b', '1', 'train'), record('b', '1', 'eval')],
      ),
    ).toEqual([record('b', '1', 'train')]);
  });

  it('leaves a logged dataset as it is when logged again with other tags', () => {
    const at = { occurredAt: 1, position: 1 };
    const created: RunEvent = {
      type: 'RunCreated',
      data: {
        runId: 'r1',
        experimentId: '1',
        userId: 'u',
        runName: 'n',
        startTime: 1,
        artifactUri: 'a',
        tags: [],
      },
    };
    const logged = (datasets: DatasetInputRecord[]): RunEvent => ({
      type: 'RunInputsLogged',
      data: { runId: 'r1', datasets },
    });
    let doc: RunDoc | undefined = evolveRunDoc(undefined, created, at);
    doc = evolveRunDoc(doc, logged([record('a', '1', 'train')]), at);
    doc = evolveRunDoc(doc, logged([record('a', '1', 'eval'), record('a', '2', 'eval')]), at);
    expect(doc?.dataset_inputs).toEqual([record('a', '1', 'train'), record('a', '2', 'eval')]);
  });
});

describe('run inputs decider', () => {
  const spec = deciderSpec(runInputsDecider);
  const active: ExperimentFacts = { exists: true, lifecycleStage: 'active', restoredAtPosition: 0 };
  const created: RunEvent = {
    type: 'RunCreated',
    data: {
      runId: 'r1',
      experimentId: '1',
      userId: 'u',
      runName: 'n',
      startTime: 1,
      artifactUri: 'a',
      tags: [],
    },
  };
  const log = (over: Partial<LogRunInputs> = {}) => ({
    command: {
      type: 'LogRunInputs' as const,
      runId: 'r1',
      datasets: [record('a', '1', 'train'), record('a', '1', 'eval')],
      models: [],
      ...over,
    },
    experiment: active,
  });

  it('logs the datasets of an active run, first of each (name, digest) only', () => {
    spec
      .given([created])
      .when(log())
      .then([
        { type: 'RunInputsLogged', data: { runId: 'r1', datasets: [record('a', '1', 'train')] } },
      ]);
    spec
      .given([created])
      .when(log({ datasets: [], models: [{ model_id: 'm-1' }] }))
      .then([
        {
          type: 'RunInputsLogged',
          data: { runId: 'r1', datasets: [], models: [{ model_id: 'm-1' }] },
        },
      ]);
    spec
      .given([created])
      .when(log({ datasets: [] }))
      .then([]);
  });

  it('refuses a missing or deleted run', () => {
    spec.given([]).when(log()).thenThrows('RESOURCE_DOES_NOT_EXIST');
    spec
      .given([created, { type: 'RunDeleted', data: { runId: 'r1' } }])
      .when(log())
      .thenThrows('INVALID_PARAMETER_VALUE', /must be in the 'active' state/);
    spec
      .given([created])
      .when({ ...log(), experiment: { ...active, lifecycleStage: 'deleted' } })
      .thenThrows('INVALID_PARAMETER_VALUE', /Current state is deleted/);
  });
});
