// Metric ingest and read over HTTP against the embedded server, in-process:
//  1. log-batch of 1000 metrics per request from 20 concurrent clients (each its own run): points/s;
//  2. log-batch throughput (1 client, one series) into a run that already holds 10M points of that
//     series vs into an empty run: the cost of a write must not grow with history;
//  3. get-history-bulk-interval of 320 points from the 10M-point series: p50/p95 ms.
// The 10M points are pre-loaded by appending MetricsLogged events of 10k points straight to the
// log (as a gRPC ingest would), then letting the projections catch up.
// The measuring functions take a base URL, so they run unchanged against the reference
// `mlflow server` too (see bench/vs-mlflow.ts).
//   npm run build && node dist/bench/metrics-ingest.js [--seconds 10] [--points 10000000] [--out file]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { NewEvent } from '@ledgerflow/contracts';
import { loadConfig } from '@ledgerflow/config';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import type { ProjectionRunner } from '@ledgerflow/projections';
import { PROJECTION_RUNNER, type RunningServer } from '@ledgerflow/runtime';
import { startEmbeddedServer } from '@ledgerflow/service-embedded';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function argument(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

/** Latency summary in ms. */
export interface Latency {
  readonly p50: number;
  readonly p95: number;
  readonly max: number;
}

/** Result of a timed log-batch load. */
export interface IngestResult {
  readonly clients: number;
  readonly metricsPerRequest: number;
  readonly requests: number;
  readonly points: number;
  readonly seconds: number;
  readonly pointsPerSecond: number;
  readonly requestsPerSecond: number;
  readonly latencyMs: Latency;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function round(n: number, digits = 2): number {
  return Number(n.toFixed(digits));
}

function summarize(latencies: number[]): Latency {
  latencies.sort((a, b) => a - b);
  return {
    p50: round(percentile(latencies, 50)),
    p95: round(percentile(latencies, 95)),
    max: round(latencies[latencies.length - 1] ?? 0),
  };
}

async function postJson(baseUrl: string, route: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${baseUrl}/api/2.0/mlflow/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${route}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as unknown;
}

/** Creates a run in experiment 0 over REST and returns its id. */
export async function createRun(baseUrl: string): Promise<string> {
  const r = (await postJson(baseUrl, 'runs/create', { experiment_id: '0', start_time: 1 })) as {
    run: { info: { run_id: string } };
  };
  return r.run.info.run_id;
}

/** How a client's batches look: `keys` series, steps advancing by metricsPerRequest / keys a request. */
export interface BatchShape {
  readonly metricsPerRequest: number;
  readonly keys: readonly string[];
  /** First step of the first request (to continue an existing series). */
  readonly firstStep?: number;
}

/** The n-th log-batch body of a client: metricsPerRequest points spread over the keys. */
export function batchBody(runId: string, shape: BatchShape, n: number): object {
  const perKey = Math.ceil(shape.metricsPerRequest / shape.keys.length);
  const base = (shape.firstStep ?? 0) + n * perKey;
  const metrics = [];
  for (let i = 0; i < shape.metricsPerRequest; i++) {
    const step = base + Math.floor(i / shape.keys.length);
    metrics.push({
      key: shape.keys[i % shape.keys.length]!,
      value: Math.sin(step) + i / 1000,
      timestamp: 1_700_000_000_000 + step,
      step,
    });
  }
  return { run_id: runId, metrics };
}

/**
 * log-batch load for `seconds`: client c sends batches to runIds[c] one after another.
 * Counts points the server acknowledged.
 */
export async function measureLogBatch(
  baseUrl: string,
  runIds: readonly string[],
  shape: BatchShape,
  seconds: number,
): Promise<IngestResult> {
  const latencies: number[] = [];
  let requests = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    runIds.map(async (runId) => {
      for (let n = 0; performance.now() < deadline; n++) {
        const body = batchBody(runId, shape, n);
        const t0 = performance.now();
        await postJson(baseUrl, 'runs/log-batch', body);
        latencies.push(performance.now() - t0);
        requests += 1;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return {
    clients: runIds.length,
    metricsPerRequest: shape.metricsPerRequest,
    requests,
    points: requests * shape.metricsPerRequest,
    seconds: round(elapsed, 3),
    pointsPerSecond: Math.round((requests * shape.metricsPerRequest) / elapsed),
    requestsPerSecond: round(requests / elapsed),
    latencyMs: summarize(latencies),
  };
}

/** get-history-bulk-interval of `maxResults` points, `iterations` times in a row: latency and size. */
export async function measureBulkInterval(
  baseUrl: string,
  runId: string,
  metricKey: string,
  maxResults: number,
  iterations: number,
): Promise<{ iterations: number; points: number; latencyMs: Latency }> {
  const latencies: number[] = [];
  let points = 0;
  const url = `${baseUrl}/api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=${runId}&metric_key=${encodeURIComponent(metricKey)}&max_results=${maxResults}`;
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    const res = await fetch(url);
    const body = (await res.json()) as { metrics?: unknown[] };
    latencies.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`bulk-interval: HTTP ${res.status}`);
    points = body.metrics?.length ?? 0;
  }
  return { iterations, points, latencyMs: summarize(latencies) };
}

/**
 * Appends `total` points of one series straight to a run's stream as MetricsLogged events of
 * `perEvent` points (steps 0..total-1), then waits for every read model to apply them.
 */
export async function preloadSeries(
  server: RunningServer,
  runId: string,
  key: string,
  total: number,
  perEvent = 10_000,
): Promise<{ seconds: number; appendSeconds: number }> {
  const events = server.app.get<EventStore>(EVENT_STORE);
  const runner = server.app.get<ProjectionRunner>(PROJECTION_RUNNER);
  const stream = `run-${runId}`;
  const started = performance.now();
  let revision = (await events.readStream(stream)).length - 1;
  for (let from = 0; from < total; from += perEvent) {
    const n = Math.min(perEvent, total - from);
    const s = Array.from({ length: n }, (_, i) => from + i);
    const event: NewEvent = {
      id: `preload-${runId}-${from}`,
      type: 'MetricsLogged',
      schemaVersion: 1,
      occurredAt: 1_700_000_000_000,
      data: {
        runId,
        keys: [key],
        k: new Array<number>(n).fill(0),
        v: s.map((step) => Math.sin(step / 1000)),
        t: s.map((step) => 1_700_000_000_000 + step),
        s,
      },
      metadata: { actor: 'bench', correlationId: `preload-${from}`, causationId: null },
    };
    const result = await events.append(stream, revision, [event]);
    revision = result.revisions.get(stream) ?? revision + 1;
  }
  const appendSeconds = (performance.now() - started) / 1000;
  await runner.waitFor(await events.headPosition(), 3_600_000);
  return {
    seconds: round((performance.now() - started) / 1000, 1),
    appendSeconds: round(appendSeconds, 1),
  };
}

async function main(): Promise<void> {
  const seconds = Number(argument('seconds', '10'));
  const total = Number(argument('points', '10000000'));
  const out = path.resolve(root, argument('out', 'bench/results/metrics-ingest.json'));
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'ledgerflow-bench-metrics-'));
  const server = await startEmbeddedServer({
    ...loadConfig({}),
    port: 0,
    grpcPort: 0,
    dataDir: workDir,
    logLevel: 'error',
  });
  try {
    const url = server.url;
    // 1. 20 concurrent clients, 1000 metrics a request over 10 keys, each client its own run
    const runs = await Promise.all(Array.from({ length: 20 }, () => createRun(url)));
    const shape10: BatchShape = {
      metricsPerRequest: 1000,
      keys: Array.from({ length: 10 }, (_, i) => `m${i}`),
    };
    console.error('concurrent log-batch ...');
    const concurrent = await measureLogBatch(url, runs, shape10, seconds);
    console.error(`  ${concurrent.pointsPerSecond} points/s`);

    // 2. one series: empty run vs a run already holding `total` points of that series
    const empty = await createRun(url);
    const big = await createRun(url);
    console.error(`pre-loading ${total} points ...`);
    const preload = await preloadSeries(server, big, 'loss', total);
    console.error(`  ${preload.seconds} s (append ${preload.appendSeconds} s)`);
    // the run's aggregate state is loaded (folding its stream) once, outside the timed part
    await postJson(url, 'runs/set-tag', { run_id: big, key: 'warm', value: 'up' });
    await postJson(url, 'runs/set-tag', { run_id: empty, key: 'warm', value: 'up' });
    const shape1: BatchShape = { metricsPerRequest: 1000, keys: ['loss'] };
    console.error('log-batch into the empty run ...');
    const intoEmpty = await measureLogBatch(url, [empty], shape1, seconds);
    console.error(`  ${intoEmpty.pointsPerSecond} points/s`);
    console.error('log-batch into the pre-loaded run ...');
    const intoBig = await measureLogBatch(url, [big], { ...shape1, firstStep: total }, seconds);
    console.error(`  ${intoBig.pointsPerSecond} points/s`);

    // 3. sampled read of the big series
    console.error('get-history-bulk-interval ...');
    const interval = await measureBulkInterval(url, big, 'loss', 320, 200);
    console.error(`  p50 ${interval.latencyMs.p50} ms, p95 ${interval.latencyMs.p95} ms`);

    const result = {
      benchmark: 'metrics-ingest',
      date: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpu: os.cpus()[0]?.model ?? 'unknown',
        node: process.version,
      },
      seconds,
      concurrentLogBatch: { ...concurrent, keysPerRun: 10 },
      historyCost: {
        preloadedPoints: total,
        preload,
        intoEmptyRun: intoEmpty,
        intoPreloadedRun: intoBig,
        ratio: round(intoBig.pointsPerSecond / intoEmpty.pointsPerSecond, 3),
      },
      bulkInterval320: { seriesPoints: total + intoBig.points, ...interval },
    };
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await server.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

if (
  process.argv[1] !== undefined &&
  path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)
) {
  await main();
}
