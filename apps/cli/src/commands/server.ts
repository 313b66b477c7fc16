import type { LedgerflowConfig } from '@ledgerflow/config';
import { runServiceMain, startService, type RunningServer } from '@ledgerflow/runtime';
import { EMBEDDED } from '../embedded.js';

/** Starts the embedded server (every service in one process) with this configuration. */
export function startEmbeddedServer(config: LedgerflowConfig): Promise<RunningServer> {
  return startService(EMBEDDED, config);
}

/** `ledgerflow server`. */
export async function runServer(opts: {
  host?: string;
  port?: number;
  dataDir?: string;
}): Promise<void> {
  await runServiceMain('embedded', EMBEDDED, opts);
}
