import { trace, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

/** Instrumentation scope of every Ledgerflow span. */
export const TRACER_NAME = 'ledgerflow';

/** The tracer Ledgerflow code creates spans with: a no-op until a provider is registered. */
export function tracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

let providers = 0;

/** Whether setupTracing registered a provider (spans are recorded): per-event spans are made only then. */
export function tracingEnabled(): boolean {
  return providers > 0;
}

export interface TracingOptions {
  /** `service.name` of every span (e.g. `ledgerflow-tracking`). */
  readonly serviceName: string;
  readonly serviceVersion?: string;
  /**
   * OTLP/HTTP base URL (`http://collector:4318`); spans go to `<url>/v1/traces`. Defaults to
   * LEDGERFLOW_OTLP_ENDPOINT, then OTEL_EXPORTER_OTLP_ENDPOINT, from `env`.
   */
  readonly otlpEndpoint?: string;
  /** Extra exporters, each behind a SimpleSpanProcessor (tests pass an InMemorySpanExporter). */
  readonly exporters?: readonly SpanExporter[];
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface Tracing {
  /** The OTLP URL spans are exported to, or null when only the given exporters receive them. */
  readonly otlpUrl: string | null;
  /** Exports what is buffered. */
  flush(): Promise<void>;
  /** Flushes and unregisters the provider (the API falls back to no-op spans). */
  shutdown(): Promise<void>;
}

/** The OTLP endpoint configured in the environment, or null. */
export function otlpEndpointFrom(env: Readonly<Record<string, string | undefined>>): string | null {
  const value = env['LEDGERFLOW_OTLP_ENDPOINT'] ?? env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  return value !== undefined && value.trim() !== '' ? value.trim() : null;
}

/**
 * Registers a global tracer provider (W3C trace context, async-hooks context manager). Without an
 * OTLP endpoint and exporters nothing is registered and spans stay no-ops, so tracing costs nothing
 * unless configured.
 */
export function setupTracing(options: TracingOptions): Tracing {
  const env = options.env ?? process.env;
  const endpoint = options.otlpEndpoint ?? otlpEndpointFrom(env);
  const processors: SpanProcessor[] = [];
  let otlpUrl: string | null = null;
  if (endpoint !== null) {
    otlpUrl = `${endpoint.replace(/\/+$/, '')}/v1/traces`;
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: otlpUrl })));
  }
  for (const exporter of options.exporters ?? []) {
    processors.push(new SimpleSpanProcessor(exporter));
  }
  if (processors.length === 0) {
    return { otlpUrl: null, flush: async () => {}, shutdown: async () => {} };
  }
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      'service.name': options.serviceName,
      ...(options.serviceVersion !== undefined
        ? { 'service.version': options.serviceVersion }
        : {}),
    }),
    spanProcessors: processors,
  });
  provider.register();
  providers++;
  let down = false;
  return {
    otlpUrl,
    flush: () => provider.forceFlush(),
    async shutdown() {
      if (down) return;
      down = true;
      providers--;
      await provider.shutdown();
      trace.disable();
    },
  };
}
