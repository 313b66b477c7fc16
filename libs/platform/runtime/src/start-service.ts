import { Module, type DynamicModule, type Type } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Clock } from '@ledgerflow/contracts';
import { ConfigError, loadConfig, type LedgerflowConfig } from '@ledgerflow/config';
import type { EventStore } from '@ledgerflow/event-store';
import type { Projection } from '@ledgerflow/projections';
import { openEmbeddedPlatform } from './embedded-platform.js';
import { createHttpApp } from './http-app.js';
import { PlatformModule } from './platform.module.js';
import { LEDGERFLOW_VERSION } from './version.js';

export interface RunningServer {
  readonly url: string;
  readonly config: LedgerflowConfig;
  readonly app: NestFastifyApplication;
  close(): Promise<void>;
}

export interface ServiceSpec {
  /** Feature modules to mount (one service, or all four in embedded mode). */
  readonly modules: readonly Type[];
  /** Read models those modules query. */
  readonly projections: readonly Projection[];
}

@Module({})
class RootModule {
  static of(
    spec: ServiceSpec,
    platform: ReturnType<typeof openEmbeddedPlatform>,
    config: LedgerflowConfig,
  ): DynamicModule {
    return {
      module: RootModule,
      imports: [PlatformModule.forRoot(platform, config), ...spec.modules],
    };
  }
}

/** Opens the data dir, catches the read models up, then listens. */
export async function startService(
  spec: ServiceSpec,
  config: LedgerflowConfig,
  options: {
    wrapEventStore?: (store: EventStore) => EventStore;
    /** Drives time for tests (events' occurredAt, expiries); the wall clock when omitted. */
    clock?: Clock;
  } = {},
): Promise<RunningServer> {
  const log = (m: string): void => {
    if (config.logLevel !== 'error') console.error(`[ledgerflow] ${m}`);
  };
  const platform = openEmbeddedPlatform(
    config,
    spec.projections,
    log,
    options.wrapEventStore,
    options.clock,
  );
  let app: NestFastifyApplication | undefined;
  try {
    await platform.projections.start();
    app = await createHttpApp(RootModule.of(spec, platform, config), config.logLevel);
    await app.listen({ host: config.host, port: config.port });
  } catch (e) {
    await app?.close();
    await platform.close();
    throw e;
  }
  const address: unknown = app.getHttpServer().address();
  const port =
    typeof address === 'object' && address !== null && 'port' in address
      ? Number(address.port)
      : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  let closed = false;
  const running = app;
  return {
    url,
    config,
    app: running,
    async close() {
      if (closed) return;
      closed = true;
      await running.close();
      await platform.close();
    },
  };
}

/** A process main: reads config from env and flags, starts, and stops cleanly on SIGINT/SIGTERM. */
export async function runServiceMain(
  name: string,
  spec: ServiceSpec,
  overrides: { host?: string; port?: number; dataDir?: string; grpcPort?: number } = {},
): Promise<void> {
  let config: LedgerflowConfig;
  try {
    config = loadConfig(process.env, overrides);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`ledgerflow: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  const server = await startService(spec, config);
  console.error(
    `Ledgerflow ${LEDGERFLOW_VERSION} (${name}) listening on ${server.url}, data in ${config.dataDir}`,
  );
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
