import { invalidParameter, notFound, type Decider } from '@ledgerflow/contracts';
import type { KeyValue } from '../experiment/experiment.events.js';
import {
  effectiveRunLifecycle,
  runDecider,
  type ExperimentFacts,
  type RunState,
} from './run.decider.js';
import type { DatasetInputRecord, DatasetRecord, RunEvent } from './run.events.js';

// MLflow's limits (utils/validation.py), set by its database column sizes
export const MAX_DATASET_NAME_SIZE = 500;
export const MAX_DATASET_DIGEST_SIZE = 36;
export const MAX_DATASET_SOURCE_SIZE = 65535;
export const MAX_DATASET_SCHEMA_SIZE = 1048575;
export const MAX_DATASET_PROFILE_SIZE = 16777215;
export const MAX_INPUT_TAG_KEY_SIZE = 255;
export const MAX_INPUT_TAG_VALUE_SIZE = 500;

function badValue(path: string, value: unknown): never {
  throw invalidParameter(
    `Invalid value ${JSON.stringify(value)} for parameter '${path}' supplied.`,
  );
}

function stringField(
  obj: Readonly<Record<string, unknown>>,
  field: string,
  path: string,
  what: string,
  required: boolean,
): string | undefined {
  const v = obj[field];
  if (v === undefined || v === null) {
    if (required) throw invalidParameter(`${what} ${field} cannot be None`);
    return undefined;
  }
  if (typeof v !== 'string') return badValue(`${path}.${field}`, v);
  return v;
}

function limit(field: string, max: number, value: string | undefined): void {
  if (value !== undefined && value.length > max) {
    throw invalidParameter(`'${field}' exceeds the maximum length of ${max} characters`);
  }
}

function objectOf(value: unknown, path: string): Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) badValue(path, value);
  return value as Readonly<Record<string, unknown>>;
}

/** One dataset of a log-inputs request, with MLflow's required fields and size limits. */
export function parseDataset(value: unknown, path: string): DatasetRecord {
  if (value === undefined || value === null) throw invalidParameter('Dataset cannot be None');
  const d = objectOf(value, path);
  const name = stringField(d, 'name', path, 'Dataset', true)!;
  const digest = stringField(d, 'digest', path, 'Dataset', true)!;
  const sourceType = stringField(d, 'source_type', path, 'Dataset', true)!;
  const source = stringField(d, 'source', path, 'Dataset', true)!;
  const schema = stringField(d, 'schema', path, 'Dataset', false);
  const profile = stringField(d, 'profile', path, 'Dataset', false);
  limit('name', MAX_DATASET_NAME_SIZE, name);
  limit('digest', MAX_DATASET_DIGEST_SIZE, digest);
  limit('source', MAX_DATASET_SOURCE_SIZE, source);
  limit('schema', MAX_DATASET_SCHEMA_SIZE, schema);
  limit('profile', MAX_DATASET_PROFILE_SIZE, profile);
  return {
    name,
    digest,
    source_type: sourceType,
    source,
    ...(schema === undefined ? {} : { schema }),
    ...(profile === undefined ? {} : { profile }),
  };
}

function parseInputTag(value: unknown, path: string): KeyValue {
  if (value === undefined || value === null) throw invalidParameter('InputTag cannot be None');
  const t = objectOf(value, path);
  const key = stringField(t, 'key', path, 'InputTag', true)!;
  const v = stringField(t, 'value', path, 'InputTag', true)!;
  limit('key', MAX_INPUT_TAG_KEY_SIZE, key);
  limit('value', MAX_INPUT_TAG_VALUE_SIZE, v);
  return { key, value: v };
}

/** The `datasets` of a log-inputs request (untrusted JSON) as validated records. */
export function parseDatasetInputs(values: readonly unknown[]): DatasetInputRecord[] {
  return values.map((value, i) => {
    const path = `datasets[${i}]`;
    const input = objectOf(value, path);
    const rawTags = input['tags'] ?? [];
    if (!Array.isArray(rawTags)) badValue(`${path}.tags`, rawTags);
    const tags = (rawTags as unknown[]).map((t, j) => parseInputTag(t, `${path}.tags[${j}]`));
    return { tags, dataset: parseDataset(input['dataset'], `${path}.dataset`) };
  });
}

/** The `models` of a log-inputs request: each needs a string model_id. */
export function parseModelInputs(values: readonly unknown[]): { model_id: string }[] {
  return values.map((value, i) => {
    const m = objectOf(value, `models[${i}]`);
    const id = m['model_id'];
    if (typeof id !== 'string' || id === '') {
      throw invalidParameter(`Missing value for required parameter 'models[${i}].model_id'.`);
    }
    return { model_id: id };
  });
}

/**
 * MLflow's dedup of logged inputs: within one request the first dataset of a (name, digest) wins,
 * and a dataset the run already has is not logged again (its first tags stay).
 */
export function newDatasetInputs(
  existing: readonly DatasetInputRecord[],
  incoming: readonly DatasetInputRecord[],
): DatasetInputRecord[] {
  const seen = new Set(existing.map((d) => datasetKey(d.dataset)));
  const out: DatasetInputRecord[] = [];
  for (const d of incoming) {
    const key = datasetKey(d.dataset);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(d);
  }
  return out;
}

function datasetKey(d: DatasetRecord): string {
  return JSON.stringify([d.name, d.digest]);
}

/** runs/log-inputs: datasets (validated by parseDatasetInputs) and 3.x model inputs. */
export interface LogRunInputs {
  readonly type: 'LogRunInputs';
  readonly runId: string;
  readonly datasets: readonly DatasetInputRecord[];
  readonly models: readonly { readonly model_id: string }[];
}

export interface RunInputsCommandEnvelope {
  readonly command: LogRunInputs;
  readonly experiment: ExperimentFacts;
}

/**
 * Decides log-inputs on the run stream, sharing the run decider's state and fold. The run must be
 * active; duplicates within the request are dropped here, ones the run already has by the fold.
 */
export const runInputsDecider: Decider<RunInputsCommandEnvelope, RunState, RunEvent> = {
  initialState: () => runDecider.initialState(),
  evolve: (state, event, place) => runDecider.evolve(state, event, place),

  decide({ command, experiment }, state) {
    if (!state.exists) throw notFound(`Run with id=${command.runId} not found`);
    const stage = effectiveRunLifecycle(state, experiment);
    if (stage !== 'active') {
      throw invalidParameter(
        `The run ${command.runId} must be in the 'active' state. Current state is ${stage}.`,
      );
    }
    const datasets = newDatasetInputs([], command.datasets);
    if (datasets.length === 0 && command.models.length === 0) return [];
    return [
      {
        type: 'RunInputsLogged',
        data: {
          runId: command.runId,
          datasets,
          ...(command.models.length > 0 ? { models: command.models } : {}),
        },
      },
    ];
  },
};
