import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { GRPC_STATUS_OF, MlflowError, ingestV1, type EventMetadata } from '@ledgerflow/contracts';
import { LEDGERFLOW_CONFIG, type LedgerflowConfig } from '@ledgerflow/config';
import {
  ACCESS_CONTROL,
  MAX_AUTHORIZATION_BYTES,
  type AccessControl,
  type Principal,
  type ResourceRef,
} from '@ledgerflow/http';
import {
  RUN_STATUSES,
  USER_TAG,
  validateExperimentId,
  validateRunId,
  type RunStatus,
} from '@ledgerflow/domain-tracking';
import {
  AGGREGATE_STORE,
  EVENT_STORE,
  type AggregateStore,
  type EventStore,
} from '@ledgerflow/event-store';
import { READ_MODEL_LAG, RUN_IDS, type ReadModelLag } from '../tokens.js';
import type { IdGenerator } from '@ledgerflow/contracts';
import { TrackingCommands } from '../tracking.commands.js';
import { TrackingQueries } from '../tracking.queries.js';
import { param, runTag } from '../tracking.requests.js';
import type { RunDoc } from '@ledgerflow/domain-tracking';
import { OverloadedError } from './flow-control.js';
import { BatchRejectedError, GrpcCode, MetricIngest, type BatchAck } from './metric-ingest.js';
import { metricRequestDecoder } from './batch-decoder.js';

const { MetricIngestServiceService } = ingestV1;

/** Methods callable without credentials when auth is on: the standard gRPC health checks. */
export const PUBLIC_GRPC_PREFIX = '/grpc.health.v1.Health/';
type Req = ingestV1.StreamMetricsRequest;
type Res = ingestV1.StreamMetricsResponse;

/** The repository's proto/ directory, found by walking up from this file (source or dist/). */
function protoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 10; i++) {
    if (existsSync(path.join(dir, 'proto', 'buf.yaml'))) return path.join(dir, 'proto');
    dir = path.dirname(dir);
  }
  throw new Error('proto/ directory not found above ' + fileURLToPath(import.meta.url));
}

function metadataOf(
  call: { metadata: grpc.Metadata },
  fallbackCorrelation: string,
  principal?: Principal,
): EventMetadata {
  const correlation = call.metadata.get('x-correlation-id')[0];
  return {
    actor: principal?.username ?? 'anonymous',
    correlationId:
      typeof correlation === 'string' && /^[\w.:-]{1,128}$/.test(correlation)
        ? correlation
        : fallbackCorrelation,
    causationId: null,
  };
}

/** A request whose bytes could not be decoded; answered INVALID_ARGUMENT by the handler. */
interface Undecodable {
  readonly undecodable: string;
}

/**
 * The generated service, but a streamed batch that fails to decode (an int64 beyond 2^53, broken
 * bytes) becomes a value the handler refuses with INVALID_ARGUMENT, instead of the transport's
 * generic INTERNAL "Error deserializing request". Batches are read by the fast decoder
 * (batch-decoder.ts: typed-array columns, which MetricIngest uses in place), the generated one
 * behind it.
 */
function tolerantService(): grpc.ServiceDefinition {
  const tolerant = (decode: (b: Buffer) => unknown) => (b: Buffer) => {
    try {
      return decode(b);
    } catch (e) {
      const why = (e as Error).message;
      return {
        undecodable: /MAX_SAFE_INTEGER/.test(why)
          ? `batch.runs[].steps or timestamps: ${why} (int64 values must fit in 2^53)`
          : `batch: ${why}`,
      } satisfies Undecodable;
    }
  };
  const def = MetricIngestServiceService;
  return {
    ...def,
    streamMetrics: {
      ...def.streamMetrics,
      requestDeserialize: tolerant(metricRequestDecoder(def.streamMetrics.requestDeserialize)),
    },
    ingestMetrics: {
      ...def.ingestMetrics,
      requestDeserialize: tolerant(metricRequestDecoder(def.ingestMetrics.requestDeserialize)),
    },
  };
}

function isUndecodable(r: unknown): r is Undecodable {
  return typeof r === 'object' && r !== null && 'undecodable' in r;
}

/** Maps any error to a gRPC status object; unknown errors are logged and answered INTERNAL. */
function statusOf(error: unknown, logger: Logger): grpc.StatusObject {
  const metadata = new grpc.Metadata();
  if (error instanceof BatchRejectedError)
    return { code: error.code, details: error.message, metadata };
  if (error instanceof OverloadedError) {
    metadata.set('grpc-retry-pushback-ms', String(error.retryAfterMs));
    return { code: GrpcCode.RESOURCE_EXHAUSTED, details: error.message, metadata };
  }
  if (error instanceof MlflowError)
    return { code: GRPC_STATUS_OF[error.code], details: error.message, metadata };
  logger.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  return { code: GrpcCode.INTERNAL, details: 'internal error', metadata };
}

function runInfo(doc: RunDoc): ingestV1.RunInfo {
  return {
    runId: doc.run_id,
    experimentId: doc.experiment_id,
    runName: doc.run_name,
    status: doc.status,
    startTime: doc.start_time,
    ...(doc.end_time === undefined ? {} : { endTime: doc.end_time }),
    artifactUri: doc.artifact_uri,
    lifecycleStage: doc.lifecycle_stage,
  };
}

function ackOf(a: BatchAck): Res {
  return {
    clientBatchId: a.clientBatchId,
    sequence: a.sequence,
    points: a.points,
    duplicate: a.duplicate,
  };
}

/**
 * The gRPC listener of tracking ingest: MetricIngestService, grpc.health.v1 and server reflection.
 * Streams are read with back-pressure: at most `maxInFlightBatchesPerStream` batches of a stream
 * are being stored at once; beyond that the server stops reading and HTTP/2 flow control slows the
 * sender. Acknowledgements go out in the order batches arrived.
 */
@Injectable()
export class IngestGrpcServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('grpc');
  private server: grpc.Server | undefined;
  readonly ingest: MetricIngest;
  /** The bound port (useful when configured as 0). */
  port = 0;

  constructor(
    @Inject(EVENT_STORE) events: EventStore,
    @Inject(AGGREGATE_STORE) aggregates: AggregateStore,
    @Inject(LEDGERFLOW_CONFIG) private readonly config: LedgerflowConfig,
    @Inject(TrackingCommands) private readonly commands: TrackingCommands,
    @Inject(TrackingQueries) private readonly queries: TrackingQueries,
    @Inject(RUN_IDS) private readonly runIds: IdGenerator,
    @Optional() @Inject(ACCESS_CONTROL) private readonly access?: AccessControl,
    @Optional() @Inject(READ_MODEL_LAG) lag?: ReadModelLag,
  ) {
    this.ingest = new MetricIngest(events, aggregates, config.ingest, undefined, lag);
  }

  async onApplicationBootstrap(): Promise<void> {
    const server = new grpc.Server({
      // with auth off nothing is checked, and no call pays for an interceptor
      interceptors: this.access?.enabled === true ? [this.authenticationGate()] : [],
      'grpc.max_receive_message_length': this.config.ingest.maxMessageBytes,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 10_000,
    });
    server.addService(tolerantService(), {
      streamMetrics: (call: grpc.ServerDuplexStream<Req, Res>) => this.streamMetrics(call),
      ingestMetrics: (
        call: grpc.ServerReadableStream<
          ingestV1.IngestMetricsRequest,
          ingestV1.IngestMetricsResponse
        >,
        cb: grpc.sendUnaryData<ingestV1.IngestMetricsResponse>,
      ) => void this.ingestMetrics(call, cb),
      createRun: this.unary(
        (req: ingestV1.CreateRunRequest, meta) => this.createRun(req, meta),
        (req) => ({ type: 'experiment', id: req.experimentId || '0' }),
      ),
      updateRun: this.unary(
        (req: ingestV1.UpdateRunRequest, meta) => this.updateRun(req, meta),
        (req) => ({ type: 'run', id: req.runId }),
      ),
      logParams: this.unary(
        async (req: ingestV1.LogParamsRequest, meta) => {
          const runId = validateRunId(req.runId);
          const params = req.params.map((p, i) =>
            param(p.key, p.value, this.config.truncateLongValues, `params[${i}]`),
          );
          await this.commands.run(runId, { type: 'LogRunParams', runId, params }, meta);
          return {};
        },
        (req) => ({ type: 'run', id: req.runId }),
      ),
      setTags: this.unary(
        async (req: ingestV1.SetTagsRequest, meta) => {
          const runId = validateRunId(req.runId);
          const tags = req.tags.map((t, i) =>
            runTag(t.key, t.value, this.config.truncateLongValues, `tags[${i}]`),
          );
          await this.commands.run(runId, { type: 'SetRunTags', runId, tags }, meta);
          return {};
        },
        (req) => ({ type: 'run', id: req.runId }),
      ),
    });
    const health = new HealthImplementation({
      '': 'SERVING',
      'ledgerflow.tracking.v1.MetricIngestService': 'SERVING',
    });
    health.addToServer(server);
    const root = protoRoot();
    const definitions = loadSync(
      [path.join(root, 'ledgerflow/tracking/v1/ingest.proto'), healthProtoPath],
      {
        includeDirs: [root, path.dirname(healthProtoPath)],
      },
    );
    new ReflectionService(definitions).addToServer(server);
    this.port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(
        `${this.config.grpcHost}:${this.config.grpcPort}`,
        grpc.ServerCredentials.createInsecure(),
        (err, port) =>
          err
            ? reject(
                new Error(
                  `gRPC: cannot listen on ${this.config.grpcHost}:${this.config.grpcPort}: ${err.message}`,
                ),
              )
            : resolve(port),
      );
    });
    this.server = server;
    if (this.config.logLevel !== 'error')
      console.error(`[ledgerflow] gRPC metric ingest on ${this.config.grpcHost}:${this.port}`);
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 5000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private unary<Q, R>(
    fn: (req: Q, meta: EventMetadata) => Promise<R>,
    target: (req: Q) => ResourceRef,
  ) {
    return (call: grpc.ServerUnaryCall<Q, R>, cb: grpc.sendUnaryData<R>): void => {
      this.authenticate(call)
        .then(async (principal) => {
          await this.authorize(principal, target(call.request));
          return fn(call.request, metadataOf(call, `grpc-${Date.now()}`, principal));
        })
        .then(
          (r) => cb(null, r),
          (e: unknown) => cb(statusOf(e, this.logger)),
        );
    };
  }

  /**
   * With auth on, every call of every service on this port (ingest, reflection, any added later)
   * is authenticated before its handler runs, except the gRPC health checks (as HTTP /health): no
   * or bad credentials end it with UNAUTHENTICATED. The ingest handlers then authenticate again
   * for the principal (a verified password or token is cached) and authorize each resource.
   */
  private authenticationGate(): grpc.ServerInterceptor {
    return (method, call) =>
      new grpc.ServerInterceptingCall(call, {
        start: (next) =>
          next({
            onReceiveMetadata: (metadata, proceed) => {
              if (
                this.access === undefined ||
                !this.access.enabled ||
                method.path.startsWith(PUBLIC_GRPC_PREFIX)
              ) {
                proceed(metadata);
                return;
              }
              this.authenticate({ metadata, getPeer: () => call.getPeer() }).then(
                () => proceed(metadata),
                (e: unknown) => call.sendStatus(statusOf(e, this.logger)),
              );
            },
          }),
      });
  }

  /**
   * The caller of a call, from its `authorization` metadata (Basic or Bearer, as over HTTP);
   * undefined when auth is off. No or bad credentials: UNAUTHENTICATED.
   */
  private async authenticate(call: {
    metadata: grpc.Metadata;
    getPeer(): string;
  }): Promise<Principal | undefined> {
    const access = this.access;
    if (access === undefined || !access.enabled) return undefined;
    const raw = call.metadata.get('authorization')[0];
    const header = typeof raw === 'string' ? raw : undefined;
    if (header !== undefined && header.length > MAX_AUTHORIZATION_BYTES)
      throw new MlflowError('UNAUTHENTICATED', 'Invalid credentials');
    const peer = call.getPeer().replace(/:\d+$/, '');
    const result = await access.authenticate(header, peer);
    if (result.ok) return result.principal;
    if (result.status === 429)
      throw new MlflowError('REQUEST_LIMIT_EXCEEDED', 'Too many failed login attempts');
    if (result.status === 503)
      throw new MlflowError(
        'TEMPORARILY_UNAVAILABLE',
        'Access cannot be checked right now (the identity service is unreachable); retry later',
      );
    throw new MlflowError('UNAUTHENTICATED', 'Invalid credentials');
  }

  /** PERMISSION_DENIED unless the caller may update the resource (runs: their experiment). */
  private async authorize(principal: Principal | undefined, target: ResourceRef): Promise<void> {
    if (principal === undefined || this.access === undefined) return;
    if (!(await this.access.authorizeResource(principal, target, 'update')))
      throw new MlflowError('PERMISSION_DENIED', 'Permission denied');
  }

  /** One streamed batch: every run in it must be writable by the caller. */
  private async ingestAs(
    principal: Principal | undefined,
    batch: ingestV1.MetricBatch | undefined,
    meta: EventMetadata,
  ): Promise<BatchAck> {
    if (principal !== undefined)
      for (const run of batch?.runs ?? [])
        await this.authorize(principal, { type: 'run', id: run.runId });
    return this.ingest.ingest(batch, meta);
  }

  private async createRun(
    req: ingestV1.CreateRunRequest,
    meta: EventMetadata,
  ): Promise<ingestV1.CreateRunResponse> {
    const experimentId = validateExperimentId(req.experimentId || '0');
    const tags = req.tags.map((t, i) =>
      runTag(t.key, t.value, this.config.truncateLongValues, `tags[${i}]`),
    );
    const runId = await this.commands.createRun(
      {
        experimentId,
        userId: req.userId || tags.find((t) => t.key === USER_TAG)?.value || '',
        runName: req.runName || null,
        startTime: req.startTime ?? Date.now(),
        tags,
      },
      this.runIds.next(),
      meta,
    );
    return { run: runInfo(await this.queries.run(runId)) };
  }

  private async updateRun(
    req: ingestV1.UpdateRunRequest,
    meta: EventMetadata,
  ): Promise<ingestV1.UpdateRunResponse> {
    const runId = validateRunId(req.runId);
    let status: RunStatus | null = null;
    if (req.status !== '') {
      const upper = req.status.toUpperCase();
      const found = RUN_STATUSES.find((s) => s === upper);
      if (found === undefined)
        throw new BatchRejectedError(
          GrpcCode.INVALID_ARGUMENT,
          `status: '${req.status}' is not one of ${RUN_STATUSES.join(', ')}`,
        );
      status = found;
    }
    await this.commands.run(
      runId,
      {
        type: 'UpdateRun',
        runId,
        status,
        endTime: req.endTime ?? null,
        runName: req.runName || null,
      },
      meta,
    );
    return { run: runInfo(await this.queries.run(runId)) };
  }

  private streamMetrics(call: grpc.ServerDuplexStream<Req, Res>): void {
    const limit = this.config.ingest.maxInFlightBatchesPerStream;
    const queue: Promise<BatchAck>[] = [];
    let failed = false;
    let ended = false;
    let draining = false;
    // authenticated once per stream; batches are read only after that
    const correlation = `grpc-stream-${Date.now()}`;
    const who = this.authenticate(call).then((principal) => ({
      principal,
      meta: metadataOf(call, correlation, principal),
    }));
    who.catch(() => undefined);
    const fail = (e: unknown): void => {
      if (failed) return;
      failed = true;
      call.emit('error', statusOf(e, this.logger));
    };
    const drain = async (): Promise<void> => {
      if (draining) return;
      draining = true;
      try {
        while (queue.length > 0 && !failed) {
          const ack = await queue[0]!;
          void queue.shift();
          if (call.cancelled) return;
          call.write(ackOf(ack));
          if (call.isPaused() && queue.length < limit) call.resume();
        }
        if (ended && queue.length === 0 && !failed) call.end();
      } catch (e) {
        fail(e);
      } finally {
        draining = false;
      }
    };
    call.on('data', (req: Req) => {
      if (failed) return;
      const p = isUndecodable(req)
        ? Promise.reject(new BatchRejectedError(GrpcCode.INVALID_ARGUMENT, req.undecodable))
        : who.then(({ principal, meta }) => this.ingestAs(principal, req.batch, meta));
      p.catch(() => undefined); // surfaced in order by drain()
      queue.push(p);
      if (queue.length >= limit) call.pause();
      void drain();
    });
    call.on('end', () => {
      ended = true;
      void drain();
    });
    call.on('error', () => {
      failed = true;
    });
  }

  private async ingestMetrics(
    call: grpc.ServerReadableStream<ingestV1.IngestMetricsRequest, ingestV1.IngestMetricsResponse>,
    cb: grpc.sendUnaryData<ingestV1.IngestMetricsResponse>,
  ): Promise<void> {
    const limit = this.config.ingest.maxInFlightBatchesPerStream;
    let principal: Principal | undefined;
    try {
      principal = await this.authenticate(call);
    } catch (e) {
      cb(statusOf(e, this.logger));
      return;
    }
    const meta = metadataOf(call, `grpc-stream-${Date.now()}`, principal);
    const inFlight = new Set<Promise<BatchAck>>();
    const all: Promise<BatchAck>[] = [];
    let error: unknown;
    try {
      for await (const req of call as AsyncIterable<ingestV1.IngestMetricsRequest | Undecodable>) {
        const p = isUndecodable(req)
          ? Promise.reject(new BatchRejectedError(GrpcCode.INVALID_ARGUMENT, req.undecodable))
          : this.ingestAs(principal, req.batch, meta);
        all.push(p);
        inFlight.add(p);
        void p.then(
          () => inFlight.delete(p),
          (e: unknown) => {
            inFlight.delete(p);
            error ??= e;
          },
        );
        // reading pauses while the window is full: back-pressure through the stream
        while (inFlight.size >= limit) await Promise.race(inFlight).catch(() => undefined);
        if (error !== undefined) break;
      }
      const acks = await Promise.all(all);
      cb(null, {
        batches: acks.length,
        points: acks.reduce((n, a) => n + a.points, 0),
        duplicates: acks.filter((a) => a.duplicate).length,
        lastSequence: acks.reduce((m, a) => Math.max(m, a.sequence), 0),
      });
    } catch (e) {
      cb(statusOf(error ?? e, this.logger));
    }
  }
}
