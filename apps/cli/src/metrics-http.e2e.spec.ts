import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dataFiles } from '@ledgerflow/config';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import { PROJECTION_RUNNER } from '@ledgerflow/runtime';
import { SqliteReadModelStore, type ProjectionRunner } from '@ledgerflow/projections';
import { metricsProjection } from '@ledgerflow/service-tracking';
import type { RunningServer } from '@ledgerflow/runtime';
import { startEmbeddedServer } from './commands/server.js';
import { testServerConfig } from './testing/test-config.js';

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

interface WirePoint {
  key: string;
  value: number | string;
  timestamp: number;
  step: number;
  run_id?: string;
}

const MAX = 1.7976931348623157e308;

describe('metrics over MLflow REST (embedded server)', () => {
  let server: RunningServer;
  let dataDir: string;
  let events: EventStore;

  async function call(method: string, route: string, body?: unknown): Promise<Reply> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    const res = await fetch(`${server.url}${route}`, init);
    return { status: res.status, body: JSON.parse(await res.text()) as Record<string, unknown> };
  }
  const post = (route: string, body: unknown) => call('POST', `/api/2.0/mlflow/${route}`, body);
  const get = (route: string) => call('GET', `/api/2.0/mlflow/${route}`);
  const metricsOf = (r: Reply): WirePoint[] => (r.body['metrics'] as WirePoint[] | undefined) ?? [];

  async function newRun(): Promise<string> {
    const r = await post('runs/create', { experiment_id: '0', start_time: 1 });
    return (r.body['run'] as { info: { run_id: string } }).info.run_id;
  }
  const history = async (runId: string, key: string, extra = ''): Promise<WirePoint[]> =>
    metricsOf(await get(`metrics/get-history?run_id=${runId}&metric_key=${key}${extra}`));

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-metrics-e2e-'));
    server = await startEmbeddedServer(testServerConfig(dataDir));
    events = server.app.get<EventStore>(EVENT_STORE);
  });

  afterAll(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('logs single metrics and reads them back in (timestamp, step, value) order, NaN and clamped Inf included', async () => {
    const run = await newRun();
    const log = (value: unknown, timestamp: unknown, step?: unknown) =>
      post('runs/log-metric', {
        run_id: run,
        key: 'loss',
        value,
        timestamp,
        ...(step === undefined ? {} : { step }),
      });
    expect((await log(0.5, 30, 2)).body).toEqual({});
    expect((await log('NaN', 10, '1')).status).toBe(200);
    expect((await log('Infinity', '20', 5)).status).toBe(200);
    expect((await log('-Infinity', 20, 4)).status).toBe(200);
    expect((await log(7, 5)).status).toBe(200); // step defaults to 0
    expect(await history(run, 'loss')).toEqual([
      { key: 'loss', value: 7, timestamp: 5, step: 0 },
      { key: 'loss', value: 'NaN', timestamp: 10, step: 1 },
      { key: 'loss', value: -MAX, timestamp: 20, step: 4 },
      { key: 'loss', value: MAX, timestamp: 20, step: 5 },
      { key: 'loss', value: 0.5, timestamp: 30, step: 2 },
    ]);
    // the run shows the latest value per key: max by (step, timestamp, value)
    const got = await get(`runs/get?run_id=${run}`);
    expect((got.body['run'] as { data: { metrics: unknown[] } }).data.metrics).toEqual([
      { key: 'loss', value: MAX, timestamp: 20, step: 5 },
    ]);
  });

  it('pages the history with max_results and page_token', async () => {
    const run = await newRun();
    const metrics = Array.from({ length: 25 }, (_, i) => ({
      key: 'acc',
      value: i / 100,
      timestamp: 1000 + i,
      step: i,
    }));
    expect((await post('runs/log-batch', { run_id: run, metrics })).status).toBe(200);
    const seen: WirePoint[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await get(
        `metrics/get-history?run_id=${run}&metric_key=acc&max_results=10${token ? `&page_token=${encodeURIComponent(token)}` : ''}`,
      );
      seen.push(...metricsOf(r));
      token = r.body['next_page_token'] as string | undefined;
      pages += 1;
    } while (token !== undefined);
    expect(pages).toBe(3);
    expect(seen).toEqual(metrics);
    expect(await history(run, 'no-such-key')).toEqual([]);
    const unknown = await get('metrics/get-history?run_id=deadbeef&metric_key=acc');
    expect(unknown.status).toBe(404);
    expect(unknown.body['error_code']).toBe('RESOURCE_DOES_NOT_EXIST');
  });

  it('drops exact duplicate points silently, also across requests', async () => {
    const run = await newRun();
    const p = { key: 'k', value: 1.5, timestamp: 10, step: 1 };
    await post('runs/log-batch', { run_id: run, metrics: [p, p, { ...p, value: 'NaN' }] });
    await post('runs/log-batch', { run_id: run, metrics: [p, { ...p, value: 'NaN' }] });
    await post('runs/log-metric', { run_id: run, ...p });
    await post('runs/log-metric', { run_id: run, ...p, timestamp: 11 });
    // NaN orders as the 0 MLflow stores for it
    expect(await history(run, 'k')).toEqual([
      { key: 'k', value: 'NaN', timestamp: 10, step: 1 },
      { key: 'k', value: 1.5, timestamp: 10, step: 1 },
      { key: 'k', value: 1.5, timestamp: 11, step: 1 },
    ]);
  });

  it('accepts many concurrent batches to one run (as async logging sends them)', async () => {
    const run = await newRun();
    const replies = await Promise.all(
      Array.from({ length: 24 }, (_, b) =>
        post('runs/log-batch', {
          run_id: run,
          metrics: Array.from({ length: 10 }, (_, i) => ({
            key: 'c',
            value: b,
            timestamp: 1,
            step: b * 10 + i,
          })),
        }),
      ),
    );
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200));
    expect((await history(run, 'c')).map((p) => p.step)).toEqual(
      Array.from({ length: 240 }, (_, i) => i),
    );
  });

  it('writes params, metrics and tags of a batch together', async () => {
    const run = await newRun();
    const r = await post('runs/log-batch', {
      run_id: run,
      metrics: [{ key: 'm', value: 1, timestamp: 1, step: 0 }],
      params: [{ key: 'p', value: 'v' }],
      tags: [{ key: 't', value: 'x' }],
    });
    expect(r).toEqual({ status: 200, body: {} });
    const data = (
      (await get(`runs/get?run_id=${run}`)).body['run'] as {
        data: { metrics: unknown[]; params: unknown[]; tags: { key: string }[] };
      }
    ).data;
    expect(data.metrics).toEqual([{ key: 'm', value: 1, timestamp: 1, step: 0 }]);
    expect(data.params).toEqual([{ key: 'p', value: 'v' }]);
    expect(data.tags.map((t) => t.key)).toContain('t');
  });

  describe('samples get-history-bulk-interval as MLflow does', () => {
    let runA: string;
    let runB: string;
    beforeAll(async () => {
      runA = await newRun();
      runB = await newRun();
      for (let from = 0; from < 1000; from += 500) {
        const metrics = Array.from({ length: 500 }, (_, i) => ({
          key: 'loss',
          value: 1 / (from + i + 1),
          timestamp: 5000 + from + i,
          step: from + i,
        }));
        await post('runs/log-batch', { run_id: runA, metrics });
      }
      await post('runs/log-batch', {
        run_id: runB,
        metrics: [3, 1, 2].map((step) => ({ key: 'loss', value: step, timestamp: 9, step })),
      });
    });

    const interval = (query: string) =>
      get(`metrics/get-history-bulk-interval?metric_key=loss&${query}`);

    it('keeps the first and last step and never more than max_results per run', async () => {
      const r = await interval(`run_ids=${runA}&run_ids=${runB}&max_results=5`);
      expect(r.status).toBe(200);
      const points = metricsOf(r);
      expect(points.filter((p) => p.run_id === runA).map((p) => p.step)).toEqual([
        0, 200, 400, 600, 999,
      ]);
      expect(points.filter((p) => p.run_id === runB).map((p) => p.step)).toEqual([1, 2, 3]);
      expect(points[0]).toEqual({ key: 'loss', value: 1, timestamp: 5000, step: 0, run_id: runA });
    });

    it('restricts to [start_step, end_step] and defaults max_results to 2500', async () => {
      const ranged = metricsOf(
        await interval(`run_ids=${runA}&start_step=10&end_step=19&max_results=3`),
      );
      expect(ranged.map((p) => p.step)).toEqual([10, 14, 19]);
      expect(metricsOf(await interval(`run_ids=${runA}`))).toHaveLength(1000);
      expect(metricsOf(await interval(`run_ids=unknownrun`))).toEqual([]);
    });

    it('serves the UI get-history-bulk under /ajax-api only', async () => {
      const r = await call(
        'GET',
        `/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id=${runB}&run_id=${runA}&metric_key=loss&max_results=1002`,
      );
      const points = metricsOf(r);
      expect(points).toHaveLength(1002);
      // ordered by run id, then timestamp, step, value
      const first = [runA, runB].sort()[0];
      expect(points[0]!.run_id).toBe(first);
      expect((await get(`metrics/get-history-bulk?run_id=${runA}&metric_key=loss`)).status).toBe(
        404,
      );
    });

    it.each([
      ['no run_ids', 'max_results=5', "Missing value for required parameter 'run_ids'"],
      ['start without end', 'run_ids=a&start_step=1', 'both must be specified'],
      ['start after end', 'run_ids=a&start_step=5&end_step=1', 'end_step must be greater'],
      ['max_results 0', 'run_ids=a&max_results=0', 'max_results must be between 1 and 2500'],
      ['max_results 2501', 'run_ids=a&max_results=2501', 'max_results must be between 1 and 2500'],
      ['a non-integer step', 'run_ids=a&start_step=x&end_step=2', "parameter 'start_step'"],
      [
        '101 run ids',
        Array.from({ length: 101 }, (_, i) => `run_ids=r${i}`).join('&'),
        'at most 100 run_ids. Received 101 run_ids.',
      ],
    ])('refuses %s', async (_name, query, message) => {
      const r = await interval(query);
      expect(r.status).toBe(400);
      expect(r.body['error_code']).toBe('INVALID_PARAMETER_VALUE');
      expect(r.body['message']).toContain(message);
    });
  });

  describe('refuses bad input with a 4xx, MLflow error code, and nothing appended', () => {
    let runId: string;
    let deletedRunId: string;
    beforeAll(async () => {
      runId = await newRun();
      await post('runs/log-parameter', { run_id: runId, key: 'lr', value: '0.1' });
      deletedRunId = await newRun();
      await post('runs/delete', { run_id: deletedRunId });
    });
    const m = (over: Record<string, unknown> = {}) => ({
      key: 'x',
      value: 1,
      timestamp: 1,
      step: 0,
      ...over,
    });
    const many = (n: number, f: (i: number) => unknown) =>
      Array.from({ length: n }, (_, i) => f(i));

    const cases: [string, () => Promise<Reply>, number, string, string][] = [
      [
        '1001 metrics',
        () => post('runs/log-batch', { run_id: runId, metrics: many(1001, (i) => m({ step: i })) }),
        400,
        'INVALID_PARAMETER_VALUE',
        'A batch logging request can contain at most 1000 metrics. Got 1001 metrics.',
      ],
      [
        '101 params',
        () =>
          post('runs/log-batch', {
            run_id: runId,
            params: many(101, (i) => ({ key: `p${i}`, value: '1' })),
          }),
        400,
        'INVALID_PARAMETER_VALUE',
        'at most 100 params. Got 101 params.',
      ],
      [
        '101 tags',
        () =>
          post('runs/log-batch', {
            run_id: runId,
            tags: many(101, (i) => ({ key: `t${i}`, value: '1' })),
          }),
        400,
        'INVALID_PARAMETER_VALUE',
        'at most 100 tags. Got 101 tags.',
      ],
      [
        '1001 entities in all',
        () =>
          post('runs/log-batch', {
            run_id: runId,
            metrics: many(901, (i) => m({ step: i })),
            params: many(100, (i) => ({ key: `p${i}`, value: '1' })),
          }),
        400,
        'INVALID_PARAMETER_VALUE',
        'at most 1000 metrics, params, and tags. Got 1001',
      ],
      [
        'a bool metric value',
        () => post('runs/log-batch', { run_id: runId, metrics: [m(), m({ value: true })] }),
        400,
        'INVALID_PARAMETER_VALUE',
        "Invalid value true for parameter 'metrics[1].value' supplied",
      ],
      [
        'a bool value on log-metric',
        () => post('runs/log-metric', { run_id: runId, ...m({ value: false }) }),
        400,
        'INVALID_PARAMETER_VALUE',
        "parameter 'value'",
      ],
      [
        'a text metric value',
        () => post('runs/log-metric', { run_id: runId, ...m({ value: 'high' }) }),
        400,
        'INVALID_PARAMETER_VALUE',
        'valid double',
      ],
      [
        'a text step',
        () => post('runs/log-batch', { run_id: runId, metrics: [m({ step: 'abc' })] }),
        400,
        'INVALID_PARAMETER_VALUE',
        "parameter 'metrics[0].step'",
      ],
      [
        'a fractional step',
        () => post('runs/log-metric', { run_id: runId, ...m({ step: 1.5 }) }),
        400,
        'INVALID_PARAMETER_VALUE',
        'Step must be a valid long',
      ],
      [
        'a negative timestamp',
        () => post('runs/log-batch', { run_id: runId, metrics: [m({ timestamp: -1 })] }),
        400,
        'INVALID_PARAMETER_VALUE',
        'Timestamp must be a nonnegative long',
      ],
      [
        'a text timestamp',
        () => post('runs/log-metric', { run_id: runId, ...m({ timestamp: 'yesterday' }) }),
        400,
        'INVALID_PARAMETER_VALUE',
        "parameter 'timestamp'",
      ],
      [
        'a missing timestamp',
        () => post('runs/log-batch', { run_id: runId, metrics: [m(), { key: 'x', value: 1 }] }),
        400,
        'INVALID_PARAMETER_VALUE',
        "Missing value for required parameter 'metrics[1].timestamp'",
      ],
      [
        'a bad metric key',
        () => post('runs/log-metric', { run_id: runId, ...m({ key: '../x' }) }),
        400,
        'INVALID_PARAMETER_VALUE',
        "parameter 'name'",
      ],
      [
        'metrics that are not a list',
        () => post('runs/log-batch', { run_id: runId, metrics: { key: 'x' } }),
        400,
        'INVALID_PARAMETER_VALUE',
        "parameter 'metrics'",
      ],
      [
        'a param conflict beside valid metrics and tags',
        () =>
          post('runs/log-batch', {
            run_id: runId,
            metrics: [m()],
            params: [{ key: 'lr', value: '0.2' }],
            tags: [{ key: 't', value: '1' }],
          }),
        400,
        'INVALID_PARAMETER_VALUE',
        'Changing param values is not allowed',
      ],
      [
        'duplicate param keys',
        () =>
          post('runs/log-batch', {
            run_id: runId,
            params: [
              { key: 'a', value: '1' },
              { key: 'a', value: '2' },
            ],
          }),
        400,
        'INVALID_PARAMETER_VALUE',
        "Duplicate parameter keys have been submitted: ['a']",
      ],
      [
        'a metric on a deleted run',
        () => post('runs/log-metric', { run_id: deletedRunId, ...m() }),
        400,
        'INVALID_PARAMETER_VALUE',
        "must be in the 'active' state",
      ],
      [
        'a batch on a deleted run',
        () => post('runs/log-batch', { run_id: deletedRunId, metrics: [m()] }),
        400,
        'INVALID_PARAMETER_VALUE',
        "must be in the 'active' state",
      ],
      [
        'a batch on an unknown run',
        () => post('runs/log-batch', { run_id: 'nosuchrun', metrics: [m()] }),
        404,
        'RESOURCE_DOES_NOT_EXIST',
        'not found',
      ],
      [
        'a batch without run_id',
        () => post('runs/log-batch', { metrics: [m()] }),
        400,
        'INVALID_PARAMETER_VALUE',
        "'run_id'",
      ],
    ];

    it.each(cases)('%s', async (_name, send, status, code, message) => {
      const before = await events.headPosition();
      const reply = await send();
      expect(reply.status).toBe(status);
      expect(reply.body['error_code']).toBe(code);
      expect(reply.body['message']).toContain(message);
      expect(await events.headPosition()).toBe(before);
    });

    it('left the run without any metric', async () => {
      expect(await history(runId, 'x')).toEqual([]);
      const run = (await get(`runs/get?run_id=${runId}`)).body['run'] as {
        data: { metrics?: unknown[]; params: unknown[] };
      };
      expect(run.data.metrics).toBeUndefined();
      expect(run.data.params).toEqual([{ key: 'lr', value: '0.1' }]);
    });
  });

  it('rebuilds the metrics read model to the same content hash', async () => {
    // enough points to close chunks, out-of-order steps and NaN included
    const run = await newRun();
    for (let b = 0; b < 4; b++) {
      const metrics = Array.from({ length: 900 }, (_, i) => ({
        key: i % 3 === 0 ? 'a' : 'b',
        value: i % 50 === 0 ? 'NaN' : Math.sin(b * 900 + i),
        timestamp: 100 + b * 900 + i,
        step: b === 2 ? 5000 - i : b * 900 + i,
      }));
      await post('runs/log-batch', { run_id: run, metrics });
    }
    const runner = server.app.get<ProjectionRunner>(PROJECTION_RUNNER);
    await runner.waitFor(await events.headPosition());
    // the metric history has a file of its own (ADR 0008)
    const store = new SqliteReadModelStore({ path: dataFiles(dataDir).workerReadModels });
    try {
      await store.setup(metricsProjection);
      // this run's two series are there (other tests of this file add series of their own)
      expect(await store.reader.get('metric_series', `${run}/a`)).toBeDefined();
      expect(await store.reader.get('metric_series', `${run}/b`)).toBeDefined();
      const live = await store.contentHash(metricsProjection);
      const result = await runner.rebuild('metrics');
      expect(result.events).toBeGreaterThan(0);
      await runner.waitFor(await events.headPosition());
      expect(await store.contentHash(metricsProjection)).toBe(live);
    } finally {
      await store.close();
    }
    expect((await history(run, 'a')).length).toBe(1200);
  });
});
