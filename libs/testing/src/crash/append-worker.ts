// Child process for the SQLite crash test: appends batches as fast as it can until it is killed.
// Usage: node dist/libs/testing/src/crash/append-worker.js <events.db>
// Prints `READY` once the store is open, then `ACK <batchId> <count>` after each append resolves.
// Every event carries { batchId, index, count } so the test can tell a partial batch.
import { randomUUID } from 'node:crypto';
import { writeSync } from 'node:fs';
import type { NewEvent } from '@ledgerflow/contracts';
import { SqliteEventStore } from '@ledgerflow/event-store';
import type { StreamWrite } from '@ledgerflow/event-store';

/** Data of every event the worker appends. */
export interface CrashTestEventData {
  readonly batchId: string;
  readonly index: number;
  readonly count: number;
}

const SHARED_STREAMS = 6;
const CONCURRENT_LOOPS = 16;

const path = process.argv[2];
if (path === undefined) {
  process.stderr.write('usage: append-worker <events.db>\n');
  process.exit(2);
}
const store = new SqliteEventStore({ path });

function randomInt(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

function batch(batchId: string, count: number): NewEvent<string, CrashTestEventData>[] {
  return Array.from({ length: count }, (_, index) => ({
    id: `${batchId}:${index}`,
    type: 'CrashTestBatchAppended',
    schemaVersion: 1,
    occurredAt: Date.now(),
    data: { batchId, index, count },
    metadata: { actor: 'crash-test', correlationId: batchId, causationId: null },
  }));
}

/** Splits a batch over 2-3 shared streams, so an atomic multi-stream append can be torn by a kill. */
function spread(events: readonly NewEvent[]): StreamWrite[] {
  const streams = new Set<number>();
  const wanted = randomInt(2, 3);
  while (streams.size < wanted) streams.add(randomInt(0, SHARED_STREAMS - 1));
  const parts = [...streams];
  const size = Math.ceil(events.length / parts.length);
  return parts.map((s, i) => ({
    stream: `shared-${s}`,
    expectedRevision: 'any',
    events: events.slice(i * size, (i + 1) * size),
  }));
}

// Each loop also owns a stream written with exact expected revisions, which must still line up
// after a restart; the loop index is stable, so the stream continues across runs.
async function loop(loopIndex: number): Promise<void> {
  const own = `own-${loopIndex}`;
  let ownRevision = await store.streamRevision(own);
  for (;;) {
    const batchId = randomUUID();
    const count = randomInt(1, 50);
    const events = batch(batchId, count);
    const kind = Math.random();
    if (kind < 0.3 && count > 1) {
      await store.appendMulti(spread(events));
    } else if (kind < 0.5) {
      const result = await store.append(
        own,
        ownRevision === -1 ? 'no_stream' : ownRevision,
        events,
      );
      ownRevision = result.revisions.get(own) ?? ownRevision;
    } else {
      await store.append(`shared-${randomInt(0, SHARED_STREAMS - 1)}`, 'any', events);
    }
    // Synchronous write: the line is in the pipe before the next append can even start.
    writeSync(1, `ACK ${batchId} ${count}\n`);
  }
}

writeSync(1, 'READY\n');
try {
  await Promise.all(Array.from({ length: CONCURRENT_LOOPS }, (_, i) => loop(i)));
} catch (error: unknown) {
  process.stderr.write(
    `ERROR ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
}
