import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NewEvent } from '@ledgerflow/contracts';
import type { EventStore, ExpectedRevision } from '@ledgerflow/event-store';
import type { RunningServer } from '@ledgerflow/runtime';
import { SlowEventStore } from '@ledgerflow/testing';
import { artifactsVerify } from './commands/artifacts.js';
import { startEmbeddedServer } from './commands/server.js';
import { testServerConfig } from './testing/test-config.js';

const A = '/api/2.0/mlflow-artifacts/artifacts';
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * The real event log, able to hold back the append that records one given sha256: the upload of
 * those bytes is then stored and not yet recorded, for as long as the test wants.
 */
class GatedEventStore extends SlowEventStore {
  private held: { sha256: string; reached: () => void; gate: Promise<void> } | undefined;

  constructor(inner: EventStore) {
    super(inner, 0);
  }

  /** Holds the append of the event recording `sha`; resolves once that append has arrived. */
  hold(sha: string): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const arrived = new Promise<void>((r) => (reached = r));
    this.held = { sha256: sha, reached, gate: new Promise<void>((r) => (release = r)) };
    return { reached: arrived, release };
  }

  override async append(
    stream: string,
    expected: ExpectedRevision,
    events: readonly NewEvent[],
  ): ReturnType<EventStore['append']> {
    const held = this.held;
    if (
      held !== undefined &&
      events.some((e) => (e.data as { sha256?: unknown }).sha256 === held.sha256)
    ) {
      held.reached();
      await held.gate;
    }
    return super.append(stream, expected, events);
  }
}

/**
 * Two changes to one artifact path store their bytes and append their events in the same order,
 * so the log's last word on a path always describes the bytes stored there.
 */
describe('concurrent changes to one artifact path', () => {
  let server: RunningServer;
  let events: GatedEventStore;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-artifact-order-'));
    server = await startEmbeddedServer(testServerConfig(dataDir), {
      wrapEventStore: (inner) => (events = new GatedEventStore(inner)),
    });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const put = (p: string, body: Buffer): Promise<Response> =>
    fetch(`${server.url}${A}/${p}`, { method: 'PUT', body });

  async function lastRecorded(p: string): Promise<string | undefined> {
    const all = await events.readAll(0);
    const stored = all.filter(
      (e) =>
        (e.type === 'ArtifactStored' || e.type === 'ArtifactDeleted') &&
        (e.data as { path?: unknown }).path === p,
    );
    const last = stored.at(-1);
    return last?.type === 'ArtifactStored' ? (last.data as { sha256: string }).sha256 : undefined;
  }

  it('records a second upload after the first, even when the first is slow to be recorded', async () => {
    const first = Buffer.from('first version of the file\n');
    const second = Buffer.from('second version, uploaded while the first was being recorded\n');
    const gate = events.hold(sha256(first));
    const firstPut = put('ordering/run/artifacts/model.txt', first);
    await gate.reached; // the first upload's bytes are stored, its event not appended yet
    const secondPut = put('ordering/run/artifacts/model.txt', second);
    // give the second upload every chance to overtake (it must not: it waits for the first)
    await new Promise((r) => setTimeout(r, 500));
    gate.release();
    expect((await firstPut).status).toBe(200);
    expect((await secondPut).status).toBe(200);

    const served = Buffer.from(
      await (await fetch(`${server.url}${A}/ordering/run/artifacts/model.txt`)).arrayBuffer(),
    );
    expect(served.equals(second)).toBe(true);
    expect(await lastRecorded('ordering/run/artifacts/model.txt')).toBe(sha256(second));
  });

  it('records a delete after an upload of the same path that was still being recorded', async () => {
    const body = Buffer.from('short-lived\n');
    const gate = events.hold(sha256(body));
    const uploaded = put('ordering/run/artifacts/gone.txt', body);
    await gate.reached;
    const deleted = fetch(`${server.url}${A}/ordering/run/artifacts/gone.txt`, {
      method: 'DELETE',
    });
    await new Promise((r) => setTimeout(r, 500));
    gate.release();
    expect((await uploaded).status).toBe(200);
    expect((await deleted).status).toBe(200);
    expect((await fetch(`${server.url}${A}/ordering/run/artifacts/gone.txt`)).status).toBe(404);
    expect(await lastRecorded('ordering/run/artifacts/gone.txt')).toBeUndefined();
  });

  it('holds up no other path meanwhile', async () => {
    const body = Buffer.from('slow to be recorded\n');
    const gate = events.hold(sha256(body));
    const slow = put('ordering/run/artifacts/slow.txt', body);
    await gate.reached;
    // another path is stored and recorded while the first path's event is still held
    expect((await put('ordering/run/artifacts/other.txt', Buffer.from('other\n'))).status).toBe(
      200,
    );
    expect(await lastRecorded('ordering/run/artifacts/other.txt')).toBe(
      sha256(Buffer.from('other\n')),
    );
    gate.release();
    expect((await slow).status).toBe(200);
  });

  it('leaves a log that `ledgerflow artifacts verify` finds true to the stored bytes', async () => {
    expect(await artifactsVerify({ dataDir })).toBe(0);
  });
});
