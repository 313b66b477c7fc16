import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { MlflowError, notFound, type EventMetadata } from '@ledgerflow/contracts';
import { setupTracing, SpanKind, withSpan, type Tracing } from '@ledgerflow/telemetry';
import { startGrpcServer, type RunningGrpcServer } from './grpc-call.js';
import type {
  CallContext,
  ExperimentFacts,
  LoggedModelFacts,
  RegistryLookup,
  RunFacts,
  TrackingLookup,
} from './ports.js';
import { GrpcRegistryLookup, registryLookupBinding } from './registry-lookup.grpc.js';
import { GrpcTrackingLookup, trackingLookupBinding } from './tracking-lookup.grpc.js';

const RUN: RunFacts = {
  run_id: 'a'.repeat(32),
  experiment_id: '7',
  artifact_uri: 'mlflow-artifacts:/7/aaa/artifacts',
  lifecycle_stage: 'active',
  status: 'RUNNING',
  user_id: 'alice',
};
const MODEL: LoggedModelFacts = {
  model_id: 'm-' + 'b'.repeat(32),
  experiment_id: '7',
  name: 'clf',
  artifact_uri: 'mlflow-artifacts:/7/models/m-b/artifacts',
  lifecycle_stage: 'deleted',
};
const EXPERIMENT: ExperimentFacts = {
  experiment_id: '7',
  name: 'fraud',
  artifact_location: 'mlflow-artifacts:/7',
  lifecycle_stage: 'active',
};

/** A tracking service's answers, recorded calls included (what the server side receives). */
class TableLookup implements TrackingLookup {
  readonly sharesLog = true;
  readonly calls: { method: string; call?: CallContext }[] = [];
  readonly links: { modelId: string; name: string; version: string; meta: EventMetadata }[] = [];
  run(runId: string, call?: CallContext): Promise<RunFacts | undefined> {
    this.calls.push({ method: 'run', ...(call === undefined ? {} : { call }) });
    if (runId === 'boom') throw new Error('disk on fire');
    if (runId === 'bad') throw notFound('Run bad is gone');
    return Promise.resolve(runId === RUN.run_id ? RUN : undefined);
  }
  loggedModel(modelId: string): Promise<LoggedModelFacts | undefined> {
    return Promise.resolve(modelId === MODEL.model_id ? MODEL : undefined);
  }
  experiment(id: string): Promise<ExperimentFacts | undefined> {
    return Promise.resolve(id === '7' ? EXPERIMENT : undefined);
  }
  experimentByName(name: string): Promise<ExperimentFacts | undefined> {
    return Promise.resolve(name === 'fraud' ? EXPERIMENT : undefined);
  }
  linkModelVersion(
    modelId: string,
    v: { name: string; version: string },
    meta: EventMetadata,
  ): Promise<void> {
    this.links.push({ modelId, ...v, meta });
    return Promise.resolve();
  }
}

const registry: RegistryLookup = {
  modelVersionLocation: (name, version) =>
    Promise.resolve(name === 'fraud' && version === 3 ? 's3://bucket/fraud/3' : undefined),
};

describe('TrackingLookup and RegistryLookup over gRPC', () => {
  let server: RunningGrpcServer;
  let table: TableLookup;
  let client: GrpcTrackingLookup;
  let registryClient: GrpcRegistryLookup;
  let tracing: Tracing;
  const exporter = new InMemorySpanExporter();
  const logged: string[] = [];

  beforeAll(async () => {
    tracing = setupTracing({ serviceName: 'test', exporters: [exporter], env: {} });
    table = new TableLookup();
    server = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      bindings: [
        trackingLookupBinding(table, (m) => logged.push(m)),
        registryLookupBinding(registry, (m) => logged.push(m)),
      ],
    });
    client = new GrpcTrackingLookup(`127.0.0.1:${server.port}`);
    registryClient = new GrpcRegistryLookup(`127.0.0.1:${server.port}`);
  });

  afterAll(async () => {
    client.close();
    registryClient.close();
    await server.close();
    await tracing.shutdown();
  });

  it('answers facts, and undefined for unknown ids', async () => {
    await expect(client.run(RUN.run_id)).resolves.toEqual(RUN);
    await expect(client.run('f'.repeat(32))).resolves.toBeUndefined();
    await expect(client.loggedModel(MODEL.model_id)).resolves.toEqual(MODEL);
    await expect(client.loggedModel('m-none')).resolves.toBeUndefined();
    await expect(client.experiment('7')).resolves.toEqual(EXPERIMENT);
    await expect(client.experimentByName('fraud')).resolves.toEqual(EXPERIMENT);
    await expect(client.experimentByName('nope')).resolves.toBeUndefined();
    await expect(registryClient.modelVersionLocation('fraud', 3)).resolves.toBe(
      's3://bucket/fraud/3',
    );
    await expect(registryClient.modelVersionLocation('fraud', 4)).resolves.toBeUndefined();
  });

  it("rethrows the server's MLflow error with its code; hides other errors' internals", async () => {
    const gone = await client.run('bad').catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(MlflowError);
    expect((gone as MlflowError).code).toBe('RESOURCE_DOES_NOT_EXIST');
    expect((gone as MlflowError).message).toBe('Run bad is gone');
    const boom = await client.run('boom').catch((e: unknown) => e);
    expect((boom as MlflowError).code).toBe('INTERNAL_ERROR');
    expect((boom as MlflowError).message).not.toContain('disk on fire');
    expect(logged.some((m) => m.includes('disk on fire'))).toBe(true);
  });

  it('carries the correlation id and the trace into the server', async () => {
    exporter.reset();
    table.calls.length = 0;
    const traceId = await withSpan('http request', { kind: SpanKind.SERVER }, async (span) => {
      await client.run(RUN.run_id, { correlationId: 'req-42' });
      return span.spanContext().traceId;
    });
    expect(table.calls).toEqual([{ method: 'run', call: { correlationId: 'req-42' } }]);
    const spans = exporter.getFinishedSpans();
    const server = spans.find((s) => s.kind === SpanKind.SERVER && s.name.endsWith('/GetRun'));
    const clientSpan = spans.find((s) => s.kind === SpanKind.CLIENT);
    expect(server?.spanContext().traceId).toBe(traceId);
    expect(clientSpan?.spanContext().traceId).toBe(traceId);
    expect(server?.parentSpanContext?.spanId).toBe(clientSpan?.spanContext().spanId);
  });

  it('links a model version with the caller as actor and its correlation id', async () => {
    await client.linkModelVersion(
      MODEL.model_id,
      { name: 'fraud', version: '2' },
      { actor: 'bob', correlationId: 'req-7', causationId: null },
    );
    expect(table.links).toEqual([
      {
        modelId: MODEL.model_id,
        name: 'fraud',
        version: '2',
        meta: { actor: 'bob', correlationId: 'req-7', causationId: null },
      },
    ]);
  });

  it('waits for a server that is not up yet, within the deadline', async () => {
    const late = new GrpcTrackingLookup('127.0.0.1:1', 300);
    const e = await late.run(RUN.run_id).catch((x: unknown) => x);
    late.close();
    expect((e as MlflowError).code).toBe('TEMPORARILY_UNAVAILABLE');
  });
});
