import { invalidParameter } from '@ledgerflow/contracts';
import type { ExperimentDoc } from '../read-models/tracking-docs.js';
import {
  compareValue,
  NUMERIC_COMPARATORS,
  parseFilter,
  STRING_COMPARATORS,
  type Comparison,
  type FilterGrammar,
  type KeyRule,
} from './filter.js';
import { parseOrderBy, type OrderByClause, type OrderByGrammar } from './order-by.js';
import { decodePageToken, paginate } from './page-token.js';

export type ViewType = 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';

const stringKey = (canonicalKey: string): KeyRule => ({
  canonicalKey,
  valueType: 'string',
  comparators: STRING_COMPARATORS,
});
const numberKey = (canonicalKey: string): KeyRule => ({
  canonicalKey,
  valueType: 'number',
  comparators: NUMERIC_COMPARATORS,
});

/** searchExperiments filter grammar: prefixes `attribute`, `tag`, `tags` (not `attributes`). */
export const EXPERIMENT_FILTER_GRAMMAR: FilterGrammar = {
  prefixes: new Map([
    ['attribute', 'attribute'],
    ['tag', 'tag'],
    ['tags', 'tag'],
  ]),
  defaultEntity: 'attribute',
  entities: new Map([
    [
      'attribute',
      {
        keys: new Map([
          ['name', stringKey('name')],
          ['creation_time', numberKey('creation_time')],
          ['last_update_time', numberKey('last_update_time')],
        ]),
      },
    ],
    ['tag', { anyKey: { valueType: 'string', comparators: STRING_COMPARATORS } }],
  ]),
};

export const EXPERIMENT_ORDER_BY_GRAMMAR: OrderByGrammar = {
  prefixes: new Map([['attribute', 'attribute']]),
  defaultEntity: 'attribute',
  attributes: new Map([
    ['name', 'name'],
    ['experiment_id', 'experiment_id'],
    ['creation_time', 'creation_time'],
    ['last_update_time', 'last_update_time'],
  ]),
};

export interface ExperimentSearch {
  readonly filter?: string;
  readonly orderBy?: readonly string[];
  readonly maxResults: number;
  readonly pageToken?: string;
  readonly viewType: ViewType;
}

export const MAX_EXPERIMENTS_PER_PAGE = 50000;

function matches(doc: ExperimentDoc, c: Comparison): boolean {
  if (c.entity === 'tag') return compareValue(doc.tags.find((t) => t.key === c.key)?.value, c);
  return compareValue(doc[c.key] as string | number | undefined, c);
}

function attributeValue(doc: ExperimentDoc, key: string): string | number {
  // experiment ids are integers held as strings; order them numerically
  return key === 'experiment_id' ? Number(doc.experiment_id) : (doc[key] as string | number);
}

function compareBy(clauses: readonly OrderByClause[]) {
  return (a: ExperimentDoc, b: ExperimentDoc): number => {
    for (const c of clauses) {
      const x = attributeValue(a, c.key);
      const y = attributeValue(b, c.key);
      if (x === y) continue;
      const cmp = x < y ? -1 : 1;
      return c.ascending ? cmp : -cmp;
    }
    return 0;
  };
}

/** searchExperiments over experiment documents, with MLflow's filter, ordering and paging. */
export function searchExperiments(
  docs: readonly ExperimentDoc[],
  query: ExperimentSearch,
): { experiments: ExperimentDoc[]; nextPageToken?: string } {
  if (
    !Number.isInteger(query.maxResults) ||
    query.maxResults < 1 ||
    query.maxResults > MAX_EXPERIMENTS_PER_PAGE
  ) {
    throw invalidParameter(
      `Invalid value ${query.maxResults} for parameter 'max_results' supplied. It must be at least 1 and at most ${MAX_EXPERIMENTS_PER_PAGE}.`,
    );
  }
  const comparisons = parseFilter(query.filter, EXPERIMENT_FILTER_GRAMMAR);
  const order = parseOrderBy(query.orderBy, EXPERIMENT_ORDER_BY_GRAMMAR);
  const offset = decodePageToken(query.pageToken);
  const keys = new Set(order.map((o) => o.key));
  // MLflow's default and tie-breaks: creation_time DESC, experiment_id ASC
  const clauses: OrderByClause[] = [...order];
  if (!keys.has('creation_time') && order.length === 0)
    clauses.push({ entity: 'attribute', key: 'creation_time', ascending: false });
  if (!keys.has('experiment_id'))
    clauses.push({ entity: 'attribute', key: 'experiment_id', ascending: true });
  const selected = docs.filter(
    (d) =>
      (query.viewType === 'ALL' ||
        (query.viewType === 'ACTIVE_ONLY'
          ? d.lifecycle_stage === 'active'
          : d.lifecycle_stage === 'deleted')) &&
      comparisons.every((c) => matches(d, c)),
  );
  selected.sort(compareBy(clauses));
  const { page, nextPageToken } = paginate(selected, offset, query.maxResults);
  return nextPageToken === undefined ? { experiments: page } : { experiments: page, nextPageToken };
}
