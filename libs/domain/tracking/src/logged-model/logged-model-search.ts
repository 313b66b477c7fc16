import { invalidParameter } from '@ledgerflow/contracts';
import {
  compareValue,
  NUMERIC_COMPARATORS,
  parseFilter,
  type Comparator,
  type Comparison,
  type FilterGrammar,
  type KeyRule,
} from '../search/filter.js';
import { LOGGED_MODEL_STATUS_NUMBERS, type LoggedModelStatus } from './logged-model.events.js';
import type { LoggedModelDoc, LoggedModelMetric } from './logged-model-doc.js';

/** One entry of SearchLoggedModels.datasets. */
export interface LoggedModelDatasetFilter {
  readonly dataset_name: string;
  readonly dataset_digest?: string;
}

/** One entry of SearchLoggedModels.order_by. */
export interface LoggedModelOrderBy {
  readonly field_name: string;
  readonly ascending: boolean;
  readonly dataset_name?: string;
  readonly dataset_digest?: string;
}

export interface LoggedModelSearch {
  readonly experimentIds: readonly string[];
  readonly filter?: string;
  readonly datasets: readonly LoggedModelDatasetFilter[];
  readonly maxResults: number;
  readonly orderBy: readonly LoggedModelOrderBy[];
  readonly pageToken?: string;
}

/** SearchLoggedModels.max_results when the request has none (the proto's default). */
export const SEARCH_LOGGED_MODELS_DEFAULT_MAX_RESULTS = 50;

const LOGGED_MODEL_STRING_COMPARATORS: readonly Comparator[] = [
  '=',
  '!=',
  'LIKE',
  'ILIKE',
  'IN',
  'NOT IN',
];

/** Attribute spellings (MLflow's column names and aliases) → read-model field. */
const ATTRIBUTE_FIELDS: ReadonlyMap<string, string> = new Map([
  ['model_id', 'model_id'],
  ['experiment_id', 'experiment_id'],
  ['name', 'name'],
  ['artifact_location', 'artifact_uri'],
  ['creation_timestamp_ms', 'creation_timestamp_ms'],
  ['creation_timestamp', 'creation_timestamp_ms'],
  ['creation_time', 'creation_timestamp_ms'],
  ['last_updated_timestamp_ms', 'last_updated_timestamp_ms'],
  ['last_updated_timestamp', 'last_updated_timestamp_ms'],
  ['status', 'status'],
  ['lifecycle_stage', 'lifecycle_stage'],
  ['model_type', 'model_type'],
  ['source_run_id', 'source_run_id'],
  ['status_message', 'status_message'],
]);
const NUMERIC_FIELDS = new Set(['creation_timestamp_ms', 'last_updated_timestamp_ms']);

function attributeRules(): ReadonlyMap<string, KeyRule> {
  const rules = new Map<string, KeyRule>();
  for (const [spelled, field] of ATTRIBUTE_FIELDS) {
    rules.set(
      spelled,
      NUMERIC_FIELDS.has(field)
        ? { canonicalKey: field, valueType: 'number', comparators: NUMERIC_COMPARATORS }
        : {
            canonicalKey: field,
            valueType: 'string',
            comparators: LOGGED_MODEL_STRING_COMPARATORS,
          },
    );
  }
  return rules;
}

/** MLflow's logged-model filter grammar (mlflow/utils/search_logged_model_utils.py). */
export const LOGGED_MODEL_FILTER_GRAMMAR: FilterGrammar = {
  prefixes: new Map([
    ['attributes', 'attribute'],
    ['metrics', 'metric'],
    ['params', 'param'],
    ['tags', 'tag'],
  ]),
  defaultEntity: 'attribute',
  entities: new Map([
    ['attribute', { keys: attributeRules() }],
    ['metric', { anyKey: { valueType: 'number', comparators: NUMERIC_COMPARATORS } }],
    ['param', { anyKey: { valueType: 'string', comparators: LOGGED_MODEL_STRING_COMPARATORS } }],
    ['tag', { anyKey: { valueType: 'string', comparators: LOGGED_MODEL_STRING_COMPARATORS } }],
  ]),
};

/**
 * A status in a filter may be spelled as the entity's name (READY), the proto's name
 * (LOGGED_MODEL_READY) or its number (2); MLflow's SQL column holds the number.
 */
function canonicalStatus(v: string): string {
  const upper = v.toUpperCase();
  if (/^\d+$/.test(v)) return LOGGED_MODEL_STATUS_NUMBERS[Number(v)] ?? v;
  const byName: Readonly<Record<string, LoggedModelStatus>> = {
    UNSPECIFIED: 'LOGGED_MODEL_STATUS_UNSPECIFIED',
    PENDING: 'LOGGED_MODEL_PENDING',
    READY: 'LOGGED_MODEL_READY',
    FAILED: 'LOGGED_MODEL_UPLOAD_FAILED',
  };
  return byName[upper] ?? upper;
}

function normaliseStatusComparison(c: Comparison): Comparison {
  if (c.entity !== 'attribute' || c.key !== 'status') return c;
  if (c.comparator === '=' || c.comparator === '!=')
    return { ...c, value: canonicalStatus(String(c.value)) };
  if (c.comparator === 'IN' || c.comparator === 'NOT IN')
    return { ...c, value: (c.value as readonly string[]).map(canonicalStatus) };
  return c;
}

function inDatasets(m: LoggedModelMetric, datasets: readonly LoggedModelDatasetFilter[]): boolean {
  return datasets.some(
    (d) =>
      m.dataset_name === d.dataset_name &&
      (d.dataset_digest === undefined || m.dataset_digest === d.dataset_digest),
  );
}

function matches(
  doc: LoggedModelDoc,
  comparisons: readonly Comparison[],
  datasets: readonly LoggedModelDatasetFilter[],
): boolean {
  let metricFilters = 0;
  for (const c of comparisons) {
    switch (c.entity) {
      case 'attribute': {
        const v = doc[c.key];
        if (!compareValue(typeof v === 'string' || typeof v === 'number' ? v : undefined, c))
          return false;
        break;
      }
      case 'metric':
        metricFilters += 1;
        // any point of the metric may match (MLflow joins on every logged_model_metrics row)
        if (
          !doc.metrics.some(
            (m) =>
              m.key === c.key &&
              !m.is_nan &&
              compareValue(m.value, c) &&
              (datasets.length === 0 || inDatasets(m, datasets)),
          )
        )
          return false;
        break;
      case 'param':
        if (!compareValue(doc.params.find((p) => p.key === c.key)?.value, c)) return false;
        break;
      case 'tag':
        if (!compareValue(doc.tags.find((t) => t.key === c.key)?.value, c)) return false;
        break;
    }
  }
  if (datasets.length > 0 && metricFilters === 0)
    return doc.metrics.some((m) => inDatasets(m, datasets));
  return true;
}

const STATUS_ORDER: Readonly<Record<string, number>> = {
  LOGGED_MODEL_STATUS_UNSPECIFIED: 0,
  LOGGED_MODEL_PENDING: 1,
  LOGGED_MODEL_READY: 2,
  LOGGED_MODEL_UPLOAD_FAILED: 3,
};

type SortValue = string | number | undefined;

/**
 * The metric a model is ordered by: its latest point of that key (newest timestamp, then highest
 * step, then lowest run id), optionally only among points on one dataset.
 */
function latestMetricValue(doc: LoggedModelDoc, key: string, ob: LoggedModelOrderBy): SortValue {
  let best: LoggedModelMetric | undefined;
  for (const m of doc.metrics) {
    if (m.key !== key) continue;
    if (ob.dataset_name && m.dataset_name !== ob.dataset_name) continue;
    if (ob.dataset_digest && m.dataset_digest !== ob.dataset_digest) continue;
    if (
      best === undefined ||
      m.timestamp > best.timestamp ||
      (m.timestamp === best.timestamp &&
        (m.step > best.step || (m.step === best.step && m.run_id < best.run_id)))
    )
      best = m;
  }
  return best?.value;
}

interface SortKey {
  readonly valueOf: (doc: LoggedModelDoc) => SortValue;
  readonly ascending: boolean;
}

function sortKeys(orderBy: readonly LoggedModelOrderBy[]): SortKey[] {
  const keys: SortKey[] = [];
  let hasCreation = false;
  let hasModelId = false;
  for (const ob of orderBy) {
    const fieldName = ob.field_name;
    if (!fieldName.includes('.')) {
      const field = ATTRIBUTE_FIELDS.get(fieldName);
      if (field === undefined) throw invalidParameter(`Invalid order by field name: ${fieldName}`);
      if (field === 'creation_timestamp_ms') hasCreation = true;
      if (field === 'model_id') hasModelId = true;
      keys.push({
        valueOf: (doc) => {
          const v = doc[field];
          if (field === 'status') return STATUS_ORDER[String(v)];
          return typeof v === 'string' || typeof v === 'number' ? v : undefined;
        },
        ascending: ob.ascending,
      });
      continue;
    }
    const dot = fieldName.indexOf('.');
    const entity = fieldName.slice(0, dot);
    const key = fieldName.slice(dot + 1);
    if (entity !== 'metrics') {
      throw invalidParameter(
        `Invalid order by field name: ${fieldName}. Only metrics are supported.`,
      );
    }
    keys.push({ valueOf: (doc) => latestMetricValue(doc, key, ob), ascending: ob.ascending });
  }
  if (!hasCreation) keys.push({ valueOf: (d) => d.creation_timestamp_ms, ascending: false });
  if (!hasModelId) keys.push({ valueOf: (d) => d.model_id, ascending: true });
  return keys;
}

/** Nulls sort last in either direction, as MLflow's `CASE WHEN col IS NULL` clause does. */
function compareSortValues(a: SortValue, b: SortValue, ascending: boolean): number {
  if (a === undefined || b === undefined) return a === b ? 0 : a === undefined ? 1 : -1;
  const cmp = a < b ? -1 : a > b ? 1 : 0;
  return ascending ? cmp : -cmp;
}

interface PageToken {
  readonly experiment_ids: readonly string[];
  readonly filter_string: string | null;
  readonly order_by: readonly Record<string, unknown>[] | null;
  readonly offset: number;
}

function orderByForToken(orderBy: readonly LoggedModelOrderBy[]): Record<string, unknown>[] | null {
  if (orderBy.length === 0) return null;
  return orderBy.map((ob) => ({
    field_name: ob.field_name,
    ascending: ob.ascending,
    dataset_name: ob.dataset_name ?? null,
    dataset_digest: ob.dataset_digest ?? null,
  }));
}

function pyList(v: unknown): string {
  return JSON.stringify(v ?? null)
    .replace(/"/g, "'")
    .replace(/,/g, ', ');
}

/** MLflow's SearchLoggedModelsPaginationToken: the query travels with the offset and must match. */
function decodeToken(token: string, query: LoggedModelSearch): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8'));
  } catch {
    throw invalidParameter(`Invalid page token: ${token}.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw invalidParameter(`Invalid page token: ${token}.`);
  const t = parsed as Partial<PageToken>;
  const filter = query.filter || null;
  const orderBy = orderByForToken(query.orderBy);
  if (JSON.stringify(t.experiment_ids ?? null) !== JSON.stringify(query.experimentIds)) {
    throw invalidParameter(
      `Experiment IDs in the page token do not match the requested experiment IDs. Expected: ${pyList(query.experimentIds)}. Found: ${pyList(t.experiment_ids)}`,
    );
  }
  if ((t.filter_string || null) !== filter) {
    throw invalidParameter(
      `Filter string in the page token does not match the requested filter string. Expected: ${filter ?? 'None'}. Found: ${t.filter_string ?? 'None'}`,
    );
  }
  if (JSON.stringify(t.order_by || null) !== JSON.stringify(orderBy)) {
    throw invalidParameter(
      `Order by in the page token does not match the requested order by. Expected: ${pyList(orderBy)}. Found: ${pyList(t.order_by)}`,
    );
  }
  const offset = t.offset ?? 0;
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0)
    throw invalidParameter(`Invalid page token: ${token}.`);
  return offset;
}

function encodeToken(query: LoggedModelSearch, offset: number): string {
  const token: PageToken = {
    experiment_ids: query.experimentIds,
    filter_string: query.filter || null,
    order_by: orderByForToken(query.orderBy),
    offset,
  };
  return Buffer.from(JSON.stringify(token)).toString('base64');
}

/**
 * MLflow's search over logged models: active models of the given experiments that pass every
 * comparison (joined by AND), ordered by the given fields then newest first and by id, one page.
 */
export function searchLoggedModels(
  docs: readonly LoggedModelDoc[],
  query: LoggedModelSearch,
): { models: LoggedModelDoc[]; nextPageToken?: string } {
  if (query.datasets.some((d) => !d.dataset_name)) {
    throw invalidParameter('`dataset_name` in the `datasets` clause must be specified.');
  }
  const offset = query.pageToken ? decodeToken(query.pageToken, query) : 0;
  const comparisons = parseFilter(query.filter, LOGGED_MODEL_FILTER_GRAMMAR).map(
    normaliseStatusComparison,
  );
  const keys = sortKeys(query.orderBy);
  const experiments = new Set(query.experimentIds);
  const hits = docs.filter(
    (d) =>
      d.lifecycle_stage !== 'deleted' &&
      experiments.has(d.experiment_id) &&
      matches(d, comparisons, query.datasets),
  );
  const decorated = hits.map((doc) => ({ doc, values: keys.map((k) => k.valueOf(doc)) }));
  decorated.sort((a, b) => {
    for (let i = 0; i < keys.length; i++) {
      const c = compareSortValues(a.values[i], b.values[i], keys[i]!.ascending);
      if (c !== 0) return c;
    }
    return 0;
  });
  const models = decorated.slice(offset, offset + query.maxResults).map((d) => d.doc);
  return offset + query.maxResults < decorated.length
    ? { models, nextPageToken: encodeToken(query, offset + query.maxResults) }
    : { models };
}
