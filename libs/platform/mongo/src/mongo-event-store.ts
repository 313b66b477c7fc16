import { computeEventHash, GENESIS_HASH } from '@ledgerflow/contracts';
import type { ChainVerification, NewEvent } from '@ledgerflow/contracts';
import {
  AppendNotifier,
  CatchUpSubscription,
  checkMaxCount,
  DuplicateEventIdError,
  prepareWrites,
  revisionMatches,
  sealEvent,
  toRecordedEvent,
  WrongExpectedRevisionError,
} from '@ledgerflow/event-store';
import type {
  AppendResult,
  EventStore,
  ExpectedRevision,
  ReadStreamOptions,
  SealedEvent,
  StreamWrite,
  SubscribeOptions,
  Subscription,
  SubscriptionHandler,
} from '@ledgerflow/event-store';
import type { RecordedEvent } from '@ledgerflow/contracts';
import { SerialQueue } from '@ledgerflow/projections';
import { BSON } from 'mongodb';
import type { Collection } from 'mongodb';
import {
  DEFAULT_RETRY_FOR_MS,
  isDuplicateKeyOnly,
  isTransient,
  openMongo,
  retryTransient,
} from './mongo-connection.js';
import type { MongoHandle, MongoTarget } from './mongo-connection.js';

export interface MongoEventStoreOptions extends MongoTarget {
  /** Prefix of the two collections (`<prefix>_commits`, `<prefix>_events`); default `ledger`. */
  readonly collectionPrefix?: string;
  /**
   * How often an idle subscription re-reads the log for appends made by other processes (in-process
   * appends wake it at once). Default 200 ms.
   */
  readonly pollIntervalMs?: number;
  /** How long an operation keeps retrying while the server is unreachable; default 60 s. */
  readonly retryForMs?: number;
  /** Event data (JSON characters) after which a readAll page ends early; default 16 MiB. */
  readonly readPageBytes?: number;
}

/** One stored event: `_id` is its log position, `data` the exact JSON text its hash covers. */
export interface EventDocument {
  _id: number;
  id: string;
  stream: string;
  revision: number;
  type: string;
  schemaVersion: number;
  occurredAt: number;
  actor: string;
  correlationId: string;
  causationId: string | null;
  traceId: string | null;
  reason: string | null;
  data: string;
  prevHash: string;
  hash: string;
}

/**
 * The primary key of a log position: its decimal digits, zero-padded to 16 (string order is log
 * order). A string because FerretDB's SQLite backend pushes `{_id: value}` down to SQLite only for
 * string and ObjectId keys; a numeric `_id` is found by scanning the collection.
 */
export function positionKey(position: number): string {
  return String(position).padStart(16, '0');
}

/**
 * One append: `_id` is the key of the position of its first event, so two writers that read the
 * same log head claim the same `_id` and the unique primary key lets exactly one of them commit.
 */
export interface CommitDocument {
  _id: string;
  /** Position of its first event. */
  first: number;
  last: number;
  prevHash: string;
  hash: string;
  events: EventDocument[];
}

/** Event data (JSON characters) per readAll page, beyond which the page ends early. */
const READ_PAGE_BYTES = 16 * 1024 * 1024;

/** An event as stored in the events collection: with the span of the commit it came from. */
export interface StoredEvent extends Omit<EventDocument, '_id'> {
  /** positionKey(position) */
  _id: string;
  position: number;
  /** First position of the commit holding this event. */
  commit: number;
  /** Last position of that commit. */
  commitLast: number;
}

/** `_id` = JSON `[stream, revision]`: the unique (stream, revision) key, found by primary key. */
export interface StreamRevisionDocument {
  _id: string;
  position: number;
}

/** `_id` = event id: the unique event-id key, found by primary key. */
export interface EventIdDocument {
  _id: string;
  position: number;
}

/** The copied end of the log: its last event and the span of the commit that event came from. */
interface Tail {
  readonly position: number;
  readonly hash: string;
  readonly commit: number;
  readonly commitLast: number;
}

/** Version of how the log is stored (2: string position keys and key collections). */
const EVENT_LOG_LAYOUT = 2;

/**
 * Records the storage layout in `<prefix>_meta` for a new log, and refuses a log written with
 * another one rather than misread it.
 */
async function checkLayout(
  handle: MongoHandle,
  prefix: string,
  commits: Collection<CommitDocument>,
): Promise<void> {
  const meta = handle.db.collection<{ _id: string; version: number }>(`${prefix}_meta`);
  const stored = await meta.findOne({ _id: 'layout' });
  if (stored === null) {
    if ((await commits.findOne({}, { projection: { _id: 1 } })) !== null) {
      throw new Error(
        `the event log in ${handle.db.databaseName}.${prefix}_commits was written by an older Ledgerflow (no layout record): copy it with \`ledgerflow migrate\` from its source, or start from an empty database`,
      );
    }
    try {
      await meta.insertOne({ _id: 'layout', version: EVENT_LOG_LAYOUT });
    } catch (error) {
      if (!isDuplicateKeyOnly(error)) throw error;
    }
    return;
  }
  if (stored.version !== EVENT_LOG_LAYOUT) {
    throw new Error(
      `the event log in ${handle.db.databaseName} has storage layout ${stored.version}; this version reads layout ${EVENT_LOG_LAYOUT}`,
    );
  }
}

/** Streams whose last revision an instance remembers. */
const MAX_CACHED_STREAMS = 100_000;

/** Point lookups in flight at once when a read fetches many documents by primary key. */
const LOOKUP_WINDOW = 64;

function streamKey(stream: string, revision: number): string {
  return JSON.stringify([stream, revision]);
}

/** Largest commit (in BSON bytes) accepted into one 16 MB document, leaving room for the envelope. */
const MAX_COMMIT_BYTES = 15 * 1024 * 1024;

function toDocument(sealed: SealedEvent): EventDocument {
  const f = sealed.fields;
  return {
    _id: f.position,
    id: f.id,
    stream: f.stream,
    revision: f.revision,
    type: f.type,
    schemaVersion: f.schemaVersion,
    occurredAt: f.occurredAt,
    actor: f.actor,
    correlationId: f.correlationId,
    causationId: f.causationId,
    traceId: f.traceId,
    reason: f.reason,
    data: f.dataJson,
    prevHash: f.prevHash,
    hash: sealed.hash,
  };
}

function fromStored(doc: StoredEvent): EventDocument {
  const { position, commit: _commit, commitLast: _commitLast, ...rest } = doc;
  return { ...rest, _id: position };
}

function storedToRecorded(doc: StoredEvent): RecordedEvent {
  return toRecordedEvent(toSealed(fromStored(doc)));
}

function toSealed(doc: EventDocument): SealedEvent {
  return {
    fields: {
      id: doc.id,
      stream: doc.stream,
      revision: doc.revision,
      position: doc._id,
      type: doc.type,
      schemaVersion: doc.schemaVersion,
      occurredAt: doc.occurredAt,
      actor: doc.actor,
      correlationId: doc.correlationId,
      causationId: doc.causationId ?? null,
      traceId: doc.traceId ?? null,
      reason: doc.reason ?? null,
      dataJson: doc.data,
      prevHash: doc.prevHash,
    },
    hash: doc.hash,
  };
}

/** A commit this writer sent, and what its append returns once it is known to have landed. */
interface Sent {
  readonly commit: CommitDocument;
  readonly result: AppendResult;
}

/** A WrongExpectedRevisionError or DuplicateEventIdError: the append cannot succeed on a retry. */
class Rejected {
  constructor(readonly error: Error) {}
}

/**
 * The event log on MongoDB (or a wire-compatible server such as FerretDB), with no multi-document
 * transactions and no reliance on atomic read-modify-write updates (docs/adr/0007-mongodb-event-store.md).
 *
 * Every append is one insert of a commit document into `<prefix>_commits`: its `_id` is the position
 * of its first event (the last commit's `last + 1`), it carries its sealed events and the hash-chain
 * link. The unique primary key is the commit point: it orders appends totally, so two writers that
 * read the same head cannot both commit. The events are then copied into `<prefix>_events` (`_id` =
 * position, unique `(stream, revision)`, unique event id), which serves stream and log reads. A
 * writer that dies before or during that copy leaves a committed but uncopied tail; the next reader
 * or writer finishes the copy before it reads or appends. Expected revisions are checked against the
 * events collection after that roll-forward; a writer whose commit insert loses re-reads and
 * re-checks.
 */
export class MongoEventStore implements EventStore {
  private readonly notifier = new AppendNotifier();
  private readonly subscriptions = new Set<CatchUpSubscription>();
  /** In-process appends run one at a time; other processes are ordered by the commit key. */
  private readonly queue = new SerialQueue();
  /**
   * The copied end of the log as this instance last saw it (undefined until first looked up): every
   * event up to `position` is in the events collection, `hash` is the last one's, `commitLast` the
   * last position of the commit it belongs to (beyond `position` when that copy was cut short).
   */
  private tail: Tail | undefined;
  /** Last known revision of recently used streams (never ahead of the log; probed forward). */
  private readonly revisions = new Map<string, number>();
  private closed = false;

  private constructor(
    private readonly handle: MongoHandle,
    private readonly commits: Collection<CommitDocument>,
    private readonly events: Collection<StoredEvent>,
    private readonly streams: Collection<StreamRevisionDocument>,
    private readonly eventIds: Collection<EventIdDocument>,
    private readonly pollIntervalMs: number,
    private readonly retryForMs: number,
    private readonly readPageBytes: number,
  ) {}

  /** Connects (when given a URI) and creates the indexes if absent. */
  static async open(options: MongoEventStoreOptions): Promise<MongoEventStore> {
    const handle = await openMongo(options);
    try {
      const prefix = options.collectionPrefix ?? 'ledger';
      const commits = handle.db.collection<CommitDocument>(`${prefix}_commits`);
      const events = handle.db.collection<StoredEvent>(`${prefix}_events`);
      const streams = handle.db.collection<StreamRevisionDocument>(`${prefix}_stream_revisions`);
      const eventIds = handle.db.collection<EventIdDocument>(`${prefix}_event_ids`);
      await events.createIndex(
        { stream: 1, revision: 1 },
        { unique: true, name: 'stream_revision' },
      );
      await events.createIndex({ id: 1 }, { unique: true, name: 'event_id' });
      await checkLayout(handle, prefix, commits);
      return new MongoEventStore(
        handle,
        commits,
        events,
        streams,
        eventIds,
        options.pollIntervalMs ?? 200,
        options.retryForMs ?? DEFAULT_RETRY_FOR_MS,
        options.readPageBytes ?? READ_PAGE_BYTES,
      );
    } catch (error) {
      await handle.release();
      throw error;
    }
  }

  async append(
    stream: string,
    expectedRevision: ExpectedRevision,
    events: readonly NewEvent[],
  ): Promise<AppendResult> {
    return this.appendMulti([{ stream, expectedRevision, events }]);
  }

  async appendMulti(writes: readonly StreamWrite[]): Promise<AppendResult> {
    this.assertOpen();
    const prepared = prepareWrites(writes);
    return this.queue.run(async () => {
      this.assertOpen();
      // The commit this call sent last: after a lost connection it may or may not have landed.
      let sent: Sent | undefined;
      const deadline = Date.now() + this.retryForMs;
      for (let attempt = 0; ; attempt += 1) {
        try {
          if (sent !== undefined) {
            const stored = await this.commits.findOne(
              { _id: sent.commit._id },
              { projection: { hash: 1 } },
            );
            if (stored?.hash === sent.commit.hash) {
              await this.settle();
              this.notifier.notify();
              return sent.result;
            }
            sent = undefined;
          }
          const outcome = await this.tryAppend(prepared, (s) => (sent = s));
          if (outcome instanceof Rejected) throw outcome.error;
          if (outcome !== undefined) {
            this.notifier.notify();
            return outcome;
          }
          sent = undefined;
        } catch (error) {
          // The server went away (restart, failover): try again until it is back, then find out
          // whether the commit sent before the failure landed.
          if (!isTransient(error) || Date.now() >= deadline) throw error;
        }
        // Another process committed first, or the server was unreachable: re-read and re-check.
        // A short, growing, jittered pause keeps contending writers from retrying in lock step.
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(50, attempt * 2) * Math.random()),
        );
      }
    });
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    checkMaxCount(options.maxCount);
    if (options.maxCount === 0) return [];
    return this.retrying(async () => {
      await this.settle();
      const last = await this.revisionOf(stream);
      const from = Math.max(0, options.fromRevision ?? 0);
      const to =
        options.maxCount === undefined ? last : Math.min(last, from + options.maxCount - 1);
      const revisions = Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
      const keys = await this.lookup(revisions, (r) =>
        this.streams.findOne({ _id: streamKey(stream, r) }),
      );
      const positions = keys.map((k, i) => {
        if (k === null) throw new Error(`stream '${stream}' has no revision ${revisions[i]!}`);
        return k.position;
      });
      return (await this.eventsAt(positions)).map(storedToRecorded);
    });
  }

  async streamRevision(stream: string): Promise<number> {
    return this.retrying(async () => {
      await this.settle();
      return this.revisionOf(stream);
    });
  }

  async readAll(afterPosition: number, maxCount?: number): Promise<RecordedEvent[]> {
    checkMaxCount(maxCount);
    if (maxCount === 0) return [];
    return this.retrying(async () => {
      const head = await this.settle();
      const from = Math.max(0, afterPosition) + 1;
      const to = Math.min(head.position, maxCount === undefined ? Infinity : from + maxCount - 1);
      // A page stops early once it holds readPageBytes of event data (always at least one event):
      // a thousand metric batches would otherwise be hundreds of MB in memory at once.
      const page: RecordedEvent[] = [];
      let bytes = 0;
      for (let start = from; start <= to && bytes < this.readPageBytes; start += LOOKUP_WINDOW) {
        const end = Math.min(to, start + LOOKUP_WINDOW - 1);
        const positions = Array.from({ length: end - start + 1 }, (_, i) => start + i);
        for (const doc of await this.eventsAt(positions)) {
          page.push(storedToRecorded(doc));
          bytes += doc.data.length;
          if (bytes >= this.readPageBytes) break;
        }
      }
      return page;
    });
  }

  async headPosition(): Promise<number> {
    return this.retrying(async () => (await this.settle()).position);
  }

  subscribe(
    afterPosition: number,
    handler: SubscriptionHandler,
    options?: SubscribeOptions,
  ): Subscription {
    this.assertOpen();
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

  /**
   * Re-hashes the events collection up to the head and checks it against the commit documents:
   * every commit's events must be stored exactly, and the last commit's hash must end the chain.
   */
  async verify(): Promise<ChainVerification> {
    return this.retrying(() => this.verifyOnce());
  }

  /**
   * Walks the commit documents by primary key (each starts where the previous one ended) and the
   * events they hold: the chain checks of verifyChain, plus every stored event equal to the one its
   * commit holds. Constant memory.
   */
  private async verifyOnce(): Promise<ChainVerification> {
    const head = await this.settle();
    let expected = 1;
    let prev = GENESIS_HASH;
    let count = 0;
    let lastId: string | null = null;
    const broken = (
      position: number,
      eventId: string | null,
      reason: string,
    ): ChainVerification => ({
      ok: false,
      count,
      position,
      eventId,
      reason,
    });
    while (expected <= head.position) {
      const commit = await this.commits.findOne({ _id: positionKey(expected) });
      if (commit === null)
        return broken(expected, null, `no commit starts at position ${expected}`);
      const positions = commit.events.map((e) => e._id);
      const stored = await this.lookup(positions, (p) =>
        this.events.findOne({ _id: positionKey(p) }),
      );
      for (const [i, committed] of commit.events.entries()) {
        const doc = stored[i];
        if (doc === null || doc === undefined || committed._id !== expected) {
          return broken(
            expected,
            null,
            `event at position ${expected} is missing (last commit ends at ${head.position})`,
          );
        }
        const { fields, hash } = toSealed(fromStored(doc));
        if (fields.prevHash !== prev) {
          return broken(
            expected,
            fields.id,
            `prev_hash does not link to the hash of position ${expected - 1}`,
          );
        }
        if (computeEventHash(fields) !== hash) {
          return broken(
            expected,
            fields.id,
            'content does not match its hash (the event was edited)',
          );
        }
        if (committed.hash !== hash) {
          return broken(
            expected,
            fields.id,
            `event at position ${expected} differs from its commit document`,
          );
        }
        prev = hash;
        lastId = fields.id;
        expected += 1;
        count += 1;
      }
    }
    if (prev !== head.hash) {
      return broken(head.position, lastId, 'the last commit hash does not match the last event');
    }
    const beyond = await this.events.findOne({ _id: positionKey(head.position + 1) });
    if (beyond !== null) {
      return broken(
        beyond.position,
        beyond.id,
        `event is beyond the last commit (which ends at ${head.position}): appended outside the store`,
      );
    }
    return { ok: true, count, headPosition: head.position, headHash: prev };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.subscriptions].map((s) => s.close()));
    // Let an in-flight append finish before the client goes away.
    await this.queue.run(async () => undefined);
    await this.handle.release();
  }

  /**
   * One attempt: the append's result, a Rejected for a conflict that a retry cannot fix, or
   * undefined when another writer committed at the same position first.
   */
  private async tryAppend(
    prepared: ReturnType<typeof prepareWrites>,
    sending: (sent: Sent) => void,
  ): Promise<AppendResult | Rejected | undefined> {
    const head = await this.settle();
    const actual = new Map<string, number>();
    for (const write of prepared) {
      const revision = await this.revisionOf(write.stream);
      if (!revisionMatches(write.expectedRevision, revision)) {
        return new Rejected(
          new WrongExpectedRevisionError(write.stream, write.expectedRevision, revision),
        );
      }
      actual.set(write.stream, revision);
    }
    const ids = prepared.flatMap((w) => w.events.map((p) => p.event.id));
    const known = (await this.lookup(ids, (id) => this.eventIds.findOne({ _id: id }))).find(
      (doc) => doc !== null,
    );
    if (known !== undefined && known !== null)
      return new Rejected(new DuplicateEventIdError(known._id));

    let position = head.position;
    let hash = head.hash;
    const documents: EventDocument[] = [];
    const recorded: RecordedEvent[] = [];
    const revisions = new Map<string, number>();
    for (const write of prepared) {
      let revision = actual.get(write.stream)!;
      for (const p of write.events) {
        revision += 1;
        position += 1;
        const sealed = sealEvent(p, write.stream, revision, position, hash);
        hash = sealed.hash;
        documents.push(toDocument(sealed));
        recorded.push(toRecordedEvent(sealed, p.event.data));
      }
      revisions.set(write.stream, revision);
    }
    const commit: CommitDocument = {
      _id: positionKey(head.position + 1),
      first: head.position + 1,
      last: position,
      prevHash: head.hash,
      hash,
      events: documents,
    };
    const size = BSON.calculateObjectSize(commit);
    if (size > MAX_COMMIT_BYTES) {
      return new Rejected(
        new RangeError(
          `an append of ${size} bytes exceeds the ${MAX_COMMIT_BYTES} bytes one MongoDB commit document can hold: split it`,
        ),
      );
    }
    const result: AppendResult = { events: recorded, lastPosition: position, revisions };
    sending({ commit, result });
    try {
      await this.commits.insertOne(commit);
    } catch (error) {
      if (!isDuplicateKeyOnly(error)) throw error;
      // Someone else's commit holds the position, unless it is this one, sent again after a
      // connection dropped before its acknowledgement.
      const stored = await this.commits.findOne({ _id: commit._id }, { projection: { hash: 1 } });
      if (stored?.hash !== commit.hash) return undefined;
    }
    await this.copy(commit, head.position);
    this.tail = {
      position: commit.last,
      hash: commit.hash,
      commit: commit.first,
      commitLast: commit.last,
    };
    return result;
  }

  /**
   * Finds the log head and finishes copying committed events into the events collection where a
   * writer (this one or a crashed one) has not: afterwards the events collection holds exactly
   * positions 1..head. Only primary-key lookups (a MongoDB-wire server such as FerretDB on SQLite
   * pushes nothing else down): one lookup when nothing new was committed.
   */
  private async settle(): Promise<{ position: number; hash: string }> {
    this.assertOpen();
    this.tail ??= await this.findTail();
    for (;;) {
      const tail: Tail = this.tail;
      // When the copy of the tail's commit was cut short, finish that one first.
      const next = await this.commits.findOne({
        _id: positionKey(tail.commitLast > tail.position ? tail.commit : tail.position + 1),
      });
      if (next === null) {
        if (tail.commitLast > tail.position) {
          throw new Error(`event log inconsistent: no commit holds position ${tail.position + 1}`);
        }
        return { position: tail.position, hash: tail.hash };
      }
      await this.copy(next, tail.position);
      this.tail = {
        position: next.last,
        hash: next.hash,
        commit: next.first,
        commitLast: next.last,
      };
    }
  }

  /**
   * The copied end of the log, for an instance that has not looked yet: the highest stored
   * position, by exponential then binary search on the primary key (events are stored as a
   * gapless prefix of the log).
   */
  private async findTail(): Promise<Tail> {
    const at = (p: number): Promise<StoredEvent | null> =>
      this.events.findOne({ _id: positionKey(p) });
    let found = await at(1);
    if (found === null) return { position: 0, hash: GENESIS_HASH, commit: 0, commitLast: 0 };
    let low = 1;
    let high = 2;
    for (;;) {
      const probe = await at(high);
      if (probe === null) break;
      found = probe;
      low = high;
      high *= 2;
    }
    // low exists, high does not
    while (high - low > 1) {
      const mid = Math.floor((low + high) / 2);
      const probe = await at(mid);
      if (probe === null) high = mid;
      else {
        low = mid;
        found = probe;
      }
    }
    if (found.position !== low) found = (await at(low))!;
    return {
      position: low,
      hash: found.hash,
      commit: found.commit ?? low,
      commitLast: found.commitLast ?? low,
    };
  }

  /**
   * Copies a commit's events after position `copied`: first their event-id and (stream, revision)
   * keys, then the events in order, so a stored event implies its keys. A duplicate key means a
   * concurrent copier got there first, which is fine as long as it holds this commit's event.
   */
  private async copy(commit: CommitDocument, copied: number): Promise<void> {
    const missing = commit.events.filter((e) => e._id > copied);
    if (missing.length === 0) return;
    // Already copied in full by someone else?
    const lastKey = positionKey(commit.last);
    if ((await this.events.findOne({ _id: lastKey }, { projection: { _id: 1 } })) !== null) {
      this.noteRevisions(commit);
      return;
    }
    await this.insertKeys(
      this.eventIds,
      missing.map((e) => ({ _id: e.id, position: e._id })),
    );
    await this.insertKeys(
      this.streams,
      missing.map((e) => ({ _id: streamKey(e.stream, e.revision), position: e._id })),
    );
    const stored: StoredEvent[] = missing.map((e) => ({
      ...e,
      _id: positionKey(e._id),
      position: e._id,
      commit: commit.first,
      commitLast: commit.last,
    }));
    try {
      await this.events.insertMany(stored, { ordered: true });
    } catch (error) {
      if (!isDuplicateKeyOnly(error)) throw error;
      const present = await this.lookup(
        stored.map((e) => e._id),
        (key) => this.events.findOne({ _id: key }, { projection: { hash: 1 } }),
      );
      const mismatch = stored.find((e, i) => present[i] !== null && present[i]!.hash !== e.hash);
      if (mismatch !== undefined) {
        throw new Error(
          `event log inconsistent: position ${mismatch.position} holds another event than its commit`,
          { cause: error },
        );
      }
      // A concurrent copier inserted part of it; insert the rest, in order.
      const rest = stored.filter((_, i) => present[i] === null);
      if (rest.length > 0)
        await this.events.insertMany(rest, { ordered: true }).catch((e: unknown) => {
          if (!isDuplicateKeyOnly(e)) throw e;
        });
    }
    this.noteRevisions(commit);
  }

  /** Inserts key documents; one already there must point at the same position. */
  private async insertKeys(
    collection: Collection<StreamRevisionDocument> | Collection<EventIdDocument>,
    keys: { _id: string; position: number }[],
  ): Promise<void> {
    try {
      await (collection as Collection<{ _id: string; position: number }>).insertMany(keys, {
        ordered: false,
      });
    } catch (error) {
      if (!isDuplicateKeyOnly(error)) throw error;
      const present = await this.lookup(keys, (k) =>
        (collection as Collection<{ _id: string; position: number }>).findOne({ _id: k._id }),
      );
      const clash = keys.find((k, i) => present[i] !== null && present[i]!.position !== k.position);
      if (clash !== undefined) {
        throw new Error(
          `event log inconsistent: key ${clash._id} of position ${clash.position} is taken by position ${present[keys.indexOf(clash)]!.position}`,
          { cause: error },
        );
      }
    }
  }

  private noteRevisions(commit: CommitDocument): void {
    for (const e of commit.events) {
      if ((this.revisions.get(e.stream) ?? -1) < e.revision)
        this.rememberRevision(e.stream, e.revision);
    }
  }

  private rememberRevision(stream: string, revision: number): void {
    this.revisions.delete(stream);
    this.revisions.set(stream, revision);
    // A bounded cache: the least recently stored streams go first.
    if (this.revisions.size > MAX_CACHED_STREAMS) {
      this.revisions.delete(this.revisions.keys().next().value!);
    }
  }

  /**
   * A stream's last revision (-1 when absent), by primary-key probes of its (stream, revision)
   * keys: forward from the cached revision, or an exponential then binary search for a stream this
   * instance has not seen. Call after settle(), so every committed event is copied.
   */
  private async revisionOf(stream: string): Promise<number> {
    const has = async (r: number): Promise<boolean> =>
      (await this.streams.findOne({ _id: streamKey(stream, r) }, { projection: { _id: 1 } })) !==
      null;
    let revision = this.revisions.get(stream);
    if (revision === undefined) {
      if (!(await has(0))) return -1;
      let low = 0;
      let step = 1;
      while (await has(low + step)) {
        low += step;
        step *= 2;
      }
      let high = low + step;
      while (high - low > 1) {
        const mid = Math.floor((low + high) / 2);
        if (await has(mid)) low = mid;
        else high = mid;
      }
      revision = low;
    } else {
      while (await has(revision + 1)) revision += 1;
    }
    this.rememberRevision(stream, revision);
    return revision;
  }

  /** Events at the given positions, in that order, by primary key; throws when one is missing. */
  private async eventsAt(positions: readonly number[]): Promise<StoredEvent[]> {
    const docs = await this.lookup(positions, (p) => this.events.findOne({ _id: positionKey(p) }));
    return docs.map((doc, i) => {
      if (doc === null)
        throw new Error(`event log inconsistent: no event at position ${positions[i]!}`);
      return doc;
    });
  }

  /** Runs `find` for every item, at most LOOKUP_WINDOW at a time; results in input order. */
  private async lookup<I, R>(items: readonly I[], find: (item: I) => Promise<R>): Promise<R[]> {
    const out: R[] = [];
    for (let i = 0; i < items.length; i += LOOKUP_WINDOW) {
      out.push(...(await Promise.all(items.slice(i, i + LOOKUP_WINDOW).map(find))));
    }
    return out;
  }

  private retrying<T>(operation: () => Promise<T>): Promise<T> {
    return retryTransient(operation, this.retryForMs);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('event store is closed');
  }
}
