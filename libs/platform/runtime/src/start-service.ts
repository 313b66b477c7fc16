import { Module, type DynamicModule, type Type } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Clock } from '@ledgerflow/contracts';
import { ConfigError, loadConfig, type LedgerflowConfig } from '@ledgerflow/config';
import type { EventStore } from '@ledgerflow/event-store';
import {
  ACCESS_CONTROL,
  registeredRoutes,
  type AccessControl,
  type RegisteredRoute,
} from '@ledgerflow/http';
import type { Projection } from '@ledgerflow/projections';
import { openEmbeddedPlatform } from './embedded-platform.js';
import { createHttpApp } from './http-app.js';
import { PlatformModule } from './platform.module.js';
import { LEDGERFLOW_VERSION } from './version.js';

export interface RunningServer {
  readonly url: string;
  readonly config: LedgerflowConfig;
  readonly app: NestFastifyApplication;
  /** Every HTTP route the server registered (method and pattern). */
  readonly routes: readonly RegisteredRoute[];
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

/**
 * The identity service's AccessControl, when a mounted module provides it. With auth on and none
 * provided the server refuses to start rather than run unprotected.
 */
function accessControlOf(
  app: NestFastifyApplication,
  config: LedgerflowConfig,
): AccessControl | undefined {
  let access: AccessControl | undefined;
  try {
    access = app.get<AccessControl>(ACCESS_CONTROL, { strict: false });
  } catch {
    access = undefined;
  }
  if (config.auth.mode !== 'off' && access === undefined)
    throw new ConfigError(
      `LEDGERFLOW_AUTH=${config.auth.mode} but this process mounts no identity module to check access`,
    );
  return access;
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
  let access: AccessControl | undefined;
  try {
    await platform.projections.start();
    app = await createHttpApp(RootModule.of(spec, platform, config), config.logLevel, () => access);
    access = accessControlOf(app, config);
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
  const routes = registeredRoutes(running.getHttpAdapter().getInstance());
  if (access?.enabled) {
    const missing = routes.filter((r) => r.method !== 'HEAD' && !access.hasRule(r.method, r.url));
    for (const r of missing) log(`no permission rule for ${r.method} ${r.url}: it is refused`);
  }
  return {
    url,
    config,
    app: running,
    routes,
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
