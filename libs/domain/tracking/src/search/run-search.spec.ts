import { MlflowError } from '@ledgerflow/contracts';
import type { DatasetInputRecord } from '../run/run.events.js';
import type { LatestMetric, RunDoc } from '../read-models/tracking-docs.js';
import { decodePageToken, encodePageToken } from './page-token.js';
import {
  prepareRunSearch,
  runColumns,
  searchPrepared,
  searchRuns,
  smallestIndices,
  type RunSearch,
} from './run-search.js';

interface RunSpec {
  id: string;
  exp?: string;
  start?: number;
  end?: number;
  status?: RunDoc['status'];
  user?: string;
  stage?: 'active' | 'deleted';
  name?: string | null;
  metrics?: Record<string, number | 'NaN'>;
  params?: Record<string, string>;
  tags?: Record<string, string>;
  datasets?: { name: string; digest: string; context?: string }[];
}

function run(s: RunSpec): RunDoc {
  const metrics: LatestMetric[] = Object.entries(s.metrics ?? {}).map(([key, v]) =>
    v === 'NaN'
      ? { key, value: 0, timestamp: 1, step: 0, is_nan: true }
      : { key, value: v, timestamp: 1, step: 0 },
  );
  const tags = Object.entries(s.tags ?? {}).map(([key, value]) => ({ key, value }));
  if (s.name !== null) tags.push({ key: 'mlflow.runName', value: s.name ?? `name-${s.id}` });
  const datasets: DatasetInputRecord[] = (s.datasets ?? []).map((d) => ({
    tags: d.context === undefined ? [] : [{ key: 'mlflow.data.context', value: d.context }],
    dataset: { name: d.name, digest: d.digest, source_type: 'local', source: '{}' },
  }));
  return {
    run_id: s.id,
    experiment_id: s.exp ?? '1',
    run_name: s.name ?? `name-${s.id}`,
    user_id: s.user ?? 'ada',
    status: s.status ?? 'FINISHED',
    start_time: s.start ?? 100,
    ...(s.end === undefined ? {} : { end_time: s.end }),
    artifact_uri: `mlflow-artifacts:/1/${s.id}/artifacts`,
    lifecycle_stage: s.stage ?? 'active',
    tags,
    params: Object.entries(s.params ?? {}).map(([key, value]) => ({ key, value })),
    metrics,
    dataset_inputs: datasets,
  };
}

const runs: RunDoc[] = [
  run({
    id: 'a1',
    start: 500,
    end: 900,
    status: 'FINISHED',
    user: 'ada',
    name: 'alpha',
    metrics: { acc: 0.9, loss: 0.2 },
    params: { model: 'lr', lr: '0.1' },
    tags: { team: 'risk', 'mlflow.user': 'ada' },
    datasets: [{ name: 'iris', digest: 'd1', context: 'training' }],
  }),
  run({
    id: 'b2',
    start: 400,
    status: 'RUNNING',
    user: 'bob',
    name: 'Beta',
    metrics: { acc: 'NaN', loss: 0.5 },
    params: { model: 'RF' },
    tags: { team: 'growth' },
    datasets: [
      { name: 'iris', digest: 'd2', context: 'eval' },
      { name: 'wine', digest: 'd3' },
    ],
  }),
  run({
    id: 'c3',
    start: 300,
    end: 700,
    status: 'FAILED',
    user: 'cy',
    name: 'gamma',
    metrics: { acc: 0.5 },
    params: { model: 'rf', lr: '0.01' },
  }),
  run({ id: 'd4', start: 300, user: 'ada', name: 'delta', stage: 'deleted', metrics: { acc: 1 } }),
  run({ id: 'e5', exp: '2', start: 600, metrics: { acc: 0.7 } }),
];

const base: RunSearch = { experimentIds: ['1'], maxResults: 1000, viewType: 'ACTIVE_ONLY' };
const search = (over: Partial<RunSearch>) => searchRuns(runs, { ...base, ...over });
const ids = (over: Partial<RunSearch>) => search(over).runs.map((r) => r.run_id);
const filtered = (filter: string) => ids({ filter, viewType: 'ALL' });

function errorOf(fn: () => unknown): MlflowError | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof MlflowError) return e;
    throw e;
  }
  return undefined;
}

describe('run search', () => {
  it('returns the active runs of the requested experiments, start_time DESC then run_id ASC', () => {
    expect(ids({})).toEqual(['a1', 'b2', 'c3']);
    expect(ids({ viewType: 'DELETED_ONLY' })).toEqual(['d4']);
    expect(ids({ viewType: 'ALL' })).toEqual(['a1', 'b2', 'c3', 'd4']);
    expect(ids({ experimentIds: ['1', '2'] })).toEqual(['e5', 'a1', 'b2', 'c3']);
    expect(ids({ experimentIds: ['02'] })).toEqual(['e5']);
    expect(ids({ experimentIds: [] })).toEqual([]);
  });

  describe('metrics', () => {
    it.each([
      ['metrics.acc = 0.9', ['a1']],
      ['metrics.acc != 0.9', ['b2', 'c3', 'd4']],
      ['metrics.acc > 0.5', ['a1', 'd4']],
      ['metrics.acc >= 0.5', ['a1', 'c3', 'd4']],
      ['metrics.acc < 0.9', ['c3']],
      ['metrics.acc <= 0.9', ['a1', 'c3']],
      ['metrics.acc > -1e3', ['a1', 'c3', 'd4']],
      ['metric.loss < 0.3', ['a1']],
      ['`metrics`.`loss` >= .5', ['b2']],
    ])('%s', (filter, expected) => {
      expect(filtered(filter)).toEqual(expected);
    });

    it('treats a NaN latest value as failing every comparison but !=', () => {
      expect(filtered('metrics.acc = 0')).toEqual([]);
      expect(filtered('metrics.acc <= 0')).toEqual([]);
      expect(filtered('metrics.acc != 0.9')).toContain('b2');
    });

    it('never matches a run without the metric, not even with !=', () => {
      expect(filtered('metrics.loss != 1')).toEqual(['a1', 'b2']);
      expect(filtered('metrics.nope != 1')).toEqual([]);
    });
  });

  describe('params and tags', () => {
    it.each([
      ["params.model = 'rf'", ['c3']],
      ["params.model != 'rf'", ['a1', 'b2']],
      ["params.model LIKE 'r%'", ['c3']],
      ["params.model ILIKE 'r%'", ['b2', 'c3']],
      ["params.model like '_f'", ['c3']],
      ["param.lr = '0.1'", ['a1']],
      ['parameter.lr IS NOT NULL', ['a1', 'c3']],
      ['parameters.lr IS NULL', ['b2', 'd4']],
      ['params.lr != "0.1"', ['c3']],
      ["tags.team = 'risk'", ['a1']],
      ["tags.team != 'risk'", ['b2']],
      ["tags.team LIKE '%o%'", ['b2']],
      ["tag.team ILIKE 'RISK'", ['a1']],
      ["tags.`mlflow.user` = 'ada'", ['a1']],
      ['tags."mlflow.user" LIKE \'a%\'', ['a1']],
      ["tags.mlflow.user = 'ada'", ['a1']],
      ['tags.team IS NULL', ['c3', 'd4']],
      ['tags.team is not null', ['a1', 'b2']],
    ])('%s', (filter, expected) => {
      expect(filtered(filter)).toEqual(expected);
    });
  });

  describe('attributes', () => {
    it.each([
      ["attributes.run_id = 'b2'", ['b2']],
      ["run_id != 'b2'", ['a1', 'c3', 'd4']],
      ["attr.run_id LIKE '%2'", ['b2']],
      ["run.run_id ILIKE 'B%'", ['b2']],
      ["run_id IN ('a1', 'c3', 'zz')", ['a1', 'c3']],
      ["attribute.run_id NOT IN ('a1')", ['b2', 'c3', 'd4']],
      ["run_id not in ('a1','b2')", ['c3', 'd4']],
      ["attributes.run_name = 'alpha'", ['a1']],
      ["run_name ILIKE 'b%'", ['b2']],
      ["run_name LIKE 'b%'", []],
      ["`run name` = 'gamma'", ['c3']],
      ['"Run name" != \'gamma\'', ['a1', 'b2', 'd4']],
      ["attributes.`Run Name` LIKE '%lt%'", ['d4']],
      ["status = 'RUNNING'", ['b2']],
      ["status != 'RUNNING'", ['a1', 'c3', 'd4']],
      ["attributes.status LIKE 'F%'", ['a1', 'c3', 'd4']],
      ['params.model LIKE "r%"', ['c3']],
      ['run_id IN ("a1", \'b2\')', ['a1', 'b2']],
      ["user_id = 'ada'", ['a1', 'd4']],
      ["user_id ILIKE 'B%'", ['b2']],
      ["artifact_uri LIKE '%/c3/%'", ['c3']],
      ['start_time = 300', ['c3', 'd4']],
      ['start_time != 300', ['a1', 'b2']],
      ['start_time > 300', ['a1', 'b2']],
      ['start_time >= 400', ['a1', 'b2']],
      ['attributes.start_time < 400', ['c3', 'd4']],
      ['start_time <= 400', ['b2', 'c3', 'd4']],
      ['created > 450', ['a1']],
      ['Created < 350', ['c3', 'd4']],
      ['end_time > 800', ['a1']],
      ['end_time != 1', ['a1', 'c3']],
    ])('%s', (filter, expected) => {
      expect(filtered(filter)).toEqual(expected);
    });

    it('matches run_name on the mlflow.runName tag, as MLflow does', () => {
      const untagged = run({ id: 'x9', name: null });
      expect(searchRuns([untagged], { ...base, filter: "run_name != 'other'" }).runs).toEqual([]);
    });
  });

  describe('datasets', () => {
    it.each([
      ["datasets.name = 'iris'", ['a1', 'b2']],
      ["dataset.name != 'iris'", ['b2']],
      ["datasets.name LIKE 'w%'", ['b2']],
      ["datasets.name ILIKE 'IR%'", ['a1', 'b2']],
      ["datasets.name IN ('wine', 'x')", ['b2']],
      ["datasets.name NOT IN ('iris')", ['b2']],
      ["datasets.digest = 'd1'", ['a1']],
      ["datasets.digest != 'd1'", ['b2']],
      ["datasets.digest LIKE 'd%'", ['a1', 'b2']],
      ["datasets.digest ILIKE 'D3'", ['b2']],
      ["datasets.digest IN ('d2')", ['b2']],
      ["datasets.digest NOT IN ('d2', 'd3')", ['a1']],
      ["datasets.context = 'training'", ['a1']],
      ["datasets.context != 'training'", ['b2']],
      ["datasets.context LIKE 'ev%'", ['b2']],
      ["datasets.context ILIKE 'TRAIN%'", ['a1']],
      ["datasets.context IN ('eval', 'test')", ['b2']],
      ["datasets.context NOT IN ('eval')", ['a1']],
      ["datasets.name = 'iris' and datasets.context = 'eval'", ['b2']],
    ])('%s', (filter, expected) => {
      expect(filtered(filter)).toEqual(expected);
    });
  });

  it('joins clauses with AND in any letter case', () => {
    expect(filtered("metrics.acc > 0.1 AND params.model ILIKE 'r%' and tags.team IS NULL")).toEqual(
      ['c3'],
    );
  });

  describe('malformed filters are 400 INVALID_PARAMETER_VALUE', () => {
    it.each([
      'metrics.acc > 1 OR metrics.acc < 0',
      'NOT metrics.acc > 1',
      '(metrics.acc > 1)',
      "metrics.acc > 1 and (params.model = 'x')",
      "foo = 'x'",
      "experiment_id = '1'",
      "lifecycle_stage = 'active'",
      'status = RUNNING',
      'params.model = rf',
      "metrics.acc > '1'",
      'metrics.acc = NaN',
      'params.model = 1',
      'params.model > 1',
      "params.model > 'a'",
      "tags.team IN ('a')",
      "metrics.acc LIKE '1'",
      'metrics.acc IS NULL',
      'end_time IS NULL',
      "status IN ('RUNNING')",
      "run_name IN ('a')",
      'run_id IN ()',
      "run_id IN ('a', 1)",
      "run_id IN 'a'",
      "start_time > '1'",
      "start_time LIKE '1%'",
      "datasets.foo = 'x'",
      'datasets.name = 1',
      "datasets.name > 'a'",
      "foo.bar = 'x'",
      'metrics.acc',
      'metrics.acc >',
      '> 1',
      "'x' = params.model",
      'metrics.acc > 1;',
      'metrics.acc > 1 metrics.loss > 2',
      'metrics.acc BETWEEN 1 AND 2',
      'metrics.acc == 1',
      "params.model = 'unterminated",
    ])('%s', (filter) => {
      const error = errorOf(() => search({ filter }));
      expect(error?.code).toBe('INVALID_PARAMETER_VALUE');
    });
  });

  describe('order_by', () => {
    const many = [
      run({ id: 'r1', start: 1, metrics: { m: 3 }, params: { p: 'b' }, tags: { t: 'y' } }),
      run({ id: 'r2', start: 2, metrics: { m: 'NaN' }, params: { p: 'a' } }),
      run({ id: 'r3', start: 3, metrics: {}, tags: { t: 'x' } }),
      run({ id: 'r4', start: 4, metrics: { m: 1 }, params: { p: 'c' }, end: 10 }),
      run({ id: 'r5', start: 5, metrics: { m: 'NaN' }, end: 5 }),
      run({ id: 'r6', start: 6, metrics: { m: 2 }, params: { p: 'a' } }),
    ];
    const order = (orderBy: string[]) =>
      searchRuns(many, { ...base, orderBy }).runs.map((r) => r.run_id);

    it('puts NaN, then missing metrics last in both directions (start_time DESC breaks ties)', () => {
      expect(order(['metrics.m'])).toEqual(['r4', 'r6', 'r1', 'r5', 'r2', 'r3']);
      expect(order(['metrics.m ASC'])).toEqual(['r4', 'r6', 'r1', 'r5', 'r2', 'r3']);
      expect(order(['metrics.m DESC'])).toEqual(['r1', 'r6', 'r4', 'r5', 'r2', 'r3']);
      expect(order(['metric.`m` desc'])).toEqual(['r1', 'r6', 'r4', 'r5', 'r2', 'r3']);
    });

    it('puts missing params, tags and end_time last in both directions', () => {
      expect(order(['params.p'])).toEqual(['r6', 'r2', 'r1', 'r4', 'r5', 'r3']);
      expect(order(['params.p DESC'])).toEqual(['r4', 'r1', 'r6', 'r2', 'r5', 'r3']);
      expect(order(['tags.t'])).toEqual(['r3', 'r1', 'r6', 'r5', 'r4', 'r2']);
      expect(order(['tags.t DESC'])).toEqual(['r1', 'r3', 'r6', 'r5', 'r4', 'r2']);
      expect(order(['end_time'])).toEqual(['r5', 'r4', 'r6', 'r3', 'r2', 'r1']);
      expect(order(['attributes.end_time DESC'])).toEqual(['r4', 'r5', 'r6', 'r3', 'r2', 'r1']);
    });

    it('orders by attributes, with start_time or its alias created replacing the default', () => {
      expect(order(['start_time'])).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
      expect(order(['created ASC'])).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
      expect(order(['run_id DESC'])).toEqual(['r6', 'r5', 'r4', 'r3', 'r2', 'r1']);
      expect(order(['attributes.run_name'])).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
      expect(order(['params.p', 'metrics.m DESC'])).toEqual(['r6', 'r2', 'r1', 'r4', 'r5', 'r3']);
      expect(order(['status', 'user_id', 'artifact_uri DESC'])).toEqual([
        'r6',
        'r5',
        'r4',
        'r3',
        'r2',
        'r1',
      ]);
    });

    it.each([
      [['metrics.m', 'metric.m DESC']],
      [['start_time', 'created']],
      [['nope']],
      [['experiment_id']],
      [['datasets.name']],
      [['foo.bar']],
      [['metrics.m sideways']],
      [['metrics.m ASC DESC']],
    ])('rejects %j with 400', (orderBy) => {
      expect(errorOf(() => order(orderBy))?.code).toBe('INVALID_PARAMETER_VALUE');
    });
  });

  describe('paging', () => {
    const fleet = Array.from({ length: 37 }, (_, i) =>
      run({
        id: `run-${String(i).padStart(2, '0')}`,
        start: 1000 + (i % 5),
        metrics: i % 7 === 0 ? {} : { m: i % 4 === 0 ? 'NaN' : (i * 13) % 10 },
      }),
    );

    it('walks a sorted result page by page with MLflow tokens', () => {
      for (const orderBy of [['metrics.m DESC'], ['metrics.m'], []]) {
        const all = searchRuns(fleet, { ...base, orderBy }).runs.map((r) => r.run_id);
        expect(all).toHaveLength(37);
        for (const size of [1, 5, 10, 37, 50]) {
          const seen: string[] = [];
          let token: string | undefined;
          let pages = 0;
          const offsets: [number, number][] = [];
          do {
            const page = searchRuns(fleet, {
              ...base,
              orderBy,
              maxResults: size,
              ...(token === undefined ? {} : { pageToken: token }),
            });
            seen.push(...page.runs.map((r) => r.run_id));
            token = page.nextPageToken;
            pages += 1;
            if (token !== undefined) offsets.push([decodePageToken(token), seen.length]);
          } while (token !== undefined);
          expect(seen).toEqual(all);
          expect(pages).toBe(Math.ceil(37 / size));
          expect(offsets.every(([offset, read]) => offset === read)).toBe(true);
        }
      }
    });

    it('gives no token when the last page is exactly full', () => {
      expect(searchRuns(fleet, { ...base, maxResults: 37 }).nextPageToken).toBeUndefined();
      expect(
        searchRuns(fleet, { ...base, maxResults: 10, pageToken: encodePageToken(30) }).runs,
      ).toHaveLength(7);
    });

    it.each([
      'not base64!',
      Buffer.from('[1]').toString('base64'),
      Buffer.from('{"offset":"x"}').toString('base64'),
      Buffer.from('{"offset":-1}').toString('base64'),
      Buffer.from('nope').toString('base64'),
    ])('rejects the page token %s', (pageToken) => {
      expect(errorOf(() => search({ pageToken }))?.code).toBe('INVALID_PARAMETER_VALUE');
    });
  });

  it.each([0, -1, 50001, 1.5])('rejects max_results %d', (maxResults) => {
    expect(errorOf(() => search({ maxResults }))?.code).toBe('INVALID_PARAMETER_VALUE');
  });

  it('accepts max_results up to 50000', () => {
    expect(search({ maxResults: 50000 }).runs).toHaveLength(3);
  });

  it('rejects experiment ids that are not integers', () => {
    expect(errorOf(() => search({ experimentIds: ['abc'] }))?.message).toBe(
      "Invalid experiment ID 'abc'. Experiment ID must be a valid integer.",
    );
  });

  it('memoises column views per list, and reads a new list afresh', () => {
    const list = [...runs];
    expect(runColumns(list)).toBe(runColumns(list));
    const query = prepareRunSearch({ ...base, filter: 'metrics.acc > 0.6' });
    expect(searchPrepared([list], query).runs.map((r) => r.run_id)).toEqual(['a1']);
    const changed = list.map((r) =>
      r.run_id === 'c3'
        ? { ...r, metrics: [{ key: 'acc', value: 0.95, timestamp: 2, step: 1 }] }
        : r,
    );
    expect(searchPrepared([changed], query).runs.map((r) => r.run_id)).toEqual(['a1', 'c3']);
    expect(searchPrepared([list], query).runs.map((r) => r.run_id)).toEqual(['a1']);
  });

  it('searches several lists (one per experiment) as one result', () => {
    const one = runs.filter((r) => r.experiment_id === '1');
    const two = runs.filter((r) => r.experiment_id === '2');
    const query = prepareRunSearch({
      ...base,
      experimentIds: ['1', '2'],
      orderBy: ['metrics.acc DESC'],
    });
    expect(searchPrepared([one, two], query).runs.map((r) => r.run_id)).toEqual([
      'a1',
      'e5',
      'c3',
      'b2',
    ]);
  });

  it('selects the k smallest like a full sort does', () => {
    let state = 7;
    const next = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (const n of [0, 1, 2, 10, 100, 1000]) {
      const values = Array.from({ length: n }, () => Math.floor(next() * 50));
      const cmp = (i: number, j: number) => values[i]! - values[j]! || i - j;
      const sorted = Array.from({ length: n }, (_, i) => i).sort(cmp);
      for (const k of [1, 3, 10, n]) {
        if (k < 1) continue;
        expect(smallestIndices(n, k, cmp)).toEqual(sorted.slice(0, k));
      }
    }
  });
});
