import { randomUUID } from 'node:crypto';
import type { EventMetadata } from '@ledgerflow/contracts';
import type { ReadScope } from './access-control.js';

/** Who is calling and which request this is: becomes the metadata of every event it causes. */
export interface RequestContext {
  readonly actor: string;
  readonly correlationId: string;
  readonly requestId: string;
  readonly traceId: string | null;
  /** What the caller may read when auth is on; undefined means everything (auth off, or admin). */
  readonly readScope?: ReadScope;
}

type Headers = Readonly<Record<string, string | string[] | undefined>>;

const SAFE_ID = /^[\w.:-]{1,128}$/;

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Builds the context of one request. The actor comes from the authenticated principal (set by the
 * auth layer), never from the body; without auth it is `anonymous`. A caller-supplied correlation
 * id is kept when it is a safe token, so one id follows a workflow across calls.
 */
export function requestContextFrom(
  headers: Headers,
  principal: string | undefined,
  readScope?: ReadScope,
): RequestContext {
  const requestId = randomUUID();
  const supplied = header(headers, 'x-correlation-id') ?? header(headers, 'x-request-id');
  const traceparent = header(headers, 'traceparent');
  const trace = traceparent
    ? /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/.exec(traceparent)
    : null;
  return {
    actor: principal ?? 'anonymous',
    correlationId: supplied !== undefined && SAFE_ID.test(supplied) ? supplied : requestId,
    requestId,
    traceId: trace?.[1] ?? null,
    ...(readScope === undefined ? {} : { readScope }),
  };
}

/** Event metadata for a command issued by this request. */
export function metadataOf(ctx: RequestContext, reason: string | null = null): EventMetadata {
  return {
    actor: ctx.actor,
    correlationId: ctx.correlationId,
    causationId: ctx.requestId,
    traceId: ctx.traceId,
    reason,
  };
}
