import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it("defaults to MLflow's address and ./ledgerflow-data", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      host: '127.0.0.1',
      port: 5000,
      sqliteSynchronous: 'full',
      truncateLongValues: true,
    });
    expect(c.dataDir.endsWith('ledgerflow-data')).toBe(true);
  });

  it('takes env, and CLI overrides over env', () => {
    expect(loadConfig({ PORT: '6000' }).port).toBe(6000);
    expect(loadConfig({ LEDGERFLOW_PORT: '7000', PORT: '6000' }).port).toBe(7000);
    expect(loadConfig({ LEDGERFLOW_PORT: '7000' }, { port: 8000 }).port).toBe(8000);
  });

  it('names the variable that is wrong', () => {
    expect(() => loadConfig({ LEDGERFLOW_PORT: 'abc' })).toThrow(
      new ConfigError("LEDGERFLOW_PORT must be a port number 0-65535, got 'abc'"),
    );
    expect(() => loadConfig({ LEDGERFLOW_SQLITE_SYNCHRONOUS: 'off' })).toThrow(
      /LEDGERFLOW_SQLITE_SYNCHRONOUS/,
    );
    expect(() => loadConfig({ LEDGERFLOW_TRUNCATE_LONG_VALUES: 'maybe' })).toThrow(
      /LEDGERFLOW_TRUNCATE_LONG_VALUES/,
    );
  });
});

describe('loadConfig auth settings', () => {
  it('reads the trusted proxies whose X-Forwarded-For names the client', () => {
    expect(loadConfig({}).auth.trustedProxies).toBeUndefined();
    expect(
      loadConfig({ LEDGERFLOW_TRUSTED_PROXIES: '127.0.0.1, 10.0.0.0/8,::1' }).auth.trustedProxies,
    ).toEqual(['127.0.0.1', '10.0.0.0/8', '::1']);
    expect(() => loadConfig({ LEDGERFLOW_TRUSTED_PROXIES: 'nginx' })).toThrow(
      /LEDGERFLOW_TRUSTED_PROXIES/,
    );
  });

  it('is off by default with READ as default permission and MANAGE for creators', () => {
    expect(loadConfig({}).auth).toMatchObject({
      mode: 'off',
      defaultPermission: 'READ',
      creatorPermission: 'MANAGE',
      adminUsername: 'admin',
      adminPassword: undefined,
    });
  });

  it('takes mode, permissions and admin from env, and rejects bad values', () => {
    const auth = loadConfig({
      LEDGERFLOW_AUTH: 'basic',
      LEDGERFLOW_AUTH_DEFAULT_PERMISSION: 'no_permissions',
      LEDGERFLOW_AUTH_CREATOR_PERMISSION: 'EDIT',
      LEDGERFLOW_ADMIN_USERNAME: 'root',
      LEDGERFLOW_ADMIN_PASSWORD: 'a-long-enough-secret',
    }).auth;
    expect(auth).toMatchObject({
      mode: 'basic',
      defaultPermission: 'NO_PERMISSIONS',
      creatorPermission: 'EDIT',
      adminUsername: 'root',
    });
    expect(() => loadConfig({ LEDGERFLOW_AUTH: 'kerberos' })).toThrow(/LEDGERFLOW_AUTH/);
    expect(() => loadConfig({ LEDGERFLOW_AUTH_DEFAULT_PERMISSION: 'ALL' })).toThrow(
      /LEDGERFLOW_AUTH_DEFAULT_PERMISSION/,
    );
    expect(() => loadConfig({ LEDGERFLOW_ADMIN_PASSWORD: 'short' })).toThrow(
      /LEDGERFLOW_ADMIN_PASSWORD/,
    );
  });
});
