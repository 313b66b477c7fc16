import type { LedgerflowConfig } from '@ledgerflow/config';
import { runServiceMain, startService, type RunningServer } from '@ledgerflow/runtime';
import { EMBEDDED } from '../embedded.js';

/** Starts the embedded server (every service in one process) with this configuration. */
export function startEmbeddedServer(
  config: LedgerflowConfig,
  options: Parameters<typeof startService>[2] = {},
): Promise<RunningServer> {
  return startService(EMBEDDED, config, options);
}

/** `ledgerflow server`. */
export async function runServer(opts: {
  host?: string;
  port?: number;
  dataDir?: string;
}): Promise<void> {
  await runServiceMain('embedded', EMBEDDED, opts);
}
