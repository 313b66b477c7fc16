import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { ingestV1 } from '@ledgerflow/contracts';
import { basic } from './testing/auth-client.js';
import { startTestCluster, type TestCluster } from './testing/cluster.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../../..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// away from the other cluster specs (1, 2) and the distributed bench (7); note offset k's ingest port is
// offset k-1's tracking service-call port, so neighbours cannot run at the same time
const OFFSET = 9;
/** The python auth suite's admin password (tests/python/conftest.py AUTH_ADMIN_PASSWORD). */
const ADMIN_PASSWORD = 'pytest-admin-password-1';
const ADMIN = basic('admin', ADMIN_PASSWORD);
const PW = 'distributed-password-1';
/** LEDGERFLOW_AUTH_CACHE_SECONDS of this cluster: the bound on a revocation taking effect. */
const CACHE_SECONDS = 2;
const MAX_FAILED_LOGINS = 4;

interface Answer {
  status: number;
  text: string;
  json: Record<string, unknown>;
  headers: Headers;
}

/**
 * Access control in distributed mode on a real cluster (four processes behind nginx, auth on):
 * tracking-ingest, artifact-store and deployment ask registry-governance (the identity module)
 * over gRPC, and answer exactly as the embedded server does, over REST and over gRPC ingest.
 */
describe('auth in distributed mode (identity over gRPC)', () => {
  let cluster: TestCluster;
  let ingest: ingestV1.MetricIngestServiceClient;

  beforeAll(async () => {
    cluster = await startTestCluster(OFFSET, {
      LEDGERFLOW_AUTH: 'basic',
      LEDGERFLOW_ADMIN_PASSWORD: ADMIN_PASSWORD,
      LEDGERFLOW_AUTH_CACHE_SECONDS: String(CACHE_SECONDS),
      LEDGERFLOW_AUTH_MAX_FAILED_LOGINS: String(MAX_FAILED_LOGINS),
    });
    ingest = new ingestV1.MetricIngestServiceClient(
      cluster.ingestAddress,
      grpc.credentials.createInsecure(),
    );
  }, 600_000);

  afterAll(async () => {
    ingest?.close();
    await cluster?.down(true);
  }, 120_000);

  const send = async (
    method: string,
    route: string,
    auth: string | undefined,
    body?: unknown,
  ): Promise<Answer> => {
    const headers: Record<string, string> = {};
    if (auth !== undefined) headers['authorization'] = auth;
    let url = `${cluster.url}${route}`;
    let payload: string | undefined;
    if (method === 'GET' && body !== undefined)
      url += `?${new URLSearchParams(body as Record<string, string>).toString()}`;
    else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const res = await fetch(url, {
      method,
      headers,
      ...(payload === undefined ? {} : { body: payload }),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // plain-text answers (401, 403)
    }
    return { status: res.status, text, json, headers: res.headers };
  };
  const mlflow = (route: string, auth: string | undefined, body: unknown, method = 'POST') =>
    send(method, `/api/2.0/mlflow/${route}`, auth, body);
  const ok = async (route: string, auth: string, body: unknown, method = 'POST') => {
    const res = await mlflow(route, auth, body, method);
    if (res.status !== 200) throw new Error(`${route}: ${res.status} ${res.text}`);
    return res.json;
  };

  /** One streamed metric batch over gRPC ingest: 0 when acknowledged, else the gRPC status. */
  const stream = (authorization: string | undefined, runId: string, id: string) =>
    new Promise<number>((resolve) => {
      const meta = new grpc.Metadata();
      if (authorization !== undefined) meta.set('authorization', authorization);
      const s = ingest.streamMetrics(meta, { deadline: Date.now() + 60_000 });
      let acked = false;
      s.on('data', () => (acked = true));
      s.on('error', (e: grpc.ServiceError) => resolve(e.code));
      s.on('end', () => resolve(acked ? 0 : -1));
      s.write({
        batch: {
          clientId: 'auth-distributed',
          clientBatchId: id,
          runs: [
            { runId, keys: ['acc'], keyIndex: [0], steps: [1], timestamps: [2], values: [0.5] },
          ],
        },
      });
      s.end();
    });

  let experimentId = '';
  let runId = '';
  const alice = basic('alice', PW);
  const bob = basic('bob', PW);

  it('refuses bad credentials, refuses users without permission, accepts permitted ones (REST and gRPC ingest)', async () => {
    for (const u of ['alice', 'bob', 'carol'])
      await ok('users/create', ADMIN, { username: u, password: PW });

    // alice creates on tracking-ingest: the creator grant is written by registry-governance
    experimentId = String(
      (await ok('experiments/create', alice, { name: 'auth-distributed' }))['experiment_id'],
    );
    const created = await ok('runs/create', alice, { experiment_id: experimentId });
    runId = (created['run'] as { info: { run_id: string } }).info.run_id;
    const perm = await ok(
      'experiments/permissions/get',
      ADMIN,
      { experiment_id: experimentId, username: 'alice' },
      'GET',
    );
    expect(perm['experiment_permission']).toMatchObject({ permission: 'MANAGE' });

    // no credentials, a wrong password, an unknown scheme: 401 with MLflow's challenge
    for (const auth of [undefined, basic('alice', 'wrong-password-1'), 'Digest abc']) {
      const res = await mlflow('runs/get', auth, { run_id: runId }, 'GET');
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Basic realm="mlflow"');
    }
    // bob (default READ) reads but may not write: 403 as MLflow's auth app answers
    expect((await mlflow('runs/get', bob, { run_id: runId }, 'GET')).status).toBe(200);
    const denied = await mlflow('runs/log-metric', bob, {
      run_id: runId,
      key: 'loss',
      value: 1,
      timestamp: 1,
    });
    expect(denied.status).toBe(403);
    expect(denied.text).toBe('Permission denied');
    expect(
      (
        await mlflow('runs/log-metric', alice, {
          run_id: runId,
          key: 'loss',
          value: 1,
          timestamp: 1,
        })
      ).status,
    ).toBe(200);
    // the artifact store (its own process) applies the same rules
    const put = (auth: string) =>
      fetch(
        `${cluster.url}/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts/a.txt`,
        { method: 'PUT', headers: { authorization: auth }, body: 'hello' },
      );
    expect((await put(bob)).status).toBe(403);
    expect((await put(alice)).status).toBe(200);
    expect((await put(basic('alice', 'wrong-password-1'))).status).toBe(401);

    // gRPC ingest on tracking-ingest: UNAUTHENTICATED, PERMISSION_DENIED, then accepted
    expect(await stream(undefined, runId, 'g1')).toBe(grpc.status.UNAUTHENTICATED);
    expect(await stream(basic('alice', 'wrong-password-1'), runId, 'g2')).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    expect(await stream(bob, runId, 'g3')).toBe(grpc.status.PERMISSION_DENIED);
    expect(await stream(alice, runId, 'g4')).toBe(0);

    // a grant works at once (a cached denial is never trusted), through REST and gRPC
    await ok('experiments/permissions/create', alice, {
      experiment_id: experimentId,
      username: 'bob',
      permission: 'EDIT',
    });
    expect(
      (await mlflow('runs/log-metric', bob, { run_id: runId, key: 'loss', value: 2, timestamp: 2 }))
        .status,
    ).toBe(200);
    expect(await stream(bob, runId, 'g5')).toBe(0);

    // registry-governance resolves the run over gRPC (service calls carry the service token)
    await ok('registered-models/create', alice, { name: 'auth-distributed-model' });
    const version = await ok('model-versions/create', alice, {
      name: 'auth-distributed-model',
      source: `runs:/${runId}/model`,
      run_id: runId,
    });
    expect(version['model_version']).toMatchObject({ run_id: runId, version: '1' });
    const bobVersion = await mlflow('model-versions/create', bob, {
      name: 'auth-distributed-model',
      source: `runs:/${runId}/model`,
      run_id: runId,
    });
    expect(bobVersion.status).toBe(403);

    // searches on tracking filter with the grants asked of identity: carol (READ default) sees it
    const found = await ok('experiments/search', basic('carol', PW), { max_results: 100 });
    expect(
      (found['experiments'] as { experiment_id: string }[]).map((e) => e.experiment_id),
    ).toContain(experimentId);
  }, 300_000);

  it('a changed password and a revoked token stop working within the cache bound', async () => {
    // bob's password is used (so cached) on tracking, then changed by the admin
    expect((await mlflow('runs/get', bob, { run_id: runId }, 'GET')).status).toBe(200);
    expect(await stream(bob, runId, 'p1')).toBe(0);
    const next = 'distributed-password-2';
    const changed = await send('PATCH', '/api/2.0/mlflow/users/update-password', ADMIN, {
      username: 'bob',
      password: next,
    });
    expect(changed.status).toBe(200);
    // the new password works at once (a miss asks identity)
    expect((await mlflow('runs/get', basic('bob', next), { run_id: runId }, 'GET')).status).toBe(
      200,
    );
    await sleep(CACHE_SECONDS * 1000 + 500);
    expect((await mlflow('runs/get', bob, { run_id: runId }, 'GET')).status).toBe(401);
    expect(await stream(bob, runId, 'p2')).toBe(grpc.status.UNAUTHENTICATED);

    // an API token: used on tracking and over gRPC, revoked on registry-governance
    const created = await send('POST', '/api/2.0/ledgerflow/tokens/create', alice, {
      name: 'ci',
    });
    expect(created.status).toBe(200);
    const bearer = `Bearer ${String(created.json['token'])}`;
    const tokenId = (created.json['token_info'] as { token_id: string }).token_id;
    expect((await mlflow('runs/get', bearer, { run_id: runId }, 'GET')).status).toBe(200);
    expect(await stream(bearer, runId, 't1')).toBe(0);
    const revoked = await send('POST', '/api/2.0/ledgerflow/tokens/revoke', alice, {
      token_id: tokenId,
    });
    expect(revoked.status).toBe(200);
    await sleep(CACHE_SECONDS * 1000 + 500);
    const refused = await mlflow('runs/get', bearer, { run_id: runId }, 'GET');
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Basic realm="mlflow"');
    expect(await stream(bearer, runId, 't2')).toBe(grpc.status.UNAUTHENTICATED);
  }, 120_000);

  it('locks a user name out after too many failures, with Retry-After (429)', async () => {
    const guess = basic('carol', 'not-her-password');
    const statuses: number[] = [];
    for (let i = 0; i < MAX_FAILED_LOGINS + 1; i++)
      statuses.push((await mlflow('experiments/search', guess, { max_results: 1 })).status);
    expect(statuses.slice(0, MAX_FAILED_LOGINS)).toEqual(Array(MAX_FAILED_LOGINS).fill(401));
    const locked = await mlflow('experiments/search', basic('carol', PW), { max_results: 1 });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
  }, 120_000);

  it('fails closed with 503 and Retry-After while identity is down; works again once it is back', async () => {
    const dave = basic('dave', PW);
    await ok('users/create', ADMIN, { username: 'dave', password: PW });
    // alice's credentials are cached by tracking (for 2 s); her search still needs her grants
    expect((await mlflow('experiments/search', alice, { max_results: 1 })).status).toBe(200);
    const pid = Number(
      readFileSync(path.join(cluster.runDir, 'pids', 'registry-governance.pid'), 'utf8'),
    );
    process.kill(pid, 'SIGKILL');
    await sleep(500);
    // whether her authentication came from the cache (then the grants lookup fails) or not
    const search = await mlflow('experiments/search', alice, { max_results: 1 });
    expect(search.status).toBe(503);
    expect(search.headers.get('retry-after')).toBe('5');
    expect(search.json['error_code']).toBe('TEMPORARILY_UNAVAILABLE');
    // dave was never seen by tracking: nothing cached, identity cannot be asked
    const res = await mlflow('experiments/search', dave, { max_results: 1 });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(res.json['error_code']).toBe('TEMPORARILY_UNAVAILABLE');
    expect(await stream(dave, runId, 'd1')).toBe(grpc.status.UNAVAILABLE);
    await cluster.up();
    // as MLflow's client does on 503: retry after Retry-After (tracking reconnects within ~2 s)
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const again = await mlflow('experiments/search', dave, { max_results: 1 });
      statuses.push(again.status);
      if (again.status !== 503) break;
      await sleep(Number(again.headers.get('retry-after')) * 1000);
    }
    expect(statuses.at(-1)).toBe(200);
    expect(statuses.slice(0, -1).every((s) => s === 503)).toBe(true);
  }, 300_000);

  it("passes MLflow's client auth suite (tests/python) against the nginx URL", async () => {
    const { stdout: venv } = await run('bash', ['tools/python-env.sh'], { cwd: root });
    const env = {
      ...process.env,
      LEDGERFLOW_TEST_URL: cluster.url,
      LEDGERFLOW_TEST_AUTH_URL: cluster.url,
      LEDGERFLOW_TEST_HTTP_TIMEOUT: '60',
      PYTHONDONTWRITEBYTECODE: '1',
    };
    try {
      await run(
        path.join(venv.trim(), 'bin/python'),
        [
          '-m',
          'pytest',
          '-p',
          'no:cacheprovider',
          '-q',
          '--color=no',
          'tests/python/test_mlflow_client_auth.py',
        ],
        { cwd: root, env, maxBuffer: 16 * 1024 * 1024, timeout: 600_000 },
      );
    } catch (e) {
      const out = e as { stdout?: string; stderr?: string };
      throw new Error(`pytest failed:\n${out.stdout ?? ''}\n${out.stderr ?? ''}`);
    }
  }, 700_000);
});
