import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import { PROJECTION_RUNNER } from '@ledgerflow/runtime';
import { SqliteReadModelStore, type ProjectionRunner } from '@ledgerflow/projections';
import { trackingProjection } from '@ledgerflow/service-tracking';
import type { RunningServer } from '@ledgerflow/runtime';
import { startEmbeddedServer } from './commands/server.js';
import { testServerConfig } from './testing/test-config.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');

interface Reply {
  status: number;
  body: Record<string, unknown>;
  text: string;
  headers: Headers;
}

describe('tracking over MLflow REST (embedded server)', () => {
  let server: RunningServer;
  let dataDir: string;
  let events: EventStore;

  async function call(
    method: string,
    route: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Reply> {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${server.url}${route}`, init);
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // plain-text answers (/health, /version)
    }
    return { status: res.status, body: parsed, text, headers: res.headers };
  }
  const post = (route: string, body?: unknown, headers?: Record<string, string>) =>
    call('POST', `/api/2.0/mlflow/${route}`, body ?? {}, headers);
  const get = (route: string) => call('GET', `/api/2.0/mlflow/${route}`);

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-e2e-'));
    server = await startEmbeddedServer(testServerConfig(dataDir));
    events = server.app.get<EventStore>(EVENT_STORE);
  });

  afterAll(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves /health, /version and the Default experiment from the start', async () => {
    expect((await call('GET', '/health')).text).toBe('OK');
    expect((await call('GET', '/version')).text).toMatch(/^\d+\.\d+\.\d+/);
    const r = await get('experiments/get?experiment_id=0');
    expect(r.body['experiment']).toMatchObject({
      experiment_id: '0',
      name: 'Default',
      lifecycle_stage: 'active',
    });
  });

  it('mirrors every route under /ajax-api/2.0', async () => {
    const created = await call('POST', '/ajax-api/2.0/mlflow/experiments/create', {
      name: 'ajax-mirror',
    });
    expect(created.status).toBe(200);
    const id = created.body['experiment_id'] as string;
    const fetched = await call('GET', `/ajax-api/2.0/mlflow/experiments/get?experiment_id=${id}`);
    expect(fetched.body['experiment']).toMatchObject({
      name: 'ajax-mirror',
      artifact_location: `mlflow-artifacts:/${id}`,
    });
  });

  it('answers an empty search with {} and unknown routes with a JSON 404', async () => {
    const empty = await post('experiments/search', {
      filter: "name = 'no-such-experiment'",
      max_results: 10,
    });
    expect(empty.status).toBe(200);
    expect(empty.text).toBe('{}');
    const missing = await call('GET', '/api/2.0/mlflow/no-such-route');
    expect(missing.status).toBe(404);
    expect(missing.body['error_code']).toBe('ENDPOINT_NOT_FOUND');
  });

  it('takes GET parameters from the query string, and numbers for experiment_id', async () => {
    const r = await post('experiments/create', { name: 'by-query' });
    const id = r.body['experiment_id'] as string;
    expect(
      (await get(`experiments/get-by-name?experiment_name=by-query`)).body['experiment'],
    ).toMatchObject({ experiment_id: id });
    expect(
      (
        await post('experiments/set-experiment-tag', {
          experiment_id: Number(id),
          key: 'k',
          value: 'v',
        })
      ).status,
    ).toBe(200);
    const s = await call(
      'GET',
      '/api/2.0/mlflow/experiments/search?filter=tags.k%20%3D%20%27v%27&max_results=5',
    );
    expect((s.body['experiments'] as unknown[]).length).toBe(1);
  });

  describe("bad input gets MLflow's error shape, a 4xx, and changes nothing", () => {
    let runId: string;
    let deletedRunId: string;
    let experimentId: string;
    let deletedExperimentId: string;

    beforeAll(async () => {
      experimentId = (await post('experiments/create', { name: 'bad-input-target' })).body[
        'experiment_id'
      ] as string;
      const run = await post('runs/create', { experiment_id: experimentId, start_time: 1 });
      runId = (run.body['run'] as { info: { run_id: string } }).info.run_id;
      await post('runs/log-parameter', { run_id: runId, key: 'lr', value: '0.1' });
      const deleted = await post('runs/create', { experiment_id: experimentId });
      deletedRunId = (deleted.body['run'] as { info: { run_id: string } }).info.run_id;
      await post('runs/delete', { run_id: deletedRunId });
      deletedExperimentId = (await post('experiments/create', { name: 'to-delete-then-rename' }))
        .body['experiment_id'] as string;
      await post('experiments/delete', { experiment_id: deletedExperimentId });
    });

    const cases: [string, () => Promise<Reply>, number, string][] = [
      [
        'an empty experiment name',
        () => post('experiments/create', { name: '' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a missing experiment name',
        () => post('experiments/create', {}),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a non-string experiment name',
        () => post('experiments/create', { name: 42 }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'an over-long experiment name',
        () => post('experiments/create', { name: 'n'.repeat(501) }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a duplicate experiment name',
        () => post('experiments/create', { name: 'bad-input-target' }),
        400,
        'RESOURCE_ALREADY_EXISTS',
      ],
      [
        'a fragment in artifact_location',
        () =>
          post('experiments/create', {
            name: 'frag',
            artifact_location: 'http:///#/../../../etc/',
          }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'an over-long experiment tag value',
        () =>
          post('experiments/set-experiment-tag', {
            experiment_id: experimentId,
            key: 'k',
            value: 'v'.repeat(20001),
          }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'an invalid tag key',
        () => post('runs/set-tag', { run_id: runId, key: '../escape', value: 'v' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'an over-long param key',
        () => post('runs/log-parameter', { run_id: runId, key: 'k'.repeat(251), value: 'v' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'an unknown experiment id',
        () => get('experiments/get?experiment_id=987654'),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'an unknown experiment name',
        () => get('experiments/get-by-name?experiment_name=nope'),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'a malformed experiment id',
        () => get('experiments/get?experiment_id=..%2F..'),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'an unknown run id',
        () => get('runs/get?run_id=0123456789abcdef0123456789abcdef'),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      ['a malformed run id', () => get('runs/get?run_id=-bad'), 400, 'INVALID_PARAMETER_VALUE'],
      [
        'a run in an unknown experiment',
        () => post('runs/create', { experiment_id: '987654' }),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'malformed JSON',
        () => post('experiments/create', '{"name": "x",'),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a JSON array body',
        () => post('experiments/create', '[1,2]'),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a text/plain content type',
        () => post('experiments/create', '{"name":"csrf"}', { 'content-type': 'text/plain' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a form content type',
        () =>
          post('experiments/create', 'name=form', {
            'content-type': 'application/x-www-form-urlencoded',
          }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a changed param value',
        () => post('runs/log-parameter', { run_id: runId, key: 'lr', value: '0.2' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a param on a deleted run',
        () => post('runs/log-parameter', { run_id: deletedRunId, key: 'x', value: '1' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a tag on a deleted run',
        () => post('runs/set-tag', { run_id: deletedRunId, key: 'x', value: '1' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'an update of a deleted run',
        () => post('runs/update', { run_id: deletedRunId, status: 'FINISHED' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'an unknown run status',
        () => post('runs/update', { run_id: runId, status: 'EXPLODED' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a bad end_time type',
        () => post('runs/update', { run_id: runId, end_time: 'yesterday' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'conflicting run_name and mlflow.runName',
        () =>
          post('runs/create', {
            experiment_id: experimentId,
            run_name: 'a',
            tags: [{ key: 'mlflow.runName', value: 'b' }],
          }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'deleting a missing run tag',
        () => post('runs/delete-tag', { run_id: runId, key: 'never-set' }),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'an OR filter',
        () => post('experiments/search', { filter: "name = 'a' OR name = 'b'" }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a bad page token',
        () => post('experiments/search', { page_token: 'garbage!!' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a bad max_results',
        () => post('experiments/search', { max_results: 0 }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'a bad boolean-free view_type',
        () => post('experiments/search', { view_type: 'SOMETIMES' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'renaming a deleted experiment',
        () =>
          post('experiments/update', { experiment_id: deletedExperimentId, new_name: 'renamed' }),
        400,
        'INVALID_STATE',
      ],
    ];

    it.each(cases)('%s', async (_name, send, status, code) => {
      const before = await events.headPosition();
      const reply = await send();
      expect(reply.status).toBe(status);
      expect(reply.body['error_code']).toBe(code);
      expect(typeof reply.body['message']).toBe('string');
      expect(reply.headers.get('content-type')).toMatch(/application\/json/);
      expect(await events.headPosition()).toBe(before);
    });

    it('leaves the run exactly as it was', async () => {
      const run = (await get(`runs/get?run_id=${runId}`)).body['run'] as {
        data: { params: unknown[]; tags: { key: string }[] };
      };
      expect(run.data.params).toEqual([{ key: 'lr', value: '0.1' }]);
      expect(run.data.tags.map((t) => t.key)).not.toContain('../escape');
    });
  });

  it('rebuilding every read model from the log gives the live content hash', async () => {
    // a scripted workload touching every event type
    const e1 = (
      await post('experiments/create', { name: 'wl-1', tags: [{ key: 'a', value: '1' }] })
    ).body['experiment_id'] as string;
    const e2 = (await post('experiments/create', { name: 'wl-2' })).body['experiment_id'] as string;
    await post('experiments/update', { experiment_id: e2, new_name: 'wl-2-renamed' });
    await post('experiments/set-experiment-tag', { experiment_id: e1, key: 'b', value: '2' });
    await post('experiments/delete-experiment-tag', { experiment_id: e1, key: 'a' });
    const runIds: string[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await post('runs/create', {
        experiment_id: i % 2 ? e1 : e2,
        run_name: `run-${i}`,
        start_time: 1000 + i,
        tags: [{ key: 'i', value: String(i) }],
      });
      const id = (r.body['run'] as { info: { run_id: string } }).info.run_id;
      runIds.push(id);
      await post('runs/log-parameter', { run_id: id, key: 'p', value: String(i) });
      await post('runs/set-tag', { run_id: id, key: 'mlflow.runName', value: `renamed-${i}` });
      if (i % 3 === 0)
        await post('runs/update', { run_id: id, status: 'FINISHED', end_time: 2000 + i });
      if (i % 4 === 0) await post('runs/delete', { run_id: id });
      if (i % 8 === 0) await post('runs/restore', { run_id: id });
      if (i % 5 === 0) await post('runs/delete-tag', { run_id: id, key: 'i' });
    }
    await post('experiments/delete', { experiment_id: e1 });
    await post('experiments/restore', { experiment_id: e1 });
    await post('experiments/delete', { experiment_id: e2 });

    const runner = server.app.get<ProjectionRunner>(PROJECTION_RUNNER);
    await runner.waitFor(await events.headPosition());
    const live = new SqliteReadModelStore({ path: path.join(dataDir, 'read-models.db') });
    const liveHash = await live.contentHash(trackingProjection);
    await live.close();
    await server.close();

    execFileSync(process.execPath, [path.join(repoRoot, 'tools/build.mjs'), '--quiet'], {
      cwd: repoRoot,
    });
    const out = execFileSync(
      process.execPath,
      [path.join(repoRoot, 'bin/ledgerflow.js'), 'rebuild', '--data-dir', dataDir],
      {
        cwd: repoRoot,
        encoding: 'utf8',
      },
    );
    expect(out).toContain(`rebuilt tracking:`);
    expect(out).toContain(`content hash ${liveHash}`);

    // and the chain of everything written above verifies
    const verify = execFileSync(
      process.execPath,
      [path.join(repoRoot, 'bin/ledgerflow.js'), 'audit', 'verify', '--data-dir', dataDir],
      {
        cwd: repoRoot,
        encoding: 'utf8',
      },
    );
    expect(verify).toMatch(/OK/);
    server = await startEmbeddedServer(testServerConfig(dataDir));
    events = server.app.get<EventStore>(EVENT_STORE);
  });
});
