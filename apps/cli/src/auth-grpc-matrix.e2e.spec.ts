import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '@ledgerflow/config';
import { ingestV1 } from '@ledgerflow/contracts';
import type { RunningServer } from '@ledgerflow/runtime';
import { IngestGrpcServer, PUBLIC_GRPC_PREFIX } from '@ledgerflow/service-tracking';
import { startEmbeddedServer } from './commands/server.js';
import { basic, call } from './testing/auth-client.js';
import { testServerConfig } from './testing/test-config.js';

/**
 * The gRPC side of the permission matrix, generated from the methods the real gRPC port serves
 * (every service: ingest, health, reflection, any added later): every method × anonymous, bad
 * credentials of every kind, admin, the owner (Basic and token), a user per permission level and a
 * user without a grant. A served method without a case here fails; a call that gets past
 * authentication or authorization when it should not, or is refused when it should not be, fails.
 */

type Level = 'READ' | 'EDIT' | 'MANAGE' | 'NO_PERMISSIONS';
const LEVELS: readonly Level[] = ['READ', 'EDIT', 'MANAGE', 'NO_PERMISSIONS'];
const CAN_UPDATE: Record<Level, boolean> = {
  READ: false,
  EDIT: true,
  MANAGE: true,
  NO_PERMISSIONS: false,
};
const PASSWORD = 'grpc-matrix-password';
const ADMIN_PASSWORD = 'grpc-matrix-admin-password';

/** What a method needs: nothing (health), any signed-in user, or update on the run's experiment. */
type Need = 'public' | 'signed-in' | 'update';

interface Caller {
  readonly name: string;
  readonly authorization: string | undefined;
  /** undefined: not authenticated (anonymous or bad credentials). */
  readonly mayUpdate: boolean | undefined;
}

interface Handler {
  readonly type: 'unary' | 'clientStream' | 'serverStream' | 'bidi';
}

const raw = (b: Buffer): Buffer => b;

describe('gRPC permission matrix over every served method', () => {
  let server: RunningServer;
  let dir: string;
  let address: string;
  let client: grpc.Client;
  let experimentId = '';
  let runId = '';
  const callers: Caller[] = [];
  const bad: Caller[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-grpc-matrix-'));
    server = await startEmbeddedServer(
      testServerConfig(path.join(dir, 'data'), {
        auth: {
          ...loadConfig({}).auth,
          mode: 'basic',
          adminPassword: ADMIN_PASSWORD,
          defaultPermission: 'NO_PERMISSIONS',
          creatorPermission: 'MANAGE',
          maxFailedLogins: 1000,
        },
      }),
    );
    const admin = basic('admin', ADMIN_PASSWORD);
    const ok = async (method: string, p: string, auth: string, body?: unknown) => {
      const res = await call(server, method, p, auth, body);
      if (res.status !== 200) throw new Error(`${method} ${p}: ${res.status} ${res.text}`);
      return res.json;
    };
    for (const user of ['owner', 'stranger', ...LEVELS.map((l) => `u-${l.toLowerCase()}`)])
      await ok('POST', '/api/2.0/mlflow/users/create', admin, {
        username: user,
        password: PASSWORD,
      });
    const owner = basic('owner', PASSWORD);
    experimentId = (
      await ok('POST', '/api/2.0/mlflow/experiments/create', owner, { name: 'grpc-matrix' })
    )['experiment_id'] as string;
    runId = (
      (await ok('POST', '/api/2.0/mlflow/runs/create', owner, { experiment_id: experimentId }))[
        'run'
      ] as { info: { run_id: string } }
    ).info.run_id;
    const token = async (name: string, extra: Record<string, unknown> = {}) =>
      (await ok('POST', '/api/2.0/ledgerflow/tokens/create', owner, { name, ...extra })) as {
        token: string;
        token_info: { token_id: string };
      };
    const good = await token('good');
    const revoked = await token('revoked');
    await ok('POST', '/api/2.0/ledgerflow/tokens/revoke', owner, {
      token_id: revoked.token_info.token_id,
    });
    const expiring = await token('expiring', { expires_in_seconds: 1 });
    for (const level of LEVELS) {
      await ok('POST', '/api/2.0/mlflow/experiments/permissions/create', owner, {
        experiment_id: experimentId,
        username: `u-${level.toLowerCase()}`,
        permission: level,
      });
      callers.push({
        name: `u-${level.toLowerCase()}`,
        authorization: basic(`u-${level.toLowerCase()}`, PASSWORD),
        mayUpdate: CAN_UPDATE[level],
      });
    }
    callers.push(
      { name: 'admin', authorization: admin, mayUpdate: true },
      { name: 'owner', authorization: owner, mayUpdate: true },
      { name: 'owner-token', authorization: `Bearer ${good.token}`, mayUpdate: true },
      { name: 'stranger', authorization: basic('stranger', PASSWORD), mayUpdate: false },
    );
    bad.push(
      { name: 'anonymous', authorization: undefined, mayUpdate: undefined },
      { name: 'empty', authorization: '', mayUpdate: undefined },
      {
        name: 'wrong-password',
        authorization: basic('owner', 'wrong-password-1'),
        mayUpdate: undefined,
      },
      { name: 'unknown-user', authorization: basic('nobody', PASSWORD), mayUpdate: undefined },
      { name: 'malformed-basic', authorization: 'Basic !!!', mayUpdate: undefined },
      {
        name: 'no-colon',
        authorization: `Basic ${Buffer.from('owner').toString('base64')}`,
        mayUpdate: undefined,
      },
      { name: 'other-scheme', authorization: 'Digest username="owner"', mayUpdate: undefined },
      { name: 'malformed-token', authorization: 'Bearer lft_nope', mayUpdate: undefined },
      { name: 'revoked-token', authorization: `Bearer ${revoked.token}`, mayUpdate: undefined },
      { name: 'expired-token', authorization: `Bearer ${expiring.token}`, mayUpdate: undefined },
      // over the 4 KiB the gate reads (gRPC's own metadata limit is 8 KiB)
      { name: 'oversized', authorization: `Bearer ${'x'.repeat(6000)}`, mayUpdate: undefined },
    );
    // the expiring token works now, and no longer once the matrix runs
    const current = await call(
      server,
      'GET',
      '/api/2.0/mlflow/users/current',
      `Bearer ${expiring.token}`,
    );
    expect(current.status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    address = `127.0.0.1:${server.app.get(IngestGrpcServer).port}`;
    client = new grpc.Client(address, grpc.credentials.createInsecure());
  }, 120_000);

  afterAll(async () => {
    client?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The methods the gRPC port serves, by path, as grpc-js registered them. */
  function servedMethods(): Map<string, Handler> {
    const ingest: unknown = server.app.get(IngestGrpcServer);
    return (ingest as { server: { handlers: Map<string, Handler> } }).server.handlers;
  }

  let batchNo = 0;
  const metricBatch = (caller: string): ingestV1.MetricBatch => ({
    clientId: `matrix-${caller}`,
    clientBatchId: `b${++batchNo}`,
    runs: [{ runId, keys: ['m'], keyIndex: [0], steps: [batchNo], timestamps: [1], values: [0.5] }],
  });

  /** One request per method (the bytes a client sends), for a caller; and what the method needs. */
  const CASES: Record<string, { need: Need; request: (caller: string) => Buffer }> = {
    '/ledgerflow.tracking.v1.MetricIngestService/IngestMetrics': {
      need: 'update',
      request: (c) =>
        Buffer.from(ingestV1.IngestMetricsRequest.encode({ batch: metricBatch(c) }).finish()),
    },
    '/ledgerflow.tracking.v1.MetricIngestService/StreamMetrics': {
      need: 'update',
      request: (c) =>
        Buffer.from(ingestV1.StreamMetricsRequest.encode({ batch: metricBatch(c) }).finish()),
    },
    '/ledgerflow.tracking.v1.MetricIngestService/CreateRun': {
      need: 'update',
      request: (c) =>
        Buffer.from(
          ingestV1.CreateRunRequest.encode({
            experimentId,
            runName: `by-${c}`,
            tags: [],
            userId: '',
          }).finish(),
        ),
    },
    '/ledgerflow.tracking.v1.MetricIngestService/UpdateRun': {
      need: 'update',
      request: (c) =>
        Buffer.from(
          ingestV1.UpdateRunRequest.encode({
            runId,
            status: '',
            runName: `renamed-by-${c}`,
          }).finish(),
        ),
    },
    '/ledgerflow.tracking.v1.MetricIngestService/LogParams': {
      need: 'update',
      request: (c) =>
        Buffer.from(
          ingestV1.LogParamsRequest.encode({
            runId,
            params: [{ key: `p-${c}`, value: c }],
          }).finish(),
        ),
    },
    '/ledgerflow.tracking.v1.MetricIngestService/SetTags': {
      need: 'update',
      request: (c) =>
        Buffer.from(
          ingestV1.SetTagsRequest.encode({ runId, tags: [{ key: 't', value: c }] }).finish(),
        ),
    },
    // the service's schema: any signed-in user (list_services = "", field 7)
    '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo': {
      need: 'signed-in',
      request: () => Buffer.from([0x3a, 0x00]),
    },
    '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo': {
      need: 'signed-in',
      request: () => Buffer.from([0x3a, 0x00]),
    },
    // liveness, as HTTP /health
    '/grpc.health.v1.Health/Check': { need: 'public', request: () => Buffer.alloc(0) },
    '/grpc.health.v1.Health/List': { need: 'public', request: () => Buffer.alloc(0) },
  };

  /** Health Watch streams until cancelled: checked apart. */
  const STREAMING_FOREVER = new Set(['/grpc.health.v1.Health/Watch']);

  /** The status code a call of the method ends with (0: OK). */
  function invoke(
    method: string,
    handler: Handler,
    request: Buffer,
    authorization: string | undefined,
  ): Promise<number> {
    const metadata = new grpc.Metadata();
    if (authorization !== undefined) metadata.set('authorization', authorization);
    const deadline = Date.now() + 20_000;
    return new Promise((resolve) => {
      const done = (e: grpc.ServiceError | null) => resolve(e === null ? 0 : e.code);
      switch (handler.type) {
        case 'unary':
          client.makeUnaryRequest(method, raw, raw, request, metadata, { deadline }, done);
          return;
        case 'clientStream': {
          const s = client.makeClientStreamRequest(method, raw, raw, metadata, { deadline }, done);
          s.write(request);
          s.end();
          return;
        }
        case 'serverStream': {
          const s = client.makeServerStreamRequest(method, raw, raw, request, metadata, {
            deadline,
          });
          s.on('data', () => undefined);
          s.on('error', () => undefined);
          s.on('status', (st: grpc.StatusObject) => resolve(st.code));
          return;
        }
        case 'bidi': {
          const s = client.makeBidiStreamRequest(method, raw, raw, metadata, { deadline });
          s.on('data', () => undefined);
          s.on('error', () => undefined);
          s.on('status', (st: grpc.StatusObject) => resolve(st.code));
          s.write(request);
          s.end();
          return;
        }
      }
    });
  }

  function expectedCode(need: Need, caller: Caller): number {
    if (need === 'public') return grpc.status.OK;
    if (caller.mayUpdate === undefined) return grpc.status.UNAUTHENTICATED;
    if (need === 'signed-in') return grpc.status.OK;
    return caller.mayUpdate ? grpc.status.OK : grpc.status.PERMISSION_DENIED;
  }

  it('has a case for every served method, and answers each caller as the case says', async () => {
    const served = servedMethods();
    expect(served.size).toBeGreaterThanOrEqual(6);
    const uncovered = [...served.keys()].filter(
      (m) => CASES[m] === undefined && !STREAMING_FOREVER.has(m),
    );
    expect(uncovered).toEqual([]);
    // the only methods open to anyone are the health checks
    expect(
      Object.entries(CASES)
        .filter(([, c]) => c.need === 'public')
        .map(([m]) => m.startsWith(PUBLIC_GRPC_PREFIX)),
    ).toEqual([true, true]);

    const wrong: string[] = [];
    let checked = 0;
    for (const [method, handler] of served) {
      const c = CASES[method];
      if (c === undefined) continue;
      for (const caller of [...callers, ...bad]) {
        const code = await invoke(method, handler, c.request(caller.name), caller.authorization);
        const want = expectedCode(c.need, caller);
        checked++;
        if (code !== want)
          wrong.push(
            `${method} as ${caller.name}: expected ${grpc.status[want]}, got ${grpc.status[code]}`,
          );
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBe(Object.keys(CASES).length * (callers.length + bad.length));
    // what the log holds agrees: only the callers allowed to write logged their parameter
    const owner = callers.find((c) => c.name === 'owner')!;
    const got = await call(server, 'GET', '/api/2.0/mlflow/runs/get', owner.authorization, {
      run_id: runId,
    });
    const params = (
      (got.json['run'] as { data: { params?: { key: string }[] } }).data.params ?? []
    ).map((p) => p.key);
    for (const c of [...callers, ...bad])
      expect([c.name, params.includes(`p-${c.name}`)]).toEqual([c.name, c.mayUpdate === true]);
  }, 300_000);

  it('serves the health Watch stream without credentials, as HTTP /health', async () => {
    const metadata = new grpc.Metadata();
    const code = await new Promise<number>((resolve) => {
      const s = client.makeServerStreamRequest(
        '/grpc.health.v1.Health/Watch',
        raw,
        raw,
        Buffer.alloc(0),
        metadata,
      );
      s.on('data', () => {
        s.cancel();
      });
      s.on('error', () => undefined);
      s.on('status', (st: grpc.StatusObject) => resolve(st.code));
    });
    // the first update arrived (then the client cancelled): not UNAUTHENTICATED
    expect(code).toBe(grpc.status.CANCELLED);
  });

  it('keeps serving while bad credentials of every kind arrive at once, and counts no write from them', async () => {
    const method = '/ledgerflow.tracking.v1.MetricIngestService/LogParams';
    const handler = servedMethods().get(method)!;
    const storm = Array.from({ length: 5 }, () => bad)
      .flat()
      .map((b, i) =>
        invoke(method, handler, CASES[method]!.request(`storm-${i}`), b.authorization),
      );
    const owner = callers.find((c) => c.name === 'owner')!;
    const [first, ...rest] = await Promise.all([
      invoke(method, handler, CASES[method]!.request('during-storm'), owner.authorization),
      ...storm,
    ]);
    expect(first).toBe(grpc.status.OK);
    expect(new Set(rest)).toEqual(new Set([grpc.status.UNAUTHENTICATED]));
    const got = await call(server, 'GET', '/api/2.0/mlflow/runs/get', owner.authorization, {
      run_id: runId,
    });
    const params = (
      (got.json['run'] as { data: { params?: { key: string }[] } }).data.params ?? []
    ).map((p) => p.key);
    expect(params).toContain('p-during-storm');
    expect(params.filter((k) => k.startsWith('p-storm-'))).toEqual([]);
  });
});
