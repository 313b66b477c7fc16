import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NewEvent } from '@ledgerflow/contracts';
import { SqliteEventStore } from '@ledgerflow/event-store';
import Database from 'better-sqlite3';
import type { CrashTestEventData } from './append-worker.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/** Kills in total; the log file is replaced every RESTARTS_PER_FILE kills to bound its size. */
const KILLS = 24;
const RESTARTS_PER_FILE = 4;

function newestSourceMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (
        entry.name !== 'node_modules' &&
        entry.name !== 'results' &&
        !entry.name.startsWith('.')
      ) {
        newest = Math.max(newest, newestSourceMtime(path));
      }
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts')) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/** Rebuilds dist/ only when a source is newer than the last build, since a build empties dist/ first. */
function ensureBuilt(): void {
  let builtAt = 0;
  try {
    builtAt = statSync(join(root, 'dist/package.json')).mtimeMs;
  } catch {
    builtAt = 0;
  }
  const newest = Math.max(
    ...['apps', 'libs', 'bench'].map((d) => {
      try {
        return newestSourceMtime(join(root, d));
      } catch {
        return 0;
      }
    }),
  );
  if (newest > builtAt)
    execFileSync(process.execPath, [join(root, 'tools/build.mjs'), '--quiet'], { cwd: root });
}

/**
 * A private copy of dist/ and bin/ under <root>/tmp (so node_modules still resolves), because
 * anyone else's build empties the shared dist/ while this test is running the worker and the CLI.
 * The copy is probed before use: a build caught half-written is retried.
 */
function snapshotBuild(): { dir: string; workerJs: string; cliJs: string } {
  for (let attempt = 1; ; attempt++) {
    ensureBuilt();
    mkdirSync(join(root, 'tmp'), { recursive: true });
    const dir = mkdtempSync(join(root, 'tmp', 'crash-test-build-'));
    const workerJs = join(dir, 'dist/libs/testing/src/crash/append-worker.js');
    const cliJs = join(dir, 'bin/ledgerflow.js');
    let problem: string;
    try {
      cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
      cpSync(join(root, 'bin'), join(dir, 'bin'), { recursive: true });
      // Both exit 2 (usage / no log) only if every module they import loaded.
      const worker = spawnSync(process.execPath, [workerJs], { encoding: 'utf8' });
      const cli = spawnSync(
        process.execPath,
        [cliJs, 'audit', 'verify', '--data-dir', join(dir, 'none')],
        {
          encoding: 'utf8',
        },
      );
      if (worker.status === 2 && cli.status === 2) return { dir, workerJs, cliJs };
      problem = `${worker.stderr}\n${cli.stderr}`;
    } catch (error: unknown) {
      problem = String(error);
    }
    rmSync(dir, { recursive: true, force: true });
    if (attempt === 3) throw new Error(`no usable build of the worker and the CLI: ${problem}`);
    // A concurrent build may have left dist/ fresh-looking but incomplete; force a clean one.
    rmSync(join(root, 'dist/package.json'), { force: true });
  }
}

let build: { dir: string; workerJs: string; cliJs: string } | undefined;

beforeAll(() => {
  build = snapshotBuild();
});

afterAll(() => {
  if (build !== undefined) rmSync(build.dir, { recursive: true, force: true });
});

function runAuditVerify(dataDir: string): {
  status: number | null;
  stdout: string;
  stderr: string;
} {
  const { status, stdout, stderr } = spawnSync(
    process.execPath,
    [build!.cliJs, 'audit', 'verify', '--data-dir', dataDir],
    {
      cwd: root,
      encoding: 'utf8',
    },
  );
  return { status, stdout, stderr };
}

/** mulberry32: a tiny seeded PRNG, so a failing run's kill delays can be replayed. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface WorkerRun {
  readonly acks: Map<string, number>;
  readonly signal: NodeJS.Signals | null;
  readonly exitCode: number | null;
  readonly stderr: string;
}

/** Starts the worker, lets it append for `delayMs` after it is ready, then SIGKILLs it. */
async function runWorkerUntilKilled(dbPath: string, delayMs: number): Promise<WorkerRun> {
  const child = spawn(process.execPath, [build!.workerJs, dbPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let armed = false;
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    stdout += chunk;
    if (!armed && stdout.startsWith('READY\n')) {
      armed = true;
      setTimeout(() => child.kill('SIGKILL'), delayMs);
    }
  });
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const [exitCode, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  const acks = new Map<string, number>();
  // A line cut off by the kill has no newline and was never fully acknowledged.
  for (const line of stdout.split('\n').slice(0, -1)) {
    const match = /^ACK (\S+) (\d+)$/.exec(line);
    if (match) acks.set(match[1]!, Number(match[2]));
  }
  return { acks, signal, exitCode, stderr };
}

function isCrashTestData(data: unknown): data is CrashTestEventData {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as Record<string, unknown>;
  return (
    typeof d['batchId'] === 'string' &&
    typeof d['index'] === 'number' &&
    typeof d['count'] === 'number'
  );
}

/** Everything that is wrong with the log after a restart; empty when all is well. */
async function inspectLog(dbPath: string, acked: ReadonlyMap<string, number>): Promise<string[]> {
  const problems: string[] = [];
  const store = new SqliteEventStore({ path: dbPath });
  try {
    const batches = new Map<string, { count: number; indexes: Set<number> }>();
    const nextRevision = new Map<string, number>();
    let expectedPosition = 1;
    for (let after = 0; ;) {
      const page = await store.readAll(after, 20_000);
      const last = page.at(-1);
      if (last === undefined) break;
      for (const event of page) {
        if (event.position !== expectedPosition)
          problems.push(`position ${expectedPosition} missing`);
        expectedPosition = event.position + 1;
        const revision = nextRevision.get(event.stream) ?? 0;
        if (event.revision !== revision)
          problems.push(`${event.stream}: revision ${event.revision}, expected ${revision}`);
        nextRevision.set(event.stream, event.revision + 1);
        if (!isCrashTestData(event.data)) {
          problems.push(`event ${event.id} has unexpected data`);
          continue;
        }
        const b = batches.get(event.data.batchId) ?? {
          count: event.data.count,
          indexes: new Set<number>(),
        };
        b.indexes.add(event.data.index);
        batches.set(event.data.batchId, b);
      }
      after = last.position;
    }
    for (const [batchId, b] of batches) {
      if (b.indexes.size !== b.count)
        problems.push(`batch ${batchId} is partial: ${b.indexes.size} of ${b.count}`);
    }
    for (const [batchId, count] of acked) {
      const b = batches.get(batchId);
      if (b === undefined) problems.push(`acknowledged batch ${batchId} is missing`);
      else if (b.count !== count)
        problems.push(`acknowledged batch ${batchId} has ${b.count} events, acked ${count}`);
    }
    if ((await store.headPosition()) !== expectedPosition - 1)
      problems.push('chain head is not the last event');
  } finally {
    await store.close();
  }
  return problems;
}

describe('SQLite event log under kill -9', () => {
  let workDir: string;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'ledgerflow-crash-'));
  });

  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  it(`loses no acknowledged append and tears no batch across ${KILLS} SIGKILLs`, async () => {
    const seed = Number(process.env['LEDGERFLOW_CRASH_SEED'] ?? Date.now() % 2 ** 31);
    const random = seededRandom(seed);
    console.log(`crash test seed ${seed} (LEDGERFLOW_CRASH_SEED=${seed} replays the kill delays)`);
    let totalAcked = 0;
    let acked = new Map<string, number>();
    let dataDir = '';
    for (let kill = 0; kill < KILLS; kill++) {
      if (kill % RESTARTS_PER_FILE === 0) {
        if (dataDir !== '') await rm(dataDir, { recursive: true, force: true });
        dataDir = join(workDir, `data-${kill / RESTARTS_PER_FILE}`);
        await mkdir(dataDir);
        acked = new Map();
      }
      const dbPath = join(dataDir, 'events.db');
      const delayMs = 50 + Math.floor(random() * 351);
      const run = await runWorkerUntilKilled(dbPath, delayMs);
      expect({ kill, signal: run.signal, exitCode: run.exitCode, stderr: run.stderr }).toEqual({
        kill,
        signal: 'SIGKILL',
        exitCode: null,
        stderr: '',
      });
      for (const [batchId, count] of run.acks) acked.set(batchId, count);
      totalAcked += run.acks.size;

      // The CLI sees the file exactly as the kill left it: it runs before any writer reopens it.
      const cli = runAuditVerify(dataDir);
      expect({ kill, delayMs, status: cli.status, stderr: cli.stderr }).toEqual({
        kill,
        delayMs,
        status: 0,
        stderr: '',
      });
      expect(cli.stdout).toMatch(/^audit verify: OK, \d+ events, head \d+ [0-9a-f]{64}\n$/);

      expect({ kill, delayMs, problems: await inspectLog(dbPath, acked) }).toEqual({
        kill,
        delayMs,
        problems: [],
      });
    }
    expect(totalAcked).toBeGreaterThan(0);
  }, 600_000);
});

describe('ledgerflow audit verify on a tampered log', () => {
  let dataDir: string;
  let dbPath: string;
  let stored: { position: number; id: string }[];

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ledgerflow-tamper-'));
    dbPath = join(dataDir, 'events.db');
    const store = new SqliteEventStore({ path: dbPath });
    const event = (i: number): NewEvent => ({
      id: `tamper-${i}`,
      type: 'ModelVersionStageTransitioned',
      schemaVersion: 1,
      occurredAt: 1_700_000_000_000 + i,
      data: { version: i, stage: 'Production' },
      metadata: { actor: 'alice', correlationId: `c-${i}`, causationId: null, reason: 'approved' },
    });
    await store.append('model-version:fraud-rf:1', 'no_stream', [event(1), event(2), event(3)]);
    await store.append('model-version:fraud-rf:2', 'no_stream', [event(4), event(5)]);
    stored = (await store.readAll(0)).map((e) => ({ position: e.position, id: e.id }));
    await store.close();
  });

  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  function tamper(sql: string, ...params: string[]): void {
    const db = new Database(dbPath);
    try {
      db.prepare(sql).run(...params);
    } finally {
      db.close();
    }
  }

  it('exits 0 with a summary for an intact log', () => {
    const cli = runAuditVerify(dataDir);
    expect(cli.status).toBe(0);
    expect(cli.stdout).toMatch(/^audit verify: OK, 5 events, head 5 [0-9a-f]{64}\n$/);
  });

  it('exits 1 naming the position and id of an edited event', () => {
    tamper(`UPDATE events SET data = '{"version":3,"stage":"Archived"}' WHERE position = 3`);
    const cli = runAuditVerify(dataDir);
    expect(cli.status).toBe(1);
    expect(cli.stderr).toBe(
      `audit verify: FAILED at position 3 (event ${stored[2]!.id}): content does not match its hash (the event was edited)\n`,
    );
  });

  it('exits 1 naming the position of a deleted event and the id stored after the gap', () => {
    tamper('DELETE FROM events WHERE position = 2');
    const cli = runAuditVerify(dataDir);
    expect(cli.status).toBe(1);
    expect(cli.stderr).toMatch(
      /^audit verify: FAILED at position 2 \(event missing\): event at position 2 is missing/,
    );
    expect(cli.stderr).toContain(stored[2]!.id);
  });

  it('exits 1 when the last event was deleted', () => {
    tamper('DELETE FROM events WHERE position = 5');
    const cli = runAuditVerify(dataDir);
    expect(cli.status).toBe(1);
    expect(cli.stderr).toBe(
      'audit verify: FAILED at position 5 (event missing): events after position 4 are missing (chain head says 5)\n',
    );
  });

  it('exits 2 when there is no event log', async () => {
    const cli = runAuditVerify(join(dataDir, 'nowhere'));
    expect(cli.status).toBe(2);
    expect(cli.stderr).toContain('no event log');
  });
});
