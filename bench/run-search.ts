// runs/search at scale: 100k runs (20 params, 20 metrics, 10 tags each) in one experiment, then
// `metrics.m1 > 0.5 and params.p1 = 'x'` ordered by `metrics.m2 DESC`, top 100, over HTTP on the
// embedded server. Issue 3 asks p50 <= 20 ms. The runs are appended straight into the event log in
// large batches, then the server starts and its projections catch up (that time is reported too).
//   npm run build && node dist/bench/run-search.js [--runs 100000] [--queries 300] [--out file]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig, type LedgerflowConfig } from '@ledgerflow/config';
import { SqliteEventStore, type StreamWrite } from '@ledgerflow/event-store';
import type { RunningServer } from '@ledgerflow/runtime';
import { startEmbeddedServer } from '@ledgerflow/service-embedded';
import { expectedTop, runEvents, runId } from './data/synthetic-runs.js';

function argument(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const RUNS = Number(argument('runs', '100000'));
const QUERIES = Number(argument('queries', '300'));
const BATCH_RUNS = 1000;
const OUT = path.resolve(argument('out', 'bench/results/run-search.json'));
const FILTER = "metrics.m1 > 0.5 and params.p1 = 'x'";
const ORDER_BY = ['metrics.m2 DESC'];

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function post(url: string, route: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}/api/2.0/mlflow/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${route}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function main(): Promise<void> {
  const loadAtStart = os.loadavg()[0] ?? NaN;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ledgerflow-run-search-'));
  const config: LedgerflowConfig = {
    ...loadConfig({}),
    port: 0,
    grpcPort: 0,
    dataDir,
    logLevel: 'error',
    sqliteSynchronous: 'normal',
  };
  try {
    let server: RunningServer = await startEmbeddedServer(config);
    const experimentId = (await post(server.url, 'experiments/create', { name: 'search-bench' }))[
      'experiment_id'
    ] as string;
    await server.close();

    const t0 = performance.now();
    const log = new SqliteEventStore({
      path: path.join(dataDir, 'events.db'),
      synchronous: 'normal',
    });
    for (let from = 0; from < RUNS; from += BATCH_RUNS) {
      const writes: StreamWrite[] = [];
      for (let i = from; i < Math.min(RUNS, from + BATCH_RUNS); i++) {
        writes.push({
          stream: `run-${runId(i)}`,
          expectedRevision: 'no_stream',
          events: runEvents(i, experimentId),
        });
      }
      await log.appendMulti(writes);
    }
    await log.close();
    const appendMs = performance.now() - t0;

    const t1 = performance.now();
    server = await startEmbeddedServer(config); // projections catch up before it serves
    const catchUpMs = performance.now() - t1;
    const heapAfterLoadMiB = process.memoryUsage().heapUsed / 2 ** 20;

    const query = {
      experiment_ids: [experimentId],
      filter: FILTER,
      order_by: ORDER_BY,
      max_results: 100,
    };
    const expected = expectedTop(RUNS, 0.5, 2, 100);
    const loadBeforeQueries = os.loadavg()[0] ?? NaN;
    const times: number[] = [];
    let first: string[] = [];
    let hasNextPage = false;
    for (let q = -5; q < QUERIES; q++) {
      const t = performance.now();
      const r = await post(server.url, 'runs/search', query);
      const ms = performance.now() - t;
      if (q >= 0) times.push(ms);
      first = ((r['runs'] as { info: { run_id: string } }[] | undefined) ?? []).map(
        (x) => x.info.run_id,
      );
      hasNextPage = typeof r['next_page_token'] === 'string';
    }
    const correct = JSON.stringify(first) === JSON.stringify(expected);
    await server.close();
    times.sort((a, b) => a - b);
    const result = {
      benchmark: 'run-search',
      date: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        totalMemoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
        node: process.version,
        loadAverage1mAtStart: Number(loadAtStart.toFixed(2)),
        loadAverage1mBeforeQueries: Number(loadBeforeQueries.toFixed(2)),
      },
      workload: {
        runs: RUNS,
        perRun: { params: 20, metrics: 20, tags: 10 },
        experiments: 1,
        filter: FILTER,
        orderBy: ORDER_BY,
        maxResults: 100,
        matchingRuns: expectedTop(RUNS, 0.5, 2, RUNS).length,
        transport: 'HTTP to the embedded server in the same process (client time included)',
        readModel:
          'runs collection cached in memory (CollectionSpec.cached), SQLite read-model store',
      },
      load: {
        appendMs: Math.round(appendMs),
        appendRunsPerSec: Math.round(RUNS / (appendMs / 1000)),
        projectionCatchUpMs: Math.round(catchUpMs),
        heapAfterLoadMiB: Math.round(heapAfterLoadMiB),
      },
      search: {
        queries: times.length,
        warmupQueries: 5,
        p50Ms: Number(percentile(times, 50).toFixed(2)),
        p95Ms: Number(percentile(times, 95).toFixed(2)),
        maxMs: Number((times[times.length - 1] ?? NaN).toFixed(2)),
        firstPageCorrect: correct,
        hasNextPage,
        targetP50Ms: 20,
      },
    };
    mkdirSync(path.dirname(OUT), { recursive: true });
    writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
    console.error(JSON.stringify(result.search), JSON.stringify(result.load));
    if (!correct) throw new Error('the first page differs from the expected runs');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
