import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { ingestV1 } from '@ledgerflow/contracts';
import { MetricWriter, type MetricWriterOptions } from './metric-writer.js';
import { RestClient } from './rest-client.js';

export interface LedgerflowClientOptions extends MetricWriterOptions {
  /** gRPC address of tracking ingest, `host:port` (default 127.0.0.1:50051). */
  readonly grpcAddress?: string;
  /** Base URL of the REST API (default http://127.0.0.1:5000). */
  readonly restUrl?: string;
  /** Names this process to the server; batch ids are unique within it (default: a random uuid). */
  readonly clientId?: string;
}

/**
 * The Ledgerflow SDK: run lifecycle and streamed metrics over gRPC, and MLflow's REST API for
 * everything else (`client.rest`).
 */
export class LedgerflowClient {
  readonly rest: RestClient;
  readonly metrics: MetricWriter;
  private readonly grpcClient: ingestV1.MetricIngestServiceClient;

  constructor(options: LedgerflowClientOptions = {}) {
    this.grpcClient = new ingestV1.MetricIngestServiceClient(
      options.grpcAddress ?? '127.0.0.1:50051',
      grpc.credentials.createInsecure(),
      {
        'grpc.keepalive_time_ms': 30_000,
        'grpc.max_send_message_length': 64 * 1024 * 1024,
      },
    );
    this.metrics = new MetricWriter(this.grpcClient, options.clientId ?? randomUUID(), options);
    this.rest = new RestClient(options.restUrl ?? 'http://127.0.0.1:5000');
  }

  /** Creates a run over gRPC; returns its info. */
  createRun(request: Partial<ingestV1.CreateRunRequest> = {}): Promise<ingestV1.RunInfo> {
    return this.unary<ingestV1.CreateRunRequest, ingestV1.CreateRunResponse>('createRun', {
      experimentId: '0',
      runName: '',
      tags: [],
      userId: '',
      ...request,
    }).then((r) => r.run!);
  }

  /** Ends a run (status FINISHED by default). */
  finishRun(runId: string, status = 'FINISHED', endTime = Date.now()): Promise<ingestV1.RunInfo> {
    return this.unary<ingestV1.UpdateRunRequest, ingestV1.UpdateRunResponse>('updateRun', {
      runId,
      status,
      endTime,
      runName: '',
    }).then((r) => r.run!);
  }

  logParams(
    runId: string,
    params: Readonly<Record<string, string | number | boolean>>,
  ): Promise<void> {
    return this.unary<ingestV1.LogParamsRequest, ingestV1.LogParamsResponse>('logParams', {
      runId,
      params: Object.entries(params).map(([key, value]) => ({ key, value: String(value) })),
    }).then(() => undefined);
  }

  setTags(runId: string, tags: Readonly<Record<string, string>>): Promise<void> {
    return this.unary<ingestV1.SetTagsRequest, ingestV1.SetTagsResponse>('setTags', {
      runId,
      tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
    }).then(() => undefined);
  }

  /** Buffers a metric point for streaming (see MetricWriter). */
  logMetric(runId: string, key: string, value: number, step = 0, timestamp = Date.now()): void {
    this.metrics.log(runId, key, value, step, timestamp);
  }

  /** Flushes metrics and closes the connections. */
  async close(): Promise<void> {
    try {
      await this.metrics.close();
    } finally {
      this.grpcClient.close();
    }
  }

  private unary<Q, R>(
    method: 'createRun' | 'updateRun' | 'logParams' | 'setTags',
    request: Q,
  ): Promise<R> {
    return new Promise((resolve, reject) => {
      const fn = this.grpcClient[method].bind(this.grpcClient) as unknown as (
        req: Q,
        cb: (err: grpc.ServiceError | null, res: R) => void,
      ) => void;
      fn(request, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }
}
