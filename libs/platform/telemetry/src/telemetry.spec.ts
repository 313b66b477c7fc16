import { Writable } from 'node:stream';
import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import Fastify from 'fastify';
import { createLogger } from './logger.js';
import { LedgerflowMetrics } from './metrics.js';
import { installHttpTelemetry } from './http.js';
import {
  contextFromGrpcMetadata,
  contextFromHeaders,
  contextFromTraceId,
  injectGrpcMetadata,
  traceHeaders,
} from './propagation.js';
import { tracedProjection, withSpan } from './spans.js';
import { setupTracing, tracer, type Tracing } from './tracing.js';

const exporter = new InMemorySpanExporter();
let tracing: Tracing;

beforeAll(() => {
  tracing = setupTracing({ serviceName: 'telemetry-spec', exporters: [exporter], env: {} });
});
afterAll(async () => {
  await tracing.shutdown();
});
beforeEach(() => exporter.reset());

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER = `00-${CALLER_TRACE}-00f067aa0ba902b7-01`;

describe('propagation', () => {
  it('round-trips a span context through headers and gRPC metadata', async () => {
    await withSpan('outer', {}, (span) => {
      const headers = traceHeaders();
      expect(headers['traceparent']).toContain(span.spanContext().traceId);
      const extracted = trace.getSpanContext(contextFromHeaders(headers));
      expect(extracted?.traceId).toBe(span.spanContext().traceId);
      expect(extracted?.spanId).toBe(span.spanContext().spanId);

      const store = new Map<string, string>();
      const metadata = {
        get: (k: string) => (store.has(k) ? [store.get(k)!] : []),
        set: (k: string, v: string) => void store.set(k, v),
      };
      injectGrpcMetadata(metadata);
      expect(trace.getSpanContext(contextFromGrpcMetadata(metadata))?.traceId).toBe(
        span.spanContext().traceId,
      );
    });
  });

  it('accepts Kafka-style Buffer header values and ignores malformed ones', () => {
    const ctx = contextFromHeaders({ traceparent: Buffer.from(CALLER) });
    expect(trace.getSpanContext(ctx)?.traceId).toBe(CALLER_TRACE);
    expect(trace.getSpanContext(contextFromHeaders({ traceparent: 'garbage' }))).toBeUndefined();
  });

  it('derives a stable remote parent from an event trace id, and none from a missing or invalid one', () => {
    const a = trace.getSpanContext(contextFromTraceId(CALLER_TRACE, 'event:1')!);
    const b = trace.getSpanContext(contextFromTraceId(CALLER_TRACE, 'event:1')!);
    expect(a?.traceId).toBe(CALLER_TRACE);
    expect(a?.spanId).toBe(b?.spanId);
    expect(contextFromTraceId(null, 'x')).toBeNull();
    expect(contextFromTraceId('0'.repeat(32), 'x')).toBeNull();
    expect(contextFromTraceId('not-hex', 'x')).toBeNull();
  });
});

describe('tracedProjection', () => {
  it('applies each traced event inside a span of its request trace', async () => {
    const applied: string[] = [];
    const projection = tracedProjection({
      name: 'p',
      version: 1,
      collections: [],
      apply: (event) => void applied.push(event.id),
    });
    const event = {
      id: 'e1',
      type: 'T',
      schemaVersion: 1,
      occurredAt: 0,
      data: {},
      metadata: { actor: 'a', correlationId: 'c', causationId: null, traceId: CALLER_TRACE },
      stream: 's',
      revision: 0,
      position: 1,
      prevHash: '',
      hash: '',
    };
    await projection.apply(event, {} as never);
    await projection.apply(
      { ...event, id: 'e2', metadata: { ...event.metadata, traceId: null } },
      {} as never,
    );
    expect(applied).toEqual(['e1', 'e2']);
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(['projection.apply p']);
    expect(spans[0]!.spanContext().traceId).toBe(CALLER_TRACE);
  });
});

describe('HTTP telemetry', () => {
  it('traces requests in the caller trace, hands the trace to the handler, and serves /metrics', async () => {
    const app = Fastify();
    const metrics = new LedgerflowMetrics({ processMetrics: false });
    metrics.observeCheckpoints(() => [{ name: 'runs', position: 42 }]);
    installHttpTelemetry(app, { metrics });
    let seen: string | undefined;
    app.post('/api/thing/:id', async (req) => {
      seen = req.headers['traceparent'] as string | undefined;
      const active = trace.getSpan(context.active());
      return { active: active?.spanContext().traceId ?? null };
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
    const res = await fetch(`${base}/api/thing/7?x=1`, {
      method: 'POST',
      headers: { traceparent: CALLER, 'content-type': 'application/json' },
      body: '{}',
    });
    const answer = (await res.json()) as { active: string | null };
    expect(res.status).toBe(200);
    // onResponse (which ends the span) runs once the response is written: give it a moment.
    for (let i = 0; i < 100 && exporter.getFinishedSpans().length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    const span = spans[0]!;
    expect(span.name).toBe('POST /api/thing/:id');
    expect(span.spanContext().traceId).toBe(CALLER_TRACE);
    expect(span.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(span.attributes['http.response.status_code']).toBe(200);
    // The handler runs in the server span's context (so gRPC client spans made there join it).
    expect(answer.active).toBe(CALLER_TRACE);
    // The handler's traceparent (from which RequestContext takes its trace id) is the server span.
    expect(seen).toBe(`00-${CALLER_TRACE}-${span.spanContext().spanId}-01`);

    await (await fetch(`${base}/nowhere/at/all`)).text();
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toContain(
      'ledgerflow_http_requests_total{method="POST",route="/api/thing/:id",status="200"} 1',
    );
    expect(text).toContain('route="unmatched",status="404"');
    expect(text).not.toContain('/nowhere');
    expect(text).toMatch(/ledgerflow_http_request_duration_seconds_bucket\{le="0.001"/);
    expect(text).toContain('ledgerflow_projection_checkpoint_position{projection="runs"} 42');
    await app.close();
  });
});

describe('createLogger', () => {
  it('writes JSON lines with the trace and span ids of the active span', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ service: 'spec', destination: sink });
    logger.info('outside');
    let ids: { traceId: string; spanId: string } | undefined;
    await withSpan('work', {}, (span) => {
      ids = span.spanContext();
      logger.info({ runId: 'r1' }, 'inside');
    });
    const [outside, inside] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(outside).toMatchObject({ msg: 'outside', service: 'spec' });
    expect(outside).not.toHaveProperty('trace_id');
    expect(inside).toMatchObject({
      msg: 'inside',
      runId: 'r1',
      trace_id: ids!.traceId,
      span_id: ids!.spanId,
    });
  });
});

it('tracer() gives no-op spans before setup (no trace id leaks into events)', () => {
  expect(typeof tracer().startSpan).toBe('function');
});
