import {
  MongoBulkWriteError,
  MongoClient,
  MongoError,
  MongoNetworkError,
  MongoServerError,
  MongoServerSelectionError,
} from 'mongodb';
import type { Db, MongoClientOptions } from 'mongodb';

/** Where a MongoDB adapter keeps its data: a client it was given, or a URI it connects to itself. */
export interface MongoTarget {
  /** A connected client the caller owns (and closes); takes precedence over `uri`. */
  readonly client?: MongoClient;
  /** `mongodb://host:port/`: the adapter opens (and closes) its own client. */
  readonly uri?: string;
  readonly database: string;
}

/**
 * Client options of every Ledgerflow MongoDB adapter: majority write concern with journaling, so an
 * acknowledged append or checkpoint survives a primary failover; majority reads, so a reader never
 * sees a write that a failover could roll back. `undefined` fields are left out, as JSON would.
 */
export const MONGO_CLIENT_OPTIONS: MongoClientOptions = {
  writeConcern: { w: 'majority', journal: true },
  readConcern: { level: 'majority' },
  ignoreUndefined: true,
  serverSelectionTimeoutMS: 10_000,
};

/** An open database and how to release what the adapter opened itself. */
export interface MongoHandle {
  readonly client: MongoClient;
  readonly db: Db;
  release(): Promise<void>;
}

export async function openMongo(target: MongoTarget): Promise<MongoHandle> {
  if (target.client !== undefined) {
    return {
      client: target.client,
      db: target.client.db(target.database),
      release: async () => {},
    };
  }
  if (target.uri === undefined) throw new Error('a MongoDB adapter needs a client or a uri');
  const client = new MongoClient(target.uri, MONGO_CLIENT_OPTIONS);
  await client.connect();
  return { client, db: client.db(target.database), release: () => client.close() };
}

/** Whether a write failed only because of duplicate keys (E11000), e.g. a redo of a finished write. */
export function isDuplicateKeyOnly(error: unknown): boolean {
  if (error instanceof MongoBulkWriteError) {
    const { writeErrors } = error;
    const errors: readonly { code: number }[] = Array.isArray(writeErrors)
      ? (writeErrors as readonly { code: number }[])
      : [writeErrors as { code: number }];
    return errors.length > 0 && errors.every((e) => e.code === 11000);
  }
  return error instanceof MongoServerError && error.code === 11000;
}

/**
 * Whether an operation failed because the server was unreachable for a moment (restart, failover,
 * dropped connection), so that the same operation may be tried again.
 */
export function isTransient(error: unknown): boolean {
  return (
    error instanceof MongoNetworkError ||
    error instanceof MongoServerSelectionError ||
    // mongoose's own wrapper of a server selection timeout
    (error instanceof Error && error.name === 'MongooseServerSelectionError') ||
    (error instanceof MongoError &&
      (error.hasErrorLabel('RetryableWriteError') ||
        error.hasErrorLabel('TransientTransactionError')))
  );
}

/** How long the adapters keep retrying an operation through a server outage, by default. */
export const DEFAULT_RETRY_FOR_MS = 60_000;

/**
 * Runs `operation`, and again after a short pause while it fails transiently, for up to
 * `retryForMs`. The operation must be safe to repeat (the adapters make their writes idempotent
 * or check whether an interrupted write landed).
 */
export async function retryTransient<T>(
  operation: () => Promise<T>,
  retryForMs: number = DEFAULT_RETRY_FOR_MS,
): Promise<T> {
  const deadline = Date.now() + retryForMs;
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await operation();
    } catch (error) {
      if (!isTransient(error) || Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** attempt)));
    }
  }
}
