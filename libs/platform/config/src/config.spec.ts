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
