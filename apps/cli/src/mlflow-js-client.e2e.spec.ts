import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mlflowPackage from 'mlflow';
import { RunStatus } from 'mlflow/enum.js';
import type { RunningServer } from '@ledgerflow/runtime';
import { startEmbeddedServer } from './commands/server.js';
import { testServerConfig } from './testing/test-config.js';

// The third-party npm `mlflow` client (Yuhsak/mlflow 2.0.7) against the embedded server. It predates
// MLflow 2.0: its Experiments.list calls /experiments/list, which MLflow itself removed, so that one
// call is out of scope. Its Experiments.setExperimentTag builds a URL without a slash
// (`/experimentsset-experiment-tag`), which no MLflow server answers, so it is out of scope too.
// Every other call it makes is MLflow's current API.

// The package's types declare an ES default export, but its entry assigns the class to module.exports.
const MLflow = mlflowPackage as unknown as typeof mlflowPackage.default;
type MLflowClient = InstanceType<typeof MLflow>;

interface RunReply {
  run: {
    info: { run_id: string; status: string; lifecycle_stage: string };
    data: {
      params?: unknown[];
      tags?: { key: string; value: string }[];
      metrics?: { key: string; value: number }[];
    };
  };
}

describe('npm mlflow client', () => {
  let server: RunningServer;
  let dataDir: string;
  let client: MLflowClient;
  const consoleLog = console.log;

  beforeAll(async () => {
    console.log = () => undefined; // the client logs every request body
    dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-js-client-'));
    server = await startEmbeddedServer(testServerConfig(dataDir));
    client = new MLflow({ endpoint: server.url });
  });

  afterAll(async () => {
    console.log = consoleLog;
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('manages experiments', async () => {
    const { experiment_id } = await client.Experiments.create({
      name: 'js-client',
      artifact_location: '',
    });
    await client.Experiments.update({ experiment_id, new_name: 'js-client-renamed' });
    const got = (await client.Experiments.get({ experiment_id })) as {
      experiment: { name: string; artifact_location: string };
    };
    expect(got.experiment.name).toBe('js-client-renamed');
    expect(got.experiment.artifact_location).toBe(`mlflow-artifacts:/${experiment_id}`);
    await client.Experiments.delete({ experiment_id });
    const deleted = (await client.Experiments.get({ experiment_id })) as {
      experiment: { lifecycle_stage: string };
    };
    expect(deleted.experiment.lifecycle_stage).toBe('deleted');
    await client.Experiments.restore({ experiment_id });
  });

  it('manages runs, params and tags', async () => {
    const { experiment_id } = await client.Experiments.create({
      name: 'js-runs',
      artifact_location: '',
    });
    const created = (await client.Runs.create({
      experiment_id,
      user_id: 'js',
      start_time: 1000,
      tags: [{ key: 'k', value: 'v' }],
    })) as RunReply;
    const run_id = created.run.info.run_id;
    await client.Runs.logParameter({ run_id, key: 'alpha', value: '0.5' });
    await client.Runs.setTag({ run_id, key: 'stage', value: 'dev' });
    await client.Runs.deleteTag({ run_id, key: 'k' });
    await client.Runs.update({ run_id, status: RunStatus.FINISHED, end_time: 2000 });
    const got = (await client.Runs.get({ run_id })) as RunReply;
    expect(got.run.info.status).toBe('FINISHED');
    expect(got.run.data.params).toEqual([{ key: 'alpha', value: '0.5' }]);
    expect(got.run.data.tags?.find((t) => t.key === 'stage')?.value).toBe('dev');
    expect(got.run.data.tags?.some((t) => t.key === 'k')).toBe(false);
    await client.Runs.delete({ run_id });
    expect(((await client.Runs.get({ run_id })) as RunReply).run.info.lifecycle_stage).toBe(
      'deleted',
    );
    await client.Runs.restore({ run_id });
    expect(((await client.Runs.get({ run_id })) as RunReply).run.info.lifecycle_stage).toBe(
      'active',
    );
  });

  it('logs metrics one at a time and in batches, reads their history, and searches runs', async () => {
    const { experiment_id } = await client.Experiments.create({
      name: 'js-metrics',
      artifact_location: '',
    });
    const created = (await client.Runs.create({
      experiment_id,
      user_id: 'js',
      start_time: 1000,
      tags: [],
    })) as RunReply;
    const run_id = created.run.info.run_id;
    await client.Runs.logMetric({ run_id, key: 'loss', value: 0.9, timestamp: 1000, step: 0 });
    await client.Runs.logBatch({
      run_id,
      metrics: [
        { key: 'loss', value: 0.5, timestamp: 1001, step: 1 },
        { key: 'loss', value: 0.25, timestamp: 1002, step: 2 },
      ],
      params: [{ key: 'optimizer', value: 'adam' }],
      tags: [{ key: 'phase', value: 'train' }],
    });
    const history = (await client.Metrics.getHistory({ run_id, metric_key: 'loss' })) as {
      metrics: { value: number; step: number }[];
    };
    expect(history.metrics.map((m) => [m.step, m.value])).toEqual([
      [0, 0.9],
      [1, 0.5],
      [2, 0.25],
    ]);
    const other = (await client.Runs.create({
      experiment_id,
      user_id: 'js',
      start_time: 2000,
      tags: [],
    })) as RunReply;
    await client.Runs.logMetric({
      run_id: other.run.info.run_id,
      key: 'loss',
      value: 0.1,
      timestamp: 2000,
      step: 5,
    });
    const found = (await client.Runs.search({
      experiment_ids: [experiment_id],
      filter: 'metrics.loss < 0.3',
      order_by: ['metrics.loss ASC'],
      max_results: 10,
    })) as { runs: RunReply['run'][] };
    expect(found.runs.map((r) => r.info.run_id)).toEqual([other.run.info.run_id, run_id]);
  });

  it('surfaces MLflow errors to the caller', async () => {
    await expect(client.Runs.get({ run_id: '0123456789abcdef0123456789abcdef' })).rejects.toThrow(
      /RESOURCE_DOES_NOT_EXIST/,
    );
  });
});
