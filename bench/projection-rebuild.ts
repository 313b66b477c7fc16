// Rebuild throughput of a document projection: replays a SQLite event log of small, realistic
// tracking events into each ReadModelStore adapter and reports events per second.
//   npm run build && node dist/bench/projection-rebuild.js [--events 200000] [--repeat 5] [--out file]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { NewEvent, RecordedEvent } from '@ledgerflow/contracts';
import { SqliteEventStore, type StreamWrite } from '@ledgerflow/event-store';
import {
  composeProjections,
  documentFold,
  InMemoryReadModelStore,
  ProjectionRunner,
  SqliteReadModelStore,
  type Doc,
  type Projection,
  type ReadModelStore,
} from '@ledgerflow/projections';

function argument(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const EVENTS = Number(argument('events', '200000'));
const REPEAT = Number(argument('repeat', '5'));
const BATCH_SIZE = Number(argument('batch-size', '1000'));
const OUT = path.resolve(argument('out', 'bench/results/projection-rebuild.json'));
const EXPERIMENTS = 200;

/** Seeded PRNG (mulberry32): the same log on every run, so runs compare. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Data = Record<string, string | number>;

let sequence = 0;
function event(type: string, data: Data): NewEvent {
  sequence += 1;
  return {
    id: `bench-${sequence}`,
    type,
    schemaVersion: 1,
    occurredAt: 1_700_000_000_000 + sequence * 10,
    data,
    metadata: { actor: 'bench', correlationId: `c-${sequence}`, causationId: null },
  };
}

/**
 * About 1 in 10 events creates a stream (experiments, runs); the rest update runs that are open:
 * metrics, params, tags, and a finish. Runs interleave, as they do from many training jobs.
 */
function* workload(total: number): Generator<{ stream: string; event: NewEvent }> {
  const next = random(42);
  let emitted = 0;
  for (let e = 0; e < EXPERIMENTS && emitted < total; e += 1, emitted += 1) {
    yield {
      stream: `experiment:${e}`,
      event: event('ExperimentCreated', { experimentId: `${e}`, name: `exp-${e}` }),
    };
  }
  const open: { runId: string; left: number }[] = [];
  let runs = 0;
  while (emitted < total) {
    if (open.length < 64 && (open.length === 0 || next() < 0.1)) {
      const runId = `r${runs}`;
      runs += 1;
      open.push({ runId, left: 5 + Math.floor(next() * 12) });
      const experimentId = `${Math.floor(next() * EXPERIMENTS)}`;
      yield { stream: `run:${runId}`, event: event('RunCreated', { runId, experimentId }) };
      emitted += 1;
      continue;
    }
    const slot = Math.floor(next() * open.length);
    const run = open[slot];
    if (run === undefined) continue;
    run.left -= 1;
    const roll = next();
    const stream = `run:${run.runId}`;
    if (run.left <= 0) {
      open.splice(slot, 1);
      yield {
        stream,
        event: event('RunFinished', {
          runId: run.runId,
          status: roll < 0.9 ? 'FINISHED' : 'FAILED',
        }),
      };
    } else if (roll < 0.7) {
      yield {
        stream,
        event: event('MetricLogged', {
          runId: run.runId,
          key: `m${Math.floor(roll * 10)}`,
          value: roll,
          step: run.left,
        }),
      };
    } else if (roll < 0.85) {
      yield {
        stream,
        event: event('ParamLogged', { runId: run.runId, key: `p${run.left}`, value: `${roll}` }),
      };
    } else {
      yield {
        stream,
        event: event('TagSet', {
          runId: run.runId,
          key: `t${run.left % 3}`,
          value: `v${run.left}`,
        }),
      };
    }
    emitted += 1;
  }
}

interface RunSummary extends Doc {
  readonly runId: string;
  readonly experimentId: string;
  readonly status: string;
  readonly startTime: number;
  readonly endTime: number | null;
  readonly metrics: Readonly<Record<string, number>>;
  readonly params: number;
  readonly tags: Readonly<Record<string, string>>;
}

interface ExperimentSummary extends Doc {
  readonly experimentId: string;
  readonly name: string;
  readonly runs: number;
  readonly failed: number;
}

const data = (e: RecordedEvent): Data => e.data as Data;
const text = (e: RecordedEvent, key: string): string => String(data(e)[key] ?? '');

/** A tracking-like read model: one run summary per run, one summary per experiment. */
function trackingProjection(): Projection {
  const runs = documentFold<RunSummary>({
    collection: { name: 'bench_run_summaries', indexes: ['experimentId', 'status'] },
    keysOf: (e) => (e.stream.startsWith('run:') ? [text(e, 'runId')] : []),
    evolve: (doc, e) => {
      if (e.type === 'RunCreated') {
        return {
          runId: text(e, 'runId'),
          experimentId: text(e, 'experimentId'),
          status: 'RUNNING',
          startTime: e.occurredAt,
          endTime: null,
          metrics: {},
          params: 0,
          tags: {},
        };
      }
      if (doc === undefined) return undefined;
      switch (e.type) {
        case 'MetricLogged':
          return {
            ...doc,
            metrics: { ...doc.metrics, [text(e, 'key')]: Number(data(e)['value']) },
          };
        case 'ParamLogged':
          return { ...doc, params: doc.params + 1 };
        case 'TagSet':
          return { ...doc, tags: { ...doc.tags, [text(e, 'key')]: text(e, 'value') } };
        case 'RunFinished':
          return { ...doc, status: text(e, 'status'), endTime: e.occurredAt };
        default:
          return doc;
      }
    },
  });
  const experiments = documentFold<ExperimentSummary>({
    collection: { name: 'bench_experiments' },
    keysOf: (e) =>
      e.type === 'ExperimentCreated'
        ? [text(e, 'experimentId')]
        : e.type === 'RunCreated'
          ? [text(e, 'experimentId')]
          : [],
    evolve: (doc, e) =>
      e.type === 'ExperimentCreated'
        ? { experimentId: text(e, 'experimentId'), name: text(e, 'name'), runs: 0, failed: 0 }
        : doc === undefined
          ? undefined
          : { ...doc, runs: doc.runs + 1 },
  });
  return composeProjections('bench-tracking', 1, [runs, experiments]);
}

async function fillLog(store: SqliteEventStore): Promise<number> {
  const started = performance.now();
  let chunk: { stream: string; event: NewEvent }[] = [];
  const flush = async (): Promise<void> => {
    const byStream = new Map<string, NewEvent[]>();
    for (const { stream, event: e } of chunk) {
      const list = byStream.get(stream);
      if (list === undefined) byStream.set(stream, [e]);
      else list.push(e);
    }
    const writes: StreamWrite[] = [...byStream].map(([stream, events]) => ({
      stream,
      expectedRevision: 'any',
      events,
    }));
    await store.appendMulti(writes);
    chunk = [];
  };
  for (const item of workload(EVENTS)) {
    chunk.push(item);
    if (chunk.length === 1000) await flush();
  }
  if (chunk.length > 0) await flush();
  return performance.now() - started;
}

interface Case {
  readonly store: string;
  readonly events: number;
  readonly bestMs: number;
  readonly eventsPerSec: number;
  readonly runsMs: readonly number[];
  readonly documents: number;
  readonly contentHash: string;
}

async function measure(
  name: string,
  eventStore: SqliteEventStore,
  open: () => ReadModelStore,
): Promise<Case> {
  const projection = trackingProjection();
  const readModels = open();
  const runner = new ProjectionRunner({
    eventStore,
    readModels,
    projections: [projection],
    batchSize: BATCH_SIZE,
  });
  const runsMs: number[] = [];
  let events = 0;
  for (let i = 0; i < REPEAT; i += 1) {
    const result = await runner.rebuild(projection.name);
    events = result.events;
    runsMs.push(Math.round(result.ms));
    console.error(
      `${name}: rebuild ${i + 1}/${REPEAT}: ${result.events} events in ${Math.round(result.ms)} ms`,
    );
  }
  const documents =
    (await readModels.reader.count('bench_run_summaries')) +
    (await readModels.reader.count('bench_experiments'));
  const contentHash = await readModels.contentHash(projection);
  await readModels.close();
  const bestMs = Math.min(...runsMs);
  return {
    store: name,
    events,
    bestMs,
    eventsPerSec: Math.round((events / bestMs) * 1000),
    runsMs,
    documents,
    contentHash,
  };
}

const loadAtStart = Math.round((os.loadavg()[0] ?? 0) * 100) / 100;
const dir = mkdtempSync(path.join(os.tmpdir(), 'ledgerflow-bench-rebuild-'));
try {
  const eventStore = new SqliteEventStore({
    path: path.join(dir, 'events.db'),
    synchronous: 'normal',
  });
  const setupMs = await fillLog(eventStore);
  const head = await eventStore.headPosition();
  console.error(`appended ${head} events in ${Math.round(setupMs)} ms`);

  const cases = [
    await measure(
      'SqliteReadModelStore',
      eventStore,
      () => new SqliteReadModelStore({ path: path.join(dir, 'read-models.db') }),
    ),
    await measure('InMemoryReadModelStore', eventStore, () => new InMemoryReadModelStore()),
  ];
  await eventStore.close();

  const result = {
    benchmark: 'projection-rebuild',
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      node: process.version,
      // Other work on the machine skews the figures; recorded so a reader can tell.
      loadAverage1mAtStart: loadAtStart,
    },
    workload: {
      events: head,
      description:
        'tracking-like log: experiments and runs created (~1 in 10 events), metrics/params/tags/finish updating open runs; ' +
        'projection = run summaries (2 indexes) + experiment summaries, composed; one read-model transaction per batch',
      batchSize: BATCH_SIZE,
      repeat: REPEAT,
      eventLogSynchronous: 'normal',
      appendEventsPerSec: Math.round((head / setupMs) * 1000),
    },
    cases: cases.map(({ contentHash: _hash, ...rest }) => rest),
    contentHashesEqual: cases.every((c) => c.contentHash === cases[0]?.contentHash),
  };
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
