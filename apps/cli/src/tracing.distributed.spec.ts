import { createServer, type IncomingMessage, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { MongoReadModelStore } from '@ledgerflow/platform-mongo';
import {
  DEPLOYMENT_TARGETS,
  deploymentTargetsProjection,
  type DeploymentTargetDoc,
} from '@ledgerflow/service-deployment';
import { startTestCluster, type TestCluster } from './testing/cluster.js';

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const CALLER = `00-${CALLER_TRACE}-${CALLER_SPAN}-01`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A span as a service exported it over OTLP/HTTP. */
interface ExportedSpan {
  readonly service: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Readonly<Record<string, unknown>>;
}

/** OTLP JSON ids are hex (the spec); base64 (protobuf's JSON mapping) is accepted too. */
function hexId(id: unknown): string {
  if (typeof id !== 'string' || id === '') return '';
  return /^[\da-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
type OtlpAttributes = readonly { key: string; value: OtlpValue }[] | undefined;

function attributesOf(list: OtlpAttributes): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? [])
    out[key] = value.stringValue ?? value.intValue ?? value.boolValue ?? value.doubleValue;
  return out;
}

/**
 * A minimal OTLP/HTTP trace receiver (JSON encoding, what @opentelemetry/exporter-trace-otlp-http
 * sends): the services export to it through their real exporter path (LEDGERFLOW_OTLP_ENDPOINT),
 * so the spans of several processes meet in one place.
 */
class OtlpReceiver {
  readonly spans: ExportedSpan[] = [];
  readonly errors: string[] = [];
  private server: Server | undefined;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      void this.receive(req).then(
        () => {
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        },
        (e: unknown) => {
          this.errors.push(e instanceof Error ? e.message : String(e));
          res.writeHead(400).end();
        },
      );
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    return `http://127.0.0.1:${address.port}`;
  }

  private async receive(req: IncomingMessage): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body = Buffer.concat(chunks);
    if (req.url !== '/v1/traces') throw new Error(`unexpected path ${req.url}`);
    if (!(req.headers['content-type'] ?? '').includes('application/json'))
      throw new Error(`unexpected content type ${req.headers['content-type']}`);
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    const request = JSON.parse(body.toString()) as {
      resourceSpans?: {
        resource?: { attributes?: OtlpAttributes };
        scopeSpans?: {
          spans?: {
            traceId: string;
            spanId: string;
            parentSpanId?: string;
            name: string;
            kind: number;
            attributes?: OtlpAttributes;
          }[];
        }[];
      }[];
    };
    for (const rs of request.resourceSpans ?? []) {
      const name = attributesOf(rs.resource?.attributes)['service.name'];
      const service = typeof name === 'string' ? name : '';
      for (const ss of rs.scopeSpans ?? [])
        for (const s of ss.spans ?? [])
          this.spans.push({
            service,
            traceId: hexId(s.traceId),
            spanId: hexId(s.spanId),
            parentSpanId: hexId(s.parentSpanId),
            name: s.name,
            kind: s.kind,
            attributes: attributesOf(s.attributes),
          });
    }
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

// OTLP span kinds
const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;
const CONSUMER = 5;

/**
 * One trace across the processes of a cluster: a caller (its own span in `traceparent`) registers
 * a run's model and moves the version to Production, through nginx. The registry's HTTP spans, its
 * gRPC call to tracking-ingest (client span there, server span in tracking-ingest, joined through
 * the gRPC metadata), its projections, the outbox's Kafka publish of the stage change, and the
 * deployment service's Kafka consume (joined through the message headers) and its projection of
 * the change all carry the caller's trace id. Each service exports through its real OTLP exporter
 * to a receiver in this test.
 */
describe('one trace across the services of a cluster', () => {
  const receiver = new OtlpReceiver();
  let cluster: TestCluster;

  beforeAll(async () => {
    const endpoint = await receiver.start();
    cluster = await startTestCluster(2, { LEDGERFLOW_OTLP_ENDPOINT: endpoint });
  }, 600_000);

  afterAll(async () => {
    await cluster?.down(true);
    await receiver.stop();
  }, 120_000);

  const call = async (
    route: string,
    body: unknown,
    traceparent?: string,
  ): Promise<Record<string, unknown>> => {
    const res = await fetch(`${cluster.url}/api/2.0/mlflow/${route}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(traceparent === undefined ? {} : { traceparent }),
      },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${route}: ${res.status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };

  it('carries the caller trace id over HTTP, gRPC, Kafka and the projections of a stage transition', async () => {
    const { experiment_id } = await call('experiments/create', { name: 'traced-across' });
    const created = await call('runs/create', { experiment_id });
    const runId = (created['run'] as { info: { run_id: string } }).info.run_id;
    await call('registered-models/create', { name: 'traced-model' });

    await call(
      'model-versions/create',
      { name: 'traced-model', source: `runs:/${runId}/model`, run_id: runId },
      CALLER,
    );
    const transitioned = await call(
      'model-versions/transition-stage',
      { name: 'traced-model', version: '1', stage: 'Production', archive_existing_versions: false },
      CALLER,
    );
    expect(transitioned['model_version']).toMatchObject({ current_stage: 'Production' });

    // The deployment service applies the change it consumed from Kafka.
    const deployment = await MongoReadModelStore.open({
      uri: cluster.mongoUri,
      database: 'ledgerflow_deployment',
    });
    let target: DeploymentTargetDoc | undefined;
    try {
      await deployment.setup(deploymentTargetsProjection);
      for (let i = 0; i < 120; i++) {
        [target] = await deployment.reader.find<DeploymentTargetDoc>(
          DEPLOYMENT_TARGETS,
          'name',
          'traced-model',
        );
        if (target?.versions.some((v) => v.stage === 'Production')) break;
        await sleep(500);
      }
    } finally {
      await deployment.close();
    }
    expect(target?.versions.map((v) => [v.version, v.stage])).toEqual([[1, 'Production']]);
    expect(target?.versions[0]?.storage_location).toContain(runId);

    // Spans arrive in batches (the exporter's 5 s schedule): wait for the last hop's.
    const traced = () => receiver.spans.filter((s) => s.traceId === CALLER_TRACE);
    const has = (service: string, name: RegExp) =>
      traced().some((s) => s.service === `ledgerflow-${service}` && name.test(s.name));
    for (let i = 0; i < 180; i++) {
      if (
        has('deployment', /^projection\.apply deployment-targets$/) &&
        has('deployment', /^ledgerflow\.registry\.events\.v1 process$/) &&
        has('registry-governance', /^ledgerflow\.registry\.events\.v1 publish$/) &&
        has('tracking-ingest', /TrackingLookupService\/GetRun$/) &&
        has('registry-governance', /^POST \/api\/2\.0\/mlflow\/model-versions\/create$/) &&
        has('registry-governance', /^POST \/api\/2\.0\/mlflow\/model-versions\/transition-stage$/)
      )
        break;
      await sleep(500);
    }
    expect(receiver.errors).toEqual([]);
    const spans = traced();
    const of = (service: string, name: RegExp, kind?: number): ExportedSpan[] =>
      spans.filter(
        (s) =>
          s.service === `ledgerflow-${service}` &&
          name.test(s.name) &&
          (kind === undefined || s.kind === kind),
      );

    // HTTP: the registry's server spans are children of the caller's span.
    const http = of('registry-governance', /^POST \/api\/2\.0\/mlflow\/model-versions\//, SERVER);
    expect(http.map((s) => s.name).sort()).toEqual([
      'POST /api/2.0/mlflow/model-versions/create',
      'POST /api/2.0/mlflow/model-versions/transition-stage',
    ]);
    for (const s of http) expect(s.parentSpanId).toBe(CALLER_SPAN);
    const createSpan = http.find((s) => s.name.endsWith('/create'))!;

    // gRPC: the registry asks tracking-ingest for the run; the server span's parent is the
    // client span, whose context travelled in the call's metadata.
    const grpcClient = of('registry-governance', /TrackingLookupService\/GetRun$/, CLIENT);
    const grpcServer = of('tracking-ingest', /TrackingLookupService\/GetRun$/, SERVER);
    expect(grpcClient.length).toBeGreaterThanOrEqual(1);
    expect(grpcServer.length).toBe(grpcClient.length);
    for (const s of grpcServer) expect(grpcClient.map((c) => c.spanId)).toContain(s.parentSpanId);
    const spanIds = new Set(spans.map((s) => s.spanId));
    // the client span sits under the create request (directly or through an internal span)
    const ancestors = (s: ExportedSpan): string[] => {
      const out: string[] = [];
      for (let p = s.parentSpanId; p !== '' && spanIds.has(p);) {
        out.push(p);
        p = spans.find((x) => x.spanId === p)!.parentSpanId;
      }
      return out;
    };
    for (const c of grpcClient) expect(ancestors(c)).toContain(createSpan.spanId);

    // Projections in the registry process, for both requests' events.
    const registryApplied = of('registry-governance', /^projection\.apply registry$/);
    const appliedTypes = new Set(registryApplied.map((s) => s.attributes['ledgerflow.event.type']));
    expect(appliedTypes).toEqual(new Set(['ModelVersionCreated', 'ModelVersionStageTransitioned']));

    // Kafka: the outbox publishes the stage change (producer span), the deployment service
    // consumes it (consumer span, child of the producer span through the message headers) and
    // applies it to its read model.
    const isTransition = (s: ExportedSpan) =>
      s.attributes['ledgerflow.event.type'] === 'ModelVersionStageTransitioned';
    const publish = of(
      'registry-governance',
      /^ledgerflow\.registry\.events\.v1 publish$/,
      PRODUCER,
    ).filter(isTransition);
    expect(publish.length).toBeGreaterThanOrEqual(1);
    const consumed = of(
      'deployment',
      /^ledgerflow\.registry\.events\.v1 process$/,
      CONSUMER,
    ).filter(isTransition);
    expect(consumed.length).toBeGreaterThanOrEqual(1);
    for (const s of consumed) expect(publish.map((p) => p.spanId)).toContain(s.parentSpanId);
    const deployed = of('deployment', /^projection\.apply deployment-targets$/).filter(
      isTransition,
    );
    expect(deployed).toHaveLength(1);

    // Every process of the path took part in the one trace.
    expect(new Set(spans.map((s) => s.service))).toEqual(
      new Set([
        'ledgerflow-registry-governance',
        'ledgerflow-tracking-ingest',
        'ledgerflow-deployment',
      ]),
    );
  }, 300_000);
});
