import { GENESIS_HASH, verifyChain } from '@ledgerflow/contracts';
import type { ChainVerification, NewEvent, RecordedEvent } from '@ledgerflow/contracts';
import { open as openFile, stat, type FileHandle } from 'node:fs/promises';
import Database from 'better-sqlite3';
import {
  checkMaxCount,
  DuplicateEventIdError,
  prepareWrites,
  sealEvent,
  toRecordedEvent,
} from './append-preparation.js';
import type { PreparedWrite, SealedEvent } from './append-preparation.js';
import { AppendNotifier, CatchUpSubscription } from './catch-up-subscription.js';
import { revisionMatches, WrongExpectedRevisionError } from './event-store.js';
import type {
  AppendResult,
  EventStore,
  ExpectedRevision,
  ReadStreamOptions,
  StreamWrite,
  SubscribeOptions,
  Subscription,
  SubscriptionHandler,
} from './event-store.js';

export interface SqliteEventStoreOptions {
  /** Database file; created (with its directory's WAL side files) when absent unless read-only. */
  readonly path: string;
  /**
   * `full` (default) fsyncs the WAL after every commit before acknowledging it, so an acknowledged
   * append survives power loss; `normal` survives a process crash but may lose the last commits on
   * power loss. (`full` runs SQLite at synchronous=NORMAL and fsyncs the WAL file itself, off the
   * main thread: what SQLite's FULL does, without blocking the event loop for each fsync.)
   */
  readonly synchronous?: 'full' | 'normal';
  /** Opens an existing log for reading and verification only; appends are rejected. */
  readonly readonly?: boolean;
  /** How long to wait for another connection's lock before failing (default 5000 ms). */
  readonly busyTimeoutMs?: number;
  /** How often idle subscriptions look for appends made by another process (default 250 ms). */
  readonly pollIntervalMs?: number;
}

/** The event log's file name inside a data directory. */
export const EVENT_LOG_FILE_NAME = 'events.db';

/** Version of the table layout below; a file with a newer one is refused rather than misread. */
/** Event data per readAll page, beyond which the page ends early (see readAll). */
export const READ_PAGE_BYTES = 16 * 1024 * 1024;

export const EVENT_LOG_SCHEMA_VERSION = 1;

/** Event data (JSON characters) kept parsed for readers after commit or read (see RecentEvents). */
export const RECENT_EVENT_BYTES = 16 * 1024 * 1024;

/**
 * The most recently committed (or read) events, parsed at most once and shared: every projection
 * subscription reads each new event right after its commit, and without this each one would read
 * the row back from SQLite and parse its data again (a 50k-point metric batch is ~2 MB of JSON).
 * A reader gets the same RecordedEvent as from the table (built from the same sealed fields and
 * stored text), so what it sees does not depend on whether the event was cached. Bounded by the
 * size of the stored data (the oldest entries go first), and an event every subscription of this
 * store has handled is dropped at the next commit.
 */
class RecentEvents {
  /** Each entry holds the stored text until the first read parses it, then only the parsed event. */
  private readonly entries = new Map<
    number,
    { sealed: SealedEvent | undefined; recorded: RecordedEvent | undefined; bytes: number }
  >();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  add(sealed: SealedEvent, recorded?: RecordedEvent): void {
    const bytes = sealed.fields.dataJson.length;
    if (bytes > this.maxBytes || this.entries.has(sealed.fields.position)) return;
    this.entries.set(
      sealed.fields.position,
      recorded === undefined
        ? { sealed, recorded: undefined, bytes }
        : { sealed: undefined, recorded, bytes },
    );
    this.bytes += bytes;
    for (const [position, entry] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(position);
      this.bytes -= entry.bytes;
    }
  }

  get(position: number): { event: RecordedEvent; bytes: number } | undefined {
    const entry = this.entries.get(position);
    if (entry === undefined) return undefined;
    if (entry.recorded === undefined) {
      entry.recorded = toRecordedEvent(entry.sealed!);
      entry.sealed = undefined;
    }
    return { event: entry.recorded, bytes: entry.bytes };
  }

  /** Forgets the events at or below `position` (every subscription has handled them). */
  dropThrough(position: number): void {
    for (const [at, entry] of this.entries) {
      // mostly in position order (commits); a stray older entry read from the table goes by size
      if (at > position) break;
      this.entries.delete(at);
      this.bytes -= entry.bytes;
    }
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS events (
  position INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  stream TEXT NOT NULL,
  revision INTEGER NOT NULL,
  type TEXT NOT NULL,
  schema_version INTEGER NOT NULL,
  occurred_at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  correlation_id TEXT NOT NULL,
  causation_id TEXT,
  trace_id TEXT,
  reason TEXT,
  data TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  UNIQUE (stream, revision)
) STRICT;
CREATE TABLE IF NOT EXISTS chain_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  position INTEGER NOT NULL,
  hash TEXT NOT NULL
) STRICT;
INSERT OR IGNORE INTO chain_head (id, position, hash) VALUES (1, 0, '${GENESIS_HASH}');
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '${EVENT_LOG_SCHEMA_VERSION}');
`;

interface EventRow {
  readonly position: number;
  readonly id: string;
  readonly stream: string;
  readonly revision: number;
  readonly type: string;
  readonly schema_version: number;
  readonly occurred_at: number;
  readonly actor: string;
  readonly correlation_id: string;
  readonly causation_id: string | null;
  readonly trace_id: string | null;
  readonly reason: string | null;
  readonly data: string;
  readonly prev_hash: string;
  readonly hash: string;
}

interface ChainHead {
  readonly position: number;
  readonly hash: string;
}

type InsertParams = [
  position: number,
  id: string,
  stream: string,
  revision: number,
  type: string,
  schemaVersion: number,
  occurredAt: number,
  actor: string,
  correlationId: string,
  causationId: string | null,
  traceId: string | null,
  reason: string | null,
  data: string,
  prevHash: string,
  hash: string,
];

interface PendingAppend {
  readonly writes: readonly PreparedWrite[];
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

type Outcome =
  | { readonly ok: true; readonly result: AppendResult }
  | { readonly ok: false; readonly error: unknown };

function rowToSealed(row: EventRow): SealedEvent {
  return {
    fields: {
      id: row.id,
      stream: row.stream,
      revision: row.revision,
      position: row.position,
      type: row.type,
      schemaVersion: row.schema_version,
      occurredAt: row.occurred_at,
      actor: row.actor,
      correlationId: row.correlation_id,
      causationId: row.causation_id,
      traceId: row.trace_id,
      reason: row.reason,
      dataJson: row.data,
      prevHash: row.prev_hash,
    },
    hash: row.hash,
  };
}

/**
 * Duck-typed rather than `instanceof SqliteError`: when better-sqlite3 is loaded twice in one
 * process (jest module registries, bundles), errors carry the class of whichever copy loaded the
 * native addon first.
 */
function isUniqueViolationOf(error: unknown, column: string): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return (
    code === 'SQLITE_CONSTRAINT_UNIQUE' && typeof message === 'string' && message.includes(column)
  );
}

const EVENT_COLUMNS =
  'position, id, stream, revision, type, schema_version, occurred_at, actor, correlation_id, causation_id, trace_id, reason, data, prev_hash, hash';

function prepareReadStatements(db: Database.Database) {
  return {
    selectHead: db.prepare<[], ChainHead>('SELECT position, hash FROM chain_head WHERE id = 1'),
    selectRevision: db
      .prepare<[string], number | null>('SELECT MAX(revision) FROM events WHERE stream = ?')
      .pluck(),
    selectStream: db.prepare<[string, number, number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?`,
    ),
    selectAll: db.prepare<[number, number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?`,
    ),
    selectAllForVerify: db.prepare<[], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events ORDER BY position`,
    ),
    selectIdAt: db.prepare<[number], string>('SELECT id FROM events WHERE position = ?').pluck(),
  };
}
type ReadStatements = ReturnType<typeof prepareReadStatements>;

function prepareWriteStatements(db: Database.Database) {
  return {
    insertEvent: db.prepare<InsertParams>(
      `INSERT INTO events (${EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    updateHead: db.prepare<[number, string]>(
      'UPDATE chain_head SET position = ?, hash = ? WHERE id = 1',
    ),
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    savepoint: db.prepare('SAVEPOINT append_request'),
    rollbackToSavepoint: db.prepare('ROLLBACK TO append_request'),
    releaseSavepoint: db.prepare('RELEASE append_request'),
  };
}
type WriteStatements = ReturnType<typeof prepareWriteStatements>;

/**
 * The event log in one SQLite file (WAL). One connection does all writing: concurrent appends are
 * queued and committed together in a single transaction on the next turn of the event loop
 * (group commit), each inside its own savepoint so that one request's conflict or error writes
 * nothing of that request while the others commit. Promises settle only after COMMIT returns
 * and, at synchronous `full`, after the WAL file has been fsynced (in libuv's thread pool: the
 * next group commit may run meanwhile, and one fsync covers every commit made before it starts).
 */
export class SqliteEventStore implements EventStore {
  private readonly db: Database.Database;
  private readonly readonly: boolean;
  private readonly notifier = new AppendNotifier();
  private readonly subscriptions = new Set<CatchUpSubscription>();
  private readonly pollIntervalMs: number;
  private queue: PendingAppend[] = [];
  private readonly recent = new RecentEvents(RECENT_EVENT_BYTES);
  private flushTimer: NodeJS.Immediate | undefined;
  private closed = false;
  /** synchronous `full`: commits are acknowledged after an fsync of the WAL file (syncWal). */
  private readonly syncCommits: boolean;
  /** Commits waiting for the next WAL fsync, and the loop running those fsyncs (if any). */
  private unsynced: { readonly synced: () => void; readonly failed: (e: unknown) => void }[] = [];
  private syncLoop: Promise<void> | undefined;
  private wal: FileHandle | undefined;

  private readonly sql: ReadStatements;
  /** Undefined when opened read-only. */
  private readonly writeSql: WriteStatements | undefined;

  constructor(options: SqliteEventStoreOptions) {
    this.readonly = options.readonly ?? false;
    this.syncCommits = !this.readonly && options.synchronous !== 'normal';
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.db = new Database(options.path, {
      readonly: this.readonly,
      fileMustExist: this.readonly,
      timeout: busyTimeoutMs,
    });
    try {
      this.db.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
      if (!this.readonly) {
        this.db.pragma('journal_mode = WAL');
        // `full` is NORMAL plus our own fsync of the WAL after each commit (see syncWal)
        this.db.pragma('synchronous = NORMAL');
        // large metric batches: checkpoint every ~64 MB of WAL instead of every ~4 MB
        this.db.pragma('wal_autocheckpoint = 16384');
        this.db.transaction(() => this.db.exec(SCHEMA)).immediate();
      }
      this.checkSchemaVersion(options.path);

      this.sql = prepareReadStatements(this.db);
      this.writeSql = this.readonly ? undefined : prepareWriteStatements(this.db);
    } catch (error: unknown) {
      this.db.close();
      throw error;
    }
  }

  /** The file this store reads and writes. */
  get path(): string {
    return this.db.name;
  }

  async append(
    stream: string,
    expectedRevision: ExpectedRevision,
    events: readonly NewEvent[],
  ): Promise<AppendResult> {
    return this.appendMulti([{ stream, expectedRevision, events }]);
  }

  appendMulti(writes: readonly StreamWrite[]): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      if (this.closed) throw new Error('event store is closed');
      if (this.readonly) throw new Error(`event log ${this.db.name} is open read-only`);
      this.queue.push({ writes: prepareWrites(writes), resolve, reject });
      // setImmediate, not a microtask: appends issued by other I/O callbacks in this turn of the
      // event loop join the same transaction, which is what makes group commit pay off.
      this.flushTimer ??= setImmediate(() => this.flush());
    });
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    checkMaxCount(options.maxCount);
    const rows = this.sql.selectStream.all(
      stream,
      Math.max(0, options.fromRevision ?? 0),
      options.maxCount ?? -1,
    );
    return rows.map((row) => toRecordedEvent(rowToSealed(row)));
  }

  async streamRevision(stream: string): Promise<number> {
    return this.sql.selectRevision.get(stream) ?? -1;
  }

  async readAll(afterPosition: number, maxCount?: number): Promise<RecordedEvent[]> {
    checkMaxCount(maxCount);
    // A page stops early once it holds READ_PAGE_BYTES of event data (always at least one event):
    // a thousand metric batches of 10k points each would otherwise be hundreds of MB in memory.
    const out: RecordedEvent[] = [];
    let bytes = 0;
    const limit = maxCount ?? Infinity;
    let after = Math.max(0, afterPosition);
    // recent events first (parsed once, shared by every subscription), then the table
    for (
      let hit = this.recent.get(after + 1);
      hit !== undefined;
      hit = this.recent.get(after + 1)
    ) {
      if (out.length >= limit || bytes >= READ_PAGE_BYTES) return out;
      out.push(hit.event);
      bytes += hit.bytes;
      after += 1;
    }
    if (out.length >= limit || bytes >= READ_PAGE_BYTES) return out;
    const remaining = maxCount === undefined ? -1 : maxCount - out.length;
    for (const row of this.sql.selectAll.iterate(after, remaining)) {
      const sealed = rowToSealed(row);
      const event = toRecordedEvent(sealed);
      this.recent.add(sealed, event);
      out.push(event);
      bytes += row.data.length;
      if (bytes >= READ_PAGE_BYTES) break;
    }
    return out;
  }

  async headPosition(): Promise<number> {
    // Read, not cached: another process may have appended to the same file.
    return this.readHead().position;
  }

  subscribe(
    afterPosition: number,
    handler: SubscriptionHandler,
    options?: SubscribeOptions,
  ): Subscription {
    if (this.closed) throw new Error('event store is closed');
    const subscription = new CatchUpSubscription(
      {
        readAll: (after, max) => this.readAll(after, max),
        notifier: this.notifier,
        pollIntervalMs: this.pollIntervalMs,
      },
      afterPosition,
      handler,
      options,
    );
    this.subscriptions.add(subscription);
    void subscription.stopped.then(() => this.subscriptions.delete(subscription));
    return subscription;
  }

  async verify(): Promise<ChainVerification> {
    // One read transaction, so the rows and the stored head are the same snapshot.
    return this.db.transaction(() => this.verifySnapshot()).deferred();
  }

  /** Commits queued appends, stops subscriptions after their in-flight batch, and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer !== undefined) {
      clearImmediate(this.flushTimer);
      this.flush();
    }
    await Promise.allSettled([...this.subscriptions].map((s) => s.close()));
    this.recent.clear();
    await this.syncLoop;
    await this.wal?.close().catch(() => undefined);
    this.db.close();
  }

  private checkSchemaVersion(path: string): void {
    let version: string | undefined;
    try {
      version = this.db
        .prepare<[], string>("SELECT value FROM meta WHERE key = 'schema_version'")
        .pluck()
        .get();
    } catch (error: unknown) {
      throw new Error(`${path} is not a Ledgerflow event log`, { cause: error });
    }
    if (version !== String(EVENT_LOG_SCHEMA_VERSION)) {
      throw new Error(
        `${path} has event log schema version ${version ?? 'none'}; this build understands ${EVENT_LOG_SCHEMA_VERSION}`,
      );
    }
  }

  private readHead(): ChainHead {
    return this.sql.selectHead.get() ?? { position: 0, hash: GENESIS_HASH };
  }

  /** Writes every queued append in one transaction; synchronous, so no read ever sees it half done. */
  private flush(): void {
    this.flushTimer = undefined;
    const requests = this.queue;
    this.queue = [];
    if (requests.length === 0) return;

    const sql = this.writeSql;
    const outcomes: Outcome[] = [];
    const committed: SealedEvent[] = [];
    let startHead: ChainHead;
    let head: ChainHead;
    try {
      if (sql === undefined) throw new Error(`event log ${this.db.name} is open read-only`);
      sql.begin.run();
      // Read inside the write lock rather than cached: one primary-key lookup per group commit,
      // and correct even if another process appended to the same file.
      startHead = this.readHead();
      head = startHead;
      const revisions = new Map<string, number>();
      for (const request of requests) {
        sql.savepoint.run();
        try {
          const applied = this.applyRequest(sql, request.writes, head, revisions);
          sql.releaseSavepoint.run();
          for (const sealed of applied.sealed) committed.push(sealed);
          head = applied.head;
          for (const [stream, revision] of applied.result.revisions)
            revisions.set(stream, revision);
          outcomes.push({ ok: true, result: applied.result });
        } catch (error: unknown) {
          // SQLite rolls the whole transaction back on some errors (I/O, disk full); carrying on
          // would write the remaining requests outside any transaction.
          if (!this.db.inTransaction) throw error;
          sql.rollbackToSavepoint.run();
          sql.releaseSavepoint.run();
          outcomes.push({ ok: false, error });
        }
      }
      if (head.position !== startHead.position) sql.updateHead.run(head.position, head.hash);
      sql.commit.run();
    } catch (error: unknown) {
      // Nothing of this flush is durable, so no request in it may be acknowledged.
      try {
        if (this.db.inTransaction) sql?.rollback.run();
      } catch {
        // The flush's own error is what the callers need; a failed rollback resurfaces on the next BEGIN.
      }
      for (const request of requests) request.reject(error);
      return;
    }
    // keep only what some subscription of this store has yet to read (within the size bound)
    let handled = Infinity;
    for (const subscription of this.subscriptions)
      handled = Math.min(handled, subscription.position);
    if (this.subscriptions.size > 0) this.recent.dropThrough(handled);
    for (const sealed of committed) this.recent.add(sealed);
    const settle = (): void =>
      requests.forEach((request, i) => {
        const outcome = outcomes[i]!;
        if (outcome.ok) request.resolve(outcome.result);
        else request.reject(outcome.error);
      });
    if (this.syncCommits && head.position !== startHead.position) {
      // acknowledged once durable; an fsync that fails leaves the durability of these commits
      // unknown, so their callers get the error (a resent batch is recognised by its id)
      this.unsynced.push({
        synced: settle,
        failed: (error) => requests.forEach((request) => request.reject(error)),
      });
      this.syncLoop ??= this.runSyncs();
    } else settle();
    if (head.position !== startHead.position) this.notifier.notify();
  }

  /** fsyncs the WAL until no commit waits for it; each fsync covers every commit made before it. */
  private async runSyncs(): Promise<void> {
    try {
      while (this.unsynced.length > 0) {
        const waiting = this.unsynced;
        this.unsynced = [];
        try {
          await this.syncWal();
        } catch (error: unknown) {
          for (const w of waiting) w.failed(error);
          continue;
        }
        for (const w of waiting) w.synced();
      }
    } finally {
      this.syncLoop = undefined;
    }
  }

  /**
   * fdatasync of the WAL file: what synchronous=FULL does inside COMMIT, but in the thread pool.
   * The file stays while this connection is open; it is reopened if it was ever replaced.
   */
  private async syncWal(): Promise<void> {
    const walPath = `${this.db.name}-wal`;
    if (this.wal !== undefined) {
      const [held, current] = await Promise.all([this.wal.stat(), stat(walPath)]);
      if (held.ino !== current.ino || held.dev !== current.dev) {
        await this.wal.close().catch(() => undefined);
        this.wal = undefined;
      }
    }
    this.wal ??= await openFile(walPath, 'r');
    await this.wal.datasync();
  }

  /** Checks and inserts one request inside its savepoint; throws to have the savepoint rolled back. */
  private applyRequest(
    sql: WriteStatements,
    writes: readonly PreparedWrite[],
    startHead: ChainHead,
    flushRevisions: ReadonlyMap<string, number>,
  ): { result: AppendResult; head: ChainHead; sealed: SealedEvent[] } {
    // Every expectation is checked before the first insert: a conflict costs no rollback work.
    const checked = writes.map((write) => {
      const actual =
        flushRevisions.get(write.stream) ?? this.sql.selectRevision.get(write.stream) ?? -1;
      if (!revisionMatches(write.expectedRevision, actual)) {
        throw new WrongExpectedRevisionError(write.stream, write.expectedRevision, actual);
      }
      return { write, actual };
    });
    const events: RecordedEvent[] = [];
    const sealedEvents: SealedEvent[] = [];
    const revisions = new Map<string, number>();
    let { position, hash } = startHead;
    for (const { write, actual } of checked) {
      let revision = actual;
      for (const prepared of write.events) {
        revision += 1;
        position += 1;
        const sealed = sealEvent(prepared, write.stream, revision, position, hash);
        this.insert(sql, sealed);
        hash = sealed.hash;
        events.push(toRecordedEvent(sealed, prepared.event.data));
        sealedEvents.push(sealed);
      }
      revisions.set(write.stream, revision);
    }
    return {
      result: { events, lastPosition: position, revisions },
      head: { position, hash },
      sealed: sealedEvents,
    };
  }

  private insert(sql: WriteStatements, sealed: SealedEvent): void {
    const f = sealed.fields;
    try {
      sql.insertEvent.run(
        f.position,
        f.id,
        f.stream,
        f.revision,
        f.type,
        f.schemaVersion,
        f.occurredAt,
        f.actor,
        f.correlationId,
        f.causationId,
        f.traceId,
        f.reason,
        f.dataJson,
        f.prevHash,
        sealed.hash,
      );
    } catch (error: unknown) {
      if (isUniqueViolationOf(error, 'events.id')) {
        throw new DuplicateEventIdError(f.id);
      }
      throw error;
    }
  }

  private verifySnapshot(): ChainVerification {
    // Read before iterating: the connection cannot run another statement while a cursor is open.
    const storedHead = this.sql.selectHead.get();
    let last: SealedEvent | undefined;
    const statement = this.sql.selectAllForVerify;
    function* sealedRows(): Generator<SealedEvent> {
      for (const row of statement.iterate()) {
        last = rowToSealed(row);
        yield last;
      }
    }
    const result = verifyChain(sealedRows());
    if (!result.ok) return result;
    if (storedHead === undefined) {
      return {
        ok: false,
        count: result.count,
        position: result.headPosition,
        eventId: last?.fields.id ?? null,
        reason: 'the chain_head record is missing',
      };
    }
    if (storedHead.position > result.headPosition) {
      return {
        ok: false,
        count: result.count,
        position: result.headPosition + 1,
        eventId: null,
        reason: `events after position ${result.headPosition} are missing (chain head says ${storedHead.position})`,
      };
    }
    if (storedHead.position < result.headPosition) {
      const position = storedHead.position + 1;
      return {
        ok: false,
        count: result.count,
        position,
        eventId: this.sql.selectIdAt.get(position) ?? null,
        reason: `event is beyond the chain head (chain head says ${storedHead.position}): appended outside the store`,
      };
    }
    if (storedHead.hash !== result.headHash) {
      return {
        ok: false,
        count: result.count,
        position: result.headPosition,
        eventId: last?.fields.id ?? null,
        reason: 'the chain head hash does not match the last event',
      };
    }
    return result;
  }
}

/** Opens an existing event log file read-only (no writer lock taken) and verifies its hash chain. */
export async function verifyEventLogFile(path: string): Promise<ChainVerification> {
  const store = new SqliteEventStore({ path, readonly: true });
  try {
    return await store.verify();
  } finally {
    await store.close();
  }
}
