import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '@ledgerflow/config';
import { loadDistributedConfig, startService } from '@ledgerflow/runtime';
import { SERVICES } from '@ledgerflow/service-embedded';
import { testServerConfig } from './testing/test-config.js';

const authOn = { ...loadConfig({}).auth, mode: 'basic' as const, adminPassword: 'a-long-secret-1' };

/** Services that do not mount the identity module, with auth on, never run unprotected. */
describe('a service without the identity module, with auth on', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-service-auth-'));
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(['tracking-ingest', 'artifact-store', 'deployment'] as const)(
    'refuses to start alone in embedded mode (%s: no identity to ask)',
    async (name) => {
      const config = testServerConfig(path.join(dir, name), { auth: authOn });
      const started = startService(SERVICES[name], config);
      await expect(started).rejects.toThrow(ConfigError);
      await expect(started).rejects.toThrow(/mounts no identity module/);
    },
  );

  it('starts alone in embedded mode with auth off (nothing to check)', async () => {
    const server = await startService(
      SERVICES['tracking-ingest'],
      testServerConfig(path.join(dir, 'off')),
    );
    try {
      const res = await fetch(`${server.url}/api/2.0/mlflow/experiments/search?max_results=1`);
      expect(res.status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it.each(['tracking-ingest', 'registry-governance'] as const)(
    'refuses to start in distributed mode without LEDGERFLOW_SERVICE_TOKEN (%s)',
    async (name) => {
      const distributed = loadDistributedConfig(
        // nothing listens there: the check comes before any engine is opened
        { LEDGERFLOW_MONGO_URL: 'mongodb://127.0.0.1:1/', LEDGERFLOW_KAFKA_BROKERS: '127.0.0.1:1' },
        name,
      );
      const config = testServerConfig(path.join(dir, `d-${name}`), { auth: authOn });
      const started = startService(SERVICES[name], config, { distributed });
      await expect(started).rejects.toThrow(ConfigError);
      await expect(started).rejects.toThrow(/LEDGERFLOW_SERVICE_TOKEN/);
    },
  );
});
