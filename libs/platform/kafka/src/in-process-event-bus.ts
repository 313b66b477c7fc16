import {
  contextFromHeaders,
  eventAttributes,
  eventContext,
  SpanKind,
  traceHeaders,
  tracer,
  withSpan,
} from '@ledgerflow/telemetry';
import {
  encodeEvent,
  type BusMessage,
  type BusOffset,
  type BusSubscribeOptions,
  type BusSubscription,
  type EventBus,
  type OutgoingEvent,
} from './event-bus.js';
import { checkedTopic, DEFAULT_PARTITIONS, type TopicSpec } from './topics.js';

interface Topic {
  readonly partitions: BusMessage[][];
}

interface Group {
  /** Committed offset per `topic/partition`: the next message to deliver after a restart. */
  readonly committed: Map<string, number>;
  member: InProcessSubscription | undefined;
}

/** FNV-1a: the same key always lands on the same partition. */
function partitionOf(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

const slot = (topic: string, partition: number): string => `${topic}/${partition}`;

/**
 * The event bus inside one process (embedded mode, and unit tests of consumers): topics with
 * partitions and consumer groups with committed offsets, with Kafka's delivery semantics (per
 * partition order, redelivery of what was not committed), kept in memory.
 */
export class InProcessEventBus implements EventBus {
  private readonly topics = new Map<string, Topic>();
  private readonly groups = new Map<string, Group>();
  private closed = false;

  constructor(private readonly defaultPartitions = DEFAULT_PARTITIONS) {}

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    for (const spec of specs) {
      checkedTopic(spec.name);
      if (this.topics.has(spec.name)) continue;
      const count = spec.partitions ?? this.defaultPartitions;
      this.topics.set(spec.name, { partitions: Array.from({ length: count }, () => []) });
    }
  }

  private topic(name: string): Topic {
    const topic = this.topics.get(name);
    if (topic === undefined) throw new Error(`unknown topic '${name}' (ensureTopics first)`);
    return topic;
  }

  async publish(topicName: string, events: readonly OutgoingEvent[]): Promise<void> {
    if (this.closed) throw new Error('event bus is closed');
    const topic = this.topic(topicName);
    for (const out of events) {
      await withSpan(
        `${topicName} publish`,
        {
          kind: SpanKind.PRODUCER,
          parent: eventContext(out.event),
          attributes: { ...eventAttributes(out.event), 'messaging.destination.name': topicName },
        },
        () => {
          const { key, headers } = encodeEvent(out);
          Object.assign(headers, traceHeaders());
          const partition = partitionOf(key, topic.partitions.length);
          const log = topic.partitions[partition]!;
          log.push({
            topic: topicName,
            partition,
            offset: String(log.length),
            key,
            // A copy, as a broker would hand over: consumers cannot alter the publisher's object.
            event: structuredClone(out.event),
            prevPosition: out.prevPosition ?? null,
            headers,
          });
        },
      );
    }
    for (const group of this.groups.values()) group.member?.wake();
  }

  async subscribe(options: BusSubscribeOptions): Promise<BusSubscription> {
    if (this.closed) throw new Error('event bus is closed');
    for (const name of options.topics) this.topic(name);
    let group = this.groups.get(options.groupId);
    if (group === undefined) {
      group = { committed: new Map(), member: undefined };
      this.groups.set(options.groupId, group);
    }
    if (group.member !== undefined) {
      throw new Error(`consumer group '${options.groupId}' already has a member in this process`);
    }
    const member = new InProcessSubscription(this, group, options);
    group.member = member;
    member.start();
    return member;
  }

  /** @internal the messages of a partition from an offset on. */
  read(topic: string, partition: number, from: number, max: number): BusMessage[] {
    return this.topic(topic).partitions[partition]!.slice(from, from + max);
  }

  /** @internal */
  partitionLength(topic: string, partition: number): number {
    return this.topic(topic).partitions[partition]!.length;
  }

  /** @internal */
  partitionCount(topic: string): number {
    return this.topic(topic).partitions.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    const members = [...this.groups.values()].flatMap((g) => (g.member ? [g.member] : []));
    await Promise.all(members.map((m) => m.close()));
  }
}

const BATCH = 500;
const RETRY_MS = 200;

class InProcessSubscription implements BusSubscription {
  /** Next offset to fetch per partition (starts at the committed one). */
  private readonly fetched = new Map<string, number>();
  private readonly paused = new Set<string>();
  private running = true;
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly bus: InProcessEventBus,
    private readonly group: Group,
    private readonly options: BusSubscribeOptions,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  wake(): void {
    this.wakeUp?.();
  }

  async commit(offsets: readonly BusOffset[]): Promise<void> {
    for (const o of offsets) {
      const key = slot(o.topic, o.partition);
      const next = Number(o.offset) + 1;
      if (next > (this.group.committed.get(key) ?? 0)) this.group.committed.set(key, next);
    }
  }

  pause(topic: string, partition: number): void {
    this.paused.add(slot(topic, partition));
  }

  resume(topic: string, partition: number): void {
    this.paused.delete(slot(topic, partition));
    this.wake();
  }

  async close(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
    if (this.group.member === this) this.group.member = undefined;
  }

  /** Hands a batch to the handler with a consumer span per message, in its publisher's trace. */
  private async deliver(topic: string, messages: readonly BusMessage[]): Promise<void> {
    const spans = messages.map((m) =>
      tracer().startSpan(
        `${topic} process`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            ...eventAttributes(m.event),
            'messaging.destination.name': topic,
            'messaging.consumer.group.name': this.options.groupId,
          },
        },
        contextFromHeaders(m.headers),
      ),
    );
    try {
      await withSpan(
        `${topic} receive`,
        { kind: SpanKind.CONSUMER, parent: contextFromHeaders(messages[0]!.headers) },
        () => this.options.handler(messages, this),
      );
    } finally {
      for (const span of spans) span.end();
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      let delivered = false;
      for (const topic of this.options.topics) {
        for (let p = 0; p < this.bus.partitionCount(topic) && this.running; p++) {
          const key = slot(topic, p);
          if (this.paused.has(key)) continue;
          let from = this.fetched.get(key);
          if (from === undefined) {
            from =
              this.group.committed.get(key) ??
              (this.options.fromBeginning === false ? this.bus.partitionLength(topic, p) : 0);
            this.fetched.set(key, from);
          }
          const messages = this.bus.read(topic, p, from, BATCH);
          if (messages.length === 0) continue;
          delivered = true;
          try {
            await this.deliver(topic, messages);
          } catch (error) {
            this.options.onError?.(error);
            if (this.running) await new Promise((r) => setTimeout(r, RETRY_MS));
            continue;
          }
          this.fetched.set(key, from + messages.length);
          if (this.options.commit !== 'manual') await this.commit([messages.at(-1)!]);
        }
      }
      if (!delivered && this.running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, 1000);
          function done(): void {
            clearTimeout(timer);
            resolve();
          }
          this.wakeUp = done;
        });
        this.wakeUp = undefined;
      }
    }
  }
}
