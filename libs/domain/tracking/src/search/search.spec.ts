import { MlflowError } from '@ledgerflow/contracts';
import type { ExperimentDoc } from '../read-models/tracking-docs.js';
import { searchExperiments } from './experiment-search.js';
import { parseFilter } from './filter.js';
import { EXPERIMENT_FILTER_GRAMMAR } from './experiment-search.js';
import { decodePageToken, encodePageToken } from './page-token.js';

const doc = (
  id: string,
  name: string,
  created: number,
  tags: { key: string; value: string }[] = [],
  stage: 'active' | 'deleted' = 'active',
): ExperimentDoc => ({
  experiment_id: id,
  name,
  artifact_location: `mlflow-artifacts:/${id}`,
  lifecycle_stage: stage,
  creation_time: created,
  last_update_time: created,
  tags,
});

const docs = [
  doc('0', 'Default', 1),
  doc('1', 'fraud-a', 3, [{ key: 'team', value: 'risk' }]),
  doc('2', 'fraud-b', 2, [{ key: 'team', value: 'growth' }]),
  doc('3', 'churn', 4, [], 'deleted'),
];

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof MlflowError ? e.code : 'not an MlflowError';
  }
  return undefined;
}

describe('experiment search', () => {
  const ids = (r: { experiments: ExperimentDoc[] }) => r.experiments.map((e) => e.experiment_id);

  it('orders by creation_time DESC by default and hides deleted experiments', () => {
    expect(ids(searchExperiments(docs, { maxResults: 100, viewType: 'ACTIVE_ONLY' }))).toEqual([
      '1',
      '2',
      '0',
    ]);
    expect(ids(searchExperiments(docs, { maxResults: 100, viewType: 'DELETED_ONLY' }))).toEqual([
      '3',
    ]);
    expect(ids(searchExperiments(docs, { maxResults: 100, viewType: 'ALL' }))).toEqual([
      '3',
      '1',
      '2',
      '0',
    ]);
  });

  it('filters with LIKE, ILIKE, = on tags, and numeric attributes, joined by AND', () => {
    expect(
      ids(
        searchExperiments(docs, { maxResults: 100, viewType: 'ALL', filter: "name LIKE 'fraud%'" }),
      ),
    ).toEqual(['1', '2']);
    expect(
      ids(
        searchExperiments(docs, {
          maxResults: 100,
          viewType: 'ALL',
          filter: "name ILIKE 'FRAUD-_'",
        }),
      ),
    ).toEqual(['1', '2']);
    expect(
      ids(
        searchExperiments(docs, { maxResults: 100, viewType: 'ALL', filter: "tags.team = 'risk'" }),
      ),
    ).toEqual(['1']);
    expect(
      ids(
        searchExperiments(docs, {
          maxResults: 100,
          viewType: 'ALL',
          filter: "attribute.creation_time > 2 and name != 'churn'",
        }),
      ),
    ).toEqual(['1']);
    expect(
      ids(
        searchExperiments(docs, {
          maxResults: 100,
          viewType: 'ALL',
          filter: "tags.`team` != 'risk'",
        }),
      ),
    ).toEqual(['2']);
  });

  it('orders by the requested keys with experiment_id as tie-break, and pages', () => {
    const first = searchExperiments(docs, {
      maxResults: 2,
      viewType: 'ACTIVE_ONLY',
      orderBy: ['name ASC'],
    });
    expect(ids(first)).toEqual(['0', '1']);
    expect(first.nextPageToken).toBeDefined();
    const second = searchExperiments(docs, {
      maxResults: 2,
      viewType: 'ACTIVE_ONLY',
      orderBy: ['name ASC'],
      pageToken: first.nextPageToken!,
    });
    expect(ids(second)).toEqual(['2']);
    expect(second.nextPageToken).toBeUndefined();
  });

  it.each([
    ["name = 'a' OR name = 'b'"],
    ["(name = 'a')"],
    ['name = a'],
    ["unknown_attr = 'x'"],
    ["attributes.name = 'x'"],
    ["creation_time > 'x'"],
    ["name > 'x'"],
    ["name = 'a' AND"],
    ["name = 'a'; DROP TABLE x"],
  ])('rejects the malformed filter %s with INVALID_PARAMETER_VALUE', (filter) => {
    expect(codeOf(() => parseFilter(filter, EXPERIMENT_FILTER_GRAMMAR))).toBe(
      'INVALID_PARAMETER_VALUE',
    );
  });

  it('rejects bad page tokens, bad max_results and bad order_by', () => {
    expect(codeOf(() => decodePageToken('not-base64-json'))).toBe('INVALID_PARAMETER_VALUE');
    expect(codeOf(() => decodePageToken(Buffer.from('{"offset":-1}').toString('base64')))).toBe(
      'INVALID_PARAMETER_VALUE',
    );
    expect(decodePageToken(encodePageToken(7))).toBe(7);
    expect(codeOf(() => searchExperiments(docs, { maxResults: 0, viewType: 'ALL' }))).toBe(
      'INVALID_PARAMETER_VALUE',
    );
    expect(codeOf(() => searchExperiments(docs, { maxResults: 50001, viewType: 'ALL' }))).toBe(
      'INVALID_PARAMETER_VALUE',
    );
    expect(
      codeOf(() => searchExperiments(docs, { maxResults: 5, viewType: 'ALL', orderBy: ['bogus'] })),
    ).toBe('INVALID_PARAMETER_VALUE');
    expect(
      codeOf(() =>
        searchExperiments(docs, { maxResults: 5, viewType: 'ALL', orderBy: ['name', 'name DESC'] }),
      ),
    ).toBe('INVALID_PARAMETER_VALUE');
  });
});
