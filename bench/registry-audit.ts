// Audit query latency over a large registry: `as-of` (every model's stages and aliases at an
// instant) and timelines (per model, per version), on the registry-audit read models.
//   npm run bench -- registry-audit [--models 1000] [--versions 100] [--transitions 10] [--out file]
// The log is generated straight into the SQLite event store (no HTTP): per model a
// RegisteredModelCreated, per version a ModelVersionCreated and N stage transitions (moves to
// Production archive the previous holder; every Production move also points @champion at it),
// interleaved across models over a simulated year, so an instant in the middle sees a half-built
// registry. Then the registry-audit projection catches up, and the queries are timed in process.
// Then (unless --rest false) the embedded server starts on the same data dir, every other read
// model catches up, and the same queries are timed over HTTP (GET /api/2.0/ledgerflow/audit/...),
// as the CLI and auditors call them: routing, the timeline's expiry check, JSON encoding.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { NewEvent } from '@ledgerflow/contracts';
import {
  registeredModelStream,
  registryPlacements,
  registryStateFold,
  type ModelVersionStage,
} from '@ledgerflow/domain-registry';
import { SqliteEventStore, type StreamWrite } from '@ledgerflow/event-store';
import { loadConfig } from '@ledgerflow/config';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import { ProjectionRunner, SqliteReadModelStore } from '@ledgerflow/projections';
import { PROJECTION_RUNNER } from '@ledgerflow/runtime';
import { startEmbeddedServer } from '@ledgerflow/service-embedded';
import { auditProjection, AuditQueries } from '@ledgerflow/service-registry';

function argument(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const MODELS = Number(argument('models', '1000'));
const VERSIONS = Number(argument('versions', '100'));
const TRANSITIONS = Number(argument('transitions', '10'));
const AS_OF_SAMPLES = Number(argument('as-of-samples', '200'));
const TIMELINE_SAMPLES = Number(argument('timeline-samples', '500'));
const OUT = path.resolve(argument('out', 'bench/results/registry-audit.json'));
const REST = argument('rest', 'true') !== 'false';
const REST_AS_OF_SAMPLES = Number(argument('rest-as-of-samples', '100'));
const REST_TIMELINE_SAMPLES = Number(argument('rest-timeline-samples', '200'));
const T0 = Date.UTC(2025, 0, 1);
const YEAR = 365 * 24 * 3600 * 1000;

/** Seeded PRNG (mulberry32): the same log and samples on every run. */
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

const TOTAL = MODELS * (1 + VERSIONS + VERSIONS * TRANSITIONS);
let sequence = 0;
function event(type: string, data: object): NewEvent {
  sequence += 1;
  return {
    id: `bench-${sequence}`,
    type,
    schemaVersion: 1,
    occurredAt: T0 + Math.floor((sequence / TOTAL) * YEAR),
    data,
    metadata: {
      actor: `user${sequence % 17}`,
      correlationId: `c-${sequence}`,
      causationId: null,
      reason: sequence % 5 === 0 ? 'scheduled promotion' : null,
    },
  };
}

interface ModelSim {
  readonly modelId: string;
  readonly name: string;
  readonly stages: ModelVersionStage[];
  production: number;
}

/** Interleaved history: models, then versions round-robin, then transitions round-robin. */
function* workload(): Generator<{ stream: string; event: NewEvent }> {
  const next = random(7);
  const models: ModelSim[] = [];
  for (let m = 0; m < MODELS; m++) {
    const sim = {
      modelId: `m${m}`,
      name: `model-${m}`,
      stages: ['None' as ModelVersionStage],
      production: 0,
    };
    models.push(sim);
    yield {
      stream: registeredModelStream(sim.modelId),
      event: event('RegisteredModelCreated', {
        modelId: sim.modelId,
        name: sim.name,
        description: '',
        tags: [],
      }),
    };
  }
  for (let v = 1; v <= VERSIONS; v++)
    for (const sim of models) {
      sim.stages[v] = 'None';
      yield {
        stream: registeredModelStream(sim.modelId),
        event: event('ModelVersionCreated', {
          modelId: sim.modelId,
          name: sim.name,
          version: v,
          source: `models:/m-${sim.modelId}-${v}`,
          storageLocation: `mlflow-artifacts:/0/models/${sim.modelId}-${v}/artifacts`,
          runId: '',
          runLink: '',
          description: '',
          tags: [],
          loggedModelId: '',
        }),
      };
    }
  const cycle: ModelVersionStage[] = ['Staging', 'Production', 'Archived'];
  for (let k = 0; k < TRANSITIONS; k++)
    for (let v = 1; v <= VERSIONS; v++)
      for (const sim of models) {
        const from = sim.stages[v] ?? 'None';
        let to = cycle[k % 3]!;
        if (to === from) to = next() < 0.5 ? 'Staging' : 'Archived';
        const archived: { version: number; fromStage: ModelVersionStage }[] = [];
        if (to === 'Production' && sim.production > 0 && sim.production !== v) {
          archived.push({ version: sim.production, fromStage: 'Production' });
          sim.stages[sim.production] = 'Archived';
        }
        if (sim.production === v && to !== 'Production') sim.production = 0;
        if (to === 'Production') sim.production = v;
        sim.stages[v] = to;
        const stream = registeredModelStream(sim.modelId);
        yield {
          stream,
          event: event('ModelVersionStageTransitioned', {
            modelId: sim.modelId,
            name: sim.name,
            version: v,
            fromStage: from,
            toStage: to,
            archiveExistingVersions: archived.length > 0,
            archived,
          }),
        };
      }
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
  let n = 0;
  for (const item of workload()) {
    chunk.push(item);
    if (chunk.length === 2000) await flush();
    if (++n % 200_000 === 0) console.error(`appended ${n} / ${TOTAL}`);
  }
  if (chunk.length > 0) await flush();
  return performance.now() - started;
}

function percentile(sorted: readonly number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round((sorted[i] ?? 0) * 1000) / 1000;
}

async function timeIt(
  samples: number,
  fn: (i: number) => Promise<unknown>,
): Promise<{ p50: number; p99: number; max: number }> {
  for (let i = 0; i < 5; i++) await fn(i); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    await fn(i);
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), max: percentile(ms, 100) };
}

const loadAtStart = Math.round((os.loadavg()[0] ?? 0) * 100) / 100;
const dir = mkdtempSync(path.join(os.tmpdir(), 'ledgerflow-bench-registry-audit-'));
try {
  const eventStore = new SqliteEventStore({
    path: path.join(dir, 'events.db'),
    synchronous: 'normal',
  });
  const appendMs = await fillLog(eventStore);
  const head = await eventStore.headPosition();
  console.error(`appended ${head} events in ${Math.round(appendMs)} ms`);

  const readModels = new SqliteReadModelStore({ path: path.join(dir, 'read-models.db') });
  const runner = new ProjectionRunner({
    eventStore,
    readModels,
    projections: [auditProjection],
    batchSize: 2000,
  });
  const projectStarted = performance.now();
  await runner.start();
  const projectMs = performance.now() - projectStarted;
  console.error(`registry-audit projection caught up in ${Math.round(projectMs)} ms`);

  const queries = new AuditQueries(readModels.reader);
  const pick = random(99);
  const instants = Array.from({ length: AS_OF_SAMPLES + 5 }, () => T0 + Math.floor(pick() * YEAR));
  const names = Array.from(
    { length: TIMELINE_SAMPLES + 5 },
    () => `model-${Math.floor(pick() * MODELS)}`,
  );
  const versions = Array.from(
    { length: TIMELINE_SAMPLES + 5 },
    () => 1 + Math.floor(pick() * VERSIONS),
  );

  // Correctness first: the index answers what a fold of the log answers, at three instants.
  const checks: { instant: string; equal: boolean; foldMs: number; indexMs: number }[] = [];
  const indexedAt = new Map<number, string>();
  for (const frac of [0.25, 0.6, 1]) {
    const t = T0 + Math.floor(frac * YEAR);
    let f = performance.now();
    const all = [];
    let after = 0;
    for (;;) {
      const page = await eventStore.readAll(after, 5000);
      if (page.length === 0) break;
      for (const e of page) if (e.occurredAt <= t) all.push(e);
      after = page[page.length - 1]!.position;
    }
    const folded = registryPlacements(registryStateFold(all));
    const foldMs = performance.now() - f;
    f = performance.now();
    const indexed = await queries.asOf(t);
    const indexMs = performance.now() - f;
    indexedAt.set(t, JSON.stringify(indexed));
    checks.push({
      instant: new Date(t).toISOString(),
      equal: JSON.stringify(folded) === JSON.stringify(indexed),
      foldMs: Math.round(foldMs),
      indexMs: Math.round(indexMs * 10) / 10,
    });
    console.error(
      `as-of ${new Date(t).toISOString()}: index ${indexMs.toFixed(1)} ms, fold ${Math.round(foldMs)} ms, equal ${checks.at(-1)?.equal}`,
    );
  }

  const asOfAll = await timeIt(AS_OF_SAMPLES, (i) => queries.asOf(instants[i % instants.length]!));
  const asOfOne = await timeIt(TIMELINE_SAMPLES, (i) =>
    queries.asOf(instants[i % instants.length]!, names[i % names.length]),
  );
  let entries = 0;
  const timelineModel = await timeIt(TIMELINE_SAMPLES, async (i) => {
    entries = (await queries.timeline(names[i % names.length]!)).length;
  });
  const timelineVersion = await timeIt(TIMELINE_SAMPLES, (i) =>
    queries.timeline(names[i % names.length]!, versions[i % versions.length]),
  );
  const heapMiB = Math.round(process.memoryUsage().heapUsed / 2 ** 20);
  await runner.stop();
  await readModels.close();
  await eventStore.close();

  let rest: object | undefined;
  if (REST) {
    const bootStarted = performance.now();
    const server = await startEmbeddedServer({
      ...loadConfig({}),
      port: 0,
      grpcPort: 0,
      logLevel: 'error',
      sqliteSynchronous: 'normal',
      dataDir: dir,
    });
    try {
      const events = server.app.get<EventStore>(EVENT_STORE);
      await server.app
        .get<ProjectionRunner>(PROJECTION_RUNNER)
        .waitFor(await events.headPosition(), 4 * 3600 * 1000);
      const catchUpMs = performance.now() - bootStarted;
      console.error(`server up, every read model caught up in ${Math.round(catchUpMs)} ms`);
      let bytes = 0;
      const get = async (route: string, query: Record<string, string>): Promise<string> => {
        const url = `${server.url}/api/2.0/ledgerflow/audit/${route}?${new URLSearchParams(query).toString()}`;
        const res = await fetch(url);
        const body = await res.text();
        if (res.status !== 200) throw new Error(`GET ${url} → ${res.status}: ${body}`);
        bytes = body.length;
        return body;
      };
      // the REST answer is the in-process (fold-checked) answer, at every checked instant
      for (const [t, indexed] of indexedAt) {
        const body = JSON.parse(await get('as-of', { timestamp: String(t) })) as {
          registered_models: unknown;
        };
        if (JSON.stringify(body.registered_models) !== indexed)
          throw new Error(`REST as-of at ${new Date(t).toISOString()} differs from the index`);
      }
      const asOfAllRest = await timeIt(REST_AS_OF_SAMPLES, (i) =>
        get('as-of', { timestamp: new Date(instants[i % instants.length]!).toISOString() }),
      );
      const asOfAllBytes = bytes;
      const asOfOneRest = await timeIt(REST_TIMELINE_SAMPLES, (i) =>
        get('as-of', {
          timestamp: String(instants[i % instants.length]!),
          name: names[i % names.length]!,
        }),
      );
      const timelineModelRest = await timeIt(REST_TIMELINE_SAMPLES, (i) =>
        get('timeline', { name: names[i % names.length]!, max_results: '10000' }),
      );
      const timelineModelBytes = bytes;
      const timelineVersionRest = await timeIt(REST_TIMELINE_SAMPLES, (i) =>
        get('timeline', {
          name: names[i % names.length]!,
          version: String(versions[i % versions.length]!),
        }),
      );
      rest = {
        serverCatchUpMs: Math.round(catchUpMs),
        asOfMatchesIndexAtCheckedInstants: true,
        asOfAllModels: { samples: REST_AS_OF_SAMPLES, responseBytes: asOfAllBytes, ...asOfAllRest },
        asOfOneModel: { samples: REST_TIMELINE_SAMPLES, ...asOfOneRest },
        timelinePerModel: {
          samples: REST_TIMELINE_SAMPLES,
          maxResults: 10000,
          responseBytes: timelineModelBytes,
          ...timelineModelRest,
        },
        timelinePerVersion: { samples: REST_TIMELINE_SAMPLES, ...timelineVersionRest },
      };
    } finally {
      await server.close();
    }
  }

  const result = {
    benchmark: 'registry-audit',
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      node: process.version,
      loadAverage1mAtStart: loadAtStart,
    },
    workload: {
      models: MODELS,
      versionsPerModel: VERSIONS,
      transitionsPerVersion: TRANSITIONS,
      events: head,
      simulatedSpan: '365 days',
      appendMs: Math.round(appendMs),
      projectionCatchUpMs: Math.round(projectMs),
      projectionEventsPerSec: Math.round((head / projectMs) * 1000),
      eventLogSynchronous: 'normal',
    },
    latencyMs: {
      asOfAllModels: { samples: AS_OF_SAMPLES, ...asOfAll },
      asOfOneModel: { samples: TIMELINE_SAMPLES, ...asOfOne },
      timelinePerModel: { samples: TIMELINE_SAMPLES, entriesPerModel: entries, ...timelineModel },
      timelinePerVersion: { samples: TIMELINE_SAMPLES, ...timelineVersion },
    },
    ...(rest === undefined ? {} : { restLatencyMs: rest }),
    correctness: checks,
    heapUsedMiBAfter: heapMiB,
  };
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
