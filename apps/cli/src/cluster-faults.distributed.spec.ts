import { KafkaEventBus, eventsTopic, BusProjectionRunner } from '@ledgerflow/kafka';
import { MongoEventStore } from '@ledgerflow/platform-mongo';
import {
  InMemoryReadModelStore,
  ProjectionRunner,
  SqliteReadModelStore,
} from '@ledgerflow/projections';
import { SERVICES } from '@ledgerflow/service-embedded';
import { MongoClient } from 'mongodb';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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

  /**
   * A projection consumer killed between its read-model write and its checkpoint. The MongoDB
   * read-model store commits a batch without transactions, in steps: (1) one insert of a commit
   * record holding every changed document's final state (the commit point), (2) the documents,
   * one bulk write per collection, then their index buckets, (3) the checkpoint, (4) the record
   * shrinks to a claim. The dangerous point is inside (2): the read model already shows part of
   * the batch (here the 'metrics' segments) while the rest (the series documents that say those
   * points exist) and the checkpoint do not. A consumer that trusted the documents and moved its
   * checkpoint on would keep the torn batch for good (points stored but never counted); one that
   * resumed from the checkpoint would re-apply the events over a half-written state, which is safe
   * only as long as every projection is an idempotent state function. The store must redo the
   * commit record (final states) and then move the checkpoint.
   *
   * The kill hits a batch no client will send again: 'metrics' is dropped (as in "rebuild read
   * models", docs/operations.md) while tracking-ingest is down, so on start it replays the log in
   * batches before it listens. (A batch applied for a request in flight would be masked: the
   * client resends the request after the kill, and the resent points repair a torn batch.) The
   * test-only fault LEDGERFLOW_FAULT_KILL_AFTER_READMODEL_WRITE=metrics:1 makes it SIGKILL itself
   * at that point of its first batch, while the write workload keeps retrying through nginx; the
   * test checks the gap is really there, starts the service again and compares every read model
   * with an embedded replay of the log.
   */
  it('survives a projection consumer SIGKILLed between its read-model write and its checkpoint', async () => {
    const w = new Workload(cluster.url);
    w.start('fault-checkpoint');
    try {
      await checkpointFault(w);
    } finally {
      w.stopped = true; // a failure half-way must not leave it writing into the next test
    }
  }, 600_000);

  async function checkpointFault(w: Workload): Promise<void> {
    await sleep(6000);
    process.kill(
      Number(readFileSync(path.join(cluster.runDir, 'pids', 'tracking-ingest.pid'), 'utf8')),
      'SIGKILL',
    );
    while (cluster.serviceAlive('tracking-ingest')) await sleep(100);
    const client = new MongoClient(cluster.mongoUri);
    try {
      const db = client.db('ledgerflow_tracking_ingest');
      for (const { name } of await db.listCollections({}, { nameOnly: true }).toArray()) {
        if (name.startsWith('rm_metrics__')) await db.dropCollection(name);
      }
      await db.collection<{ _id: string }>('rm_checkpoints').deleteOne({ _id: 'metrics' });

      // starts, replays the log into 'metrics', dies in its first batch (so never gets ready)
      await expect(
        cluster.restartService('tracking-ingest', false, {
          LEDGERFLOW_FAULT_KILL_AFTER_READMODEL_WRITE: 'metrics:1',
        }),
      ).rejects.toThrow(/tracking-ingest exited/);
      const log = readFileSync(path.join(cluster.runDir, 'logs', 'tracking-ingest.log'), 'utf8');
      const fired =
        /test-only fault: SIGKILL after writing read model 'metrics' commit (\d+) /.exec(log);
      expect(fired).not.toBeNull();

      // The gap as the kill left it: the batch's first collection is written; the rest is not,
      // and the checkpoint is still the one that starts the rebuilt read model.
      const checkpoint = await db
        .collection<{ _id: string; position: number; seq: number }>('rm_checkpoints')
        .findOne({ _id: 'metrics' });
      expect(checkpoint).toMatchObject({ position: 0, seq: 0 });
      const record = await db
        .collection<{
          _id: string;
          applied?: boolean;
          changes: { c: string; id: string; json: string | null }[];
        }>('rm_commits')
        .findOne({ _id: `metrics#${fired![1]}` });
      expect(record).not.toBeNull();
      expect(record!.applied).toBeUndefined();
      const collections = [...new Set(record!.changes.map((c) => c.c))];
      expect(collections.length).toBeGreaterThan(1);
      const firstMissing: string[] = [];
      let restUnwritten = 0;
      for (const change of record!.changes) {
        const stored = await db
          .collection<{ _id: string; doc: string }>(change.c)
          .findOne({ _id: change.id });
        const inPlace = (stored?.doc ?? null) === change.json;
        if (change.c === collections[0] && !inPlace) firstMissing.push(change.id);
        if (change.c !== collections[0] && !inPlace) restUnwritten += 1;
      }
      expect(firstMissing).toEqual([]);
      expect(restUnwritten).toBeGreaterThan(0); // torn: the rest of the batch is not there yet
    } finally {
      await client.close();
    }

    await cluster.up(); // tracking-ingest again, without the fault: it finishes the batch first
    await sleep(3000);
    await w.stop();
    expect(w.acked.size).toBeGreaterThan(0);
    await w.check();
    await expectReplayEqual(cluster);
  }

  // Quarantined once (2026-11-29: in one of two CI runs tracking-ingest did not find a restarted
  // FerretDB within 120 s). The cause was a MongoDB driver wedge: a heartbeat written to a socket
  // destroyed by the restart, but not yet reported closed, waited forever for 'drain', so the
  // client's monitor never checked the server again. guardDriverWrites (libs/platform/mongo) fails
  // such a write instead; mongo-connection.int.spec.ts opens that gap on purpose.
  it('survives the MongoDB-wire server restarted mid-workload', async () => {
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
  }, 900_000);
});
