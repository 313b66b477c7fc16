import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import type { RecordedEvent } from '@ledgerflow/contracts';
import { ProjectionRunner, readModelTableName } from '@ledgerflow/projections';
import {
  MONGO_CLIENT_OPTIONS,
  MongoEventStore,
  MongoReadModelStore,
} from '@ledgerflow/platform-mongo';
import { openEmbeddedPlatform, type RunningServer } from '@ledgerflow/runtime';
import { ALL_PROJECTIONS } from '@ledgerflow/service-embedded';
import { describeWithLocalMongo, startLocalMongo, type LocalMongo } from '@ledgerflow/testing';
import { startEmbeddedServer } from './commands/server.js';
import { testServerConfig } from './testing/test-config.js';

/**
 * The log of a real workload (written by the embedded server over MLflow REST), copied into MongoDB:
 * every read model projected into MongoDB matches the embedded SQLite one by content hash, and a
 * read model whose collections are dropped in MongoDB is rebuilt from the log to the same hash.
 */
describeWithLocalMongo('read models on MongoDB, rebuilt from the log', () => {
  let dataDir: string;
  let mongo: LocalMongo;
  let admin: MongoClient;
  let events: MongoEventStore;
  let readModels: MongoReadModelStore;
  let runner: ProjectionRunner;
  const database = `lf_rebuild_${process.pid}`;
  const embeddedHashes = new Map<string, string>();
  let sqliteHead: { headPosition: number; headHash: string };

  async function workload(server: RunningServer): Promise<void> {
    const call = async (route: string, body: unknown): Promise<Record<string, unknown>> => {
      const res = await fetch(`${server.url}/api/2.0/mlflow/${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${route}: ${res.status} ${text}`);
      return JSON.parse(text) as Record<string, unknown>;
    };
    for (let e = 0; e < 3; e++) {
      const { experiment_id } = await call('experiments/create', { name: `rebuild-exp-${e}` });
      await call('experiments/set-experiment-tag', { experiment_id, key: 'team', value: `t${e}` });
      for (let r = 0; r < 4; r++) {
        const created = await call('runs/create', {
          experiment_id,
          run_name: `run-${e}-${r}`,
          start_time: 1_700_000_000_000 + r,
        });
        const runId = (created['run'] as { info: { run_id: string } }).info.run_id;
        await call('runs/log-batch', {
          run_id: runId,
          params: [{ key: 'lr', value: String(0.1 * (r + 1)) }],
          tags: [{ key: 'stage', value: r % 2 === 0 ? 'train' : 'eval' }],
          metrics: Array.from({ length: 50 }, (_, step) => ({
            key: step % 2 === 0 ? 'loss' : 'accuracy',
            value: 1 / (step + 1 + r),
            timestamp: 1_700_000_000_000 + step,
            step,
          })),
        });
        await call('runs/update', {
          run_id: runId,
          status: 'FINISHED',
          end_time: 1_700_000_100_000,
        });
        if (e === 0 && r === 0) {
          await call('registered-models/create', { name: 'rebuild-model' });
          for (let v = 0; v < 2; v++) {
            await call('model-versions/create', {
              name: 'rebuild-model',
              source: `runs:/${runId}/model`,
              run_id: runId,
            });
          }
          await call('model-versions/transition-stage', {
            name: 'rebuild-model',
            version: '1',
            stage: 'Staging',
            archive_existing_versions: false,
          });
        }
      }
    }
  }

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-mongo-rebuild-'));
    const server = await startEmbeddedServer(testServerConfig(dataDir));
    try {
      await workload(server);
    } finally {
      await server.close();
    }
    // The embedded side: its log head and every read model's content hash.
    // Read models as the embedded server keeps them: most in read-models.db, the metric history
    // in the worker's own file.
    const embedded = openEmbeddedPlatform(testServerConfig(dataDir), ALL_PROJECTIONS);
    const sqliteEvents = embedded.eventStore;
    const sqliteModels = embedded.readModels;
    const log: RecordedEvent[] = [];
    try {
      const verified = await sqliteEvents.verify();
      if (!verified.ok) throw new Error(`embedded log does not verify: ${verified.reason}`);
      sqliteHead = verified;
      for (let page = await sqliteEvents.readAll(0, 500); page.length > 0;) {
        log.push(...page);
        page = await sqliteEvents.readAll(page.at(-1)!.position, 500);
      }
      for (const projection of ALL_PROJECTIONS) {
        embeddedHashes.set(projection.name, await sqliteModels.contentHash(projection));
      }
    } finally {
      await embedded.close();
    }

    mongo = await startLocalMongo();
    admin = new MongoClient(mongo.uri, MONGO_CLIENT_OPTIONS);
    await admin.connect();
    events = await MongoEventStore.open({ uri: mongo.uri, database });
    // Copy the log: runs of consecutive events of one stream go in one append, in log order, so
    // every event keeps its position, revision and hash.
    for (let i = 0; i < log.length;) {
      const first = log[i]!;
      let j = i + 1;
      while (j < log.length && log[j]!.stream === first.stream) j += 1;
      await events.append(
        first.stream,
        first.revision === 0 ? 'no_stream' : first.revision - 1,
        log.slice(i, j).map((e) => ({
          id: e.id,
          type: e.type,
          schemaVersion: e.schemaVersion,
          occurredAt: e.occurredAt,
          data: e.data,
          metadata: e.metadata,
        })),
      );
      i = j;
    }
    readModels = await MongoReadModelStore.open({ uri: mongo.uri, database });
    runner = new ProjectionRunner({ eventStore: events, readModels, projections: ALL_PROJECTIONS });
    await runner.start();
  }, 900_000);

  afterAll(async () => {
    await runner?.stop();
    await readModels?.close();
    await events?.close();
    await admin?.db(database).dropDatabase();
    await admin?.close();
    await mongo?.stop();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  });

  it('copies the log with every position and hash intact', async () => {
    expect(await events.verify()).toMatchObject({ ok: true, ...sqliteHead });
  });

  it.each(ALL_PROJECTIONS.map((p) => p.name))(
    'projects %s into MongoDB with the same content as embedded SQLite',
    async (name) => {
      const projection = ALL_PROJECTIONS.find((p) => p.name === name)!;
      expect(await readModels.contentHash(projection)).toBe(embeddedHashes.get(name));
    },
  );

  it('has a non-trivial workload to compare', async () => {
    expect(sqliteHead.headPosition).toBeGreaterThan(40);
    expect(await readModels.reader.count('runs')).toBe(12);
  });

  it.each(['tracking', 'metrics', 'registry'])(
    'rebuilds %s after its collections are dropped in MongoDB, to the same content hash',
    async (name) => {
      const projection = ALL_PROJECTIONS.find((p) => p.name === name)!;
      const expected = embeddedHashes.get(name)!;
      const db = admin.db(database);
      for (const spec of projection.collections) {
        await db.dropCollection(readModelTableName(name, spec.name)).catch(() => false);
      }
      expect(await readModels.contentHash(projection)).not.toBe(expected);

      const { events: replayed } = await runner.rebuild(name);

      expect(replayed).toBe(sqliteHead.headPosition);
      expect(await readModels.contentHash(projection)).toBe(expected);
      expect(await readModels.checkpoint(name)).toMatchObject({
        position: sqliteHead.headPosition,
        version: projection.version,
      });
    },
  );
});
