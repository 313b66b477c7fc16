import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { RecordedEvent } from '@ledgerflow/contracts';
import { documentProjection } from './document-projection.js';
import type { Projection } from './projection.js';
import { readModelTableName, SqliteReadModelStore } from './sqlite-read-model-store.js';

function recorded(position: number, stream: string): RecordedEvent {
  return {
    id: `event-${position}`,
    type: 'Touched',
    schemaVersion: 1,
    occurredAt: 1_700_000_000_000 + position,
    data: {},
    metadata: { actor: 'test', correlationId: 'c', causationId: null },
    stream,
    revision: 0,
    position,
    prevHash: '0'.repeat(64),
    hash: '0'.repeat(64),
  };
}

const touches: Projection = documentProjection<{ stream: string; kind: string; n: number }>({
  name: 'touches',
  version: 1,
  collection: { name: 'touches', indexes: ['kind'] },
  keysOf: (event) => [event.stream],
  evolve: (doc, event) => ({
    stream: event.stream,
    kind: event.stream.split(':')[0] ?? '',
    n: (doc?.n ?? 0) + 1,
  }),
});

describe('SqliteReadModelStore', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-sqlite-rm-'));
    file = path.join(dir, 'nested', 'read-models.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps documents and checkpoints across a reopen', async () => {
    const first = new SqliteReadModelStore({ path: file });
    await first.setup(touches);
    await first.applyBatch(touches, [
      recorded(1, 'run:1'),
      recorded(2, 'run:1'),
      recorded(3, 'model:1'),
    ]);
    const hash = await first.contentHash(touches);
    await first.close();

    const second = new SqliteReadModelStore({ path: file });
    await second.setup(touches);

    expect(await second.checkpoint('touches')).toEqual({ position: 3, version: 1 });
    expect(await second.reader.get('touches', 'run:1')).toEqual({
      stream: 'run:1',
      kind: 'run',
      n: 2,
    });
    expect(await second.contentHash(touches)).toBe(hash);
    await second.close();
  });

  it('loads a cached collection from the file on setup after a reopen', async () => {
    const cachedTouches: Projection = {
      ...touches,
      collections: [{ name: 'touches', indexes: ['kind'], cached: true }],
    };
    const first = new SqliteReadModelStore({ path: file });
    await first.setup(cachedTouches);
    await first.applyBatch(cachedTouches, [recorded(1, 'run:1'), recorded(2, 'run:2')]);
    await first.close();

    const second = new SqliteReadModelStore({ path: file });
    await second.setup(cachedTouches);
    const runs = await second.reader.find('touches', 'kind', 'run');

    expect(runs.map((d) => d['stream'])).toEqual(['run:1', 'run:2']);
    expect(Object.isFrozen(runs[0])).toBe(true);
    await second.applyBatch(cachedTouches, [recorded(3, 'run:1')]);
    expect(await second.reader.get('touches', 'run:1')).toEqual({
      stream: 'run:1',
      kind: 'run',
      n: 2,
    });
    await second.close();
  });

  it('stores each collection in its own table, in WAL mode, and queries indexed fields through an index', async () => {
    const store = new SqliteReadModelStore({ path: file });
    await store.setup(touches);
    await store.close();

    const db = new Database(file, { readonly: true });
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT doc FROM rm_touches__touches
         WHERE json_extract(doc, '$.kind') = ? AND json_type(doc, '$.kind') = 'text' ORDER BY id`,
      )
      .all('run') as { detail: string }[];
    const mode = db.pragma('journal_mode', { simple: true });
    db.close();

    expect(mode).toBe('wal');
    expect(plan.map((row) => row.detail).join('\n')).toMatch(
      /USING INDEX rm_touches__touches__kind/,
    );
  });

  it('gives names that need sanitising distinct, SQL-safe table names', () => {
    expect(readModelTableName('run-summaries', 'runs')).toMatch(
      /^rm_run_summaries_[0-9a-f]{8}__runs$/,
    );
    expect(readModelTableName('a-b', 'c')).not.toBe(readModelTableName('a.b', 'c'));
    expect(readModelTableName('a__b', 'c')).not.toBe(readModelTableName('a', 'b__c'));
    expect(readModelTableName('x"; DROP TABLE y; --', 'z')).toMatch(/^rm_[A-Za-z0-9_]+$/);
  });

  it('refuses an in-memory database: its reader and writer must share a file', () => {
    expect(() => new SqliteReadModelStore({ path: ':memory:' })).toThrow(/needs a file/);
  });

  it('refuses index fields that are not plain identifiers', async () => {
    const store = new SqliteReadModelStore({ path: file });
    const bad: Projection = {
      ...touches,
      collections: [{ name: 'touches', indexes: ["kind') --"] }],
    };

    await expect(store.setup(bad)).rejects.toThrow(/must be a plain identifier/);
    await store.close();
  });
});
