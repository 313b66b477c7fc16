// Issue 4 benchmark: sustained durable metric ingest over gRPC into the embedded server, side by
// side in one run with MLflow's REST log-batch on Ledgerflow and on the reference `mlflow server`.
//  1. max throughput: the load generator (libs/testing/src/load/metric-load.ts) in its own process
//     streams to a fresh `ledgerflow server` child for --seconds, for each generator shape (clients x
//     points per batch); the best shape is the max. Shapes send steps in order, as a training loop
//     does; a shape suffixed `s` sends shuffled blocks (out-of-order steps, the E2E test's load)
//     and is reported beside the max, not as it;
//  2. REST runs/log-batch (1000 metrics per request, 4 and 20 clients, the best of each) on Ledgerflow
//     and on `mlflow server` (PyPI), and the ratios of the gRPC max to each;
//  3. ack latency at ~50% of the max: the generator pauses between blocks, calibrated to half rate;
//  4. server RSS, sampled every second from /proc/<pid>/status, during a --sustain-seconds run at
//     the max shape, with the points ingested and the data directory's size at the end.
// Every server starts on a fresh data directory with the default durability (event log SQLite
// WAL, synchronous FULL: an ack means the batch is committed to disk).
//   npm run bench -- ingest            (or: node dist/bench/ingest.js)
//   flags: --seconds 20 --sustain-seconds 300 --skip-reference --shapes 2x50000,4x20000,4x20000s
//          --out bench/results/ingest.json --smoke (labels the result as a smoke run)
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { MetricLoadPlan, MetricLoadResult } from '@ledgerflow/testing';
import {
  argument,
  createExperiment,
  createRuns,
  flag,
  logBatchThroughput,
  mlflowVersion,
  pythonVenv,
  root,
  startLedgerflow,
  startMlflow,
  stop,
  type LogBatchResult,
  type Server,
} from './lib/servers.js';

const SECONDS = Number(argument('seconds', '20'));
const SUSTAIN_SECONDS = Number(argument('sustain-seconds', '300'));
const SKIP_REFERENCE = flag('skip-reference');
const SMOKE = flag('smoke');
const OUT = path.resolve(root, argument('out', 'bench/results/ingest.json'));
const TARGET_POINTS_PER_SECOND = 1_000_000;
const TARGET_RATIO_TO_REFERENCE = 100;

/** Runs per measurement (created over REST), metric keys per run, steps per generator block. */
const RUNS = 32;
const KEYS = Array.from({ length: 10 }, (_, k) => `train/metric_${k}`);
const BLOCK = 100;
/** Enough steps that no run ends before its deadline (the generator stops at `seconds`). */
const STEPS = 10_000_000;

interface Shape {
  readonly clients: number;
  readonly maxBatchPoints: number;
  /** Blocks of steps in order (a training loop) rather than shuffled. */
  readonly sequential: boolean;
}

const SHAPES: Shape[] = argument('shapes', '2x50000,4x20000,4x50000,8x10000,4x20000s')
  .split(',')
  .map((spec) => {
    const m = /^(\d+)x(\d+)(s?)$/.exec(spec);
    if (!m) throw new Error(`--shapes: '${spec}' is not <clients>x<points>[s]`);
    return { clients: Number(m[1]), maxBatchPoints: Number(m[2]), sequential: m[3] !== 's' };
  });
if (!SHAPES.some((s) => s.sequential))
  throw new Error('--shapes: give at least one in-order shape');

// ---- child processes: every one is registered so `finally` (or a signal) can end it ----
const children = new Set<ChildProcess>();
/** Scratch space for the servers' data directories, removed at the end. */
const work = mkdtempSync(path.join(os.tmpdir(), 'ledgerflow-ingest-bench-'));
const servers = new Set<Server>();

function track(server: Server): Server {
  servers.add(server);
  return server;
}

async function stopTracked(server: Server): Promise<void> {
  await stop(server);
  servers.delete(server);
}

async function stopAll(): Promise<void> {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await Promise.all([...servers].map((s) => stop(s)));
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void stopAll().finally(() => {
      rmSync(work, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

// ---- /proc sampling ----
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** Resident set size of a process in bytes (VmRSS), or undefined once it is gone. */
function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used, or undefined once it is gone. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the parenthesised command name; utime and stime are fields 14 and 15
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

function directoryBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? directoryBytes(p) : statSync(p).size;
  }
  return total;
}

const mib = (bytes: number): number => Number((bytes / 1048576).toFixed(1));

// ---- the load generator, in its own process ----
interface GeneratorRun {
  readonly shape: Shape;
  readonly plan: Omit<MetricLoadPlan, 'runIds' | 'keys' | 'grpcAddress' | 'sequential'> & {
    readonly order: 'sequential' | 'shuffled';
  };
  readonly result: MetricLoadResult;
  /** Average cores used during the run by the server and by the generator. */
  readonly cores: { readonly server: number; readonly generator: number };
  /** Server RSS sampled every second while the generator ran (bytes). */
  readonly rss: readonly number[];
}

/** Creates fresh runs on the server and streams the plan at them from a generator process. */
async function generate(
  server: Server,
  shape: Shape,
  seconds: number,
  pauseMs = 0,
): Promise<GeneratorRun> {
  const experimentId = await createExperiment(server.url, `ingest-${Date.now()}-${Math.random()}`);
  const runIds = await createRuns(server.url, experimentId, RUNS);
  const plan: MetricLoadPlan = {
    grpcAddress: server.grpcAddress!,
    runIds,
    keys: KEYS,
    steps: STEPS,
    clients: shape.clients,
    block: BLOCK,
    maxBatchPoints: shape.maxBatchPoints,
    seconds,
    pauseMs,
    sequential: shape.sequential,
  };
  const serverPid = server.process.pid!;
  const serverCpu0 = cpuSeconds(serverPid) ?? 0;
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [path.join(root, 'dist/libs/testing/src/load/metric-load.js'), JSON.stringify(plan)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.add(child);
  const rss: number[] = [];
  let generatorCpu = 0;
  const sampler = setInterval(() => {
    const r = rssBytes(serverPid);
    if (r !== undefined) rss.push(r);
    generatorCpu = cpuSeconds(child.pid!) ?? generatorCpu;
  }, 1000);
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  try {
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0) throw new Error(`load generator exited with ${code}`);
  } finally {
    clearInterval(sampler);
    children.delete(child);
  }
  const wall = (performance.now() - t0) / 1000;
  const serverCpu = (cpuSeconds(serverPid) ?? serverCpu0) - serverCpu0;
  const line = stdout.trim().split('\n').pop() ?? '';
  const result = JSON.parse(line) as MetricLoadResult;
  return {
    shape,
    plan: {
      order: shape.sequential ? 'sequential' : 'shuffled',
      steps: STEPS,
      clients: shape.clients,
      block: BLOCK,
      maxBatchPoints: shape.maxBatchPoints,
      seconds,
      pauseMs,
    },
    result,
    cores: {
      server: Number((serverCpu / wall).toFixed(2)),
      generator: Number((generatorCpu / wall).toFixed(2)),
    },
    rss,
  };
}

/** One generator run on a fresh server and data directory. */
async function onFreshServer<T>(
  work: string,
  name: string,
  body: (server: Server, dataDir: string) => Promise<T>,
): Promise<T> {
  const dataDir = path.join(work, name);
  const server = track(await startLedgerflow(dataDir));
  try {
    return await body(server, dataDir);
  } finally {
    await stopTracked(server);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** REST log-batch throughput at each client count, and the best. */
interface LogBatchByClients {
  readonly pointsPerSecond: number;
  readonly byClients: Readonly<Record<string, LogBatchResult>>;
}

function summary(g: GeneratorRun): Record<string, unknown> {
  return {
    ...g.plan,
    pointsPerSecond: g.result.pointsPerSecond,
    ackedPoints: g.result.ackedPoints,
    batches: g.result.batches,
    duplicates: g.result.duplicates,
    seconds: g.result.seconds,
    ackLatencyMs: g.result.ackLatencyMs,
    cores: g.cores,
    serverRssMaxMiB: mib(Math.max(0, ...g.rss)),
  };
}

async function main(): Promise<void> {
  execFileSync(process.execPath, [path.join(root, 'tools/build.mjs'), '--quiet']);
  const result: Record<string, unknown> = {
    benchmark: 'ingest',
    ...(SMOKE ? { smoke: true } : {}),
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
      node: process.version,
      loadAverageAtStart: os.loadavg(),
    },
    settings: {
      mode: 'embedded (`ledgerflow server`, one process), fresh data directory per measurement',
      eventLog: 'SQLite WAL',
      sqliteSynchronous: process.env['LEDGERFLOW_SQLITE_SYNCHRONOUS'] ?? 'full',
      ack: 'after the batch is committed to the event log (one event per batch)',
      generator:
        'libs/testing/src/load/metric-load.ts in its own process, LedgerflowClient bidi streams',
      runs: RUNS,
      keysPerRun: KEYS.length,
      stepsPerBlock: BLOCK,
      blockOrder:
        'sequential (a training loop) unless a run says shuffled: blocks in a random order per client',
      clientWindow:
        'LedgerflowClient default, 32 unacked batches per client: at max load, ack latency is mostly time queued behind that window',
      seconds: SECONDS,
      sustainSeconds: SUSTAIN_SECONDS,
    },
  };
  try {
    // 1. max throughput over gRPC, per generator shape
    const tried: GeneratorRun[] = [];
    for (const shape of SHAPES) {
      const name = `max-${shape.clients}x${shape.maxBatchPoints}${shape.sequential ? '' : 's'}`;
      const g = await onFreshServer(work, name, (s) => generate(s, shape, SECONDS));
      tried.push(g);
      console.error('grpc', JSON.stringify(summary(g)));
    }
    // the max is over in-order shapes; shuffled runs are reported beside it
    const best = tried
      .filter((g) => g.shape.sequential)
      .reduce((a, b) => (b.result.pointsPerSecond > a.result.pointsPerSecond ? b : a));
    const bestShape = best.shape;
    const max = best.result.pointsPerSecond;
    result['grpcMax'] = {
      target: TARGET_POINTS_PER_SECOND,
      pointsPerSecond: max,
      over: 'the in-order shapes; shuffled ones are listed in `tried` only',
      meetsTarget: max >= TARGET_POINTS_PER_SECOND,
      best: summary(best),
      tried: tried.map(summary),
    };

    // 2. REST log-batch: Ledgerflow, then the reference, each at its best of a few client counts
    // (the reference's SQLite pool times out under many clients, so its best is at few)
    const restClients = [4, 20];
    const restRuns = async (s: Server): Promise<LogBatchByClients> => {
      // a few seconds of the same load first, so start-up work is not measured
      await logBatchThroughput(s, { seconds: 3, clients: 4 });
      const byClients: Record<string, LogBatchResult> = {};
      for (const clients of restClients) {
        byClients[String(clients)] = await logBatchThroughput(s, { seconds: SECONDS, clients });
        console.error(`rest ${s.name} clients=${clients}`, JSON.stringify(byClients[clients]));
      }
      const best = Object.values(byClients).reduce((a, b) =>
        b.pointsPerSecond > a.pointsPerSecond ? b : a,
      );
      return { pointsPerSecond: best.pointsPerSecond, byClients };
    };
    const lfRest = await onFreshServer(work, 'rest', restRuns);
    let mlRest: LogBatchByClients | undefined;
    let reference: string | undefined;
    if (!SKIP_REFERENCE) {
      const venv = pythonVenv();
      reference = mlflowVersion(venv);
      const dir = path.join(work, 'mlflow');
      mkdirSync(dir);
      const ml = track(await startMlflow(dir, venv));
      try {
        mlRest = await restRuns(ml);
      } finally {
        await stopTracked(ml);
      }
    }
    const ratio = (a: number, b: number): number => Number((a / b).toFixed(1));
    result['restLogBatch'] = {
      seconds: SECONDS,
      metricsPerRequest: 1000,
      note: 'each client logs to its own run; pointsPerSecond is the best client count',
      ledgerflow: lfRest,
      ...(mlRest ? { mlflow: { version: reference, ...mlRest } } : { mlflow: 'skipped' }),
    };
    result['ratios'] = {
      grpcToLedgerflowRestLogBatch: ratio(max, lfRest.pointsPerSecond),
      ...(mlRest && mlRest.pointsPerSecond > 0
        ? {
            grpcToReferenceLogBatch: ratio(max, mlRest.pointsPerSecond),
            target: TARGET_RATIO_TO_REFERENCE,
            meetsTarget: max / mlRest.pointsPerSecond >= TARGET_RATIO_TO_REFERENCE,
          }
        : {}),
    };

    // 3. ack latency at ~50% of the max: calibrate the pause between blocks, then measure
    result['latencyAtHalfLoad'] = await onFreshServer(work, 'latency', async (s) => {
      const target = max / 2;
      // a block of one client is (RUNS / clients) runs x keys x BLOCK steps; at the max rate a
      // client spends clients * blockPoints / max s on it, so pausing as long again halves the rate
      const blockPoints = (RUNS / bestShape.clients) * KEYS.length * BLOCK;
      let pauseMs = Math.max(1, Math.round(((bestShape.clients * blockPoints) / max) * 1000));
      const calibration: { pauseMs: number; pointsPerSecond: number }[] = [];
      const calibrationSeconds = Math.min(8, Math.max(3, SECONDS / 2));
      for (let i = 0; i < 4; i++) {
        const g = await generate(s, bestShape, calibrationSeconds, pauseMs);
        const rate = g.result.pointsPerSecond;
        calibration.push({ pauseMs, pointsPerSecond: rate });
        console.error('calibrate', JSON.stringify(calibration.at(-1)));
        if (Math.abs(rate - target) / target < 0.1) break;
        // per-block time = work + pause; move the pause by the difference in block time
        const blockSeconds = (bestShape.clients * blockPoints) / rate;
        const wantedSeconds = (bestShape.clients * blockPoints) / target;
        pauseMs = Math.max(0, Math.round(pauseMs + (wantedSeconds - blockSeconds) * 1000));
      }
      const g = await generate(s, bestShape, SECONDS, pauseMs);
      console.error('latency', JSON.stringify(summary(g)));
      return {
        targetPointsPerSecond: Math.round(target),
        achievedPointsPerSecond: g.result.pointsPerSecond,
        fractionOfMax: Number((g.result.pointsPerSecond / max).toFixed(2)),
        pauseMs,
        ackLatencyMs: g.result.ackLatencyMs,
        run: summary(g),
        calibration,
      };
    });

    // 4. server RSS during a sustained run at the max shape
    result['sustained'] = await onFreshServer(work, 'sustained', async (s, dataDir) => {
      const rssStart = rssBytes(s.process.pid!) ?? 0;
      const g = await generate(s, bestShape, SUSTAIN_SECONDS);
      const rssEnd = rssBytes(s.process.pid!) ?? 0;
      const files = Object.fromEntries(
        readdirSync(dataDir).map((f) => {
          const p = path.join(dataDir, f);
          return [f, mib(statSync(p).isDirectory() ? directoryBytes(p) : statSync(p).size)];
        }),
      );
      const out = {
        load: 'max-throughput shape, no pauses',
        ...bestShape,
        seconds: g.result.seconds,
        ackedPoints: g.result.ackedPoints,
        pointsPerSecond: g.result.pointsPerSecond,
        ackLatencyMs: g.result.ackLatencyMs,
        cores: g.cores,
        serverRssMiB: {
          start: mib(rssStart),
          max: mib(Math.max(rssStart, rssEnd, ...g.rss)),
          end: mib(rssEnd),
          every10s: g.rss.filter((_, i) => i % 10 === 9).map(mib),
        },
        dataDirMiB: mib(directoryBytes(dataDir)),
        dataDirFilesMiB: files,
      };
      console.error('sustained', JSON.stringify(out));
      return out;
    });
  } catch (e) {
    // a failed run does not overwrite the last good result; show what was measured
    console.error('partial result:', JSON.stringify(result, null, 2));
    throw e;
  } finally {
    await stopAll();
    rmSync(work, { recursive: true, force: true });
  }
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
}

await main();
