import { runServiceMain } from '@ledgerflow/runtime';
import { EMBEDDED } from '@ledgerflow/service-embedded';

export { startEmbeddedServer } from '@ledgerflow/service-embedded';

/** `ledgerflow server`. */
export async function runServer(opts: {
  host?: string;
  port?: number;
  dataDir?: string;
  grpcPort?: number;
}): Promise<void> {
  await runServiceMain('embedded', EMBEDDED, opts);
}
