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

type Json = Record<string, unknown>;

const UNKNOWN_MODEL = 'm-0123456789abcdef0123456789abcdef';

describe('logged models, runs/outputs and runs/log-model over MLflow REST (embedded server)', () => {
  let server: RunningServer;
  let dataDir: string;
  let events: EventStore;

  async function call(method: string, route: string, body?: unknown): Promise<Reply> {
    const init: RequestInit = { method, headers: {} };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    const res = await fetch(`${server.url}${route}`, init);
    const text = await res.text();
    let parsed: Json = {};
    try {
      parsed = JSON.parse(text) as Json;
    } catch {
      // not JSON: left empty, the test looks at status and text
    }
    return { status: res.status, body: parsed, text };
  }
  const api = (method: string, route: string, body?: unknown) =>
    call(method, `/api/2.0/mlflow/${route}`, body);
  const post = (route: string, body: unknown = {}) => api('POST', route, body);
  const get = (route: string) => api('GET', route);

  async function experiment(name: string): Promise<string> {
    const r = await post('experiments/create', { name });
    expect(r.status).toBe(200);
    return r.body['experiment_id'] as string;
  }
  async function run(experimentId: string): Promise<string> {
    const r = await post('runs/create', { experiment_id: experimentId });
    expect(r.status).toBe(200);
    return ((r.body['run'] as Json)['info'] as Json)['run_id'] as string;
  }
  async function model(body: Json): Promise<Json> {
    const r = await post('logged-models', body);
    expect(r.status).toBe(200);
    return r.body['model'] as Json;
  }
  const info = (m: Json) => m['info'] as Json;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-lm-e2e-'));
    server = await startEmbeddedServer(testServerConfig(dataDir));
    events = server.app.get<EventStore>(EVENT_STORE);
  });

  afterAll(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('creates a PENDING model with an m- id under the experiment, and gets it back', async () => {
    const exp = await experiment('lm-create');
    const runId = await run(exp);
    const created = await model({
      experiment_id: exp,
      name: 'classifier',
      model_type: 'sklearn',
      source_run_id: runId,
      params: [{ key: 'lr', value: '0.1' }],
      tags: [{ key: 'team', value: 'fraud' }],
    });
    const id = info(created)['model_id'] as string;
    expect(id).toMatch(/^m-[0-9a-f]{32}$/);
    expect(info(created)).toMatchObject({
      experiment_id: exp,
      name: 'classifier',
      model_type: 'sklearn',
      source_run_id: runId,
      status: 'LOGGED_MODEL_PENDING',
      artifact_uri: `mlflow-artifacts:/${exp}/models/${id}/artifacts`,
      tags: [{ key: 'team', value: 'fraud' }],
    });
    expect(info(created)['creation_timestamp_ms']).toBe(info(created)['last_updated_timestamp_ms']);
    expect(created['data']).toEqual({ params: [{ key: 'lr', value: '0.1' }] });
    const fetched = await get(`logged-models/${id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body['model']).toEqual(created);
    const ajax = await call('GET', `/ajax-api/2.0/mlflow/logged-models/${id}`);
    expect(ajax.body['model']).toEqual(created);

    const unnamed = await model({ experiment_id: exp });
    expect(info(unnamed)['name']).toMatch(/^[a-z]+-[a-z]+-\d+$/);
  });

  it('finalizes, tags, logs params and deletes', async () => {
    const exp = await experiment('lm-lifecycle');
    const id = info(await model({ experiment_id: exp, name: 'm' }))['model_id'] as string;

    const ready = await api('PATCH', `logged-models/${id}`, {
      model_id: id,
      status: 'LOGGED_MODEL_READY',
    });
    expect(ready.status).toBe(200);
    expect(info(ready.body['model'] as Json)['status']).toBe('LOGGED_MODEL_READY');
    const failed = await api('PATCH', `logged-models/${id}`, { status: 3 });
    expect(info(failed.body['model'] as Json)['status']).toBe('LOGGED_MODEL_UPLOAD_FAILED');

    expect(
      (
        await api('PATCH', `logged-models/${id}/tags`, {
          tags: [
            { key: 'a', value: '1' },
            { key: 'b', value: '2' },
          ],
        })
      ).status,
    ).toBe(200);
    expect((await api('DELETE', `logged-models/${id}/tags/a`)).status).toBe(200);
    expect(
      (await post(`logged-models/${id}/params`, { params: [{ key: 'k', value: 'v' }] })).status,
    ).toBe(200);
    const after = (await get(`logged-models/${id}`)).body['model'] as Json;
    expect(info(after)['tags']).toEqual([{ key: 'b', value: '2' }]);
    expect(after['data']).toEqual({ params: [{ key: 'k', value: 'v' }] });

    expect((await api('DELETE', `logged-models/${id}`, { model_id: id })).status).toBe(200);
    const gone = await get(`logged-models/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body['error_code']).toBe('RESOURCE_DOES_NOT_EXIST');
    const withDeleted = await get(`logged-models/${id}?allow_deleted=true`);
    expect(withDeleted.status).toBe(200);
  });

  it('searches by experiment, filter and order, with pages', async () => {
    const exp = await experiment('lm-search');
    const other = await experiment('lm-search-other');
    const a = info(
      await model({ experiment_id: exp, name: 'alpha', params: [{ key: 'lr', value: '0.1' }] }),
    );
    const b = info(
      await model({ experiment_id: exp, name: 'beta', tags: [{ key: 'stage', value: 'dev' }] }),
    );
    await model({ experiment_id: other, name: 'gamma' });
    await api('PATCH', `logged-models/${a['model_id'] as string}`, {
      status: 'LOGGED_MODEL_READY',
    });

    const names = async (body: Json): Promise<string[]> => {
      const r = await post('logged-models/search', body);
      expect(r.status).toBe(200);
      return ((r.body['models'] as Json[] | undefined) ?? []).map((m) => info(m)['name'] as string);
    };
    expect(await names({ experiment_ids: [exp] })).toEqual(['beta', 'alpha']);
    expect(
      await names({ experiment_ids: [exp, other], order_by: [{ field_name: 'name' }] }),
    ).toEqual(['alpha', 'beta', 'gamma']);
    expect(await names({ experiment_ids: [exp], filter: "status = 'READY'" })).toEqual(['alpha']);
    expect(await names({ experiment_ids: [exp], filter: "params.lr = '0.1'" })).toEqual(['alpha']);
    expect(await names({ experiment_ids: [exp], filter: "tags.stage LIKE 'd%'" })).toEqual([
      'beta',
    ]);
    expect(
      await names({ experiment_ids: [exp], filter: `source_run_id = 'none' AND name = 'beta'` }),
    ).toEqual([]);

    const first = await post('logged-models/search', { experiment_ids: [exp], max_results: 1 });
    expect((first.body['models'] as Json[]).map((m) => info(m)['model_id'])).toEqual([
      b['model_id'],
    ]);
    const token = first.body['next_page_token'] as string;
    const second = await post('logged-models/search', {
      experiment_ids: [exp],
      max_results: 1,
      page_token: token,
    });
    expect((second.body['models'] as Json[]).map((m) => info(m)['model_id'])).toEqual([
      a['model_id'],
    ]);
    expect(second.body['next_page_token']).toBeUndefined();

    const empty = await post('logged-models/search', {
      experiment_ids: [exp],
      filter: "name = 'zzz'",
    });
    expect(empty.text).toBe('{}');
  });

  it('links output models to a run (runs/outputs), shown in the run', async () => {
    const exp = await experiment('lm-outputs');
    const runId = await run(exp);
    const id = info(await model({ experiment_id: exp, source_run_id: runId }))[
      'model_id'
    ] as string;
    const r = await post('runs/outputs', { run_id: runId, models: [{ model_id: id, step: 2 }] });
    expect(r.status).toBe(200);
    expect(r.text).toBe('{}');
    const fetched = await get(`runs/get?run_id=${runId}`);
    expect((fetched.body['run'] as Json)['outputs']).toEqual({
      model_outputs: [{ model_id: id, step: 2 }],
    });
  });

  it('appends 2.x runs/log-model calls to the mlflow.log-model.history tag', async () => {
    const exp = await experiment('lm-log-model');
    const runId = await run(exp);
    const mlmodel = {
      run_id: runId,
      artifact_path: 'model',
      utc_time_created: '2026-03-03 09:00:00.000000',
      flavors: { python_function: { loader_module: 'mlflow.sklearn', config: { x: 1 } } },
      signature: { inputs: '[]' },
    };
    for (const artifactPath of ['model', 'model2']) {
      const r = await post('runs/log-model', {
        run_id: runId,
        model_json: JSON.stringify({ ...mlmodel, artifact_path: artifactPath }),
      });
      expect(r.status).toBe(200);
    }
    const tags = (((await get(`runs/get?run_id=${runId}`)).body['run'] as Json)['data'] as Json)[
      'tags'
    ] as { key: string; value: string }[];
    const history = JSON.parse(
      tags.find((t) => t.key === 'mlflow.log-model.history')?.value ?? '[]',
    ) as Json[];
    expect(history).toEqual([
      {
        run_id: runId,
        artifact_path: 'model',
        utc_time_created: '2026-03-03 09:00:00.000000',
        model_uuid: null,
        flavors: { python_function: { loader_module: 'mlflow.sklearn' } },
      },
      expect.objectContaining({ artifact_path: 'model2' }),
    ]);
  });

  it('shows metrics logged with a model_id in the model, and filters and orders by them', async () => {
    const exp = await experiment('lm-metrics');
    const runId = await run(exp);
    const a = info(await model({ experiment_id: exp, name: 'a', source_run_id: runId }));
    const b = info(await model({ experiment_id: exp, name: 'b', source_run_id: runId }));
    const batch = await post('runs/log-batch', {
      run_id: runId,
      metrics: [
        {
          key: 'acc',
          value: 0.7,
          timestamp: 10,
          step: 0,
          model_id: a['model_id'],
          dataset_name: 'test',
          dataset_digest: 'd1',
        },
        { key: 'acc', value: 0.9, timestamp: 11, step: 1, model_id: a['model_id'] },
        { key: 'acc', value: 0.8, timestamp: 10, step: 0, model_id: b['model_id'] },
        { key: 'loss', value: 'NaN', timestamp: 10, step: 0, model_id: b['model_id'] },
        { key: 'acc', value: 0.1, timestamp: 10, step: 0 },
      ],
    });
    expect(batch.status).toBe(200);
    await post('runs/log-metric', {
      run_id: runId,
      key: 'acc',
      value: 0.95,
      timestamp: 12,
      step: 2,
      model_id: a['model_id'],
    });
    const fetched = (await get(`logged-models/${a['model_id'] as string}`)).body['model'] as Json;
    expect((fetched['data'] as Json)['metrics']).toEqual([
      {
        key: 'acc',
        value: 0.7,
        timestamp: 10,
        step: 0,
        dataset_name: 'test',
        dataset_digest: 'd1',
        model_id: a['model_id'],
        run_id: runId,
      },
      { key: 'acc', value: 0.9, timestamp: 11, step: 1, model_id: a['model_id'], run_id: runId },
      { key: 'acc', value: 0.95, timestamp: 12, step: 2, model_id: a['model_id'], run_id: runId },
    ]);
    const bData = ((await get(`logged-models/${b['model_id'] as string}`)).body['model'] as Json)[
      'data'
    ] as Json;
    expect(bData['metrics']).toContainEqual({
      key: 'loss',
      value: 'NaN',
      timestamp: 10,
      step: 0,
      model_id: b['model_id'],
      run_id: runId,
    });

    const names = async (body: Json): Promise<string[]> =>
      (
        ((await post('logged-models/search', { experiment_ids: [exp], ...body })).body['models'] as
          Json[] | undefined) ?? []
      ).map((m) => info(m)['name'] as string);
    expect(await names({ filter: 'metrics.acc >= 0.9' })).toEqual(['a']);
    expect(
      await names({ filter: 'metrics.acc < 0.75', datasets: [{ dataset_name: 'test' }] }),
    ).toEqual(['a']);
    expect(await names({ order_by: [{ field_name: 'metrics.acc', ascending: true }] })).toEqual([
      'b',
      'a',
    ]);
  });

  it('answers 501 for logged-model artifact listing until artifact storage exists', async () => {
    const exp = await experiment('lm-artifacts');
    const id = info(await model({ experiment_id: exp }))['model_id'] as string;
    const r = await get(`logged-models/${id}/artifacts/directories`);
    expect(r.status).toBe(501);
    expect(r.body['error_code']).toBe('NOT_IMPLEMENTED');
  });

  describe('refuses bad input with a 4xx and an MLflow code, and stores nothing', () => {
    let exp = '';
    let deletedExp = '';
    let runId = '';
    let modelId = '';
    beforeAll(async () => {
      exp = await experiment('lm-bad-input');
      deletedExp = await experiment('lm-bad-input-deleted');
      await post('experiments/delete', { experiment_id: deletedExp });
      runId = await run(exp);
      modelId = info(await model({ experiment_id: exp, tags: [{ key: 't', value: 'v' }] }))[
        'model_id'
      ] as string;
    });

    const cases: [string, () => Promise<Reply>, number, string][] = [
      [
        'a create without experiment_id',
        () => post('logged-models', { name: 'x' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a create in an unknown experiment',
        () => post('logged-models', { experiment_id: '987654' }),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'a create in a deleted experiment',
        () => post('logged-models', { experiment_id: deletedExp }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a create with a name holding a dot',
        () => post('logged-models', { experiment_id: exp, name: 'a.b' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a create with a tag without key',
        () => post('logged-models', { experiment_id: exp, tags: [{ value: 'v' }] }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a get of an unknown model',
        () => get(`logged-models/${UNKNOWN_MODEL}`),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'a finalize of an unknown model',
        () => api('PATCH', `logged-models/${UNKNOWN_MODEL}`, { status: 'LOGGED_MODEL_READY' }),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'a finalize with an unknown status',
        () => api('PATCH', `logged-models/${modelId}`, { status: 'DONE' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a finalize back to PENDING',
        () => api('PATCH', `logged-models/${modelId}`, { status: 'LOGGED_MODEL_PENDING' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a finalize without status',
        () => api('PATCH', `logged-models/${modelId}`, {}),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a delete of an unknown model',
        () => api('DELETE', `logged-models/${UNKNOWN_MODEL}`),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'tags on an unknown model',
        () =>
          api('PATCH', `logged-models/${UNKNOWN_MODEL}/tags`, { tags: [{ key: 'k', value: 'v' }] }),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'deleting an absent tag',
        () => api('DELETE', `logged-models/${modelId}/tags/nope`),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'params on an unknown model',
        () => post(`logged-models/${UNKNOWN_MODEL}/params`, { params: [{ key: 'k', value: 'v' }] }),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'a search without experiment_ids',
        () => post('logged-models/search', {}),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a search with an OR filter',
        () =>
          post('logged-models/search', {
            experiment_ids: [exp],
            filter: "name = 'a' OR name = 'b'",
          }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a search ordered by a param',
        () =>
          post('logged-models/search', {
            experiment_ids: [exp],
            order_by: [{ field_name: 'params.lr' }],
          }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a search with a foreign page token',
        () => post('logged-models/search', { experiment_ids: [exp], page_token: 'bm9wZQ==' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'runs/outputs without models',
        () => post('runs/outputs', { run_id: runId }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'runs/outputs for an unknown run',
        () =>
          post('runs/outputs', {
            run_id: '0123456789abcdef0123456789abcdef',
            models: [{ model_id: modelId, step: 0 }],
          }),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'runs/log-model with malformed JSON',
        () => post('runs/log-model', { run_id: runId, model_json: '{nope' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'runs/log-model with a JSON list',
        () => post('runs/log-model', { run_id: runId, model_json: '[]' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'runs/log-model missing fields',
        () => post('runs/log-model', { run_id: runId, model_json: '{"run_id": "x"}' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'runs/log-model without model_json',
        () => post('runs/log-model', { run_id: runId }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
    ];

    it.each(cases)('%s', async (_name, request, status, code) => {
      const before = await events.headPosition();
      const reply = await request();
      expect(reply.status).toBe(status);
      expect(reply.body['error_code']).toBe(code);
      expect(await events.headPosition()).toBe(before);
    });
  });
});
