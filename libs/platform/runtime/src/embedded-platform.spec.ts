import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Projection } from '@ledgerflow/projections';
import { MAX_READ_MODEL_LAG_EVENTS, openEmbeddedPlatform } from './embedded-platform.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A projection whose apply waits until the gate opens (or throws once `fail` is set). */
function gated(): { projection: Projection; open(): void; fail: { now: boolean } } {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const fail = { now: false };
  return {
    open,
    fail,
    projection: {
      name: 'gated',
      version: 1,
      collections: [{ name: 'gated_docs' }],
      async apply(event, writer) {
        await gate;
        if (fail.now) throw new Error('broken');
        await writer.put('gated_docs', String(event.position), { at: event.position });
      },
    },
  };
}

describe('embedded platform: read-model lag bound', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-lag-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function append(
    platform: ReturnType<typeof openEmbeddedPlatform>,
    n: number,
  ): Promise<number> {
    let last = 0;
    for (let i = 0; i < n; i++) {
      const r = await platform.eventStore.append('s', 'any', [
        {
          id: `e${i}`,
          type: 'Noted',
          schemaVersion: 1,
          occurredAt: 0,
          data: { i },
          metadata: { actor: 'a', correlationId: 'c', causationId: null },
        },
      ]);
      last = r.lastPosition;
    }
    return last;
  }

  it('holds a writer until the read models are within the allowed lag of its position', async () => {
    const g = gated();
    const platform = openEmbeddedPlatform({ dataDir: dir, sqliteSynchronous: 'normal' }, [
      g.projection,
    ]);
    try {
      await platform.projections.start();
      const head = await append(platform, MAX_READ_MODEL_LAG_EVENTS + 4);
      let done = false;
      const waiting = platform.readModelLag.within(head).then(() => (done = true));
      // within the lag already: no wait, although nothing is applied yet
      await platform.readModelLag.within(MAX_READ_MODEL_LAG_EVENTS);
      await sleep(50);
      expect(done).toBe(false);
      g.open();
      await waiting;
      expect(platform.projections.positions().get('gated')).toBeGreaterThanOrEqual(
        head - MAX_READ_MODEL_LAG_EVENTS,
      );
    } finally {
      g.open();
      await platform.close();
    }
  });

  it('lets the writer go when a read model has failed (its write is durable; it is only paced)', async () => {
    const g = gated();
    g.fail.now = true;
    g.open();
    const platform = openEmbeddedPlatform({ dataDir: dir, sqliteSynchronous: 'normal' }, [
      g.projection,
    ]);
    try {
      await platform.projections.start();
      const head = await append(platform, MAX_READ_MODEL_LAG_EVENTS + 4);
      await expect(platform.readModelLag.within(head)).resolves.toBeUndefined();
      expect(platform.projections.status()[0]?.state).toBe('failed');
    } finally {
      await platform.close();
    }
  });
});
