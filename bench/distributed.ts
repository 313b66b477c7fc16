// Issue 8 benchmark: distributed mode against embedded mode on the same machine, in one run.
// Starts `ledgerflow server` (embedded, SQLite) and measures it, stops it, then starts a whole
// distributed cluster with infra/local/cluster.sh (FerretDB, Kafka in KRaft mode, SeaweedFS, the
// four services as their own processes, nginx in front) on a fresh run dir and measures the same:
//  1. gRPC ingest throughput (points/s): the load generator of bench/ingest.ts
//     (libs/testing/src/load/metric-load.ts, its own process) streams in-order blocks to the
//     embedded server's gRPC port, and to the tracking-ingest service's gRPC port;
//  2. REST runs/log-batch throughput: 1000 metrics per request, a few concurrent clients each on
//     its own run, against the embedded server and against the nginx URL;
//  3. event end-to-end latency, append to projection visible: a client sets a fresh tag value on a
//     run (runs/set-tag, one event appended) and, from the moment it sends the request, polls
//     runs/get (served from the read model) until the tag shows that value. Reported per mode as
//     p50/p99 of that time, beside the set-tag acknowledgement latency alone.
// Each figure is then given as a ratio distributed / embedded. The workload is small on purpose:
// the whole run must fit in ~10 minutes on a loaded 2-core machine.
//   npm run bench -- distributed       (or: node dist/bench/distributed.js)
//   flags: --seconds 10 --clients 4 --runs 4 --latency-samples 20 --offset 7
//          --out bench/results/distributed.json
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import type { MetricLoadPlan, MetricLoadResult } from '@ledgerflow/testing';
import {
  argument,
  createExperiment,
  createRuns,
  logBatchThroughput,
  percentile,
  post,
  root,
  startLedgerflow,
  stop,
  type LogBatchResult,
  type Server,
} from './lib/servers.js';

const run = promisify(execFile);

const SECONDS = Number(argument('seconds', '10'));
const CLIENTS = Number(argument('clients', '4'));
const RUNS = Number(argument('runs', '4'));
const LATENCY_SAMPLES = Number(argument('latency-samples', '20'));
/** Port offset for the cluster, away from cluster.sh's defaults and the test suites' offsets. */
const OFFSET = Number(argument('offset', '7'));
const OUT = path.resolve(root, argument('out', 'bench/results/distributed.json'));
const KEYS = Array.from({ length: 10 }, (_, k) => `train/metric_${k}`);
const GENERATOR = { clients: 2, maxBatchPoints: 20_000, block: 100 } as const;
/** A write or a poll slower than this fails the sample (counted, not retried). */
const SAMPLE_TIMEOUT_MS = 120_000;

const script = path.join(root, 'infra/local/cluster.sh');
const work = mkdtempSync(path.join(os.tmpdir(), 'ledgerflow-distributed-bench-'));
// nginx's workers run unprivileged and must traverse down to the cluster's run dir
chmodSync(work, 0o711);
const clusterDir = path.join(work, 'cluster');
const clusterEnv: Record<string, string> = {
  ...(process.env as Record<string, string>),
  LEDGERFLOW_CLUSTER_DIR: clusterDir,
  LEDGERFLOW_CLUSTER_PORT: String(5300 + OFFSET * 10),
  LEDGERFLOW_CLUSTER_SERVICE_PORT_BASE: String(5300 + OFFSET * 10),
  // below the ephemeral port range, as the test clusters (apps/cli/src/testing/cluster.ts)
  LEDGERFLOW_CLUSTER_GRPC_BASE: String(20260 + OFFSET * 20),
  LEDGERFLOW_CLUSTER_INGEST_GRPC_PORT: String(20251 + OFFSET * 20),
  LEDGERFLOW_CLUSTER_MONGO_PORT: String(27318 + OFFSET),
  LEDGERFLOW_CLUSTER_KAFKA_PORT: String(19292 + OFFSET * 2),
  LEDGERFLOW_CLUSTER_S3_PORT: String(18833 + OFFSET),
  LEDGERFLOW_CLUSTER_S3_BASE_PORT: String(18933 + OFFSET * 10),
  LEDGERFLOW_CLUSTER_READY_TIMEOUT: '300',
};

// ---- everything started here is registered so `finally` or a signal can end it ----
const children = new Set<ChildProcess>();
const servers = new Set<Server>();
let clusterStarted = false;

async function clusterDown(): Promise<void> {
  if (!clusterStarted) return;
  await run('bash', [script, 'down', clusterDir], { env: clusterEnv, cwd: root }).catch(
    (e: unknown) => console.error('cluster.sh down:', (e as Error).message),
  );
  clusterStarted = false;
}

async function stopAll(): Promise<void> {
  for (const c of children) {
    try {
      if (c.exitCode === null && c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await Promise.all([...servers].map((s) => stop(s)));
  await clusterDown();
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void stopAll().finally(() => {
      rmSync(work, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

// ---- set-up writes: retried, since a loaded cluster may time out (as MLflow's client retries) ----
let setupRetries = 0;
let lastSetupError: string | undefined;

async function retried<T>(f: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await f();
    } catch (e) {
      if (attempt >= 4) throw e;
      setupRetries += 1;
      lastSetupError = (e as Error).message;
      console.error(`retrying after: ${lastSetupError}`);
      await new Promise((r) => setTimeout(r, 2000 * attempt));
    }
  }
}

/** A fresh experiment with n runs, each write retried. */
async function runsFor(url: string, label: string, n: number): Promise<string[]> {
  const experimentId = await retried(() => createExperiment(url, `${label}-${Date.now()}`));
  const runIds: string[] = [];
  for (let i = 0; i < n; i++)
    runIds.push(...(await retried(() => createRuns(url, experimentId, 1))));
  return runIds;
}

// ---- 1. gRPC ingest ----
interface GrpcResult {
  readonly pointsPerSecond: number;
  readonly ackedPoints: number;
  readonly batches: number;
  readonly seconds: number;
  readonly ackLatencyMs: MetricLoadResult['ackLatencyMs'];
}

async function grpcIngest(url: string, grpcAddress: string): Promise<GrpcResult> {
  const runIds = await runsFor(url, 'grpc', RUNS);
  const plan: MetricLoadPlan = {
    grpcAddress,
    runIds,
    keys: KEYS,
    steps: 10_000_000,
    clients: GENERATOR.clients,
    block: GENERATOR.block,
    maxBatchPoints: GENERATOR.maxBatchPoints,
    seconds: SECONDS,
    sequential: true,
  };
  const child = spawn(
    process.execPath,
    [path.join(root, 'dist/libs/testing/src/load/metric-load.js'), JSON.stringify(plan)],
    { stdio: ['ignore', 'pipe', 'inherit'], detached: true },
  );
  children.add(child);
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  // the generator stops at SECONDS; allow for slow acks of its last window
  const killer = setTimeout(
    () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    },
    (SECONDS + 180) * 1000,
  );
  try {
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0) throw new Error(`load generator exited with ${code}`);
  } finally {
    clearTimeout(killer);
    children.delete(child);
  }
  const r = JSON.parse(stdout.trim().split('\n').pop() ?? '') as MetricLoadResult;
  return {
    pointsPerSecond: r.pointsPerSecond,
    ackedPoints: r.ackedPoints,
    batches: r.batches,
    seconds: r.seconds,
    ackLatencyMs: r.ackLatencyMs,
  };
}

// ---- 3. append to projection visible ----
interface LatencyResult {
  readonly samples: number;
  readonly failed: number;
  readonly firstError?: string;
  /** From sending runs/set-tag until runs/get shows the new value. */
  readonly visibleMs: { readonly p50: number; readonly p99: number; readonly max: number };
  /** From sending runs/set-tag until its answer. */
  readonly ackMs: { readonly p50: number; readonly p99: number; readonly max: number };
  /** runs/get requests per sample, on average (1 = visible at the first read after the ack). */
  readonly pollsPerSample: number;
}

async function getRunTags(url: string, runId: string): Promise<Record<string, string>> {
  const res = await fetch(`${url}/api/2.0/mlflow/runs/get?run_id=${encodeURIComponent(runId)}`, {
    signal: AbortSignal.timeout(SAMPLE_TIMEOUT_MS),
  });
  if (!res.ok) throw new Error(`runs/get: ${res.status} ${(await res.text()).slice(0, 200)}`);
  const body = (await res.json()) as { run: { data: { tags?: { key: string; value: string }[] } } };
  return Object.fromEntries((body.run.data.tags ?? []).map((t) => [t.key, t.value]));
}

async function appendToVisible(url: string): Promise<LatencyResult> {
  const [runId] = await runsFor(url, 'latency', 1);
  const visible: number[] = [];
  const acks: number[] = [];
  let polls = 0;
  let failed = 0;
  let firstError: string | undefined;
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const value = `v${i}-${Date.now()}`;
    const t0 = performance.now();
    try {
      // the read side is polled concurrently with the write, so a projection that becomes
      // visible before the write is acknowledged is timed as such
      let acked = false;
      const write = post(url, 'runs/set-tag', { run_id: runId, key: 'bench.latency', value }).then(
        () => {
          acked = true;
          acks.push(performance.now() - t0);
        },
      );
      let seen: number | undefined;
      while (seen === undefined) {
        if (performance.now() - t0 > SAMPLE_TIMEOUT_MS) throw new Error('not visible in time');
        polls += 1;
        const tags = await getRunTags(url, runId!);
        if (tags['bench.latency'] === value) seen = performance.now() - t0;
        // before the ack: poll every 10 ms, and again as soon as the ack arrives
        else if (acked) await new Promise((r) => setTimeout(r, 2));
        else await Promise.race([write, new Promise((r) => setTimeout(r, 10))]);
      }
      await write;
      visible.push(seen);
    } catch (e) {
      failed += 1;
      firstError ??= (e as Error).message;
    }
  }
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const r = (x: number) => Number(x.toFixed(1));
    return { p50: r(percentile(s, 50)), p99: r(percentile(s, 99)), max: r(s.at(-1) ?? NaN) };
  };
  return {
    samples: visible.length,
    failed,
    ...(firstError === undefined ? {} : { firstError }),
    visibleMs: stats(visible),
    ackMs: stats(acks),
    pollsPerSample: Number((polls / Math.max(1, LATENCY_SAMPLES)).toFixed(1)),
  };
}

interface ModeResult {
  readonly url: string;
  readonly grpcIngest: GrpcResult | { readonly error: string };
  readonly restLogBatch: LogBatchResult | { readonly error: string };
  readonly appendToVisible: LatencyResult | { readonly error: string };
  readonly loadAverageAfter: number[];
  readonly wallSeconds: number;
  readonly setupRetries: number;
  readonly lastSetupError?: string;
}

/** Runs the three measurements; one that fails is recorded with its error, the others still run. */
/** Written after every phase (with `complete: false`), so a run stopped early keeps its figures. */
const partial: Record<string, Record<string, unknown>> = {};

function savePartial(): void {
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify({ complete: false, ...partial }, null, 2)}\n`);
}

async function measure(server: Server): Promise<ModeResult> {
  const phases: Record<string, unknown> = { url: server.url };
  partial[server.name] = phases;
  const t0 = performance.now();
  setupRetries = 0;
  lastSetupError = undefined;
  const attempt = async <T>(label: string, f: () => Promise<T>): Promise<T | { error: string }> => {
    const s = performance.now();
    try {
      const r = await f();
      phases[label] = r;
      savePartial();
      console.error(
        `${server.name} ${label} (${((performance.now() - s) / 1000).toFixed(0)} s)`,
        JSON.stringify(r),
      );
      return r;
    } catch (e) {
      console.error(`${server.name} ${label} failed:`, (e as Error).message);
      phases[label] = { error: (e as Error).message };
      savePartial();
      return { error: (e as Error).message };
    }
  };
  // the lightest load first: metric batches leave the distributed read models a backlog to
  // project, which is then in the figures of whatever is measured after them (REST log-batch
  // waits for its projection; gRPC acks do not)
  const latency = await attempt('latency', () => appendToVisible(server.url));
  const grpc = await attempt('grpc', () => grpcIngest(server.url, server.grpcAddress!));
  const rest = await attempt('rest', () =>
    runsFor(server.url, 'log-batch', CLIENTS).then((runIds) =>
      logBatchThroughput(server, { seconds: SECONDS, clients: CLIENTS, runIds }),
    ),
  );
  return {
    url: server.url,
    grpcIngest: grpc,
    restLogBatch: rest,
    appendToVisible: latency,
    loadAverageAfter: os.loadavg().map((x) => Number(x.toFixed(2))),
    setupRetries,
    ...(lastSetupError === undefined ? {} : { lastSetupError }),
    wallSeconds: Math.round((performance.now() - t0) / 1000),
  };
}

/** Copies the cluster's logs out of the run dir (deleted at the end) when something failed. */
function keepLogs(): void {
  const kept = path.join(root, 'tmp', `bench-distributed-logs-${Date.now()}`);
  try {
    cpSync(path.join(clusterDir, 'logs'), kept, { recursive: true });
    console.error(`cluster logs kept in ${kept}`);
  } catch (e) {
    console.error('could not keep the cluster logs:', (e as Error).message);
  }
}

async function startCluster(): Promise<Server & { readonly startSeconds: number }> {
  const t0 = performance.now();
  clusterStarted = true;
  const { stdout } = await run('bash', [script, 'up', clusterDir], {
    env: clusterEnv,
    cwd: root,
    maxBuffer: 16 * 1024 * 1024,
  });
  const url = /^url=(\S+)$/m.exec(stdout)?.[1];
  if (url === undefined) throw new Error(`cluster.sh up printed no url:\n${stdout}`);
  // a stand-in process handle: the cluster's processes are stopped by `cluster.sh down`
  const placeholder = { exitCode: 0, signalCode: null } as unknown as ChildProcess;
  return {
    name: 'distributed',
    url,
    process: placeholder,
    grpcAddress: `127.0.0.1:${clusterEnv['LEDGERFLOW_CLUSTER_INGEST_GRPC_PORT']}`,
    startSeconds: Math.round((performance.now() - t0) / 1000),
  };
}

const num = (x: unknown, field: string): number | undefined => {
  const v = (x as Record<string, unknown>)[field];
  return typeof v === 'number' ? v : undefined;
};

function ratio(d: number | undefined, e: number | undefined): number | null {
  if (d === undefined || e === undefined || e === 0) return null;
  return Number((d / e).toFixed(d / e < 0.1 ? 4 : 2));
}

async function main(): Promise<void> {
  const started = performance.now();
  const result: Record<string, unknown> = {
    benchmark: 'distributed',
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
      node: process.version,
      loadAverageAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
    },
    settings: {
      embedded: '`ledgerflow server`, one process, SQLite (WAL, synchronous FULL), fresh data dir',
      distributed:
        'infra/local/cluster.sh: FerretDB v1.24 (SQLite handler) as MongoDB, Kafka 3.9 KRaft, SeaweedFS S3, four service processes, nginx; fresh run dir',
      order:
        'embedded measured first and stopped, then the cluster started and measured; in each mode latency, then gRPC, then REST',
      seconds: SECONDS,
      grpcGenerator: {
        ...GENERATOR,
        runs: RUNS,
        keysPerRun: KEYS.length,
        order: 'sequential blocks (a training loop)',
        target: 'embedded: the server gRPC port; distributed: tracking-ingest gRPC port',
      },
      restLogBatch: {
        metricsPerRequest: 1000,
        clients: CLIENTS,
        target: 'embedded: the server; distributed: the nginx URL',
      },
      appendToVisible:
        'runs/set-tag with a fresh value; from the send, runs/get is polled (every 10 ms and at once on the ack before it, every 2 ms after it) until the tag shows the value; sequential samples on one run',
      latencySamples: LATENCY_SAMPLES,
    },
  };
  partial['run'] = { ...result };
  try {
    mkdirSync(path.join(work, 'embedded'));
    const embedded = await startLedgerflow(path.join(work, 'embedded'));
    servers.add(embedded);
    let emb: ModeResult;
    try {
      emb = await measure({ ...embedded, name: 'embedded' });
    } finally {
      await stop(embedded);
      servers.delete(embedded);
    }
    result['embedded'] = emb;

    const cluster = await startCluster();
    console.error(`cluster up in ${cluster.startSeconds} s at ${cluster.url}`);
    let dist: ModeResult;
    try {
      dist = await measure(cluster);
      if (
        ['grpcIngest', 'restLogBatch', 'appendToVisible'].some(
          (k) => 'error' in dist[k as 'grpcIngest'],
        )
      )
        keepLogs();
    } catch (e) {
      keepLogs();
      throw e;
    } finally {
      await clusterDown();
    }
    result['distributed'] = { clusterStartSeconds: cluster.startSeconds, ...dist };

    const ev = (m: ModeResult) => (m.appendToVisible as LatencyResult).visibleMs as unknown;
    result['ratios'] = {
      meaning: 'distributed / embedded (throughput: below 1 is slower; latency: above 1 is slower)',
      grpcIngestPointsPerSecond: ratio(
        num(dist.grpcIngest, 'pointsPerSecond'),
        num(emb.grpcIngest, 'pointsPerSecond'),
      ),
      restLogBatchPointsPerSecond: ratio(
        num(dist.restLogBatch, 'pointsPerSecond'),
        num(emb.restLogBatch, 'pointsPerSecond'),
      ),
      appendToVisibleP50: ratio(
        'visibleMs' in dist.appendToVisible ? num(ev(dist), 'p50') : undefined,
        'visibleMs' in emb.appendToVisible ? num(ev(emb), 'p50') : undefined,
      ),
      appendToVisibleP99: ratio(
        'visibleMs' in dist.appendToVisible ? num(ev(dist), 'p99') : undefined,
        'visibleMs' in emb.appendToVisible ? num(ev(emb), 'p99') : undefined,
      ),
    };
    result['loadAverageAtEnd'] = os.loadavg().map((x) => Number(x.toFixed(2)));
    result['wallSeconds'] = Math.round((performance.now() - started) / 1000);
  } catch (e) {
    console.error('partial result:', JSON.stringify(result, null, 2));
    throw e;
  } finally {
    await stopAll();
    rmSync(work, { recursive: true, force: true });
  }
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify({ complete: true, ...result }, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
}

await main();
