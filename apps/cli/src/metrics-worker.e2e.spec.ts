import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { SqliteReadModelStore } from '@ledgerflow/projections';
import { metricsProjection } from '@ledgerflow/service-tracking';

// The compiled server applies the metric history on a worker thread, in metric-read-models.db
// (under jest the TypeScript sources cannot run in a worker, so in-process e2e tests apply it on the
// main thread): read-your-writes across the thread, the files, kill -9 and `ledgerflow rebuild`.
const repoRoot = path.resolve(import.meta.dirname, '../../..');
const bin = path.join(repoRoot, 'bin/ledgerflow.js');
const run$ = promisify(execFile);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Whether dist/ was built after the last change to any TypeScript source under apps/ and libs/. */
function distIsFresh(): boolean {
  const built = path.join(repoRoot, 'dist/libs/platform/runtime/src/read-model-worker.js');
  if (!existsSync(built)) return false;
  const builtAt = statSync(built).mtimeMs;
  const newer = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((e) => {
      if (e.name === 'node_modules' || e.name.startsWith('.')) return false;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) return newer(p);
      return (
        e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts') && statSync(p).mtimeMs > builtAt
      );
    });
  return !newer(path.join(repoRoot, 'libs')) && !newer(path.join(repoRoot, 'apps'));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('metric history on a worker thread (compiled server)', () => {
  let dataDir: string;
  let url: string;
  let child: ChildProcess | undefined;
  let httpPort: number;
  let grpcPort: number;
  let serverLog = '';

  async function start(): Promise<void> {
    const proc = spawn(
      process.execPath,
      [
        bin,
        'server',
        '--port',
        String(httpPort),
        '--grpc-port',
        String(grpcPort),
        '--data-dir',
        dataDir,
      ],
      {
        env: { ...process.env, LEDGERFLOW_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    child = proc;
    proc.stderr?.on('data', (d: Buffer) => (serverLog += d.toString()));
    for (let i = 0; i < 1200; i++) {
      if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}`);
      try {
        if ((await fetch(`${url}/health`)).ok) return;
      } catch {
        // starting
      }
      await sleep(50);
    }
    throw new Error('server did not start');
  }

  async function stop(signal: NodeJS.Signals): Promise<void> {
    const proc = child;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill(signal);
    await exited;
  }

  async function call<T>(method: string, route: string, body?: unknown): Promise<T> {
    const res = await fetch(`${url}/api/2.0/mlflow/${route}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${route}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  const history = async (runId: string, key: string): Promise<number[]> =>
    (
      (
        await call<{ metrics?: { step: number }[] }>(
          'GET',
          `metrics/get-history?run_id=${runId}&metric_key=${key}`,
        )
      ).metrics ?? []
    ).map((m) => m.step);

  /** 1000 metrics over 10 keys (100 steps each), steps from `from`. */
  const batch = (runId: string, from: number) => ({
    run_id: runId,
    metrics: Array.from({ length: 1000 }, (_, i) => ({
      key: `k${i % 10}`,
      value: i * 0.5,
      timestamp: 1_700_000_000_000 + from + Math.floor(i / 10),
      step: from + Math.floor(i / 10),
    })),
  });

  beforeAll(async () => {
    // `npm test` builds first; build here only when dist/ is older than the sources (a second
    // build racing another spec's build could swap dist/ under a starting server)
    if (!distIsFresh()) {
      execFileSync(process.execPath, [path.join(repoRoot, 'tools/build.mjs'), '--quiet'], {
        cwd: repoRoot,
      });
    }
    dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-metrics-worker-'));
    httpPort = await freePort();
    grpcPort = await freePort();
    url = `http://127.0.0.1:${httpPort}`;
    await start();
  }, 120_000);

  afterAll(async () => {
    await stop('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('reads its writes, survives kill -9, and rebuilds to the same read model', async () => {
    expect(serverLog).toContain('read models applied on a worker thread: metrics');
    const experimentId = (
      await call<{ experiment_id: string }>('POST', 'experiments/create', { name: 'worker' })
    ).experiment_id;
    const runs: string[] = [];
    for (let r = 0; r < 3; r++) {
      runs.push(
        (
          await call<{ run: { info: { run_id: string } } }>('POST', 'runs/create', {
            experiment_id: experimentId,
          })
        ).run.info.run_id,
      );
    }
    // concurrent writers, each reading its history right after every acknowledged batch
    await Promise.all(
      runs.map(async (runId) => {
        for (let b = 0; b < 8; b++) {
          await call('POST', 'runs/log-batch', batch(runId, b * 100));
          const steps = await history(runId, `k${b % 10}`);
          expect(steps).toHaveLength((b + 1) * 100);
        }
      }),
    );
    // the metric history lives in its own file; the main read-model file has none of it
    expect(existsSync(path.join(dataDir, 'metric-read-models.db'))).toBe(true);
    const main = new Database(path.join(dataDir, 'read-models.db'), { readonly: true });
    const tables = main
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rm_metrics__%'")
      .pluck()
      .all();
    main.close();
    expect(tables).toEqual([]);

    // acknowledged batches survive kill -9 (each acked only after the worker committed it)
    await call('POST', 'runs/log-batch', batch(runs[0]!, 800));
    await stop('SIGKILL');
    await start();
    expect(await history(runs[0]!, 'k3')).toHaveLength(900);
    expect((await history(runs[1]!, 'k3')).at(-1)).toBe(799);
    await stop('SIGTERM');

    const store = new SqliteReadModelStore({ path: path.join(dataDir, 'metric-read-models.db') });
    let live: string;
    try {
      await store.setup(metricsProjection);
      live = await store.contentHash(metricsProjection);
    } finally {
      await store.close();
    }
    const { stdout } = await run$(
      process.execPath,
      [bin, 'rebuild', 'metrics', '--data-dir', dataDir],
      {
        env: { ...process.env, LEDGERFLOW_LOG_LEVEL: 'error' },
      },
    );
    expect(stdout).toContain(`content hash ${live}`);
    await start();
    expect(await history(runs[2]!, 'k9')).toHaveLength(800);
  }, 300_000);
});
