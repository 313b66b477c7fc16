import type { Socket } from 'node:net';
import { MongoClient, type Document } from 'mongodb';
import { describeWithLocalMongo, startLocalMongo, type LocalMongo } from '@ledgerflow/testing';
import {
  guardDriverWrites,
  isTransient,
  MONGO_CLIENT_OPTIONS,
  openMongo,
  type MongoHandle,
} from './mongo-connection.js';

/** The driver's internals these tests reach into, to open the gap a restart opens by chance. */
interface InternalConnection {
  readonly socket: Socket;
  readonly closed: boolean;
}
interface InternalServer {
  readonly monitor: { connection: InternalConnection | null } | null;
  readonly pool: { readonly connections: Iterable<InternalConnection> };
}
function serversOf(client: MongoClient): InternalServer[] {
  const topology = (
    client as unknown as { topology?: { s: { servers: Map<string, InternalServer> } } }
  ).topology;
  if (topology === undefined) throw new Error('client not connected');
  return [...topology.s.servers.values()];
}

/**
 * What a server restart does to a socket between its destruction and the driver's 'close'
 * handler: the socket is gone, the driver's Connection still looks open. Removing the
 * Connection's 'close' listener before destroying the socket keeps it in that gap for good.
 */
function destroyUnnoticed(connection: InternalConnection): void {
  connection.socket.removeAllListeners('close');
  connection.socket.destroy();
}

function settlesWithin<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

describeWithLocalMongo('the MongoDB driver across a dropped connection', () => {
  let server: LocalMongo;

  beforeAll(async () => {
    server = await startLocalMongo();
  }, 600_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('fails a heartbeat written to a socket that is already gone, so the monitor reconnects', async () => {
    guardDriverWrites();
    const client = new MongoClient(server.uri, {
      ...MONGO_CLIENT_OPTIONS,
      heartbeatFrequencyMS: 500,
      serverSelectionTimeoutMS: 3000,
    });
    await client.connect();
    try {
      await client.db('admin').command({ ping: 1 });
      const [srv] = serversOf(client);
      const monitorConnection = srv?.monitor?.connection;
      expect(monitorConnection?.closed).toBe(false);
      const events: string[] = [];
      client.on('serverHeartbeatFailed', () => events.push('failed'));
      client.on('serverHeartbeatSucceeded', () => events.push('succeeded'));
      destroyUnnoticed(monitorConnection!);
      // Unguarded, the next heartbeat waits forever for a 'drain' of the destroyed socket: no
      // heartbeat event ever again, and the server is never checked again.
      const deadline = Date.now() + 10_000;
      while (!(events.includes('failed') && events.at(-1) === 'succeeded')) {
        if (Date.now() > deadline)
          throw new Error(`heartbeats after the gap: [${events.join(', ')}]`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(srv?.monitor?.connection).not.toBe(monitorConnection);
      await expect(client.db('admin').command({ ping: 1 })).resolves.toMatchObject({ ok: 1 });
    } finally {
      await client.close();
    }
  }, 60_000);

  it('fails a write to a pooled connection whose socket is gone, transiently, instead of hanging', async () => {
    const handle: MongoHandle = await openMongo({
      uri: server.uri,
      database: `lf_conn_${process.pid}`,
    });
    try {
      const collection = handle.db.collection<Document>('probe');
      await collection.insertOne({ _id: 'a' as never, n: 1 });
      const pooled = serversOf(handle.client).flatMap((s) => [...s.pool.connections]);
      expect(pooled.length).toBeGreaterThan(0);
      for (const c of pooled) destroyUnnoticed(c);
      // A bulk write (the event store copies keys with insertMany) on a standalone server is not
      // retried by the driver: it must fail, as a transient error the adapters retry. Unguarded it
      // never settles.
      const outcome = await settlesWithin(
        collection.insertMany([{ _id: 'b' as never }, { _id: 'c' as never }]).then(
          () => new Error('written through a destroyed socket?'),
          (e: unknown) => e,
        ),
        10_000,
        'insertMany on a dead socket',
      );
      expect((outcome as Error).name).toBe('MongoBulkWriteError');
      expect(isTransient(outcome)).toBe(true);
      // and the client goes on with fresh connections
      await expect(
        settlesWithin(collection.countDocuments({}), 10_000, 'read after the gap'),
      ).resolves.toBeGreaterThanOrEqual(1);
      await handle.db.dropDatabase();
    } finally {
      await handle.release();
    }
  }, 60_000);
});
