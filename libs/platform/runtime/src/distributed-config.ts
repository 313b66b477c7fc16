import { ConfigError } from '@ledgerflow/config';

type Env = Readonly<Record<string, string | undefined>>;

/** Which adapters a process uses: SQLite and in-process calls, or MongoDB, Kafka and gRPC. */
export type LedgerflowMode = 'embedded' | 'distributed';

/** Where the other services answer the lookups a service asks. */
export interface ServiceAddresses {
  /** tracking-ingest's and registry-governance's service-call listeners (host:port). */
  readonly trackingAddress: string;
  readonly registryAddress: string;
  /** Deadline of one service-to-service call. */
  readonly callDeadlineMs: number;
  /** registry-governance's listener, where the identity module answers access checks. */
  readonly identityAddress?: string;
  /** LEDGERFLOW_SERVICE_TOKEN: the shared secret service-to-service calls carry and require. */
  readonly serviceToken?: string;
  /** How long another service trusts a successful authentication (LEDGERFLOW_AUTH_CACHE_SECONDS). */
  readonly authCacheMs?: number;
}

/** Settings of one service process in distributed mode (LEDGERFLOW_MODE=distributed). */
export interface DistributedConfig extends ServiceAddresses {
  /** `mongodb://host:port/`: the MongoDB (or MongoDB-wire) server of event logs and read models. */
  readonly mongoUrl: string;
  /** This service's database: its event log and its read models (one database per service). */
  readonly database: string;
  readonly kafkaBrokers: readonly string[];
  /** Listener for the questions this service answers other services (gRPC). */
  readonly serviceGrpcHost: string;
  readonly serviceGrpcPort: number;
  /** How often subscriptions and the outbox re-read the log for appends of other processes. */
  readonly logPollMs: number;
  /**
   * TEST-ONLY FAULT (LEDGERFLOW_FAULT_KILL_AFTER_READMODEL_WRITE=<read model>:<n>): the process
   * SIGKILLs itself in the middle of committing its n-th batch of that read model, after the first
   * collection of documents is written and before the rest and the checkpoint. Absent unless that
   * variable is set; never set it in production.
   */
  readonly faultKillAfterReadModelWrite?: { readonly projection: string; readonly batch: number };
}

export function modeOf(env: Env): LedgerflowMode {
  const raw = (env['LEDGERFLOW_MODE'] ?? 'embedded').toLowerCase();
  if (raw !== 'embedded' && raw !== 'distributed')
    throw new ConfigError(`LEDGERFLOW_MODE must be embedded or distributed, got '${raw}'`);
  return raw;
}

function port(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n > 65535)
    throw new ConfigError(`${name} must be a port number 0-65535, got '${raw}'`);
  return n;
}

function address(name: string, raw: string | undefined, fallback: string): string {
  const value = raw ?? fallback;
  if (!/^[\w.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(value))
    throw new ConfigError(`${name} must be host:port, got '${value}'`);
  return value;
}

/** Default service-call ports: tracking-ingest answers on 50061, registry-governance on 50062. */
export const DEFAULT_SERVICE_GRPC_PORTS: Readonly<Record<string, number>> = {
  'tracking-ingest': 50061,
  'registry-governance': 50062,
  'artifact-store': 50063,
  deployment: 50064,
};

/**
 * Reads LEDGERFLOW_MONGO_URL (required), LEDGERFLOW_MONGO_DATABASE (default
 * `ledgerflow_<service>`), LEDGERFLOW_KAFKA_BROKERS (required, comma-separated host:port),
 * LEDGERFLOW_SERVICE_GRPC_HOST/PORT (this service's listener), LEDGERFLOW_TRACKING_GRPC_ADDRESS and
 * LEDGERFLOW_REGISTRY_GRPC_ADDRESS (the other services), LEDGERFLOW_SERVICE_CALL_DEADLINE_MS.
 */
export function loadDistributedConfig(env: Env, service: string): DistributedConfig {
  const mongoUrl = env['LEDGERFLOW_MONGO_URL'];
  if (mongoUrl === undefined || !/^mongodb(\+srv)?:\/\//.test(mongoUrl))
    throw new ConfigError(
      `LEDGERFLOW_MONGO_URL must be a mongodb:// URL in distributed mode, got '${mongoUrl ?? ''}'`,
    );
  const database = env['LEDGERFLOW_MONGO_DATABASE'] ?? `ledgerflow_${service.replace(/-/g, '_')}`;
  if (!/^[A-Za-z0-9_]{1,63}$/.test(database))
    throw new ConfigError(
      `LEDGERFLOW_MONGO_DATABASE must be 1-63 letters, digits or '_', got '${database}'`,
    );
  const brokers = (env['LEDGERFLOW_KAFKA_BROKERS'] ?? '')
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
  if (brokers.length === 0)
    throw new ConfigError('LEDGERFLOW_KAFKA_BROKERS must list at least one host:port');
  for (const b of brokers) address('LEDGERFLOW_KAFKA_BROKERS', b, b);
  return {
    ...serviceAddresses(env),
    mongoUrl,
    database,
    kafkaBrokers: brokers,
    serviceGrpcHost: env['LEDGERFLOW_SERVICE_GRPC_HOST'] ?? env['LEDGERFLOW_HOST'] ?? '127.0.0.1',
    serviceGrpcPort: port(
      'LEDGERFLOW_SERVICE_GRPC_PORT',
      env['LEDGERFLOW_SERVICE_GRPC_PORT'],
      DEFAULT_SERVICE_GRPC_PORTS[service] ?? 0,
    ),
    logPollMs: positive('LEDGERFLOW_LOG_POLL_MS', env['LEDGERFLOW_LOG_POLL_MS'], 2000),
    ...faultKillAfterReadModelWrite(env['LEDGERFLOW_FAULT_KILL_AFTER_READMODEL_WRITE']),
  };
}

/** LEDGERFLOW_FAULT_KILL_AFTER_READMODEL_WRITE=<read model>:<n> (test-only fault injection). */
function faultKillAfterReadModelWrite(
  raw: string | undefined,
): Pick<DistributedConfig, 'faultKillAfterReadModelWrite'> {
  if (raw === undefined || raw === '') return {};
  const match = /^([\w:.-]+):(\d+)$/.exec(raw);
  const batch = Number(match?.[2]);
  if (match === null || batch < 1 || !Number.isSafeInteger(batch))
    throw new ConfigError(
      `LEDGERFLOW_FAULT_KILL_AFTER_READMODEL_WRITE (a test-only fault) must be <read model>:<n>, n >= 1, got '${raw}'`,
    );
  return { faultKillAfterReadModelWrite: { projection: match[1]!, batch } };
}

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || !Number.isSafeInteger(n))
    throw new ConfigError(`${name} must be a positive integer, got '${raw}'`);
  return n;
}

/**
 * LEDGERFLOW_TRACKING_GRPC_ADDRESS, LEDGERFLOW_REGISTRY_GRPC_ADDRESS,
 * LEDGERFLOW_SERVICE_CALL_DEADLINE_MS; LEDGERFLOW_IDENTITY_GRPC_ADDRESS (default: the registry's),
 * LEDGERFLOW_SERVICE_TOKEN (16+ characters) and LEDGERFLOW_AUTH_CACHE_SECONDS (default 5, 0: none).
 */
export function serviceAddresses(env: Env): ServiceAddresses {
  const deadline = Number(env['LEDGERFLOW_SERVICE_CALL_DEADLINE_MS'] ?? '30000');
  if (!Number.isSafeInteger(deadline) || deadline < 1)
    throw new ConfigError('LEDGERFLOW_SERVICE_CALL_DEADLINE_MS must be a positive integer');
  const token = env['LEDGERFLOW_SERVICE_TOKEN'];
  if (token !== undefined && token !== '' && !/^[\x21-\x7e]{16,512}$/.test(token))
    throw new ConfigError(
      'LEDGERFLOW_SERVICE_TOKEN must be 16-512 printable characters without spaces',
    );
  const cacheRaw = env['LEDGERFLOW_AUTH_CACHE_SECONDS'] ?? '5';
  if (!/^\d{1,4}$/.test(cacheRaw) || Number(cacheRaw) > 3600)
    throw new ConfigError(
      `LEDGERFLOW_AUTH_CACHE_SECONDS must be 0-3600 seconds, got '${cacheRaw.slice(0, 20)}'`,
    );
  const registryAddress = address(
    'LEDGERFLOW_REGISTRY_GRPC_ADDRESS',
    env['LEDGERFLOW_REGISTRY_GRPC_ADDRESS'],
    `127.0.0.1:${DEFAULT_SERVICE_GRPC_PORTS['registry-governance']}`,
  );
  return {
    identityAddress: address(
      'LEDGERFLOW_IDENTITY_GRPC_ADDRESS',
      env['LEDGERFLOW_IDENTITY_GRPC_ADDRESS'],
      registryAddress,
    ),
    ...(token === undefined || token === '' ? {} : { serviceToken: token }),
    authCacheMs: Number(cacheRaw) * 1000,
    trackingAddress: address(
      'LEDGERFLOW_TRACKING_GRPC_ADDRESS',
      env['LEDGERFLOW_TRACKING_GRPC_ADDRESS'],
      `127.0.0.1:${DEFAULT_SERVICE_GRPC_PORTS['tracking-ingest']}`,
    ),
    registryAddress,
    callDeadlineMs: deadline,
  };
}
