import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import type { RunningServer } from '@ledgerflow/runtime';
import { startEmbeddedServer } from './commands/server.js';
import { testServerConfig } from './testing/test-config.js';

interface Reply {
  status: number;
  body: Record<string, unknown>;
  text: string;
}

interface RunJson {
  info: { run_id: string; run_name: string };
  data: { metrics?: { key: string; value: number | string }[] };
  inputs: { dataset_inputs?: { tags: unknown[]; dataset: Record<string, unknown> }[] };
}

describe('runs/search and runs/log-inputs over MLflow REST (embedded server)', () => {
  let server: RunningServer;
  let dataDir: string;
  let events: EventStore;
  let experimentId: string;
  const runIds: Record<string, string> = {};

  async function call(route: string, body: unknown): Promise<Reply> {
    const res = await fetch(`${server.url}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown>, text };
  }
  const post = (route: string, body: unknown) => call(`/api/2.0/mlflow/${route}`, body);
  const search = (body: Record<string, unknown>) =>
    post('runs/search', { experiment_ids: [experimentId], ...body });
  const names = (r: Reply) =>
    ((r.body['runs'] as RunJson[] | undefined) ?? []).map((run) => run.info.run_name);

  async function createRun(
    name: string,
    start: number,
    batch: {
      metrics?: [string, number | string][];
      params?: [string, string][];
      tags?: [string, string][];
    },
  ): Promise<void> {
    const created = await post('runs/create', {
      experiment_id: experimentId,
      run_name: name,
      start_time: start,
    });
    const runId = (created.body['run'] as RunJson).info.run_id;
    runIds[name] = runId;
    const reply = await post('runs/log-batch', {
      run_id: runId,
      metrics: (batch.metrics ?? []).map(([key, value]) => ({ key, value, timestamp: 1, step: 0 })),
      params: (batch.params ?? []).map(([key, value]) => ({ key, value })),
      tags: (batch.tags ?? []).map(([key, value]) => ({ key, value })),
    });
    expect(reply.status).toBe(200);
  }

  const dataset = (name: string, digest: string) => ({
    name,
    digest,
    source_type: 'local',
    source: JSON.stringify({ uri: `/data/${name}.csv` }),
    schema: '{"mlflow_colspec": []}',
  });

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-run-search-'));
    server = await startEmbeddedServer(testServerConfig(dataDir));
    events = server.app.get<EventStore>(EVENT_STORE);
    experimentId = (await post('experiments/create', { name: 'search-e2e' })).body[
      'experiment_id'
    ] as string;
    await createRun('alpha', 1000, {
      metrics: [
        ['acc', 0.9],
        ['loss', 0.2],
      ],
      params: [['model', 'lr']],
      tags: [['team', 'risk']],
    });
    await createRun('beta', 2000, {
      metrics: [
        ['acc', 'NaN'],
        ['loss', 0.5],
      ],
      params: [['model', 'rf']],
      tags: [['team', 'growth']],
    });
    await createRun('gamma', 3000, { metrics: [['acc', 0.5]], params: [['model', 'RF']] });
    await createRun('delta', 4000, {});
    await post('runs/update', { run_id: runIds['gamma'], status: 'FINISHED', end_time: 3500 });
    const logged = await post('runs/log-inputs', {
      run_id: runIds['alpha'],
      datasets: [
        {
          tags: [{ key: 'mlflow.data.context', value: 'training' }],
          dataset: dataset('iris', 'd1'),
        },
      ],
    });
    expect(logged.status).toBe(200);
    expect(logged.text).toBe('{}');
  });

  afterAll(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('lists active runs newest first by default, with inputs and outputs', async () => {
    const r = await search({});
    expect(r.status).toBe(200);
    expect(names(r)).toEqual(['delta', 'gamma', 'beta', 'alpha']);
    const alpha = (r.body['runs'] as RunJson[])[3]!;
    expect(alpha.inputs.dataset_inputs?.[0]?.dataset).toMatchObject({ name: 'iris', digest: 'd1' });
    const beta = (r.body['runs'] as RunJson[])[2]!;
    expect(beta.data.metrics).toContainEqual(expect.objectContaining({ key: 'acc', value: 'NaN' }));
  });

  it.each([
    ['metrics.acc > 0.6', ['alpha']],
    ['metrics.acc != 0.9', ['gamma', 'beta']],
    ['metrics.loss <= 0.5 and metrics.acc >= 0', ['alpha']],
    ["params.model = 'rf'", ['beta']],
    ["params.model ILIKE 'rf'", ['gamma', 'beta']],
    ['params.model IS NULL', ['delta']],
    ["tags.team LIKE 'gr%'", ['beta']],
    ["attributes.run_name = 'gamma'", ['gamma']],
    ["`Run name` LIKE '%a'", ['delta', 'gamma', 'beta', 'alpha']],
    ["attributes.status = 'FINISHED'", ['gamma']],
    ['end_time > 0', ['gamma']],
    ['created >= 3000', ['delta', 'gamma']],
    ["datasets.name = 'iris'", ['alpha']],
    ["datasets.context IN ('training', 'eval')", ['alpha']],
    ["datasets.digest NOT IN ('d1')", []],
  ])('filters %s', async (filter, expected) => {
    expect(names(await search({ filter }))).toEqual(expected);
  });

  it('filters on run_id IN lists and serves the ajax-api mirror', async () => {
    const r = await call('/ajax-api/2.0/mlflow/runs/search', {
      experiment_ids: [experimentId],
      filter: `attributes.run_id IN ('${runIds['alpha']}', '${runIds['delta']}')`,
    });
    expect(r.status).toBe(200);
    expect(names(r)).toEqual(['delta', 'alpha']);
  });

  it('orders by a metric with NaN and missing values last in both directions', async () => {
    expect(names(await search({ order_by: ['metrics.acc'] }))).toEqual([
      'gamma',
      'alpha',
      'beta',
      'delta',
    ]);
    expect(names(await search({ order_by: ['metrics.acc DESC'] }))).toEqual([
      'alpha',
      'gamma',
      'beta',
      'delta',
    ]);
    expect(names(await search({ order_by: ['params.model DESC', 'start_time ASC'] }))).toEqual([
      'beta',
      'alpha',
      'gamma',
      'delta',
    ]);
  });

  it('pages through a sorted result with next_page_token', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await search({
        order_by: ['metrics.acc DESC'],
        max_results: 3,
        ...(token === undefined ? {} : { page_token: token }),
      });
      expect(r.status).toBe(200);
      seen.push(...names(r));
      token = r.body['next_page_token'] as string | undefined;
      pages += 1;
    } while (token !== undefined);
    expect(pages).toBe(2);
    expect(seen).toEqual(['alpha', 'gamma', 'beta', 'delta']);
  });

  it('answers {} when nothing matches, and sees deleted runs only when asked', async () => {
    const none = await search({ filter: "params.model = 'none'" });
    expect(none.status).toBe(200);
    expect(none.text).toBe('{}');
    expect((await post('runs/search', {})).text).toBe('{}');
    await post('runs/delete', { run_id: runIds['delta'] });
    expect(names(await search({}))).toEqual(['gamma', 'beta', 'alpha']);
    expect(names(await search({ run_view_type: 'DELETED_ONLY' }))).toEqual(['delta']);
    expect(names(await search({ run_view_type: 3 }))).toHaveLength(4);
    await post('runs/restore', { run_id: runIds['delta'] });
  });

  it.each([
    ["metrics.acc > 1 OR params.model = 'x'"],
    ['(metrics.acc > 1)'],
    ['NOT metrics.acc > 1'],
    ["foo = 'x'"],
    ['status = RUNNING'],
    ["metrics.acc > 'x'"],
    ['params.model > 1'],
    ["status IN ('RUNNING')"],
    ["datasets.size = 'x'"],
    ["unknown.key = 'x'"],
  ])('rejects the filter %s with 400 INVALID_PARAMETER_VALUE', async (filter) => {
    const r = await search({ filter });
    expect(r.status).toBe(400);
    expect(r.body['error_code']).toBe('INVALID_PARAMETER_VALUE');
  });

  it.each([
    ['a bad page token', { page_token: 'not-a-token' }],
    ['a token without offset', { page_token: Buffer.from('{"x":1}').toString('base64') }],
    ['max_results 0', { max_results: 0 }],
    ['negative max_results', { max_results: -5 }],
    ['max_results over 50000', { max_results: 50001 }],
    ['max_results that is not a number', { max_results: 'many' }],
    ['a duplicate order_by key', { order_by: ['metrics.acc', 'metric.acc DESC'] }],
    ['an unknown order_by attribute', { order_by: ['experiment_id'] }],
    ['an unknown view type', { run_view_type: 'SOME' }],
    ['an experiment id that is not a number', { experiment_ids: ['abc'] }],
    ['experiment_ids that is not a list', { experiment_ids: { a: 1 } }],
  ])('rejects %s with 400 INVALID_PARAMETER_VALUE', async (_what, body) => {
    const r = await search(body);
    expect(r.status).toBe(400);
    expect(r.body['error_code']).toBe('INVALID_PARAMETER_VALUE');
  });

  it('accepts max_results 50000', async () => {
    expect((await search({ max_results: 50000 })).status).toBe(200);
  });

  it('logs a dataset once per (name, digest), first tags kept, and shows it on get', async () => {
    const runId = runIds['beta']!;
    const input = (context: string, digest = 'd9') => ({
      tags: [{ key: 'mlflow.data.context', value: context }],
      dataset: dataset('wine', digest),
    });
    expect(
      (await post('runs/log-inputs', { run_id: runId, datasets: [input('eval'), input('test')] }))
        .status,
    ).toBe(200);
    await post('runs/log-inputs', { run_id: runId, datasets: [input('train'), input('x', 'd8')] });
    const got = await fetch(`${server.url}/api/2.0/mlflow/runs/get?run_id=${runId}`);
    const run = ((await got.json()) as { run: RunJson }).run;
    expect(run.inputs.dataset_inputs).toEqual([
      {
        tags: [{ key: 'mlflow.data.context', value: 'eval' }],
        dataset: dataset('wine', 'd9'),
      },
      { tags: [{ key: 'mlflow.data.context', value: 'x' }], dataset: dataset('wine', 'd8') },
    ]);
    expect(names(await search({ filter: "datasets.context = 'eval'" }))).toEqual(['beta']);
  });

  it('refuses bad log-inputs with a 4xx and stores nothing', async () => {
    const before = await events.headPosition();
    const runId = runIds['gamma']!;
    const cases: [unknown, number, string][] = [
      [{ datasets: [] }, 400, 'INVALID_PARAMETER_VALUE'],
      [
        { run_id: runId, datasets: [{ tags: [], dataset: dataset('x'.repeat(501), 'd') }] },
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        { run_id: runId, datasets: [{ tags: [], dataset: dataset('n', 'd'.repeat(37)) }] },
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        {
          run_id: runId,
          datasets: [{ tags: [{ key: 'k', value: 'v'.repeat(501) }], dataset: dataset('n', 'd') }],
        },
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        { run_id: runId, datasets: [{ tags: [], dataset: { name: 'n', digest: 'd' } }] },
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [{ run_id: runId, datasets: 'x' }, 400, 'INVALID_PARAMETER_VALUE'],
      [
        { run_id: 'f'.repeat(32), datasets: [{ tags: [], dataset: dataset('n', 'd') }] },
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
    ];
    for (const [body, status, code] of cases) {
      const r = await post('runs/log-inputs', body);
      expect([r.status, r.body['error_code']]).toEqual([status, code]);
    }
    expect(await events.headPosition()).toBe(before);
  });

  it('refuses log-inputs on a deleted run', async () => {
    const created = await post('runs/create', { experiment_id: experimentId, start_time: 1 });
    const runId = (created.body['run'] as RunJson).info.run_id;
    await post('runs/delete', { run_id: runId });
    const r = await post('runs/log-inputs', {
      run_id: runId,
      datasets: [{ tags: [], dataset: dataset('n', 'd') }],
    });
    expect(r.status).toBe(400);
    expect(r.body['message']).toMatch(/must be in the 'active' state/);
  });
});
