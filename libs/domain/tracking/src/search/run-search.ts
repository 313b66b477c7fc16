import { invalidParameter } from '@ledgerflow/contracts';
import type { RunDoc } from '../read-models/tracking-docs.js';
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

/** A metric column: latest values by row, and whether each is present (0), NaN (1) or missing (2). */
export interface MetricColumn {
  readonly values: Float64Array;
  readonly state: Uint8Array;
}

/**
 * Column views of a list of run documents, built per key on first use. A search reads a few keys
 * of many runs; reading them from flat arrays instead of each document's entry lists is what makes
 * it cheap. Columns are memoised per list (see runColumns): a cached read model hands out the same
 * frozen list until one of its runs changes, so repeated searches reuse them.
 */
export class RunColumns {
  private readonly metrics = new Map<string, MetricColumn>();
  private readonly params = new Map<string, readonly (string | undefined)[]>();
  private readonly tags = new Map<string, readonly (string | undefined)[]>();
  private readonly attributes = new Map<string, readonly unknown[]>();

  constructor(readonly docs: readonly RunDoc[]) {}

  metric(key: string): MetricColumn {
    let col = this.metrics.get(key);
    if (col === undefined) {
      const n = this.docs.length;
      const values = new Float64Array(n);
      const state = new Uint8Array(n).fill(2);
      for (let i = 0; i < n; i++) {
        for (const m of this.docs[i]!.metrics ?? []) {
          if (m.key !== key) continue;
          if (m.is_nan === true) state[i] = 1;
          else {
            state[i] = 0;
            values[i] = m.value;
          }
          break;
        }
      }
      this.metrics.set(key, (col = { values, state }));
    }
    return col;
  }

  param(key: string): readonly (string | undefined)[] {
    return this.keyValues(this.params, key, 'params');
  }

  tag(key: string): readonly (string | undefined)[] {
    return this.keyValues(this.tags, key, 'tags');
  }

  /** A top-level field of every run (run_id, status, start_time, lifecycle_stage, ...). */
  attribute(key: string): readonly unknown[] {
    let col = this.attributes.get(key);
    if (col === undefined) this.attributes.set(key, (col = this.docs.map((d) => d[key])));
    return col;
  }

  private keyValues(
    cache: Map<string, readonly (string | undefined)[]>,
    key: string,
    field: 'params' | 'tags',
  ): readonly (string | undefined)[] {
    let col = cache.get(key);
    if (col === undefined) {
      col = this.docs.map((d) => {
        // the last entry of a key wins, as a map built from the list would have it
        let value: string | undefined;
        for (const kv of d[field]) if (kv.key === key) value = kv.value;
        return value;
      });
      cache.set(key, col);
    }
    return col;
  }
}

const columnsOfList = new WeakMap<readonly RunDoc[], RunColumns>();

/** The memoised columns of a list of runs (the list must not change afterwards). */
export function runColumns(docs: readonly RunDoc[]): RunColumns {
  let cols = columnsOfList.get(docs);
  if (cols === undefined) columnsOfList.set(docs, (cols = new RunColumns(docs)));
  return cols;
}

/** A filter clause bound to one list's columns: row index → matches. */
type RowTest = (i: number) => boolean;
type Clause = (cols: RunColumns) => RowTest;

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

/** A value column tested against one comparison (missing never matches, except IS NULL). */
function valueTest(c: Comparison, col: readonly unknown[]): RowTest {
  if (c.comparator === '=') {
    const v = c.value;
    return (i) => col[i] === v;
  }
  return (i) => compareValue(col[i] as string | number | undefined, c);
}

function datasetClause(c: Comparison): Clause {
  if (c.key === 'context') {
    // any input whose context tag satisfies the comparison, as MLflow's join on input tags
    return (cols) => (i) =>
      (cols.docs[i]!.dataset_inputs ?? []).some((input) =>
        input.tags.some((t) => t.key === DATASET_CONTEXT_TAG && compareValue(t.value, c)),
      );
  }
  const field = c.key as 'name' | 'digest';
  return (cols) => (i) =>
    (cols.docs[i]!.dataset_inputs ?? []).some((input) => compareValue(input.dataset[field], c));
}

/** One filter clause, to be bound to a list's columns. */
function compile(c: Comparison): Clause {
  const key = c.key;
  switch (c.entity) {
    case 'metric': {
      const test = numericTest(c.comparator, c.value as number);
      // NaN is stored as 0 with is_nan: it satisfies only '!=' (every other comparison with NaN
      // is false), as MLflow's SQL store treats it; a missing metric never matches
      const nanMatches = c.comparator === '!=';
      return (cols) => {
        const { values, state } = cols.metric(key);
        return (i) => (state[i] === 0 ? test(values[i]!) : nanMatches && state[i] === 1);
      };
    }
    case 'param':
      return (cols) => valueTest(c, cols.param(key));
    case 'tag':
      return (cols) => valueTest(c, cols.tag(key));
    case 'dataset':
      return datasetClause(c);
    default:
      // attributes.run_name matches the mlflow.runName tag, as MLflow's SQL store does
      if (key === 'run_name') return (cols) => valueTest(c, cols.tag(RUN_NAME_TAG));
      return (cols) => valueTest(c, cols.attribute(key));
  }
}

/** Sort position of a value: 0 present, 1 NaN (metrics), 2 missing; ranks order before values. */
interface Column {
  readonly ascending: boolean;
  readonly ranks: Uint8Array;
  readonly values: (string | number)[];
}

/** Writes the sort key of row i of `cols` at position `at` of an order column. */
type SortKeyWriter = (i: number, at: number) => void;

function sortKeyWriter(cols: RunColumns, clause: OrderByClause, out: Column): SortKeyWriter {
  const { ranks, values } = out;
  if (clause.entity === 'metric') {
    const m = cols.metric(clause.key);
    return (i, at) => {
      const state = m.state[i]!;
      ranks[at] = state;
      values[at] = state === 0 ? m.values[i]! : 0;
    };
  }
  const col =
    clause.entity === 'param'
      ? cols.param(clause.key)
      : clause.entity === 'tag'
        ? cols.tag(clause.key)
        : cols.attribute(clause.key);
  return (i, at) => {
    const v = col[i];
    if (typeof v === 'string' || typeof v === 'number') {
      ranks[at] = 0;
      values[at] = v;
    } else {
      ranks[at] = 2;
      values[at] = '';
    }
  };
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
  readonly viewType: ViewType;
  readonly clauses: readonly Clause[];
  readonly order: readonly OrderByClause[];
  readonly offset: number;
  readonly maxResults: number;
}

/** Parses and validates a run search (400 INVALID_PARAMETER_VALUE on any mistake). */
export function prepareRunSearch(query: RunSearch): PreparedRunSearch {
  const maxResults = validateRunsMaxResults(query.maxResults);
  const clauses = parseFilter(query.filter, RUN_FILTER_GRAMMAR).map(compile);
  const parsedOrder = parseOrderBy(query.orderBy, RUN_ORDER_BY_GRAMMAR);
  const offset = decodePageToken(query.pageToken);
  const experimentIds = experimentIdsOf(query.experimentIds);
  // MLflow's tie-breaks (and default order): start_time DESC unless ordered by it, then run_id ASC
  const order: OrderByClause[] = [...parsedOrder];
  if (!parsedOrder.some((o) => o.entity === 'attribute' && o.key === 'start_time'))
    order.push({ entity: 'attribute', key: 'start_time', ascending: false });
  order.push({ entity: 'attribute', key: 'run_id', ascending: true });
  return { experimentIds, viewType: query.viewType, clauses, order, offset, maxResults };
}

/**
 * searchRuns over run documents with MLflow's filter grammar, ordering and paging. Only documents
 * of the requested experiments count, so callers may pass more than those.
 */
export function searchRuns(docs: readonly RunDoc[], query: RunSearch): RunSearchResult {
  return searchPrepared([docs], prepareRunSearch(query));
}

/**
 * searchRuns with the query already prepared, over lists of runs (e.g. one per experiment). Each
 * list is read through its memoised columns, so pass the same (unchanged) lists again to reuse them.
 */
export function searchPrepared(
  lists: readonly (readonly RunDoc[])[],
  search: PreparedRunSearch,
): RunSearchResult {
  const selected: RunDoc[] = [];
  const picks: { cols: RunColumns; rows: number[] }[] = [];
  const stage = search.viewType;
  for (const docs of lists) {
    const cols = runColumns(docs);
    const experiments = cols.attribute('experiment_id');
    const stages = cols.attribute('lifecycle_stage');
    const tests = search.clauses.map((clause) => clause(cols));
    const rows: number[] = [];
    for (let i = 0; i < docs.length; i++) {
      if (!search.experimentIds.has(experiments[i] as string)) continue;
      if (stage !== 'ALL' && stages[i] !== (stage === 'ACTIVE_ONLY' ? 'active' : 'deleted'))
        continue;
      let ok = true;
      for (const test of tests) {
        if (!test(i)) {
          ok = false;
          break;
        }
      }
      if (ok) rows.push(i);
    }
    picks.push({ cols, rows });
  }
  const n = picks.reduce((sum, p) => sum + p.rows.length, 0);
  const columns: Column[] = search.order.map((c) => ({
    ascending: c.ascending,
    ranks: new Uint8Array(n),
    values: new Array<string | number>(n),
  }));
  let at = 0;
  for (const { cols, rows } of picks) {
    const writers = search.order.map((o, k) => sortKeyWriter(cols, o, columns[k]!));
    for (const i of rows) {
      for (const write of writers) write(i, at);
      selected.push(cols.docs[i]!);
      at += 1;
    }
  }
  const cmp = comparatorOf(columns);
  const end = search.offset + search.maxResults;
  const ordered = smallestIndices(n, end, cmp);
  const runs = ordered.slice(search.offset, end).map((i) => selected[i]!);
  return end < n ? { runs, nextPageToken: encodePageToken(end) } : { runs };
}
