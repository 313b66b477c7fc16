import path from 'node:path';

/** Settings of an embedded Ledgerflow server, validated at boot. */
export interface LedgerflowConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** SQLite `synchronous` for the event log: `full` survives power loss, `normal` only process crashes. */
  readonly sqliteSynchronous: 'full' | 'normal';
  /**
   * Embedded mode: apply the metric history read model on a worker thread, in its own database
   * file (`LEDGERFLOW_PROJECTION_WORKER`, default true). False applies it on the main thread, into
   * the same file. Unset counts as true.
   */
  readonly projectionWorker?: boolean;
  /** Root for new experiments' artifact locations (MLflow's proxied default). */
  readonly defaultArtifactRoot: string;
  /** Truncate over-long param and tag values instead of rejecting them (MLflow's default). */
  readonly truncateLongValues: boolean;
  readonly logLevel: 'error' | 'warn' | 'info' | 'debug';
  /** gRPC listener (metric ingest); port 0 picks a free port. */
  readonly grpcHost: string;
  readonly grpcPort: number;
  readonly ingest: IngestLimits;
  readonly auth: AuthSettings;
}

/** MLflow's permission levels (fact sheet §7). */
export type PermissionLevel = 'READ' | 'EDIT' | 'MANAGE' | 'NO_PERMISSIONS';
export const PERMISSION_LEVELS: readonly PermissionLevel[] = [
  'READ',
  'EDIT',
  'MANAGE',
  'NO_PERMISSIONS',
];

/** Identity and permissions (off by default, as MLflow's server). */
export interface AuthSettings {
  /** `off`: every caller is `anonymous` and may do anything. `basic`: HTTP Basic or Bearer token required. */
  readonly mode: 'off' | 'basic';
  /** Permission of a user on a resource without an explicit grant (MLflow's default_permission). */
  readonly defaultPermission: PermissionLevel;
  /** What the creator of an experiment or registered model is granted (NO_PERMISSIONS: nothing). */
  readonly creatorPermission: PermissionLevel;
  /** Admin created at first start (with adminPassword, or a generated one printed once). */
  readonly adminUsername: string;
  /** Never logged. Undefined: generate one at first start. */
  readonly adminPassword: string | undefined;
  /** Failed logins per user name and per client address within the window before 429. */
  readonly maxFailedLogins: number;
  readonly failedLoginWindowMs: number;
  /**
   * Proxies (IPs or CIDRs, LEDGERFLOW_TRUSTED_PROXIES) whose X-Forwarded-For names the client:
   * behind nginx, the failed-login limit per address counts each client, not nginx.
   */
  readonly trustedProxies?: readonly string[];
}

/** Flow-control limits of the gRPC metric ingest. */
export interface IngestLimits {
  /** Largest gRPC message accepted, in bytes (larger ones are refused by the transport). */
  readonly maxMessageBytes: number;
  /** Most points one batch may carry; more is INVALID_ARGUMENT. */
  readonly maxBatchPoints: number;
  /** Batches one stream may have in flight before the server stops reading it (back-pressure). */
  readonly maxInFlightBatchesPerStream: number;
  /** Batches one client (client_id) may have in flight across its streams. */
  readonly maxInFlightBatchesPerClient: number;
  /** Points one run may have in flight across all streams. */
  readonly maxInFlightPointsPerRun: number;
  /** Points in flight in the whole server. */
  readonly maxInFlightPoints: number;
  /** How long a batch may wait for room before the server answers RESOURCE_EXHAUSTED. */
  readonly overloadTimeoutMs: number;
}

/** A bad setting: start-up stops with a message naming the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Env = Readonly<Record<string, string | undefined>>;

function parsePort(name: string, raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n > 65535)
    throw new ConfigError(`${name} must be a port number 0-65535, got '${raw}'`);
  return n;
}

function parsePositiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || !Number.isSafeInteger(n)) {
    throw new ConfigError(`${name} must be a positive integer, got '${raw}'`);
  }
  return n;
}

function parseBool(name: string, raw: string): boolean {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got '${raw}'`);
}

function oneOf<T extends string>(name: string, raw: string, allowed: readonly T[]): T {
  const v = raw.toLowerCase() as T;
  if (!allowed.includes(v))
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got '${raw}'`);
  return v;
}

function parsePermission(name: string, raw: string): PermissionLevel {
  const v = raw.toUpperCase() as PermissionLevel;
  if (!PERMISSION_LEVELS.includes(v))
    throw new ConfigError(`${name} must be one of ${PERMISSION_LEVELS.join(', ')}, got '${raw}'`);
  return v;
}

function loadAuth(env: Env): AuthSettings {
  const adminUsername = env['LEDGERFLOW_ADMIN_USERNAME'] ?? 'admin';
  if (!/^[\w.@-]{1,256}$/.test(adminUsername))
    throw new ConfigError(
      `LEDGERFLOW_ADMIN_USERNAME must be 1-256 letters, digits, '_', '.', '@' or '-'`,
    );
  const adminPassword = env['LEDGERFLOW_ADMIN_PASSWORD'];
  if (adminPassword !== undefined && adminPassword.length < 12)
    throw new ConfigError('LEDGERFLOW_ADMIN_PASSWORD must be at least 12 characters');
  return {
    mode: oneOf('LEDGERFLOW_AUTH', env['LEDGERFLOW_AUTH'] ?? 'off', ['off', 'basic'] as const),
    defaultPermission: parsePermission(
      'LEDGERFLOW_AUTH_DEFAULT_PERMISSION',
      env['LEDGERFLOW_AUTH_DEFAULT_PERMISSION'] ?? 'READ',
    ),
    creatorPermission: parsePermission(
      'LEDGERFLOW_AUTH_CREATOR_PERMISSION',
      env['LEDGERFLOW_AUTH_CREATOR_PERMISSION'] ?? 'MANAGE',
    ),
    adminUsername,
    adminPassword,
    maxFailedLogins: parsePositiveInt(
      'LEDGERFLOW_AUTH_MAX_FAILED_LOGINS',
      env['LEDGERFLOW_AUTH_MAX_FAILED_LOGINS'],
      10,
    ),
    failedLoginWindowMs:
      parsePositiveInt(
        'LEDGERFLOW_AUTH_FAILED_LOGIN_WINDOW_SECONDS',
        env['LEDGERFLOW_AUTH_FAILED_LOGIN_WINDOW_SECONDS'],
        60,
      ) * 1000,
    ...trustedProxies(env['LEDGERFLOW_TRUSTED_PROXIES']),
  };
}

/** LEDGERFLOW_TRUSTED_PROXIES: comma-separated IPv4/IPv6 addresses or CIDR ranges. */
function trustedProxies(raw: string | undefined): { trustedProxies?: readonly string[] } {
  if (raw === undefined || raw.trim() === '') return {};
  const list = raw
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  for (const p of list)
    if (!/^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)(?:\/\d{1,3})?$/.test(p))
      throw new ConfigError(
        `LEDGERFLOW_TRUSTED_PROXIES must list IP addresses or CIDR ranges, got '${p.slice(0, 60)}'`,
      );
  return { trustedProxies: list };
}

/** Reads configuration from CLI overrides, then env (LEDGERFLOW_*, and PORT), then defaults. */
export function loadConfig(
  env: Env = process.env,
  overrides: {
    host?: string | undefined;
    port?: number | undefined;
    dataDir?: string | undefined;
    grpcPort?: number | undefined;
  } = {},
): LedgerflowConfig {
  const portEnv = env['LEDGERFLOW_PORT'] ?? env['PORT'];
  const portName = env['LEDGERFLOW_PORT'] !== undefined ? 'LEDGERFLOW_PORT' : 'PORT';
  const host = overrides.host ?? env['LEDGERFLOW_HOST'] ?? '127.0.0.1';
  if (host.trim() === '') throw new ConfigError('LEDGERFLOW_HOST must not be empty');
  return {
    host,
    port: overrides.port ?? (portEnv === undefined ? 5000 : parsePort(portName, portEnv)),
    dataDir: path.resolve(overrides.dataDir ?? env['LEDGERFLOW_DATA_DIR'] ?? './ledgerflow-data'),
    sqliteSynchronous: oneOf(
      'LEDGERFLOW_SQLITE_SYNCHRONOUS',
      env['LEDGERFLOW_SQLITE_SYNCHRONOUS'] ?? 'full',
      ['full', 'normal'] as const,
    ),
    projectionWorker: parseBool(
      'LEDGERFLOW_PROJECTION_WORKER',
      env['LEDGERFLOW_PROJECTION_WORKER'] ?? 'true',
    ),
    defaultArtifactRoot: env['LEDGERFLOW_DEFAULT_ARTIFACT_ROOT'] ?? 'mlflow-artifacts:',
    truncateLongValues: parseBool(
      'LEDGERFLOW_TRUNCATE_LONG_VALUES',
      env['LEDGERFLOW_TRUNCATE_LONG_VALUES'] ?? 'true',
    ),
    logLevel: oneOf('LEDGERFLOW_LOG_LEVEL', env['LEDGERFLOW_LOG_LEVEL'] ?? 'info', [
      'error',
      'warn',
      'info',
      'debug',
    ] as const),
    grpcHost: env['LEDGERFLOW_GRPC_HOST'] ?? host,
    grpcPort:
      overrides.grpcPort ??
      (env['LEDGERFLOW_GRPC_PORT'] === undefined
        ? 50051
        : parsePort('LEDGERFLOW_GRPC_PORT', env['LEDGERFLOW_GRPC_PORT'])),
    ingest: {
      maxMessageBytes: parsePositiveInt(
        'LEDGERFLOW_GRPC_MAX_MESSAGE_BYTES',
        env['LEDGERFLOW_GRPC_MAX_MESSAGE_BYTES'],
        64 * 1024 * 1024,
      ),
      maxBatchPoints: parsePositiveInt(
        'LEDGERFLOW_INGEST_MAX_BATCH_POINTS',
        env['LEDGERFLOW_INGEST_MAX_BATCH_POINTS'],
        500_000,
      ),
      maxInFlightBatchesPerStream: parsePositiveInt(
        'LEDGERFLOW_INGEST_STREAM_INFLIGHT_BATCHES',
        env['LEDGERFLOW_INGEST_STREAM_INFLIGHT_BATCHES'],
        8,
      ),
      maxInFlightBatchesPerClient: parsePositiveInt(
        'LEDGERFLOW_INGEST_CLIENT_INFLIGHT_BATCHES',
        env['LEDGERFLOW_INGEST_CLIENT_INFLIGHT_BATCHES'],
        64,
      ),
      maxInFlightPointsPerRun: parsePositiveInt(
        'LEDGERFLOW_INGEST_RUN_INFLIGHT_POINTS',
        env['LEDGERFLOW_INGEST_RUN_INFLIGHT_POINTS'],
        4_000_000,
      ),
      maxInFlightPoints: parsePositiveInt(
        'LEDGERFLOW_INGEST_INFLIGHT_POINTS',
        env['LEDGERFLOW_INGEST_INFLIGHT_POINTS'],
        8_000_000,
      ),
      overloadTimeoutMs: parsePositiveInt(
        'LEDGERFLOW_INGEST_OVERLOAD_TIMEOUT_MS',
        env['LEDGERFLOW_INGEST_OVERLOAD_TIMEOUT_MS'],
        10_000,
      ),
    },
    auth: loadAuth(env),
  };
}

/** Files of the embedded data directory. */
export function dataFiles(dataDir: string): {
  events: string;
  readModels: string;
  /** Read models applied off the main thread (the metric history): one writer per SQLite file. */
  workerReadModels: string;
  artifacts: string;
} {
  return {
    events: path.join(dataDir, 'events.db'),
    readModels: path.join(dataDir, 'read-models.db'),
    workerReadModels: path.join(dataDir, 'metric-read-models.db'),
    artifacts: path.join(dataDir, 'artifacts'),
  };
}

/** Nest injection token for the LedgerflowConfig. */
export const LEDGERFLOW_CONFIG = Symbol.for('ledgerflow.Config');
