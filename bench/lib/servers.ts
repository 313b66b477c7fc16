// Servers for benchmarks that run side by side with the reference `mlflow server`: start and stop
// a Ledgerflow server or the PyPI `mlflow server` as child processes, and drive MLflow's REST
// log-batch at them. Shared by bench/vs-mlflow.ts and bench/ingest.ts so both measure the same way.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/** The repository root (this file lives in dist/bench/lib/ once built). */
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The value after `--name` on the command line, or the fallback. */
export function argument(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

/** Whether the bare flag `--name` is on the command line. */
export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

/** A server under test, running as a child process of the benchmark. */
export interface Server {
  readonly name: string;
  readonly url: string;
  readonly process: ChildProcess;
  /** The gRPC ingest address (`host:port`), for Ledgerflow. */
  readonly grpcAddress?: string;
  /** The child leads its own process group; stop() signals the whole group. */
  readonly group?: boolean;
}

async function waitHealthy(url: string, child: ChildProcess, seconds: number): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no /health at ${url} within ${seconds} s`);
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts `ledgerflow server` on free ports; resolves once /health answers. */
export async function startLedgerflow(
  dataDir: string,
  options: { readonly env?: Readonly<Record<string, string>>; readonly nodeArgs?: string[] } = {},
): Promise<Server> {
  const port = await freePort();
  const grpcPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      path.join(root, 'bin/ledgerflow.js'),
      'server',
      '--port',
      String(port),
      '--grpc-port',
      String(grpcPort),
      '--data-dir',
      dataDir,
    ],
    {
      env: { ...process.env, LEDGERFLOW_LOG_LEVEL: 'warn', ...options.env },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, child, 600);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return { name: 'ledgerflow', url, process: child, grpcAddress: `127.0.0.1:${grpcPort}` };
}

/** The Python venv with the reference mlflow (created by tools/python-env.sh on first use). */
export function pythonVenv(): string {
  return execFileSync('bash', [path.join(root, 'tools/python-env.sh')], {
    encoding: 'utf8',
  }).trim();
}

/** The reference mlflow version in the venv. */
export function mlflowVersion(venv: string): string {
  return execFileSync(
    path.join(venv, 'bin/python'),
    ['-c', 'import mlflow; print(mlflow.__version__)'],
    { encoding: 'utf8' },
  ).trim();
}

/** Starts the reference `mlflow server` (SQLite backend in dir); resolves once /health answers. */
export async function startMlflow(dir: string, venv: string): Promise<Server> {
  const port = await freePort();
  const child = spawn(
    path.join(venv, 'bin/mlflow'),
    [
      'server',
      '--backend-store-uri',
      `sqlite:///${dir}/mlflow.db`,
      '--default-artifact-root',
      `${dir}/artifacts`,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
    ],
    {
      env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true', DO_NOT_TRACK: 'true' },
      stdio: ['ignore', 'ignore', 'inherit'],
      // its own process group, so stop() also ends the workers `mlflow server` forks
      detached: true,
    },
  );
  const server: Server = {
    name: 'mlflow',
    url: `http://127.0.0.1:${port}`,
    process: child,
    group: true,
  };
  try {
    await waitHealthy(server.url, child, 300);
  } catch (e) {
    await stop(server);
    throw e;
  }
  return server;
}

function signal(server: Server, sig: NodeJS.Signals): void {
  const child = server.process;
  try {
    if (server.group && child.pid !== undefined) process.kill(-child.pid, sig);
    else child.kill(sig);
  } catch {
    // already gone
  }
}

/** Stops a server (SIGTERM, then SIGKILL after 10 s) and resolves when it has exited. */
export async function stop(server: Server): Promise<void> {
  if (server.process.exitCode !== null || server.process.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    server.process.once('exit', () => resolve());
    signal(server, 'SIGTERM');
    setTimeout(() => signal(server, 'SIGKILL'), 10_000).unref();
  });
}

/** POSTs to MLflow's REST API; throws on a non-2xx answer. */
export async function post(
  url: string,
  route: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}/api/2.0/mlflow/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${route}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** Creates an experiment over REST; returns its id. */
export async function createExperiment(url: string, name: string): Promise<string> {
  return (await post(url, 'experiments/create', { name }))['experiment_id'] as string;
}

/** Creates n runs in the experiment over REST; returns their ids. */
export async function createRuns(url: string, experimentId: string, n: number): Promise<string[]> {
  const runs: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = (await post(url, 'runs/create', {
      experiment_id: experimentId,
      start_time: Date.now(),
    })) as { run: { info: { run_id: string } } };
    runs.push(r.run.info.run_id);
  }
  return runs;
}

/** The p-th percentile of ascending values (nearest rank below). */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export interface LogBatchOptions {
  readonly seconds: number;
  /** Concurrent clients, one run each (default 20). */
  readonly clients?: number;
  /** Metrics per log-batch request (default 1000, MLflow's limit). */
  readonly metricsPerRequest?: number;
  /** Distinct metric keys per request (default 100): 1000 metrics are then 10 steps of 100 keys. */
  readonly keys?: number;
  /** Existing runs to log to, one per client (default: a new experiment and runs are created). */
  readonly runIds?: readonly string[];
}

export interface LogBatchResult {
  readonly points: number;
  readonly seconds: number;
  readonly pointsPerSecond: number;
  readonly requestP50Ms: number;
  /** Requests refused or failed (counted, not retried; their points are not counted). */
  readonly errors: number;
  readonly firstError?: string;
}

/** Sustained REST runs/log-batch throughput: each client logs to its own run, back to back. */
export async function logBatchThroughput(
  server: Server,
  options: LogBatchOptions,
): Promise<LogBatchResult> {
  const clients = options.clients ?? 20;
  const perRequest = options.metricsPerRequest ?? 1000;
  const keys = options.keys ?? 100;
  const runs =
    options.runIds?.slice(0, clients) ??
    (await createRuns(
      server.url,
      await createExperiment(server.url, `log-batch-${Date.now()}`),
      clients,
    ));
  let points = 0;
  let errors = 0;
  let firstError: string | undefined;
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  await Promise.all(
    runs.map(async (run_id, c) => {
      for (let step = 0; performance.now() < deadline; step++) {
        const ts = Date.now();
        const metrics = Array.from({ length: perRequest }, (_, m) => ({
          key: `m${m % keys}`,
          value: Math.sin(step + m + c),
          timestamp: ts,
          step: step * Math.ceil(perRequest / keys) + Math.floor(m / keys),
        }));
        const t0 = performance.now();
        try {
          await post(server.url, 'runs/log-batch', { run_id, metrics });
        } catch (e) {
          // an overloaded reference server may refuse some requests: count them and go on
          errors += 1;
          firstError ??= (e as Error).message;
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        latencies.push(performance.now() - t0);
        points += perRequest;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    points,
    seconds: Number(seconds.toFixed(3)),
    pointsPerSecond: Math.round(points / seconds),
    requestP50Ms: Number(percentile(latencies, 50).toFixed(1)),
    errors,
    ...(firstError === undefined ? {} : { firstError }),
  };
}
