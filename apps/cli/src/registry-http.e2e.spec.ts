import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  isRegistryEvent,
  registryPlacements,
  registryStateFold,
  type RegistryPlacementSnapshot,
} from '@ledgerflow/domain-registry';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import { SqliteReadModelStore, type ProjectionRunner } from '@ledgerflow/projections';
import { PROJECTION_RUNNER, type RunningServer } from '@ledgerflow/runtime';
import { registryProjection } from '@ledgerflow/service-registry';
import { startEmbeddedServer } from './commands/server.js';
import { testServerConfig } from './testing/test-config.js';

interface Reply {
  status: number;
  body: Record<string, unknown>;
  text: string;
}

type Version = Record<string, unknown> & { version: string; current_stage: string };

describe('model registry over MLflow REST (embedded server)', () => {
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
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // artifact bodies
    }
    return { status: res.status, body: parsed, text };
  }
  const api = (route: string) => `/api/2.0/mlflow/${route}`;
  const post = (route: string, body: unknown = {}) => call('POST', api(route), body);
  const patch = (route: string, body: unknown = {}) => call('PATCH', api(route), body);
  const del = (route: string, body: unknown = {}) => call('DELETE', api(route), body);
  const get = (route: string, query: Record<string, string | string[]> = {}) => {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query))
      for (const item of Array.isArray(v) ? v : [v]) qs.append(k, item);
    return call('GET', `${api(route)}?${qs.toString()}`);
  };
  const ok = async (p: Promise<Reply>): Promise<Record<string, unknown>> => {
    const r = await p;
    if (r.status !== 200) throw new Error(`expected 200, got ${r.status}: ${r.text}`);
    return r.body;
  };

  async function newRun(): Promise<{ runId: string; artifactUri: string }> {
    const exp = await ok(post('experiments/create', { name: `exp-${Math.random()}` }));
    const run = await ok(
      post('runs/create', { experiment_id: exp['experiment_id'], start_time: 1 }),
    );
    const info = (run['run'] as { info: { run_id: string; artifact_uri: string } }).info;
    return { runId: info.run_id, artifactUri: info.artifact_uri };
  }

  async function registerVersions(name: string, n: number): Promise<string> {
    await ok(post('registered-models/create', { name }));
    const { runId } = await newRun();
    for (let i = 0; i < n; i++)
      await ok(
        post('model-versions/create', { name, source: `runs:/${runId}/model`, run_id: runId }),
      );
    return runId;
  }

  const revisionOf = async (name: string): Promise<number> =>
    (
      (await ok(get('registered-models/get', { name })))['registered_model'] as {
        revision: number;
      }
    ).revision;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-registry-e2e-'));
    server = await startEmbeddedServer(testServerConfig(dataDir));
    events = server.app.get<EventStore>(EVENT_STORE);
  });

  afterAll(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('registers, versions, stages, aliases, tags, searches, renames and deletes', async () => {
    const { runId, artifactUri } = await newRun();
    const created = await ok(
      post('registered-models/create', {
        name: 'fraud',
        description: 'first',
        tags: [{ key: 'team', value: 'risk' }],
      }),
    );
    expect(created['registered_model']).toMatchObject({
      name: 'fraud',
      description: 'first',
      tags: [{ key: 'team', value: 'risk' }],
      user_id: 'anonymous',
    });

    const v1 = (
      await ok(
        post('model-versions/create', {
          name: 'fraud',
          source: `runs:/${runId}/model`,
          run_id: runId,
          tags: [{ key: 'k', value: 'v' }],
          comment: 'first candidate',
        }),
      )
    )['model_version'] as Version;
    expect(v1).toMatchObject({
      name: 'fraud',
      version: '1',
      current_stage: 'None',
      status: 'READY',
      run_id: runId,
      source: `runs:/${runId}/model`,
      tags: [{ key: 'k', value: 'v' }],
    });
    expect(
      await ok(get('model-versions/get-download-uri', { name: 'fraud', version: '1' })),
    ).toEqual({ artifact_uri: `${artifactUri}/model` });
    // the reason travels in the event metadata
    const all = await events.readAll(0, 100_000);
    const createdEvent = all.find((e) => e.type === 'ModelVersionCreated');
    expect(createdEvent?.metadata.reason).toBe('first candidate');

    for (let i = 0; i < 2; i++)
      await ok(
        post('model-versions/create', {
          name: 'fraud',
          source: `runs:/${runId}/model`,
          run_id: runId,
        }),
      );
    await ok(
      post('model-versions/transition-stage', { name: 'fraud', version: '1', stage: 'production' }),
    );
    const moved = await ok(
      post('model-versions/transition-stage', {
        name: 'fraud',
        version: 2,
        stage: 'Production',
        archive_existing_versions: true,
      }),
    );
    expect(moved['model_version']).toMatchObject({ version: '2', current_stage: 'Production' });
    expect(
      (
        (await ok(get('model-versions/get', { name: 'fraud', version: '1' })))[
          'model_version'
        ] as Version
      ).current_stage,
    ).toBe('Archived');
    // GET and POST get-latest-versions; no stages = every stage
    const latest = await ok(
      get('registered-models/get-latest-versions', { name: 'fraud', stages: 'Production' }),
    );
    expect((latest['model_versions'] as Version[]).map((v) => v.version)).toEqual(['2']);
    const every = await ok(post('registered-models/get-latest-versions', { name: 'fraud' }));
    expect(
      (every['model_versions'] as Version[]).map((v) => `${v.current_stage}:${v.version}`).sort(),
    ).toEqual(['Archived:1', 'None:3', 'Production:2']);

    // aliases
    await ok(post('registered-models/alias', { name: 'fraud', alias: 'champion', version: '2' }));
    await ok(post('registered-models/alias', { name: 'fraud', alias: 'challenger', version: '3' }));
    const byAlias = await ok(get('registered-models/alias', { name: 'fraud', alias: 'champion' }));
    expect(byAlias['model_version']).toMatchObject({ version: '2', aliases: ['champion'] });
    expect(
      (await ok(get('registered-models/alias', { name: 'fraud', alias: 'latest' })))[
        'model_version'
      ],
    ).toMatchObject({ version: '3' });
    await ok(del('registered-models/alias', { name: 'fraud', alias: 'challenger' }));
    expect(
      (await get('registered-models/alias', { name: 'fraud', alias: 'challenger' })).status,
    ).toBe(400);

    // tags and descriptions
    await ok(post('registered-models/set-tag', { name: 'fraud', key: 'tier', value: 'gold' }));
    await ok(del('registered-models/delete-tag', { name: 'fraud', key: 'team' }));
    await ok(post('model-versions/set-tag', { name: 'fraud', version: '2', key: 'x', value: '1' }));
    await ok(del('model-versions/delete-tag', { name: 'fraud', version: '1', key: 'k' }));
    await ok(patch('model-versions/update', { name: 'fraud', version: '2', description: 'best' }));
    await ok(patch('registered-models/update', { name: 'fraud', description: 'second' }));
    const model = (await ok(get('registered-models/get', { name: 'fraud' })))['registered_model'];
    expect(model).toMatchObject({
      description: 'second',
      tags: [{ key: 'tier', value: 'gold' }],
      aliases: [{ alias: 'champion', version: '2' }],
    });
    const v1Now = (await ok(get('model-versions/get', { name: 'fraud', version: '1' })))[
      'model_version'
    ] as Version;
    expect(v1Now['tags']).toBeUndefined();

    // search
    await ok(post('registered-models/create', { name: 'churn' }));
    const found = await ok(
      get('registered-models/search', { filter: "tags.tier = 'gold' and name LIKE 'fr%'" }),
    );
    expect((found['registered_models'] as { name: string }[]).map((m) => m.name)).toEqual([
      'fraud',
    ]);
    const paged = await ok(
      get('registered-models/search', { max_results: '1', order_by: 'name DESC' }),
    );
    expect((paged['registered_models'] as { name: string }[])[0]?.name).toBe('fraud');
    expect(paged['next_page_token']).toBeDefined();
    const versions = await ok(
      get('model-versions/search', { filter: "name = 'fraud' and version_number >= 2" }),
    );
    expect((versions['model_versions'] as Version[]).map((v) => v.version).sort()).toEqual([
      '2',
      '3',
    ]);
    const byRun = await ok(get('model-versions/search', { filter: `run_id IN ('${runId}')` }));
    expect((byRun['model_versions'] as Version[]).length).toBe(3);

    // delete a version: its number is never reused, its aliases go
    await ok(del('model-versions/delete', { name: 'fraud', version: '2' }));
    expect((await get('model-versions/get', { name: 'fraud', version: '2' })).status).toBe(404);
    const v4 = await ok(
      post('model-versions/create', { name: 'fraud', source: `runs:/${runId}/m`, run_id: runId }),
    );
    expect((v4['model_version'] as Version).version).toBe('4');
    // a proxied artifact URI inside the run's artifacts, with its run_id
    const proxied = await ok(
      post('model-versions/create', {
        name: 'fraud',
        source: `${artifactUri}/model`,
        run_id: runId,
      }),
    );
    expect((proxied['model_version'] as Version).version).toBe('5');
    expect(
      ((await ok(get('registered-models/get', { name: 'fraud' })))['registered_model'] as object)[
        'aliases' as keyof object
      ],
    ).toBeUndefined();

    // rename: versions move with the model; the old name is free
    const renamed = await ok(
      post('registered-models/rename', { name: 'fraud', new_name: 'fraud-v2' }),
    );
    expect(renamed['registered_model']).toMatchObject({ name: 'fraud-v2' });
    expect(
      (
        (await ok(get('model-versions/get', { name: 'fraud-v2', version: '3' })))[
          'model_version'
        ] as Version
      ).name,
    ).toBe('fraud-v2');
    expect((await get('registered-models/get', { name: 'fraud' })).status).toBe(404);
    await ok(post('registered-models/create', { name: 'fraud' }));

    // models:/ sources resolve to the version's location
    const fromRegistry = await ok(
      post('model-versions/create', { name: 'fraud', source: 'models:/fraud-v2/3' }),
    );
    expect(
      await ok(get('model-versions/get-download-uri', { name: 'fraud', version: '1' })),
    ).toEqual({ artifact_uri: `${artifactUri}/model` });
    expect((fromRegistry['model_version'] as Version).source).toBe('models:/fraud-v2/3');

    // the ajax mirror
    const ajax = await call('GET', '/ajax-api/2.0/mlflow/registered-models/get?name=fraud-v2');
    expect(ajax.status).toBe(200);

    // delete the model: gone with its versions
    await ok(del('registered-models/delete', { name: 'fraud-v2' }));
    expect((await get('registered-models/get', { name: 'fraud-v2' })).status).toBe(404);
    expect(
      (await ok(get('model-versions/search', { filter: "name = 'fraud-v2'" })))['model_versions'],
    ).toBeUndefined();
  });

  it('serves a version artifact through /model-versions/get-artifact', async () => {
    const { runId, artifactUri } = await newRun();
    const storePath = artifactUri.replace(/^mlflow-artifacts:\//, '');
    const put = await fetch(
      `${server.url}/api/2.0/mlflow-artifacts/artifacts/${storePath}/model/MLmodel`,
      { method: 'PUT', body: 'flavors: {}\n' },
    );
    expect(put.status).toBe(200);
    await ok(post('registered-models/create', { name: 'art' }));
    await ok(
      post('model-versions/create', { name: 'art', source: `runs:/${runId}/model`, run_id: runId }),
    );
    for (const prefix of ['', '/ajax-api/2.0/mlflow', '/api/2.0/mlflow']) {
      const r = await call(
        'GET',
        `${prefix}/model-versions/get-artifact?name=art&version=1&path=MLmodel`,
      );
      expect(r.status).toBe(200);
      expect(r.text).toBe('flavors: {}\n');
    }
    expect(
      (await call('GET', '/model-versions/get-artifact?name=art&version=9&path=MLmodel')).status,
    ).toBe(404);
  });

  it('accepts a local source only inside the local artifact directory of its run', async () => {
    const root = path.join(dataDir, 'local-artifacts');
    const exp = await ok(
      post('experiments/create', { name: 'local-exp', artifact_location: root }),
    );
    const run = await ok(
      post('runs/create', { experiment_id: exp['experiment_id'], start_time: 1 }),
    );
    const info = (run['run'] as { info: { run_id: string; artifact_uri: string } }).info;
    expect(info.artifact_uri.startsWith(root)).toBe(true);
    await ok(post('registered-models/create', { name: 'local-model' }));
    const inside = await post('model-versions/create', {
      name: 'local-model',
      source: `${info.artifact_uri}/model`,
      run_id: info.run_id,
    });
    expect(inside.status).toBe(200);
    expect(
      await ok(get('model-versions/get-download-uri', { name: 'local-model', version: '1' })),
    ).toEqual({ artifact_uri: `${info.artifact_uri}/model` });
    for (const source of [`${root}/other`, `${info.artifact_uri}/../../escape`, `${root}`]) {
      const r = await post('model-versions/create', {
        name: 'local-model',
        source,
        run_id: info.run_id,
      });
      expect({ source, status: r.status, code: r.body['error_code'] }).toEqual({
        source,
        status: 400,
        code: 'INVALID_PARAMETER_VALUE',
      });
    }
  });

  it('answers bad input with MLflow error codes and stores nothing', async () => {
    const runId = await registerVersions('bad-input', 2);
    await ok(del('model-versions/delete', { name: 'bad-input', version: '2' }));
    await ok(post('registered-models/create', { name: 'bad-input-2' }));
    const cases: [string, () => Promise<Reply>, number, string, RegExp?][] = [
      [
        'unknown stage',
        () =>
          post('model-versions/transition-stage', {
            name: 'bad-input',
            version: '1',
            stage: 'Prod',
          }),
        400,
        'INVALID_PARAMETER_VALUE',
        /Invalid Model Version stage: Prod/,
      ],
      [
        'archiving into a non-active stage',
        () =>
          post('model-versions/transition-stage', {
            name: 'bad-input',
            version: '1',
            stage: 'Archived',
            archive_existing_versions: true,
          }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'reserved alias latest',
        () => post('registered-models/alias', { name: 'bad-input', alias: 'Latest', version: '1' }),
        400,
        'INVALID_PARAMETER_VALUE',
        /'latest' alias name \(case insensitive\) is reserved/,
      ],
      [
        'reserved version alias',
        () => post('registered-models/alias', { name: 'bad-input', alias: 'v3', version: '1' }),
        400,
        'INVALID_PARAMETER_VALUE',
        /Version alias name 'v3' is reserved/,
      ],
      [
        'alias with bad characters',
        () => post('registered-models/alias', { name: 'bad-input', alias: 'a b', version: '1' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'non-integer version',
        () => get('model-versions/get', { name: 'bad-input', version: 'one' }),
        400,
        'INVALID_PARAMETER_VALUE',
        /must be an integer/,
      ],
      [
        'non-integer version on a write',
        () =>
          post('model-versions/transition-stage', {
            name: 'bad-input',
            version: '1.5',
            stage: 'Staging',
          }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'unknown version',
        () =>
          post('model-versions/transition-stage', {
            name: 'bad-input',
            version: '99',
            stage: 'Staging',
          }),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'duplicate name',
        () => post('registered-models/create', { name: 'bad-input' }),
        400,
        'RESOURCE_ALREADY_EXISTS',
        /Registered Model \(name=bad-input\) already exists/,
      ],
      [
        'rename onto a taken name',
        () => post('registered-models/rename', { name: 'bad-input', new_name: 'bad-input-2' }),
        400,
        'RESOURCE_ALREADY_EXISTS',
      ],
      [
        'deleted version: get',
        () => get('model-versions/get', { name: 'bad-input', version: '2' }),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'deleted version: transition',
        () =>
          post('model-versions/transition-stage', {
            name: 'bad-input',
            version: '2',
            stage: 'Staging',
          }),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'deleted version: alias',
        () => post('registered-models/alias', { name: 'bad-input', alias: 'x', version: '2' }),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'deleted version: tag',
        () =>
          post('model-versions/set-tag', { name: 'bad-input', version: '2', key: 'a', value: 'b' }),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'missing source',
        () => post('model-versions/create', { name: 'bad-input' }),
        400,
        'INVALID_PARAMETER_VALUE',
        /Missing value for required parameter 'source'/,
      ],
      [
        'source naming an unknown run',
        () =>
          post('model-versions/create', {
            name: 'bad-input',
            source: 'runs:/0123456789abcdef/model',
            run_id: '0123456789abcdef',
          }),
        400,
        'INVALID_PARAMETER_VALUE',
        /The run_id request parameter must identify the resource that contains the source/,
      ],
      [
        'source naming an unknown run, no run_id',
        () =>
          post('model-versions/create', {
            name: 'bad-input',
            source: 'runs:/0123456789abcdef/model',
          }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'logged-model source without model_id',
        () =>
          post('model-versions/create', {
            name: 'bad-input',
            source: 'models:/m-0123456789abcdef',
          }),
        400,
        'INVALID_PARAMETER_VALUE',
        /The model_id request parameter must identify/,
      ],
      [
        'source naming an unknown logged model',
        () =>
          post('model-versions/create', {
            name: 'bad-input',
            source: 'models:/m-0123456789abcdef',
            model_id: 'm-0123456789abcdef',
          }),
        400,
        'INVALID_PARAMETER_VALUE',
        /The model_id request parameter must identify/,
      ],
      [
        'proxied artifact source outside the run',
        () =>
          post('model-versions/create', {
            name: 'bad-input',
            source: `mlflow-artifacts:/0/${'f'.repeat(32)}/artifacts/model`,
            run_id: runId,
          }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'proxied artifact source without run_id',
        () =>
          post('model-versions/create', {
            name: 'bad-input',
            source: `mlflow-artifacts:/0/${runId}/artifacts/model`,
          }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'registry source whose run_id differs',
        () =>
          post('model-versions/create', {
            name: 'bad-input',
            source: 'models:/bad-input/1',
            run_id: 'ffffffffffffffffffffffffffffffff',
          }),
        400,
        'INVALID_PARAMETER_VALUE',
        /must match the referenced model version/,
      ],
      [
        'registry source on another host',
        () => post('model-versions/create', { name: 'bad-input', source: 'models://evil/x/1' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'source with a relative path',
        () =>
          post('model-versions/create', {
            name: 'bad-input',
            source: 'mlflow-artifacts:/1/../../etc',
          }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'local path source',
        () =>
          post('model-versions/create', {
            name: 'bad-input',
            source: '/etc/passwd',
            run_id: runId,
          }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'runs source for another run',
        () =>
          post('model-versions/create', {
            name: 'bad-input',
            source: `runs:/${runId}/model`,
            run_id: 'ffffffffffffffffffffffffffffffff',
          }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'unknown model',
        () =>
          post('model-versions/create', {
            name: 'nope',
            source: `runs:/${runId}/model`,
            run_id: runId,
          }),
        404,
        'RESOURCE_DOES_NOT_EXIST',
      ],
      [
        'model name with a slash',
        () => post('registered-models/create', { name: 'a/b' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'stale expected_version',
        () =>
          post('model-versions/transition-stage', {
            name: 'bad-input',
            version: '1',
            stage: 'Staging',
            expected_version: 0,
          }),
        409,
        'RESOURCE_CONFLICT',
        /changed since revision 0/,
      ],
      [
        'max_results above the limit',
        () => get('registered-models/search', { max_results: '1001' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'filter on an unknown attribute',
        () => get('registered-models/search', { filter: "run_id = 'x'" }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
      [
        'unknown stage in get-latest-versions',
        () => get('registered-models/get-latest-versions', { name: 'bad-input', stages: 'Gold' }),
        400,
        'INVALID_PARAMETER_VALUE',
      ],
    ];
    for (const [label, send, status, code, message] of cases) {
      const before = await events.headPosition();
      const r = await send();
      expect({ label, status: r.status, code: r.body['error_code'] }).toEqual({
        label,
        status,
        code,
      });
      expect(String(r.body['message'])).toMatch(message ?? /\S/);
      // nothing was stored
      expect({ label, head: await events.headPosition() }).toEqual({ label, head: before });
    }
  });

  it('64 concurrent conflicting transitions: one winner per round, readers always see one Production version', async () => {
    const name = 'contested';
    await registerVersions(name, 64);
    await ok(post('model-versions/transition-stage', { name, version: '1', stage: 'Production' }));

    let polling = true;
    const violations: string[] = [];
    let reads = 0;
    const reader = async (): Promise<void> => {
      while (polling) {
        const latest = await get('registered-models/get-latest-versions', {
          name,
          stages: 'Production',
        });
        const prod = (latest.body['model_versions'] as Version[] | undefined) ?? [];
        if (prod.length !== 1) violations.push(`latest: ${JSON.stringify(prod)}`);
        const search = await get('model-versions/search', { filter: `name = '${name}'` });
        const inProd = ((search.body['model_versions'] as Version[] | undefined) ?? []).filter(
          (v) => v.current_stage === 'Production',
        );
        if (inProd.length !== 1)
          violations.push(`search: ${inProd.map((v) => v.version).join(',')}`);
        reads += 2;
      }
    };
    const readers = [reader(), reader(), reader()];

    const winners: string[] = [];
    const readsDuring: number[] = [];
    for (let round = 0; round < 3; round++) {
      const expected = await revisionOf(name);
      const readsBefore = reads;
      const replies = await Promise.all(
        Array.from({ length: 64 }, (_, i) =>
          post('model-versions/transition-stage', {
            name,
            version: String(i + 1),
            stage: 'Production',
            archive_existing_versions: true,
            expected_version: expected,
            comment: `round ${round} candidate ${i + 1}`,
          }),
        ),
      );
      const won = replies.filter((r) => r.status === 200);
      const lost = replies.filter((r) => r.status !== 200);
      expect(won).toHaveLength(1);
      expect(
        lost.every((r) => r.status === 409 && r.body['error_code'] === 'RESOURCE_CONFLICT'),
      ).toBe(true);
      // a loser is told the current state
      expect(String(lost[0]?.body['message'])).toMatch(/Production: \d+/);
      winners.push((won[0]!.body['model_version'] as Version).version);
      readsDuring.push(reads - readsBefore);
    }
    // the readers polled while each round's transitions were being decided, not only around them
    expect(readsDuring.every((n) => n > 0)).toBe(true);
    // without expected_version every transition applies, one after another, archiving the last
    const unguarded = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        post('model-versions/transition-stage', {
          name,
          version: String(64 - i),
          stage: 'Production',
          archive_existing_versions: true,
        }),
      ),
    );
    expect(unguarded.every((r) => r.status === 200)).toBe(true);
    polling = false;
    await Promise.all(readers);
    expect(reads).toBeGreaterThan(0);
    expect(violations).toEqual([]);

    // the log and the read models agree: fold the log, compare with what the API shows
    const log = (await events.readAll(0, 1_000_000)).filter(isRegistryEvent);
    const folded = registryPlacements(registryStateFold(log)).find(
      (m) => m.name === name,
    ) as RegistryPlacementSnapshot;
    expect(folded.stages.Production).toHaveLength(1);
    const shown = (await ok(get('model-versions/search', { filter: `name = '${name}'` })))[
      'model_versions'
    ] as Version[];
    for (const stage of ['None', 'Staging', 'Production', 'Archived'] as const)
      expect(
        shown
          .filter((v) => v.current_stage === stage)
          .map((v) => Number(v.version))
          .sort((a, b) => a - b),
      ).toEqual(folded.stages[stage]);
    // exactly one transition event per winner in the guarded rounds (3) plus the 64 unguarded + the first
    const transitions = log.filter(
      (e) =>
        e.type === 'ModelVersionStageTransitioned' && (e.data as { name: string }).name === name,
    );
    expect(transitions).toHaveLength(1 + 3 + 64);
    // the winners the API named are the transitions the log holds, in order
    expect(
      transitions.slice(1, 4).map((e) => String((e.data as { version: number }).version)),
    ).toEqual(winners);
  });

  it('rebuilding the registry read models gives the live content hash', async () => {
    const runner = server.app.get<ProjectionRunner>(PROJECTION_RUNNER);
    await runner.waitFor(await events.headPosition());
    const store = new SqliteReadModelStore({ path: path.join(dataDir, 'read-models.db') });
    try {
      const live = await store.contentHash(registryProjection);
      await store.setup(registryProjection);
      expect(await store.reader.count('model_versions')).toBeGreaterThan(60);
      await runner.rebuild('registry');
      expect(await store.contentHash(registryProjection)).toBe(live);
    } finally {
      await store.close();
    }
  });
});
