import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '@ledgerflow/config';
import type { RunningServer } from '@ledgerflow/runtime';
import { startEmbeddedServer } from './commands/server.js';
import { basic } from './testing/auth-client.js';
import { testServerConfig } from './testing/test-config.js';

const ADMIN_PASSWORD = 'proxy-admin-password';
const MAX_FAILED = 2;

/**
 * Behind nginx every request comes from nginx's address. With LEDGERFLOW_TRUSTED_PROXIES naming it,
 * the failed-login limit per address counts each client (X-Forwarded-For), so one client guessing
 * passwords does not lock every other client out.
 */
describe.each([
  ['with the proxy trusted', ['127.0.0.1', '::1', '::ffff:127.0.0.1'], true],
  ['without', undefined, false],
] as const)('failed-login limit per client address behind a proxy (%s)', (_, proxies, split) => {
  let server: RunningServer;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-proxies-'));
    server = await startEmbeddedServer(
      testServerConfig(path.join(dir, 'data'), {
        auth: {
          ...loadConfig({}).auth,
          mode: 'basic',
          adminPassword: ADMIN_PASSWORD,
          maxFailedLogins: MAX_FAILED,
          failedLoginWindowMs: 60_000,
          ...(proxies === undefined ? {} : { trustedProxies: proxies }),
        },
      }),
    );
  });

  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const search = (auth: string, forwardedFor: string) =>
    fetch(`${server.url}/api/2.0/mlflow/experiments/search?max_results=1`, {
      headers: { authorization: auth, 'x-forwarded-for': forwardedFor },
    });

  it('locks out the guessing address; other clients only when the proxy is trusted', async () => {
    // distinct user names, so only the per-address limit (10x per user) is reached
    const statuses: number[] = [];
    for (let i = 0; i < MAX_FAILED * 10 + 1; i++)
      statuses.push((await search(basic(`guess-${i}`, 'wrong-password-1'), '10.0.0.1')).status);
    expect(statuses.at(-1)).toBe(429);
    const other = await search(basic('admin', ADMIN_PASSWORD), '10.0.0.2');
    expect(other.status).toBe(split ? 200 : 429);
    // the guessing address stays locked out, even with right credentials
    const same = await search(basic('admin', ADMIN_PASSWORD), '10.0.0.1');
    expect(same.status).toBe(429);
  });
});
