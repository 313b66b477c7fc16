import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { InMemoryEventStore } from '@ledgerflow/event-store';
import { SqliteReadModelStore, type Projection } from '@ledgerflow/projections';
import { LedgerflowMetrics } from '@ledgerflow/telemetry';
import { startLocalKafka, type LocalKafka } from '@ledgerflow/testing';
import { BusProjectionRunner } from './bus-projection-runner.js';
import { ReadModelCheckpointStore, type CheckpointStore } from './checkpoints.js';
import type { BusMessage } from './event-bus.js';
import { KafkaEventBus } from './kafka-event-bus.js';
import { OutboxPublisher } from './outbox-publisher.js';
import { eventsTopic } from './topics.js';
import {
  appendWorkload,
  appliedIds,
  crashBeforeCommit,
  replayHash,
  strictProjection,
  testEvents,
  waitUntil,
} from './testing/fixtures.js';

/** How long the broker stays down in the outage test (the full fault is 30 s). */
const OUTAGE_SECONDS = Number(process.env['LEDGERFLOW_KAFKA_OUTAGE_SECONDS'] ?? 5);

let kafka: LocalKafka;
let scratch: string;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  kafka = await startLocalKafka();
  scratch = mkdtempSync(path.join(tmpdir(), 'ledgerflow-kafka-spec-'));
}, 20 * 60_000);

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
});

afterAll(async () => {
  await kafka?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

function newBus(): KafkaEventBus {
  const bus = new KafkaEventBus({ brokers: kafka.brokers, clientId: 'ledgerflow-spec' });
  closers.push(() => bus.close());
  return bus;
}

function sqliteReadModels(): SqliteReadModelStore {
  const store = new SqliteReadModelStore({ path: path.join(scratch, `${randomUUID()}.db`) });
  closers.push(() => store.close());
  return store;
}

const uniqueTopic = (): string => eventsTopic(`spec-${randomUUID().slice(0, 8)}`);

/** A log of `events` events on a fresh topic, published by an outbox; resolves once all are sent. */
async function publishedWorkload(
  events: number,
): Promise<{ topic: string; store: InMemoryEventStore; last: number }> {
  const topic = uniqueTopic();
  const store = new InMemoryEventStore();
  const outbox = new OutboxPublisher({
    name: 'outbox:spec',
    eventStore: store,
    bus: newBus(),
    checkpoints: new ReadModelCheckpointStore(sqliteReadModels()),
    topic,
  });
  await outbox.start();
  closers.push(() => outbox.stop());
  const last = await appendWorkload(store, events);
  await outbox.waitFor(last, 60_000);
  return { topic, store, last };
}

describe('KafkaEventBus on a real broker', () => {
  it('keeps each stream in order on one partition, for every consumer group', async () => {
    const metrics = new LedgerflowMetrics({ processMetrics: false });
    const bus = new KafkaEventBus({ brokers: kafka.brokers, clientId: 'ledgerflow-spec', metrics });
    closers.push(() => bus.close());
    const topic = uniqueTopic();
    await bus.ensureTopics([{ name: topic, partitions: 3 }]);
    const store = new InMemoryEventStore();
    await appendWorkload(store, 240, 10, 4);
    const events = await store.readAll(0, 1000);
    for (let i = 0; i < events.length; i += 50) {
      await bus.publish(
        topic,
        events.slice(i, i + 50).map((event) => ({ event })),
      );
    }
    for (const group of ['a', 'b']) {
      const seen: BusMessage[] = [];
      const sub = await bus.subscribe({
        groupId: `${topic}.${group}`,
        topics: [topic],
        handler: async (messages) => void seen.push(...messages),
      });
      await waitUntil(() => seen.length >= 240, 60_000);
      await sub.close();
      expect(seen.length).toBe(240);
      expect(new Set(seen.map((m) => m.partition)).size).toBeGreaterThan(1);
      for (const stream of new Set(events.map((e) => e.stream))) {
        const mine = seen.filter((m) => m.key === stream);
        expect(mine.map((m) => m.event.revision)).toEqual(mine.map((_, i) => i));
        expect(new Set(mine.map((m) => m.partition)).size).toBe(1);
      }
      expect(seen[0]!.headers['ledgerflow-event-id']).toBe(seen[0]!.event.id);
    }
    const text = (await metrics.render()).body;
    expect(text).toContain(
      `ledgerflow_kafka_consumed_messages_total{group="${topic}.a",topic="${topic}"} 240`,
    );
    // Caught up: every partition of the group reports zero lag.
    const lags = [
      ...text.matchAll(/ledgerflow_kafka_consumer_lag\{group="[^"]+\.a",[^}]*\} (\d+)/g),
    ];
    expect(lags.length).toBeGreaterThan(0);
    expect(lags.every((m) => m[1] === '0')).toBe(true);
  }, 120_000);

  it('outbox: a publisher killed between an acknowledged send and its checkpoint loses nothing', async () => {
    const topic = uniqueTopic();
    const store = new InMemoryEventStore();
    const checkpointStore = sqliteReadModels();
    const real = new ReadModelCheckpointStore(checkpointStore);
    let saves = 0;
    const dying: CheckpointStore = {
      load: (name) => real.load(name),
      async save(name, event) {
        if (++saves > 2) throw new Error('killed before the checkpoint');
        await real.save(name, event);
      },
    };
    const firstBus = newBus();
    const first = new OutboxPublisher({
      name: 'outbox:spec',
      eventStore: store,
      bus: firstBus,
      checkpoints: dying,
      topic,
      batchSize: 25,
      retryMinMs: 20,
      retryMaxMs: 20,
    });
    await first.start();
    const last = await appendWorkload(store, 200);
    await waitUntil(() => first.status().failures >= 2, 60_000);
    await first.stop();
    await firstBus.close();
    const checkpoint = await real.load('outbox:spec');
    expect(checkpoint).toBeGreaterThan(0);
    expect(checkpoint).toBeLessThan(last);

    const second = new OutboxPublisher({
      name: 'outbox:spec',
      eventStore: store,
      bus: newBus(),
      checkpoints: real,
      topic,
    });
    await second.start();
    closers.push(() => second.stop());
    await second.waitFor(last, 60_000);

    const readModels = sqliteReadModels();
    const runner = new BusProjectionRunner({
      bus: newBus(),
      topics: [topic],
      readModels,
      projection: strictProjection,
    });
    await runner.start();
    closers.push(() => runner.stop());
    await runner.waitFor(last, 60_000);
    const ids = await appliedIds(readModels);
    expect(ids.length).toBe(200);
    expect(new Set(ids).size).toBe(200);
    // The tail sent before the crash went out twice; the runner dropped the copies.
    expect(runner.status().redelivered).toBeGreaterThan(0);
    expect(await readModels.contentHash(strictProjection)).toBe(
      await replayHash(store, sqliteReadModels()),
    );
  }, 180_000);

  it('a projection consumer killed between its read-model write and its offset commit applies each event once', async () => {
    const { topic, store, last } = await publishedWorkload(150);

    const readModels = sqliteReadModels();
    const groupId = `${topic}.projection`;
    const crashing = crashBeforeCommit(newBus(), 1);
    const first = new BusProjectionRunner({
      bus: crashing.bus,
      topics: [topic],
      readModels,
      projection: strictProjection,
      groupId,
      batchSize: 10,
    });
    await first.start();
    await crashing.crashed;
    await first.stop();
    await crashing.bus.close();
    const written = (await readModels.checkpoint(strictProjection.name)).position;
    expect(written).toBeGreaterThan(0);

    const second = new BusProjectionRunner({
      bus: newBus(),
      topics: [topic],
      readModels,
      projection: strictProjection,
      groupId,
    });
    await second.start();
    closers.push(() => second.stop());
    await second.waitFor(last, 60_000);
    // Nothing was committed before the kill: the messages of every applied event come again.
    await waitUntil(() => second.status().redelivered >= written, 60_000);
    const ids = await appliedIds(readModels);
    expect(ids.length).toBe(150);
    expect(new Set(ids).size).toBe(150);
    expect(await readModels.contentHash(strictProjection)).toBe(
      await replayHash(store, sqliteReadModels()),
    );
  }, 180_000);

  it('a projection that fails once recovers: the failed batch is applied again, with the messages of every partition it held', async () => {
    const { topic, store, last } = await publishedWorkload(60);

    // one failure on the first event: its batch holds messages of several partitions, and only the
    // partition whose delivery threw is delivered again (before the fix the runner had dropped
    // the others' messages and waited for them forever: stuck at 3 with 27 held back)
    let thrown = 0;
    const flaky: Projection = {
      ...strictProjection,
      apply(event, writer) {
        if (thrown === 0) {
          thrown++;
          throw new Error('the read-model store hiccuped');
        }
        return strictProjection.apply(event, writer);
      },
    };
    const readModels = sqliteReadModels();
    const runner = new BusProjectionRunner({
      bus: newBus(),
      topics: [topic],
      readModels,
      projection: flaky,
      groupId: `${topic}.projection`,
    });
    await runner.start();
    closers.push(() => runner.stop());
    await runner.waitFor(last, 90_000);
    expect(thrown).toBe(1);
    expect(runner.status()).toMatchObject({ failed: false, stopped: undefined, buffered: 0 });
    const ids = await appliedIds(readModels);
    expect(ids.length).toBe(60);
    expect(new Set(ids).size).toBe(60);
    expect(await readModels.contentHash(flaky)).toBe(await replayHash(store, sqliteReadModels()));
  }, 180_000);

  it('a consumer that kafkajs will not restart (a message it cannot decode) is subscribed again, and shows as stopped meanwhile', async () => {
    const topic = uniqueTopic();
    const bus = newBus();
    await bus.ensureTopics([{ name: topic }]);
    // a message that is not an event envelope: decoding it throws a SyntaxError, which kafkajs
    // neither retries nor restarts the consumer after (without the runner subscribing again, the
    // consumer would stay down and nothing would say so)
    const { Kafka } = await import('kafkajs');
    const producer = new Kafka({
      brokers: kafka.brokers,
      clientId: 'ledgerflow-spec-poison',
    }).producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'x', value: '{not json' }] });
    await producer.disconnect();

    const errors: unknown[] = [];
    const runner = new BusProjectionRunner({
      bus,
      topics: [topic],
      readModels: sqliteReadModels(),
      projection: strictProjection,
      groupId: `${topic}.projection`,
      resubscribeDelayMs: 100,
      onError: (e) => errors.push(e),
    });
    await runner.start();
    closers.push(() => runner.stop());
    await waitUntil(() => runner.status().restarts >= 2, 90_000);
    const status = runner.status();
    expect(status.stopped).toMatch(/JSON/);
    // each stop is reported: kafkajs wraps the SyntaxError as KafkaJSNonRetriableError
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors.every((e) => /NonRetriable.*JSON/.test(String(e)))).toBe(true);
    // it stops again on the same message each time: the runner keeps trying, and is not ready
    expect(status.position).toBe(0);
  }, 180_000);

  it(`loses nothing when the broker is stopped for ${OUTAGE_SECONDS} s during a write workload`, async () => {
    const topic = uniqueTopic();
    const store = new InMemoryEventStore();
    const outbox = new OutboxPublisher({
      name: 'outbox:spec',
      eventStore: store,
      bus: newBus(),
      checkpoints: new ReadModelCheckpointStore(sqliteReadModels()),
      topic,
      batchSize: 50,
      retryMaxMs: 1000,
    });
    await outbox.start();
    closers.push(() => outbox.stop());
    const readModels = sqliteReadModels();
    const runner = new BusProjectionRunner({
      bus: newBus(),
      topics: [topic],
      readModels,
      projection: strictProjection,
    });
    await runner.start();
    closers.push(() => runner.stop());

    let writing = true;
    let appended = 0;
    const workload = (async () => {
      while (writing) {
        await store.append(`bus-test:${appended % 16}`, 'any', testEvents(2));
        appended += 2;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await waitUntil(() => runner.position > 0, 60_000);
    await kafka.stopBroker();
    let duringOutage: { appended: number; head: number; published: number };
    try {
      const before = appended;
      await new Promise((r) => setTimeout(r, OUTAGE_SECONDS * 1000));
      duringOutage = {
        appended: appended - before,
        head: await store.headPosition(),
        published: outbox.status().position,
      };
    } finally {
      await kafka.startBroker();
    }
    // Writes went on while Kafka was away, and were not published until it came back.
    expect(duringOutage.appended).toBeGreaterThan(0);
    expect(duringOutage.published).toBeLessThan(duringOutage.head);
    await new Promise((r) => setTimeout(r, 2000));
    writing = false;
    await workload;
    const last = await store.headPosition();
    await outbox.waitFor(last, 120_000);
    await runner.waitFor(last, 120_000);
    const ids = await appliedIds(readModels);
    expect(ids.length).toBe(appended);
    expect(new Set(ids).size).toBe(appended);
    expect(await readModels.contentHash(strictProjection)).toBe(
      await replayHash(store, sqliteReadModels()),
    );
  }, 300_000);
});
