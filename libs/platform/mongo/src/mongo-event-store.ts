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
 * One append: `_id` is the position of its first event, so two writers that read the same log head
 * claim the same `_id` and the unique primary key lets exactly one of them commit.
 */
export interface CommitDocument {
  _id: number;
  last: number;
  prevHash: string;
  hash: string;
  events: EventDocument[];
}

/** Event data (JSON characters) per readAll page, beyond which the page ends early. */
const READ_PAGE_BYTES = 16 * 1024 * 1024;

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
  private closed = false;

  private constructor(
    private readonly handle: MongoHandle,
    private readonly commits: Collection<CommitDocument>,
    private readonly events: Collection<EventDocument>,
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
      const events = handle.db.collection<EventDocument>(`${prefix}_events`);
      await events.createIndex(
        { stream: 1, revision: 1 },
        { unique: true, name: 'stream_revision' },
      );
      await events.createIndex({ id: 1 }, { unique: true, name: 'event_id' });
      return new MongoEventStore(
        handle,
        commits,
        events,
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
      const cursor = this.events
        .find({ stream, revision: { $gte: Math.max(0, options.fromRevision ?? 0) } })
        .sort({ revision: 1 });
      if (options.maxCount !== undefined) cursor.limit(options.maxCount);
      return (await cursor.toArray()).map((doc) => toRecordedEvent(toSealed(doc)));
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
      await this.settle();
      const cursor = this.events
        .find({ _id: { $gt: Math.max(0, afterPosition) } })
        .sort({ _id: 1 })
        .batchSize(Math.min(maxCount ?? 1000, 1000));
      if (maxCount !== undefined) cursor.limit(maxCount);
      // A page stops early once it holds readPageBytes of event data (always at least one event):
      // a thousand metric batches would otherwise be hundreds of MB in memory at once.
      const page: RecordedEvent[] = [];
      let bytes = 0;
      try {
        for await (const doc of cursor) {
          page.push(toRecordedEvent(toSealed(doc)));
          bytes += doc.data.length;
          if (bytes >= this.readPageBytes) break;
        }
      } finally {
        await cursor.close();
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
   * Streams the events collection and the commit documents side by side (constant memory): the
   * chain checks of verifyChain, plus every event equal to the one its commit holds.
   */
  private async verifyOnce(): Promise<ChainVerification> {
    const head = await this.settle();
    const events = this.events
      .find({ _id: { $lte: head.position } })
      .sort({ _id: 1 })
      [Symbol.asyncIterator]();
    const commits = this.commits.find({ _id: { $lte: head.position } }).sort({ _id: 1 });
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
    try {
      for await (const commit of commits) {
        for (const committed of commit.events) {
          const next = await events.next();
          if (next.done === true) {
            return broken(
              expected,
              null,
              `events after position ${expected - 1} are missing (last commit ends at ${head.position})`,
            );
          }
          const { fields, hash } = toSealed(next.value);
          if (fields.position !== expected) {
            return broken(
              expected,
              null,
              `event at position ${expected} is missing (next stored position is ${fields.position}, id ${fields.id})`,
            );
          }
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
          if (committed._id !== expected || committed.hash !== hash) {
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
    } finally {
      await events.return?.();
    }
    if (expected - 1 !== head.position) {
      return broken(
        expected,
        null,
        `events after position ${expected - 1} are missing (last commit ends at ${head.position})`,
      );
    }
    if (prev !== head.hash) {
      return broken(head.position, lastId, 'the last commit hash does not match the last event');
    }
    const beyond = await this.events.findOne({ _id: { $gt: head.position } });
    if (beyond !== null) {
      return broken(
        beyond._id,
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
    const known = await this.events.findOne({ id: { $in: ids } }, { projection: { id: 1 } });
    if (known !== null) return new Rejected(new DuplicateEventIdError(known.id));

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
      _id: head.position + 1,
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
    return result;
  }

  /**
   * Finds the log head (the last commit) and finishes copying committed events into the events
   * collection where a writer (this one or a crashed one) has not: afterwards the events collection
   * holds exactly positions 1..head.
   */
  private async settle(): Promise<{ position: number; hash: string }> {
    this.assertOpen();
    const latest = await this.commits.findOne(
      {},
      { sort: { _id: -1 }, projection: { _id: 1, last: 1, hash: 1 } },
    );
    if (latest === null) return { position: 0, hash: GENESIS_HASH };
    let copied = await this.copiedUpTo();
    while (copied < latest.last) {
      // Normally the one commit whose writer is still copying, or died before it finished.
      const commit = await this.commits.findOne({
        _id: { $lte: copied + 1 },
        last: { $gt: copied },
      });
      if (commit === null) {
        throw new Error(`event log inconsistent: no commit holds position ${copied + 1}`);
      }
      await this.copy(commit, copied);
      copied = await this.copiedUpTo();
    }
    return { position: latest.last, hash: latest.hash };
  }

  /**
   * Inserts a commit's events after position `copied`, in order; a duplicate key means a concurrent
   * copier got there first, which is fine as long as what is stored is this commit's event.
   */
  private async copy(commit: CommitDocument, copied: number): Promise<void> {
    const missing = commit.events.filter((e) => e._id > copied);
    if (missing.length === 0) return;
    try {
      await this.events.insertMany(missing, { ordered: true });
    } catch (error) {
      if (!isDuplicateKeyOnly(error)) throw error;
      const stored = await this.events
        .find({ _id: { $gte: commit._id, $lte: commit.last } }, { projection: { hash: 1 } })
        .toArray();
      const hashes = new Map(stored.map((e) => [e._id, e.hash]));
      const mismatch = commit.events.find((e) => hashes.has(e._id) && hashes.get(e._id) !== e.hash);
      if (mismatch !== undefined) {
        throw new Error(
          `event log inconsistent: position ${mismatch._id} holds another event than its commit`,
          { cause: error },
        );
      }
      // A concurrent copier inserted part of it; insert the rest (those it has not yet).
      const rest = commit.events.filter((e) => !hashes.has(e._id));
      if (rest.length > 0) await this.copy({ ...commit, events: rest }, copied);
    }
  }

  private async copiedUpTo(): Promise<number> {
    const last = await this.events.findOne({}, { sort: { _id: -1 }, projection: { _id: 1 } });
    return last?._id ?? 0;
  }

  private async revisionOf(stream: string): Promise<number> {
    const last = await this.events.findOne(
      { stream },
      { sort: { revision: -1 }, projection: { revision: 1 } },
    );
    return last?.revision ?? -1;
  }

  private retrying<T>(operation: () => Promise<T>): Promise<T> {
    return retryTransient(operation, this.retryForMs);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('event store is closed');
  }
}
