import {
  context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import type { RecordedEvent } from '@ledgerflow/contracts';
import type { Projection } from '@ledgerflow/projections';
import { contextFromTraceId } from './propagation.js';
import { tracer } from './tracing.js';

export { SpanKind } from '@opentelemetry/api';

/**
 * Runs `fn` inside a new span (child of `parent`, else of the active context), ending it when `fn`
 * settles and recording a thrown error on it.
 */
export async function withSpan<T>(
  name: string,
  options: {
    readonly kind?: SpanKind;
    readonly attributes?: Attributes;
    readonly parent?: Context;
  },
  fn: (span: Span) => Promise<T> | T,
): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = tracer().startSpan(
    name,
    {
      kind: options.kind ?? SpanKind.INTERNAL,
      ...(options.attributes !== undefined ? { attributes: options.attributes } : {}),
    },
    parent,
  );
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (error) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw error;
  } finally {
    span.end();
  }
}

/** The parent context for work on a stored event: its request's trace, when it was traced. */
export function eventContext(event: RecordedEvent, base: Context = ROOT_CONTEXT): Context {
  return contextFromTraceId(event.metadata.traceId, `event:${event.id}`, base) ?? base;
}

/** Common span attributes of an event. */
export function eventAttributes(event: RecordedEvent): Attributes {
  return {
    'ledgerflow.event.id': event.id,
    'ledgerflow.event.type': event.type,
    'ledgerflow.event.stream': event.stream,
    'ledgerflow.event.position': event.position,
  };
}

/**
 * The projection with a span around each `apply` (`projection.apply <name>`), in the trace of the
 * request that caused the event. Name, version and collections are unchanged, so the wrapped
 * projection shares the original's read model and checkpoint. Events without a trace id are
 * applied without a span (nothing to join, and a rebuild should not flood the exporter).
 */
export function tracedProjection(projection: Projection): Projection {
  return {
    name: projection.name,
    version: projection.version,
    collections: projection.collections,
    // a worker thread applies the projection itself, untraced: where it runs must not depend on tracing
    ...(projection.offThread === undefined ? {} : { offThread: projection.offThread }),
    apply(event, writer) {
      const parent = contextFromTraceId(event.metadata.traceId, `event:${event.id}`);
      if (parent === null) return projection.apply(event, writer);
      return withSpan(
        `projection.apply ${projection.name}`,
        {
          parent,
          attributes: { ...eventAttributes(event), 'ledgerflow.projection': projection.name },
        },
        () => projection.apply(event, writer),
      );
    },
  };
}
