import { createHash } from 'node:crypto';
import type { EventMetadata, ingestV1, NewEvent } from '@ledgerflow/contracts';
import type { IngestLimits } from '@ledgerflow/config';
import {
  effectiveRunLifecycle,
  ingestStream,
  MAX_ENTITY_KEY_LENGTH,
  packRunPoints,
  validateKey,
  type PackedRunPoints,
} from '@ledgerflow/domain-tracking';
import {
  DuplicateEventIdError,
  type AggregateStore,
  type EventStore,
} from '@ledgerflow/event-store';
import { runWithExperiment } from '../run-facts.js';
import type { ReadModelLag } from '../tokens.js';
import { IngestFlowControl } from './flow-control.js';

/** gRPC status codes used here. */
export const GrpcCode = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** A batch refused before anything was stored; `code` is the gRPC status to answer with. */
export class BatchRejectedError extends Error {
  override readonly name = 'BatchRejectedError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export interface BatchAck {
  readonly clientBatchId: string;
  readonly sequence: number;
  readonly points: number;
  readonly duplicate: boolean;
}

const CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const BATCH_ID = /^[\x21-\x7e]{1,128}$/;
const RUN_ID = /^[a-zA-Z0-9][\w-]{0,255}$/;
const MAX = Number.MAX_VALUE;

function invalid(field: string, problem: string): BatchRejectedError {
  return new BatchRejectedError(GrpcCode.INVALID_ARGUMENT, `${field}: ${problem}`);
}

/** The event id of a batch: derived from (client_id, client_batch_id), so a resent batch collides. */
export function batchEventId(clientId: string, clientBatchId: string): string {
  return `ingest-${createHash('sha256').update(clientId).update('\0').update(clientBatchId).digest('hex').slice(0, 40)}`;
}

/**
 * A batch as the ingest takes it: the generated MetricBatch (number[] columns), or the fast
 * decoder's (typed-array columns, used in place).
 */
export interface MetricBatchInput {
  readonly clientId: string;
  readonly clientBatchId: string;
  readonly runs: readonly {
    readonly runId: string;
    readonly keys: readonly string[];
    readonly keyIndex: ArrayLike<number>;
    readonly steps: ArrayLike<number>;
    readonly timestamps: ArrayLike<number>;
    readonly values: ArrayLike<number>;
  }[];
}

interface PreparedBatch {
  readonly event: NewEvent;
  readonly points: number;
  readonly runPoints: ReadonlyMap<string, number>;
}

/**
 * Turns gRPC metric batches into durable events: validates every column (naming the offending
 * field), checks each run exists and is active, packs the columns, and appends ONE event per batch
 * to the client's ingest stream. The event id is derived from the client's batch id, so the log's
 * unique id makes a resent batch a no-op that is acknowledged again with its original sequence.
 */
export class MetricIngest {
  readonly flow: IngestFlowControl;

  constructor(
    private readonly events: EventStore,
    private readonly aggregates: AggregateStore,
    private readonly limits: IngestLimits,
    private readonly now: () => number = Date.now,
    /** Paces acks to the read models (embedded: the metric history's worker thread). */
    private readonly lag?: ReadModelLag,
  ) {
    this.flow = new IngestFlowControl(limits);
  }

  /** Validates, admits (waiting for room), appends and acknowledges one batch. */
  async ingest(
    batch: ingestV1.MetricBatch | MetricBatchInput | undefined,
    metadata: EventMetadata,
  ): Promise<BatchAck> {
    const prepared = await this.prepare(batch);
    const b = batch!;
    const release = await this.flow.acquire(b.clientId, prepared.runPoints, prepared.points);
    try {
      const result = await this.events.append(ingestStream(b.clientId), 'any', [
        { ...prepared.event, metadata },
      ]);
      // durable now; holding the batch's flow-control slot until the read models are close keeps
      // a client that outruns them from leaving live views ever further behind (back-pressure)
      await this.lag?.within(result.lastPosition);
      return {
        clientBatchId: b.clientBatchId,
        sequence: result.lastPosition,
        points: prepared.points,
        duplicate: false,
      };
    } catch (e) {
      if (e instanceof DuplicateEventIdError) {
        return {
          clientBatchId: b.clientBatchId,
          sequence: await this.sequenceOf(b.clientId, prepared.event.id),
          points: prepared.points,
          duplicate: true,
        };
      }
      throw e;
    } finally {
      release();
    }
  }

  /** Finds the position of an already-stored batch among the client's recent batches. */
  private async sequenceOf(clientId: string, eventId: string): Promise<number> {
    const stream = ingestStream(clientId);
    const revision = await this.events.streamRevision(stream);
    for (let from = Math.max(0, revision - 1023); ; from = Math.max(0, from - 1024)) {
      const events = await this.events.readStream(stream, { fromRevision: from, maxCount: 1024 });
      const found = events.find((e) => e.id === eventId);
      if (found) return found.position;
      if (from === 0) return 0;
    }
  }

  private async prepare(batch: MetricBatchInput | undefined): Promise<PreparedBatch> {
    if (batch === undefined) throw invalid('batch', 'is required');
    if (!CLIENT_ID.test(batch.clientId))
      throw invalid('batch.client_id', 'must be 1-128 characters of [A-Za-z0-9._:-]');
    if (!BATCH_ID.test(batch.clientBatchId))
      throw invalid('batch.client_batch_id', 'must be 1-128 printable ASCII characters');
    if (batch.runs.length === 0) throw invalid('batch.runs', 'must hold at least one run');
    let points = 0;
    const runPoints = new Map<string, number>();
    const packed: PackedRunPoints[] = [];
    for (let r = 0; r < batch.runs.length; r++) {
      const run = batch.runs[r]!;
      const f = `batch.runs[${r}]`;
      const n = run.keyIndex.length;
      for (const [name, col] of [
        ['steps', run.steps],
        ['timestamps', run.timestamps],
        ['values', run.values],
      ] as const) {
        if (col.length !== n)
          throw invalid(
            `${f}.${name}`,
            `has ${col.length} entries but key_index has ${n}; columns must be the same length`,
          );
      }
      if (n === 0) throw invalid(`${f}.key_index`, 'must hold at least one point');
      points += n;
      if (points > this.limits.maxBatchPoints) {
        throw invalid(
          `${f}.values`,
          `the batch holds more than ${this.limits.maxBatchPoints} points; split it`,
        );
      }
      if (!RUN_ID.test(run.runId))
        throw invalid(`${f}.run_id`, `'${run.runId}' is not a valid run id`);
      if (runPoints.has(run.runId))
        throw invalid(`${f}.run_id`, `run ${run.runId} appears twice in the batch`);
      if (run.keys.length === 0) throw invalid(`${f}.keys`, 'must hold at least one key');
      run.keys.forEach((key, i) => {
        if (key.length > MAX_ENTITY_KEY_LENGTH)
          throw invalid(`${f}.keys[${i}]`, `is longer than ${MAX_ENTITY_KEY_LENGTH} characters`);
        try {
          validateKey(key, `${f}.keys[${i}]`, `${f}.keys[${i}]`);
        } catch (e) {
          throw invalid(`${f}.keys[${i}]`, (e as Error).message);
        }
      });
      // typed columns from the fast decoder are validated and used in place, without a copy
      const k = run.keyIndex instanceof Uint32Array ? run.keyIndex : new Uint32Array(n);
      const s = run.steps instanceof Float64Array ? run.steps : new Float64Array(n);
      const t = run.timestamps instanceof Float64Array ? run.timestamps : new Float64Array(n);
      const v = run.values instanceof Float64Array ? run.values : new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const ki = run.keyIndex[i]!;
        if (ki >= run.keys.length)
          throw invalid(
            `${f}.key_index[${i}]`,
            `${ki} is not an index into keys (${run.keys.length} keys)`,
          );
        const step = run.steps[i]!;
        if (!Number.isSafeInteger(step))
          throw invalid(`${f}.steps[${i}]`, `${step} is not a safe integer`);
        const ts = run.timestamps[i]!;
        if (!Number.isSafeInteger(ts) || ts < 0)
          throw invalid(
            `${f}.timestamps[${i}]`,
            `${ts} is not a finite, non-negative millisecond timestamp`,
          );
        const value = run.values[i]!;
        k[i] = ki;
        s[i] = step;
        t[i] = ts;
        // MLflow stores +-Infinity as +-MAX_VALUE; NaN is kept
        v[i] = value === Infinity ? MAX : value === -Infinity ? -MAX : value;
      }
      runPoints.set(run.runId, n);
      packed.push(packRunPoints(run.runId, run.keys, k, s, t, v));
    }
    for (let r = 0; r < batch.runs.length; r++)
      await this.requireActiveRun(batch.runs[r]!.runId, `batch.runs[${r}].run_id`);
    return {
      points,
      runPoints,
      event: {
        id: batchEventId(batch.clientId, batch.clientBatchId),
        type: 'MetricBatchIngested',
        schemaVersion: 1,
        occurredAt: this.now(),
        data: { clientId: batch.clientId, clientBatchId: batch.clientBatchId, runs: packed },
        metadata: { actor: 'anonymous', correlationId: batch.clientBatchId, causationId: null },
      },
    };
  }

  private async requireActiveRun(runId: string, field: string): Promise<void> {
    const { run, experiment } = await runWithExperiment(this.aggregates, runId);
    if (!run.exists) throw invalid(field, `run ${runId} does not exist`);
    const stage = effectiveRunLifecycle(run, experiment);
    if (stage !== 'active')
      throw invalid(field, `run ${runId} must be in the 'active' state; it is ${stage}`);
  }
}
