import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '@ledgerflow/config';
import type { RunningServer } from '@ledgerflow/runtime';
import { defaultPolicyFromEnv } from '@ledgerflow/service-registry';
import { startEmbeddedServer } from './commands/server.js';
import { apiCaller, basic, call, type CallResult } from './testing/auth-client.js';
import { testServerConfig } from './testing/test-config.js';

const ADMIN = basic('admin', 'admin-password-123');
const ALICE = basic('alice', 'alice-password-1');
const CAROL = basic('carol', 'carol-password-1');

/** The server default policy (LEDGERFLOW_REGISTRY_POLICY): Production for carol alone, every alias
 * needs one approval by carol. */
const DEFAULT_POLICY = {
  stages: { Production: { allowed: ['carol'] } },
  aliases: { '*': { approvals: 1, approvers: ['carol'] } },
};

describe('registry governance: the server default policy (LEDGERFLOW_REGISTRY_POLICY)', () => {
  let server: RunningServer;
  let dir: string;

  const api = apiCaller(() => server);
  const transition = (auth: string, version: string, stage: string): Promise<CallResult> =>
    call(server, 'POST', '/api/2.0/mlflow/model-versions/transition-stage', auth, {
      name: 'scorer',
      version,
      stage,
    });
  const lastEntry = async (): Promise<Record<string, unknown>> =>
    (
      (await api('GET', 'ledgerflow/audit/timeline', ADMIN, { name: 'scorer' })).json[
        'entries'
      ] as Record<string, unknown>[]
    ).at(-1)!;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-default-policy-'));
    // read once, when the governance module boots
    process.env['LEDGERFLOW_REGISTRY_POLICY'] = JSON.stringify(DEFAULT_POLICY);
    try {
      server = await startEmbeddedServer(
        testServerConfig(path.join(dir, 'data'), {
          auth: {
            ...loadConfig({}).auth,
            mode: 'basic',
            adminPassword: 'admin-password-123',
            defaultPermission: 'EDIT',
          },
        }),
      );
    } finally {
      delete process.env['LEDGERFLOW_REGISTRY_POLICY'];
    }
    for (const name of ['alice', 'carol'])
      await api('POST', 'mlflow/users/create', ADMIN, {
        username: name,
        password: `${name}-password-1`,
      });
    const exp = await api('POST', 'mlflow/experiments/create', ALICE, { name: 'default-policy' });
    const run = await api('POST', 'mlflow/runs/create', ALICE, {
      experiment_id: exp.json['experiment_id'],
    });
    const runId = (run.json['run'] as { info: { run_id: string } }).info.run_id;
    await api('POST', 'mlflow/registered-models/create', ALICE, { name: 'scorer' });
    for (let i = 0; i < 2; i++)
      await api('POST', 'mlflow/model-versions/create', ALICE, {
        name: 'scorer',
        source: `runs:/${runId}/model`,
        run_id: runId,
      });
  });

  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('governs a model without its own policy, naming the server default in the refusal', async () => {
    const got = await api('GET', 'ledgerflow/registry/policies/get', ALICE, { name: 'scorer' });
    expect(got.json).toEqual({ name: 'scorer', source: 'server_default', policy: DEFAULT_POLICY });

    const refused = await transition(ALICE, '1', 'Production');
    expect(refused.status).toBe(403);
    expect(refused.json['message']).toBe(
      "Denied by rule stages.Production.allowed of the server default policy of registered model 'scorer': user 'alice' may not set stage Production (allowed: carol).",
    );
    expect(await lastEntry()).toMatchObject({ actor: 'alice', action: 'denied', version: 1 });
    // stages the default does not name stay open
    expect((await transition(ALICE, '1', 'Staging')).status).toBe(200);
    expect((await transition(CAROL, '1', 'Production')).status).toBe(200);

    const alias = await call(server, 'POST', '/api/2.0/mlflow/registered-models/alias', ALICE, {
      name: 'scorer',
      alias: 'shadow',
      version: '2',
    });
    expect(alias.status).toBe(403);
    expect(alias.json['message']).toContain(
      'rule aliases.*.approvals of the server default policy',
    );
    // the request path works under the default too: carol's approval applies it
    await api('POST', 'mlflow/transition-requests/create', ALICE, {
      name: 'scorer',
      version: '2',
      alias: 'shadow',
      comment: 'shadow traffic',
    });
    const approved = await api('POST', 'mlflow/transition-requests/approve', CAROL, {
      name: 'scorer',
      version: '2',
      alias: 'shadow',
    });
    expect(approved.json['applied']).toBe(true);
    const byAlias = await api('GET', 'mlflow/registered-models/alias', ALICE, {
      name: 'scorer',
      alias: 'shadow',
    });
    expect((byAlias.json['model_version'] as { version: string }).version).toBe('2');
  });

  it("replaces the default by the model's own policy, and falls back when it is cleared", async () => {
    await api('POST', 'ledgerflow/registry/policies/set', ADMIN, { name: 'scorer', policy: {} });
    expect(
      (await api('GET', 'ledgerflow/registry/policies/get', ALICE, { name: 'scorer' })).json,
    ).toEqual({ name: 'scorer', source: 'model', policy: {} });
    expect((await transition(ALICE, '2', 'Production')).status).toBe(200);

    await api('POST', 'ledgerflow/registry/policies/set', ADMIN, { name: 'scorer', policy: null });
    expect(
      (await api('GET', 'ledgerflow/registry/policies/get', ALICE, { name: 'scorer' })).json[
        'source'
      ],
    ).toBe('server_default');
    const refused = await transition(ALICE, '1', 'Production');
    expect(refused.status).toBe(403);
    expect(refused.json['message']).toContain('of the server default policy');
    const entries = (await api('GET', 'ledgerflow/audit/timeline', ADMIN, { name: 'scorer' })).json[
      'entries'
    ] as { actor: string; action: string }[];
    expect(entries.slice(-4).map((e) => `${e.actor}:${e.action}`)).toEqual([
      'admin:set_policy',
      'alice:transition_stage',
      'admin:clear_policy',
      'alice:denied',
    ]);
  });

  it('refuses to boot on a malformed default policy, naming the variable and the field', () => {
    expect(defaultPolicyFromEnv({})).toEqual({});
    expect(
      defaultPolicyFromEnv({ LEDGERFLOW_REGISTRY_POLICY: JSON.stringify(DEFAULT_POLICY) }),
    ).toEqual(DEFAULT_POLICY);
    expect(() => defaultPolicyFromEnv({ LEDGERFLOW_REGISTRY_POLICY: '{"stages": ' })).toThrow(
      /LEDGERFLOW_REGISTRY_POLICY is not a valid governance policy/,
    );
    expect(() =>
      defaultPolicyFromEnv({
        LEDGERFLOW_REGISTRY_POLICY: '{"stages":{"Production":{"approvals":-1}}}',
      }),
    ).toThrow(/stages\.Production\.approvals/);
  });
});
