import { loadConfig, type LedgerflowConfig } from '@ledgerflow/config';

/**
 * Configuration of an in-process test server: free ports (HTTP and gRPC), quiet logs, and the
 * faster `synchronous=normal` log (the tests kill processes, not power).
 */
export function testServerConfig(
  dataDir: string,
  overrides: Partial<LedgerflowConfig> = {},
): LedgerflowConfig {
  return {
    ...loadConfig({}),
    port: 0,
    grpcPort: 0,
    dataDir,
    logLevel: 'error',
    sqliteSynchronous: 'normal',
    ...overrides,
  };
}
