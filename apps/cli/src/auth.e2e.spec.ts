import { jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '@ledgerflow/config';
import type { RunningServer } from '@ledgerflow/runtime';
import { startEmbeddedServer } from './commands/server.js';
import { resetPassword } from './commands/users.js';
import { basic, call } from './testing/auth-client.js';
import { testServerConfig } from './testing/test-config.js';

const ADMIN = basic('admin', 'admin-password-123');

describe('authentication (auth on)', () => {
  let server: RunningServer;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-auth-'));
    server = await startEmbeddedServer(
      testServerConfig(path.join(dir, 'data'), {
        auth: {
          ...loadConfig({}).auth,
          mode: 'basic',
          adminPassword: 'admin-password-123',
          maxFailedLogins: 5,
        },
      }),
    );
    const alice = await call(server, 'POST', '/api/2.0/mlflow/users/create', ADMIN, {
      username: 'alice',
      password: 'alice-password-1',
    });
    expect(alice.status).toBe(200);
  });

  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets only /health and /ready (probes, no resource data) through anonymously', async () => {
    expect((await call(server, 'GET', '/health', undefined)).status).toBe(200);
    const ready = await call(server, 'GET', '/ready', undefined);
    expect(ready.status).toBe(200);
    expect(Object.keys(ready.json).sort()).toEqual(['checks', 'status']);
    expect(ready.text).not.toContain('alice');
    for (const [method, p] of [
      ['GET', '/version'],
      ['POST', '/api/2.0/mlflow/experiments/search'],
      ['GET', '/api/2.0/mlflow/experiments/get?experiment_id=0'],
      ['GET', '/no/such/route'],
    ] as const) {
      const res = await call(server, method, p, undefined, method === 'POST' ? {} : undefined);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Basic realm="mlflow"');
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    }
  });

  it('accepts basic credentials and records the user as the actor', async () => {
    const res = await call(
      server,
      'POST',
      '/api/2.0/mlflow/experiments/create',
      basic('alice', 'alice-password-1'),
      {
        name: 'alice-exp',
      },
    );
    expect(res.status).toBe(200);
    const events = await call(server, 'GET', '/api/2.0/ledgerflow/audit/export', ADMIN);
    const lines = events.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; metadata: { actor: string } });
    const created = lines.find(
      (l) => l.type === 'ExperimentCreated' && JSON.stringify(l).includes('alice-exp'),
    );
    expect(created?.metadata.actor).toBe('alice');
  });

  it('issues API tokens that work as Bearer credentials until revoked', async () => {
    const alice = basic('alice', 'alice-password-1');
    const created = await call(server, 'POST', '/api/2.0/ledgerflow/tokens/create', alice, {
      name: 'ci',
    });
    expect(created.status).toBe(200);
    const token = created.json['token'] as string;
    expect(token).toMatch(/^lft_/);
    const bearer = `Bearer ${token}`;
    expect((await call(server, 'GET', '/api/2.0/mlflow/users/current', bearer)).json).toMatchObject(
      {
        user: { username: 'alice' },
      },
    );
    const listed = await call(server, 'GET', '/api/2.0/ledgerflow/tokens/list', alice);
    expect(JSON.stringify(listed.json)).not.toContain(token.slice(-20));
    const tokenId = (created.json['token_info'] as { token_id: string }).token_id;
    expect(
      (
        await call(server, 'POST', '/api/2.0/ledgerflow/tokens/revoke', alice, {
          token_id: tokenId,
        })
      ).status,
    ).toBe(200);
    expect((await call(server, 'GET', '/api/2.0/mlflow/users/current', bearer)).status).toBe(401);
  });
});

describe('admin bootstrap and offline password reset', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-auth-bootstrap-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const start = () =>
    startEmbeddedServer(
      testServerConfig(path.join(dir, 'data'), {
        auth: { ...loadConfig({}).auth, mode: 'basic', adminPassword: undefined },
      }),
    );

  it('generates the first admin password, prints it once, and never uses a default', async () => {
    const printed: string[] = [];
    const spy = jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
      printed.push(args.map(String).join(' '));
    });
    let server: RunningServer | undefined;
    try {
      server = await start();
    } finally {
      spy.mockRestore();
    }
    const line = printed.find((l) => l.includes("created admin user 'admin' with password:"));
    const password = /with password: (\S+)/.exec(line ?? '')?.[1];
    expect(password).toMatch(/^[\w-]{24}$/);
    expect(
      (await call(server, 'GET', '/api/2.0/mlflow/users/current', basic('admin', password!)))
        .status,
    ).toBe(200);
    for (const guess of ['password', 'password1234', 'admin'])
      expect((await call(server, 'GET', '/version', basic('admin', guess))).status).toBe(401);
    await server.close();

    // a restart keeps the admin and prints nothing
    const again: string[] = [];
    const spy2 = jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
      again.push(args.map(String).join(' '));
    });
    try {
      server = await start();
    } finally {
      spy2.mockRestore();
    }
    expect(again.join('\n')).not.toContain('password');
    expect((await call(server, 'GET', '/version', basic('admin', password!))).status).toBe(200);
    await server.close();

    // lost it: `ledgerflow users reset-password admin --admin` with the server stopped
    process.env['LEDGERFLOW_NEW_PASSWORD'] = 'recovered-password-1';
    const logged = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      expect(
        await resetPassword({ username: 'admin', admin: true, dataDir: path.join(dir, 'data') }),
      ).toBe(0);
    } finally {
      logged.mockRestore();
      delete process.env['LEDGERFLOW_NEW_PASSWORD'];
    }
    server = await start();
    expect(
      (await call(server, 'GET', '/version', basic('admin', 'recovered-password-1'))).status,
    ).toBe(200);
    expect((await call(server, 'GET', '/version', basic('admin', password!))).status).toBe(401);
    await server.close();
  });
});
