// Append throughput of the event log: events per second into SqliteEventStore (synchronous=FULL
// and NORMAL) and InMemoryEventStore, for batches of 1, 100 and 1000 events. Batch size 1 runs
// with 1 and with 64 concurrent appenders, which is where group commit shows.
//   npm run build && node dist/bench/event-store-append.js [--seconds 3] [--out file]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { NewEvent } from '@ledgerflow/contracts';
import { InMemoryEventStore, SqliteEventStore, type EventStore } from '@ledgerflow/event-store';

function argument(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const SECONDS = Number(argument('seconds', '3'));
const OUT = path.resolve(argument('out', 'bench/results/event-store-append.json'));
/** Stops a case early so the in-memory store (and the temp file) stay a bounded size. */
const MAX_EVENTS_PER_CASE = 1_500_000;

type Adapter = 'sqlite-full' | 'sqlite-normal' | 'in-memory';

interface Case {
  readonly adapter: Adapter;
  readonly batchSize: number;
  readonly concurrency: number;
}

interface CaseResult extends Case {
  readonly events: number;
  readonly appends: number;
  readonly seconds: number;
  readonly eventsPerSecond: number;
  readonly appendsPerSecond: number;
  readonly appendLatencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

const ADAPTERS: readonly Adapter[] = ['sqlite-full', 'sqlite-normal', 'in-memory'];
const SHAPES = [
  { batchSize: 1, concurrency: 1 },
  { batchSize: 1, concurrency: 64 },
  { batchSize: 100, concurrency: 1 },
  { batchSize: 1000, concurrency: 1 },
] as const;

let sequence = 0;
/** A metric-batch-sized event, like the ones tracking ingest appends. */
function event(): NewEvent {
  sequence += 1;
  return {
    id: `bench-${sequence}`,
    type: 'MetricsLogged',
    schemaVersion: 1,
    occurredAt: 1_700_000_000_000 + sequence,
    data: {
      runId: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
      key: 'loss',
      value: 1 / sequence,
      step: sequence,
    },
    metadata: { actor: 'bench', correlationId: `c-${sequence}`, causationId: null },
  };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function round(n: number, digits = 2): number {
  return Number(n.toFixed(digits));
}

async function runCase(c: Case, workDir: string): Promise<CaseResult> {
  const dir = mkdtempSync(path.join(workDir, `${c.adapter}-`));
  const store: EventStore =
    c.adapter === 'in-memory'
      ? new InMemoryEventStore()
      : new SqliteEventStore({
          path: path.join(dir, 'events.db'),
          synchronous: c.adapter === 'sqlite-full' ? 'full' : 'normal',
        });
  let events = 0;
  let appends = 0;
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  // Each appender owns a stream and appends with its exact expected revision, as a decider would.
  const appender = async (index: number): Promise<void> => {
    const stream = `bench-stream-${index}`;
    let revision = -1;
    while (performance.now() < deadline && events < MAX_EVENTS_PER_CASE) {
      const batch = Array.from({ length: c.batchSize }, event);
      const t0 = performance.now();
      const result = await store.append(stream, revision === -1 ? 'no_stream' : revision, batch);
      latencies.push(performance.now() - t0);
      revision = result.revisions.get(stream) ?? revision;
      events += c.batchSize;
      appends += 1;
    }
  };
  await Promise.all(Array.from({ length: c.concurrency }, (_, i) => appender(i)));
  const seconds = (performance.now() - started) / 1000;
  const verification = await store.verify();
  if (!verification.ok || verification.count !== events) {
    throw new Error(
      `${c.adapter}: log does not verify after the run: ${JSON.stringify(verification)}`,
    );
  }
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return {
    ...c,
    events,
    appends,
    seconds: round(seconds, 3),
    eventsPerSecond: Math.round(events / seconds),
    appendsPerSecond: Math.round(appends / seconds),
    appendLatencyMs: {
      p50: round(percentile(latencies, 50), 3),
      p99: round(percentile(latencies, 99), 3),
      max: round(latencies.at(-1) ?? 0, 3),
    },
  };
}

// SQLite files go next to the repository, not in a tmpfs /tmp where fsync would cost nothing.
const workRoot = path.resolve('bench/.work');
mkdirSync(workRoot, { recursive: true });
const workDir = mkdtempSync(path.join(workRoot, 'event-store-append-'));
const results: CaseResult[] = [];
try {
  for (const adapter of ADAPTERS) {
    for (const shape of SHAPES) {
      const result = await runCase({ adapter, ...shape }, workDir);
      results.push(result);
      console.error(
        `${adapter.padEnd(13)} batch ${String(shape.batchSize).padStart(4)} x ${String(shape.concurrency).padStart(2)} appenders: ` +
          `${result.eventsPerSecond.toLocaleString('en-US').padStart(10)} events/s, ` +
          `${result.appendsPerSecond.toLocaleString('en-US').padStart(8)} appends/s, ` +
          `p50 ${result.appendLatencyMs.p50} ms, p99 ${result.appendLatencyMs.p99} ms`,
      );
    }
  }
} finally {
  rmSync(workDir, { recursive: true, force: true });
}

const report = {
  benchmark: 'event-store-append',
  date: new Date().toISOString(),
  node: process.version,
  platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  loadAverage: os.loadavg().map((n) => round(n)),
  secondsPerCase: SECONDS,
  maxEventsPerCase: MAX_EVENTS_PER_CASE,
  notes:
    'Each appender owns one stream and appends with its exact expected revision. Latency is per append() call. ' +
    'SQLite files live under bench/.work on the repository file system; synchronous=full fsyncs every commit.',
  cases: results,
};
mkdirSync(path.dirname(OUT), { recursive: true });
writeFileSync(OUT, `${JSON.stringify(report, null, 2)}\n`);
console.error(`wrote ${OUT}`);
