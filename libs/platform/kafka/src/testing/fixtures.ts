// Test fixtures shared by the bus specs (not exported from the library).
import { randomUUID } from 'node:crypto';
import type { NewEvent, RecordedEvent } from '@ledgerflow/contracts';
import type { EventStore } from '@ledgerflow/event-store';
import type { Projection, ReadModelStore } from '@ledgerflow/projections';
import type { BusSubscription, EventBus } from '../event-bus.js';

/**
 * A read model that fails loudly on anything but exact-once, in-order application: per stream it
 * requires the next revision, globally the next log position, and it records every event id.
 */
export const strictProjection: Projection = {
  name: 'bus-test',
  version: 1,
  collections: [{ name: 'bus_test_streams' }, { name: 'bus_test_log' }],
  async apply(event, writer) {
    const log = (await writer.get('bus_test_log', 'order')) ?? { lastPosition: 0, applied: 0 };
    if (event.position <= (log['lastPosition'] as number)) {
      throw new Error(`event at ${event.position} applied after ${String(log['lastPosition'])}`);
    }
    await writer.put('bus_test_log', 'order', {
      lastPosition: event.position,
      applied: (log['applied'] as number) + 1,
    });
    const doc = (await writer.get('bus_test_streams', event.stream)) ?? {
      lastRevision: -1,
      ids: [],
    };
    if (event.revision !== (doc['lastRevision'] as number) + 1) {
      throw new Error(
        `stream ${event.stream}: revision ${event.revision} after ${String(doc['lastRevision'])}`,
      );
    }
    await writer.put('bus_test_streams', event.stream, {
      lastRevision: event.revision,
      ids: [...(doc['ids'] as string[]), event.id],
    });
  },
};

export function testEvents(count: number, traceId: string | null = null): NewEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    id: randomUUID(),
    type: 'BusTestHappened',
    schemaVersion: 1,
    occurredAt: 1_700_000_000_000 + i,
    data: { i },
    metadata: {
      actor: 'bus-test',
      correlationId: 'bus-test',
      causationId: null,
      traceId,
    },
  }));
}

/** Appends `total` events over `streams` streams, a few per append. */
export async function appendWorkload(
  store: EventStore,
  total: number,
  streams = 12,
  perAppend = 3,
): Promise<number> {
  let last = 0;
  for (let n = 0; n < total; n += perAppend) {
    const stream = `bus-test:${n % streams}`;
    const result = await store.append(stream, 'any', testEvents(Math.min(perAppend, total - n)));
    last = result.lastPosition;
  }
  return last;
}

/** Content hash of the projection replayed straight from the log (the embedded way). */
export async function replayHash(
  store: EventStore,
  fresh: ReadModelStore,
  projection: Projection = strictProjection,
): Promise<string> {
  await fresh.setup(projection);
  let after = 0;
  for (;;) {
    const events: RecordedEvent[] = await store.readAll(after, 1000);
    if (events.length === 0) break;
    await fresh.applyBatch(projection, events);
    after = events.at(-1)!.position;
  }
  return fresh.contentHash(projection);
}

/** Every event id the strict read model holds, in stream order. */
export async function appliedIds(store: ReadModelStore): Promise<string[]> {
  const docs = await store.reader.scan('bus_test_streams');
  return docs.flatMap((d) => d['ids'] as string[]);
}

/**
 * A bus whose subscriptions die on their `n`th offset commit: the runner's read-model write for
 * those messages has happened, their offsets are never committed (a process killed in between).
 */
export function crashBeforeCommit(
  inner: EventBus,
  n: number,
): { bus: EventBus; crashed: Promise<void> } {
  let commits = 0;
  let signal!: () => void;
  const crashed = new Promise<void>((r) => (signal = r));
  const bus: EventBus = {
    ensureTopics: (t) => inner.ensureTopics(t),
    publish: (t, e) => inner.publish(t, e),
    close: () => inner.close(),
    async subscribe(options) {
      let dead = false;
      const wrapped: BusSubscription = {
        async commit(offsets) {
          if (offsets.length === 0 && !dead) return;
          if (dead || ++commits >= n) {
            dead = true;
            signal();
            throw new Error('killed between write and checkpoint');
          }
          await sub.commit(offsets);
        },
        pause: (t, p) => sub.pause(t, p),
        resume: (t, p) => sub.resume(t, p),
        close: () => sub.close(),
      };
      const sub = await inner.subscribe({
        ...options,
        handler: (messages) => options.handler(messages, wrapped),
      });
      return wrapped;
    },
  };
  return { bus, crashed };
}

export async function waitUntil(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
