import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { RecordedEvent } from '@ledgerflow/contracts';
import { CollectionCatalog, type CatalogEntry } from './collection-catalog.js';
import { ContentHasher } from './canonical-json.js';
import { deepFreeze, DocumentCache } from './document-cache.js';
import type {
  CollectionSpec,
  Doc,
  Projection,
  ReadModelReader,
  ReadModelStore,
  ReadModelWriter,
} from './projection.js';
import { ProjectionApplyError, ProjectionVersionMismatchError } from './read-model-errors.js';
import { SerialQueue } from './serial-queue.js';

export interface SqliteReadModelStoreOptions {
  /** Database file, separate from the event log (embedded mode: `<dataDir>/read-models.db`). */
  readonly path: string;
}

type Scalar = string | number | boolean;

/** A batch's writes to cached collections, applied to their caches once the batch commits. */
type Staged = Map<string, Map<string, Doc | null>>;

interface WriterTable {
  readonly get: Database.Statement;
  readonly put: Database.Statement;
  readonly delete: Database.Statement;
}

const IDENT = /^[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*$/;

/**
 * A SQL-safe identifier part. Names that are not already plain get a hash suffix, so two names
 * that sanitise alike (`a-b`, `a.b`) still get different tables, and `__` stays a separator.
 */
function safePart(name: string): string {
  if (IDENT.test(name)) return name;
  const cleaned = name.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
  const suffix = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return cleaned.length > 0 ? `${cleaned}_${suffix}` : suffix;
}

/** Table holding one collection of one projection. */
export function readModelTableName(projection: string, collection: string): string {
  return `rm_${safePart(projection)}__${safePart(collection)}`;
}

function quote(ident: string): string {
  return `"${ident}"`;
}

function extract(field: string): string {
  return `json_extract(doc, '$.${field}')`;
}

/** SQL condition and parameter for `field = value` with JSON types kept apart (1, true and "1" differ). */
function equals(field: string, value: Scalar): { sql: string; param: string | number } {
  const type = `json_type(doc, '$.${field}')`;
  switch (typeof value) {
    case 'string':
      return { sql: `${extract(field)} = ? AND ${type} = 'text'`, param: value };
    case 'number':
      return { sql: `${extract(field)} = ? AND ${type} IN ('integer', 'real')`, param: value };
    default:
      return {
        sql: `${extract(field)} = ? AND ${type} = '${value ? 'true' : 'false'}'`,
        param: value ? 1 : 0,
      };
  }
}

/**
 * Read models in SQLite tables, one per collection, with JSON documents and expression indexes.
 * One writer connection serves setup/drop/applyBatch, one at a time; a second connection serves
 * queries, so a query sees a batch whole or not at all (WAL snapshot isolation).
 */
export class SqliteReadModelStore implements ReadModelStore {
  readonly reader: ReadModelReader;
  private readonly writer: Database.Database;
  private readonly readerDb: Database.Database;
  private readonly catalog = new CollectionCatalog();
  private readonly queue = new SerialQueue();
  private readonly writerStatements = new Map<string, Database.Statement>();
  private readonly readerStatements = new Map<string, Database.Statement>();
  private readonly writerTables = new WeakMap<CatalogEntry, WriterTable>();
  /** Caches of the collections declared `cached`, by collection name. */
  private readonly caches = new Map<string, DocumentCache>();
  private closed = false;

  constructor(options: SqliteReadModelStoreOptions) {
    if (options.path === ':memory:' || options.path === '') {
      throw new Error(
        'SqliteReadModelStore needs a file: its reader and writer are separate connections',
      );
    }
    mkdirSync(path.dirname(path.resolve(options.path)), { recursive: true });
    this.writer = new Database(options.path);
    this.writer.pragma('journal_mode = WAL');
    // Read models can be rebuilt from the log and their checkpoint commits with them, so losing the
    // last transactions on power failure only means re-applying them: NORMAL is safe here.
    this.writer.pragma('synchronous = NORMAL');
    // metric chunks make large commits: checkpoint every ~64 MB of WAL rather than every ~4 MB, and
    // keep a bigger page cache, so fewer commits stall the event loop on a checkpoint
    this.writer.pragma('wal_autocheckpoint = 16384');
    this.writer.pragma('cache_size = -65536');
    this.writer.pragma('busy_timeout = 5000');
    this.writer.exec(
      `CREATE TABLE IF NOT EXISTS projection_checkpoints (
         name TEXT PRIMARY KEY,
         position INTEGER NOT NULL,
         version INTEGER NOT NULL
       ) STRICT`,
    );
    try {
      this.readerDb = new Database(options.path, { readonly: true, fileMustExist: true });
      this.readerDb.pragma('busy_timeout = 5000');
    } catch (error) {
      this.writer.close();
      throw error;
    }
    this.reader = this.createReader();
  }

  async setup(projection: Projection): Promise<void> {
    await this.queue.run(async () => {
      this.assertOpen();
      const entries = this.catalog.register(projection);
      this.writer.transaction(() => {
        for (const entry of entries) this.createCollection(projection.name, entry.spec);
      })();
      for (const entry of entries) this.loadCache(entry);
    });
  }

  async checkpoint(name: string): Promise<{ position: number; version: number | null }> {
    this.assertOpen();
    const row = this.readerStatement(
      'SELECT position, version FROM projection_checkpoints WHERE name = ?',
    ).get(name) as { position: number; version: number } | undefined;
    return { position: row?.position ?? 0, version: row?.version ?? null };
  }

  async applyBatch(projection: Projection, events: readonly RecordedEvent[]): Promise<number> {
    return this.queue.run(async () => {
      this.assertOpen();
      if (!this.catalog.isRegistered(projection.name)) {
        throw new Error(`read model '${projection.name}' is not set up`);
      }
      const session = { open: true };
      const staged: Staged = new Map();
      this.writer.exec('BEGIN IMMEDIATE');
      try {
        const stored = this.writerStatement(
          'SELECT position, version FROM projection_checkpoints WHERE name = ?',
        ).get(projection.name) as { position: number; version: number } | undefined;
        if (stored !== undefined && stored.version !== projection.version) {
          throw new ProjectionVersionMismatchError(
            projection.name,
            stored.version,
            projection.version,
          );
        }
        let position = stored?.position ?? 0;
        let applied = 0;
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
        session.open = false;
        if (applied > 0) {
          this.writerStatement(
            `INSERT INTO projection_checkpoints (name, position, version) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET position = excluded.position, version = excluded.version`,
          ).run(projection.name, position, projection.version);
        }
        this.writer.exec('COMMIT');
        // Synchronously after COMMIT: readers see the cache change together with the tables.
        for (const [collection, changes] of staged) this.caches.get(collection)?.commit(changes);
        return applied;
      } catch (error) {
        session.open = false;
        if (this.writer.inTransaction) this.writer.exec('ROLLBACK');
        throw error;
      }
    });
  }

  async drop(projection: Projection): Promise<void> {
    await this.queue.run(async () => {
      this.assertOpen();
      const entries = this.catalog.register(projection);
      // Drop and re-create in one transaction: readers see the old read model or an empty one,
      // never a missing table, and indexes follow the projection's current spec.
      this.writer.transaction(() => {
        for (const entry of entries) {
          this.writer.exec(
            `DROP TABLE IF EXISTS ${quote(readModelTableName(projection.name, entry.spec.name))}`,
          );
          this.createCollection(projection.name, entry.spec);
        }
        this.writerStatement('DELETE FROM projection_checkpoints WHERE name = ?').run(
          projection.name,
        );
      })();
      for (const entry of entries) {
        if (entry.spec.cached === true) {
          this.caches.set(entry.spec.name, new DocumentCache([...entry.indexes]));
        } else this.caches.delete(entry.spec.name);
      }
    });
  }

  async contentHash(projection: Projection): Promise<string> {
    this.assertOpen();
    const hasher = new ContentHasher();
    // One read transaction: every collection is hashed from the same committed snapshot.
    this.readerDb.transaction(() => {
      for (const spec of projection.collections) {
        hasher.collection(spec.name);
        const table = readModelTableName(projection.name, spec.name);
        const exists = this.readerStatement(
          "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
        ).get(table);
        if (exists === undefined) continue;
        const rows = this.readerStatement(
          `SELECT id, doc FROM ${quote(table)} ORDER BY id`,
        ).iterate() as IterableIterator<{
          id: string;
          doc: string;
        }>;
        for (const row of rows) hasher.doc(row.id, JSON.parse(row.doc) as Doc);
      }
    })();
    return hasher.digest();
  }

  async close(): Promise<void> {
    await this.queue.run(async () => {
      if (this.closed) return;
      this.closed = true;
      this.readerDb.close();
      this.writer.close();
    });
  }

  /** (Re)loads a cached collection from its committed table; forgets the cache of an uncached one. */
  private loadCache(entry: CatalogEntry): void {
    if (entry.spec.cached !== true) {
      this.caches.delete(entry.spec.name);
      return;
    }
    const cache = new DocumentCache([...entry.indexes]);
    const rows = this.writer
      .prepare(`SELECT id, doc FROM ${this.table(entry)} ORDER BY id`)
      .iterate() as IterableIterator<{ id: string; doc: string }>;
    cache.load(
      (function* () {
        for (const row of rows) yield [row.id, JSON.parse(row.doc) as Doc] as const;
      })(),
    );
    this.caches.set(entry.spec.name, cache);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('read-model store is closed');
  }

  private createCollection(projection: string, spec: CollectionSpec): void {
    const table = readModelTableName(projection, spec.name);
    this.writer.exec(
      `CREATE TABLE IF NOT EXISTS ${quote(table)} (id TEXT PRIMARY KEY, doc TEXT NOT NULL) STRICT`,
    );
    for (const field of spec.indexes ?? []) {
      this.writer.exec(
        `CREATE INDEX IF NOT EXISTS ${quote(`${table}__${field}`)} ON ${quote(table)} (${extract(field)})`,
      );
    }
  }

  private writerStatement(sql: string): Database.Statement {
    let statement = this.writerStatements.get(sql);
    if (statement === undefined) {
      statement = this.writer.prepare(sql);
      this.writerStatements.set(sql, statement);
    }
    return statement;
  }

  private readerStatement(sql: string): Database.Statement {
    let statement = this.readerStatements.get(sql);
    if (statement === undefined) {
      statement = this.readerDb.prepare(sql);
      this.readerStatements.set(sql, statement);
    }
    return statement;
  }

  private table(entry: CatalogEntry): string {
    return quote(readModelTableName(entry.projection, entry.spec.name));
  }

  /** The hot statements of one collection's table, prepared once per catalog entry. */
  private writerTable(entry: CatalogEntry): WriterTable {
    let statements = this.writerTables.get(entry);
    if (statements === undefined) {
      const table = this.table(entry);
      statements = {
        get: this.writer.prepare(`SELECT doc FROM ${table} WHERE id = ?`),
        put: this.writer.prepare(
          `INSERT INTO ${table} (id, doc) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`,
        ),
        delete: this.writer.prepare(`DELETE FROM ${table} WHERE id = ?`),
      };
      this.writerTables.set(entry, statements);
    }
    return statements;
  }

  private createReader(): ReadModelReader {
    const resolve = (collection: string): CatalogEntry => {
      this.assertOpen();
      return this.catalog.resolve(collection);
    };
    return {
      get: async <T extends Doc = Doc>(collection: string, id: string) => {
        const entry = resolve(collection);
        const cache = this.caches.get(entry.spec.name);
        if (cache !== undefined) return cache.get(id) as T | undefined;
        const table = this.table(entry);
        const row = this.readerStatement(`SELECT doc FROM ${table} WHERE id = ?`).get(id) as
          { doc: string } | undefined;
        return row === undefined ? undefined : (JSON.parse(row.doc) as T);
      },
      find: async <T extends Doc = Doc>(collection: string, field: string, value: Scalar) => {
        const entry = resolve(collection);
        this.catalog.requireIndexed(entry, field);
        const cache = this.caches.get(entry.spec.name);
        if (cache !== undefined) return cache.find(field, value) as T[];
        const condition = equals(field, value);
        const rows = this.readerStatement(
          `SELECT doc FROM ${this.table(entry)} WHERE ${condition.sql} ORDER BY id`,
        ).all(condition.param) as { doc: string }[];
        return rows.map((row) => JSON.parse(row.doc) as T);
      },
      scan: async <T extends Doc = Doc>(collection: string) => {
        const entry = resolve(collection);
        const cache = this.caches.get(entry.spec.name);
        if (cache !== undefined) return cache.scan() as T[];
        const table = this.table(entry);
        const rows = this.readerStatement(`SELECT doc FROM ${table} ORDER BY id`).all() as {
          doc: string;
        }[];
        return rows.map((row) => JSON.parse(row.doc) as T);
      },
      count: async (collection: string) => {
        const entry = resolve(collection);
        const cache = this.caches.get(entry.spec.name);
        if (cache !== undefined) return cache.size;
        const table = this.table(entry);
        const row = this.readerStatement(`SELECT count(*) AS n FROM ${table}`).get() as {
          n: number;
        };
        return row.n;
      },
    };
  }

  private createWriter(
    projection: string,
    session: { readonly open: boolean },
    staged: Staged,
  ): ReadModelWriter {
    const own = (collection: string): CatalogEntry => {
      // A writer kept past its batch would write outside the batch's transaction.
      if (!session.open) throw new Error(`writer of '${projection}' used after its batch ended`);
      return this.catalog.resolveOwn(projection, collection);
    };
    // Writes to a cached collection are staged as frozen copies too: the writer reads them back
    // from there (its own writes) or from the cache (committed state), never parsing JSON.
    const stage = (collection: string): Map<string, Doc | null> | undefined => {
      if (!this.caches.has(collection)) return undefined;
      let changes = staged.get(collection);
      if (changes === undefined) staged.set(collection, (changes = new Map<string, Doc | null>()));
      return changes;
    };
    return {
      get: async <T extends Doc = Doc>(collection: string, id: string) => {
        const entry = own(collection);
        const cache = this.caches.get(collection);
        if (cache !== undefined) {
          const pending = staged.get(collection)?.get(id);
          if (pending !== undefined) return (pending ?? undefined) as T | undefined;
          return cache.get(id) as T | undefined;
        }
        const row = this.writerTable(entry).get.get(id) as { doc: string } | undefined;
        return row === undefined ? undefined : (JSON.parse(row.doc) as T);
      },
      findIds: async (collection: string, field: string, value: Scalar) => {
        const entry = own(collection);
        this.catalog.requireIndexed(entry, field);
        const condition = equals(field, value);
        return this.writerStatement(
          `SELECT id FROM ${this.table(entry)} WHERE ${condition.sql} ORDER BY id`,
        )
          .pluck()
          .all(condition.param) as string[];
      },
      put: async (collection: string, id: string, doc: Doc) => {
        const json = JSON.stringify(doc);
        this.writerTable(own(collection)).put.run(id, json);
        stage(collection)?.set(id, deepFreeze(JSON.parse(json) as Doc));
      },
      delete: async (collection: string, id: string) => {
        this.writerTable(own(collection)).delete.run(id);
        stage(collection)?.set(id, null);
      },
    };
  }
}
