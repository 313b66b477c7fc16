import { invalidParameter } from '@ledgerflow/contracts';
import type { KeyValue } from '../experiment/experiment.events.js';
import type { LatestMetric, RunDoc } from '../read-models/tracking-docs.js';
import { RUN_NAME_TAG } from '../run/run.events.js';
import type { ViewType } from './experiment-search.js';
import {
  compareValue,
  NULL_COMPARATORS,
  NUMERIC_COMPARATORS,
  parseFilter,
  STRING_COMPARATORS,
  type Comparator,
  type Comparison,
  type FilterGrammar,
  type KeyRule,
} from './filter.js';
import { parseOrderBy, type OrderByClause, type OrderByGrammar } from './order-by.js';
import { decodePageToken, encodePageToken } from './page-token.js';

/** The input tag that names a dataset's role in a run ("training", "eval"): `datasets.context`. */
export const DATASET_CONTEXT_TAG = 'mlflow.data.context';
export const MAX_RUNS_PER_PAGE = 50000;
export const DEFAULT_RUNS_PER_PAGE = 1000;

const LIST_COMPARATORS: readonly Comparator[] = ['IN', 'NOT IN'];
const stringKey = (canonicalKey: string, lists = false): KeyRule => ({
  canonicalKey,
  valueType: 'string',
  comparators: lists ? [...STRING_COMPARATORS, ...LIST_COMPARATORS] : STRING_COMPARATORS,
});
const numberKey = (canonicalKey: string): KeyRule => ({
  canonicalKey,
  valueType: 'number',
  comparators: NUMERIC_COMPARATORS,
});

/** searchRuns filter grammar (MLflow's SearchUtils): metrics, params, tags, attributes, datasets. */
export const RUN_FILTER_GRAMMAR: FilterGrammar = {
  prefixes: new Map([
    ['metric', 'metric'],
    ['metrics', 'metric'],
    ['param', 'param'],
    ['params', 'param'],
    ['parameter', 'param'],
    ['parameters', 'param'],
    ['tag', 'tag'],
    ['tags', 'tag'],
    ['attribute', 'attribute'],
    ['attributes', 'attribute'],
    ['attr', 'attribute'],
    ['run', 'attribute'],
    ['dataset', 'dataset'],
    ['datasets', 'dataset'],
  ]),
  defaultEntity: 'attribute',
  entities: new Map([
    ['metric', { anyKey: { valueType: 'number', comparators: NUMERIC_COMPARATORS } }],
    [
      'param',
      {
        anyKey: {
          valueType: 'string',
          comparators: [...STRING_COMPARATORS, ...NULL_COMPARATORS],
        },
      },
    ],
    [
      'tag',
      {
        anyKey: {
          valueType: 'string',
          comparators: [...STRING_COMPARATORS, ...NULL_COMPARATORS],
        },
      },
    ],
    [
      'attribute',
      {
        keys: new Map([
          ['run_id', stringKey('run_id', true)],
          ['run_name', stringKey('run_name')],
          ['run name', stringKey('run_name')],
          ['Run name', stringKey('run_name')],
          ['Run Name', stringKey('run_name')],
          ['status', stringKey('status')],
          ['user_id', stringKey('user_id')],
          ['artifact_uri', stringKey('artifact_uri')],
          ['start_time', numberKey('start_time')],
          ['end_time', numberKey('end_time')],
          ['created', numberKey('start_time')],
          ['Created', numberKey('start_time')],
        ]),
      },
    ],
    [
      'dataset',
      {
        keys: new Map([
          ['name', stringKey('name', true)],
          ['digest', stringKey('digest', true)],
          ['context', stringKey('context', true)],
        ]),
      },
    ],
  ]),
};

/** searchRuns order_by keys: run attributes (and `created`), metrics, params and tags. */
export const RUN_ORDER_BY_GRAMMAR: OrderByGrammar = {
  prefixes: new Map([...RUN_FILTER_GRAMMAR.prefixes].filter(([, entity]) => entity !== 'dataset')),
  defaultEntity: 'attribute',
  attributes: new Map([
    ['run_id', 'run_id'],
    ['run_name', 'run_name'],
    ['status', 'status'],
    ['user_id', 'user_id'],
    ['artifact_uri', 'artifact_uri'],
    ['start_time', 'start_time'],
    ['end_time', 'end_time'],
    ['created', 'start_time'],
    ['Created', 'start_time'],
  ]),
};

export interface RunSearch {
  readonly experimentIds: readonly string[];
  readonly filter?: string;
  readonly orderBy?: readonly string[];
  readonly maxResults: number;
  readonly pageToken?: string;
  readonly viewType: ViewType;
}

export interface RunSearchResult {
  readonly runs: RunDoc[];
  readonly nextPageToken?: string;
}

// Per-document lookup maps, built on first use and kept as long as the document lives. Read-model
// documents are immutable (a change writes a new object), so a map never goes stale, and a cached
// read model hands out the same objects to every query, so the maps are built once per change.
const metricMaps = new WeakMap<RunDoc, ReadonlyMap<string, LatestMetric>>();
const paramMaps = new WeakMap<RunDoc, ReadonlyMap<string, string>>();
const tagMaps = new WeakMap<RunDoc, ReadonlyMap<string, string>>();

function keyValueMap(list: readonly KeyValue[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const kv of list) map.set(kv.key, kv.value);
  return map;
}

/** The run's latest metrics by key. */
export function metricsOf(doc: RunDoc): ReadonlyMap<string, LatestMetric> {
  let map = metricMaps.get(doc);
  if (map === undefined) {
    const m = new Map<string, LatestMetric>();
    for (const metric of doc.metrics ?? []) m.set(metric.key, metric);
    metricMaps.set(doc, (map = m));
  }
  return map;
}

/** The run's params by key. */
export function paramsOf(doc: RunDoc): ReadonlyMap<string, string> {
  let map = paramMaps.get(doc);
  if (map === undefined) paramMaps.set(doc, (map = keyValueMap(doc.params)));
  return map;
}

/** The run's tags by key. */
export function tagsOf(doc: RunDoc): ReadonlyMap<string, string> {
  let map = tagMaps.get(doc);
  if (map === undefined) tagMaps.set(doc, (map = keyValueMap(doc.tags)));
  return map;
}

type Predicate = (doc: RunDoc) => boolean;

function numericTest(comparator: Comparator, v: number): (x: number) => boolean {
  switch (comparator) {
    case '=':
      return (x) => x === v;
    case '!=':
      return (x) => x !== v;
    case '<':
      return (x) => x < v;
    case '<=':
      return (x) => x <= v;
    case '>':
      return (x) => x > v;
    case '>=':
      return (x) => x >= v;
    default:
      throw invalidParameter(`Invalid comparator '${comparator}' for a metric`);
  }
}

/** A string-valued lookup tested against one comparison (missing never matches, except IS NULL). */
function stringPredicate(c: Comparison, valueOf: (doc: RunDoc) => string | undefined): Predicate {
  if (c.comparator === '=') {
    const v = c.value;
    return (doc) => valueOf(doc) === v;
  }
  return (doc) => compareValue(valueOf(doc), c);
}

function datasetPredicate(c: Comparison): Predicate {
  if (c.key === 'context') {
    // any input whose context tag satisfies the comparison, as MLflow's join on input tags
    return (doc) =>
      (doc.dataset_inputs ?? []).some((input) =>
        input.tags.some((t) => t.key === DATASET_CONTEXT_TAG && compareValue(t.value, c)),
      );
  }
  const field = c.key as 'name' | 'digest';
  return (doc) => (doc.dataset_inputs ?? []).some((input) => compareValue(input.dataset[field], c));
}

/** One filter clause as a function of a run document. */
function compile(c: Comparison): Predicate {
  const key = c.key;
  switch (c.entity) {
    case 'metric': {
      const test = numericTest(c.comparator, c.value as number);
      const nanMatches = c.comparator === '!=';
      // NaN is stored as 0 with is_nan: it satisfies only '!=' (every other comparison with NaN
      // is false), as MLflow's SQL store treats it
      return (doc) => {
        const m = metricsOf(doc).get(key);
        if (m === undefined) return false;
        return m.is_nan === true ? nanMatches : test(m.value);
      };
    }
    case 'param':
      return stringPredicate(c, (doc) => paramsOf(doc).get(key));
    case 'tag':
      return stringPredicate(c, (doc) => tagsOf(doc).get(key));
    case 'dataset':
      return datasetPredicate(c);
    default:
      // attributes.run_name matches the mlflow.runName tag, as MLflow's SQL store does
      if (key === 'run_name') return stringPredicate(c, (doc) => tagsOf(doc).get(RUN_NAME_TAG));
      if (key === 'start_time' || key === 'end_time') {
        return (doc) => compareValue(doc[key], c);
      }
      return stringPredicate(c, (doc) => doc[key] as string | undefined);
  }
}

/** Sort position of a value: 0 present, 1 NaN (metrics), 2 missing; ranks order before values. */
type Rank = 0 | 1 | 2;

interface Column {
  readonly ascending: boolean;
  readonly ranks: Uint8Array;
  readonly values: (string | number)[];
}

function sortValue(doc: RunDoc, clause: OrderByClause): [Rank, string | number] {
  switch (clause.entity) {
    case 'metric': {
      const m = metricsOf(doc).get(clause.key);
      if (m === undefined) return [2, 0];
      return m.is_nan === true ? [1, 0] : [0, m.value];
    }
    case 'param': {
      const v = paramsOf(doc).get(clause.key);
      return v === undefined ? [2, ''] : [0, v];
    }
    case 'tag': {
      const v = tagsOf(doc).get(clause.key);
      return v === undefined ? [2, ''] : [0, v];
    }
    default: {
      const v = doc[clause.key];
      return typeof v === 'string' || typeof v === 'number' ? [0, v] : [2, ''];
    }
  }
}

function columnOf(docs: readonly RunDoc[], clause: OrderByClause): Column {
  const ranks = new Uint8Array(docs.length);
  const values = new Array<string | number>(docs.length);
  for (let i = 0; i < docs.length; i++) {
    const [rank, value] = sortValue(docs[i]!, clause);
    ranks[i] = rank;
    values[i] = value;
  }
  return { ascending: clause.ascending, ranks, values };
}

/**
 * MLflow's run order: each clause puts present values first in the requested direction, then NaN
 * (metrics), then missing values, whatever the direction; ties go to later clauses.
 */
function comparatorOf(columns: readonly Column[]): (i: number, j: number) => number {
  return (i, j) => {
    for (const col of columns) {
      const ri = col.ranks[i]!;
      const rj = col.ranks[j]!;
      if (ri !== rj) return ri - rj;
      if (ri !== 0) continue;
      const a = col.values[i]!;
      const b = col.values[j]!;
      if (a === b) continue;
      const cmp = a < b ? -1 : 1;
      return col.ascending ? cmp : -cmp;
    }
    return 0;
  };
}

/** The k smallest of 0..n-1 under `cmp`, sorted: a bounded heap, O(n log k) instead of a full sort. */
export function smallestIndices(
  n: number,
  k: number,
  cmp: (i: number, j: number) => number,
): number[] {
  if (k >= n) {
    const all = Array.from({ length: n }, (_, i) => i);
    return all.sort(cmp);
  }
  // max-heap of the k best so far: the root is the worst of them
  const heap: number[] = [];
  const siftUp = (at: number): void => {
    let i = at;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (cmp(heap[i]!, heap[parent]!) <= 0) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  };
  const siftDown = (): void => {
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let top = i;
      if (l < heap.length && cmp(heap[l]!, heap[top]!) > 0) top = l;
      if (r < heap.length && cmp(heap[r]!, heap[top]!) > 0) top = r;
      if (top === i) return;
      [heap[i], heap[top]] = [heap[top]!, heap[i]!];
      i = top;
    }
  };
  for (let i = 0; i < n; i++) {
    if (heap.length < k) {
      heap.push(i);
      siftUp(heap.length - 1);
    } else if (cmp(i, heap[0]!) < 0) {
      heap[0] = i;
      siftDown();
    }
  }
  return heap.sort(cmp);
}

/** MLflow's experiment id rule for searches: each must parse as an integer. */
function experimentIdsOf(ids: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const id of ids) {
    const trimmed = String(id).trim();
    if (!/^[+-]?\d+$/.test(trimmed)) {
      throw invalidParameter(
        `Invalid experiment ID '${id}'. Experiment ID must be a valid integer.`,
      );
    }
    out.add(String(BigInt(trimmed)));
  }
  return out;
}

/** Validates max_results as MLflow's SQL store does (1..50000). */
export function validateRunsMaxResults(maxResults: number): number {
  if (!Number.isInteger(maxResults) || maxResults < 1) {
    throw invalidParameter(
      `Invalid value ${maxResults} for parameter 'max_results' supplied. It must be a positive integer`,
    );
  }
  if (maxResults > MAX_RUNS_PER_PAGE) {
    throw invalidParameter(
      `Invalid value ${maxResults} for parameter 'max_results' supplied. It must be at most ${MAX_RUNS_PER_PAGE}`,
    );
  }
  return maxResults;
}

/** The parsed, validated form of a run search: reusable across documents. */
export interface PreparedRunSearch {
  readonly experimentIds: ReadonlySet<string>;
  readonly matches: (doc: RunDoc) => boolean;
  readonly order: readonly OrderByClause[];
  readonly offset: number;
  readonly maxResults: number;
}

/** Parses and validates a run search (400 INVALID_PARAMETER_VALUE on any mistake). */
export function prepareRunSearch(query: RunSearch): PreparedRunSearch {
  const maxResults = validateRunsMaxResults(query.maxResults);
  const predicates = parseFilter(query.filter, RUN_FILTER_GRAMMAR).map(compile);
  const order = parseOrderBy(query.orderBy, RUN_ORDER_BY_GRAMMAR);
  const offset = decodePageToken(query.pageToken);
  const experimentIds = experimentIdsOf(query.experimentIds);
  const stage = query.viewType;
  const matches = (doc: RunDoc): boolean => {
    if (stage !== 'ALL' && doc.lifecycle_stage !== (stage === 'ACTIVE_ONLY' ? 'active' : 'deleted'))
      return false;
    for (const p of predicates) if (!p(doc)) return false;
    return true;
  };
  // MLflow's tie-breaks (and default order): start_time DESC unless ordered by it, then run_id ASC
  const clauses: OrderByClause[] = [...order];
  if (!order.some((o) => o.entity === 'attribute' && o.key === 'start_time'))
    clauses.push({ entity: 'attribute', key: 'start_time', ascending: false });
  clauses.push({ entity: 'attribute', key: 'run_id', ascending: true });
  return { experimentIds, matches, order: clauses, offset, maxResults };
}

/**
 * searchRuns over run documents with MLflow's filter grammar, ordering and paging. Only documents
 * of the requested experiments count, so callers may pass more than those.
 */
export function searchRuns(docs: Iterable<RunDoc>, query: RunSearch): RunSearchResult {
  return searchPrepared(docs, prepareRunSearch(query));
}

/** searchRuns with the query already prepared. */
export function searchPrepared(docs: Iterable<RunDoc>, search: PreparedRunSearch): RunSearchResult {
  const selected: RunDoc[] = [];
  for (const doc of docs) {
    if (search.experimentIds.has(doc.experiment_id) && search.matches(doc)) selected.push(doc);
  }
  const cmp = comparatorOf(search.order.map((clause) => columnOf(selected, clause)));
  const end = search.offset + search.maxResults;
  const ordered = smallestIndices(selected.length, end, cmp);
  const runs = ordered.slice(search.offset, end).map((i) => selected[i]!);
  return end < selected.length ? { runs, nextPageToken: encodePageToken(end) } : { runs };
}
