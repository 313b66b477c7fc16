import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  EVENT_STORE,
  type EventStore,
  type SubscribeOptions,
  type SubscriptionHandler,
} from '@ledgerflow/event-store';
import type { RunningServer } from '@ledgerflow/runtime';
import { SlowEventStore } from '@ledgerflow/testing';
import { startEmbeddedServer } from './commands/server.js';
import { testServerConfig } from './testing/test-config.js';

/**
 * The real event log, with a gate in front of its subscriptions: while held, the projection
 * runner receives no events, so read models stay behind every append (a read-model store that is
 * slow or unreachable), and a write's wait for them times out.
 */
class HeldEventStore extends SlowEventStore {
  private gate: Promise<void> | undefined;
  private open: () => void = () => undefined;

  constructor(inner: EventStore) {
    super(inner, 0);
  }

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.gate = undefined;
    this.open();
  }

  override subscribe(
    afterPosition: number,
    handler: SubscriptionHandler,
    options?: SubscribeOptions,
  ): ReturnType<EventStore['subscribe']> {
    return super.subscribe(
      afterPosition,
      async (events) => {
        while (this.gate !== undefined) await this.gate;
        await handler(events);
      },
      options,
    );
  }
}

/**
 * A write whose events are committed answers 2xx even when its read models do not show it within
 * the wait (MLflow's client resends every 5xx, which would repeat a write that happened): the
 * answer and the reads right after it come from the write's own streams in the log, and each write
 * is stored exactly once.
 */
describe('writes while the read models lag', () => {
  let server: RunningServer;
  let store: HeldEventStore;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-lag-'));
    server = await startEmbeddedServer(testServerConfig(dataDir), {
      wrapEventStore: (inner) => (store = new HeldEventStore(inner)),
    });
  }, 60_000);

  afterAll(async () => {
    store?.release();
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const call = async (
    method: 'GET' | 'POST',
    route: string,
    body: Record<string, unknown>,
  ): Promise<{ status: number; json: Record<string, unknown> }> => {
    const url = new URL(`${server.url}/api/2.0/mlflow/${route}`);
    if (method === 'GET')
      for (const [k, v] of Object.entries(body)) url.searchParams.set(k, String(v));
    const res = await fetch(url, {
      method,
      ...(method === 'POST'
        ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
        : {}),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  it('answers committed writes 2xx from the log, stores each once, and catches up', async () => {
    const { json: exp } = await call('POST', 'experiments/create', { name: 'lagging' });
    const experimentId = exp['experiment_id'] as string;
    expect((await call('POST', 'registered-models/create', { name: 'lag-model' })).status).toBe(
      200,
    );

    store.hold();
    const created = await call('POST', 'runs/create', {
      experiment_id: experimentId,
      run_name: 'while-lagging',
      start_time: 1_700_000_000_000,
    });
    expect(created.status).toBe(200);
    const run = (created.json['run'] as { info: Record<string, unknown> }).info;
    expect(run).toMatchObject({
      experiment_id: experimentId,
      run_name: 'while-lagging',
      status: 'RUNNING',
      lifecycle_stage: 'active',
    });
    const runId = run['run_id'] as string;

    // a read right after the write sees it (from the run's stream), as does the registry's lookup
    const got = await call('GET', 'runs/get', { run_id: runId });
    expect(got.status).toBe(200);
    expect((got.json['run'] as { info: Record<string, unknown> }).info['run_id']).toBe(runId);

    const logged = await call('POST', 'runs/log-batch', {
      run_id: runId,
      params: [{ key: 'lr', value: '0.1' }],
    });
    expect(logged).toEqual({ status: 200, json: {} });

    const model = await call('POST', 'logged-models', {
      experiment_id: experimentId,
      name: 'lagging-model',
      source_run_id: runId,
    });
    expect(model.status).toBe(200);
    expect((model.json['model'] as { info: Record<string, unknown> }).info).toMatchObject({
      experiment_id: experimentId,
      name: 'lagging-model',
      source_run_id: runId,
    });

    const version = await call('POST', 'model-versions/create', {
      name: 'lag-model',
      source: `runs:/${runId}/model`,
      run_id: runId,
    });
    expect(version.status).toBe(200);
    expect(version.json['model_version']).toMatchObject({
      name: 'lag-model',
      version: '1',
      run_id: runId,
      current_stage: 'None',
    });

    const moved = await call('POST', 'model-versions/transition-stage', {
      name: 'lag-model',
      version: '1',
      stage: 'Production',
      archive_existing_versions: false,
    });
    expect(moved.status).toBe(200);
    expect(moved.json['model_version']).toMatchObject({
      version: '1',
      current_stage: 'Production',
    });

    // the read models are still behind every one of these writes
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const timeouts = Number(
      /^ledgerflow_read_your_writes_timeouts_total (\d+)$/m.exec(metrics)?.[1],
    );
    expect(timeouts).toBeGreaterThanOrEqual(5);

    store.release();
    const head = await server.app.get<EventStore>(EVENT_STORE, { strict: false }).headPosition();
    for (let i = 0; i < 200; i++) {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const positions = [
        ...text.matchAll(/^ledgerflow_projection_checkpoint_position\{[^}]*\} (\d+)$/gm),
      ].map((m) => Number(m[1]));
      if (positions.length > 0 && positions.every((p) => p >= head)) break;
      await new Promise((r) => setTimeout(r, 100));
    }

    // each write is in the log once
    const events: RecordedEvent[] = await server.app
      .get<EventStore>(EVENT_STORE, { strict: false })
      .readAll(0, 100_000);
    const count = (type: string) => events.filter((e) => e.type === type).length;
    expect(count('RunCreated')).toBe(1);
    expect(count('LoggedModelCreated')).toBe(1);
    expect(count('ModelVersionCreated')).toBe(1);
    expect(count('ModelVersionStageTransitioned')).toBe(1);
    const runEvents = events.filter((e) => e.stream === `run-${runId}`).map((e) => e.type);
    expect(runEvents[0]).toBe('RunCreated');
    expect(runEvents.length).toBeGreaterThanOrEqual(2);
    expect(new Set(runEvents).size).toBe(runEvents.length);

    // and the caught-up read models agree with the answers given ahead of them
    const after = await call('GET', 'runs/get', { run_id: runId });
    const data = (after.json['run'] as { data: { params?: unknown[] } }).data;
    expect((after.json['run'] as { info: unknown }).info).toEqual(run);
    expect(data.params).toEqual([{ key: 'lr', value: '0.1' }]);
    const v = await call('GET', 'model-versions/get', { name: 'lag-model', version: '1' });
    expect(v.json['model_version']).toMatchObject({ current_stage: 'Production', run_id: runId });
  }, 180_000);
});
