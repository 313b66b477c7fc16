import { invalidParameter } from '@ledgerflow/contracts';
import type { MetricColumns } from '../run/run.events.js';
import {
  MAX_ENTITIES_PER_BATCH,
  MAX_METRICS_PER_BATCH,
  MAX_PARAMS_TAGS_PER_BATCH,
  invalidValueMessage,
  validateKey,
} from '../validation.js';

/** Python's float max: MLflow stores +-Infinity as this, so it does not round-trip as Infinity. */
export const MAX_METRIC_VALUE = 1.7976931348623157e308;

/** One metric point as a request carries it (value may be NaN or +-Infinity). */
export interface MetricPoint {
  readonly key: string;
  readonly value: number;
  readonly timestamp: number;
  readonly step: number;
  readonly model_id?: string;
  readonly dataset_name?: string;
  readonly dataset_digest?: string;
}

/** A metric point as read back: NaN stays NaN here; the wire turns it into "NaN". */
export interface MetricHistoryPoint {
  readonly key: string;
  readonly value: number;
  readonly timestamp: number;
  readonly step: number;
}

const DOCS_HINT = ' See the API docs for more information about request parameters.';
const INT_STRING = /^[+-]?\d+$/;
const FLOAT_STRING = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const SPECIAL_VALUES: Readonly<Record<string, number>> = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  '-Infinity': Number.NEGATIVE_INFINITY,
};

/** Python's repr of a float, as MLflow formats values in its messages. */
function pyFloat(value: unknown): string {
  if (typeof value !== 'number') return JSON.stringify(value) ?? 'None';
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  return Number.isInteger(value) ? `${value}.0` : String(value);
}

/** A JSON double: a number, or "NaN" / "Infinity" / "-Infinity" / a numeric string; bool is not numeric. */
export function parseMetricValue(raw: unknown): number | undefined {
  if (typeof raw === 'number') return raw;
  if (typeof raw !== 'string') return undefined;
  const special = SPECIAL_VALUES[raw];
  if (special !== undefined) return special;
  const trimmed = raw.trim();
  return FLOAT_STRING.test(trimmed) ? Number(trimmed) : undefined;
}

/** An int64 given as a JSON number or a numeric string. */
export function parseInt64(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isSafeInteger(raw) ? raw : undefined;
  if (typeof raw === 'string' && INT_STRING.test(raw.trim())) {
    const n = Number(raw.trim());
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

function joinPath(path: string, field: string): string {
  return path === '' ? field : `${path}.${field}`;
}

/**
 * Validates one raw metric (from log-metric, path '', or log-batch, path `metrics[i]`) with
 * MLflow's rules and messages: required key/value/timestamp, numeric non-bool value,
 * timestamp >= 0, integer step (default 0).
 */
export function parseMetric(raw: Readonly<Record<string, unknown>>, path: string): MetricPoint {
  for (const field of ['key', 'value', 'timestamp'] as const) {
    const v = raw[field];
    if (v === undefined || v === null || v === '') {
      throw invalidParameter(
        `Missing value for required parameter '${joinPath(path, field)}'.${DOCS_HINT}`,
      );
    }
  }
  const key = validateKey(raw['key'], joinPath(path, 'name'), 'Metric name');
  const rawTimestamp = raw['timestamp'];
  const value = parseMetricValue(raw['value']);
  if (value === undefined) {
    throw invalidParameter(
      invalidValueMessage(
        joinPath(path, 'value'),
        raw['value'],
        `(timestamp=${String(rawTimestamp)}). Please specify value as a valid double (64-bit floating point)`,
      ),
    );
  }
  const timestamp = parseInt64(rawTimestamp);
  if (timestamp === undefined || timestamp < 0) {
    throw invalidParameter(
      invalidValueMessage(
        joinPath(path, 'timestamp'),
        rawTimestamp,
        `metric '${key}' (value=${pyFloat(value)}). Timestamp must be a nonnegative long (64-bit integer) `,
      ),
    );
  }
  const rawStep = raw['step'];
  const step = rawStep === undefined || rawStep === null ? 0 : parseInt64(rawStep);
  if (step === undefined) {
    throw invalidParameter(
      invalidValueMessage(
        joinPath(path, 'step'),
        rawStep,
        `metric '${key}' (value=${pyFloat(value)}). Step must be a valid long (64-bit integer).`,
      ),
    );
  }
  const extras: { model_id?: string; dataset_name?: string; dataset_digest?: string } = {};
  for (const field of ['model_id', 'dataset_name', 'dataset_digest'] as const) {
    const v = raw[field];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string') {
      throw invalidParameter(invalidValueMessage(joinPath(path, field), v, 'Expected a string.'));
    }
    extras[field] = v;
  }
  return { key, value, timestamp, step, ...extras };
}

function batchLimit(entity: string, limit: number, length: number): void {
  if (length > limit) {
    throw invalidParameter(
      `A batch logging request can contain at most ${limit} ${entity}. Got ${length} ${entity}. Please split up ${entity} across multiple requests and try again.`,
    );
  }
}

/** MLflow's _validate_batch_log_limits, with its messages. */
export function validateBatchLimits(metrics: number, params: number, tags: number): void {
  batchLimit('metrics', MAX_METRICS_PER_BATCH, metrics);
  batchLimit('params', MAX_PARAMS_TAGS_PER_BATCH, params);
  batchLimit('tags', MAX_PARAMS_TAGS_PER_BATCH, tags);
  batchLimit('metrics, params, and tags', MAX_ENTITIES_PER_BATCH, metrics + params + tags);
}

/** +-Infinity becomes +-MAX_VALUE as MLflow stores it; NaN and finite values are unchanged. */
export function clampMetricValue(value: number): number {
  if (value === Number.POSITIVE_INFINITY) return MAX_METRIC_VALUE;
  if (value === Number.NEGATIVE_INFINITY) return -MAX_METRIC_VALUE;
  return value;
}

/** Same point by MLflow's metric identity: key, timestamp, step and value (NaN equals NaN). */
export function pointIdentity(p: MetricPoint): string {
  const v = clampMetricValue(p.value);
  return `${p.timestamp}|${p.step}|${Number.isNaN(v) ? 'nan' : String(v)}|${p.key}`;
}

/**
 * Columnar form of a batch for a MetricsLogged event: exact duplicates within the batch dropped
 * (first kept), +-Infinity clamped, NaN stored as 0 with its index in `nan`.
 */
export function metricColumnsOf(points: readonly MetricPoint[]): MetricColumns {
  const keys: string[] = [];
  const keyIndex = new Map<string, number>();
  const k: number[] = [];
  const v: number[] = [];
  const t: number[] = [];
  const s: number[] = [];
  const nan: number[] = [];
  const extras: {
    i: number;
    model_id?: string;
    dataset_name?: string;
    dataset_digest?: string;
  }[] = [];
  // exact duplicates by (key, timestamp, step, value), NaN equal to NaN: kept points hashed by
  // (key, step, timestamp) into chains of indices, compared exactly (no string per point)
  const head = new Map<number, number>();
  const chain: number[] = [];
  const isNan: boolean[] = [];
  for (const p of points) {
    let ki = keyIndex.get(p.key);
    if (ki === undefined) {
      ki = keys.length;
      keys.push(p.key);
      keyIndex.set(p.key, ki);
    }
    const value = clampMetricValue(p.value);
    const bucket = (ki * 1_000_003 + p.step) * 1_000_033 + p.timestamp;
    let duplicate = false;
    for (let j = head.get(bucket) ?? -1; j >= 0; j = chain[j]!) {
      if (
        k[j] === ki &&
        s[j] === p.step &&
        t[j] === p.timestamp &&
        (Number.isNaN(value) ? isNan[j] === true : isNan[j] !== true && v[j] === value)
      ) {
        duplicate = true;
        break;
      }
    }
    if (duplicate) continue;
    const i = k.length;
    chain.push(head.get(bucket) ?? -1);
    head.set(bucket, i);
    k.push(ki);
    t.push(p.timestamp);
    s.push(p.step);
    isNan.push(Number.isNaN(value));
    if (Number.isNaN(value)) {
      v.push(0);
      nan.push(i);
    } else {
      v.push(value);
    }
    if (
      p.model_id !== undefined ||
      p.dataset_name !== undefined ||
      p.dataset_digest !== undefined
    ) {
      extras.push({
        i,
        ...(p.model_id === undefined ? {} : { model_id: p.model_id }),
        ...(p.dataset_name === undefined ? {} : { dataset_name: p.dataset_name }),
        ...(p.dataset_digest === undefined ? {} : { dataset_digest: p.dataset_digest }),
      });
    }
  }
  return {
    keys,
    k,
    v,
    t,
    s,
    ...(nan.length > 0 ? { nan } : {}),
    ...(extras.length > 0 ? { extras } : {}),
  };
}
