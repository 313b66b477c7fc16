import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { LogLevel } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import {
  clientErrorHandler,
  installAccessControl,
  installMlflowWireRules,
  recordRoutes,
  type AccessControl,
  MAX_JSON_BODY_BYTES,
  MlflowExceptionFilter,
} from '@ledgerflow/http';

const LEVELS: Record<string, LogLevel[]> = {
  error: ['fatal', 'error'],
  warn: ['fatal', 'error', 'warn'],
  info: ['fatal', 'error', 'warn'],
  debug: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
};

/**
 * A Nest application on Fastify with MLflow's wire rules and error shape. Every route is recorded
 * (registeredRoutes) and guarded by the access-control hooks, which use `accessControl()` once
 * the caller binds it (startService, right after creation, before listening).
 */
export async function createHttpApp(
  rootModule: unknown,
  logLevel = 'info',
  accessControl: () => AccessControl | undefined = () => undefined,
  /** Installs more hooks on the Fastify instance before any route (e.g. request telemetry). */
  beforeRoutes?: (instance: FastifyInstance) => void,
  /** Proxies whose X-Forwarded-For gives the client's address (LEDGERFLOW_TRUSTED_PROXIES). */
  trustedProxies?: readonly string[],
): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    ...(trustedProxies === undefined ? {} : { trustProxy: [...trustedProxies] }),
    bodyLimit: MAX_JSON_BODY_BYTES,
    routerOptions: { maxParamLength: 4096 },
    clientErrorHandler: clientErrorHandler(() => accessControl()?.enabled === true),
  });
  // first, so routes added by `beforeRoutes` (/metrics) are recorded too (the permission matrix)
  recordRoutes(adapter.getInstance());
  beforeRoutes?.(adapter.getInstance());
  installMlflowWireRules(adapter.getInstance());
  installAccessControl(adapter.getInstance(), accessControl);
  const app = await NestFactory.create<NestFastifyApplication>(rootModule as never, adapter, {
    logger: LEVELS[logLevel] ?? LEVELS['info']!,
    bodyParser: false,
  });
  app.useGlobalFilters(new MlflowExceptionFilter());
  app.enableShutdownHooks();
  return app;
}
