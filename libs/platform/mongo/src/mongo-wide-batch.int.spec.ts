import type { RecordedEvent } from '@ledgerflow/contracts';
import type { Projection } from '@ledgerflow/projections';
import { describeWithLocalMongo, startLocalMongo, type LocalMongo } from '@ledgerflow/testing';
import { MongoReadModelStore } from './mongo-read-model-store.js';

const WIDTH = 300;

/** Each event rewrites WIDTH documents, each with its own indexed value (one bucket per document). */
const wide: Projection = {
  name: 'wide',
  version: 1,
  collections: [{ name: 'wide_docs', indexes: ['group'] }],
  async apply(event, w) {
    const round = (event.data as { round: number }).round;
    for (let i = 0; i < WIDTH; i++)
      await w.put('wide_docs', `d${String(i).padStart(4, '0')}`, {
        round,
        group: `g${round}-${i}`,
      });
  },
};

const eventOf = (position: number): RecordedEvent => ({
  id: `e${position}`,
  type: 'Wide',
  schemaVersion: 1,
  occurredAt: 1_000 + position,
  data: { round: position },
  metadata: { actor: 'test', correlationId: 'c', causationId: null },
  stream: 'wide-1',
  revision: position - 1,
  position,
  prevHash: '',
  hash: '',
});

/**
 * A batch that writes hundreds of documents and index buckets at once. FerretDB 1.24 on SQLite
 * holds a pooled connection per statement of one update command (100 per database): a bulk write
 * of that many statements in one command never finished and wedged the database for every client.
 */
describeWithLocalMongo('MongoReadModelStore: batches wider than the server connection pool', () => {
  let server: LocalMongo;
  let store: MongoReadModelStore;

  beforeAll(async () => {
    server = await startLocalMongo();
    store = await MongoReadModelStore.open({
      uri: server.uri,
      database: `lf_wide_${process.pid}`,
      retryForMs: 5_000,
    });
    await store.setup(wide);
  }, 600_000);

  afterAll(async () => {
    await store?.drop(wide);
    await store?.close();
    await server?.stop();
  });

  it('applies and re-indexes hundreds of documents per batch', async () => {
    await store.applyBatch(wide, [eventOf(1)]);
    await store.applyBatch(wide, [eventOf(2)]);
    expect(await store.reader.count('wide_docs')).toBe(WIDTH);
    expect(await store.reader.get('wide_docs', 'd0299')).toEqual({ round: 2, group: 'g2-299' });
    expect(await store.reader.find('wide_docs', 'group', 'g2-7')).toHaveLength(1);
    expect(await store.reader.find('wide_docs', 'group', 'g1-7')).toHaveLength(0);
    expect(await store.checkpoint('wide')).toMatchObject({ position: 2 });
  }, 120_000);
});
