import { invalidParameter, notFound, type Decider } from '@ledgerflow/contracts';
import type { KeyValue } from '../experiment/experiment.events.js';
import type { LifecycleStage } from '../experiment/experiment.decider.js';
import { lastValuePerKey } from '../run/run.decider.js';
import type { LoggedModelEvent, LoggedModelStatus } from './logged-model.events.js';

/** What creating a logged model must know about its experiment (loaded by the handler). */
export interface LoggedModelExperimentFacts {
  readonly exists: boolean;
  readonly lifecycleStage: LifecycleStage;
  readonly artifactLocation: string;
}

export type LoggedModelCommand =
  | {
      readonly type: 'CreateLoggedModel';
      readonly modelId: string;
      readonly experimentId: string;
      readonly experiment: LoggedModelExperimentFacts;
      /** null or '' means "pick a random name" (MLflow's `name or _generate_random_name()`). */
      readonly name: string | null;
      readonly generatedName: string;
      readonly modelType: string | null;
      readonly sourceRunId: string | null;
      readonly params: readonly KeyValue[];
      readonly tags: readonly KeyValue[];
    }
  | {
      readonly type: 'FinalizeLoggedModel';
      readonly modelId: string;
      readonly status: LoggedModelStatus;
    }
  | { readonly type: 'DeleteLoggedModel'; readonly modelId: string }
  | {
      readonly type: 'SetLoggedModelTags';
      readonly modelId: string;
      readonly tags: readonly KeyValue[];
    }
  | { readonly type: 'DeleteLoggedModelTag'; readonly modelId: string; readonly key: string }
  | {
      readonly type: 'LogLoggedModelParams';
      readonly modelId: string;
      readonly params: readonly KeyValue[];
    };

export interface LoggedModelState {
  readonly exists: boolean;
  readonly modelId: string;
  readonly experimentId: string;
  readonly deleted: boolean;
  readonly status: LoggedModelStatus;
  readonly tags: ReadonlyMap<string, string>;
  readonly params: ReadonlyMap<string, string>;
}

const initial: LoggedModelState = {
  exists: false,
  modelId: '',
  experimentId: '',
  deleted: false,
  status: 'LOGGED_MODEL_PENDING',
  tags: new Map(),
  params: new Map(),
};

/** Characters MLflow forbids in a logged model's name. */
const BAD_NAME_CHARS = ['/', ':', '.', '%', '"', "'"] as const;

/** MLflow's `_validate_logged_model_name`: non-empty, none of / : . % " '. */
export function validateLoggedModelName(name: string): string {
  if (name === '' || BAD_NAME_CHARS.some((c) => name.includes(c))) {
    throw invalidParameter(
      `Invalid model name (${pyRepr(name)}) provided. Model name must be a non-empty string and cannot contain the following characters: ('/', ':', '.', '%', '"', "'")`,
    );
  }
  return name;
}

/** Python's repr of a str, as MLflow's messages show names and keys. */
export function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  const body = s.replace(/\\/g, '\\\\').replace(new RegExp(quote, 'g'), `\\${quote}`);
  return `${quote}${body}${quote}`;
}

/** The model ID message of MLflow's `_raise_model_not_found`. */
export function loggedModelNotFound(modelId: string): Error {
  return notFound(`Logged model with ID '${modelId}' not found.`);
}

function requireModel(state: LoggedModelState, modelId: string): void {
  // MLflow's store finds deleted models for every write; only get and search hide them
  if (!state.exists) throw loggedModelNotFound(modelId);
}

/** Params to add: duplicates with one value collapse, a new value for a logged key is refused. */
function freshParams(
  current: ReadonlyMap<string, string>,
  params: readonly KeyValue[],
  modelId: string,
): KeyValue[] {
  const seen = new Map<string, string>();
  const fresh: KeyValue[] = [];
  for (const p of params) {
    const earlier = seen.get(p.key) ?? current.get(p.key);
    if (earlier === undefined) {
      seen.set(p.key, p.value);
      fresh.push(p);
    } else if (earlier !== p.value) {
      // MLflow's primary key (model_id, param_key) refuses this too, but as a 500
      throw invalidParameter(
        `Changing param values is not allowed. Param with key='${p.key}' was already logged with value='${earlier}' for logged model ID='${modelId}'. Attempted logging new value '${p.value}'.`,
      );
    }
  }
  return fresh;
}

/** The logged-model aggregate (stream `logged-model-<id>`), MLflow 3's LoggedModel entity. */
export const loggedModelDecider: Decider<LoggedModelCommand, LoggedModelState, LoggedModelEvent> = {
  initialState: () => initial,

  decide(command, state) {
    switch (command.type) {
      case 'CreateLoggedModel': {
        const name = command.name ? validateLoggedModelName(command.name) : null;
        const { experiment } = command;
        if (!experiment.exists)
          throw notFound(`No Experiment with id=${command.experimentId} exists`);
        if (experiment.lifecycleStage !== 'active') {
          throw invalidParameter(
            `The experiment ${command.experimentId} must be in the 'active' state. Current state is ${experiment.lifecycleStage}.`,
          );
        }
        if (state.exists) throw invalidParameter(`Logged model '${command.modelId}' exists.`);
        const params = freshParams(new Map(), command.params, command.modelId);
        return [
          {
            type: 'LoggedModelCreated',
            data: {
              modelId: command.modelId,
              experimentId: command.experimentId,
              name: name ?? command.generatedName,
              artifactUri: `${experiment.artifactLocation.replace(/\/+$/, '')}/models/${command.modelId}/artifacts`,
              ...(command.modelType ? { modelType: command.modelType } : {}),
              ...(command.sourceRunId ? { sourceRunId: command.sourceRunId } : {}),
              params,
              tags: lastValuePerKey(command.tags),
            },
          },
        ];
      }
      case 'FinalizeLoggedModel':
        requireModel(state, command.modelId);
        if (
          command.status !== 'LOGGED_MODEL_READY' &&
          command.status !== 'LOGGED_MODEL_UPLOAD_FAILED'
        ) {
          throw invalidParameter(
            `Invalid status ${command.status} for finalizing logged model '${command.modelId}'. Valid values are LOGGED_MODEL_READY, LOGGED_MODEL_UPLOAD_FAILED.`,
          );
        }
        return [
          {
            type: 'LoggedModelFinalized',
            data: { modelId: command.modelId, status: command.status },
          },
        ];
      case 'DeleteLoggedModel':
        requireModel(state, command.modelId);
        return [{ type: 'LoggedModelDeleted', data: { modelId: command.modelId } }];
      case 'SetLoggedModelTags':
        requireModel(state, command.modelId);
        if (command.tags.length === 0) return [];
        return [
          {
            type: 'LoggedModelTagsSet',
            data: { modelId: command.modelId, tags: lastValuePerKey(command.tags) },
          },
        ];
      case 'DeleteLoggedModelTag':
        requireModel(state, command.modelId);
        if (!state.tags.has(command.key)) {
          throw notFound(
            `No tag with key ${pyRepr(command.key)} found for model with ID ${pyRepr(command.modelId)}.`,
          );
        }
        return [
          { type: 'LoggedModelTagDeleted', data: { modelId: command.modelId, key: command.key } },
        ];
      case 'LogLoggedModelParams': {
        requireModel(state, command.modelId);
        const params = freshParams(state.params, command.params, command.modelId);
        return params.length === 0
          ? []
          : [{ type: 'LoggedModelParamsLogged', data: { modelId: command.modelId, params } }];
      }
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'LoggedModelCreated':
        return {
          exists: true,
          modelId: event.data.modelId,
          experimentId: event.data.experimentId,
          deleted: false,
          status: 'LOGGED_MODEL_PENDING',
          tags: new Map(event.data.tags.map((t) => [t.key, t.value])),
          params: new Map(event.data.params.map((p) => [p.key, p.value])),
        };
      case 'LoggedModelFinalized':
        return { ...state, status: event.data.status };
      case 'LoggedModelDeleted':
        return { ...state, deleted: true };
      case 'LoggedModelTagsSet': {
        const tags = new Map(state.tags);
        for (const t of event.data.tags) tags.set(t.key, t.value);
        return { ...state, tags };
      }
      case 'LoggedModelTagDeleted': {
        const tags = new Map(state.tags);
        tags.delete(event.data.key);
        return { ...state, tags };
      }
      case 'LoggedModelParamsLogged': {
        const params = new Map(state.params);
        for (const p of event.data.params) params.set(p.key, p.value);
        return { ...state, params };
      }
    }
  },
};
