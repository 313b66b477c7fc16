import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** A projection's progress, as a runner reports it. */
export interface CheckpointSample {
  readonly name: string;
  readonly position: number;
}

type Source<T> = () => T | Promise<T>;

/**
 * Every Prometheus metric a Ledgerflow process exposes on /metrics, in one registry per process
 * (or per in-process server, in tests). Gauges that describe state (checkpoints, log head) are read
 * from their sources when scraped, so they are never stale.
 */
export class LedgerflowMetrics {
  readonly registry = new Registry();

  /** HTTP requests by method, route pattern (not the raw URL) and status code. */
  readonly httpRequests = new Counter({
    name: 'ledgerflow_http_requests_total',
    help: 'HTTP requests served, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'ledgerflow_http_request_duration_seconds',
    help: 'HTTP request latency in seconds, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  /** Messages behind the partition's high watermark, as of the consumer's last fetch. */
  readonly kafkaConsumerLag = new Gauge({
    name: 'ledgerflow_kafka_consumer_lag',
    help: 'Kafka messages not yet consumed, by consumer group, topic and partition',
    labelNames: ['group', 'topic', 'partition'] as const,
    registers: [this.registry],
  });

  readonly kafkaConsumed = new Counter({
    name: 'ledgerflow_kafka_consumed_messages_total',
    help: 'Kafka messages handled, by consumer group and topic',
    labelNames: ['group', 'topic'] as const,
    registers: [this.registry],
  });

  /** Committed events the outbox has not yet published (log head minus publisher checkpoint). */
  readonly outboxDepth = new Gauge({
    name: 'ledgerflow_outbox_depth',
    help: 'Committed events not yet published to Kafka, by outbox publisher',
    labelNames: ['publisher'] as const,
    registers: [this.registry],
  });

  readonly outboxPublished = new Counter({
    name: 'ledgerflow_outbox_published_events_total',
    help: 'Events published by the outbox (acks=all), by publisher and topic',
    labelNames: ['publisher', 'topic'] as const,
    registers: [this.registry],
  });

  readonly outboxCheckpoint = new Gauge({
    name: 'ledgerflow_outbox_checkpoint_position',
    help: 'Last log position the outbox publisher has published and checkpointed',
    labelNames: ['publisher'] as const,
    registers: [this.registry],
  });

  private readonly checkpointSources: Source<readonly CheckpointSample[]>[] = [];
  private readonly headSources: Source<number>[] = [];

  readonly projectionCheckpoint = new Gauge({
    name: 'ledgerflow_projection_checkpoint_position',
    help: 'Last event-log position applied to each read model',
    labelNames: ['projection'] as const,
    registers: [this.registry],
    collect: async () => {
      const gauge = this.projectionCheckpoint;
      gauge.reset();
      for (const source of this.checkpointSources) {
        for (const sample of await source()) {
          gauge.set({ projection: sample.name }, sample.position);
        }
      }
    },
  });

  readonly eventLogHead = new Gauge({
    name: 'ledgerflow_event_log_head_position',
    help: 'Position of the last event in the event log',
    registers: [this.registry],
    collect: async () => {
      for (const source of this.headSources) this.eventLogHead.set(await source());
    },
  });

  private readonly readYourWritesSources: Source<number>[] = [];

  /** Writes answered before their read models showed them (the wait for them timed out). */
  readonly readYourWritesTimeouts = new Counter({
    name: 'ledgerflow_read_your_writes_timeouts_total',
    help: 'Committed writes answered before their read models showed them (the wait timed out)',
    registers: [this.registry],
    collect: async () => {
      let total = 0;
      for (const source of this.readYourWritesSources) total += await source();
      this.readYourWritesTimeouts.reset();
      this.readYourWritesTimeouts.inc(total);
    },
  });

  constructor(options: { readonly processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: 'ledgerflow_' });
    }
  }

  /** Reports read-model checkpoints at each scrape (e.g. `() => runner.status()`). */
  observeCheckpoints(source: Source<readonly CheckpointSample[]>): void {
    this.checkpointSources.push(source);
  }

  /** Reports a runner's read-your-writes timeouts at each scrape (`() => runner.readYourWritesTimeouts`). */
  observeReadYourWrites(source: Source<number>): void {
    this.readYourWritesSources.push(source);
  }

  /** Reports the event log's head position at each scrape. */
  observeLogHead(source: Source<number>): void {
    this.headSources.push(source);
  }

  /** The text exposition format, with its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
