import { writeSync } from 'node:fs';
import type { Clock } from '@ledgerflow/contracts';
import { AggregateStore, systemClock } from '@ledgerflow/event-store';
import {
  eventsTopic,
  KafkaEventBus,
  OutboxPublisher,
  ReadModelCheckpointStore,
} from '@ledgerflow/kafka';
import { MongoEventStore, MongoReadModelStore } from '@ledgerflow/platform-mongo';
import { ProjectionRunner, type Projection } from '@ledgerflow/projections';
import { LedgerflowMetrics } from '@ledgerflow/telemetry';
import type { DistributedConfig } from './distributed-config.js';
import {
  logAndProjectionChecks,
  READY_CHECK_TIMEOUT_MS,
  within,
  type ReadinessCheck,
} from './readiness.js';

/** The distributed adapters of one service: its MongoDB log and read models, Kafka, metrics. */
export interface DistributedPlatform {
  readonly eventStore: MongoEventStore;
  readonly readModels: MongoReadModelStore;
  readonly projections: ProjectionRunner;
  readonly aggregates: AggregateStore;
  readonly clock: Clock;
  readonly bus: KafkaEventBus;
  /** Publishes every committed event of this service's log to its Kafka topic. */
  readonly outbox: OutboxPublisher;
  readonly topic: string;
  readonly metrics: LedgerflowMetrics;
  /** Starts the outbox in the background (retrying while Kafka is unreachable). */
  startOutbox(): void;
  readiness(): Promise<ReadinessCheck[]>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retries `open` until it succeeds or `timeoutMs` passes (engines may still be starting). */
async function retrying<T>(
  what: string,
  open: () => Promise<T>,
  timeoutMs: number,
  log: (m: string) => void,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (e) {
      if (Date.now() >= deadline) throw e;
      log(
        `${what} not reachable yet (attempt ${attempt}): ${e instanceof Error ? e.message : String(e)}`,
      );
      await sleep(Math.min(2000, 200 * attempt));
    }
  }
}

/**
 * The test-only fault LEDGERFLOW_FAULT_KILL_AFTER_READMODEL_WRITE=<read model>:<n>: SIGKILL this
 * process while it commits the n-th batch (with document changes) of that read model: once the
 * batch's first collection of documents is written, before the rest of the batch and its
 * checkpoint (the read-model store's crash gap). Says so on stderr, synchronously, first.
 */
function killAfterReadModelWrite(
  fault: DistributedConfig['faultKillAfterReadModelWrite'],
  log: (message: string) => void,
): { onBatchWritten?: (projection: string, seq: number, position: number) => void } {
  if (fault === undefined) return {};
  log(
    `TEST-ONLY FAULT ARMED (LEDGERFLOW_FAULT_KILL_AFTER_READMODEL_WRITE): this process kills itself after writing batch ${fault.batch} of read model '${fault.projection}'`,
  );
  let batches = 0;
  return {
    onBatchWritten: (projection, seq, position) => {
      if (projection !== fault.projection || (batches += 1) < fault.batch) return;
      writeSync(
        2,
        `[ledgerflow] test-only fault: SIGKILL after writing read model '${projection}' commit ${seq} (log position ${position}) in part: its first collection of documents, not the rest nor its checkpoint\n`,
      );
      process.kill(process.pid, 'SIGKILL');
    },
  };
}

/**
 * Opens one service's distributed adapters: a MongoDB database holding its event log (commit
 * documents, unique (stream, revision)) and its read models, a projection runner catching the
 * read models up from the log, and an outbox that publishes the log to Kafka topic
 * `ledgerflow.<context>.events.v1` (keyed by stream id) for the services that react to it.
 */
export async function openDistributedPlatform(
  config: DistributedConfig,
  service: { readonly name: string; readonly context: string },
  projections: readonly Projection[],
  log: (message: string) => void = () => undefined,
  clock: Clock = systemClock,
  startTimeoutMs = 60_000,
): Promise<DistributedPlatform> {
  const target = { uri: config.mongoUrl, database: config.database };
  const eventStore = await retrying(
    `MongoDB ${config.mongoUrl}`,
    // this process is its log's only writer and its own appends wake every subscription at once:
    // polling only covers writes by hand or by a second process, so it can be slow (every poll
    // reads the log head, and a MongoDB-wire server without index pushdown scans for it)
    () => MongoEventStore.open({ ...target, pollIntervalMs: config.logPollMs }),
    startTimeoutMs,
    log,
  );
  let readModels: MongoReadModelStore;
  try {
    readModels = await MongoReadModelStore.open({
      ...target,
      ...killAfterReadModelWrite(config.faultKillAfterReadModelWrite, log),
    });
  } catch (e) {
    await eventStore.close();
    throw e;
  }
  const metrics = new LedgerflowMetrics();
  const runner = new ProjectionRunner({
    eventStore,
    readModels,
    projections,
    logger: log,
    // a command waits for its read models over the network: more room than in one process
    waitTimeoutMs: 30_000,
  });
  metrics.observeCheckpoints(() => runner.status());
  metrics.observeReadYourWrites(() => runner.readYourWritesTimeouts);
  metrics.observeLogHead(() => eventStore.headPosition());
  const aggregates = new AggregateStore(eventStore, clock);
  const bus = new KafkaEventBus({
    brokers: config.kafkaBrokers,
    clientId: `ledgerflow-${service.name}`,
    metrics,
    log: (level, message) => {
      if (level === 'warn' || level === 'error') log(`kafka: ${message}`);
    },
  });
  const topic = eventsTopic(service.context);
  const outbox = new OutboxPublisher({
    name: `outbox:${service.context}`,
    eventStore,
    bus,
    checkpoints: new ReadModelCheckpointStore(readModels),
    topic,
    metrics,
    idlePollMs: config.logPollMs,
    log: (_level, message) => log(message),
  });
  let outboxStarting: Promise<void> | undefined;
  let closed = false;
  // A projection whose batch failed (e.g. the MongoDB server went away longer than the store's
  // retries) stops; restart the runner from the stored checkpoints, which is always safe.
  let restarting = false;
  const supervisor = setInterval(() => {
    if (restarting || closed) return;
    const failed = runner.status().filter((s) => s.state === 'failed');
    if (failed.length === 0) return;
    restarting = true;
    log(
      `restarting the read models after a failure of ${failed.map((f) => `${f.name} (${f.error?.message ?? 'unknown'})`).join(', ')}`,
    );
    void (async () => {
      try {
        await runner.stop();
        if (!closed) await runner.start();
      } catch (e) {
        log(`read models did not restart yet: ${e instanceof Error ? e.message : String(e)}`);
      } finally {
        restarting = false;
      }
    })();
  }, 2000);
  supervisor.unref();
  return {
    eventStore,
    readModels,
    projections: runner,
    aggregates,
    clock,
    bus,
    outbox,
    topic,
    metrics,
    startOutbox() {
      outboxStarting ??= (async () => {
        for (let attempt = 1; !closed; attempt++) {
          try {
            await outbox.start();
            return;
          } catch (e) {
            log(
              `outbox: Kafka not reachable yet (attempt ${attempt}): ${e instanceof Error ? e.message : String(e)}`,
            );
            await sleep(Math.min(5000, 250 * attempt));
          }
        }
      })();
    },
    async readiness() {
      const checks = await logAndProjectionChecks(eventStore, runner, 'mongodb');
      const s = outbox.status();
      let depth = 0;
      try {
        depth = Math.max(
          0,
          (await within(eventStore.headPosition(), READY_CHECK_TIMEOUT_MS, 'mongodb')) - s.position,
        );
      } catch {
        depth = -1;
      }
      checks.push({
        name: 'kafka-outbox',
        ok: s.running && s.failures === 0,
        detail: !s.running
          ? 'not started (Kafka unreachable?)'
          : s.failures > 0
            ? `failing (${s.failures} attempts): ${s.lastError ?? ''}`
            : `published to ${s.position} on ${topic}, ${depth} waiting`,
      });
      return checks;
    },
    async close() {
      closed = true;
      clearInterval(supervisor);
      await outboxStarting;
      await outbox.stop();
      await runner.stop();
      await bus.close();
      await readModels.close();
      await eventStore.close();
    },
  };
}
