import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import {
  BusProjectionRunner,
  eventsTopic,
  KafkaEventBus,
  OutboxPublisher,
  ReadModelCheckpointStore,
} from '@ledgerflow/kafka';
import { InMemoryReadModelStore } from '@ledgerflow/projections';
import type { RunningServer } from '@ledgerflow/runtime';
import { trackingProjection } from '@ledgerflow/service-tracking';
import { setupTracing, type Tracing } from '@ledgerflow/telemetry';
import { startLocalKafka, type LocalKafka } from '@ledgerflow/testing';
import { startEmbeddedServer } from './commands/server.js';
import { testServerConfig } from './testing/test-config.js';

const CALLER_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CALLER = `00-${CALLER_TRACE}-b7ad6b7169203331-01`;

/**
 * One trace across the hops of a write: the HTTP request, the projection that makes it readable,
 * the outbox publish to Kafka, the consumer, and a Kafka-fed projection in another "service".
 */
describe('tracing across HTTP, Kafka and projections', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let server: RunningServer;
  let kafka: LocalKafka;
  let dataDir: string;

  beforeAll(async () => {
    tracing = setupTracing({ serviceName: 'ledgerflow-e2e', exporters: [exporter], env: {} });
    dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-tracing-'));
    [server, kafka] = await Promise.all([
      startEmbeddedServer(testServerConfig(dataDir)),
      startLocalKafka(),
    ]);
  }, 20 * 60_000);

  afterAll(async () => {
    await server?.close();
    await kafka?.stop();
    await tracing?.shutdown();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('gives the request, its events, their publish and consume and every projection one trace id', async () => {
    const res = await fetch(`${server.url}/api/2.0/mlflow/experiments/create`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: CALLER },
      body: JSON.stringify({ name: 'traced-experiment' }),
    });
    expect(res.status).toBe(200);
    const { experiment_id } = (await res.json()) as { experiment_id: string };

    const store = server.app.get<EventStore>(EVENT_STORE, { strict: false });
    const events = await store.readAll(0, 10_000);
    const mine = events.filter((e) => e.metadata.traceId === CALLER_TRACE);
    expect(mine.length).toBeGreaterThan(0);

    const bus = new KafkaEventBus({ brokers: kafka.brokers, clientId: 'tracing-e2e' });
    const topic = eventsTopic('tracking');
    const outbox = new OutboxPublisher({
      name: 'outbox:tracking',
      eventStore: store,
      bus,
      checkpoints: new ReadModelCheckpointStore(new InMemoryReadModelStore()),
      topic,
    });
    const readModels = new InMemoryReadModelStore();
    const runner = new BusProjectionRunner({
      bus,
      topics: [topic],
      readModels,
      projection: trackingProjection,
    });
    try {
      await outbox.start();
      await runner.start();
      const head = await store.headPosition();
      await outbox.waitFor(head, 60_000);
      await runner.waitFor(head, 60_000);
    } finally {
      await runner.stop();
      await outbox.stop();
      await bus.close();
    }
    await tracing.flush();

    const spans = exporter
      .getFinishedSpans()
      .filter((s) => s.spanContext().traceId === CALLER_TRACE);
    const named = (pattern: RegExp): ReadableSpan[] => spans.filter((s) => pattern.test(s.name));
    const http = named(/^POST \/api\/2\.0\/mlflow\/experiments\/create$/);
    expect(http).toHaveLength(1);
    expect(http[0]!.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    // The embedded projection (read-your-write) and the Kafka-fed one both applied in the trace.
    expect(named(/^projection\.apply tracking$/).length).toBeGreaterThanOrEqual(2 * mine.length);
    const publish = named(/^ledgerflow\.tracking\.events\.v1 publish$/);
    const process_ = named(/^ledgerflow\.tracking\.events\.v1 process$/);
    expect(publish).toHaveLength(mine.length);
    expect(process_).toHaveLength(mine.length);
    // The consumer span is the child of the producer span whose context the Kafka headers carried.
    const publishIds = new Set(publish.map((s) => s.spanContext().spanId));
    for (const s of process_) expect(publishIds.has(s.parentSpanContext!.spanId)).toBe(true);
    expect(
      mine.every((e) => publish.some((s) => s.attributes['ledgerflow.event.id'] === e.id)),
    ).toBe(true);

    const got = await readModels.reader.scan(trackingProjection.collections[0]!.name);
    expect(JSON.stringify(got)).toContain(experiment_id);
  }, 180_000);

  it('serves Prometheus metrics: requests by route, projection checkpoints, log head', async () => {
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(
      /ledgerflow_http_requests_total\{method="POST",route="\/api\/2\.0\/mlflow\/experiments\/create",status="200"\} [1-9]/,
    );
    expect(text).toContain('ledgerflow_http_request_duration_seconds_bucket');
    const head = await server.app.get<EventStore>(EVENT_STORE, { strict: false }).headPosition();
    expect(text).toContain(`ledgerflow_event_log_head_position ${head}`);
    expect(text).toContain(
      `ledgerflow_projection_checkpoint_position{projection="tracking"} ${head}`,
    );
  });
});
