import { jest } from '@jest/globals';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
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

/**
 * Identity in the log, and no secret anywhere but the caller's hands: a scripted workload of
 * several users over every write surface (tracking, artifacts, logged models, registry,
 * governance, identity; HTTP Basic, Bearer tokens and gRPC metadata) runs step by step with
 * auth on. Each step's events must all name the user who made that step's requests, whatever
 * the body claims, and no event may be written outside a step. Passwords and token secrets are
 * then looked for in everything the server logged (at debug level) and in every file of its
 * data dir: they must be nowhere (only hashes are stored).
 */

const ADMIN_PASSWORD = 'actors-admin-password-1';
const PASSWORDS: Record<string, string> = {
  alice: 'alice-secret-password-1',
  bob: 'bob-secret-password-22',
  carol: 'carol-secret-password-333',
};
const BOB_NEW_PASSWORD = 'bob-rotated-password-4444';
const WRONG_PASSWORD = 'a-wrong-guess-password-55555';

interface Step {
  readonly user: string;
  readonly what: string;
  readonly act: () => Promise<unknown>;
}

describe('identity in the log: a scripted multi-user workload with auth on', () => {
  let server: RunningServer;
  let dir: string;
  let events: EventStore;
  const logged: string[] = [];
  const restores: (() => void)[] = [];

  beforeAll(async () => {
    // capture everything the server prints, at its most verbose
    for (const method of ['log', 'error', 'warn', 'info', 'debug'] as const) {
      const spy = jest.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        logged.push(args.map(String).join(' '));
      });
      restores.push(() => spy.mockRestore());
    }
    for (const stream of [process.stdout, process.stderr]) {
      const original = stream.write.bind(stream);
      // kept, not printed (the debug log is long)
      stream.write = (chunk: unknown, ...rest: unknown[]) => {
        logged.push(Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk));
        const done = rest.find((r): r is () => void => typeof r === 'function');
        done?.();
        return true;
      };
      restores.push(() => {
        stream.write = original;
      });
    }
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-auth-actors-'));
    server = await startEmbeddedServer(
      testServerConfig(path.join(dir, 'data'), {
        logLevel: 'debug',
        auth: {
          ...loadConfig({}).auth,
          mode: 'basic',
          adminPassword: ADMIN_PASSWORD,
          defaultPermission: 'NO_PERMISSIONS',
          creatorPermission: 'MANAGE',
          maxFailedLogins: 100,
        },
      }),
    );
    events = server.app.get<EventStore>(EVENT_STORE);
  });

  afterAll(async () => {
    await server?.close();
    for (const restore of restores.reverse()) restore();
    rmSync(dir, { recursive: true, force: true });
  });

  it('names the user of each step as the actor of every event the step wrote, and keeps every secret out of logs and storage', async () => {
    const secrets = new Set<string>([
      ADMIN_PASSWORD,
      ...Object.values(PASSWORDS),
      BOB_NEW_PASSWORD,
      WRONG_PASSWORD,
    ]);
    const admin = basic('admin', ADMIN_PASSWORD);
    const alice = basic('alice', PASSWORDS['alice']!);
    const carol = basic('carol', PASSWORDS['carol']!);
    let bob = basic('bob', PASSWORDS['bob']!);
    const ok = async (method: string, p: string, auth: string, body?: unknown) => {
      const res = await call(server, method, p, auth, body);
      if (res.status !== 200) throw new Error(`${method} ${p}: ${res.status} ${res.text}`);
      return res.json;
    };
    const state: Record<string, string> = {};
    const api = (p: string) => `/api/2.0/${p}`;
    const grpcClient = new ingestV1.MetricIngestServiceClient(
      `127.0.0.1:${server.app.get(IngestGrpcServer).port}`,
      grpc.credentials.createInsecure(),
    );
    const withAuth = (authorization: string): grpc.Metadata => {
      const meta = new grpc.Metadata();
      meta.set('authorization', authorization);
      return meta;
    };
    const settle =
      <R>(resolve: (r: R) => void, reject: (e: Error) => void) =>
      (e: grpc.ServiceError | null, r: R) =>
        e ? reject(e) : resolve(r);
    const createRun = (req: ingestV1.CreateRunRequest, auth: string) =>
      new Promise<ingestV1.CreateRunResponse>((resolve, reject) =>
        grpcClient.createRun(req, withAuth(auth), settle(resolve, reject)),
      );
    const logParams = (req: ingestV1.LogParamsRequest, auth: string) =>
      new Promise<ingestV1.LogParamsResponse>((resolve, reject) =>
        grpcClient.logParams(req, withAuth(auth), settle(resolve, reject)),
      );
    const setTags = (req: ingestV1.SetTagsRequest, auth: string) =>
      new Promise<ingestV1.SetTagsResponse>((resolve, reject) =>
        grpcClient.setTags(req, withAuth(auth), settle(resolve, reject)),
      );

    const steps: Step[] = [
      ...['alice', 'bob', 'carol'].map((u): Step => ({
        user: 'admin',
        what: `create user ${u}`,
        act: () =>
          ok('POST', api('mlflow/users/create'), admin, {
            username: u,
            password: PASSWORDS[u],
          }),
      })),
      {
        user: 'admin',
        what: 'create a group with carol',
        act: async () => {
          await ok('POST', api('ledgerflow/groups/create'), admin, { group: 'reviewers' });
          await ok('POST', api('ledgerflow/groups/add-member'), admin, {
            group: 'reviewers',
            username: 'carol',
          });
        },
      },
      {
        user: 'alice',
        what: 'experiment, run, params, metrics, tags, inputs (the body claims other actors)',
        act: async () => {
          state['exp'] = (
            await ok('POST', api('mlflow/experiments/create'), alice, {
              name: 'actors-exp',
              actor: 'mallory',
            })
          )['experiment_id'] as string;
          await ok('POST', api('mlflow/experiments/set-experiment-tag'), alice, {
            experiment_id: state['exp'],
            key: 'team',
            value: 'fraud',
          });
          const run = (
            (
              await ok('POST', api('mlflow/runs/create'), alice, {
                experiment_id: state['exp'],
                user_id: 'mallory',
                metadata: { actor: 'mallory' },
              })
            )['run'] as { info: { run_id: string } }
          ).info.run_id;
          state['run'] = run;
          await ok('POST', api('mlflow/runs/log-batch'), alice, {
            run_id: run,
            metrics: [{ key: 'loss', value: 0.5, timestamp: 1, step: 0 }],
            params: [{ key: 'lr', value: '0.1' }],
            tags: [{ key: 'k', value: 'v' }],
            actor: 'mallory',
          });
          await ok('POST', api('mlflow/runs/log-metric'), alice, {
            run_id: run,
            key: 'acc',
            value: 0.9,
            timestamp: 2,
            step: 1,
          });
          await ok('POST', api('mlflow/runs/log-inputs'), alice, {
            run_id: run,
            datasets: [
              {
                dataset: { name: 'train', digest: 'abc', source_type: 'local', source: '/d' },
                tags: [],
              },
            ],
          });
        },
      },
      {
        user: 'alice',
        what: 'upload an artifact and create a logged model',
        act: async () => {
          const put = await fetch(
            `${server.url}/api/2.0/mlflow-artifacts/artifacts/${state['exp']}/${state['run']}/artifacts/model/weights.bin`,
            { method: 'PUT', headers: { authorization: alice }, body: 'weights' },
          );
          expect(put.status).toBe(200);
          state['model'] = (
            (
              await ok('POST', api('mlflow/logged-models'), alice, {
                experiment_id: state['exp'],
                name: 'lm',
                source_run_id: state['run'],
              })
            )['model'] as { info: { model_id: string } }
          ).info.model_id;
          await ok('POST', api(`mlflow/logged-models/${state['model']}/params`), alice, {
            params: [{ key: 'depth', value: '3' }],
          });
        },
      },
      {
        user: 'alice',
        what: 'grant bob EDIT on the experiment',
        act: () =>
          ok('POST', api('mlflow/experiments/permissions/create'), alice, {
            experiment_id: state['exp'],
            username: 'bob',
            permission: 'EDIT',
          }),
      },
      {
        user: 'bob',
        what: 'create an API token, then write with it (Bearer)',
        act: async () => {
          const made = await ok('POST', api('ledgerflow/tokens/create'), bob, { name: 'ci' });
          const token = made['token'] as string;
          secrets.add(token);
          secrets.add(token.split('_').at(-1)!);
          state['bobTokenId'] = (made['token_info'] as { token_id: string }).token_id;
          const bearer = `Bearer ${token}`;
          state['bobBearer'] = bearer;
          const run = (
            (
              await ok('POST', api('mlflow/runs/create'), bearer, {
                experiment_id: state['exp'],
              })
            )['run'] as { info: { run_id: string } }
          ).info.run_id;
          await ok('POST', api('mlflow/runs/log-parameter'), bearer, {
            run_id: run,
            key: 'who',
            value: 'bob',
          });
          await ok('POST', api('mlflow/runs/update'), bearer, {
            run_id: run,
            status: 'FINISHED',
          });
        },
      },
      {
        user: 'bob',
        what: 'a wrong password first (refused, writes nothing), then a password change',
        act: async () => {
          const refused = await call(
            server,
            'POST',
            api('mlflow/runs/set-tag'),
            basic('bob', WRONG_PASSWORD),
            {
              run_id: state['run'],
              key: 'x',
              value: 'y',
            },
          );
          expect(refused.status).toBe(401);
          await ok('PATCH', api('mlflow/users/update-password'), bob, {
            username: 'bob',
            password: BOB_NEW_PASSWORD,
            current_password: PASSWORDS['bob'],
          });
          bob = basic('bob', BOB_NEW_PASSWORD);
        },
      },
      {
        user: 'alice',
        what: 'registered model, version, tags, alias, stage',
        act: async () => {
          await ok('POST', api('mlflow/registered-models/create'), alice, { name: 'fraud' });
          await ok('POST', api('mlflow/model-versions/create'), alice, {
            name: 'fraud',
            source: `runs:/${state['run']}/model`,
            run_id: state['run'],
          });
          await ok('POST', api('mlflow/registered-models/set-tag'), alice, {
            name: 'fraud',
            key: 'owner',
            value: 'alice',
          });
          await ok('POST', api('mlflow/model-versions/set-tag'), alice, {
            name: 'fraud',
            version: '1',
            key: 'validated',
            value: 'yes',
          });
          await ok('POST', api('mlflow/registered-models/alias'), alice, {
            name: 'fraud',
            alias: 'champion',
            version: '1',
          });
          await ok('POST', api('mlflow/model-versions/transition-stage'), alice, {
            name: 'fraud',
            version: '1',
            stage: 'Staging',
            archive_existing_versions: false,
          });
        },
      },
      {
        user: 'alice',
        what: 'grant the reviewers group READ on the model',
        act: () =>
          ok('POST', api('ledgerflow/groups/permissions/grant'), alice, {
            group: 'reviewers',
            resource_type: 'registered_model',
            resource_id: 'fraud',
            permission: 'READ',
          }),
      },
      {
        user: 'admin',
        what: 'a governance policy: Production needs one approval by alice',
        act: () =>
          ok('POST', api('ledgerflow/registry/policies/set'), admin, {
            name: 'fraud',
            policy: { stages: { Production: { approvals: 1, approvers: ['alice'] } } },
          }),
      },
      {
        user: 'carol',
        what: 'comment and request a transition (read through the group)',
        act: async () => {
          await ok('POST', api('mlflow/comments/create'), carol, {
            name: 'fraud',
            version: '1',
            comment: 'looks good',
          });
          await ok('POST', api('mlflow/transition-requests/create'), carol, {
            name: 'fraud',
            version: '1',
            stage: 'Production',
            comment: 'ship it',
          });
        },
      },
      {
        user: 'alice',
        what: "approve carol's request, which applies the transition",
        act: () =>
          ok('POST', api('mlflow/transition-requests/approve'), alice, {
            name: 'fraud',
            version: '1',
            stage: 'Production',
            comment: 'approved',
          }),
      },
      {
        user: 'alice',
        what: 'gRPC: create a run, log params and tags, stream metrics (Basic in metadata)',
        act: async () => {
          const created = await createRun(
            { experimentId: state['exp']!, runName: 'grpc', tags: [], userId: 'mallory' },
            alice,
          );
          const runId = created.run!.runId;
          await logParams({ runId, params: [{ key: 'p', value: '1' }] }, alice);
          await setTags({ runId, tags: [{ key: 't', value: '1' }] }, alice);
          const meta = new grpc.Metadata();
          meta.set('authorization', alice);
          await new Promise<void>((resolve, reject) => {
            const s = grpcClient.streamMetrics(meta);
            s.on('data', () => undefined);
            s.on('error', reject);
            s.on('end', () => resolve());
            s.write({
              batch: {
                clientId: 'actors',
                clientBatchId: 'b1',
                runs: [
                  { runId, keys: ['g'], keyIndex: [0], steps: [1], timestamps: [1], values: [1] },
                ],
              },
            });
            s.end();
          });
        },
      },
      {
        user: 'bob',
        what: 'gRPC with a Bearer token: log params to the shared experiment, then revoke the token',
        act: async () => {
          const created = await createRun(
            { experimentId: state['exp']!, runName: 'bob-grpc', tags: [], userId: '' },
            state['bobBearer']!,
          );
          await logParams(
            { runId: created.run!.runId, params: [{ key: 'q', value: '2' }] },
            state['bobBearer']!,
          );
          await ok('POST', api('ledgerflow/tokens/revoke'), bob, {
            token_id: state['bobTokenId'],
          });
        },
      },
      {
        user: 'alice',
        what: 'delete and restore a run, rename the model',
        act: async () => {
          await ok('POST', api('mlflow/runs/delete'), alice, { run_id: state['run'] });
          await ok('POST', api('mlflow/runs/restore'), alice, { run_id: state['run'] });
          await ok('POST', api('mlflow/registered-models/rename'), alice, {
            name: 'fraud',
            new_name: 'fraud-v2',
          });
        },
      },
      {
        user: 'admin',
        what: 'remove carol from the group, make bob an admin',
        act: async () => {
          await ok('POST', api('ledgerflow/groups/remove-member'), admin, {
            group: 'reviewers',
            username: 'carol',
          });
          await ok('PATCH', api('mlflow/users/update-admin'), admin, {
            username: 'bob',
            is_admin: true,
          });
        },
      },
    ];

    const start = await events.headPosition();
    const wrong: string[] = [];
    const types = new Set<string>();
    const windows: [number, number][] = [];
    for (const step of steps) {
      const before = await events.headPosition();
      await step.act();
      const after = await events.headPosition();
      windows.push([before, after]);
      const written = (await events.readAll(before)).filter((e) => e.position <= after);
      if (written.length === 0) wrong.push(`${step.what}: wrote no event`);
      for (const e of written) {
        types.add(e.type);
        if (e.metadata.actor !== step.user)
          wrong.push(`${step.what}: ${e.type} by '${e.metadata.actor}', not '${step.user}'`);
      }
    }
    grpcClient.close();
    expect(wrong).toEqual([]);
    // nothing was written outside the steps (a late write would carry no request's identity)
    await new Promise((r) => setTimeout(r, 200));
    const all = await events.readAll(start);
    const outside = all.filter((e) => !windows.some(([b, a]) => e.position > b && e.position <= a));
    expect(outside.map((e) => `${e.type} by ${e.metadata.actor}`)).toEqual([]);
    expect(all.every((e) => e.metadata.actor !== 'mallory')).toBe(true);
    // the workload covered every write surface
    expect([...types].sort()).toEqual(
      expect.arrayContaining([
        'UserCreated',
        'GroupCreated',
        'GroupMemberAdded',
        'GroupMemberRemoved',
        'ExperimentCreated',
        'RunCreated',
        'PermissionGranted',
        'ApiTokenCreated',
        'ApiTokenRevoked',
        'UserPasswordChanged',
        'UserAdminChanged',
        'MetricBatchIngested',
        'RegisteredModelCreated',
        'ModelVersionCreated',
        'ArtifactStored',
        'LoggedModelCreated',
        'RegisteredModelAliasSet',
        'ModelVersionStageTransitioned',
        'RegistryPolicySet',
        'ModelVersionCommentCreated',
        'TransitionRequestCreated',
        'TransitionRequestApproved',
      ]),
    );
    expect(types.size).toBeGreaterThanOrEqual(35);

    // no password or token secret in anything logged, nor in any stored file (hashes only)
    expect(logged.length).toBeGreaterThan(0);
    const text = logged.join('\n');
    const inLogs = [...secrets].filter((s) => text.includes(s));
    expect(inLogs).toEqual([]);
    await server.close();
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const name of readdirSync(d)) {
        const p = path.join(d, name);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(path.join(dir, 'data'));
    expect(files.some((f) => f.endsWith('events.db'))).toBe(true);
    const stored: string[] = [];
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const s of secrets)
        if (bytes.includes(Buffer.from(s, 'utf8'))) stored.push(`${s.slice(0, 8)}… in ${f}`);
    }
    expect(stored).toEqual([]);
    // the test can see what it looks for: the uploaded artifact's bytes are on disk
    expect(files.some((f) => readFileSync(f).includes(Buffer.from('weights')))).toBe(true);
  }, 120_000);
});
