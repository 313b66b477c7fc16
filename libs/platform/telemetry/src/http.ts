import { context, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { LedgerflowMetrics } from './metrics.js';
import { contextFromHeaders, traceparentOf } from './propagation.js';
import { tracer } from './tracing.js';

export interface HttpTelemetryOptions {
  /** Request counts and latency histograms go here; /metrics serves its registry. */
  readonly metrics: LedgerflowMetrics;
  /** Path of the Prometheus endpoint (default `/metrics`); null to not serve one. */
  readonly metricsPath?: string | null;
}

interface InFlight {
  readonly span: Span;
  readonly started: bigint;
  ended: boolean;
}

/** Label for requests that matched no route, so a scan of random URLs adds no label values. */
const UNMATCHED = 'unmatched';

/**
 * Traces and measures every request of a Fastify instance:
 * - a SERVER span per request, child of the caller's `traceparent` when there is one; the request's
 *   `traceparent` header is then rewritten to this span, so the RequestContext built from it (and
 *   every event the request appends) carries the span's trace id;
 * - request count and latency by method, route pattern and status;
 * - GET /metrics in Prometheus text format.
 */
export function installHttpTelemetry(app: FastifyInstance, options: HttpTelemetryOptions): void {
  const { metrics } = options;
  const inFlight = new WeakMap<FastifyRequest, InFlight>();

  const finish = (req: FastifyRequest, status: number): void => {
    const entry = inFlight.get(req);
    if (entry === undefined || entry.ended) return;
    entry.ended = true;
    const route = req.routeOptions.url ?? UNMATCHED;
    const labels = { method: req.method, route, status: String(status) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, Number(process.hrtime.bigint() - entry.started) / 1e9);
    entry.span.updateName(`${req.method} ${route}`);
    entry.span.setAttribute('http.route', route);
    entry.span.setAttribute('http.response.status_code', status);
    if (status >= 500) entry.span.setStatus({ code: SpanStatusCode.ERROR });
    entry.span.end();
  };

  app.addHook('onRequest', (req, _reply, done) => {
    const parent = contextFromHeaders(req.headers, context.active());
    const span = tracer().startSpan(
      req.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': req.method,
          'url.path': req.url.split('?', 1)[0] ?? req.url,
        },
      },
      parent,
    );
    inFlight.set(req, { span, started: process.hrtime.bigint(), ended: false });
    const traceparent = traceparentOf(span);
    if (traceparent !== null) {
      req.headers['traceparent'] = traceparent;
      delete req.headers['tracestate'];
    }
    context.with(trace.setSpan(parent, span), done);
  });
  // Body parsing continues from stream events, outside the context entered above: enter the
  // span's context again right before the handler, so spans the handler starts are its children.
  app.addHook('preHandler', (req, _reply, done) => {
    const entry = inFlight.get(req);
    if (entry === undefined) {
      done();
      return;
    }
    context.with(trace.setSpan(context.active(), entry.span), done);
  });
  app.addHook('onResponse', (req, reply, done) => {
    finish(req, reply.statusCode);
    done();
  });
  app.addHook('onRequestAbort', (req, done) => {
    // 499: the client closed the connection before the answer (nginx's convention).
    finish(req, 499);
    done();
  });

  const path = options.metricsPath === undefined ? '/metrics' : options.metricsPath;
  if (path !== null) {
    app.get(path, async (_req, reply) => {
      const { contentType, body } = await metrics.render();
      return reply.header('content-type', contentType).send(body);
    });
  }
}
