import {
  Kafka,
  logLevel as KafkaLogLevel,
  Partitioners,
  type Admin,
  type Consumer,
  type IHeaders,
  type LogEntry,
  type Producer,
} from 'kafkajs';
import {
  contextFromHeaders,
  eventAttributes,
  eventContext,
  SpanKind,
  traceHeaders,
  tracer,
  withSpan,
  type LedgerflowMetrics,
} from '@ledgerflow/telemetry';
import { context, trace, type Span } from '@opentelemetry/api';
import {
  decodeEvent,
  encodeEvent,
  type BusMessage,
  type BusOffset,
  type BusSubscribeOptions,
  type BusSubscription,
  type EventBus,
  type OutgoingEvent,
} from './event-bus.js';
import {
  checkedTopic,
  DEFAULT_PARTITIONS,
  DEFAULT_RETENTION_MS,
  type TopicSpec,
} from './topics.js';

export type BusLogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface KafkaEventBusOptions {
  /** `host:port` of one or more brokers. */
  readonly brokers: readonly string[];
  readonly clientId?: string;
  /** Partitions of topics this bus creates (default 3). */
  readonly defaultPartitions?: number;
  /** retention.ms of topics this bus creates (default 7 days). */
  readonly defaultRetentionMs?: number;
  /** Receives the client's log lines (kafkajs logs retriable errors; they are reported as `warn`). */
  readonly log?: (level: BusLogLevel, message: string, extra: Record<string, unknown>) => void;
  readonly metrics?: LedgerflowMetrics;
}

function headerStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue;
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[k] = first.toString();
  }
  return out;
}

/**
 * The event bus on Apache Kafka through kafkajs. Publishing uses one idempotent producer
 * (acks=all, one request in flight, so a retry never reorders or duplicates within a session);
 * after a failed send the producer is replaced, and the caller (the outbox) retries the batch.
 * Messages are keyed by stream id and carry the event envelope as JSON with trace context headers.
 */
export class KafkaEventBus implements EventBus {
  private readonly kafka: Kafka;
  private producer: Producer | undefined;
  private producerReady: Promise<Producer> | undefined;
  private readonly subscriptions = new Set<KafkaSubscription>();

  constructor(private readonly options: KafkaEventBusOptions) {
    const log = options.log;
    this.kafka = new Kafka({
      clientId: options.clientId ?? 'ledgerflow',
      brokers: [...options.brokers],
      connectionTimeout: 3000,
      requestTimeout: 30000,
      retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 8 },
      logLevel: log === undefined ? KafkaLogLevel.NOTHING : KafkaLogLevel.INFO,
      logCreator: () => (entry: LogEntry) => {
        if (log === undefined) return;
        const { message, ...extra } = entry.log;
        const level: BusLogLevel =
          entry.level <= KafkaLogLevel.WARN
            ? 'warn'
            : entry.level === KafkaLogLevel.INFO
              ? 'info'
              : 'debug';
        log(level, `${entry.namespace}: ${message}`, extra);
      },
    });
  }

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    const admin: Admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const missing = specs.filter((s) => !existing.has(checkedTopic(s.name)));
      if (missing.length === 0) return;
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((s) => ({
          topic: s.name,
          numPartitions: s.partitions ?? this.options.defaultPartitions ?? DEFAULT_PARTITIONS,
          configEntries: [
            {
              name: 'retention.ms',
              value: String(
                s.retentionMs ?? this.options.defaultRetentionMs ?? DEFAULT_RETENTION_MS,
              ),
            },
            { name: 'cleanup.policy', value: 'delete' },
          ],
        })),
      });
    } finally {
      await admin.disconnect();
    }
  }

  private async getProducer(): Promise<Producer> {
    if (this.producerReady === undefined) {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
        retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 6 },
      });
      this.producer = producer;
      this.producerReady = producer.connect().then(() => producer);
      this.producerReady.catch(() => this.dropProducer(producer));
    }
    return this.producerReady;
  }

  /** Forgets a producer after a failure, so the next publish starts a new session. */
  private dropProducer(producer: Producer): void {
    if (this.producer !== producer) return;
    this.producer = undefined;
    this.producerReady = undefined;
    void producer.disconnect().catch(() => {});
  }

  async publish(topic: string, events: readonly OutgoingEvent[]): Promise<void> {
    if (events.length === 0) return;
    const spans: Span[] = [];
    const messages = events.map((out) => {
      const span = tracer().startSpan(
        `${topic} publish`,
        {
          kind: SpanKind.PRODUCER,
          attributes: {
            ...eventAttributes(out.event),
            'messaging.system': 'kafka',
            'messaging.destination.name': topic,
          },
        },
        eventContext(out.event, context.active()),
      );
      spans.push(span);
      const { key, value, headers } = encodeEvent(out);
      Object.assign(headers, traceHeaders(trace.setSpan(context.active(), span)));
      return { key, value, headers };
    });
    const producer = await this.getProducer();
    try {
      await producer.send({ topic, acks: -1, messages });
    } catch (error) {
      this.dropProducer(producer);
      for (const span of spans) span.recordException(error as Error);
      throw error;
    } finally {
      for (const span of spans) span.end();
    }
  }

  async subscribe(options: BusSubscribeOptions): Promise<KafkaSubscription> {
    const consumer = this.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      rebalanceTimeout: 20_000,
      allowAutoTopicCreation: false,
      retry: { initialRetryTime: 200, maxRetryTime: 3000, retries: 10 },
    });
    const subscription = new KafkaSubscription(consumer, options, this.options.metrics);
    await subscription.start();
    this.subscriptions.add(subscription);
    subscription.onClose = () => this.subscriptions.delete(subscription);
    return subscription;
  }

  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    const producer = this.producer;
    this.producer = undefined;
    this.producerReady = undefined;
    await producer?.disconnect().catch(() => {});
  }
}

class KafkaSubscription implements BusSubscription {
  onClose: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly consumer: Consumer,
    private readonly options: BusSubscribeOptions,
    private readonly metrics: LedgerflowMetrics | undefined,
  ) {}

  async start(): Promise<void> {
    const { consumer, options } = this;
    consumer.on(consumer.events.CRASH, (e) => {
      // kafkajs restarts the consumer itself after retriable errors; after any other it stays
      // down, and only the owner can bring it back
      if (!e.payload.restart && !this.closed) options.onStopped?.(e.payload.error);
    });
    await consumer.connect();
    await consumer.subscribe({
      topics: [...options.topics],
      fromBeginning: options.fromBeginning ?? true,
    });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async (payload) => {
        const { batch } = payload;
        if (payload.isStale() || batch.messages.length === 0) return;
        const messages: BusMessage[] = [];
        for (const m of batch.messages) {
          const headers = headerStrings(m.headers);
          if (m.value === null) continue;
          const { event, prevPosition } = decodeEvent(m.value.toString(), headers);
          messages.push({
            topic: batch.topic,
            partition: batch.partition,
            offset: m.offset,
            key: m.key?.toString() ?? event.stream,
            event,
            prevPosition,
            headers,
          });
        }
        const spans = messages.map((m) =>
          tracer().startSpan(
            `${m.topic} process`,
            {
              kind: SpanKind.CONSUMER,
              attributes: {
                ...eventAttributes(m.event),
                'messaging.system': 'kafka',
                'messaging.destination.name': m.topic,
                'messaging.consumer.group.name': options.groupId,
              },
            },
            contextFromHeaders(m.headers),
          ),
        );
        try {
          if (messages.length > 0) {
            await withSpan(
              `${batch.topic} receive`,
              { kind: SpanKind.CONSUMER, parent: contextFromHeaders(messages[0]!.headers) },
              () => options.handler(messages, this),
            );
          }
        } catch (error) {
          options.onError?.(error);
          throw error;
        } finally {
          for (const span of spans) span.end();
        }
        payload.resolveOffset(batch.lastOffset());
        if (options.commit !== 'manual') {
          await this.commit([
            { topic: batch.topic, partition: batch.partition, offset: batch.lastOffset() },
          ]);
        }
        this.metrics?.kafkaConsumed.inc(
          { group: options.groupId, topic: batch.topic },
          messages.length,
        );
        this.metrics?.kafkaConsumerLag.set(
          { group: options.groupId, topic: batch.topic, partition: String(batch.partition) },
          Number(batch.offsetLag()),
        );
        await payload.heartbeat();
      },
    });
  }

  async commit(offsets: readonly BusOffset[]): Promise<void> {
    if (offsets.length === 0 || this.closed) return;
    await this.consumer.commitOffsets(
      offsets.map((o) => ({
        topic: o.topic,
        partition: o.partition,
        offset: (BigInt(o.offset) + 1n).toString(),
      })),
    );
  }

  pause(topic: string, partition: number): void {
    this.consumer.pause([{ topic, partitions: [partition] }]);
  }

  resume(topic: string, partition: number): void {
    this.consumer.resume([{ topic, partitions: [partition] }]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.consumer.disconnect();
    this.onClose?.();
  }
}
