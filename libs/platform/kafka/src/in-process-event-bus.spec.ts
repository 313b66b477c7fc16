import { InMemoryEventStore } from '@ledgerflow/event-store';
import { InMemoryReadModelStore } from '@ledgerflow/projections';
import { BusProjectionRunner } from './bus-projection-runner.js';
import { ReadModelCheckpointStore } from './checkpoints.js';
import type { CheckpointStore } from './checkpoints.js';
import type { BusMessage } from './event-bus.js';
import { InProcessEventBus } from './in-process-event-bus.js';
import { OutboxPublisher } from './outbox-publisher.js';
import { eventsTopic } from './topics.js';
import {
  appendWorkload,
  appliedIds,
  replayHash,
  crashBeforeCommit,
  strictProjection,
  testEvents,
  waitUntil,
} from './testing/fixtures.js';

const topic = eventsTopic('bustest');

describe('InProcessEventBus', () => {
  it('delivers each key in order to every group, and redelivers what a group did not commit', async () => {
    const bus = new InProcessEventBus(4);
    await bus.ensureTopics([{ name: topic }]);
    const store = new InMemoryEventStore();
    await appendWorkload(store, 60, 6, 2);
    const events = await store.readAll(0, 1000);
    await bus.publish(
      topic,
      events.map((event) => ({ event })),
    );
    const seen: BusMessage[] = [];
    const sub = await bus.subscribe({
      groupId: 'g',
      topics: [topic],
      commit: 'manual',
      handler: async (messages) => void seen.push(...messages),
    });
    await waitUntil(() => seen.length === 60);
    const partitions = new Set(seen.map((m) => m.partition));
    expect(partitions.size).toBeGreaterThan(1);
    for (const stream of new Set(events.map((e) => e.stream))) {
      const revisions = seen.filter((m) => m.key === stream).map((m) => m.event.revision);
      expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
      expect(new Set(seen.filter((m) => m.key === stream).map((m) => m.partition)).size).toBe(1);
    }
    // Commit one partition only, leave the group, come back: the rest is delivered again.
    const first = seen[0]!;
    const lastOfFirst = seen.filter((m) => m.partition === first.partition).at(-1)!;
    await sub.commit([lastOfFirst]);
    await sub.close();
    const again: BusMessage[] = [];
    const sub2 = await bus.subscribe({
      groupId: 'g',
      topics: [topic],
      handler: async (messages) => void again.push(...messages),
    });
    const expected = seen.filter((m) => m.partition !== first.partition).length;
    await waitUntil(() => again.length === expected);
    expect(again.every((m) => m.partition !== first.partition)).toBe(true);
    await sub2.close();
    await bus.close();
  });
});

describe('OutboxPublisher and BusProjectionRunner (in-process bus)', () => {
  it('rebuild exact log order across partitions and apply each event once', async () => {
    const store = new InMemoryEventStore();
    const bus = new InProcessEventBus(5);
    const checkpoints = new ReadModelCheckpointStore(new InMemoryReadModelStore());
    const outbox = new OutboxPublisher({
      name: 'outbox:test',
      eventStore: store,
      bus,
      checkpoints,
      topic,
      batchSize: 7,
    });
    await outbox.start();
    const readModels = new InMemoryReadModelStore();
    const runner = new BusProjectionRunner({
      bus,
      topics: [topic],
      readModels,
      projection: strictProjection,
      batchSize: 5,
    });
    await runner.start();
    const last = await appendWorkload(store, 300, 17, 4);
    await outbox.waitFor(last);
    await runner.waitFor(last);
    expect(await readModels.contentHash(strictProjection)).toBe(
      await replayHash(store, new InMemoryReadModelStore()),
    );
    expect((await appliedIds(readModels)).length).toBe(300);
    await runner.stop();
    await outbox.stop();
  });

  it('a runner whose read-model write failed is healthy again once the redelivered batch applies', async () => {
    const store = new InMemoryEventStore();
    const bus = new InProcessEventBus(3);
    const outbox = new OutboxPublisher({
      name: 'outbox:test',
      eventStore: store,
      bus,
      checkpoints: new ReadModelCheckpointStore(new InMemoryReadModelStore()),
      topic,
    });
    await outbox.start();
    let failures = 1;
    const readModels = new InMemoryReadModelStore();
    const flaky = Object.assign(Object.create(readModels) as InMemoryReadModelStore, {
      applyBatch: (...args: Parameters<InMemoryReadModelStore['applyBatch']>) => {
        if (failures > 0) {
          failures--;
          return Promise.reject(new Error('read-model store unreachable'));
        }
        return readModels.applyBatch(...args);
      },
    });
    const errors: unknown[] = [];
    const runner = new BusProjectionRunner({
      bus,
      topics: [topic],
      readModels: flaky,
      projection: strictProjection,
      onError: (e) => errors.push(e),
    });
    await runner.start();
    const last = await appendWorkload(store, 20, 3, 2);
    await outbox.waitFor(last);
    await runner.waitFor(last);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(runner.status()).toMatchObject({ position: last, failed: false });
    expect((await appliedIds(readModels)).length).toBe(20);
    await runner.stop();
    await outbox.stop();
  });

  it('a publisher that dies after a send but before its checkpoint republishes the tail, which the runner skips', async () => {
    const store = new InMemoryEventStore();
    const bus = new InProcessEventBus(3);
    const checkpointStore = new InMemoryReadModelStore();
    const real = new ReadModelCheckpointStore(checkpointStore);
    let saves = 0;
    const dying: CheckpointStore = {
      load: (name) => real.load(name),
      async save(name, event) {
        if (++saves > 3) throw new Error('killed before the checkpoint');
        await real.save(name, event);
      },
    };
    const first = new OutboxPublisher({
      name: 'outbox:test',
      eventStore: store,
      bus,
      checkpoints: dying,
      topic,
      batchSize: 10,
      retryMinMs: 5,
      retryMaxMs: 5,
    });
    await first.start();
    const last = await appendWorkload(store, 100);
    await waitUntil(() => first.status().failures > 0);
    await first.stop();
    const republishFrom = await real.load('outbox:test');
    expect(republishFrom).toBeGreaterThan(0);
    expect(republishFrom).toBeLessThan(last);
    expect(first.status().position).toBe(republishFrom);
    const second = new OutboxPublisher({
      name: 'outbox:test',
      eventStore: store,
      bus,
      checkpoints: real,
      topic,
      batchSize: 10,
    });
    await second.start();
    await second.waitFor(last);
    const readModels = new InMemoryReadModelStore();
    const runner = new BusProjectionRunner({
      bus,
      topics: [topic],
      readModels,
      projection: strictProjection,
    });
    await runner.start();
    await runner.waitFor(last);
    const ids = await appliedIds(readModels);
    expect(ids.length).toBe(100);
    expect(new Set(ids).size).toBe(100);
    expect(runner.status().redelivered).toBeGreaterThan(0);
    await runner.stop();
    await second.stop();
  });

  it('a runner killed between its read-model write and its offset commit applies nothing twice', async () => {
    const store = new InMemoryEventStore();
    const inner = new InProcessEventBus(3);
    const outbox = new OutboxPublisher({
      name: 'outbox:test',
      eventStore: store,
      bus: inner,
      checkpoints: new ReadModelCheckpointStore(new InMemoryReadModelStore()),
      topic,
    });
    await outbox.start();
    const last = await appendWorkload(store, 120);
    await outbox.waitFor(last);
    const readModels = new InMemoryReadModelStore();
    const crashing = crashBeforeCommit(inner, 1);
    const first = new BusProjectionRunner({
      bus: crashing.bus,
      topics: [topic],
      readModels,
      projection: strictProjection,
      batchSize: 10,
    });
    await first.start();
    await crashing.crashed;
    await first.stop();
    const appliedBeforeRestart = (await readModels.checkpoint(strictProjection.name)).position;
    expect(appliedBeforeRestart).toBeGreaterThan(0);
    const second = new BusProjectionRunner({
      bus: inner,
      topics: [topic],
      readModels,
      projection: strictProjection,
    });
    await second.start();
    await second.waitFor(last);
    await waitUntil(() => second.status().redelivered >= appliedBeforeRestart);
    const ids = await appliedIds(readModels);
    expect(ids.length).toBe(120);
    expect(new Set(ids).size).toBe(120);
    expect(await readModels.contentHash(strictProjection)).toBe(
      await replayHash(store, new InMemoryReadModelStore()),
    );
    await second.stop();
    await outbox.stop();
  });

  it('publishes events with trace ids and without them', async () => {
    const bus = new InProcessEventBus(1);
    await bus.ensureTopics([{ name: topic }]);
    const store = new InMemoryEventStore();
    await store.append('s', 'any', testEvents(1, 'ab'.repeat(16)));
    await bus.publish(
      topic,
      (await store.readAll(0)).map((event) => ({ event, prevPosition: 0 })),
    );
    const got: BusMessage[] = [];
    const sub = await bus.subscribe({
      groupId: 'g',
      topics: [topic],
      handler: async (m) => void got.push(...m),
    });
    await waitUntil(() => got.length === 1);
    expect(got[0]!.prevPosition).toBe(0);
    expect(got[0]!.headers['ledgerflow-event-id']).toBe(got[0]!.event.id);
    await sub.close();
  });
});
