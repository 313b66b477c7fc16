import * as grpc from '@grpc/grpc-js';
import type { ingestV1 } from '@ledgerflow/contracts';

export interface MetricWriterOptions {
  /** Flush a batch once this many points are buffered (default 10 000). */
  readonly maxBatchPoints?: number;
  /** Flush buffered points at least this often, in ms (default 100). */
  readonly flushIntervalMs?: number;
  /** Batches sent but not yet acknowledged before log() callers must wait (default 32). */
  readonly maxUnackedBatches?: number;
  /** Reconnect back-off bounds, in ms (default 50 to 2000). */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  /** Called for errors the writer cannot retry (a batch the server refused as invalid). */
  readonly onError?: (error: Error) => void;
}

interface RunBuffer {
  readonly keys: string[];
  readonly keyIndex: Map<string, number>;
  readonly k: number[];
  readonly s: number[];
  readonly t: number[];
  readonly v: number[];
}

interface Pending {
  readonly id: string;
  readonly request: ingestV1.StreamMetricsRequest;
  readonly points: number;
  /** When the batch was last written to a stream (performance.now()). */
  sentAt: number;
}

/** A batch the server refused for good (INVALID_ARGUMENT and the like). */
export class BatchRefusedError extends Error {
  override readonly name = 'BatchRefusedError';
  constructor(
    readonly clientBatchId: string,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const RETRYABLE = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.CANCELLED,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.INTERNAL,
  grpc.status.UNKNOWN,
  grpc.status.ABORTED,
]);

/**
 * Buffers metric points, seals them into batches by size and time, and streams them over one
 * bidirectional gRPC call. Every batch stays in memory until the server acknowledges it as durable;
 * after a disconnect the writer reconnects with back-off and resends exactly the unacknowledged
 * batches, in order (the server applies a resent batch once). Nothing acknowledged is resent and
 * nothing unacknowledged is lost while the process lives.
 */
export class MetricWriter {
  private readonly opts: Required<Omit<MetricWriterOptions, 'onError'>> &
    Pick<MetricWriterOptions, 'onError'>;
  private readonly buffers = new Map<string, RunBuffer>();
  private buffered = 0;
  private readonly unacked = new Map<string, Pending>();
  private sequence = 0;
  private call:
    | grpc.ClientDuplexStream<ingestV1.StreamMetricsRequest, ingestV1.StreamMetricsResponse>
    | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private backoff: number;
  private closed = false;
  private failure: Error | undefined;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly roomWaiters: (() => void)[] = [];
  /** Batches acknowledged, and resends after reconnects (for tests and metrics). */
  readonly stats = { acked: 0, ackedPoints: 0, duplicates: 0, reconnects: 0, resent: 0 };
  /** Send-to-ack latency of the most recent batches, in ms (a ring of up to 10 000). */
  readonly ackLatenciesMs: number[] = [];
  private latencyCursor = 0;

  constructor(
    private readonly client: ingestV1.MetricIngestServiceClient,
    readonly clientId: string,
    options: MetricWriterOptions = {},
  ) {
    this.opts = {
      maxBatchPoints: options.maxBatchPoints ?? 10_000,
      flushIntervalMs: options.flushIntervalMs ?? 100,
      maxUnackedBatches: options.maxUnackedBatches ?? 32,
      reconnectMinMs: options.reconnectMinMs ?? 50,
      reconnectMaxMs: options.reconnectMaxMs ?? 2000,
      onError: options.onError,
    };
    this.backoff = this.opts.reconnectMinMs;
  }

  /** Buffers one point. Cheap and synchronous; await `ready()` now and then to respect back-pressure. */
  log(runId: string, key: string, value: number, step = 0, timestamp = Date.now()): void {
    if (this.closed) throw new Error('MetricWriter is closed');
    let b = this.buffers.get(runId);
    if (b === undefined) {
      b = { keys: [], keyIndex: new Map(), k: [], s: [], t: [], v: [] };
      this.buffers.set(runId, b);
    }
    let ki = b.keyIndex.get(key);
    if (ki === undefined) {
      ki = b.keys.length;
      b.keys.push(key);
      b.keyIndex.set(key, ki);
    }
    b.k.push(ki);
    b.s.push(step);
    b.t.push(timestamp);
    b.v.push(value);
    this.buffered += 1;
    if (this.buffered >= this.opts.maxBatchPoints) this.seal();
    else
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.seal();
      }, this.opts.flushIntervalMs);
  }

  /** Resolves when fewer than maxUnackedBatches batches await acknowledgement (back-pressure). */
  ready(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.unacked.size < this.opts.maxUnackedBatches) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Seals what is buffered and resolves once every batch so far is acknowledged as durable. */
  async flush(): Promise<void> {
    this.seal();
    if (this.failure) throw this.failure;
    if (this.unacked.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    // re-read: the failure may have been recorded while waiting
    const failure = this.failure as Error | undefined;
    if (failure) throw failure;
  }

  /** Flushes, then ends the stream. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.closed = true;
      if (this.timer) clearTimeout(this.timer);
      if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
      this.call?.end();
      this.call = undefined;
    }
  }

  /** Points buffered or in flight, not yet acknowledged. */
  get pendingPoints(): number {
    let n = this.buffered;
    for (const p of this.unacked.values()) n += p.points;
    return n;
  }

  private seal(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.buffered === 0) return;
    this.sequence += 1;
    const id = String(this.sequence);
    const runs: ingestV1.RunPoints[] = [];
    for (const [runId, b] of this.buffers) {
      runs.push({ runId, keys: b.keys, keyIndex: b.k, steps: b.s, timestamps: b.t, values: b.v });
    }
    const pending: Pending = {
      sentAt: performance.now(),
      id,
      points: this.buffered,
      request: { batch: { clientId: this.clientId, clientBatchId: id, runs } },
    };
    this.buffers.clear();
    this.buffered = 0;
    this.unacked.set(id, pending);
    if (this.call) this.call.write(pending.request);
    else this.connect();
  }

  private connect(): void {
    if (this.call || this.closed || this.reconnectTimer) return;
    const call = this.client.streamMetrics();
    this.call = call;
    call.on('data', (ack: ingestV1.StreamMetricsResponse) => this.onAck(ack));
    call.on('error', (e: grpc.ServiceError) => this.onBroken(call, e));
    call.on('end', () => this.onBroken(call, undefined));
    // resend everything not yet acknowledged, in order
    for (const p of this.unacked.values()) {
      p.sentAt = performance.now();
      call.write(p.request);
    }
  }

  private onAck(ack: ingestV1.StreamMetricsResponse): void {
    const p = this.unacked.get(ack.clientBatchId);
    if (p === undefined) return;
    this.unacked.delete(ack.clientBatchId);
    this.backoff = this.opts.reconnectMinMs;
    this.stats.acked += 1;
    this.stats.ackedPoints += p.points;
    const latency = performance.now() - p.sentAt;
    if (this.ackLatenciesMs.length < 10_000) this.ackLatenciesMs.push(latency);
    else this.ackLatenciesMs[this.latencyCursor++ % 10_000] = latency;
    if (ack.duplicate) this.stats.duplicates += 1;
    this.wake();
  }

  private onBroken(
    call: grpc.ClientDuplexStream<ingestV1.StreamMetricsRequest, ingestV1.StreamMetricsResponse>,
    e: grpc.ServiceError | undefined,
  ): void {
    if (this.call !== call) return;
    this.call = undefined;
    if (e !== undefined && !RETRYABLE.has(e.code)) {
      // the first unacknowledged batch is the one the server refused; the rest are resent
      const [first] = this.unacked.values();
      if (first) {
        this.unacked.delete(first.id);
        const err = new BatchRefusedError(first.id, e.code, e.details || e.message);
        if (this.opts.onError) this.opts.onError(err);
        else this.failure = err;
      }
    }
    if (this.closed && this.unacked.size === 0) return;
    if (this.unacked.size === 0) {
      this.wake();
      return;
    }
    const pushback = Number(e?.metadata?.get('grpc-retry-pushback-ms')[0] ?? NaN);
    const delay = Number.isFinite(pushback) ? pushback : this.backoff;
    this.backoff = Math.min(this.opts.reconnectMaxMs, this.backoff * 2);
    this.stats.reconnects += 1;
    this.stats.resent += this.unacked.size;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, delay);
    this.wake();
  }

  private wake(): void {
    if (this.unacked.size < this.opts.maxUnackedBatches || this.failure) {
      for (const w of this.roomWaiters.splice(0)) w();
    }
    if (this.unacked.size === 0 || this.failure) for (const w of this.idleWaiters.splice(0)) w();
  }
}
