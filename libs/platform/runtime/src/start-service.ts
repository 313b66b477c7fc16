import { Global, Module, type DynamicModule, type Provider, type Type } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Clock } from '@ledgerflow/contracts';
import { ConfigError, loadConfig, type LedgerflowConfig } from '@ledgerflow/config';
import type { EventStore } from '@ledgerflow/event-store';
import { BusProjectionRunner, eventsTopic } from '@ledgerflow/kafka';
import {
  ACCESS_CONTROL,
  registeredRoutes,
  type AccessControl,
  type RegisteredRoute,
} from '@ledgerflow/http';
import type { Projection } from '@ledgerflow/projections';
import {
  CachingIdentityAccess,
  GrpcIdentityAccess,
  GrpcRegistryLookup,
  GrpcTrackingLookup,
  IDENTITY_ACCESS,
  IDENTITY_CALL_DEADLINE_MS,
  identityAccessBinding,
  REGISTRY_LOOKUP,
  registryLookupBinding,
  startGrpcServer,
  TRACKING_LOOKUP,
  trackingLookupBinding,
  type GrpcServiceBinding,
  type IdentityAccess,
  type RegistryLookup,
  type RunningGrpcServer,
  type TrackingLookup,
} from '@ledgerflow/service-calls';
import {
  createLogger,
  installHttpTelemetry,
  LedgerflowMetrics,
  setupTracing,
  tracedProjection,
  tracingEnabled,
} from '@ledgerflow/telemetry';
import {
  loadDistributedConfig,
  modeOf,
  serviceAddresses,
  type DistributedConfig,
  type ServiceAddresses,
} from './distributed-config.js';
import { openDistributedPlatform, type DistributedPlatform } from './distributed-platform.js';
import { openEmbeddedPlatform } from './embedded-platform.js';
import { createHttpApp } from './http-app.js';
import { PlatformModule, type PlatformPorts } from './platform.module.js';
import type { ReadinessCheck, ReadinessProbe } from './readiness.js';
import { LEDGERFLOW_VERSION } from './version.js';

export interface RunningServer {
  readonly url: string;
  readonly config: LedgerflowConfig;
  readonly app: NestFastifyApplication;
  /** Every HTTP route the server registered (method and pattern). */
  readonly routes: readonly RegisteredRoute[];
  close(): Promise<void>;
}

/** A question one service answers for the others (a port with an in-process and a gRPC adapter). */
export type LookupPort = 'tracking' | 'registry' | 'identity';

export interface ServiceSpec {
  /** Feature modules to mount (one service, or all four in embedded mode). */
  readonly modules: readonly Type[];
  /** Read models those modules query. */
  readonly projections: readonly Projection[];
  /** The service's name (`tracking-ingest`): its database in distributed mode, its spans' service. */
  readonly name?: string;
  /** Bounded context of its log (`tracking`): the Kafka topic `ledgerflow.<context>.events.v1`. */
  readonly context?: string;
  /** Lookups its modules answer, served to the other services over gRPC in distributed mode. */
  readonly serves?: readonly LookupPort[];
  /** Lookups its modules ask of other services (gRPC clients in distributed mode). */
  readonly asks?: readonly LookupPort[];
  /**
   * Read models this service builds from another service's events (distributed mode: consumed
   * from that context's Kafka topic, exactly once and in that log's order). Embedded mode, with one
   * shared log, lists the same projections among its own.
   */
  readonly consumes?: readonly ConsumedEvents[];
}

/** Another bounded context's events, and the read models built from them. */
export interface ConsumedEvents {
  /** The producing context (`registry`): its topic `ledgerflow.<context>.events.v1`. */
  readonly context: string;
  readonly projections: readonly Projection[];
}

/** Makes the remote lookups visible to every module of the process. */
@Global()
@Module({})
class RemoteLookupsModule {
  static of(providers: Provider[]): DynamicModule {
    return {
      module: RemoteLookupsModule,
      providers,
      exports: providers.map((p) => (p as { provide: symbol }).provide),
    };
  }
}

@Module({})
class RootModule {
  static of(
    spec: ServiceSpec,
    platform: PlatformPorts,
    config: LedgerflowConfig,
    remote: Provider[] = [],
    readiness?: ReadinessProbe,
  ): DynamicModule {
    return {
      module: RootModule,
      imports: [
        PlatformModule.forRoot(platform, config, readiness),
        ...(remote.length > 0 ? [RemoteLookupsModule.of(remote)] : []),
        ...spec.modules,
      ],
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
    // through ModuleRef: the app's own get() exits the process on an unknown token (abortOnError)
    access = app.get(ModuleRef).get<AccessControl>(ACCESS_CONTROL, { strict: false });
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
    /** Distributed mode: MongoDB, Kafka and gRPC instead of SQLite and in-process calls. */
    distributed?: DistributedConfig;
    /** Where the lookups the spec asks are answered (default: from env). */
    addresses?: ServiceAddresses;
  } = {},
): Promise<RunningServer> {
  const log = (m: string): void => {
    if (config.logLevel !== 'error') console.error(`[ledgerflow] ${m}`);
  };
  if (options.distributed !== undefined) {
    // a service in a cluster logs pino JSON lines (with trace ids) for the log collector
    const logger = createLogger({
      service: spec.name ?? 'ledgerflow',
      level: config.logLevel,
      destination: 'stderr',
    });
    return startDistributedService(
      spec,
      config,
      options.distributed,
      (m) => logger.info(m),
      options.clock,
    );
  }
  const platform = openEmbeddedPlatform(
    config,
    withProjectionSpans(spec.projections),
    log,
    options.wrapEventStore,
    options.clock,
  );
  const metrics = new LedgerflowMetrics();
  metrics.observeCheckpoints(() => platform.projections.status());
  metrics.observeReadYourWrites(() => platform.projections.readYourWritesTimeouts);
  metrics.observeLogHead(() => platform.eventStore.headPosition());
  // a service run alone asks the others over gRPC (LEDGERFLOW_TRACKING_GRPC_ADDRESS, ...)
  const { clients, providers: remote } = remoteLookups(
    spec,
    options.addresses ?? serviceAddresses(process.env),
  );
  let app: NestFastifyApplication | undefined;
  let access: AccessControl | undefined;
  try {
    await platform.projections.start();
    app = await createHttpApp(
      RootModule.of(spec, platform, config, remote),
      config.logLevel,
      () => access,
      (instance) => installHttpTelemetry(instance, { metrics }),
      config.auth.trustedProxies,
    );
    access = accessControlOf(app, config);
    await app.listen({ host: config.host, port: config.port });
  } catch (e) {
    await app?.close();
    for (const c of clients) c.close();
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
      for (const c of clients) c.close();
      await platform.close();
    },
  };
}

/**
 * With tracing on, each projection applies an event inside a span of the request that caused it
 * (same name, version and read model); without it, the projections as they are.
 */
function withProjectionSpans(projections: readonly Projection[]): readonly Projection[] {
  return tracingEnabled() ? projections.map(tracedProjection) : projections;
}

/**
 * With auth on, the identity service calls (who someone is, grants written) never go without the
 * shared secret: a distributed service that asks or serves them refuses to start without it.
 */
function checkServiceToken(
  spec: ServiceSpec,
  config: LedgerflowConfig,
  addresses: ServiceAddresses,
): void {
  const identity = spec.asks?.includes('identity') || spec.serves?.includes('identity');
  if (config.auth.mode !== 'off' && identity === true && addresses.serviceToken === undefined)
    throw new ConfigError(
      `LEDGERFLOW_AUTH=${config.auth.mode} in distributed mode needs LEDGERFLOW_SERVICE_TOKEN (the same secret in every service): access is checked by service calls to registry-governance`,
    );
}

/**
 * gRPC clients (and their Nest providers) for the lookups a service asks of the others. Access
 * checks are asked of identity only in distributed mode with auth on (`config` given): a service
 * run alone in embedded mode with auth on has no identity to ask and refuses to start.
 */
function remoteLookups(
  spec: ServiceSpec,
  addresses: ServiceAddresses,
  config?: LedgerflowConfig,
  log: (m: string) => void = () => undefined,
): { clients: { close(): void }[]; providers: Provider[] } {
  const clients: { close(): void }[] = [];
  const providers: Provider[] = [];
  const token = addresses.serviceToken;
  if (spec.asks?.includes('tracking')) {
    const client = new GrpcTrackingLookup(
      addresses.trackingAddress,
      addresses.callDeadlineMs,
      token,
    );
    clients.push(client);
    providers.push({ provide: TRACKING_LOOKUP, useValue: client });
  }
  if (spec.asks?.includes('registry')) {
    const client = new GrpcRegistryLookup(
      addresses.registryAddress,
      addresses.callDeadlineMs,
      token,
    );
    clients.push(client);
    providers.push({ provide: REGISTRY_LOOKUP, useValue: client });
  }
  if (config !== undefined && config.auth.mode !== 'off' && spec.asks?.includes('identity')) {
    const client = new GrpcIdentityAccess(
      addresses.identityAddress ?? addresses.registryAddress,
      Math.min(IDENTITY_CALL_DEADLINE_MS, addresses.callDeadlineMs),
      token,
    );
    clients.push(client);
    providers.push({
      provide: IDENTITY_ACCESS,
      useValue: new CachingIdentityAccess(client, addresses.authCacheMs ?? 5000, log),
    });
  }
  return { clients, providers };
}

/** The URL a listening app answers on. */
function urlOf(app: NestFastifyApplication, config: LedgerflowConfig): string {
  const address: unknown = app.getHttpServer().address();
  const port =
    typeof address === 'object' && address !== null && 'port' in address
      ? Number(address.port)
      : config.port;
  return `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
}

/**
 * One service in distributed mode: its MongoDB log and read models (caught up before it listens),
 * gRPC clients for the lookups it asks, HTTP with request telemetry and /metrics, a gRPC listener
 * for the lookups it answers, and the outbox publishing its log to Kafka.
 */
async function startDistributedService(
  spec: ServiceSpec,
  config: LedgerflowConfig,
  distributed: DistributedConfig,
  log: (m: string) => void,
  clock?: Clock,
): Promise<RunningServer> {
  const name = spec.name ?? 'ledgerflow';
  checkServiceToken(spec, config, distributed);
  const platform: DistributedPlatform = await openDistributedPlatform(
    distributed,
    { name, context: spec.context ?? name.split('-')[0]! },
    withProjectionSpans(spec.projections),
    log,
    clock,
  );
  const { clients, providers: remote } = remoteLookups(spec, distributed, config, log);
  const consumers = consumedReadModels(spec, platform, log);
  let app: NestFastifyApplication | undefined;
  let access: AccessControl | undefined;
  let grpcServer: RunningGrpcServer | undefined;
  try {
    await platform.projections.start();
    app = await createHttpApp(
      RootModule.of(spec, platform, config, remote, async () => [
        ...(await platform.readiness()),
        ...consumers.readiness(),
      ]),
      config.logLevel,
      () => access,
      (instance) => installHttpTelemetry(instance, { metrics: platform.metrics }),
      config.auth.trustedProxies,
    );
    access = accessControlOf(app, config);
    await app.listen({ host: config.host, port: config.port });
    const bindings: GrpcServiceBinding[] = [];
    if (spec.serves?.includes('tracking'))
      bindings.push(trackingLookupBinding(app.get<TrackingLookup>(TRACKING_LOOKUP), log));
    if (spec.serves?.includes('registry'))
      bindings.push(registryLookupBinding(app.get<RegistryLookup>(REGISTRY_LOOKUP), log));
    if (spec.serves?.includes('identity'))
      bindings.push(identityAccessBinding(app.get<IdentityAccess>(IDENTITY_ACCESS), log));
    if (bindings.length > 0) {
      grpcServer = await startGrpcServer({
        host: distributed.serviceGrpcHost,
        port: distributed.serviceGrpcPort,
        bindings,
        ...(distributed.serviceToken === undefined
          ? {}
          : { serviceToken: distributed.serviceToken }),
      });
      log(
        `service calls (${bindings.map((b) => b.name).join(', ')}) on ${distributed.serviceGrpcHost}:${grpcServer.port}`,
      );
    }
    platform.startOutbox();
    consumers.start();
  } catch (e) {
    await grpcServer?.close();
    await app?.close();
    for (const c of clients) c.close();
    await consumers.stop();
    await platform.close();
    throw e;
  }
  const running = app;
  let closed = false;
  return {
    url: urlOf(running, config),
    config,
    app: running,
    routes: registeredRoutes(running.getHttpAdapter().getInstance()),
    async close() {
      if (closed) return;
      closed = true;
      await grpcServer?.close();
      await running.close();
      for (const c of clients) c.close();
      await consumers.stop();
      await platform.close();
    },
  };
}

/**
 * The read models a distributed service builds from other services' Kafka topics (ServiceSpec
 * `consumes`): one BusProjectionRunner per projection, on this service's read-model store, started
 * in the background (retrying while Kafka is unreachable; the producing topic is created when
 * absent). Each is a readiness check: not ready until subscribed, after it failed, or while its
 * runner subscribes again after its consumer stopped for good.
 */
function consumedReadModels(
  spec: ServiceSpec,
  platform: DistributedPlatform,
  log: (m: string) => void,
): { start(): void; stop(): Promise<void>; readiness(): ReadinessCheck[] } {
  const runners = (spec.consumes ?? []).flatMap((c) =>
    c.projections.map(
      (projection) =>
        new BusProjectionRunner({
          bus: platform.bus,
          topics: [eventsTopic(c.context)],
          readModels: platform.readModels,
          projection,
          groupId: `ledgerflow.${spec.name ?? 'ledgerflow'}.${projection.name}`,
          metrics: platform.metrics,
          onError: (e) =>
            log(`consumer ${projection.name}: ${e instanceof Error ? e.message : String(e)}`),
        }),
    ),
  );
  const subscribed = new Set<BusProjectionRunner>();
  let stopped = false;
  let starting: Promise<void> | undefined;
  return {
    start() {
      if (runners.length === 0) return;
      starting ??= (async () => {
        for (const runner of runners) {
          const topics = [...new Set((spec.consumes ?? []).map((c) => eventsTopic(c.context)))];
          for (let attempt = 1; !stopped; attempt++) {
            try {
              await platform.bus.ensureTopics(topics.map((name) => ({ name })));
              await runner.start();
              subscribed.add(runner);
              log(`consuming ${topics.join(', ')} into read model ${runner.name}`);
              break;
            } catch (e) {
              log(
                `consumer ${runner.name}: Kafka not reachable yet (attempt ${attempt}): ${e instanceof Error ? e.message : String(e)}`,
              );
              await new Promise((r) => setTimeout(r, Math.min(5000, 250 * attempt)));
            }
          }
        }
      })();
    },
    async stop() {
      stopped = true;
      await starting;
      await Promise.all(runners.map((r) => r.stop()));
    },
    readiness() {
      return runners.map((runner) => {
        const s = runner.status();
        return {
          name: `consumer:${runner.name}`,
          ok: subscribed.has(runner) && !s.failed && s.stopped === undefined,
          detail: !subscribed.has(runner)
            ? 'not subscribed yet (Kafka unreachable?)'
            : s.stopped !== undefined
              ? `consumer stopped (${s.stopped}); subscribing again (restart ${s.restarts})`
              : s.failed
                ? 'failed applying a batch (the consumer retries it)'
                : `applied up to position ${s.position} of ${runner.groupId}, ${s.buffered} held back`,
        };
      });
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
  let distributed: DistributedConfig | undefined;
  try {
    config = loadConfig(process.env, overrides);
    if (modeOf(process.env) === 'distributed')
      distributed = loadDistributedConfig(process.env, spec.name ?? name);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`ledgerflow: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  // spans are exported only when an OTLP endpoint is configured (LEDGERFLOW_OTLP_ENDPOINT)
  const tracing = setupTracing({
    serviceName: `ledgerflow-${name}`,
    serviceVersion: LEDGERFLOW_VERSION,
  });
  const server = await startService(
    { ...spec, name: spec.name ?? name },
    config,
    distributed === undefined ? {} : { distributed },
  );
  console.error(
    distributed === undefined
      ? `Ledgerflow ${LEDGERFLOW_VERSION} (${name}) listening on ${server.url}, data in ${config.dataDir}`
      : `Ledgerflow ${LEDGERFLOW_VERSION} (${name}, distributed) listening on ${server.url}, database ${distributed.database}`,
  );
  const stop = (): void => {
    void server
      .close()
      .then(() => tracing.shutdown())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
