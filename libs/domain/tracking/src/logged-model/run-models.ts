import { invalidParameter, notFound, type Decider } from '@ledgerflow/contracts';
import {
  effectiveRunLifecycle,
  runDecider,
  type ExperimentFacts,
  type RunState,
} from '../run/run.decider.js';
import type { RunEvent } from '../run/run.events.js';
import { MAX_TAG_VAL_LENGTH } from '../validation.js';

/** Run tag holding the 2.x `runs/log-model` history: a JSON list of MLmodel summaries. */
export const LOG_MODEL_HISTORY_TAG = 'mlflow.log-model.history';

/** The MLmodel fields `runs/log-model` requires (MLflow's handler checks exactly these). */
const REQUIRED_MODEL_FIELDS = ['artifact_path', 'flavors', 'run_id', 'utc_time_created'] as const;

export type RunModelsCommand =
  | {
      readonly type: 'LogRunOutputs';
      readonly runId: string;
      readonly models: readonly { readonly model_id: string; readonly step: number }[];
    }
  | {
      readonly type: 'RecordLoggedModel';
      readonly runId: string;
      /** One history entry, as parseModelJson made it. */
      readonly entry: Readonly<Record<string, unknown>>;
    };

export interface RunModelsCommandEnvelope {
  readonly command: RunModelsCommand;
  readonly experiment: ExperimentFacts;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Python's set repr of sorted strings: {'a', 'b'}. */
function pySet(items: readonly string[]): string {
  return `{${items.map((i) => `'${i}'`).join(', ')}}`;
}

/**
 * Reads `model_json` as MLflow's log-model handler does and returns what it appends to the
 * history tag: Model.get_tags_dict(), i.e. run_id, artifact_path, utc_time_created, model_uuid
 * and the flavors without their `config` entries. `now` gives utc_time_created when it is null,
 * in Python's str(datetime) form.
 */
export function parseModelJson(modelJson: string, now: () => string): Record<string, unknown> {
  let model: unknown;
  try {
    model = JSON.parse(modelJson);
  } catch {
    throw invalidParameter(`Malformed model info. \n ${modelJson} \n is not a valid JSON.`);
  }
  if (!isObject(model)) {
    // MLflow fails here with a 500 (the parsed value has no keys()); the caller's mistake is a 400
    throw invalidParameter(`Malformed model info. \n ${modelJson} \n is not a JSON object.`);
  }
  const missing = REQUIRED_MODEL_FIELDS.filter((f) => !(f in model));
  if (missing.length > 0)
    throw invalidParameter(`Model json is missing mandatory fields: ${pySet(missing)}`);
  const flavors = model['flavors'] ?? {};
  if (!isObject(flavors))
    throw invalidParameter(`Malformed model info: 'flavors' must be a JSON object.`);
  const created = model['utc_time_created'];
  const entry: Record<string, unknown> = {};
  // Model.to_dict leaves out a null run_id or artifact_path
  if (model['run_id'] !== null) entry['run_id'] = model['run_id'];
  if (model['artifact_path'] !== null) entry['artifact_path'] = model['artifact_path'];
  entry['utc_time_created'] =
    created === null || created === '' || created === false || created === 0
      ? now()
      : typeof created === 'string'
        ? created
        : JSON.stringify(created);
  entry['model_uuid'] = model['model_uuid'] ?? null;
  const trimmed: Record<string, unknown> = {};
  for (const [flavor, config] of Object.entries(flavors)) {
    if (isObject(config)) {
      const { config: _dropped, ...rest } = config;
      trimmed[flavor] = rest;
    } else trimmed[flavor] = config;
  }
  entry['flavors'] = trimmed;
  return entry;
}

/** Python's json.dumps with its default separators and ensure_ascii, as MLflow writes the tag. */
export function pyJsonDumps(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'NaN';
  if (typeof value === 'string')
    return JSON.stringify(value).replace(
      /[^ -~]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
  if (Array.isArray(value)) return `[${value.map(pyJsonDumps).join(', ')}]`;
  return `{${Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => `${pyJsonDumps(k)}: ${pyJsonDumps(v)}`)
    .join(', ')}}`;
}

function requireActiveRun(state: RunState, runId: string, experiment: ExperimentFacts): void {
  if (!state.exists) throw notFound(`Run with id=${runId} not found`);
  const stage = effectiveRunLifecycle(state, experiment);
  if (stage !== 'active') {
    throw invalidParameter(
      `The run ${runId} must be in the 'active' state. Current state is ${stage}.`,
    );
  }
}

/**
 * Decides the run's model links (3.x runs/outputs, 2.x runs/log-model) on the run stream. It
 * shares the run decider's state and fold, so both see the same run.
 */
export const runModelsDecider: Decider<RunModelsCommandEnvelope, RunState, RunEvent> = {
  initialState: () => runDecider.initialState(),
  evolve: (state, event, place) => runDecider.evolve(state, event, place),

  decide({ command, experiment }, state) {
    requireActiveRun(state, command.runId, experiment);
    switch (command.type) {
      case 'LogRunOutputs':
        // MLflow links any model id here without checking that it exists
        if (command.models.length === 0) return [];
        return [
          { type: 'RunOutputsLogged', data: { runId: command.runId, models: command.models } },
        ];
      case 'RecordLoggedModel': {
        const previous = state.tags.get(LOG_MODEL_HISTORY_TAG);
        let history: unknown[] = [];
        if (previous !== undefined) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(previous);
          } catch {
            parsed = undefined;
          }
          if (!Array.isArray(parsed)) {
            throw invalidParameter(
              `The run's '${LOG_MODEL_HISTORY_TAG}' tag is not a JSON list, so no model can be appended to it.`,
            );
          }
          history = parsed;
        }
        const value = pyJsonDumps([...history, command.entry]);
        if (value.length > MAX_TAG_VAL_LENGTH) {
          // MLflow would truncate the tag into invalid JSON; refusing keeps the history readable
          throw invalidParameter(
            `'${LOG_MODEL_HISTORY_TAG}' would exceed the maximum tag value length of ${MAX_TAG_VAL_LENGTH} characters`,
          );
        }
        return [
          {
            type: 'RunTagsSet',
            data: { runId: command.runId, tags: [{ key: LOG_MODEL_HISTORY_TAG, value }] },
          },
        ];
      }
    }
  },
};
