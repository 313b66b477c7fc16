import * as grpc from '@grpc/grpc-js';
import { MlflowError, type EventMetadata } from '@ledgerflow/contracts';
import { startGrpcServer, type RunningGrpcServer } from './grpc-call.js';
import { CachingIdentityAccess } from './identity-access.cache.js';
import { GrpcIdentityAccess, identityAccessBinding } from './identity-access.grpc.js';
import type { GrantResourceType, IdentityAccess, IdentityAuthResult, UserGrants } from './ports.js';
import { GrpcTrackingLookup, trackingLookupBinding } from './tracking-lookup.grpc.js';

const TOKEN = 'a-service-token-for-the-test-1234';
const ALICE = `Basic ${Buffer.from('alice:right-password-1').toString('base64')}`;

/** The identity module's answers, as a table the test changes (what registry-governance knows). */
class TableIdentity implements IdentityAccess {
  passwords = new Map([['alice', 'right-password-1']]);
  admins = new Set<string>();
  lockedOut = new Set<string>();
  permissions = new Map<string, string>();
  authCalls = 0;
  permissionCalls = 0;
  readonly created: { username: string; type: string; id: string; meta: EventMetadata }[] = [];
  readonly moved: { type: string; from: string; to: string; meta: EventMetadata }[] = [];

  authenticate(authorization: string | undefined, client: string): Promise<IdentityAuthResult> {
    this.authCalls++;
    if (authorization === undefined || !authorization.startsWith('Basic '))
      return Promise.resolve({ ok: false, status: 401 });
    const [user = '', password] = Buffer.from(authorization.slice(6), 'base64')
      .toString()
      .split(':');
    if (this.lockedOut.has(user) || client === 'locked-address')
      return Promise.resolve({ ok: false, status: 429, retryAfterSeconds: 42 });
    if (this.passwords.get(user) !== password) return Promise.resolve({ ok: false, status: 401 });
    return Promise.resolve({
      ok: true,
      principal: { username: user, isAdmin: this.admins.has(user) },
    });
  }

  permissionOf(username: string, type: GrantResourceType, id: string): Promise<string> {
    this.permissionCalls++;
    return Promise.resolve(this.permissions.get(`${username}/${type}/${id}`) ?? 'READ');
  }

  userGrants(username: string, type: GrantResourceType): Promise<UserGrants> {
    return Promise.resolve({
      own: [...this.permissions.entries()]
        .filter(([k]) => k.startsWith(`${username}/${type}/`))
        .map(([k, permission]) => ({ resourceId: k.split('/')[2]!, permission })),
      viaGroups: [{ resourceId: '9', permission: 'EDIT' }],
      defaultPermission: 'NO_PERMISSIONS',
    });
  }

  grantCreator(
    username: string,
    type: GrantResourceType,
    id: string,
    meta: EventMetadata,
  ): Promise<void> {
    this.created.push({ username, type, id, meta });
    this.permissions.set(`${username}/${type}/${id}`, 'MANAGE');
    return Promise.resolve();
  }

  moveGrants(type: GrantResourceType, from: string, to: string, meta: EventMetadata) {
    this.moved.push({ type, from, to, meta });
    return Promise.resolve();
  }
}

describe('IdentityAccess over gRPC', () => {
  let server: RunningGrpcServer;
  let table: TableIdentity;
  let client: GrpcIdentityAccess;

  beforeAll(async () => {
    table = new TableIdentity();
    server = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      bindings: [identityAccessBinding(table, () => undefined)],
      serviceToken: TOKEN,
    });
    client = new GrpcIdentityAccess(`127.0.0.1:${server.port}`, 5000, TOKEN);
  });

  afterAll(async () => {
    client.close();
    await server.close();
  });

  it('authenticates: the principal, 401 for bad credentials, 429 with the wait', async () => {
    await expect(client.authenticate(ALICE, '10.0.0.1')).resolves.toEqual({
      ok: true,
      principal: { username: 'alice', isAdmin: false },
    });
    const wrong = `Basic ${Buffer.from('alice:wrong').toString('base64')}`;
    await expect(client.authenticate(wrong, '10.0.0.1')).resolves.toEqual({
      ok: false,
      status: 401,
    });
    await expect(client.authenticate(undefined, '10.0.0.1')).resolves.toEqual({
      ok: false,
      status: 401,
    });
    await expect(client.authenticate(ALICE, 'locked-address')).resolves.toEqual({
      ok: false,
      status: 429,
      retryAfterSeconds: 42,
    });
  });

  it('answers permissions and grants; writes grants with the caller as actor', async () => {
    table.permissions.set('alice/experiment/7', 'EDIT');
    await expect(client.permissionOf('alice', 'experiment', '7')).resolves.toBe('EDIT');
    await expect(client.permissionOf('alice', 'registered_model', 'm')).resolves.toBe('READ');
    await expect(client.userGrants('alice', 'experiment')).resolves.toEqual({
      own: [{ resourceId: '7', permission: 'EDIT' }],
      viaGroups: [{ resourceId: '9', permission: 'EDIT' }],
      defaultPermission: 'NO_PERMISSIONS',
    });
    const meta = { actor: 'alice', correlationId: 'req-1', causationId: null };
    await client.grantCreator('alice', 'experiment', '12', meta);
    await client.moveGrants('registered_model', 'a', 'b', { ...meta, actor: 'bob' });
    expect(table.created).toEqual([{ username: 'alice', type: 'experiment', id: '12', meta }]);
    expect(table.moved).toEqual([
      { type: 'registered_model', from: 'a', to: 'b', meta: { ...meta, actor: 'bob' } },
    ]);
    const bad = await client
      .permissionOf('alice', 'run' as GrantResourceType, 'x')
      .catch((e: unknown) => e);
    expect((bad as MlflowError).code).toBe('INVALID_PARAMETER_VALUE');
  });

  it('refuses calls without the service token, or with a wrong one', async () => {
    for (const token of [undefined, 'a-wrong-token-of-enough-length']) {
      const intruder = new GrpcIdentityAccess(`127.0.0.1:${server.port}`, 5000, token);
      const calls = table.authCalls;
      const e = await intruder.authenticate(ALICE, '10.0.0.1').catch((x: unknown) => x);
      const grant = await intruder
        .grantCreator('mallory', 'experiment', '7', {
          actor: 'mallory',
          correlationId: 'x',
          causationId: null,
        })
        .catch((x: unknown) => x);
      intruder.close();
      expect(e).toBeInstanceOf(MlflowError);
      expect(grant).toBeInstanceOf(MlflowError);
      expect(table.authCalls).toBe(calls);
      expect(table.created.some((c) => c.username === 'mallory')).toBe(false);
    }
    // the raw status is UNAUTHENTICATED (the lookups' listener guards them the same way)
    const raw = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const code = await new Promise<number>((resolve) =>
      raw.makeUnaryRequest(
        '/ledgerflow.identity.v1.IdentityAccessService/Authenticate',
        (x: Buffer) => x,
        (x: Buffer) => x,
        Buffer.alloc(0),
        (err) => resolve(err?.code ?? 0),
      ),
    );
    raw.close();
    expect(code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('guards the lookups the same way: a client with the token is answered, one without is not', async () => {
    const guarded = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      bindings: [
        trackingLookupBinding(
          {
            sharesLog: false,
            run: () => Promise.resolve(undefined),
            loggedModel: () => Promise.resolve(undefined),
            experiment: () => Promise.resolve(undefined),
            experimentByName: () => Promise.resolve(undefined),
            linkModelVersion: () => Promise.resolve(),
          },
          () => undefined,
        ),
      ],
      serviceToken: TOKEN,
    });
    const withToken = new GrpcTrackingLookup(`127.0.0.1:${guarded.port}`, 5000, TOKEN);
    const without = new GrpcTrackingLookup(`127.0.0.1:${guarded.port}`, 5000);
    await expect(withToken.run('r')).resolves.toBeUndefined();
    const e = await without.run('r').catch((x: unknown) => x);
    withToken.close();
    without.close();
    await guarded.close();
    expect(e).toBeInstanceOf(MlflowError);
    expect((e as MlflowError).message).toMatch(/LEDGERFLOW_SERVICE_TOKEN/);
  });
});

describe('CachingIdentityAccess', () => {
  let now = 1_000_000;
  const clock = () => now;

  it('trusts a success for the TTL, keyed by a digest; never caches failures', async () => {
    const table = new TableIdentity();
    const cache = new CachingIdentityAccess(table, 5000, () => undefined, clock);
    await expect(cache.authenticate(ALICE, 'a')).resolves.toMatchObject({ ok: true });
    await cache.authenticate(ALICE, 'b');
    expect(table.authCalls).toBe(1);
    // the password changes: the cached success holds until the TTL ends, not a moment longer
    table.passwords.set('alice', 'new-password-99');
    now += 4999;
    await expect(cache.authenticate(ALICE, 'a')).resolves.toMatchObject({ ok: true });
    now += 1;
    await expect(cache.authenticate(ALICE, 'a')).resolves.toEqual({ ok: false, status: 401 });
    await expect(cache.authenticate(ALICE, 'a')).resolves.toEqual({ ok: false, status: 401 });
    expect(table.authCalls).toBe(3);
    // the raw secret (or its base64) is not among the cache's keys or values
    await cache.authenticate(
      `Basic ${Buffer.from('alice:new-password-99').toString('base64')}`,
      'a',
    );
    const held = (cache as unknown as { authenticated: { entries: Map<string, unknown> } })
      .authenticated.entries;
    expect(held.size).toBe(1);
    const dump = JSON.stringify([...held.entries()]);
    expect(dump).not.toContain('new-password-99');
    expect(dump).not.toContain(Buffer.from('alice:new-password-99').toString('base64'));
  });

  it('shares one call among concurrent identical authentications', async () => {
    const table = new TableIdentity();
    const cache = new CachingIdentityAccess(table, 5000, () => undefined, clock);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => cache.authenticate(ALICE, 'a')),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect(table.authCalls).toBe(1);
  });

  it('fails closed with 503 and Retry-After when identity cannot answer', async () => {
    const logged: string[] = [];
    const down = new GrpcIdentityAccess('127.0.0.1:1', 200, TOKEN);
    const cache = new CachingIdentityAccess(down, 5000, (m) => logged.push(m), clock);
    await expect(cache.authenticate(ALICE, 'a')).resolves.toEqual({
      ok: false,
      status: 503,
      retryAfterSeconds: 5,
    });
    const e = await cache.permissionOf('alice', 'experiment', '7').catch((x: unknown) => x);
    down.close();
    expect((e as MlflowError).code).toBe('TEMPORARILY_UNAVAILABLE');
    expect(logged.join('\n')).toMatch(/identity service unreachable/);
  });

  it('caches permissions for the TTL; fresh asks again; a creator grant drops the entry', async () => {
    const table = new TableIdentity();
    const cache = new CachingIdentityAccess(table, 5000, () => undefined, clock);
    table.permissions.set('alice/experiment/7', 'EDIT');
    await cache.permissionOf('alice', 'experiment', '7');
    table.permissions.set('alice/experiment/7', 'NO_PERMISSIONS');
    await expect(cache.permissionOf('alice', 'experiment', '7')).resolves.toBe('EDIT');
    await expect(cache.permissionOf('alice', 'experiment', '7', { fresh: true })).resolves.toBe(
      'NO_PERMISSIONS',
    );
    now += 5000;
    await cache.permissionOf('alice', 'experiment', '8');
    const meta = { actor: 'alice', correlationId: 'c', causationId: null };
    await cache.grantCreator('alice', 'experiment', '8', meta);
    await expect(cache.permissionOf('alice', 'experiment', '8')).resolves.toBe('MANAGE');
  });

  it('with TTL 0 caches nothing', async () => {
    const table = new TableIdentity();
    const cache = new CachingIdentityAccess(table, 0, () => undefined, clock);
    await cache.authenticate(ALICE, 'a');
    await cache.authenticate(ALICE, 'a');
    expect(table.authCalls).toBe(2);
    expect(cache.cachedAuthentications).toBe(0);
  });
});
