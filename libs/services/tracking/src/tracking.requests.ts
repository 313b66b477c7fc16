import { invalidParameter } from '@ledgerflow/contracts';
import {
  limitLength,
  MAX_EXPERIMENT_TAG_KEY_LENGTH,
  MAX_EXPERIMENT_TAG_VAL_LENGTH,
  MAX_PARAM_VAL_LENGTH,
  MAX_TAG_VAL_LENGTH,
  RUN_STATUSES,
  validateKey,
  validateRunId,
  type KeyValue,
  type RunStatus,
  type ViewType,
} from '@ledgerflow/domain-tracking';
import type { RequestMessage } from '@ledgerflow/http';

function stringValue(v: unknown, path: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw invalidParameter(`Invalid value ${JSON.stringify(v)} for parameter '${path}' supplied.`);
}

/** Experiment tags: tag-name rules, key ≤ 250, value ≤ 20000 (never truncated). */
export function experimentTags(msg: RequestMessage, field = 'tags'): KeyValue[] {
  return msg
    .keyValues(field)
    .map(({ key, value }, i) => experimentTag(key, value, `${field}[${i}]`));
}

export function experimentTag(key: unknown, value: unknown, path = ''): KeyValue {
  const k = validateKey(key, path ? `${path}.key` : 'key', 'key');
  limitLength('key', MAX_EXPERIMENT_TAG_KEY_LENGTH, k, false);
  const v = stringValue(value, path ? `${path}.value` : 'value');
  return { key: k, value: limitLength('value', MAX_EXPERIMENT_TAG_VAL_LENGTH, v, false) };
}

/** A run tag: tag-name rules, key ≤ 250, value ≤ 8000 (truncated while truncation is on). */
export function runTag(key: unknown, value: unknown, truncate: boolean, path = ''): KeyValue {
  const keyPath = path ? `${path}.key` : 'key';
  const k = validateKey(key, keyPath, keyPath);
  const v = stringValue(value, path ? `${path}.value` : 'value');
  return {
    key: k,
    value: limitLength(path ? `${path}.value` : 'value', MAX_TAG_VAL_LENGTH, v, truncate),
  };
}

export function runTags(msg: RequestMessage, truncate: boolean, field = 'tags'): KeyValue[] {
  return msg
    .keyValues(field)
    .map(({ key, value }, i) => runTag(key, value, truncate, `${field}[${i}]`));
}

/** A param: name rules, key ≤ 250, value ≤ 6000 (truncated while truncation is on). */
export function param(key: unknown, value: unknown, truncate: boolean, path = ''): KeyValue {
  const k = validateKey(key, path ? `${path}.key` : 'key', 'Param key');
  const v = stringValue(value, path ? `${path}.value` : 'value');
  return { key: k, value: limitLength('Param value', MAX_PARAM_VAL_LENGTH, v, truncate) };
}

/** run_id, or the deprecated run_uuid. */
export function runIdOf(msg: RequestMessage): string {
  const id = msg.optionalString('run_id') || msg.optionalString('run_uuid');
  if (!id) {
    throw invalidParameter(
      "Missing value for required parameter 'run_id'. See the API docs for more information about request parameters.",
    );
  }
  return validateRunId(id);
}

const STATUS_NUMBERS: Readonly<Record<number, RunStatus>> = {
  1: 'RUNNING',
  2: 'SCHEDULED',
  3: 'FINISHED',
  4: 'FAILED',
  5: 'KILLED',
};

export function runStatus(msg: RequestMessage): RunStatus | undefined {
  return msg.optionalEnum('status', RUN_STATUSES, STATUS_NUMBERS);
}

const VIEW_TYPES: readonly ViewType[] = ['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL'];
const VIEW_NUMBERS: Readonly<Record<number, ViewType>> = {
  1: 'ACTIVE_ONLY',
  2: 'DELETED_ONLY',
  3: 'ALL',
};

export function viewType(msg: RequestMessage, field: string): ViewType {
  return msg.optionalEnum(field, VIEW_TYPES, VIEW_NUMBERS) ?? 'ACTIVE_ONLY';
}
