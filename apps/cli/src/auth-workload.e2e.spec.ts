import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '@ledgerflow/config';
import { ingestV1 } from '@ledgerflow/contracts';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import type { RunningServer } from '@ledgerflow/runtime';
import { IngestGrpcServer } from '@ledgerflow/service-tracking';
import { startEmbeddedServer } from './commands/server.js';
import { basic, call } from './testing/auth-client.js';
import { testServerConfig } from './testing/test-config.js';

const ADMIN = basic('admin', 'workload-admin-password');
const PW = 'workload-password-1';

describe('identity with auth on: search filtering, groups, actors, gRPC, bad credentials', () => {
  let server: RunningServer;
  let dir: string;
  let events: EventStore;
  const alice = basic('alice', PW);
  const bob = basic('bob', PW);
  const carol = basic('carol', PW);

  const ok = async (method: string, p: string, auth: string, body?: unknown) => {
    const res = await call(server, method, p, auth, body);
    if (res.status !== 200) throw new Error(`${method} ${p}: ${res.status} ${res.text}`);
    return res.json;
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-auth-workload-'));
    server = await startEmbeddedServer(
      testServerConfig(path.join(dir, 'data'), {
        auth: {
          ...loadConfig({}).auth,
          mode: 'basic',
          adminPassword: 'workload-admin-password',
          defaultPermission: 'READ',
          maxFailedLogins: 3,
          failedLoginWindowMs: 60_000,
        },
      }),
    );
    events = server.app.get<EventStore>(EVENT_STORE);
    for (const u of ['alice', 'bob', 'carol'])
      await ok('POST', '/api/2.0/mlflow/users/create', ADMIN, { username: u, password: PW });
  });

  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('never leaks an unreadable experiment, run or logged model from a search, and pages correctly', async () => {
    const visible: string[] = [];
    const hidden: string[] = [];
    for (let i = 0; i < 6; i++) {
      const id = (
        await ok('POST', '/api/2.0/mlflow/experiments/create', alice, { name: `leak-${i}` })
      )['experiment_id'] as string;
      await ok('POST', '/api/2.0/mlflow/runs/create', alice, {
        experiment_id: id,
        run_name: `run-${i}`,
      });
      await ok('POST', '/api/2.0/mlflow/logged-models', alice, {
        experiment_id: id,
        name: `model-${i}`,
      });
      if (i % 2 === 0) {
        // alice (MANAGE as creator) hides every other experiment from bob
        await ok('POST', '/api/2.0/mlflow/experiments/permissions/create', alice, {
          experiment_id: id,
          username: 'bob',
          permission: 'NO_PERMISSIONS',
        });
        hidden.push(id);
      } else visible.push(id);
    }
    // experiments, one per page
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await ok('POST', '/api/2.0/mlflow/experiments/search', bob, {
        max_results: 1,
        filter: "name LIKE 'leak-%'",
        ...(token ? { page_token: token } : {}),
      });
      const exps = (page['experiments'] ?? []) as { experiment_id: string }[];
      expect(exps.length).toBeLessThanOrEqual(1);
      seen.push(...exps.map((e) => e.experiment_id));
      token = page['next_page_token'] as string | undefined;
    } while (token);
    expect(seen.sort()).toEqual([...visible].sort());
    // runs over every experiment id, one per page
    const runExps: string[] = [];
    token = undefined;
    do {
      const page = await ok('POST', '/api/2.0/mlflow/runs/search', bob, {
        experiment_ids: [...hidden, ...visible],
        max_results: 1,
        ...(token ? { page_token: token } : {}),
      });
      const runs = (page['runs'] ?? []) as { info: { experiment_id: string } }[];
      runExps.push(...runs.map((r) => r.info.experiment_id));
      token = page['next_page_token'] as string | undefined;
    } while (token);
    expect(runExps.sort()).toEqual([...visible].sort());
    const models = await ok('POST', '/api/2.0/mlflow/logged-models/search', bob, {
      experiment_ids: [...hidden, ...visible],
    });
    const modelExps = ((models['models'] ?? []) as { info: { experiment_id: string } }[]).map(
      (m) => m.info.experiment_id,
    );
    expect(modelExps.sort()).toEqual([...visible].sort());
    // direct reads answer 403 without saying whether the experiment exists
    const direct = await call(server, 'GET', '/api/2.0/mlflow/experiments/get', bob, {
      experiment_id: hidden[0],
    });
    expect([direct.status, direct.text]).toEqual([403, 'Permission denied']);
    const byName = await call(server, 'GET', '/api/2.0/mlflow/experiments/get-by-name', bob, {
      experiment_name: 'leak-0',
    });
    expect([byName.status, byName.text]).toEqual([403, 'Permission denied']);
    // a name that names no experiment is answered as MLflow does (set_experiment then creates it)
    const absent = await call(server, 'GET', '/api/2.0/mlflow/experiments/get-by-name', bob, {
      experiment_name: 'no-such-experiment',
    });
    expect([absent.status, absent.json['error_code']]).toEqual([404, 'RESOURCE_DOES_NOT_EXIST']);
    // the owner and the admin still see everything
    const all = await ok('POST', '/api/2.0/mlflow/experiments/search', ADMIN, {
      filter: "name LIKE 'leak-%'",
    });
    expect((all['experiments'] as unknown[]).length).toBe(6);
  });

  it('never leaks an unreadable registered model or version from a search, also after a rename', async () => {
    const exp = (
      await ok('POST', '/api/2.0/mlflow/experiments/create', alice, { name: 'reg-exp' })
    )['experiment_id'] as string;
    const run = (
      (await ok('POST', '/api/2.0/mlflow/runs/create', alice, { experiment_id: exp }))['run'] as {
        info: { run_id: string; artifact_uri: string };
      }
    ).info;
    for (const name of ['open-model', 'secret-model']) {
      await ok('POST', '/api/2.0/mlflow/registered-models/create', alice, { name });
      await ok('POST', '/api/2.0/mlflow/model-versions/create', alice, {
        name,
        source: `${run.artifact_uri}/model`,
        run_id: run.run_id,
      });
    }
    await ok('POST', '/api/2.0/mlflow/registered-models/permissions/create', alice, {
      name: 'secret-model',
      username: 'bob',
      permission: 'NO_PERMISSIONS',
    });
    const names = async (): Promise<[string[], string[]]> => {
      const models = await ok('GET', '/api/2.0/mlflow/registered-models/search', bob, {
        max_results: 1,
      });
      const all: string[] = ((models['registered_models'] ?? []) as { name: string }[]).map(
        (m) => m.name,
      );
      let token = models['next_page_token'] as string | undefined;
      while (token) {
        const page = await ok('GET', '/api/2.0/mlflow/registered-models/search', bob, {
          max_results: 1,
          page_token: token,
        });
        all.push(...((page['registered_models'] ?? []) as { name: string }[]).map((m) => m.name));
        token = page['next_page_token'] as string | undefined;
      }
      const versions = await ok('GET', '/api/2.0/mlflow/model-versions/search', bob, {});
      return [all, ((versions['model_versions'] ?? []) as { name: string }[]).map((v) => v.name)];
    };
    expect(await names()).toEqual([['open-model'], ['open-model']]);
    const get = await call(server, 'GET', '/api/2.0/mlflow/registered-models/get', bob, {
      name: 'secret-model',
    });
    expect([get.status, get.text]).toEqual([403, 'Permission denied']);
    // the grants follow a rename
    await ok('POST', '/api/2.0/mlflow/registered-models/rename', alice, {
      name: 'secret-model',
      new_name: 'renamed-secret',
    });
    expect(await names()).toEqual([['open-model'], ['open-model']]);
    const admins = await ok('GET', '/api/2.0/mlflow/registered-models/search', ADMIN, {});
    expect(((admins['registered_models'] ?? []) as unknown[]).length).toBe(2);

    // registering a version needs read on what it is registered from, not only edit on the model
    await ok('POST', '/api/2.0/mlflow/registered-models/permissions/create', alice, {
      name: 'open-model',
      username: 'bob',
      permission: 'EDIT',
    });
    const privateExp = (
      await ok('POST', '/api/2.0/mlflow/experiments/create', alice, { name: 'private-exp' })
    )['experiment_id'] as string;
    await ok('POST', '/api/2.0/mlflow/experiments/permissions/create', alice, {
      experiment_id: privateExp,
      username: 'bob',
      permission: 'NO_PERMISSIONS',
    });
    const privateRun = (
      (await ok('POST', '/api/2.0/mlflow/runs/create', alice, { experiment_id: privateExp }))[
        'run'
      ] as { info: { run_id: string; artifact_uri: string } }
    ).info;
    for (const body of [
      { source: `${privateRun.artifact_uri}/model`, run_id: privateRun.run_id },
      { source: `runs:/${privateRun.run_id}/model` },
      { source: `${privateRun.artifact_uri}/model` },
    ]) {
      const res = await call(server, 'POST', '/api/2.0/mlflow/model-versions/create', bob, {
        name: 'open-model',
        ...body,
      });
      expect([JSON.stringify(body), res.status]).toEqual([JSON.stringify(body), 403]);
    }
    await ok('POST', '/api/2.0/mlflow/model-versions/create', bob, {
      name: 'open-model',
      source: `${run.artifact_uri}/model`,
      run_id: run.run_id,
    });
  });

  it('grants a team through a group; a user grant wins over the group', async () => {
    const id = (
      await ok('POST', '/api/2.0/mlflow/experiments/create', ADMIN, { name: 'team-exp' })
    )['experiment_id'] as string;
    // default READ: carol cannot create a run yet
    expect(
      (await call(server, 'POST', '/api/2.0/mlflow/runs/create', carol, { experiment_id: id }))
        .status,
    ).toBe(403);
    await ok('POST', '/api/2.0/ledgerflow/groups/create', ADMIN, { group: 'team' });
    for (const u of ['carol', 'bob'])
      await ok('POST', '/api/2.0/ledgerflow/groups/add-member', ADMIN, {
        group: 'team',
        username: u,
      });
    await ok('POST', '/api/2.0/ledgerflow/groups/permissions/grant', ADMIN, {
      group: 'team',
      resource_type: 'experiment',
      resource_id: id,
      permission: 'EDIT',
    });
    await ok('POST', '/api/2.0/mlflow/runs/create', carol, { experiment_id: id });
    await ok('POST', '/api/3.0/mlflow/users/permissions/grant', ADMIN, {
      username: 'bob',
      resource_type: 'experiment',
      resource_id: id,
      permission: 'READ',
    });
    expect(
      (await call(server, 'POST', '/api/2.0/mlflow/runs/create', bob, { experiment_id: id }))
        .status,
    ).toBe(403);
    const got = await ok('GET', '/api/3.0/mlflow/users/permissions/get', ADMIN, {
      username: 'carol',
      resource_type: 'experiment',
      resource_id: id,
    });
    expect(got).toEqual({ allowed: true, permission: 'EDIT' });
    await ok('POST', '/api/2.0/ledgerflow/groups/remove-member', ADMIN, {
      group: 'team',
      username: 'carol',
    });
    expect(
      (await call(server, 'POST', '/api/2.0/mlflow/runs/create', carol, { experiment_id: id }))
        .status,
    ).toBe(403);
  });

  it('records the authenticated user as the actor of every event of a scripted workload (REST, token, gRPC)', async () => {
    const before = await events.headPosition();
    const token = (
      await ok('POST', '/api/2.0/ledgerflow/tokens/create', alice, { name: 'workload' })
    )['token'] as string;
    const bearer = `Bearer ${token}`;
    const exp = (
      await ok('POST', '/api/2.0/mlflow/experiments/create', alice, { name: 'actor-exp' })
    )['experiment_id'] as string;
    const run = (
      (await ok('POST', '/api/2.0/mlflow/runs/create', bearer, { experiment_id: exp }))['run'] as {
        info: { run_id: string };
      }
    ).info.run_id;
    await ok('POST', '/api/2.0/mlflow/runs/log-batch', bearer, {
      run_id: run,
      metrics: [{ key: 'loss', value: 0.5, timestamp: 1, step: 0 }],
      params: [{ key: 'lr', value: '0.1' }],
      // a body claiming another actor changes nothing
      actor: 'mallory',
    });
    await ok('POST', '/api/2.0/mlflow/runs/set-tag', alice, { run_id: run, key: 'k', value: 'v' });
    const put = await fetch(
      `${server.url}/api/2.0/mlflow-artifacts/artifacts/${exp}/${run}/artifacts/a.txt`,
      { method: 'PUT', headers: { authorization: alice }, body: 'hello' },
    );
    expect(put.status).toBe(200);
    await ok('POST', '/api/2.0/mlflow/runs/update', alice, { run_id: run, status: 'FINISHED' });
    const run2 = (
      (await ok('POST', '/api/2.0/mlflow/runs/create', alice, { experiment_id: exp }))['run'] as {
        info: { run_id: string };
      }
    ).info.run_id;

    // gRPC: the same credentials in `authorization` metadata
    const address = `127.0.0.1:${server.app.get(IngestGrpcServer).port}`;
    const raw = new ingestV1.MetricIngestServiceClient(address, grpc.credentials.createInsecure());
    const meta = new grpc.Metadata();
    meta.set('authorization', alice);
    const batch: ingestV1.MetricBatch = {
      clientId: 'workload',
      clientBatchId: 'b1',
      runs: [
        { runId: run2, keys: ['acc'], keyIndex: [0], steps: [1], timestamps: [2], values: [0.9] },
      ],
    };
    const acks = await new Promise<ingestV1.StreamMetricsResponse[]>((resolve, reject) => {
      const got: ingestV1.StreamMetricsResponse[] = [];
      const s = raw.streamMetrics(meta);
      s.on('data', (a: ingestV1.StreamMetricsResponse) => got.push(a));
      s.on('error', reject);
      s.on('end', () => resolve(got));
      s.write({ batch });
      s.end();
    });
    expect(acks).toHaveLength(1);
    // no credentials, or a user who may not write: refused
    const refusal = (m: grpc.Metadata) =>
      new Promise<number>((resolve) => {
        const s = raw.streamMetrics(m);
        s.on('data', () => undefined);
        s.on('error', (e: grpc.ServiceError) => resolve(e.code));
        s.on('end', () => resolve(0));
        s.write({ batch: { ...batch, clientBatchId: 'b2' } });
        s.end();
      });
    expect(await refusal(new grpc.Metadata())).toBe(grpc.status.UNAUTHENTICATED);
    await ok('POST', '/api/2.0/mlflow/experiments/permissions/create', alice, {
      experiment_id: exp,
      username: 'bob',
      permission: 'READ',
    });
    const bobMeta = new grpc.Metadata();
    bobMeta.set('authorization', bob);
    expect(await refusal(bobMeta)).toBe(grpc.status.PERMISSION_DENIED);
    raw.close();

    const written = await events.readAll(before);
    expect(written.length).toBeGreaterThan(8);
    const actors = new Map<string, string>();
    for (const e of written) actors.set(`${e.type}@${e.position}`, e.metadata.actor);
    expect([...new Set(actors.values())]).toEqual(['alice']);
    expect(written.map((e) => e.type)).toEqual(
      expect.arrayContaining([
        'ExperimentCreated',
        'RunCreated',
        'MetricBatchIngested',
        'ApiTokenCreated',
      ]),
    );
  });

  it('answers every kind of bad credential with a quick 401, and limits failed logins', async () => {
    const bad: (string | undefined)[] = [
      undefined,
      '',
      'Basic',
      'Basic !!!not-base64!!!',
      `Basic ${Buffer.from('no-colon').toString('base64')}`,
      `Basic ${Buffer.from(':empty-user').toString('base64')}`,
      basic('nobody', 'whatever-password'),
      'Bearer',
      'Bearer not-a-token',
      `Bearer lft_${'0'.repeat(32)}_${'A'.repeat(43)}`,
      'Digest username="x"',
      `Basic ${'A'.repeat(10_000)}`,
      `Bearer ${'x'.repeat(12_000)}`,
      // over Node's 16 KiB header limit: refused by the HTTP parser, still a 401 with auth on
      `Bearer ${'x'.repeat(40_000)}`,
    ];
    for (const auth of bad) {
      const res = await call(server, 'GET', '/api/2.0/mlflow/experiments/get', auth, {
        experiment_id: '0',
      });
      expect([auth?.slice(0, 30), res.status]).toEqual([auth?.slice(0, 30), 401]);
      expect(res.headers.get('www-authenticate')).toBe('Basic realm="mlflow"');
      expect(res.text).toMatch(/not authenticated/);
    }
    // revoked and expired tokens
    const made = await ok('POST', '/api/2.0/ledgerflow/tokens/create', bob, {
      name: 'short',
      expires_in_seconds: 1,
    });
    const expiring = `Bearer ${made['token'] as string}`;
    expect((await call(server, 'GET', '/api/2.0/mlflow/users/current', expiring)).status).toBe(200);
    const revokedToken = await ok('POST', '/api/2.0/ledgerflow/tokens/create', bob, {
      name: 'revoked',
    });
    await ok('POST', '/api/2.0/ledgerflow/tokens/revoke', bob, {
      token_id: (revokedToken['token_info'] as { token_id: string }).token_id,
    });
    expect(
      (
        await call(
          server,
          'GET',
          '/api/2.0/mlflow/users/current',
          `Bearer ${revokedToken['token'] as string}`,
        )
      ).status,
    ).toBe(401);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await call(server, 'GET', '/api/2.0/mlflow/users/current', expiring)).status).toBe(401);
    // another user's token cannot be revoked (answered as unknown)
    const aliceToken = await ok('POST', '/api/2.0/ledgerflow/tokens/create', alice, {
      name: 'mine',
    });
    const steal = await call(server, 'POST', '/api/2.0/ledgerflow/tokens/revoke', bob, {
      token_id: (aliceToken['token_info'] as { token_id: string }).token_id,
    });
    expect(steal.status).toBe(404);
    // wrong passwords: after 3 failures the user name is locked out for the window (429),
    // even with the right password; the server keeps answering others
    for (let i = 0; i < 3; i++)
      expect(
        (await call(server, 'GET', '/version', basic('carol', `wrong-${i}-password`))).status,
      ).toBe(401);
    const locked = await call(server, 'GET', '/version', carol);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await call(server, 'GET', '/version', alice)).status).toBe(200);
  });
});

describe('a burst of wrong passwords', () => {
  let server: RunningServer;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-auth-flood-'));
    server = await startEmbeddedServer(
      testServerConfig(path.join(dir, 'data'), {
        auth: {
          ...loadConfig({}).auth,
          mode: 'basic',
          adminPassword: 'workload-admin-password',
          maxFailedLogins: 10,
        },
      }),
    );
    for (const u of ['victim', 'busy'])
      expect(
        (
          await call(server, 'POST', '/api/2.0/mlflow/users/create', ADMIN, {
            username: u,
            password: PW,
          })
        ).status,
      ).toBe(200);
  });

  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stays within the limit even when concurrent, keeps serving, and never locks out a busy signed-in user', async () => {
    const busy = basic('busy', PW);
    expect((await call(server, 'GET', '/version', busy)).status).toBe(200);
    const guesses = Array.from({ length: 40 }, (_, i) =>
      call(server, 'GET', '/version', basic('victim', `guess-number-${i}`)),
    );
    // meanwhile: the health check and a signed-in user with many requests in flight
    const [health, ...busyCalls] = await Promise.all([
      call(server, 'GET', '/health', undefined),
      ...Array.from({ length: 30 }, () => call(server, 'GET', '/version', busy)),
    ]);
    const answers = await Promise.all(guesses);
    expect(health.status).toBe(200);
    expect(busyCalls.map((r) => r.status)).toEqual(busyCalls.map(() => 200));
    const statuses = answers.map((r) => r.status);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
    // at most the limit was actually checked; the rest were turned away before the password check
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(10);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(30);
    // the victim is locked out for the window, even with the right password; others are not
    expect((await call(server, 'GET', '/version', basic('victim', PW))).status).toBe(429);
    expect((await call(server, 'GET', '/version', busy)).status).toBe(200);
  });
});
