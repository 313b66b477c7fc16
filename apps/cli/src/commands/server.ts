import { ConfigError, loadConfig, type LedgerflowConfig } from '@ledgerflow/config';
import { createHttpApp, LEDGERFLOW_VERSION, openEmbeddedPlatform } from '@ledgerflow/runtime';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { EmbeddedModule } from '../embedded.module.js';
import { ALL_PROJECTIONS } from '../projections.js';

export interface RunningServer {
  readonly url: string;
  readonly config: LedgerflowConfig;
  readonly app: NestFastifyApplication;
  close(): Promise<void>;
}

/** Starts the embedded server: opens the data dir, catches read models up, then listens. */
export async function startEmbeddedServer(config: LedgerflowConfig): Promise<RunningServer> {
  const log = (m: string): void => {
    if (config.logLevel !== 'error') console.error(`[ledgerflow] ${m}`);
  };
  const platform = openEmbeddedPlatform(config, ALL_PROJECTIONS, log);
  await platform.projections.start();
  const app = await createHttpApp(EmbeddedModule.forRoot(platform, config), config.logLevel);
  await app.listen({ host: config.host, port: config.port });
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  let closed = false;
  return {
    url,
    config,
    app,
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      await platform.close();
    },
  };
}

/** `ledgerflow server`. */
export async function runServer(opts: { host?: string; port?: number; dataDir?: string }): Promise<void> {
  let config: LedgerflowConfig;
  try {
    config = loadConfig(process.env, opts);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`ledgerflow: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  const server = await startEmbeddedServer(config);
  console.error(`Ledgerflow ${LEDGERFLOW_VERSION} (embedded) listening on ${server.url}, data in ${config.dataDir}`);
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
