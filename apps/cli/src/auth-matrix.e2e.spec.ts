import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '@ledgerflow/config';
import type { RunningServer } from '@ledgerflow/runtime';
import { ruleFor, type Rule } from '@ledgerflow/service-identity';
import { startEmbeddedServer } from './commands/server.js';
import { basic, call } from './testing/auth-client.js';
import { testServerConfig } from './testing/test-config.js';

/**
 * The permission matrix, generated from the routes the real server registers: every route ×
 * anonymous / admin / owner (the creator) / a user per permission level / a user with no grant.
 * A route without a rule fails here; an unauthorized call that gets past the gate, or an
 * authorized one refused by it, fails too.
 */

type Level = 'READ' | 'EDIT' | 'MANAGE' | 'NO_PERMISSIONS';
const LEVELS: readonly Level[] = ['READ', 'EDIT', 'MANAGE', 'NO_PERMISSIONS'];
const CAPS: Record<Level, readonly string[]> = {
  READ: ['read'],
  EDIT: ['read', 'update'],
  MANAGE: ['read', 'update', 'delete', 'manage'],
  NO_PERMISSIONS: [],
};

interface Caller {
  readonly name: string;
  readonly auth: string | undefined;
  readonly kind: 'anonymous' | 'admin' | 'user';
  /** Permission on the test experiment and registered model. */
  readonly level: Level;
}

const PASSWORD = 'matrix-password-1';

describe('permission matrix over every registered route', () => {
  let server: RunningServer;
  let dir: string;
  let experimentId = '';
  let experimentName = '';
  let runId = '';
  let modelId = '';
  const modelName = 'matrix-model';
  const callers: Caller[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-auth-matrix-'));
    server = await startEmbeddedServer(
      testServerConfig(path.join(dir, 'data'), {
        auth: {
          ...loadConfig({}).auth,
          mode: 'basic',
          adminPassword: 'matrix-admin-password',
          defaultPermission: 'NO_PERMISSIONS',
          creatorPermission: 'MANAGE',
          maxFailedLogins: 1000,
        },
      }),
    );
    const admin = basic('admin', 'matrix-admin-password');
    const mustOk = async (method: string, p: string, auth: string, body: unknown) => {
      const res = await call(server, method, p, auth, body);
      if (res.status !== 200) throw new Error(`${method} ${p}: ${res.status} ${res.text}`);
      return res.json;
    };
    for (const user of ['owner', 'stranger', ...LEVELS.map((l) => `u-${l.toLowerCase()}`)])
      await mustOk('POST', '/api/2.0/mlflow/users/create', admin, {
        username: user,
        password: PASSWORD,
      });
    const owner = basic('owner', PASSWORD);
    experimentName = 'matrix-exp';
    experimentId = (
      await mustOk('POST', '/api/2.0/mlflow/experiments/create', owner, { name: experimentName })
    )['experiment_id'] as string;
    runId = (
      (
        await mustOk('POST', '/api/2.0/mlflow/runs/create', owner, {
          experiment_id: experimentId,
        })
      )['run'] as { info: { run_id: string } }
    ).info.run_id;
    modelId = (
      (
        await mustOk('POST', '/api/2.0/mlflow/logged-models', owner, {
          experiment_id: experimentId,
        })
      )['model'] as { info: { model_id: string } }
    ).info.model_id;
    for (const level of LEVELS) {
      const username = `u-${level.toLowerCase()}`;
      await mustOk('POST', '/api/2.0/mlflow/experiments/permissions/create', owner, {
        experiment_id: experimentId,
        username,
        permission: level,
      });
      await mustOk('POST', '/api/3.0/mlflow/users/permissions/grant', admin, {
        username,
        resource_type: 'registered_model',
        resource_id: modelName,
        permission: level,
      });
      callers.push({ name: username, auth: basic(username, PASSWORD), kind: 'user', level });
    }
    await mustOk('POST', '/api/3.0/mlflow/users/permissions/grant', admin, {
      username: 'owner',
      resource_type: 'registered_model',
      resource_id: modelName,
      permission: 'MANAGE',
    });
    callers.push(
      { name: 'anonymous', auth: undefined, kind: 'anonymous', level: 'NO_PERMISSIONS' },
      { name: 'admin', auth: admin, kind: 'admin', level: 'MANAGE' },
      { name: 'owner', auth: owner, kind: 'user', level: 'MANAGE' },
      {
        name: 'stranger',
        auth: basic('stranger', PASSWORD),
        kind: 'user',
        level: 'NO_PERMISSIONS',
      },
      {
        name: 'wrong-password',
        auth: basic('owner', 'not-the-password'),
        kind: 'anonymous',
        level: 'NO_PERMISSIONS',
      },
    );
  }, 120_000);

  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The request a route's rule looks at, naming the test resources. */
  function requestFor(
    method: string,
    route: string,
    rule: Rule,
  ): { url: string; body: Record<string, unknown> } {
    const artifactPath = `${experimentId}/${runId}/artifacts/matrix.txt`;
    const url = route
      .replace(':model_id', modelId)
      .replace(':tag_key', 'k')
      .replace(/\*$/, artifactPath);
    const body: Record<string, unknown> = {};
    if (rule.kind === 'self') body[rule.field] = 'admin'; // another user's account
    if (rule.kind === 'resource') {
      const t = rule.target;
      switch (t.type) {
        case 'experiment':
          body[t.field] = experimentId;
          break;
        case 'experiment_name':
          body[t.field] = experimentName;
          break;
        case 'run':
          body[t.fields[0]!] = runId;
          break;
        case 'runs':
          body[t.field] = [runId];
          break;
        case 'registered_model':
          body[t.field] = modelName;
          break;
        case 'artifact_path':
          if (!route.endsWith('*')) body['path'] = artifactPath;
          break;
        case 'resource_field':
          body['resource_type'] = 'experiment';
          body['resource_id'] = experimentId;
          break;
        case 'logged_model':
          break;
      }
    }
    return { url, body };
  }

  function expected(caller: Caller, rule: Rule): boolean {
    if (rule.kind === 'public') return true;
    if (caller.kind === 'anonymous') return false;
    if (caller.kind === 'admin') return true;
    switch (rule.kind) {
      case 'authenticated':
        return true;
      case 'admin':
      case 'self':
        return false;
      case 'resource':
        // (the `also` checks find nothing in these requests: only the main capability counts)
        return CAPS[caller.level].includes(rule.capability);
    }
  }

  /** Routes any signed-in user may call: creates (the creator is granted), filtered searches, self-service. */
  const SIGNED_IN_ONLY = new Set([
    'GET /version',
    'GET /metrics',
    'POST /mlflow/experiments/create',
    'GET /mlflow/experiments/search',
    'POST /mlflow/experiments/search',
    'POST /mlflow/runs/search',
    'POST /mlflow/logged-models/search',
    'POST /mlflow/registered-models/create',
    'GET /mlflow/registered-models/search',
    'GET /mlflow/model-versions/search',
    'GET /mlflow/users/current',
    'POST /ledgerflow/tokens/revoke',
    'PATCH /mlflow/comments/update',
    'DELETE /mlflow/comments/delete',
  ]);

  /** MLflow's capability table (fact sheet §7), independent of the rule table. */
  const MLFLOW_CAPABILITIES: Record<string, string> = {
    'GET /mlflow/experiments/get': 'read',
    'GET /mlflow/runs/get': 'read',
    'GET /mlflow/metrics/get-history': 'read',
    'GET /mlflow/artifacts/list': 'read',
    'POST /mlflow/experiments/update': 'update',
    'POST /mlflow/runs/create': 'update',
    'POST /mlflow/runs/log-batch': 'update',
    'POST /mlflow/runs/log-metric': 'update',
    'POST /mlflow/runs/set-tag': 'update',
    'PUT /mlflow-artifacts/artifacts/*': 'update',
    'POST /mlflow/experiments/delete': 'delete',
    'POST /mlflow/experiments/restore': 'delete',
    'POST /mlflow/runs/delete': 'delete',
    'POST /mlflow/runs/restore': 'delete',
    'DELETE /mlflow-artifacts/artifacts/*': 'manage',
    'POST /mlflow/experiments/permissions/create': 'manage',
    'GET /mlflow/registered-models/get': 'read',
    'PATCH /mlflow/registered-models/update': 'update',
    'POST /mlflow/model-versions/create': 'update',
    'POST /mlflow/model-versions/transition-stage': 'update',
    'DELETE /mlflow/registered-models/delete': 'delete',
    'DELETE /mlflow/model-versions/delete': 'delete',
    'DELETE /mlflow/model-versions/delete-tag': 'delete',
    'DELETE /mlflow/registered-models/alias': 'delete',
    'POST /mlflow/registered-models/permissions/create': 'manage',
  };

  it('keeps the rule table honest: only listed routes are open to any signed-in user, and MLflow capabilities hold', () => {
    const loose: string[] = [];
    for (const r of server.routes) {
      if (r.method === 'HEAD') continue;
      const rule = ruleFor(r.method, r.url);
      const key = `${r.method} ${r.url.replace(/^\/(?:ajax-)?api\/\d+\.\d+(?=\/)/, '')}`;
      if (rule?.kind === 'authenticated' && !SIGNED_IN_ONLY.has(key)) loose.push(key);
      const want = MLFLOW_CAPABILITIES[key];
      if (want !== undefined && (rule?.kind !== 'resource' || rule.capability !== want))
        loose.push(`${key}: expected ${want}, rule ${JSON.stringify(rule)}`);
    }
    expect(loose).toEqual([]);
    for (const key of Object.keys(MLFLOW_CAPABILITIES)) {
      const [method, p] = key.split(' ') as [string, string];
      expect([key, ruleFor(method, p)?.kind]).toEqual([key, 'resource']);
    }
  });

  it('has a rule for every route, and the gate answers each caller as the rule says', async () => {
    const routes = [
      ...new Map(
        server.routes.filter((r) => r.method !== 'HEAD').map((r) => [`${r.method} ${r.url}`, r]),
      ).values(),
    ];
    expect(routes.length).toBeGreaterThan(50);
    const missing = routes.filter((r) => ruleFor(r.method, r.url) === undefined);
    expect(missing.map((r) => `${r.method} ${r.url}`)).toEqual([]);

    const wrong: string[] = [];
    let checked = 0;
    for (const route of routes) {
      const rule = ruleFor(route.method, route.url)!;
      const { url, body } = requestFor(route.method, route.url, rule);
      for (const caller of callers) {
        const res = await call(
          server,
          route.method,
          url,
          caller.auth,
          route.method === 'GET' && Object.keys(body).length === 0 ? undefined : body,
        );
        const refusedByGate =
          (res.status === 401 && res.headers.get('www-authenticate') === 'Basic realm="mlflow"') ||
          (res.status === 403 && res.text === 'Permission denied');
        const want = expected(caller, rule);
        checked++;
        if (want === refusedByGate)
          wrong.push(
            `${route.method} ${route.url} as ${caller.name}: expected ${want ? 'allowed' : 'refused'}, got ${res.status} ${res.text.slice(0, 120)}`,
          );
        if (!want && res.status < 400)
          wrong.push(`${route.method} ${route.url} as ${caller.name}: unauthorized call succeeded`);
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBe(routes.length * callers.length);
  }, 300_000);

  it('answers a storm of every kind of bad credential with 401s while signed-in callers are served', async () => {
    const owner = callers.find((c) => c.name === 'owner')!.auth!;
    const token = async (extra: Record<string, unknown>) => {
      const res = await call(server, 'POST', '/api/2.0/ledgerflow/tokens/create', owner, {
        name: 'storm',
        ...extra,
      });
      expect(res.status).toBe(200);
      return res.json as { token: string; token_info: { token_id: string } };
    };
    const revoked = await token({});
    expect(
      (
        await call(server, 'POST', '/api/2.0/ledgerflow/tokens/revoke', owner, {
          token_id: revoked.token_info.token_id,
        })
      ).status,
    ).toBe(200);
    const expired = await token({ expires_in_seconds: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    const badKinds: (string | undefined)[] = [
      undefined,
      '',
      'Basic',
      'Basic =',
      'Basic !!!not-base64!!!',
      `Basic ${Buffer.from('no-colon').toString('base64')}`,
      `Basic ${Buffer.from('owner:').toString('base64')}`,
      basic('owner', 'not-the-password'),
      basic('nobody', PASSWORD),
      'Bearer',
      'Bearer lft_',
      `Bearer ${revoked.token}`,
      `Bearer ${expired.token}`,
      `Bearer ${expired.token.slice(0, -1)}x`,
      'Digest username="owner"',
      `Basic ${'A'.repeat(10_000)}`,
      // over Node's 16 KiB header limit: refused by the HTTP parser
      `Bearer ${'x'.repeat(40_000)}`,
    ];
    const storm = Array.from({ length: 4 }, () => badKinds)
      .flat()
      .map((auth) =>
        call(server, 'GET', `/api/2.0/mlflow/experiments/get`, auth, {
          experiment_id: experimentId,
        }),
      );
    const served = Array.from({ length: 10 }, () =>
      call(server, 'GET', '/api/2.0/mlflow/experiments/get', owner, {
        experiment_id: experimentId,
      }),
    );
    const [health, ...rest] = await Promise.all([
      call(server, 'GET', '/health', undefined),
      ...served,
      ...storm,
    ]);
    expect(health.status).toBe(200);
    expect(rest.slice(0, served.length).map((r) => r.status)).toEqual(served.map(() => 200));
    const refused = rest.slice(served.length);
    expect(refused.map((r) => r.status)).toEqual(refused.map(() => 401));
    expect(
      refused.every(
        (r) =>
          r.headers.get('www-authenticate') === 'Basic realm="mlflow"' &&
          /not authenticated/.test(r.text),
      ),
    ).toBe(true);
  });

  it('answers a user without rights the same for a resource that exists as for one that does not', async () => {
    const stranger = callers.find((c) => c.name === 'stranger')!.auth;
    const owner = callers.find((c) => c.name === 'owner')!.auth;
    const existingModel = 'exists-model';
    for (const [p, body] of [
      ['/api/2.0/mlflow/registered-models/create', { name: existingModel }],
      [
        '/api/2.0/mlflow/model-versions/create',
        { name: existingModel, source: `runs:/${runId}/model`, run_id: runId },
      ],
    ] as const)
      expect((await call(server, 'POST', p, owner, body)).status).toBe(200);
    const pairs: [string, string, Record<string, unknown>, Record<string, unknown>][] = [
      [
        'GET',
        '/api/2.0/mlflow/experiments/get',
        { experiment_id: experimentId },
        { experiment_id: '987654' },
      ],
      ['GET', '/api/2.0/mlflow/runs/get', { run_id: runId }, { run_id: 'f'.repeat(32) }],
      [
        'POST',
        '/api/2.0/mlflow/runs/log-metric',
        { run_id: runId, key: 'k', value: 1, timestamp: 1 },
        { run_id: 'f'.repeat(32), key: 'k', value: 1, timestamp: 1 },
      ],
      ['GET', `/api/2.0/mlflow/logged-models/${modelId}`, {}, {}],
      [
        'GET',
        '/api/2.0/mlflow/registered-models/get',
        { name: existingModel },
        { name: 'no-such-model' },
      ],
      [
        'GET',
        '/api/2.0/mlflow/model-versions/get',
        { name: existingModel, version: '1' },
        { name: 'no-such-model', version: '1' },
      ],
      ['GET', '/api/2.0/mlflow/artifacts/list', { run_id: runId }, { run_id: 'f'.repeat(32) }],
      [
        'GET',
        `/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts/x.txt`,
        {},
        {},
      ],
    ];
    const answers: string[] = [];
    for (const [method, url, existing, missing] of pairs) {
      const shown = (r: { status: number; text: string }) => `${r.status} ${r.text}`;
      const a = await call(
        server,
        method,
        url,
        stranger,
        method === 'GET' && Object.keys(existing).length === 0 ? undefined : existing,
      );
      const otherUrl = url
        .replace(modelId, 'm-' + '0'.repeat(32))
        .replace(`/${experimentId}/`, '/987654/');
      const b = await call(
        server,
        method,
        otherUrl,
        stranger,
        method === 'GET' && Object.keys(missing).length === 0 ? undefined : missing,
      );
      answers.push(`${method} ${url}: ${shown(a)} | ${shown(b)}`);
      expect([url, shown(a)]).toEqual([url, '403 Permission denied']);
      expect([url, shown(b)]).toEqual([url, shown(a)]);
    }
    expect(answers).toHaveLength(pairs.length);
  });

  it('answers HEAD as the GET rule says (Fastify adds a HEAD route to every GET)', async () => {
    const heads = new Set(server.routes.filter((r) => r.method === 'HEAD').map((r) => r.url));
    const gets = server.routes.filter((r) => r.method === 'GET' && heads.has(r.url));
    expect(gets.length).toBeGreaterThan(20);
    const manager = callers.find((c) => c.name === 'u-manage')!.auth;
    const stranger = callers.find((c) => c.name === 'stranger')!.auth;
    const wrong: string[] = [];
    for (const r of gets) {
      const rule = ruleFor('GET', r.url)!;
      const { url, body } = requestFor('GET', r.url, rule);
      const query = Object.keys(body).length === 0 ? undefined : body;
      const head = async (auth: string | undefined) =>
        (await call(server, 'HEAD', url, auth, query)).status;
      if (rule.kind === 'public') continue;
      const anonymous = await head(undefined);
      if (anonymous !== 401) wrong.push(`HEAD ${r.url} anonymous: ${anonymous}`);
      if (rule.kind !== 'resource') continue;
      const refused = await head(stranger);
      if (refused !== 403) wrong.push(`HEAD ${r.url} as stranger: ${refused}`);
      const allowed = await head(manager);
      if (allowed === 401 || allowed === 403) wrong.push(`HEAD ${r.url} as u-manage: ${allowed}`);
    }
    expect(wrong).toEqual([]);
  });

  it('never lets a request that leaves out its resource through for a user without rights', async () => {
    // the gate lets a request without the identifying field through for its handler to refuse
    // (400): a handler that read the absence as "every resource" would leak, so none may succeed
    const stranger = callers.find((c) => c.name === 'stranger')!;
    const succeeded: string[] = [];
    let checked = 0;
    for (const r of server.routes) {
      if (r.method === 'HEAD') continue;
      const rule = ruleFor(r.method, r.url);
      if (rule?.kind !== 'resource') continue;
      const url = r.url.replace(':model_id', modelId).replace(':tag_key', 'k').replace(/\*$/, '');
      const res = await call(
        server,
        r.method,
        url,
        stranger.auth,
        r.method === 'GET' ? undefined : {},
      );
      checked++;
      if (res.status < 400)
        succeeded.push(`${r.method} ${r.url}: ${res.status} ${res.text.slice(0, 120)}`);
    }
    expect(checked).toBeGreaterThan(50);
    expect(succeeded).toEqual([]);
  }, 120_000);
});
