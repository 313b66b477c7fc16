import { runServiceMain } from '@ledgerflow/runtime';
import { EMBEDDED, isServiceName, SERVICE_NAMES, SERVICES } from '@ledgerflow/service-embedded';

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

/** `ledgerflow service <name>`: one service in its own process. */
export async function runService(
  name: string,
  opts: { host?: string; port?: number; dataDir?: string; grpcPort?: number },
): Promise<void> {
  if (!isServiceName(name)) {
    console.error(`ledgerflow: unknown service '${name}' (one of ${SERVICE_NAMES.join(', ')})`);
    process.exit(2);
  }
  await runServiceMain(name, SERVICES[name], opts);
}
