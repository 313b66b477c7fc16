import * as grpc from '@grpc/grpc-js';
import { context } from '@opentelemetry/api';
import { HealthImplementation } from 'grpc-health-check';
import { GRPC_STATUS_OF, MlflowError, type MlflowErrorCode } from '@ledgerflow/contracts';
import {
  contextFromGrpcMetadata,
  injectGrpcMetadata,
  SpanKind,
  withSpan,
} from '@ledgerflow/telemetry';
import type { CallContext } from './ports.js';
import { requireServiceToken } from './service-token.js';

/** Metadata key carrying the caller's correlation id (the same name the ingest server reads). */
export const CORRELATION_METADATA = 'x-correlation-id';
/** Trailer naming the MLflow error code of a failed call, so the caller rethrows the same error. */
export const ERROR_CODE_METADATA = 'ledgerflow-error-code';

const SAFE_ID = /^[\w.:-]{1,128}$/;

/** Outgoing metadata: the active span's trace context and the caller's correlation id. */
export function outgoingMetadata(call?: CallContext): grpc.Metadata {
  // waitForReady: a call made while the other service restarts waits for it (within the
  // deadline) instead of failing at once
  const metadata = new grpc.Metadata({ waitForReady: true });
  injectGrpcMetadata(metadata);
  if (call?.correlationId !== undefined && SAFE_ID.test(call.correlationId))
    metadata.set(CORRELATION_METADATA, call.correlationId);
  return metadata;
}

/** The correlation id a call's metadata carries, when well-formed. */
export function incomingCallContext(metadata: grpc.Metadata): CallContext {
  const value = metadata.get(CORRELATION_METADATA)[0];
  return typeof value === 'string' && SAFE_ID.test(value) ? { correlationId: value } : {};
}

const CODES = new Set<string>(Object.keys(GRPC_STATUS_OF));

/** The MLflow error a failed call stands for: the server's own when it named one. */
export function errorOfCall(service: string, method: string, error: grpc.ServiceError): Error {
  const code = error.metadata?.get(ERROR_CODE_METADATA)[0];
  if (typeof code === 'string' && CODES.has(code))
    return new MlflowError(code as MlflowErrorCode, error.details);
  const unavailable =
    error.code === grpc.status.UNAVAILABLE || error.code === grpc.status.DEADLINE_EXCEEDED;
  return new MlflowError(
    unavailable ? 'TEMPORARILY_UNAVAILABLE' : 'INTERNAL_ERROR',
    `${service}.${method} failed: ${error.details || grpc.status[error.code]}`,
  );
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (error: grpc.ServiceError | null, response: Res) => void,
) => grpc.ClientUnaryCall;

/**
 * One unary call in a client span: trace context, correlation id and wait-for-ready in its
 * metadata, and a deadline.
 */
export function callUnary<Req, Res>(
  service: string,
  method: string,
  fn: UnaryMethod<Req, Res>,
  request: Req,
  call: CallContext | undefined,
  deadlineMs: number,
): Promise<Res> {
  return withSpan(
    `${service}/${method}`,
    {
      kind: SpanKind.CLIENT,
      attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method },
    },
    () =>
      new Promise<Res>((resolve, reject) => {
        fn(
          request,
          outgoingMetadata(call),
          { deadline: Date.now() + deadlineMs },
          (error, response) => {
            if (error !== null) reject(errorOfCall(service, method, error));
            else resolve(response);
          },
        );
      }),
  );
}

/**
 * A unary handler: continues the caller's trace in a server span, hands the caller's correlation
 * id to `fn`, and answers an MlflowError with its gRPC status plus the MLflow code as a trailer.
 * Other errors are logged and answered INTERNAL without details.
 */
export function unaryHandler<Req, Res>(
  service: string,
  method: string,
  fn: (request: Req, call: CallContext) => Promise<Res>,
  log: (message: string) => void,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const parent = contextFromGrpcMetadata(call.metadata, context.active());
    withSpan(
      `${service}/${method}`,
      {
        kind: SpanKind.SERVER,
        parent,
        attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method },
      },
      () => fn(call.request, incomingCallContext(call.metadata)),
    ).then(
      (response) => callback(null, response),
      (error: unknown) => {
        const metadata = new grpc.Metadata();
        if (error instanceof MlflowError) {
          metadata.set(ERROR_CODE_METADATA, error.code);
          callback({ code: GRPC_STATUS_OF[error.code], details: error.message, metadata });
          return;
        }
        log(
          `${service}/${method} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
        );
        callback({ code: grpc.status.INTERNAL, details: 'internal error', metadata });
      },
    );
  };
}

/** A service to serve: its generated definition and the handlers. */
export interface GrpcServiceBinding {
  /** Fully qualified name, e.g. `ledgerflow.tracking.v1.TrackingLookupService` (for grpc.health.v1). */
  readonly name: string;
  readonly definition: grpc.ServiceDefinition;
  readonly implementation: grpc.UntypedServiceImplementation;
}

export interface RunningGrpcServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The listener for service-to-service calls of one process: the given services plus
 * grpc.health.v1 (each service SERVING under its name).
 */
export async function startGrpcServer(options: {
  readonly host: string;
  readonly port: number;
  readonly bindings: readonly GrpcServiceBinding[];
  /** LEDGERFLOW_SERVICE_TOKEN: when set, calls without it are refused (UNAUTHENTICATED). */
  readonly serviceToken?: string;
}): Promise<RunningGrpcServer> {
  const server = new grpc.Server({
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
  });
  const statuses: Record<string, 'SERVING'> = { '': 'SERVING' };
  for (const b of options.bindings) {
    const token = options.serviceToken;
    server.addService(
      b.definition,
      token === undefined || token === ''
        ? b.implementation
        : requireServiceToken(b.implementation, token),
    );
    statuses[b.name] = 'SERVING';
  }
  new HealthImplementation(statuses).addToServer(server);
  const address = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(new Error(`gRPC: cannot listen on ${address}: ${err.message}`)) : resolve(bound),
    );
  });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 5000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
