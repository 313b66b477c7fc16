import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  CollectionCatalog,
  compareCodePoints,
  ContentHasher,
  deepFreeze,
  DocumentCache,
  indexValueOf,
  ProjectionApplyError,
  ProjectionVersionMismatchError,
  readModelTableName,
  SerialQueue,
} from '@ledgerflow/projections';
import type {
  CatalogEntry,
  Doc,
  IndexValue,
  Projection,
  ReadModelReader,
  ReadModelStore,
  ReadModelWriter,
} from '@ledgerflow/projections';
import { randomUUID } from 'node:crypto';
import { MongoServerError } from 'mongodb';
import type { AnyBulkWriteOperation, Collection, Filter } from 'mongodb';
import mongoose from 'mongoose';
import type { Connection, Model } from 'mongoose';
import { isDuplicateKeyOnly, openMongo, retryTransient } from './mongo-connection.js';
import type { MongoHandle, MongoTarget } from './mongo-connection.js';

export interface MongoReadModelStoreOptions extends MongoTarget {
  /** How long an operation keeps retrying while the server is unreachable; default 60 s. */
  readonly retryForMs?: number;
  /**
   * Called once per batch this store commits that changes documents, right after the batch's first
   * collection of documents is written, while its other collections, its index buckets and its
   * checkpoint are not: a crash here leaves the read model ahead of its checkpoint and, for a batch
   * over several collections, torn. For fault injection (LEDGERFLOW_FAULT_KILL_AFTER_READMODEL_WRITE
   * kills the process here); not called for batches redone at recovery.
   */
  readonly onBatchWritten?: (projection: string, seq: number, position: number) => void;
}

/** A read-model document as stored: the JSON text readers parse, and its indexed scalars as `i_<field>`. */
interface StoredDoc {
  _id: string;
  doc: string;
  [indexField: `i_${string}`]: IndexValue;
}

/** One document's final state after a batch: its JSON text, or null for deleted. */
interface Change {
  /** Storage collection name. */
  c: string;
  id: string;
  json: string | null;
  /** The document's indexed scalars, by field (absent for a delete). */
  idx?: Record<string, IndexValue>;
  /** Its indexed scalars before the batch (absent when it did not exist): buckets it leaves. */
  old?: Record<string, IndexValue>;
}

/**
 * The redo record of one applied batch. Inserting the `commit` record is the batch's commit point
 * (its `_id` is unique per projection and sequence number); large batches put their changes in
 * `part` records written just before it.
 */
interface CommitRecord {
  _id: string;
  kind: 'commit' | 'part';
  name: string;
  seq: number;
  position?: number;
  version?: number;
  parts?: number;
  part?: number;
  /** Random per attempt: tells this writer's record from another's after a lost acknowledgement. */
  token?: string;
  /** Set once applied: the record is then only a claim on its sequence number. */
  applied?: boolean;
  changes: Change[];
}

/** A projection's checkpoint: last applied position, the projection version, the last applied commit. */
interface CheckpointRecord {
  _id: string;
  position: number;
  version: number;
  seq: number;
  /** Set while a drop is under way; a drop interrupted by a crash is finished before anything else. */
  dropping?: boolean;
  /** Storage layout the read model was written with (READ_MODEL_LAYOUT); absent before buckets. */
  layout?: number;
}

interface Checkpoint {
  readonly position: number;
  readonly version: number | null;
  readonly seq: number;
}

/** Staged final states of one batch, by collection name then id (null = deleted). */
type Staged = Map<string, Map<string, { readonly json: string; readonly doc: Doc } | null>>;

const CHECKPOINTS = 'rm_checkpoints';
/** Version of how read models are stored (2: index buckets); another one is dropped and rebuilt. */
const READ_MODEL_LAYOUT = 2;
const COMMITS = 'rm_commits';
/** Changes per commit record, in JSON characters: well below MongoDB's 16 MB document limit. */
const MAX_PART_CHARS = 8 * 1024 * 1024;
/**
 * Statements per update command. FerretDB 1.24 (SQLite handler) keeps one pooled connection per
 * statement of an `update` command until the command ends, from a pool of 100 per database: a
 * bulk write of ~100 replaceOne/updateOne statements waits forever for a connection and wedges
 * the whole database (every later operation on it waits too). Small commands stay far below.
 */
const MAX_STATEMENTS_PER_COMMAND = 16;

/** `bulkWrite` in ordered commands of at most MAX_STATEMENTS_PER_COMMAND statements. */
async function bulkWriteInChunks<T extends object>(
  collection: Collection<T>,
  ops: readonly AnyBulkWriteOperation<T>[],
): Promise<void> {
  for (let i = 0; i < ops.length; i += MAX_STATEMENTS_PER_COMMAND) {
    await collection.bulkWrite(ops.slice(i, i + MAX_STATEMENTS_PER_COMMAND), { ordered: true });
  }
}
/**
 * Applied commit records kept per projection as claims (see redo). Every batch reads and prunes
 * the projection's records, and a MongoDB-wire server without index pushdown (FerretDB on SQLite)
 * scans them all: at 1000 per projection that scan alone took over a second per batch on a busy
 * machine, so the window is kept small (a stale writer is at most a few batches behind).
 */
const CLAIM_WINDOW = 32;
const PRUNE_EVERY = 16;

const checkpointSchema = new mongoose.Schema<CheckpointRecord>(
  {
    _id: { type: String, required: true },
    position: { type: Number, required: true, min: 0 },
    version: { type: Number, required: true },
    seq: { type: Number, required: true, min: 0 },
    dropping: { type: Boolean },
    layout: { type: Number },
  },
  {
    collection: CHECKPOINTS,
    versionKey: false,
    autoIndex: false,
    autoCreate: false,
    // Straight to the driver, which waits for the server itself (and our retries cover outages).
    bufferCommands: false,
  },
);

function indexField(field: string): `i_${string}` {
  return `i_${field}`;
}

/**
 * An equality index as documents found by primary key: one bucket per (field, JSON type, value)
 * listing the ids of the documents that hold it. FerretDB's SQLite backend pushes only `{_id}`
 * lookups down, so `{i_field: value}` would scan the whole collection.
 */
interface BucketDoc {
  _id: string;
  ids: string[];
}

function bucketKey(field: string, value: IndexValue): string {
  return JSON.stringify([field, typeof value, value]);
}

function bucketCollection(storage: string): string {
  return `${storage}__idx`;
}

/** Point lookups in flight at once. */
const LOOKUP_WINDOW = 64;

async function lookup<I, R>(items: readonly I[], find: (item: I) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += LOOKUP_WINDOW) {
    out.push(...(await Promise.all(items.slice(i, i + LOOKUP_WINDOW).map(find))));
  }
  return out;
}

function byId<T extends { _id: string }>(a: T, b: T): number {
  return compareCodePoints(a._id, b._id);
}

/**
 * Read models in MongoDB collections (one per read-model collection, named like the SQLite tables),
 * with their checkpoints, and no multi-document transactions.
 *
 * A batch is applied in memory first (the writer reads its own staged writes), so a failing apply
 * writes nothing. Committing is then a redo log: one insert of a commit record holding every
 * document's final state, the position and the version (the commit point: unique per projection and
 * sequence number, so a second writer of the same projection fails instead of interleaving); then
 * the documents are replaced or deleted; then the checkpoint moves and the record shrinks to a claim
 * on its sequence number (the last 32 to 48 are kept). Every step
 * after the commit point is idempotent, and `setup`/`applyBatch` first redo any commit record newer
 * than the checkpoint: a writer killed between its writes and its checkpoint leaves a read model
 * that is finished on the next start, never applied twice. Readers may see a batch's documents
 * change one by one while it is being written (each document is atomic; a batch is not).
 * The checkpoint collection is a mongoose model over the same driver connection.
 */
export class MongoReadModelStore implements ReadModelStore {
  readonly reader: ReadModelReader;
  private readonly catalog = new CollectionCatalog();
  private readonly queue = new SerialQueue();
  private readonly caches = new Map<string, DocumentCache>();
  /**
   * Checkpoints this process committed itself: the next batch of the projection starts from them
   * instead of re-reading the checkpoint and scanning for unapplied records (two reads per batch).
   * A stale entry (another writer moved on) makes the next commit collide on its sequence number,
   * which fails the batch and drops the entry.
   */
  private readonly known = new Map<string, Checkpoint>();
  private closed = false;

  private constructor(
    private readonly handle: MongoHandle,
    private readonly connection: Connection,
    private readonly checkpoints: Model<CheckpointRecord>,
    private readonly commits: Collection<CommitRecord>,
    private readonly retryForMs: number | undefined,
    private readonly onBatchWritten: MongoReadModelStoreOptions['onBatchWritten'],
  ) {
    this.reader = this.createReader();
  }

  static async open(options: MongoReadModelStoreOptions): Promise<MongoReadModelStore> {
    const handle = await openMongo(options);
    try {
      const connection = mongoose.createConnection().setClient(handle.client);
      const db = connection.useDb(options.database, { useCache: true });
      const checkpoints = db.model<CheckpointRecord>('ReadModelCheckpoint', checkpointSchema);
      const commits = handle.db.collection<CommitRecord>(COMMITS);
      await commits.createIndex({ name: 1, seq: 1 }, { name: 'name_seq' });
      return new MongoReadModelStore(
        handle,
        connection,
        checkpoints,
        commits,
        options.retryForMs,
        options.onBatchWritten,
      );
    } catch (error) {
      await handle.release();
      throw error;
    }
  }

  async setup(projection: Projection): Promise<void> {
    await this.queue.run(async () => {
      this.assertOpen();
      this.known.delete(projection.name);
      const entries = this.catalog.register(projection);
      await this.retrying(async () => {
        for (const entry of entries) await this.createCollection(entry);
        await this.recover(projection);
        for (const entry of entries) await this.loadCache(entry);
      });
    });
  }

  async checkpoint(name: string): Promise<{ position: number; version: number | null }> {
    this.assertOpen();
    const stored = await this.retrying(() => this.checkpoints.findById(name).lean().exec());
    // seq 0: set up, nothing applied yet (see recover)
    if (stored === null || stored.dropping === true || stored.seq === 0)
      return { position: 0, version: null };
    return { position: stored.position, version: stored.version };
  }

  async applyBatch(projection: Projection, events: readonly RecordedEvent[]): Promise<number> {
    return this.queue.run(async () => {
      this.assertOpen();
      if (!this.catalog.isRegistered(projection.name)) {
        throw new Error(`read model '${projection.name}' is not set up`);
      }
      const stored =
        this.known.get(projection.name) ?? (await this.retrying(() => this.recover(projection)));
      if (stored.version !== null && stored.version !== projection.version) {
        throw new ProjectionVersionMismatchError(
          projection.name,
          stored.version,
          projection.version,
        );
      }
      const session = { open: true };
      const staged: Staged = new Map();
      let position = stored.position;
      let applied = 0;
      try {
        const writer = this.createWriter(projection.name, session, staged);
        for (const event of events) {
          if (event.position <= position) continue;
          try {
            const pending = projection.apply(event, writer);
            if (pending !== undefined) await pending;
          } catch (cause) {
            throw new ProjectionApplyError(projection.name, event, cause);
          }
          position = event.position;
          applied += 1;
        }
      } finally {
        session.open = false;
      }
      if (applied === 0) return 0;
      const changes: Change[] = [];
      for (const [collection, docs] of staged) {
        const own = this.catalog.resolveOwn(projection.name, collection);
        const c = this.storageName(own);
        const ids = [...docs.keys()];
        // The committed index values of the touched documents: the buckets they leave.
        const before =
          own.indexes.size === 0
            ? ids.map(() => undefined)
            : await this.committedIndexValues(own, ids);
        for (const [i, id] of ids.entries()) {
          const entry = docs.get(id)!;
          const old = before[i];
          if (entry === null) {
            changes.push({ c, id, json: null, ...(old === undefined ? {} : { old }) });
            continue;
          }
          const idx: Record<string, IndexValue> = {};
          for (const field of own.indexes) {
            const value = indexValueOf(entry.doc, field);
            if (value !== undefined) idx[field] = value;
          }
          changes.push({ c, id, json: entry.json, idx, ...(old === undefined ? {} : { old }) });
        }
      }
      try {
        await this.commit(projection, stored.seq + 1, position, changes);
      } catch (error) {
        this.known.delete(projection.name);
        throw error;
      }
      this.known.set(projection.name, {
        position,
        version: projection.version,
        seq: stored.seq + 1,
      });
      for (const [collection, docs] of staged) {
        const cache = this.caches.get(collection);
        if (cache === undefined) continue;
        cache.commit(new Map([...docs].map(([id, entry]) => [id, entry?.doc ?? null])));
      }
      return applied;
    });
  }

  async drop(projection: Projection): Promise<void> {
    await this.queue.run(async () => {
      this.assertOpen();
      this.known.delete(projection.name);
      const entries = this.catalog.register(projection);
      await this.retrying(() => this.dropStored(projection));
      for (const entry of entries) {
        if (entry.spec.cached === true) {
          this.caches.set(entry.spec.name, new DocumentCache([...entry.indexes]));
        } else this.caches.delete(entry.spec.name);
      }
    });
  }

  /** Marks the read model as being dropped, then drops it (resumable after a crash). */
  private async dropStored(projection: Projection): Promise<void> {
    {
      await this.checkpoints
        .updateOne(
          { _id: projection.name },
          {
            $set: { dropping: true },
            $setOnInsert: { position: 0, version: projection.version, seq: 0 },
          },
          { upsert: true },
        )
        .exec();
      await this.finishDrop(projection);
    }
  }

  async contentHash(projection: Projection): Promise<string> {
    this.assertOpen();
    return this.retrying(() => this.hashOnce(projection));
  }

  private async hashOnce(projection: Projection): Promise<string> {
    const hasher = new ContentHasher();
    for (const spec of projection.collections) {
      hasher.collection(spec.name);
      const docs = await this.collection(readModelTableName(projection.name, spec.name))
        .find({}, { projection: { _id: 1, doc: 1 } })
        .toArray();
      for (const row of docs.sort(byId)) hasher.doc(row._id, JSON.parse(row.doc) as Doc);
    }
    return hasher.digest();
  }

  async close(): Promise<void> {
    await this.queue.run(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.connection.close().catch(() => undefined);
      await this.handle.release();
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('read-model store is closed');
  }

  private retrying<T>(operation: () => Promise<T>): Promise<T> {
    return retryTransient(operation, this.retryForMs);
  }

  private collection(name: string): Collection<StoredDoc> {
    return this.handle.db.collection<StoredDoc>(name);
  }

  private storageName(entry: CatalogEntry): string {
    return readModelTableName(entry.projection, entry.spec.name);
  }

  private async createCollection(entry: CatalogEntry): Promise<void> {
    const collection = this.collection(this.storageName(entry));
    for (const field of entry.indexes) {
      await collection.createIndex({ [indexField(field)]: 1 }, { name: indexField(field) });
    }
  }

  /** The stored checkpoint after finishing an interrupted drop and redoing committed batches. */
  private async recover(projection: Projection): Promise<Checkpoint> {
    let stored = await this.checkpoints.findById(projection.name).lean().exec();
    // A read model written with another storage layout (no index buckets) is rebuilt from the log.
    if (stored?.dropping === true || (stored !== null && stored.layout !== READ_MODEL_LAYOUT)) {
      await this.finishDrop(projection);
      stored = null;
    }
    if (stored === null) {
      // No checkpoint: a read model never set up, dropped, or removed by hand (docs/operations.md,
      // "Rebuild read models"). Every commit record under its name is from an earlier incarnation:
      // a claim would block the new sequence numbers, and an unfinished batch redone now would put
      // its documents and its position into the empty read model, which would then skip the whole
      // log before that position. So they all go, and a checkpoint at 0 marks the start of this
      // incarnation before its first batch commits: a crash in that first batch leaves the
      // checkpoint and the batch's record, and the batch is redone like any other.
      await this.commits.deleteMany({ name: projection.name });
      await this.checkpoints
        .updateOne(
          { _id: projection.name },
          {
            $setOnInsert: {
              position: 0,
              version: projection.version,
              seq: 0,
              layout: READ_MODEL_LAYOUT,
            },
          },
          { upsert: true },
        )
        .exec();
    }
    let checkpoint: Checkpoint = {
      position: stored?.position ?? 0,
      version: stored === null || stored.seq === 0 ? null : stored.version,
      seq: stored?.seq ?? 0,
    };
    const pending = await this.commits
      .find({
        name: projection.name,
        kind: 'commit',
        seq: { $gt: checkpoint.seq },
        applied: { $ne: true },
      })
      .sort({ seq: 1 })
      .toArray();
    for (const record of pending) {
      await this.redo(record);
      checkpoint = { position: record.position!, version: record.version!, seq: record.seq };
    }
    return checkpoint;
  }

  private async commit(
    projection: Projection,
    seq: number,
    position: number,
    changes: Change[],
  ): Promise<void> {
    const parts: Change[][] = [[]];
    let size = 0;
    for (const change of changes) {
      const length = (change.json?.length ?? 0) + change.id.length + change.c.length + 32;
      if (size + length > MAX_PART_CHARS && parts.at(-1)!.length > 0) {
        parts.push([]);
        size = 0;
      }
      parts.at(-1)!.push(change);
      size += length;
    }
    const base = { name: projection.name, seq };
    const record: CommitRecord = {
      _id: `${projection.name}#${seq}`,
      kind: 'commit',
      ...base,
      position,
      version: projection.version,
      parts: parts.length > 1 ? parts.length : 0,
      token: randomUUID(),
      changes: parts.length > 1 ? [] : parts[0]!,
    };
    if (parts.length > 1) {
      // Parts of an earlier attempt that died before its commit record are overwritten.
      for (const [part, partChanges] of parts.entries()) {
        const _id = `${projection.name}#${seq}#${part}`;
        await this.retrying(() =>
          this.commits.replaceOne(
            { _id },
            { kind: 'part', ...base, part, changes: partChanges },
            { upsert: true },
          ),
        );
      }
    }
    await this.retrying(async () => {
      try {
        await this.commits.insertOne(record);
      } catch (error) {
        if (!isDuplicateKeyOnly(error)) throw error;
        // Ours, sent again after a connection dropped before its acknowledgement?
        const stored = await this.commits.findOne(
          { _id: record._id },
          { projection: { token: 1 } },
        );
        if (stored?.token === record.token) return;
        throw new Error(
          `read model '${projection.name}': another writer committed batch ${seq} first (one writer per projection)`,
          { cause: error },
        );
      }
    });
    let written = false;
    await this.retrying(() =>
      this.redo(record, () => {
        if (written || changes.length === 0) return;
        written = true;
        this.onBatchWritten?.(projection.name, seq, position);
      }),
    );
  }

  /**
   * Applies a committed record's final states, moves the checkpoint, forgets the record. Idempotent.
   * `written` runs once the first collection of documents is written (see onBatchWritten).
   */
  private async redo(record: CommitRecord, written?: () => void): Promise<void> {
    let changes = record.changes;
    if ((record.parts ?? 0) > 0) {
      const parts = await this.commits
        .find({ name: record.name, seq: record.seq, kind: 'part', part: { $lt: record.parts! } })
        .sort({ part: 1 })
        .toArray();
      if (parts.length !== record.parts) {
        throw new Error(`read model '${record.name}': commit ${record.seq} lost some of its parts`);
      }
      changes = parts.flatMap((p) => p.changes);
    }
    const byCollection = new Map<string, AnyBulkWriteOperation<StoredDoc>[]>();
    for (const change of changes) {
      let ops = byCollection.get(change.c);
      if (ops === undefined) byCollection.set(change.c, (ops = []));
      if (change.json === null) {
        ops.push({ deleteOne: { filter: { _id: change.id } } });
        continue;
      }
      const stored: StoredDoc = { _id: change.id, doc: change.json };
      for (const [field, value] of Object.entries(change.idx ?? {})) {
        stored[indexField(field)] = value;
      }
      ops.push({
        replaceOne: {
          filter: { _id: change.id },
          replacement: stored,
          upsert: true,
        },
      });
    }
    for (const [collection, ops] of byCollection) {
      await bulkWriteInChunks(this.collection(collection), ops);
      written?.();
    }
    await this.redoBuckets(changes);
    await this.checkpoints
      .updateOne(
        { _id: record.name },
        {
          $set: {
            position: record.position!,
            version: record.version!,
            seq: record.seq,
            layout: READ_MODEL_LAYOUT,
          },
        },
        { upsert: true },
      )
      .exec();
    // The applied record stays as a small claim on its sequence number (changes stripped), so a
    // stale second writer of this projection still collides with it; parts and claims older than
    // CLAIM_WINDOW batches go.
    await this.commits.updateOne({ _id: record._id }, { $set: { changes: [], applied: true } });
    // pruning scans the projection's records: done every PRUNE_EVERY batches (and after a
    // multi-part record), so between CLAIM_WINDOW and CLAIM_WINDOW + PRUNE_EVERY claims remain
    if ((record.parts ?? 0) === 0 && record.seq % PRUNE_EVERY !== 0) return;
    await this.commits.deleteMany({
      name: record.name,
      $or: [
        { kind: 'part', seq: { $lte: record.seq } },
        { seq: { $lt: record.seq - CLAIM_WINDOW } },
      ],
    });
  }

  /**
   * Moves each changed document between index buckets: out of the buckets of its old values, into
   * those of its new ones. Idempotent ($pullAll / $addToSet of final states), so a redo may repeat it.
   */
  private async redoBuckets(changes: readonly Change[]): Promise<void> {
    const pulls = new Map<string, Map<string, string[]>>();
    const adds = new Map<string, Map<string, string[]>>();
    const note = (
      into: Map<string, Map<string, string[]>>,
      c: string,
      key: string,
      id: string,
    ): void => {
      let buckets = into.get(c);
      if (buckets === undefined) {
        buckets = new Map<string, string[]>();
        into.set(c, buckets);
      }
      let ids = buckets.get(key);
      if (ids === undefined) buckets.set(key, (ids = []));
      ids.push(id);
    };
    for (const change of changes) {
      const now = change.json === null ? {} : (change.idx ?? {});
      const old = change.old ?? {};
      for (const field of new Set([...Object.keys(old), ...Object.keys(now)])) {
        const from = old[field] === undefined ? undefined : bucketKey(field, old[field]);
        const to = now[field] === undefined ? undefined : bucketKey(field, now[field]);
        if (from === to) continue;
        if (from !== undefined) note(pulls, change.c, from, change.id);
        if (to !== undefined) note(adds, change.c, to, change.id);
      }
    }
    for (const [c, buckets] of pulls) {
      await bulkWriteInChunks(
        this.handle.db.collection<BucketDoc>(bucketCollection(c)),
        [...buckets].map(([key, ids]) => ({
          updateOne: { filter: { _id: key }, update: { $pullAll: { ids } } },
        })),
      );
    }
    for (const [c, buckets] of adds) {
      await bulkWriteInChunks(
        this.handle.db.collection<BucketDoc>(bucketCollection(c)),
        [...buckets].map(([key, ids]) => ({
          updateOne: {
            filter: { _id: key },
            update: { $addToSet: { ids: { $each: ids } } },
            upsert: true,
          },
        })),
      );
    }
  }

  /** The indexed values (`i_<field>`) each document holds now, undefined for an absent one. */
  private async committedIndexValues(
    entry: CatalogEntry,
    ids: readonly string[],
  ): Promise<(Record<string, IndexValue> | undefined)[]> {
    const collection = this.collection(this.storageName(entry));
    const rows = await this.retrying(() =>
      lookup(ids, (id) => collection.findOne({ _id: id } as Filter<StoredDoc>)),
    );
    return rows.map((row) => {
      if (row === null) return undefined;
      const values: Record<string, IndexValue> = {};
      for (const field of entry.indexes) {
        const value = row[indexField(field)];
        if (value !== undefined) values[field] = value;
      }
      return values;
    });
  }

  /**
   * Ids of the committed documents whose indexed `field` equals `value`, in code-point order,
   * with their stored rows: the bucket's members, each checked against its document (a bucket may
   * lag its documents while a batch is being written).
   */
  private async findCommitted(
    entry: CatalogEntry,
    field: string,
    value: IndexValue,
  ): Promise<StoredDoc[]> {
    const storage = this.storageName(entry);
    const bucket = await this.handle.db
      .collection<BucketDoc>(bucketCollection(storage))
      .findOne({ _id: bucketKey(field, value) });
    if (bucket === null || bucket.ids.length === 0) return [];
    const collection = this.collection(storage);
    const rows = await lookup(bucket.ids, (id) =>
      collection.findOne({ _id: id } as Filter<StoredDoc>),
    );
    const key = bucketKey(field, value);
    return rows
      .filter((row): row is StoredDoc => {
        const held = row?.[indexField(field)];
        return held !== undefined && bucketKey(field, held) === key;
      })
      .sort(byId);
  }

  private async finishDrop(projection: Projection): Promise<void> {
    for (const spec of projection.collections) {
      const storage = readModelTableName(projection.name, spec.name);
      for (const name of [storage, bucketCollection(storage)]) {
        try {
          await this.handle.db.dropCollection(name);
        } catch (error) {
          // NamespaceNotFound (26): already gone.
          if (!(error instanceof MongoServerError && error.code === 26)) throw error;
        }
      }
    }
    for (const entry of this.catalog.register(projection)) await this.createCollection(entry);
    await this.commits.deleteMany({ name: projection.name });
    await this.checkpoints.deleteOne({ _id: projection.name }).exec();
  }

  private async loadCache(entry: CatalogEntry): Promise<void> {
    if (entry.spec.cached !== true) {
      this.caches.delete(entry.spec.name);
      return;
    }
    const cache = new DocumentCache([...entry.indexes]);
    const rows = await this.collection(this.storageName(entry))
      .find({}, { projection: { _id: 1, doc: 1 } })
      .toArray();
    cache.load(rows.sort(byId).map((row) => [row._id, JSON.parse(row.doc) as Doc] as const));
    this.caches.set(entry.spec.name, cache);
  }

  private createReader(): ReadModelReader {
    const resolve = (collection: string): CatalogEntry => {
      this.assertOpen();
      return this.catalog.resolve(collection);
    };
    const parseAll = <T extends Doc>(rows: { _id: string; doc: string }[]): T[] =>
      rows.sort(byId).map((row) => JSON.parse(row.doc) as T);
    return {
      get: async <T extends Doc = Doc>(collection: string, id: string) => {
        const entry = resolve(collection);
        const cache = this.caches.get(entry.spec.name);
        if (cache !== undefined) return cache.get(id) as T | undefined;
        const row = await this.retrying(() =>
          this.collection(this.storageName(entry)).findOne({ _id: id } as Filter<StoredDoc>, {
            projection: { doc: 1 },
          }),
        );
        return row === null ? undefined : (JSON.parse(row.doc) as T);
      },
      find: async <T extends Doc = Doc>(collection: string, field: string, value: IndexValue) => {
        const entry = resolve(collection);
        this.catalog.requireIndexed(entry, field);
        const cache = this.caches.get(entry.spec.name);
        if (cache !== undefined) return cache.find(field, value) as T[];
        const rows = await this.retrying(() => this.findCommitted(entry, field, value));
        return rows.map((row) => JSON.parse(row.doc) as T);
      },
      scan: async <T extends Doc = Doc>(collection: string) => {
        const entry = resolve(collection);
        const cache = this.caches.get(entry.spec.name);
        if (cache !== undefined) return cache.scan() as T[];
        const rows = await this.retrying(() =>
          this.collection(this.storageName(entry))
            .find({}, { projection: { _id: 1, doc: 1 } })
            .toArray(),
        );
        return parseAll<T>(rows);
      },
      count: async (collection: string) => {
        const entry = resolve(collection);
        const cache = this.caches.get(entry.spec.name);
        if (cache !== undefined) return cache.size;
        return this.retrying(() => this.collection(this.storageName(entry)).countDocuments({}));
      },
    };
  }

  private createWriter(
    projection: string,
    session: { readonly open: boolean },
    staged: Staged,
  ): ReadModelWriter {
    const own = (collection: string): CatalogEntry => {
      // A writer kept past its batch would write outside the batch's commit.
      if (!session.open) throw new Error(`writer of '${projection}' used after its batch ended`);
      return this.catalog.resolveOwn(projection, collection);
    };
    const changesOf = (collection: string): Map<string, { json: string; doc: Doc } | null> => {
      let changes = staged.get(collection);
      if (changes === undefined) {
        changes = new Map<string, { json: string; doc: Doc } | null>();
        staged.set(collection, changes);
      }
      return changes;
    };
    return {
      get: async <T extends Doc = Doc>(collection: string, id: string) => {
        const entry = own(collection);
        const cache = this.caches.get(collection);
        const pending = staged.get(collection)?.get(id);
        if (pending !== undefined) {
          if (pending === null) return undefined;
          // Cached collections share frozen documents; others hand out a private copy.
          return (cache !== undefined ? pending.doc : JSON.parse(pending.json)) as T;
        }
        if (cache !== undefined) return cache.get(id) as T | undefined;
        const row = await this.retrying(() =>
          this.collection(this.storageName(entry)).findOne({ _id: id } as Filter<StoredDoc>, {
            projection: { doc: 1 },
          }),
        );
        return row === null ? undefined : (JSON.parse(row.doc) as T);
      },
      findIds: async (collection: string, field: string, value: IndexValue) => {
        const entry = own(collection);
        this.catalog.requireIndexed(entry, field);
        const committed = await this.retrying(() => this.findCommitted(entry, field, value));
        const ids = new Set(committed.map((row) => row._id));
        for (const [id, pending] of staged.get(collection) ?? []) {
          if (pending !== null && indexValueOf(pending.doc, field) === value) ids.add(id);
          else ids.delete(id);
        }
        return [...ids].sort(compareCodePoints);
      },
      put: async (collection: string, id: string, doc: Doc) => {
        own(collection);
        const json = JSON.stringify(doc);
        changesOf(collection).set(id, { json, doc: deepFreeze(JSON.parse(json) as Doc) });
      },
      delete: async (collection: string, id: string) => {
        own(collection);
        changesOf(collection).set(id, null);
      },
    };
  }
}
