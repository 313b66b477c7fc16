import { createHash } from 'node:crypto';
import {
  context,
  ROOT_CONTEXT,
  trace,
  TraceFlags,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

/**
 * W3C trace context (`traceparent`, `tracestate`), used for every hop whether or not a global
 * propagator is registered: HTTP headers, gRPC metadata, Kafka headers.
 */
const w3c = new W3CTraceContextPropagator();

const TRACE_ID = /^[\da-f]{32}$/;
const INVALID_TRACE_ID = '0'.repeat(32);

type HeaderValue = string | Buffer | readonly (string | Buffer)[] | undefined;

const recordGetter: TextMapGetter<Readonly<Record<string, HeaderValue>>> = {
  keys: (carrier) => Object.keys(carrier),
  get(carrier, key) {
    const value = carrier[key] ?? carrier[key.toLowerCase()];
    if (value === undefined) return undefined;
    const first: string | Buffer | undefined =
      typeof value === 'string' || Buffer.isBuffer(value)
        ? value
        : (value as readonly (string | Buffer)[])[0];
    return first === undefined ? undefined : first.toString();
  },
};

const recordSetter: TextMapSetter<Record<string, string>> = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};

/** Trace headers (`traceparent`, maybe `tracestate`) for the span current in `ctx`. */
export function traceHeaders(ctx: Context = context.active()): Record<string, string> {
  const headers: Record<string, string> = {};
  w3c.inject(ctx, headers, recordSetter);
  return headers;
}

/**
 * The context carried by headers (HTTP request headers, Kafka message headers: string or Buffer
 * values), on top of `base`. Headers without a valid `traceparent` give `base` unchanged.
 */
export function contextFromHeaders(
  headers: Readonly<Record<string, HeaderValue>>,
  base: Context = ROOT_CONTEXT,
): Context {
  return w3c.extract(base, headers, recordGetter);
}

/** The subset of @grpc/grpc-js Metadata the helpers use (no dependency on grpc-js here). */
export interface GrpcMetadataLike {
  get(key: string): (string | Buffer)[];
  set(key: string, value: string): void;
}

const grpcGetter: TextMapGetter<GrpcMetadataLike> = {
  keys: () => ['traceparent', 'tracestate'],
  get(carrier, key) {
    const value: string | Buffer | undefined = carrier.get(key)[0];
    return value === undefined ? undefined : value.toString();
  },
};

/** Writes the current span's trace context into outgoing gRPC metadata. */
export function injectGrpcMetadata(
  metadata: GrpcMetadataLike,
  ctx: Context = context.active(),
): void {
  for (const [key, value] of Object.entries(traceHeaders(ctx))) metadata.set(key, value);
}

/** The trace context a gRPC call's metadata carries. */
export function contextFromGrpcMetadata(
  metadata: GrpcMetadataLike,
  base: Context = ROOT_CONTEXT,
): Context {
  return w3c.extract(base, metadata, grpcGetter);
}

/**
 * A remote parent context for work done later on behalf of a stored event (outbox publish,
 * projection apply): the event metadata keeps the request's trace id but not its span id, so the
 * parent span id is derived from the event id, stable across retries and restarts. Null when the
 * event carries no valid trace id.
 */
export function contextFromTraceId(
  traceId: string | null | undefined,
  seed: string,
  base: Context = ROOT_CONTEXT,
): Context | null {
  if (traceId === null || traceId === undefined) return null;
  if (!TRACE_ID.test(traceId) || traceId === INVALID_TRACE_ID) return null;
  let spanId = createHash('sha256').update(seed).digest('hex').slice(0, 16);
  if (spanId === '0'.repeat(16)) spanId = '0'.repeat(15) + '1';
  return trace.setSpanContext(base, {
    traceId,
    spanId,
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  });
}

/** The trace id of a span, or null for a no-op span (tracing not set up). */
export function traceIdOf(span: Span): string | null {
  const { traceId } = span.spanContext();
  return traceId === INVALID_TRACE_ID ? null : traceId;
}

/** `traceparent` header value of a span, or null for a no-op span. */
export function traceparentOf(span: Span): string | null {
  const sc = span.spanContext();
  if (sc.traceId === INVALID_TRACE_ID) return null;
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & TraceFlags.SAMPLED) !== 0 ? '01' : '00'}`;
}
