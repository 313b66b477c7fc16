import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import {
  MongoBulkWriteError,
  MongoClient,
  MongoError,
  MongoNetworkError,
  MongoServerError,
  MongoServerSelectionError,
} from 'mongodb';
import type { Db, MongoClientOptions } from 'mongodb';

/** The parts of the driver's internal Connection (mongodb 7.8, lib/cmap/connection.js) the guard uses. */
interface DriverConnection {
  readonly socket: Socket | undefined;
  readonly error: unknown;
  onClose: (this: DriverConnection) => void;
  writeCommand: (this: DriverConnection, ...args: unknown[]) => Promise<unknown>;
}

let writesGuarded = false;

/**
 * Makes the MongoDB driver fail, instead of hang, a command written to a connection whose socket
 * is already gone.
 *
 * When the server goes away (a FerretDB or mongod restart), each of the driver's sockets sees the
 * peer's FIN, ends its side and is destroyed; the driver's Connection only learns it from the
 * socket's 'close' event, one event-loop turn later. A command started in that gap (a monitor
 * heartbeat woken by another connection's error, or an operation on a pooled connection) writes to
 * the destroyed socket: Node drops the write without an 'error' event, `write()` returns false and
 * the driver waits for a 'drain' that never comes, with no socket timeout left to fire (the socket
 * is destroyed). A heartbeat stuck this way stops the server monitor for good: the server stays
 * "Unknown" with the error of the connection that noticed the restart, and every operation of that
 * client fails server selection until the process restarts (the FerretDB-restart fault test saw
 * this in CI). Seen against FerretDB, which sends no `topologyVersion`, so the driver never resets
 * a monitor on a network error; present in mongodb 7.8.0 and 7.9.0.
 *
 * The guard checks the socket before the write and, when it is destroyed, closes the Connection the
 * way its 'close' handler would and fails the command with the same MongoNetworkError: the heartbeat
 * fails (the monitor reconnects on its next check), an operation fails transiently (retried by the
 * driver or by `retryTransient`). Installed once per process, by every adapter's `openMongo`; it
 * refuses to start when the driver's internals no longer look as expected, rather than run unguarded.
 */
export function guardDriverWrites(): void {
  if (writesGuarded) return;
  const load = createRequire(import.meta.url);
  const internal = load('mongodb/lib/cmap/connection.js') as {
    Connection?: { prototype: DriverConnection };
  };
  const proto = internal.Connection?.prototype;
  const original = proto?.writeCommand;
  if (
    proto === undefined ||
    typeof original !== 'function' ||
    typeof proto.onClose !== 'function'
  ) {
    throw new Error(
      'the MongoDB driver changed its internal Connection (writeCommand/onClose): review guardDriverWrites in libs/platform/mongo',
    );
  }
  proto.writeCommand = function guardedWriteCommand(
    this: DriverConnection,
    ...args: unknown[]
  ): Promise<unknown> {
    if (this.socket?.destroyed === true) {
      this.onClose();
      return Promise.reject(
        this.error instanceof Error ? this.error : new MongoNetworkError('connection closed'),
      );
    }
    return original.apply(this, args);
  };
  writesGuarded = true;
}

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
    guardDriverWrites();
    return {
      client: target.client,
      db: target.client.db(target.database),
      release: async () => {},
    };
  }
  if (target.uri === undefined) throw new Error('a MongoDB adapter needs a client or a uri');
  guardDriverWrites();
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
 * Whether a bulk write (insertMany, bulkWrite) failed as a whole because its connection dropped:
 * the driver then throws a MongoBulkWriteError without write errors that copies the own fields of
 * the MongoNetworkError it wraps (`beforeHandshake`), not the network error itself.
 */
function isBatchCutOff(error: unknown): boolean {
  if (!(error instanceof MongoBulkWriteError)) return false;
  const { writeErrors } = error;
  const count = Array.isArray(writeErrors) ? writeErrors.length : writeErrors === undefined ? 0 : 1;
  return count === 0 && error.code === undefined && 'beforeHandshake' in error;
}

/**
 * Whether an operation failed because the server was unreachable for a moment (restart, failover,
 * dropped connection), so that the same operation may be tried again.
 */
export function isTransient(error: unknown): boolean {
  return (
    error instanceof MongoNetworkError ||
    isBatchCutOff(error) ||
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
