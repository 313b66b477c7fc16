import { jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { MONGO_CLIENT_OPTIONS, MongoEventStore } from '@ledgerflow/platform-mongo';
import { ProjectionRunner, SqliteReadModelStore } from '@ledgerflow/projections';
import { openEmbeddedPlatform } from '@ledgerflow/runtime';
import { ALL_PROJECTIONS, SERVICES } from '@ledgerflow/service-embedded';
import { describeWithLocalMongo, startLocalMongo, type LocalMongo } from '@ledgerflow/testing';
import { migrateToMongo, ownerOfStream } from './commands/migrate.js';
import { startEmbeddedServer } from './commands/server.js';
import { testServerConfig } from './testing/test-config.js';

/**
 * `ledgerflow migrate`: an embedded log (a real workload over MLflow REST: tracking, a logged
 * model, registry versions from a run and from the logged model, a user) split into the services'
 * MongoDB logs. Every read model each service builds from its copied log equals the embedded one.
 */
describeWithLocalMongo('ledgerflow migrate (embedded data dir into distributed MongoDB)', () => {
  let dataDir: string;
  let mongo: LocalMongo;
  let admin: MongoClient;
  const prefix = `lf_migrate_${process.pid}`;
  const lines: string[] = [];
  let embeddedHead = 0;
  const embeddedHashes = new Map<string, string>();
  const embeddedCounts = new Map<string, number>();
  /** Read models that record log positions (audit timeline entries; identity's numeric user ids). */
  const POSITIONAL = new Set(['registry-audit', 'identity']);

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-migrate-'));
    const server = await startEmbeddedServer(testServerConfig(dataDir));
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
    try {
      const { experiment_id } = await call('experiments/create', { name: 'migrate-exp' });
      const run = await call('runs/create', { experiment_id, run_name: 'r' });
      const runId = (run['run'] as { info: { run_id: string } }).info.run_id;
      await call('runs/log-batch', {
        run_id: runId,
        params: [{ key: 'lr', value: '0.1' }],
        metrics: Array.from({ length: 30 }, (_, s) => ({
          key: 'loss',
          value: 1 / (s + 1),
          timestamp: 1_700_000_000_000 + s,
          step: s,
        })),
      });
      const logged = await call('logged-models', {
        experiment_id,
        name: 'clf',
        source_run_id: runId,
      });
      const modelId = (logged['model'] as { info: { model_id: string } }).info.model_id;
      await call('registered-models/create', { name: 'migrate-model' });
      await call('model-versions/create', {
        name: 'migrate-model',
        source: `runs:/${runId}/model`,
        run_id: runId,
      });
      await call('model-versions/create', {
        name: 'migrate-model',
        source: `models:/${modelId}`,
        model_id: modelId,
      });
      await call('model-versions/transition-stage', {
        name: 'migrate-model',
        version: '1',
        stage: 'Production',
        archive_existing_versions: false,
      });
    } finally {
      await server.close();
    }
    // read models as the embedded server keeps them (the metric history in the worker's own file)
    const embedded = openEmbeddedPlatform(testServerConfig(dataDir), ALL_PROJECTIONS);
    const events = embedded.eventStore;
    const models = embedded.readModels;
    try {
      embeddedHead = await events.headPosition();
      for (const spec of Object.values(SERVICES))
        for (const p of spec.projections) {
          embeddedHashes.set(p.name, await models.contentHash(p));
          await models.setup(p);
          for (const c of p.collections)
            embeddedCounts.set(c.name, await models.reader.count(c.name));
        }
    } finally {
      await embedded.close();
    }
    mongo = await startLocalMongo();
    admin = new MongoClient(mongo.uri, MONGO_CLIENT_OPTIONS);
    await admin.connect();
  }, 600_000);

  afterAll(async () => {
    for (const name of Object.keys(SERVICES))
      await admin?.db(`${prefix}_${name.replace(/-/g, '_')}`).dropDatabase();
    await admin?.close();
    await mongo?.stop();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  });

  it('splits the log by owning service, every event once, each copied log verifying', async () => {
    const code = await migrateToMongo({
      dataDir,
      mongoUrl: mongo.uri,
      databasePrefix: prefix,
      out: (l) => lines.push(l),
    });
    expect(code).toBe(0);
    let total = 0;
    for (const spec of Object.values(SERVICES)) {
      const store = await MongoEventStore.open({
        uri: mongo.uri,
        database: `${prefix}_${spec.name.replace(/-/g, '_')}`,
      });
      try {
        const v = await store.verify();
        expect(v.ok).toBe(true);
        const all = await store.readAll(0, 100_000);
        for (const e of all) expect(ownerOfStream(e.stream)).toBe(spec.name);
        total += all.length;
      } finally {
        await store.close();
      }
    }
    expect(total).toBe(embeddedHead);
    expect(lines.some((l) => l.startsWith('registry-governance: '))).toBe(true);
  }, 300_000);

  it('builds every read model from the copied logs to the embedded content hash (positional ones to the same documents)', async () => {
    const actual: string[] = [];
    const expected: string[] = [];
    for (const spec of Object.values(SERVICES)) {
      if (spec.projections.length === 0) continue;
      const events = await MongoEventStore.open({
        uri: mongo.uri,
        database: `${prefix}_${spec.name.replace(/-/g, '_')}`,
      });
      const dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-migrate-rm-'));
      const models = new SqliteReadModelStore({ path: path.join(dir, 'rm.db') });
      try {
        const runner = new ProjectionRunner({
          eventStore: events,
          readModels: models,
          projections: spec.projections,
        });
        await runner.start();
        await runner.stop();
        for (const p of spec.projections) {
          if (POSITIONAL.has(p.name)) {
            // documents name log positions, which are the new log's: same documents, same count
            for (const c of p.collections) {
              actual.push(`${c.name}: ${await models.reader.count(c.name)} documents`);
              expected.push(`${c.name}: ${embeddedCounts.get(c.name)} documents`);
            }
          } else {
            actual.push(`${p.name}: ${await models.contentHash(p)}`);
            expected.push(`${p.name}: ${embeddedHashes.get(p.name)}`);
          }
        }
      } finally {
        await models.close();
        await events.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }
    expect(actual).toEqual(expected);
    expect(actual.length).toBeGreaterThanOrEqual(7);
  }, 300_000);

  it('refuses to migrate into databases that already hold events', async () => {
    const errors: string[] = [];
    const spy = jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
      errors.push(args.map(String).join(' '));
    });
    try {
      const code = await migrateToMongo({
        dataDir,
        mongoUrl: mongo.uri,
        databasePrefix: prefix,
        out: () => undefined,
      });
      expect(code).toBe(1);
      expect(errors.join('\n')).toMatch(/already holds \d+ events/);
    } finally {
      spy.mockRestore();
    }
  }, 120_000);
});
