import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeEventHash } from '@ledgerflow/contracts';
import type { NewEvent, RecordedEvent } from '@ledgerflow/contracts';
import Database from 'better-sqlite3';
import { DuplicateEventIdError } from './append-preparation.js';
import { SqliteEventStore, verifyEventLogFile } from './sqlite-event-store.js';

let seq = 0;
function event(data: unknown = { seq }): NewEvent {
  seq += 1;
  return {
    id: `sqlite-evt-${seq}`,
    type: 'ThingHappened',
    schemaVersion: 1,
    occurredAt: 1_700_000_000_000 + seq,
    data,
    metadata: { actor: 'alice', correlationId: `corr-${seq}`, causationId: null },
  };
}

function events(count: number): NewEvent[] {
  return Array.from({ length: count }, () => event());
}

describe('SqliteEventStore (file behaviour)', () => {
  let dir: string;
  let path: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ledgerflow-sqlite-es-'));
    path = join(dir, 'events.db');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes 5 events in two streams and closes the store; returns them in log order. */
  async function seed(): Promise<RecordedEvent[]> {
    const store = new SqliteEventStore({ path });
    await store.append('a', 'no_stream', events(3));
    await store.append('b', 'no_stream', events(2));
    const all = await store.readAll(0);
    await store.close();
    return all;
  }

  /** Runs one SQL statement against the file behind the store's back, as an attacker would. */
  function tamper(sql: string, ...params: (string | number)[]): void {
    const db = new Database(path);
    try {
      db.prepare(sql).run(...params);
    } finally {
      db.close();
    }
  }

  it('keeps every event, revision and the chain across a reopen, and continues the chain', async () => {
    const before = await seed();
    const store = new SqliteEventStore({ path });
    try {
      expect(await store.readAll(0)).toEqual(before);
      expect(await store.headPosition()).toBe(5);
      expect(await store.streamRevision('a')).toBe(2);
      expect(await store.streamRevision('b')).toBe(1);
      const next = await store.append('a', 2, events(1));
      expect(next.events[0]).toMatchObject({ position: 6, revision: 3, prevHash: before[4]!.hash });
      expect(await store.verify()).toMatchObject({ ok: true, count: 6, headPosition: 6 });
    } finally {
      await store.close();
    }
  });

  it('uses WAL and the requested synchronous level', async () => {
    const full = new SqliteEventStore({ path });
    await full.close();
    const normal = new SqliteEventStore({ path, synchronous: 'normal' });
    await normal.append('a', 'any', events(1));
    await normal.close();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });

  it('acknowledges an append at synchronous full only after the WAL file is fsynced', async () => {
    // hold every fdatasync until released, to see that no append is acknowledged before it
    const probe = await open(path, 'w');
    const proto = Object.getPrototypeOf(probe) as { datasync(): Promise<void> };
    await probe.close();
    const original = proto.datasync;
    const held: (() => void)[] = [];
    const synced: string[] = [];
    proto.datasync = function (this: { datasync(): Promise<void> }) {
      return new Promise<void>((resolve) => held.push(resolve)).then(() =>
        original.call(this).then(() => {
          synced.push('wal');
        }),
      );
    };
    const store = new SqliteEventStore({ path });
    try {
      let acked = 0;
      const first = store.append('a', 'no_stream', events(1)).then(() => (acked += 1));
      while (held.length === 0) await new Promise((r) => setTimeout(r, 1));
      // committed (readers see it) but not yet acknowledged
      expect((await store.readAll(0)).length).toBe(1);
      expect(acked).toBe(0);
      // commits made while an fsync runs wait for the next one, which covers all of them
      const more = [store.append('b', 'any', events(1)), store.append('c', 'any', events(1))];
      await new Promise((r) => setTimeout(r, 20));
      expect(acked).toBe(0);
      held.shift()!();
      await first;
      expect(acked).toBe(1);
      while (held.length === 0) await new Promise((r) => setTimeout(r, 1));
      held.shift()!();
      await Promise.all(more);
      expect(synced).toEqual(['wal', 'wal']);
    } finally {
      proto.datasync = original;
      for (const release of held) release();
      await store.close();
    }
    const normal = new SqliteEventStore({ path, synchronous: 'normal' });
    await normal.append('d', 'any', events(1)); // no fsync to wait for
    await normal.close();
  });

  it('verifies a file read-only while a writer has it open, and refuses appends when read-only', async () => {
    await seed();
    const writer = new SqliteEventStore({ path });
    const reader = new SqliteEventStore({ path, readonly: true });
    try {
      await writer.append('c', 'no_stream', events(2));
      expect(await verifyEventLogFile(path)).toMatchObject({ ok: true, count: 7, headPosition: 7 });
      expect(await reader.headPosition()).toBe(7);
      await expect(reader.append('c', 'any', events(1))).rejects.toThrow(/read-only/);
    } finally {
      await reader.close();
      await writer.close();
    }
  });

  it('refuses to open a missing file read-only, and a file of a newer schema version', async () => {
    expect(() => new SqliteEventStore({ path, readonly: true })).toThrow();
    await seed();
    tamper("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    expect(() => new SqliteEventStore({ path })).toThrow(/schema version 99/);
  });

  it('commits the other requests of a group commit when one of them fails', async () => {
    const store = new SqliteEventStore({ path });
    try {
      const shared = event();
      const [ok1, dup, conflict, ok2] = await Promise.allSettled([
        store.append('x', 'no_stream', [shared, event()]),
        store.append('y', 'no_stream', [event(), { ...shared }]),
        store.append('x', 'no_stream', events(1)),
        store.appendMulti([
          { stream: 'y', expectedRevision: 'no_stream', events: events(1) },
          { stream: 'z', expectedRevision: 'no_stream', events: events(2) },
        ]),
      ]);
      expect(ok1.status).toBe('fulfilled');
      expect(dup).toMatchObject({
        status: 'rejected',
        reason: expect.any(DuplicateEventIdError) as unknown,
      });
      expect(conflict).toMatchObject({
        status: 'rejected',
        reason: { name: 'WrongExpectedRevisionError' },
      });
      expect(ok2.status).toBe('fulfilled');
      const all = await store.readAll(0);
      expect(all.map((e) => `${e.position} ${e.stream}:${e.revision}`)).toEqual([
        '1 x:0',
        '2 x:1',
        '3 y:0',
        '4 z:0',
        '5 z:1',
      ]);
      expect(await store.verify()).toMatchObject({ ok: true, count: 5 });
    } finally {
      await store.close();
    }
  });

  it('commits queued appends on close', async () => {
    const store = new SqliteEventStore({ path });
    const pending = store.append('a', 'no_stream', events(3));
    await store.close();
    await expect(pending).resolves.toMatchObject({ lastPosition: 3 });
    const reopened = new SqliteEventStore({ path, readonly: true });
    expect(await reopened.headPosition()).toBe(3);
    await reopened.close();
  });

  it('gives every reader of a recent event one parsed copy, equal to what the table holds', async () => {
    const store = new SqliteEventStore({ path });
    const other = new SqliteEventStore({ path });
    try {
      // NaN and undefined do not survive JSON: readers see the stored text's meaning, never the
      // appended object, whether the event comes from the recent-events cache or the table
      await store.append('a', 'no_stream', [event({ x: Number.NaN, y: undefined, z: [1, 2] })]);
      const first = await store.readAll(0);
      const second = await store.readAll(0);
      expect(first[0]).toBe(second[0]);
      expect(first[0]!.data).toEqual({ x: null, z: [1, 2] });
      const fromTable = await other.readAll(0);
      expect(fromTable).toEqual(first);

      // events another connection appended are not cached here: a page continues from the table
      await store.append('a', 0, events(2));
      await other.append('b', 'no_stream', events(3));
      await store.append('a', 2, events(1));
      const all = await store.readAll(0);
      expect(all.map((e) => e.position)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(all).toEqual(await other.readAll(0));
      expect((await store.readAll(1, 2)).map((e) => e.position)).toEqual([2, 3]);
      expect((await store.readAll(5)).map((e) => e.position)).toEqual([6, 7]);
      expect(await store.readAll(7)).toEqual([]);
    } finally {
      await other.close();
      await store.close();
    }
  });

  it('delivers appends made through another connection to a subscription, by polling', async () => {
    const writer = new SqliteEventStore({ path });
    const follower = new SqliteEventStore({ path, readonly: true, pollIntervalMs: 5 });
    const received: number[] = [];
    let wake: (() => void) | undefined;
    const sub = follower.subscribe(0, (batch) => {
      received.push(...batch.map((e) => e.position));
      if (received.length >= 4) wake?.();
    });
    try {
      const allArrived = new Promise<void>((resolve) => {
        wake = resolve;
      });
      await writer.append('a', 'no_stream', events(2));
      await writer.append('b', 'no_stream', events(2));
      await allArrived;
      expect(received).toEqual([1, 2, 3, 4]);
    } finally {
      await sub.close();
      await follower.close();
      await writer.close();
    }
  });

  describe('tamper detection', () => {
    it('names an event whose data was edited', async () => {
      const all = await seed();
      tamper('UPDATE events SET data = ? WHERE position = 3', JSON.stringify({ seq: 999 }));
      expect(await verifyEventLogFile(path)).toMatchObject({
        ok: false,
        position: 3,
        eventId: all[2]!.id,
        reason: expect.stringMatching(/edited/) as unknown,
      });
    });

    it('names an event whose data text was re-serialised with the same meaning', async () => {
      const all = await seed();
      const stored = all[1]!;
      tamper('UPDATE events SET data = ? WHERE position = 2', JSON.stringify(stored.data, null, 1));
      expect(await verifyEventLogFile(path)).toMatchObject({
        ok: false,
        position: 2,
        eventId: stored.id,
      });
    });

    it('names an event whose header was edited (actor)', async () => {
      const all = await seed();
      tamper("UPDATE events SET actor = 'mallory' WHERE position = 4");
      expect(await verifyEventLogFile(path)).toMatchObject({
        ok: false,
        position: 4,
        eventId: all[3]!.id,
      });
    });

    it('names an event whose hash was edited', async () => {
      const all = await seed();
      tamper('UPDATE events SET hash = ? WHERE position = 2', 'f'.repeat(64));
      expect(await verifyEventLogFile(path)).toMatchObject({
        ok: false,
        position: 2,
        eventId: all[1]!.id,
      });
    });

    it('names the position of a deleted middle event and the event stored after the gap', async () => {
      const all = await seed();
      tamper('DELETE FROM events WHERE position = 3');
      const result = await verifyEventLogFile(path);
      expect(result).toMatchObject({ ok: false, position: 3, eventId: null });
      expect(!result.ok && result.reason).toContain(all[3]!.id);
    });

    it('detects a deleted last event through the chain head', async () => {
      await seed();
      tamper('DELETE FROM events WHERE position = 5');
      expect(await verifyEventLogFile(path)).toMatchObject({
        ok: false,
        count: 4,
        position: 5,
        eventId: null,
        reason: 'events after position 4 are missing (chain head says 5)',
      });
    });

    it("detects a correctly hashed event appended behind the store's back", async () => {
      const all = await seed();
      const fields = {
        id: 'forged',
        stream: 'b',
        revision: 2,
        position: 6,
        type: 'ThingHappened',
        schemaVersion: 1,
        occurredAt: 1,
        actor: 'mallory',
        correlationId: 'c',
        causationId: null,
        traceId: null,
        reason: null,
        dataJson: '{}',
        prevHash: all[4]!.hash,
      };
      tamper(
        `INSERT INTO events (position, id, stream, revision, type, schema_version, occurred_at, actor,
           correlation_id, data, prev_hash, hash) VALUES (6, 'forged', 'b', 2, 'ThingHappened', 1, 1,
           'mallory', 'c', '{}', ?, ?)`,
        fields.prevHash,
        computeEventHash(fields),
      );
      expect(await verifyEventLogFile(path)).toMatchObject({
        ok: false,
        position: 6,
        eventId: 'forged',
        reason: expect.stringMatching(/beyond the chain head/) as unknown,
      });
    });

    it('reports tampering through an open writer too', async () => {
      const all = await seed();
      tamper('UPDATE events SET data = ? WHERE position = 1', '{}');
      const store = new SqliteEventStore({ path });
      try {
        expect(await store.verify()).toMatchObject({ ok: false, position: 1, eventId: all[0]!.id });
      } finally {
        await store.close();
      }
    });
  });
});
