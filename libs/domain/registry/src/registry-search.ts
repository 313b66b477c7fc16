import { invalidParameter } from '@ledgerflow/contracts';
import {
  compareValue,
  decodePageToken,
  NUMERIC_COMPARATORS,
  paginate,
  parseFilter,
  parseOrderBy,
  STRING_COMPARATORS,
  type Comparison,
  type EntityRule,
  type FilterGrammar,
  type KeyRule,
  type OrderByClause,
  type OrderByGrammar,
} from '@ledgerflow/domain-tracking';
import type { ModelVersionDoc, RegisteredModelDoc } from './registry-docs.js';

const stringKey = (canonicalKey: string, extra: KeyRule['comparators'] = []): KeyRule => ({
  canonicalKey,
  valueType: 'string',
  comparators: [...STRING_COMPARATORS, ...extra],
});
const tagRule: EntityRule = { anyKey: { valueType: 'string', comparators: STRING_COMPARATORS } };
const prefixes = new Map([
  ['attribute', 'attribute'],
  ['tag', 'tag'],
  ['tags', 'tag'],
]);

/** searchRegisteredModels (§3): attribute `name` and tags. */
export const REGISTERED_MODEL_FILTER_GRAMMAR: FilterGrammar = {
  prefixes,
  defaultEntity: 'attribute',
  entities: new Map<string, EntityRule>([
    ['attribute', { keys: new Map([['name', stringKey('name')]]) }],
    ['tag', tagRule],
  ]),
};

export const REGISTERED_MODEL_ORDER_BY_GRAMMAR: OrderByGrammar = {
  prefixes: new Map([['attribute', 'attribute']]),
  defaultEntity: 'attribute',
  attributes: new Map([
    ['name', 'name'],
    ['timestamp', 'last_updated_timestamp'],
    ['last_updated_timestamp', 'last_updated_timestamp'],
  ]),
};

/** searchModelVersions (§3): name, run_id (also IN), source_path, version_number, tags. */
export const MODEL_VERSION_FILTER_GRAMMAR: FilterGrammar = {
  prefixes,
  defaultEntity: 'attribute',
  entities: new Map<string, EntityRule>([
    [
      'attribute',
      {
        keys: new Map([
          ['name', stringKey('name')],
          ['run_id', stringKey('run_id', ['IN', 'NOT IN'])],
          ['source_path', stringKey('source')],
          [
            'version_number',
            { canonicalKey: 'version', valueType: 'number', comparators: NUMERIC_COMPARATORS },
          ],
        ]),
      },
    ],
    ['tag', tagRule],
  ]),
};

export const MODEL_VERSION_ORDER_BY_GRAMMAR: OrderByGrammar = {
  prefixes: new Map([['attribute', 'attribute']]),
  defaultEntity: 'attribute',
  attributes: new Map([
    ['name', 'name'],
    ['version_number', 'version'],
    ['creation_timestamp', 'creation_timestamp'],
    ['last_updated_timestamp', 'last_updated_timestamp'],
    ['timestamp', 'last_updated_timestamp'],
  ]),
};

export const MAX_REGISTERED_MODELS_PER_PAGE = 1000;
export const DEFAULT_REGISTERED_MODELS_PER_PAGE = 100;
export const MAX_MODEL_VERSIONS_PER_PAGE = 200_000;
export const DEFAULT_MODEL_VERSIONS_PER_PAGE = 10_000;

export interface RegistrySearch {
  readonly filter?: string;
  readonly orderBy?: readonly string[];
  readonly maxResults: number;
  readonly pageToken?: string;
}

type Tagged = { readonly tags: readonly { key: string; value: string }[] } & Record<
  string,
  unknown
>;

function matches(doc: Tagged, c: Comparison): boolean {
  if (c.entity === 'tag') return compareValue(doc.tags.find((t) => t.key === c.key)?.value, c);
  return compareValue(doc[c.key] as string | number | undefined, c);
}

function compareBy<T extends Record<string, unknown>>(clauses: readonly OrderByClause[]) {
  return (a: T, b: T): number => {
    for (const c of clauses) {
      const x = a[c.key] as string | number;
      const y = b[c.key] as string | number;
      if (x === y) continue;
      const cmp = x < y ? -1 : 1;
      return c.ascending ? cmp : -cmp;
    }
    return 0;
  };
}

function checkMaxResults(maxResults: number, max: number): void {
  if (!Number.isInteger(maxResults) || maxResults < 1) {
    throw invalidParameter(
      `Invalid value for max_results. It must be a positive integer, but got ${maxResults}`,
    );
  }
  if (maxResults > max) {
    throw invalidParameter(
      `Invalid value for request parameter max_results. It must be at most ${max}, but got value ${maxResults}`,
    );
  }
}

const PROMPT_TAG = 'mlflow.prompt.is_prompt';

/**
 * MLflow's prompt handling: prompts are registered models (and versions) tagged
 * `mlflow.prompt.is_prompt = 'true'`. A filter asking for prompts (`= 'true'` or `!= 'false'` on
 * that tag) searches them; any other filter drops its comparisons on that tag and hides prompts
 * (the client adds `tag.`mlflow.prompt.is_prompt` != 'true'` to every search).
 */
function promptScope(comparisons: readonly Comparison[]): {
  comparisons: Comparison[];
  keep: (doc: Tagged) => boolean;
} {
  const onPromptTag = (c: Comparison) => c.entity === 'tag' && c.key === PROMPT_TAG;
  const asksForPrompts = comparisons.some(
    (c) =>
      onPromptTag(c) &&
      typeof c.value === 'string' &&
      ((c.comparator === '=' && c.value.toLowerCase() === 'true') ||
        (c.comparator === '!=' && c.value.toLowerCase() === 'false')),
  );
  if (asksForPrompts) return { comparisons: [...comparisons], keep: () => true };
  return {
    comparisons: comparisons.filter((c) => !onPromptTag(c)),
    keep: (doc) => !doc.tags.some((t) => t.key === PROMPT_TAG && t.value.toLowerCase() === 'true'),
  };
}

/** searchRegisteredModels over registered-model documents (MLflow's filter, order and paging). */
export function searchRegisteredModels(
  docs: readonly RegisteredModelDoc[],
  query: RegistrySearch,
): { models: RegisteredModelDoc[]; nextPageToken?: string } {
  checkMaxResults(query.maxResults, MAX_REGISTERED_MODELS_PER_PAGE);
  const { comparisons, keep } = promptScope(
    parseFilter(query.filter, REGISTERED_MODEL_FILTER_GRAMMAR),
  );
  const order = parseOrderBy(query.orderBy, REGISTERED_MODEL_ORDER_BY_GRAMMAR);
  const offset = decodePageToken(query.pageToken);
  const clauses: OrderByClause[] = [...order];
  // MLflow's tie-break: name ASC
  if (!order.some((o) => o.key === 'name'))
    clauses.push({ entity: 'attribute', key: 'name', ascending: true });
  const selected = docs.filter((d) => keep(d) && comparisons.every((c) => matches(d, c)));
  selected.sort(compareBy<RegisteredModelDoc>(clauses));
  const { page, nextPageToken } = paginate(selected, offset, query.maxResults);
  return nextPageToken === undefined ? { models: page } : { models: page, nextPageToken };
}

/** searchModelVersions over version documents; deleted versions are never returned. */
export function searchModelVersions(
  docs: readonly ModelVersionDoc[],
  query: RegistrySearch,
): { versions: ModelVersionDoc[]; nextPageToken?: string } {
  checkMaxResults(query.maxResults, MAX_MODEL_VERSIONS_PER_PAGE);
  const { comparisons, keep } = promptScope(
    parseFilter(query.filter, MODEL_VERSION_FILTER_GRAMMAR),
  );
  const order = parseOrderBy(query.orderBy, MODEL_VERSION_ORDER_BY_GRAMMAR);
  const offset = decodePageToken(query.pageToken);
  const clauses: OrderByClause[] = [...order];
  const keys = new Set(order.map((o) => o.key));
  // MLflow's default: last_updated_timestamp DESC, name ASC, version_number DESC
  if (order.length === 0)
    clauses.push({ entity: 'attribute', key: 'last_updated_timestamp', ascending: false });
  if (!keys.has('name')) clauses.push({ entity: 'attribute', key: 'name', ascending: true });
  if (!keys.has('version')) clauses.push({ entity: 'attribute', key: 'version', ascending: false });
  const selected = docs.filter(
    (d) => !d.deleted && keep(d) && comparisons.every((c) => matches(d, c)),
  );
  selected.sort(compareBy<ModelVersionDoc>(clauses));
  const { page, nextPageToken } = paginate(selected, offset, query.maxResults);
  return nextPageToken === undefined ? { versions: page } : { versions: page, nextPageToken };
}
