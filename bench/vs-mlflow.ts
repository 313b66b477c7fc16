// Side by side with the reference `mlflow server` (PyPI, SQLite backend, this machine), in one run:
//  1. log-batch of 1000 metrics per request from 20 concurrent clients: points/s, and the ratio;
//  2. runs/search over N runs (20 params, 20 metrics, 10 tags each) with
//     `metrics.m1 > 0.5 and params.p1 = 'x'`, ordered by a metric, top 100: p50 and p95, and the ratio.
// Both servers get the same requests from this process and the same data (the reference is loaded
// in bulk into its own schema by bench/reference/load_mlflow_runs.py; Ledgerflow from events).
//   npm run build && node dist/bench/vs-mlflow.js [--runs 100000] [--seconds 15] [--ref-queries 5]
//   [--keys 100] [--skip-search] (log-batch only). Server CPU seconds during log-batch are recorded
//   for both (the reference: its whole process group, workers included), so a run on a busy machine
//   still compares CPU per point.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { NewEvent } from '@ledgerflow/contracts';
import { SqliteEventStore, type StreamWrite } from '@ledgerflow/event-store';
import {
  argument,
  flag,
  logBatchThroughput,
  mlflowVersion,
  percentile,
  post,
  pythonVenv,
  root,
  startLedgerflow,
  startMlflow,
  stop,
  type LogBatchResult,
  type Server,
} from './lib/servers.js';

const RUNS = Number(argument('runs', '100000'));
const SECONDS = Number(argument('seconds', '15'));
const REF_QUERIES = Number(argument('ref-queries', '5'));
/** Distinct metric keys in each 1000-metric log-batch request. */
const KEYS = Number(argument('keys', '100'));
const LF_QUERIES = Number(argument('queries', '200'));
const OUT = path.resolve(root, argument('out', 'bench/results/vs-mlflow.json'));
const SKIP_SEARCH = flag('skip-search');
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU seconds (user + system) used so far by every live process of a process group. */
function groupCpuSeconds(pgid: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // after the command name: state, ppid, pgrp, ... utime (14th field), stime (15th)
      if (Number(f[2]) === pgid || Number(entry) === pgid) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // the process ended meanwhile
    }
  }
  return ticks / CLOCK_TICKS;
}

/** log-batch throughput plus the server's CPU seconds and CPU microseconds per point. */
async function measuredLogBatch(
  server: Server,
  options: Parameters<typeof logBatchThroughput>[1],
): Promise<LogBatchResult & { serverCpuSeconds: number; serverCpuMicrosPerPoint: number }> {
  const pid = server.process.pid!;
  const before = groupCpuSeconds(pid);
  const r = await logBatchThroughput(server, options);
  const cpu = groupCpuSeconds(pid) - before;
  return {
    ...r,
    serverCpuSeconds: Number(cpu.toFixed(2)),
    serverCpuMicrosPerPoint: Number(((cpu * 1e6) / Math.max(1, r.points)).toFixed(2)),
  };
}
const CLIENTS = 20;
const METRICS_PER_REQUEST = 1000;
const FILTER = "metrics.m1 > 0.5 and params.p1 = 'x'";
const ORDER_BY = ['metrics.m2 DESC'];

// ---- the synthetic runs (same formulas as bench/reference/load_mlflow_runs.py) ----
const PARAMS = 20;
const METRICS = 20;
const TAGS = 10;
const BASE_TIME = 1_700_000_000_000;
export const runId = (i: number): string => i.toString(16).padStart(32, '0');
export const metricValue = (i: number, j: number): number =>
  ((i * 2654435761 + j * 40503) % 4294967296) / 4294967296;

/** The events the tracking service would append for synthetic run i. */
function runEvents(i: number, experimentId: string): NewEvent[] {
  const id = runId(i);
  const start = BASE_TIME + i * 1000;
  const meta = { actor: 'bench', correlationId: `bench-${i}`, causationId: null };
  const ev = (n: number, type: string, data: unknown): NewEvent => ({
    id: `${id}-${n}`,
    type,
    schemaVersion: 1,
    occurredAt: start,
    data,
    metadata: meta,
  });
  const tags = [
    ...Array.from({ length: TAGS }, (_, j) => ({ key: `t${j}`, value: `tag${(i + j) % 10}` })),
    { key: 'mlflow.runName', value: `run-${i}` },
  ];
  return [
    ev(0, 'RunCreated', {
      runId: id,
      experimentId,
      userId: 'bench',
      runName: `run-${i}`,
      startTime: start,
      artifactUri: `mlflow-artifacts:/${experimentId}/${id}/artifacts`,
      tags,
    }),
    ev(1, 'RunParamsLogged', {
      runId: id,
      params: Array.from({ length: PARAMS }, (_, j) => ({
        key: `p${j}`,
        value: j === 1 ? (['x', 'y', 'z'][i % 3] as string) : `v${(i * 7 + j) % 100}`,
      })),
    }),
    ev(2, 'MetricsLogged', {
      runId: id,
      keys: Array.from({ length: METRICS }, (_, j) => `m${j}`),
      k: Array.from({ length: METRICS }, (_, j) => j),
      v: Array.from({ length: METRICS }, (_, j) => metricValue(i, j)),
      t: Array.from({ length: METRICS }, () => start),
      s: Array.from({ length: METRICS }, () => 0),
    }),
    ev(3, 'RunUpdated', { runId: id, status: 'FINISHED', endTime: start + 500 }),
  ];
}

// ---- 2. search ----
async function searchLatency(
  server: Server,
  experimentId: string,
  queries: number,
): Promise<{ queries: number; p50Ms: number; p95Ms: number; matchesFirstPage: number }> {
  const times: number[] = [];
  let returned = 0;
  for (let q = 0; q < queries; q++) {
    const t0 = performance.now();
    const r = (await post(server.url, 'runs/search', {
      experiment_ids: [experimentId],
      filter: FILTER,
      order_by: ORDER_BY,
      max_results: 100,
    })) as { runs?: unknown[] };
    times.push(performance.now() - t0);
    returned = r.runs?.length ?? 0;
  }
  times.sort((a, b) => a - b);
  return {
    queries,
    p50Ms: Number(percentile(times, 50).toFixed(2)),
    p95Ms: Number(percentile(times, 95).toFixed(2)),
    matchesFirstPage: returned,
  };
}

async function loadLedgerflowRuns(dataDir: string): Promise<string> {
  // create the experiment through the API, then append the runs' events straight into the log
  let server = await startLedgerflow(dataDir);
  const experimentId = (await post(server.url, 'experiments/create', { name: 'search-bench' }))[
    'experiment_id'
  ] as string;
  await stop(server);
  const store = new SqliteEventStore({
    path: path.join(dataDir, 'events.db'),
    synchronous: 'normal',
  });
  for (let from = 0; from < RUNS; from += 1000) {
    const writes: StreamWrite[] = [];
    for (let i = from; i < Math.min(RUNS, from + 1000); i++) {
      writes.push({
        stream: `run-${runId(i)}`,
        expectedRevision: 'no_stream',
        events: runEvents(i, experimentId),
      });
    }
    await store.appendMulti(writes);
  }
  await store.close();
  server = await startLedgerflow(dataDir); // catches the read models up before it answers /health
  await stop(server);
  return experimentId;
}

async function main(): Promise<void> {
  execFileSync(process.execPath, [path.join(root, 'tools/build.mjs'), '--quiet']);
  const work = mkdtempSync(path.join(os.tmpdir(), 'ledgerflow-vs-mlflow-'));
  const venv = pythonVenv();
  const result: Record<string, unknown> = {
    benchmark: 'vs-mlflow',
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      node: process.version,
      loadAverage: os.loadavg(),
    },
    reference: mlflowVersion(venv),
  };
  try {
    // 1. log-batch, fresh data dirs
    const lf = await startLedgerflow(path.join(work, 'lf-ingest'));
    const batchOptions = {
      seconds: SECONDS,
      clients: CLIENTS,
      metricsPerRequest: METRICS_PER_REQUEST,
      keys: KEYS,
    };
    const lfIngest = await measuredLogBatch(lf, batchOptions);
    await stop(lf);
    mkdirSync(path.join(work, 'ml-ingest'));
    const ml = await startMlflow(path.join(work, 'ml-ingest'), venv);
    const mlIngest = await measuredLogBatch(ml, batchOptions);
    await stop(ml);
    result['logBatch'] = {
      clients: CLIENTS,
      metricsPerRequest: METRICS_PER_REQUEST,
      seconds: SECONDS,
      ledgerflow: lfIngest,
      mlflow: mlIngest,
      ratio: Number((lfIngest.pointsPerSecond / mlIngest.pointsPerSecond).toFixed(1)),
      cpuPerPointRatio: Number(
        (mlIngest.serverCpuMicrosPerPoint / lfIngest.serverCpuMicrosPerPoint).toFixed(1),
      ),
    };
    console.error('log-batch', JSON.stringify(result['logBatch']));
    if (!SKIP_SEARCH) await measureSearch(result, venv, work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
}

/** 2. search over RUNS runs, on both servers. */
async function measureSearch(
  result: Record<string, unknown>,
  venv: string,
  work: string,
): Promise<void> {
  const lfDir = path.join(work, 'lf-search');
  const t0 = performance.now();
  const lfExperiment = await loadLedgerflowRuns(lfDir);
  const lfLoadS = (performance.now() - t0) / 1000;
  const mlDir = path.join(work, 'ml-search');
  mkdirSync(mlDir);
  const t1 = performance.now();
  const mlExperiment = execFileSync(
    path.join(venv, 'bin/python'),
    [
      path.join(root, 'bench/reference/load_mlflow_runs.py'),
      path.join(mlDir, 'mlflow.db'),
      path.join(mlDir, 'artifacts'),
      'search-bench',
      String(RUNS),
    ],
    { encoding: 'utf8', env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true' } },
  )
    .trim()
    .split('\n')
    .pop()!;
  const mlLoadS = (performance.now() - t1) / 1000;
  const lf2 = await startLedgerflow(lfDir);
  await searchLatency(lf2, lfExperiment, 5); // warm-up
  const lfSearch = await searchLatency(lf2, lfExperiment, LF_QUERIES);
  await stop(lf2);
  const ml2 = await startMlflow(mlDir, venv);
  await searchLatency(ml2, mlExperiment, 1); // warm-up
  const mlSearch = await searchLatency(ml2, mlExperiment, REF_QUERIES);
  await stop(ml2);
  result['search'] = {
    runs: RUNS,
    perRun: { params: PARAMS, metrics: METRICS, tags: TAGS },
    filter: FILTER,
    orderBy: ORDER_BY,
    maxResults: 100,
    loadSeconds: { ledgerflow: Number(lfLoadS.toFixed(1)), mlflow: Number(mlLoadS.toFixed(1)) },
    ledgerflow: lfSearch,
    mlflow: mlSearch,
    ratioP50: Number((mlSearch.p50Ms / lfSearch.p50Ms).toFixed(1)),
  };
  console.error('search', JSON.stringify(result['search']));
}

await main();
