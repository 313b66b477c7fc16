import * as grpc from '@grpc/grpc-js';
import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Metadata key of the shared secret every service-to-service call carries
 * (LEDGERFLOW_SERVICE_TOKEN): a listener started with a token refuses calls without it.
 */
export const SERVICE_TOKEN_METADATA = 'x-ledgerflow-service-token';

/** Client options that add the service token to every call's metadata (none without a token). */
export function serviceCallOptions(token: string | undefined): grpc.ClientOptions {
  if (token === undefined || token === '') return {};
  const interceptor: grpc.Interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(SERVICE_TOKEN_METADATA, token);
        next(metadata, listener);
      },
    });
  return { interceptors: [interceptor] };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Whether a call's metadata carries the token (constant time). */
export function hasServiceToken(metadata: grpc.Metadata, token: string): boolean {
  const value = metadata.get(SERVICE_TOKEN_METADATA)[0];
  if (typeof value !== 'string') return false;
  return timingSafeEqual(digest(value), digest(token));
}

/**
 * Wraps every unary handler of a service so a call without the token is answered UNAUTHENTICATED
 * before its handler runs.
 */
export function requireServiceToken(
  implementation: grpc.UntypedServiceImplementation,
  token: string,
): grpc.UntypedServiceImplementation {
  const guarded: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(implementation)) {
    const unary = handler as grpc.handleUnaryCall<unknown, unknown>;
    guarded[name] = ((call, callback) => {
      if (!hasServiceToken(call.metadata, token)) {
        callback({
          code: grpc.status.UNAUTHENTICATED,
          details: `service call without the right ${SERVICE_TOKEN_METADATA} (LEDGERFLOW_SERVICE_TOKEN)`,
        });
        return;
      }
      unary(call, callback);
    }) as grpc.handleUnaryCall<unknown, unknown>;
  }
  return guarded;
}
