import { invalidParameter, notFound, type Decider } from '@ledgerflow/contracts';
import type { KeyValue } from '../experiment/experiment.events.js';
import type { LifecycleStage } from '../experiment/experiment.decider.js';
import { RUN_NAME_TAG, type RunEvent, type RunStatus } from './run.events.js';
import {
  metricColumnsOf,
  validateBatchLimits,
  type MetricPoint,
} from '../metrics/metric-points.js';

/** What a run decision must know about the run's experiment (loaded by the handler). */
export interface ExperimentFacts {
  readonly exists: boolean;
  readonly lifecycleStage: LifecycleStage;
  readonly restoredAtPosition: number;
}

export type RunCommand =
  | {
      readonly type: 'CreateRun';
      readonly runId: string;
      readonly experimentId: string;
      readonly userId: string;
      readonly runName: string | null;
      /** Used when neither run_name nor the mlflow.runName tag is given. */
      readonly generatedRunName: string;
      readonly startTime: number;
      readonly artifactUri: string;
      readonly tags: readonly KeyValue[];
    }
  | {
      readonly type: 'UpdateRun';
      readonly runId: string;
      readonly status: RunStatus | null;
      readonly endTime: number | null;
      readonly runName: string | null;
    }
  | { readonly type: 'DeleteRun'; readonly runId: string }
  | { readonly type: 'RestoreRun'; readonly runId: string }
  | { readonly type: 'SetRunTags'; readonly runId: string; readonly tags: readonly KeyValue[] }
  | { readonly type: 'DeleteRunTag'; readonly runId: string; readonly key: string }
  | { readonly type: 'LogRunParams'; readonly runId: string; readonly params: readonly KeyValue[] }
  | {
      readonly type: 'LogMetrics';
      readonly runId: string;
      readonly metrics: readonly MetricPoint[];
    }
  | {
      readonly type: 'LogBatch';
      readonly runId: string;
      readonly metrics: readonly MetricPoint[];
      readonly params: readonly KeyValue[];
      readonly tags: readonly KeyValue[];
    };

/** A command plus the experiment facts it is decided against. */
export interface RunCommandEnvelope {
  readonly command: RunCommand;
  readonly experiment: ExperimentFacts;
}

export interface RunState {
  readonly exists: boolean;
  readonly runId: string;
  readonly experimentId: string;
  readonly status: RunStatus;
  readonly runName: string;
  /** Log position of the run's own last deletion; null when not deleted by itself. */
  readonly deletedAtPosition: number | null;
  readonly tags: ReadonlyMap<string, string>;
  readonly params: ReadonlyMap<string, string>;
}

const initial: RunState = {
  exists: false,
  runId: '',
  experimentId: '',
  status: 'RUNNING',
  runName: '',
  deletedAtPosition: null,
  tags: new Map(),
  params: new Map(),
};

/**
 * A run is deleted when its experiment is deleted, or when it was deleted itself after the
 * experiment's last restore (restoring an experiment restores all of its runs, as MLflow does).
 */
export function effectiveRunLifecycle(run: RunState, experiment: ExperimentFacts): LifecycleStage {
  if (experiment.lifecycleStage === 'deleted') return 'deleted';
  if (run.deletedAtPosition !== null && run.deletedAtPosition > experiment.restoredAtPosition)
    return 'deleted';
  return 'active';
}

function requireRun(state: RunState, runId: string): void {
  if (!state.exists) throw notFound(`Run with id=${runId} not found`);
}

function requireActiveRun(state: RunState, experiment: ExperimentFacts): void {
  requireRun(state, state.runId);
  const stage = effectiveRunLifecycle(state, experiment);
  if (stage !== 'active') {
    throw invalidParameter(
      `The run ${state.runId} must be in the 'active' state. Current state is ${stage}.`,
    );
  }
}

/** The run aggregate (stream `run-<id>`): lifecycle, status, name, tags and immutable params. */
export const runDecider: Decider<RunCommandEnvelope, RunState, RunEvent> = {
  initialState: () => initial,

  decide({ command, experiment }, state) {
    switch (command.type) {
      case 'CreateRun': {
        if (!experiment.exists)
          throw notFound(`No Experiment with id=${command.experimentId} exists`);
        if (experiment.lifecycleStage !== 'active') {
          throw invalidParameter(
            `The experiment ${command.experimentId} must be in the 'active' state. Current state is ${experiment.lifecycleStage}.`,
          );
        }
        const tags = lastValuePerKey(command.tags);
        const nameTag = tags.find((t) => t.key === RUN_NAME_TAG)?.value;
        if (command.runName && nameTag && command.runName !== nameTag) {
          throw invalidParameter(
            `Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='${command.runName}', mlflow.runName='${nameTag}').`,
          );
        }
        const runName = command.runName || nameTag || command.generatedRunName;
        return [
          {
            type: 'RunCreated',
            data: {
              runId: command.runId,
              experimentId: command.experimentId,
              userId: command.userId,
              runName,
              startTime: command.startTime,
              artifactUri: command.artifactUri,
              tags: nameTag ? tags : [...tags, { key: RUN_NAME_TAG, value: runName }],
            },
          },
        ];
      }
      case 'UpdateRun': {
        requireActiveRun(state, experiment);
        return [
          {
            type: 'RunUpdated',
            data: {
              runId: command.runId,
              ...(command.status === null ? {} : { status: command.status }),
              ...(command.endTime === null ? {} : { endTime: command.endTime }),
              ...(command.runName ? { runName: command.runName } : {}),
            },
          },
        ];
      }
      case 'DeleteRun':
        requireRun(state, command.runId);
        return [{ type: 'RunDeleted', data: { runId: command.runId } }];
      case 'RestoreRun':
        requireRun(state, command.runId);
        return [{ type: 'RunRestored', data: { runId: command.runId } }];
      case 'SetRunTags':
        requireActiveRun(state, experiment);
        if (command.tags.length === 0) return [];
        return [
          {
            type: 'RunTagsSet',
            data: { runId: command.runId, tags: lastValuePerKey(command.tags) },
          },
        ];
      case 'DeleteRunTag':
        requireActiveRun(state, experiment);
        if (!state.tags.has(command.key)) {
          throw notFound(`No tag with name: ${command.key} in run with id ${command.runId}`);
        }
        return [{ type: 'RunTagDeleted', data: { runId: command.runId, key: command.key } }];
      case 'LogRunParams': {
        requireUniqueParamKeys(command.params);
        requireActiveRun(state, experiment);
        const fresh = freshParams(state, command.runId, command.params);
        return fresh.length === 0
          ? []
          : [{ type: 'RunParamsLogged', data: { runId: command.runId, params: fresh } }];
      }
      case 'LogMetrics': {
        requireActiveRun(state, experiment);
        if (command.metrics.length === 0) return [];
        return [
          {
            type: 'MetricsLogged',
            data: { runId: command.runId, ...metricColumnsOf(command.metrics) },
          },
        ];
      }
      case 'LogBatch': {
        // MLflow's order: limits, unique param keys, run active, then params before anything else,
        // so a param conflict refuses the whole batch and nothing is written.
        validateBatchLimits(command.metrics.length, command.params.length, command.tags.length);
        requireUniqueParamKeys(command.params);
        requireActiveRun(state, experiment);
        const fresh = freshParams(state, command.runId, command.params);
        const events: RunEvent[] = [];
        if (fresh.length > 0)
          events.push({ type: 'RunParamsLogged', data: { runId: command.runId, params: fresh } });
        if (command.metrics.length > 0) {
          events.push({
            type: 'MetricsLogged',
            data: { runId: command.runId, ...metricColumnsOf(command.metrics) },
          });
        }
        if (command.tags.length > 0) {
          events.push({
            type: 'RunTagsSet',
            data: { runId: command.runId, tags: lastValuePerKey(command.tags) },
          });
        }
        return events;
      }
    }
  },

  evolve(state, event, place) {
    switch (event.type) {
      case 'RunCreated':
        return {
          exists: true,
          runId: event.data.runId,
          experimentId: event.data.experimentId,
          status: 'RUNNING',
          runName: event.data.runName,
          deletedAtPosition: null,
          tags: new Map(event.data.tags.map((t) => [t.key, t.value])),
          params: new Map(),
        };
      case 'RunUpdated': {
        const runName = event.data.runName ?? state.runName;
        const tags =
          event.data.runName === undefined
            ? state.tags
            : withEntry(state.tags, RUN_NAME_TAG, runName);
        return { ...state, status: event.data.status ?? state.status, runName, tags };
      }
      case 'RunDeleted':
        return { ...state, deletedAtPosition: place.position };
      case 'RunRestored':
        return { ...state, deletedAtPosition: null };
      case 'RunTagsSet': {
        const tags = new Map(state.tags);
        for (const t of event.data.tags) tags.set(t.key, t.value);
        return { ...state, tags, runName: tags.get(RUN_NAME_TAG) ?? state.runName };
      }
      case 'RunTagDeleted': {
        const tags = new Map(state.tags);
        tags.delete(event.data.key);
        return { ...state, tags };
      }
      case 'RunParamsLogged': {
        const params = new Map(state.params);
        for (const p of event.data.params) params.set(p.key, p.value);
        return { ...state, params };
      }
      // metrics, inputs and outputs change no rule the run decides on
      case 'MetricsLogged':
      case 'RunInputsLogged':
      case 'RunOutputsLogged':
        return state;
    }
  },
};

function withEntry(
  map: ReadonlyMap<string, string>,
  key: string,
  value: string,
): ReadonlyMap<string, string> {
  const next = new Map(map);
  next.set(key, value);
  return next;
}

function requireUniqueParamKeys(params: readonly KeyValue[]): void {
  const seen = new Set<string>();
  const duplicates: string[] = [];
  for (const p of params) {
    if (seen.has(p.key)) duplicates.push(p.key);
    seen.add(p.key);
  }
  if (duplicates.length > 0) {
    // the message lists repeats as Python prints a list of str
    throw invalidParameter(
      `Duplicate parameter keys have been submitted: [${duplicates.map((k) => `'${k}'`).join(', ')}]. Please ensure the request contains only one param value per param key.`,
    );
  }
}

/** Params not logged before; a different value for a logged key is refused (params are immutable). */
function freshParams(state: RunState, runId: string, params: readonly KeyValue[]): KeyValue[] {
  const fresh: KeyValue[] = [];
  for (const p of params) {
    const old = state.params.get(p.key);
    if (old === undefined) fresh.push(p);
    else if (old !== p.value) {
      throw invalidParameter(
        `Changing param values is not allowed. Param with key='${p.key}' was already logged with value='${old}' for run ID='${runId}'. Attempted logging new value '${p.value}'.`,
      );
    }
  }
  return fresh;
}

/** In a batch the last value for a key wins, keeping first-seen key order. */
export function lastValuePerKey(items: readonly KeyValue[]): KeyValue[] {
  const byKey = new Map<string, string>();
  for (const t of items) byKey.set(t.key, t.value);
  return [...byKey].map(([key, value]) => ({ key, value }));
}
