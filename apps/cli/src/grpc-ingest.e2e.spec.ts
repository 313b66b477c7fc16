import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LedgerflowClient } from '@ledgerflow/client';
import { loadConfig } from '@ledgerflow/config';
import { ingestV1 } from '@ledgerflow/contracts';
import {
  decodeChunk,
  metricChunkId,
  metricSegmentId,
  metricSeriesId,
  seriesChunkLoader,
  type MetricChunkDoc,
  type MetricSegmentDoc,
  type MetricSeriesDoc,
  type RunDoc,
} from '@ledgerflow/domain-tracking';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import type { ProjectionRunner, ReadModelReader } from '@ledgerflow/projections';
import { PROJECTION_RUNNER, READ_MODEL_READER, type RunningServer } from '@ledgerflow/runtime';
import {
  IngestGrpcServer,
  METRIC_CHUNKS,
  METRIC_SEGMENTS,
  METRIC_SERIES,
} from '@ledgerflow/service-tracking';
import { metricLoadValue, type MetricLoadPlan, type MetricLoadResult } from '@ledgerflow/testing';
import { startEmbeddedServer } from './commands/server.js';

// Acceptance: 8 concurrent client streams write 10M points across 50 runs, with out-of-order
// and duplicated batches; the read models then hold exactly the expected set. Bad input gets
// INVALID_ARGUMENT naming the field, and nothing of that batch is stored.
const TOTAL_POINTS = Number(process.env['LEDGERFLOW_E2E_INGEST_POINTS'] ?? 10_000_000);
const RUNS = 50;
const KEYS = ['loss', 'accuracy', 'grad_norm', 'throughput'];
const STEPS = Math.ceil(TOTAL_POINTS / (RUNS * KEYS.length));
const CLIENTS = 8;
const BLOCK = 500; // steps per block; blocks are sent in shuffled order

const valueOf = metricLoadValue;
const execFileAsync = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../../..');

describe('gRPC metric ingest (embedded server)', () => {
  let server: RunningServer;
  let dataDir: string;
  let address: string;
  let raw: ingestV1.MetricIngestServiceClient;
  let events: EventStore;
  let reader: ReadModelReader;
  let runner: ProjectionRunner;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-grpc-'));
    const base = loadConfig({});
    server = await startEmbeddedServer({
      ...base,
      port: 0,
      grpcPort: 0,
      dataDir,
      logLevel: 'error',
      sqliteSynchronous: 'normal',
      ingest: { ...base.ingest, maxBatchPoints: 100_000 },
    });
    address = `127.0.0.1:${server.app.get(IngestGrpcServer).port}`;
    raw = new ingestV1.MetricIngestServiceClient(address, grpc.credentials.createInsecure());
    events = server.app.get<EventStore>(EVENT_STORE);
    reader = server.app.get<ReadModelReader>(READ_MODEL_READER);
    runner = server.app.get<ProjectionRunner>(PROJECTION_RUNNER);
  });

  afterAll(async () => {
    raw.close();
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function streamOnce(batch: ingestV1.MetricBatch): Promise<ingestV1.StreamMetricsResponse[]> {
    return new Promise((resolve, reject) => {
      const acks: ingestV1.StreamMetricsResponse[] = [];
      const call = raw.streamMetrics();
      call.on('data', (a: ingestV1.StreamMetricsResponse) => acks.push(a));
      call.on('error', reject);
      call.on('end', () => resolve(acks));
      call.write({ batch });
      call.end();
    });
  }

  async function newRun(client: LedgerflowClient, name: string): Promise<string> {
    return (await client.createRun({ runName: name })).runId;
  }

  describe('bad input', () => {
    let runId: string;
    let client: LedgerflowClient;

    beforeAll(async () => {
      client = new LedgerflowClient({ grpcAddress: address, restUrl: server.url });
      runId = await newRun(client, 'bad-input');
    });
    afterAll(() => client.close());

    const good = (over: Partial<ingestV1.RunPoints> = {}): ingestV1.RunPoints => ({
      runId,
      keys: ['loss'],
      keyIndex: [0, 0],
      steps: [1, 2],
      timestamps: [1000, 1001],
      values: [0.1, 0.2],
      ...over,
    });
    const cases: [string, () => ingestV1.MetricBatch, RegExp][] = [
      [
        'an unknown run',
        () => ({
          clientId: 'bad',
          clientBatchId: 'b1',
          runs: [good({ runId: '0123456789abcdef0123456789abcdef' })],
        }),
        /batch\.runs\[0\]\.run_id: .*does not exist/,
      ],
      [
        'mismatched column lengths',
        () => ({ clientId: 'bad', clientBatchId: 'b2', runs: [good({ steps: [1] })] }),
        /batch\.runs\[0\]\.steps: has 1 entries/,
      ],
      [
        'an over-long key',
        () => ({ clientId: 'bad', clientBatchId: 'b3', runs: [good({ keys: ['k'.repeat(251)] })] }),
        /batch\.runs\[0\]\.keys\[0\]/,
      ],
      [
        'a negative timestamp',
        () => ({ clientId: 'bad', clientBatchId: 'b4', runs: [good({ timestamps: [1000, -5] })] }),
        /batch\.runs\[0\]\.timestamps\[1\]/,
      ],
      [
        'a timestamp beyond 2^53 (not finite as a JS number)',
        () => ({
          clientId: 'bad',
          clientBatchId: 'b5',
          runs: [good({ timestamps: [1000, 2 ** 60] })],
        }),
        /steps or timestamps: .*2\^53/,
      ],
      [
        'a key index out of range',
        () => ({ clientId: 'bad', clientBatchId: 'b6', runs: [good({ keyIndex: [0, 3] })] }),
        /batch\.runs\[0\]\.key_index\[1\]/,
      ],
      [
        'an oversized batch',
        () => ({
          clientId: 'bad',
          clientBatchId: 'b7',
          runs: [
            good({
              keyIndex: Array(100_001).fill(0),
              steps: Array.from({ length: 100_001 }, (_, i) => i),
              timestamps: Array(100_001).fill(1),
              values: Array(100_001).fill(1),
            }),
          ],
        }),
        /more than 100000 points/,
      ],
      [
        'a bad client id',
        () => ({ clientId: 'has space', clientBatchId: 'b8', runs: [good()] }),
        /batch\.client_id/,
      ],
    ];

    it.each(cases)('%s', async (_name, batch, message) => {
      const before = await events.headPosition();
      await expect(streamOnce(batch())).rejects.toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        details: expect.stringMatching(message) as unknown,
      });
      expect(await events.headPosition()).toBe(before);
    });

    it('refuses the whole batch when one of its runs is bad', async () => {
      const before = await events.headPosition();
      await expect(
        streamOnce({
          clientId: 'bad',
          clientBatchId: 'b9',
          runs: [good(), good({ runId: 'ffffffffffffffffffffffffffffffff' })],
        }),
      ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
      expect(await events.headPosition()).toBe(before);
    });
  });

  it(`stores exactly the expected points when 8 streams write ${TOTAL_POINTS.toLocaleString('en')} points across 50 runs, out of order and with duplicates`, async () => {
    const setup = new LedgerflowClient({ grpcAddress: address, restUrl: server.url });
    const runIds: string[] = [];
    for (let r = 0; r < RUNS; r++) runIds.push(await newRun(setup, `ingest-${r}`));
    await setup.close();

    // the 8 client streams run in their own process, so the server keeps this one's thread
    execFileSync(process.execPath, [path.join(repoRoot, 'tools/build.mjs'), '--quiet'], {
      cwd: repoRoot,
    });
    const plan: MetricLoadPlan = {
      grpcAddress: address,
      runIds,
      keys: KEYS,
      steps: STEPS,
      clients: CLIENTS,
      block: BLOCK,
      maxBatchPoints: 20_000,
    };
    // asynchronously: the server lives in this process and must keep serving meanwhile
    const { stdout } = await execFileAsync(
      process.execPath,
      [path.join(repoRoot, 'dist/libs/testing/src/load/metric-load.js'), JSON.stringify(plan)],
      { maxBuffer: 1 << 20 },
    );
    const load = JSON.parse(stdout) as MetricLoadResult;
    expect(load.ackedPoints).toBe(RUNS * KEYS.length * STEPS);
    // duplicated batches: the same points again under new batch ids (exact duplicates are dropped),
    // and a batch resent under its original id (acknowledged again, applied once)
    const dup: ingestV1.MetricBatch = {
      clientId: 'replayer',
      clientBatchId: 'r1',
      runs: [
        {
          runId: runIds[0]!,
          keys: ['loss'],
          keyIndex: [0, 0, 0],
          steps: [0, 1, 2],
          timestamps: [1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_002],
          values: [valueOf(0, 0, 0), valueOf(0, 0, 1), valueOf(0, 0, 2)],
        },
      ],
    };
    const [first] = await streamOnce(dup);
    const [again] = await streamOnce(dup);
    expect(first).toMatchObject({ duplicate: false });
    expect(again).toMatchObject({ duplicate: true, sequence: first!.sequence });
    await streamOnce({ ...dup, clientBatchId: 'r2' });

    await runner.waitFor(await events.headPosition(), 120_000);
    for (let r = 0; r < RUNS; r++) {
      const run = await reader.get<RunDoc>('runs', runIds[r]!);
      expect(run?.metrics?.find((m) => m.key === 'loss')).toMatchObject({
        step: STEPS - 1,
        value: valueOf(r, 0, STEPS - 1),
      });
      for (let k = 0; k < KEYS.length; k++) {
        const seriesId = metricSeriesId(runIds[r]!, KEYS[k]!);
        const series = await reader.get<MetricSeriesDoc>(METRIC_SERIES, seriesId);
        expect(series?.count).toBe(STEPS);
        // per-point checks are counted, then asserted once: expect() per point would dominate the test
        const seen = new Uint8Array(STEPS);
        let doubled = 0;
        let wrong = 0;
        // sealed chunks as stored, the open one assembled from its segments
        const load = seriesChunkLoader(series!, {
          chunk: (seq) => reader.get<MetricChunkDoc>(METRIC_CHUNKS, metricChunkId(seriesId, seq)),
          segment: (seq, from, to) =>
            reader.get<MetricSegmentDoc>(METRIC_SEGMENTS, metricSegmentId(seriesId, seq, from, to)),
        });
        for (let seq = 0; seq < series!.chunks; seq++) {
          const doc = await load(seq);
          const chunk = decodeChunk(doc!);
          for (let i = 0; i < chunk.n; i++) {
            const step = chunk.steps[i]!;
            if (seen[step] === 1) doubled += 1;
            seen[step] = 1;
            if (chunk.values[i] !== valueOf(r, k, step)) wrong += 1;
          }
        }
        expect({ series: seriesId, doubled, wrong }).toEqual({
          series: seriesId,
          doubled: 0,
          wrong: 0,
        });
        expect(seen.every((x) => x === 1)).toBe(true);
      }
    }
  }, 900_000);
});
