import { context, trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** `service` field of every line (e.g. `tracking`). */
  readonly service: string;
  /** pino level: fatal, error, warn, info, debug, trace, silent (default info). */
  readonly level?: string;
  /** Where lines go (default stdout; `stderr` writes synchronously to fd 2); tests pass a stream. */
  readonly destination?: DestinationStream | 'stdout' | 'stderr';
}

/**
 * A pino JSON logger whose lines carry `trace_id` and `span_id` of the span active where the line
 * is logged, so logs and traces join in any backend.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin() {
        const span = trace.getSpan(context.active());
        if (span === undefined) return {};
        const sc = span.spanContext();
        if (sc.traceId === '0'.repeat(32)) return {};
        return { trace_id: sc.traceId, span_id: sc.spanId };
      },
    },
    options.destination === 'stderr'
      ? pino.destination({ dest: 2, sync: true })
      : options.destination === 'stdout'
        ? undefined
        : options.destination,
  );
}
