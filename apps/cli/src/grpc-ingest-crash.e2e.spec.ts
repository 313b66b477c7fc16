import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LedgerflowClient } from '@ledgerflow/client';
import { SqliteEventStore } from '@ledgerflow/event-store';

// Acceptance: kill -9 of the server mid-stream, at least 10 times. The SDK reconnects and resends
// only unacked batches; afterwards no acked point is missing and no point is doubled.
const repoRoot = path.resolve(import.meta.dirname, '../../..');
const KILLS = 12;
const RUNS = 4;
const KEYS = ['loss', 'lr'];
const MAX_STEPS = 200_000;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('gRPC ingest survives kill -9 of the server', () => {
  let dataDir: string;
  let httpPort: number;
  let grpcPort: number;
  let child: ChildProcess | undefined;

  async function start(): Promise<void> {
    const proc = spawn(
      process.execPath,
      [
        path.join(repoRoot, 'bin/ledgerflow.js'),
        'server',
        '--port',
        String(httpPort),
        '--grpc-port',
        String(grpcPort),
        '--data-dir',
        dataDir,
      ],
      { env: { ...process.env, LEDGERFLOW_LOG_LEVEL: 'error' }, stdio: 'ignore' },
    );
    child = proc;
    for (let i = 0; i < 400; i++) {
      if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}`);
      try {
        if ((await fetch(`http://127.0.0.1:${httpPort}/health`)).ok) return;
      } catch {
        // starting
      }
      await sleep(50);
    }
    throw new Error('server did not start');
  }

  async function kill(): Promise<void> {
    const proc = child;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  }

  beforeAll(async () => {
    execFileSync(process.execPath, [path.join(repoRoot, 'tools/build.mjs'), '--quiet'], {
      cwd: repoRoot,
    });
    dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-grpc-crash-'));
    httpPort = await freePort();
    grpcPort = await freePort();
    await start();
  });

  afterAll(async () => {
    await kill();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(`loses and doubles nothing across ${KILLS} kills`, async () => {
    const client = new LedgerflowClient({
      grpcAddress: `127.0.0.1:${grpcPort}`,
      restUrl: `http://127.0.0.1:${httpPort}`,
      clientId: 'crash-trainer',
      maxBatchPoints: 2000,
      flushIntervalMs: 20,
      reconnectMaxMs: 300,
    });
    const runIds: string[] = [];
    for (let r = 0; r < RUNS; r++) {
      const experimentId = await client.rest.experimentId('crash');
      const created = await client.rest.call<{ run: { info: { run_id: string } } }>(
        'POST',
        'runs/create',
        { experiment_id: experimentId, run_name: `crash-${r}` },
      );
      runIds.push(created.run.info.run_id);
    }

    // The writer streams at a steady pace for as long as the kills go on (plus a tail), so every
    // kill lands mid-stream; `steps` is how many steps each series got.
    let writing = true;
    let kills = 0;
    let steps = 0;
    const writer = (async () => {
      let tail = 0;
      while (tail < 500 && steps < MAX_STEPS) {
        for (let i = 0; i < 50; i++, steps++)
          for (let r = 0; r < RUNS; r++)
            for (let k = 0; k < KEYS.length; k++)
              client.logMetric(
                runIds[r]!,
                KEYS[k]!,
                r * 1e6 + k * 1e5 + steps,
                steps,
                1_700_000_000_000 + steps,
              );
        if (kills >= KILLS) tail += 50;
        await client.metrics.ready();
        await sleep(10);
      }
      writing = false;
    })();

    let seed = 7;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    let midStream = 0;
    while (kills < KILLS) {
      await sleep(150 + Math.floor(rand() * 400));
      // kill while batches are in flight: wait (bounded) until the writer has unacknowledged points
      for (let i = 0; i < 200 && client.metrics.pendingPoints === 0; i++) await sleep(5);
      if (client.metrics.pendingPoints > 0) midStream += 1;
      await kill();
      kills += 1;
      await sleep(Math.floor(rand() * 200));
      await start();
    }
    await writer;
    expect(writing).toBe(false);
    await client.metrics.flush();
    const stats = { ...client.metrics.stats };
    await client.close();
    // every kill found points in flight; the writer reconnected after most of them (a kill can
    // land just after the last in-flight ack, which needs no reconnect)
    console.log(
      `crash test: ${kills} kills, ${midStream} mid-stream, ${steps} steps, reconnects ${stats.reconnects}, resent ${stats.resent}`,
    );
    expect(midStream).toBe(KILLS);
    expect(steps).toBeLessThan(MAX_STEPS);
    expect(stats.reconnects).toBeGreaterThanOrEqual(KILLS / 2);
    expect(stats.ackedPoints).toBe(RUNS * KEYS.length * steps);

    // every point is there exactly once
    for (const runId of runIds) {
      for (const key of KEYS) {
        const rest = new LedgerflowClient({
          restUrl: `http://127.0.0.1:${httpPort}`,
          grpcAddress: `127.0.0.1:${grpcPort}`,
        }).rest;
        let history: Awaited<ReturnType<typeof rest.metricHistory>> = [];
        for (let attempt = 0; attempt < 100; attempt++) {
          history = await rest.metricHistory(runId, key);
          if (history.length >= steps) break;
          await sleep(100); // the read model catches up from the log after a restart
        }
        const distinct = new Set(history.map((p) => p.step));
        expect({ runId, key, points: history.length, distinctSteps: distinct.size }).toEqual({
          runId,
          key,
          points: steps,
          distinctSteps: steps,
        });
      }
    }

    // the log holds each batch once, and its hash chain is intact
    await kill();
    const log = new SqliteEventStore({ path: path.join(dataDir, 'events.db'), readonly: true });
    const batchIds: string[] = [];
    for (let after = 0; ;) {
      const page = await log.readAll(after, 5000);
      if (page.length === 0) break;
      for (const e of page)
        if (e.type === 'MetricBatchIngested')
          batchIds.push((e.data as { clientBatchId: string }).clientBatchId);
      after = page[page.length - 1]!.position;
    }
    expect((await log.verify()).ok).toBe(true);
    await log.close();
    expect(new Set(batchIds).size).toBe(batchIds.length);
    expect(batchIds.length).toBe(stats.acked);
    await start();
  }, 600_000);
});
