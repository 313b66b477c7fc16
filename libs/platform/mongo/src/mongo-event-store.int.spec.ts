import { once } from 'node:events';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { MongoClient } from 'mongodb';
import { WrongExpectedRevisionError } from '@ledgerflow/event-store';
import {
  describeEventStoreContract,
  describeWithLocalMongo,
  newTestEvent,
  startLocalMongo,
  type LocalMongo,
} from '@ledgerflow/testing';
import { MONGO_CLIENT_OPTIONS } from './mongo-connection.js';
import {
  MongoEventStore,
  positionKey,
  type CommitDocument,
  type StoredEvent,
} from './mongo-event-store.js';

let server: LocalMongo;
let admin: MongoClient;
let databases = 0;
const newDatabase = (): string => `lf_es_${process.pid}_${(databases += 1)}`;

function events(count: number): ReturnType<typeof newTestEvent>[] {
  return Array.from({ length: count }, () => newTestEvent());
}

describeWithLocalMongo('MongoEventStore on a MongoDB-wire server', () => {
  beforeAll(async () => {
    server = await startLocalMongo();
    admin = new MongoClient(server.uri, MONGO_CLIENT_OPTIONS);
    await admin.connect();
  }, 600_000);

  afterAll(async () => {
    await admin?.close();
    await server?.stop();
  });

  describeEventStoreContract('MongoEventStore', async () => {
    const database = newDatabase();
    const store = await MongoEventStore.open({ uri: server.uri, database });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await admin.db(database).dropDatabase();
      },
    };
  });

  describe('several processes on one log (one client each)', () => {
    let database: string;
    let stores: MongoEventStore[];

    beforeEach(async () => {
      database = newDatabase();
      stores = await Promise.all(
        Array.from({ length: 4 }, () => MongoEventStore.open({ uri: server.uri, database })),
      );
    });

    afterEach(async () => {
      await Promise.all(stores.map((s) => s.close()));
      await admin.db(database).dropDatabase();
    });

    it('concurrent appends with the same expected revision from different clients: exactly one wins', async () => {
      await stores[0]!.append('contested', 'no_stream', events(1));
      const attempts = await Promise.allSettled(
        Array.from({ length: 16 }, (_, i) => stores[i % 4]!.append('contested', 0, events(2))),
      );
      const lost = attempts.filter((a): a is PromiseRejectedResult => a.status === 'rejected');
      expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(1);
      expect(lost).toHaveLength(15);
      expect(lost.every((a) => a.reason instanceof WrongExpectedRevisionError)).toBe(true);
      expect(await stores[3]!.streamRevision('contested')).toBe(2);
      expect((await stores[2]!.readAll(0)).map((e) => e.position)).toEqual([1, 2, 3]);
      expect((await stores[1]!.verify()).ok).toBe(true);
    });

    it('interleaves appends from different clients into one gapless, verifiable chain', async () => {
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          stores[i % 4]!.append(`stream-${i % 6}`, 'any', events(1 + (i % 3))),
        ),
      );
      const total = results.reduce((n, r) => n + r.events.length, 0);
      const all = await stores[0]!.readAll(0);
      expect(all.map((e) => e.position)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      for (let s = 0; s < 6; s++) {
        const revisions = (await stores[1]!.readStream(`stream-${s}`)).map((e) => e.revision);
        expect(revisions).toEqual(revisions.map((_, i) => i));
      }
      for (const r of results)
        expect(all.slice(r.events[0]!.position - 1, r.lastPosition)).toEqual(r.events);
      expect(await stores[2]!.verify()).toMatchObject({
        ok: true,
        count: total,
        headPosition: total,
      });
    });

    it('a subscription sees appends made through another client (by polling)', async () => {
      const seen: number[] = [];
      let done: () => void = () => undefined;
      const all = new Promise<void>((resolve) => (done = resolve));
      const sub = stores[0]!.subscribe(0, (batch) => {
        seen.push(...batch.map((e) => e.position));
        if (seen.length >= 5) done();
      });
      await stores[1]!.append('elsewhere', 'no_stream', events(2));
      await stores[2]!.append('elsewhere', 1, events(3));
      await all;
      await sub.close();
      expect(seen).toEqual([1, 2, 3, 4, 5]);
    });
  });

  describe('a writer that dies after its commit point', () => {
    let database: string;
    let store: MongoEventStore;
    beforeEach(async () => {
      database = newDatabase();
      store = await MongoEventStore.open({ uri: server.uri, database });
    });
    afterEach(async () => {
      await store.close();
      await admin.db(database).dropDatabase();
    });

    // The state a crash leaves: the commit document is stored, the events collection lacks all or
    // the tail of its events (the copy inserts in order). Made by removing copied events behind
    // the store's back.
    async function crashAfterCommit(keep: number): Promise<{ ids: string[] }> {
      await store.append('a', 'no_stream', events(2));
      const result = await store.append('b', 'no_stream', events(3));
      const collection = admin.db(database).collection<StoredEvent>('ledger_events');
      const lost = result.events.slice(keep).map((e) => positionKey(e.position));
      await collection.deleteMany({ _id: { $in: lost } });
      const commit = await admin
        .db(database)
        .collection<CommitDocument>('ledger_commits')
        .findOne({ _id: positionKey(3) });
      expect(commit?.last).toBe(5);
      return { ids: result.events.map((e) => e.id) };
    }

    it.each([0, 2])(
      'is finished by the next process: the batch is readable, the chain verifies (%i of 3 copied)',
      async (keep) => {
        const { ids } = await crashAfterCommit(keep);
        const next = await MongoEventStore.open({ uri: server.uri, database });
        try {
          expect(await next.streamRevision('b')).toBe(2);
          expect((await next.readAll(2)).map((e) => e.id)).toEqual(ids);
          expect(await next.verify()).toMatchObject({ ok: true, count: 5 });
          const after = await next.append('b', 2, events(1));
          expect(after.events[0]!.position).toBe(6);
          expect(await next.verify()).toMatchObject({ ok: true, count: 6 });
        } finally {
          await next.close();
        }
      },
    );

    it('is finished by the next writer before it checks expected revisions', async () => {
      await crashAfterCommit(0);
      const next = await MongoEventStore.open({ uri: server.uri, database });
      try {
        // Without the roll-forward, stream b would look absent and no_stream would pass.
        await expect(next.append('b', 'no_stream', events(1))).rejects.toBeInstanceOf(
          WrongExpectedRevisionError,
        );
        expect((await next.verify()).ok).toBe(true);
      } finally {
        await next.close();
      }
    });
  });

  it('rejects a second event at the same (stream, revision) in the database itself', async () => {
    const database = newDatabase();
    const store = await MongoEventStore.open({ uri: server.uri, database });
    try {
      const [first] = (await store.append('s', 'no_stream', events(1))).events;
      const collection = admin.db(database).collection<StoredEvent>('ledger_events');
      const clash = {
        ...(await collection.findOne({ _id: positionKey(first!.position) }))!,
        _id: positionKey(99),
        position: 99,
        id: 'x',
      };
      await expect(collection.insertOne(clash)).rejects.toMatchObject({ code: 11000 });
    } finally {
      await store.close();
      await admin.db(database).dropDatabase();
    }
  });

  it('reports an event written behind the chain head as a break', async () => {
    const database = newDatabase();
    const store = await MongoEventStore.open({ uri: server.uri, database });
    try {
      await store.append('s', 'no_stream', events(2));
      const collection = admin.db(database).collection<StoredEvent>('ledger_events');
      const second = (await collection.findOne({ _id: positionKey(2) }))!;
      await collection.updateOne({ _id: positionKey(2) }, { $set: { data: '{"tampered":true}' } });
      expect(await store.verify()).toMatchObject({ ok: false, position: 2, eventId: second.id });
    } finally {
      await store.close();
      await admin.db(database).dropDatabase();
    }
  });

  it('rides out a restart of the server: appends wait for it, a subscription keeps going', async () => {
    const database = newDatabase();
    const store = await MongoEventStore.open({ uri: server.uri, database });
    const seen: number[] = [];
    let reached: () => void = () => undefined;
    const all = new Promise<void>((resolve) => (reached = resolve));
    const sub = store.subscribe(0, (batch) => {
      seen.push(...batch.map((e) => e.position));
      if (seen.length >= 6) reached();
    });
    try {
      await store.append('r', 'no_stream', events(2));
      await server.stopServer();
      // Issued while the server is down: the driver waits (server selection) until it is back.
      const during = store.append('r', 1, events(2));
      await new Promise((resolve) => setTimeout(resolve, 500));
      await server.startServer();
      await during;
      await store.append('r', 3, events(2));
      await all;
      expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
      expect(await store.verify()).toMatchObject({ ok: true, count: 6 });
    } finally {
      await sub.close();
      await store.close();
      await admin.db(database).dropDatabase();
    }
  });

  it('re-derives a lost events collection from the commit documents', async () => {
    const database = newDatabase();
    const store = await MongoEventStore.open({ uri: server.uri, database });
    try {
      await store.append('a', 'no_stream', events(3));
      await store.appendMulti([
        { stream: 'b', expectedRevision: 'no_stream', events: events(2) },
        { stream: 'a', expectedRevision: 2, events: events(1) },
      ]);
      const before = await store.readAll(0);
      await admin.db(database).dropCollection('ledger_events');
      const next = await MongoEventStore.open({ uri: server.uri, database });
      try {
        expect(await next.readAll(0)).toEqual(before);
        expect(await next.streamRevision('a')).toBe(3);
        expect(await next.verify()).toMatchObject({ ok: true, count: 6 });
        await expect(next.append('b', 0, events(1))).rejects.toBeInstanceOf(
          WrongExpectedRevisionError,
        );
      } finally {
        await next.close();
      }
    } finally {
      await store.close();
      await admin.db(database).dropDatabase();
    }
  });

  /** A TCP relay to the server that can cut every connection at once, as a writer's death would. */
  async function relay(): Promise<{ uri: string; cut(): void }> {
    const target = new URL(server.uri);
    const sockets = new Set<Socket>();
    const listener = createNetServer((inbound) => {
      const outbound = connect(Number(target.port), target.hostname);
      sockets.add(inbound).add(outbound);
      inbound.pipe(outbound).pipe(inbound);
      const drop = (): void => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', drop).on('close', drop);
      outbound.on('error', drop).on('close', drop);
    });
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const { port } = listener.address() as AddressInfo;
    return {
      uri: `mongodb://127.0.0.1:${port}/`,
      cut() {
        listener.close();
        for (const socket of sockets) socket.destroy();
      },
    };
  }

  it('writers cut off mid-append lose no acknowledged batch and leave no partial one', async () => {
    const database = newDatabase();
    const acked = new Set<string>();
    let batchSeq = 0;
    for (let round = 0; round < 6; round++) {
      const relays = await Promise.all(Array.from({ length: 3 }, () => relay()));
      const clients = relays.map(
        (r) =>
          new MongoClient(r.uri, {
            ...MONGO_CLIENT_OPTIONS,
            serverSelectionTimeoutMS: 500,
            connectTimeoutMS: 500,
          }),
      );
      const stores = await Promise.all(
        clients.map((client) => MongoEventStore.open({ client, database, retryForMs: 0 })),
      );
      const cut = relays.map(() => false);
      const loops = stores.flatMap((store, w) =>
        Array.from({ length: 4 }, async (_, l) => {
          while (!cut[w]) {
            batchSeq += 1;
            const batch = `r${round}-w${w}-l${l}-${batchSeq}`;
            const count = 2 + (batchSeq % 4);
            const stream = `crash-${batchSeq % 5}`;
            const batchEvents = Array.from({ length: count }, (_, i) => ({
              ...newTestEvent('CrashBatch', { batch, index: i, count }),
              id: `${batch}:${i}`,
            }));
            try {
              await store.appendMulti([
                { stream, expectedRevision: 'any', events: batchEvents.slice(0, 1) },
                { stream: `${stream}-side`, expectedRevision: 'any', events: batchEvents.slice(1) },
              ]);
              acked.add(batch);
            } catch {
              // cut off: the outcome is unknown, the checks below decide
            }
          }
        }),
      );
      // Cut every writer off at a different moment, in the middle of its work.
      await Promise.all(
        relays.map(async (r, w) => {
          await new Promise((resolve) => setTimeout(resolve, 150 + 120 * w + 40 * round));
          cut[w] = true;
          r.cut();
        }),
      );
      await Promise.allSettled(loops);
      await Promise.allSettled(clients.map((c) => c.close()));
    }
    expect(acked.size).toBeGreaterThan(5);

    const reader = await MongoEventStore.open({ uri: server.uri, database });
    try {
      const log = await reader.readAll(0);
      expect(await reader.verify()).toMatchObject({ ok: true, count: log.length });
      expect(log.map((e) => e.position)).toEqual(log.map((_, i) => i + 1));
      const batches = new Map<string, { count: number; positions: number[] }>();
      for (const event of log) {
        const data = event.data as { batch: string; index: number; count: number };
        const entry = batches.get(data.batch) ?? { count: data.count, positions: [] };
        entry.positions.push(event.position);
        batches.set(data.batch, entry);
      }
      for (const [batch, { count, positions }] of batches) {
        // all of a batch or none of it, contiguous in the log
        expect([batch, positions.length]).toEqual([batch, count]);
        expect(positions.at(-1)! - positions[0]!).toBe(count - 1);
      }
      for (const batch of acked) expect(batches.has(batch)).toBe(true);
      expect(new Set(log.map((e) => e.id)).size).toBe(log.length);
    } finally {
      await reader.close();
      await admin.db(database).dropDatabase();
    }
  }, 120_000);

  it('ends a readAll page early at its byte budget, and refuses a commit over 15 MB', async () => {
    const database = newDatabase();
    const store = await MongoEventStore.open({ uri: server.uri, database, readPageBytes: 4000 });
    try {
      const blob = 'x'.repeat(1000);
      await store.append(
        'big',
        'any',
        [0, 1, 2, 3, 4].map((i) => newTestEvent('Big', { i, blob })),
      );
      // each event's data is just over 1000 characters: the fourth reaches the budget
      expect((await store.readAll(0)).map((e) => e.position)).toEqual([1, 2, 3, 4]);
      expect((await store.readAll(4)).map((e) => e.position)).toEqual([5]);
      expect((await store.readAll(0, 2)).map((e) => e.position)).toEqual([1, 2]);
      const huge = 'x'.repeat(4 * 1024 * 1024);
      await expect(
        store.append(
          'big',
          'any',
          [1, 2, 3, 4].map((i) => newTestEvent('Big', { i, huge })),
        ),
      ).rejects.toThrow(/exceeds the .* bytes one MongoDB commit document can hold/);
      expect(await store.headPosition()).toBe(5);
    } finally {
      await store.close();
      await admin.db(database).dropDatabase();
    }
  });

  it('refuses a log written with an older storage layout rather than misread it', async () => {
    const database = newDatabase();
    try {
      await admin.db(database).collection<{ _id: number }>('ledger_commits').insertOne({ _id: 1 });
      await expect(MongoEventStore.open({ uri: server.uri, database })).rejects.toThrow(
        /written by an older Ledgerflow/,
      );
    } finally {
      await admin.db(database).dropDatabase();
    }
  });
});
