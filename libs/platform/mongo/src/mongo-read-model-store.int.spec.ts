import { MongoClient } from 'mongodb';
import {
  contractEvent,
  contractEvents,
  contractProjection,
  describeReadModelStoreContract,
  describeWithLocalMongo,
  Gate,
  startLocalMongo,
  type LocalMongo,
} from '@ledgerflow/testing';
import { MONGO_CLIENT_OPTIONS } from './mongo-connection.js';
import { MongoReadModelStore } from './mongo-read-model-store.js';

interface RawDoc {
  _id: string;
  doc: string;
  i_kind?: unknown;
}

const prefixed = (idx: object | undefined): Record<string, unknown> =>
  Object.fromEntries(Object.entries(idx ?? {}).map(([k, v]) => [`i_${k}`, v as unknown]));

let server: LocalMongo;
let admin: MongoClient;
let databases = 0;
const used: string[] = [];
const newDatabase = (): string => {
  const name = `lf_rm_${process.pid}_${(databases += 1)}`;
  used.push(name);
  return name;
};

describeWithLocalMongo('MongoReadModelStore on a MongoDB-wire server', () => {
  beforeAll(async () => {
    server = await startLocalMongo();
    admin = new MongoClient(server.uri, MONGO_CLIENT_OPTIONS);
    await admin.connect();
  }, 600_000);

  afterAll(async () => {
    for (const name of used) await admin?.db(name).dropDatabase();
    await admin?.close();
    await server?.stop();
  });

  describeReadModelStoreContract('MongoReadModelStore', () =>
    MongoReadModelStore.open({ uri: server.uri, database: newDatabase() }),
  );

  describe('a writer killed between its writes and its checkpoint', () => {
    const projection = contractProjection();
    const events = contractEvents(
      1,
      [{ increment: 'counters', id: 'n' }],
      [
        { increment: 'counters', id: 'n' },
        { put: 'items', id: 'a', doc: { kind: 'x' } },
        { put: 'items', id: 'b', doc: { kind: 'y' } },
      ],
      [
        { delete: 'items', id: 'b' },
        { increment: 'counters', id: 'n' },
      ],
    );
    let database: string;
    let expectedHash: string;

    beforeAll(async () => {
      const reference = await MongoReadModelStore.open({
        uri: server.uri,
        database: newDatabase(),
      });
      await reference.setup(projection);
      await reference.applyBatch(projection, events.slice(0, 1));
      await reference.applyBatch(projection, events.slice(1));
      expectedHash = await reference.contentHash(projection);
      await reference.close();
    });

    /**
     * Leaves the state a SIGKILL leaves after the commit record of batch 2 (events 2-3) is stored:
     * the record is in rm_commits, `applied` of its document writes are done, the checkpoint still
     * says 1. Made by running the batch, then undoing its checkpoint and some writes behind the
     * store's back and putting its commit record back.
     */
    async function killedAfterCommitRecord(applied: number): Promise<void> {
      database = newDatabase();
      const db = admin.db(database);
      const names = ['rm_contract__counters', 'rm_contract__items'];
      const snapshot = async (): Promise<Map<string, RawDoc[]>> =>
        new Map(
          await Promise.all(
            names.map(async (c) => [c, await db.collection<RawDoc>(c).find({}).toArray()] as const),
          ),
        );
      const store = await MongoReadModelStore.open({ uri: server.uri, database });
      await store.setup(projection);
      await store.applyBatch(projection, events.slice(0, 1));
      const before = await snapshot();
      await store.applyBatch(projection, events.slice(1));
      await store.close();
      const after = await snapshot();
      // The batch's redo record: every document's final state.
      const changes: { c: string; id: string; json: string | null; idx?: object }[] = [];
      for (const c of names) {
        const now = after.get(c)!;
        for (const d of now) {
          changes.push({
            c,
            id: d._id,
            json: d.doc,
            idx: d.i_kind === undefined ? {} : { kind: d.i_kind },
          });
        }
        for (const d of before.get(c)!) {
          if (!now.some((n) => n._id === d._id)) changes.push({ c, id: d._id, json: null });
        }
      }
      // Back to the moment of the kill: documents as after batch 1 plus `applied` of the batch's
      // writes, checkpoint at batch 1, the commit record stored.
      for (const c of names) {
        await db.collection<RawDoc>(c).deleteMany({});
        const old = before.get(c)!;
        if (old.length > 0) await db.collection<RawDoc>(c).insertMany(old);
      }
      for (const change of changes.slice(0, applied)) {
        const collection = db.collection<RawDoc>(change.c);
        await collection.deleteOne({ _id: change.id });
        if (change.json !== null) {
          await collection.insertOne({ _id: change.id, doc: change.json, ...prefixed(change.idx) });
        }
      }
      await db
        .collection<{ _id: string }>('rm_checkpoints')
        .updateOne({ _id: 'contract' }, { $set: { position: 1, seq: 1 } });
      // The record as it was before being applied (afterwards it shrinks to a claim).
      await db
        .collection<{ _id: string } & Record<string, unknown>>('rm_commits')
        .replaceOne(
          { _id: 'contract#2' },
          { kind: 'commit', name: 'contract', seq: 2, position: 3, version: 1, parts: 0, changes },
          { upsert: true },
        );
      expect(await db.collection('rm_commits').countDocuments({ seq: 2 })).toBe(1);
    }

    it.each([0, 1, 3])(
      'is finished on the next setup, exactly once (%i of its writes done)',
      async (applied) => {
        await killedAfterCommitRecord(applied);
        const next = await MongoReadModelStore.open({ uri: server.uri, database });
        try {
          await next.setup(projection);
          expect(await next.checkpoint('contract')).toEqual({ position: 3, version: 1 });
          // Redelivery of the whole log after the restart changes nothing.
          expect(await next.applyBatch(projection, events)).toBe(0);
          expect(await next.reader.get('counters', 'n')).toEqual({ n: 3 });
          expect(await next.contentHash(projection)).toBe(expectedHash);
          const records = admin.db(database).collection('rm_commits');
          expect(await records.countDocuments({ 'changes.0': { $exists: true } })).toBe(0);
        } finally {
          await next.close();
        }
      },
    );

    it('is not redone into the read model rebuilt by hand after it (its collections and checkpoint deleted)', async () => {
      await killedAfterCommitRecord(1);
      const db = admin.db(database);
      for (const c of ['rm_contract__items', 'rm_contract__items__idx', 'rm_contract__counters'])
        await db.dropCollection(c).catch(() => undefined);
      await db.collection<{ _id: string }>('rm_checkpoints').deleteOne({ _id: 'contract' });
      const next = await MongoReadModelStore.open({ uri: server.uri, database });
      try {
        await next.setup(projection);
        // the old incarnation's unfinished batch (events 2-3) must not land in the empty read
        // model and move its checkpoint past event 1
        expect(await next.checkpoint('contract')).toEqual({ position: 0, version: null });
        expect(await next.applyBatch(projection, events)).toBe(3);
        expect(await next.contentHash(projection)).toBe(expectedHash);
      } finally {
        await next.close();
      }
    });

    it('finishes the first batch of a new read model, killed after its first collection', async () => {
      database = newDatabase();
      const killed = new Error('killed');
      const dying = await MongoReadModelStore.open({
        uri: server.uri,
        database,
        onBatchWritten: () => {
          throw killed;
        },
      });
      await dying.setup(projection);
      await expect(dying.applyBatch(projection, events)).rejects.toBe(killed);
      await dying.close();
      const next = await MongoReadModelStore.open({ uri: server.uri, database });
      try {
        await next.setup(projection);
        expect(await next.checkpoint('contract')).toEqual({ position: 3, version: 1 });
        expect(await next.applyBatch(projection, events)).toBe(0);
        expect(await next.contentHash(projection)).toBe(expectedHash);
      } finally {
        await next.close();
      }
    });
  });

  it('refuses a second writer of the same projection instead of interleaving', async () => {
    const database = newDatabase();
    const projection = contractProjection();
    const gate = new Gate();
    const gated = contractProjection({ gate });
    const one = await MongoReadModelStore.open({ uri: server.uri, database });
    const two = await MongoReadModelStore.open({ uri: server.uri, database });
    try {
      await one.setup(projection);
      await two.setup(gated);
      // `two` read checkpoint 0 and holds its batch open; `one` commits the same position meanwhile.
      const late = two.applyBatch(gated, [
        contractEvent(1, { gate: true }, { increment: 'counters', id: 'n' }),
      ]);
      await gate.entered;
      await one.applyBatch(projection, [contractEvent(1, { increment: 'counters', id: 'n' })]);
      gate.open();
      await expect(late).rejects.toThrow(/another writer committed batch 1 first/);
      expect(await one.reader.get('counters', 'n')).toEqual({ n: 1 });
      expect(await one.checkpoint('contract')).toEqual({ position: 1, version: 1 });
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('rides out a restart of the server: a batch sent during the outage commits once', async () => {
    const database = newDatabase();
    const projection = contractProjection();
    const store = await MongoReadModelStore.open({ uri: server.uri, database });
    try {
      await store.setup(projection);
      await store.applyBatch(projection, [contractEvent(1, { increment: 'counters', id: 'n' })]);
      await server.stopServer();
      const during = store.applyBatch(projection, [
        contractEvent(2, { increment: 'counters', id: 'n' }, { put: 'items', id: 'a', doc: {} }),
      ]);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await server.startServer();
      expect(await during).toBe(1);
      expect(await store.reader.get('counters', 'n')).toEqual({ n: 2 });
      expect(await store.checkpoint('contract')).toEqual({ position: 2, version: 1 });
      expect(await store.reader.count('items')).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('rebuilds from scratch after its collections and checkpoint are deleted by hand', async () => {
    const database = newDatabase();
    const projection = contractProjection();
    const events = contractEvents(
      1,
      [{ increment: 'counters', id: 'n' }],
      [{ put: 'items', id: 'a', doc: { kind: 'x' } }],
    );
    const store = await MongoReadModelStore.open({ uri: server.uri, database });
    try {
      await store.setup(projection);
      await store.applyBatch(projection, events.slice(0, 1));
      await store.applyBatch(projection, events.slice(1));
      const hash = await store.contentHash(projection);
      const db = admin.db(database);
      await db.dropCollection('rm_contract__items');
      await db.dropCollection('rm_contract__counters');
      await db.collection<{ _id: string }>('rm_checkpoints').deleteOne({ _id: 'contract' });

      const again = await MongoReadModelStore.open({ uri: server.uri, database });
      try {
        await again.setup(projection);
        expect(await again.checkpoint('contract')).toEqual({ position: 0, version: null });
        expect(await again.applyBatch(projection, events)).toBe(2);
        expect(await again.contentHash(projection)).toBe(hash);
      } finally {
        await again.close();
      }
    } finally {
      await store.close();
    }
  });

  it('rebuilds a read model stored with an older layout (no index buckets) instead of trusting it', async () => {
    const database = newDatabase();
    const projection = contractProjection();
    const events = contractEvents(1, [{ put: 'items', id: 'a', doc: { kind: 'x' } }]);
    const store = await MongoReadModelStore.open({ uri: server.uri, database });
    try {
      await store.setup(projection);
      await store.applyBatch(projection, events);
      const db = admin.db(database);
      await db.dropCollection('rm_contract__items__idx');
      await db
        .collection<{ _id: string }>('rm_checkpoints')
        .updateOne({ _id: 'contract' }, { $unset: { layout: '' } });

      const again = await MongoReadModelStore.open({ uri: server.uri, database });
      try {
        await again.setup(projection);
        expect(await again.checkpoint('contract')).toEqual({ position: 0, version: null });
        expect(await again.reader.count('items')).toBe(0);
        expect(await again.applyBatch(projection, events)).toBe(1);
        expect(await again.reader.find('items', 'kind', 'x')).toEqual([{ kind: 'x' }]);
      } finally {
        await again.close();
      }
    } finally {
      await store.close();
    }
  });
});
