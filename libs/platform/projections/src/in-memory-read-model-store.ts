import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  CollectionCatalog,
  indexValueOf,
  type CatalogEntry,
  type IndexValue,
} from './collection-catalog.js';
import { ContentHasher, compareCodePoints } from './canonical-json.js';
import { deepFreeze, DocumentCache } from './document-cache.js';
import type {
  Doc,
  Projection,
  ReadModelReader,
  ReadModelStore,
  ReadModelWriter,
} from './projection.js';
import { ProjectionApplyError, ProjectionVersionMismatchError } from './read-model-errors.js';
import { SerialQueue } from './serial-queue.js';

// Documents are kept as JSON text, like the SQLite store keeps them, so a caller mutating a
// returned object cannot change the store, and both adapters give the same JSON semantics.
interface Entry {
  readonly json: string;
  /** Index key of each declared index field, in the collection's index order. */
  readonly keys: readonly (string | undefined)[];
  /** The parsed, frozen document, kept for cached collections only. */
  readonly doc?: Doc;
}

interface Collection {
  readonly entry: CatalogEntry;
  readonly fields: readonly string[];
  readonly docs: Map<string, Entry>;
  /** field → index key → ids */
  readonly index: Map<string, Map<string, Set<string>>>;
  /** Present when the collection is declared `cached`: readers are served from it. */
  readonly cache?: DocumentCache;
}

interface Checkpoint {
  readonly position: number;
  readonly version: number;
}

/** Staged writes of one batch: null marks a delete. */
type Overlay = Map<string, Map<string, Entry | null>>;

function indexKey(value: IndexValue): string {
  return `${typeof value}:${String(value)}`;
}

/** Read models held in process memory, with the same transactional semantics as the SQLite store. */
export class InMemoryReadModelStore implements ReadModelStore {
  readonly reader: ReadModelReader;
  private readonly catalog = new CollectionCatalog();
  private readonly collections = new Map<string, Collection>();
  private readonly checkpoints = new Map<string, Checkpoint>();
  private readonly queue = new SerialQueue();
  private closed = false;

  constructor() {
    this.reader = {
      get: async <T extends Doc = Doc>(collection: string, id: string) => {
        const c = this.collectionOf(this.catalog.resolve(collection));
        if (c.cache !== undefined) return c.cache.get(id) as T | undefined;
        const entry = c.docs.get(id);
        return entry === undefined ? undefined : (JSON.parse(entry.json) as T);
      },
      find: async <T extends Doc = Doc>(
        collection: string,
        field: string,
        value: string | number | boolean,
      ) => {
        const c = this.collectionOf(this.catalog.resolve(collection));
        this.catalog.requireIndexed(c.entry, field);
        if (c.cache !== undefined) return c.cache.find(field, value) as T[];
        const ids = [...(c.index.get(field)?.get(indexKey(value)) ?? [])].sort(compareCodePoints);
        return ids.map((id) => JSON.parse(c.docs.get(id)?.json ?? 'null') as T);
      },
      scan: async <T extends Doc = Doc>(collection: string) => {
        const c = this.collectionOf(this.catalog.resolve(collection));
        if (c.cache !== undefined) return c.cache.scan() as T[];
        return [...c.docs.keys()]
          .sort(compareCodePoints)
          .map((id) => JSON.parse(c.docs.get(id)?.json ?? 'null') as T);
      },
      count: async (collection: string) =>
        this.collectionOf(this.catalog.resolve(collection)).docs.size,
    };
  }

  async setup(projection: Projection): Promise<void> {
    await this.queue.run(async () => {
      this.assertOpen();
      this.register(projection);
    });
  }

  async checkpoint(name: string): Promise<{ position: number; version: number | null }> {
    const stored = this.checkpoints.get(name);
    return { position: stored?.position ?? 0, version: stored?.version ?? null };
  }

  async applyBatch(projection: Projection, events: readonly RecordedEvent[]): Promise<number> {
    return this.queue.run(async () => {
      this.assertOpen();
      if (!this.catalog.isRegistered(projection.name)) {
        throw new Error(`read model '${projection.name}' is not set up`);
      }
      const stored = this.checkpoints.get(projection.name);
      if (stored !== undefined && stored.version !== projection.version) {
        throw new ProjectionVersionMismatchError(
          projection.name,
          stored.version,
          projection.version,
        );
      }
      let position = stored?.position ?? 0;
      const overlay: Overlay = new Map();
      const session = { open: true };
      const writer = this.writerFor(projection.name, overlay, session);
      let applied = 0;
      try {
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
      // Commit: synchronous from here on, so readers never observe part of the batch.
      for (const [name, staged] of overlay) {
        const c = this.collectionOf(this.catalog.resolveOwn(projection.name, name));
        for (const [id, entry] of staged) {
          if (entry === null) this.remove(c, id);
          else this.store(c, id, entry);
        }
        c.cache?.commit(
          new Map([...staged].map(([id, entry]) => [id, entry === null ? null : entry.doc!])),
        );
      }
      this.checkpoints.set(projection.name, { position, version: projection.version });
      return applied;
    });
  }

  async drop(projection: Projection): Promise<void> {
    await this.queue.run(async () => {
      this.assertOpen();
      // Validate first, so a refused projection leaves every collection as it was.
      this.catalog.register(projection);
      for (const spec of projection.collections) {
        const c = this.collections.get(spec.name);
        if (c !== undefined && c.entry.projection === projection.name)
          this.collections.delete(spec.name);
      }
      this.checkpoints.delete(projection.name);
      this.register(projection);
    });
  }

  async contentHash(projection: Projection): Promise<string> {
    const hasher = new ContentHasher();
    for (const spec of projection.collections) {
      hasher.collection(spec.name);
      const c = this.collections.get(spec.name);
      if (c === undefined || c.entry.projection !== projection.name) continue;
      for (const id of [...c.docs.keys()].sort(compareCodePoints)) {
        hasher.doc(id, JSON.parse(c.docs.get(id)?.json ?? 'null') as Doc);
      }
    }
    return hasher.digest();
  }

  async close(): Promise<void> {
    await this.queue.run(async () => {
      this.closed = true;
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('read-model store is closed');
  }

  private register(projection: Projection): void {
    for (const entry of this.catalog.register(projection)) {
      const fields = [...entry.indexes];
      const existing = this.collections.get(entry.spec.name);
      const sameIndexes =
        existing !== undefined &&
        existing.fields.length === fields.length &&
        existing.fields.every((f, i) => f === fields[i]);
      const cached = entry.spec.cached === true;
      const cache = cached ? new DocumentCache(fields) : undefined;
      if (existing !== undefined && sameIndexes) {
        const docs = new Map(
          [...existing.docs].map(([id, e]) => [id, this.withDoc(e, cached)] as const),
        );
        cache?.load([...docs].map(([id, e]) => [id, e.doc!] as const));
        this.collections.set(entry.spec.name, {
          entry,
          fields,
          docs,
          index: existing.index,
          ...(cache === undefined ? {} : { cache }),
        });
        continue;
      }
      const c: Collection = {
        entry,
        fields,
        docs: new Map(),
        index: new Map(),
        ...(cache === undefined ? {} : { cache }),
      };
      for (const [id, old] of existing?.docs ?? []) {
        this.store(c, id, this.entryOf(fields, JSON.parse(old.json) as Doc, cached));
      }
      cache?.load([...c.docs].map(([id, e]) => [id, e.doc!] as const));
      this.collections.set(entry.spec.name, c);
    }
  }

  private collectionOf(entry: CatalogEntry): Collection {
    const c = this.collections.get(entry.spec.name);
    if (c === undefined) throw new Error(`collection '${entry.spec.name}' is not set up`);
    return c;
  }

  private entryOf(fields: readonly string[], doc: Doc, cached: boolean): Entry {
    const json = JSON.stringify(doc);
    const keys = fields.map((field) => {
      const value = indexValueOf(doc, field);
      return value === undefined ? undefined : indexKey(value);
    });
    return cached ? { json, keys, doc: deepFreeze(JSON.parse(json) as Doc) } : { json, keys };
  }

  /** The entry with its parsed document when the collection is cached, without it otherwise. */
  private withDoc(entry: Entry, cached: boolean): Entry {
    if (!cached) return { json: entry.json, keys: entry.keys };
    return entry.doc !== undefined
      ? entry
      : { ...entry, doc: deepFreeze(JSON.parse(entry.json) as Doc) };
  }

  private store(c: Collection, id: string, entry: Entry): void {
    this.remove(c, id);
    c.docs.set(id, entry);
    c.fields.forEach((field, i) => {
      const key = entry.keys[i];
      if (key === undefined) return;
      let byKey = c.index.get(field);
      if (byKey === undefined) c.index.set(field, (byKey = new Map<string, Set<string>>()));
      let ids = byKey.get(key);
      if (ids === undefined) byKey.set(key, (ids = new Set()));
      ids.add(id);
    });
  }

  private remove(c: Collection, id: string): void {
    const old = c.docs.get(id);
    if (old === undefined) return;
    c.docs.delete(id);
    c.fields.forEach((field, i) => {
      const key = old.keys[i];
      if (key === undefined) return;
      const byKey = c.index.get(field);
      const ids = byKey?.get(key);
      ids?.delete(id);
      if (ids?.size === 0) byKey?.delete(key);
    });
  }

  private writerFor(
    projection: string,
    overlay: Overlay,
    session: { open: boolean },
  ): ReadModelWriter {
    const own = (collection: string): Collection => {
      // A writer kept past its batch would write outside any transaction.
      if (!session.open) throw new Error(`writer of '${projection}' used after its batch ended`);
      return this.collectionOf(this.catalog.resolveOwn(projection, collection));
    };
    const staged = (collection: string): Map<string, Entry | null> => {
      let m = overlay.get(collection);
      if (m === undefined) overlay.set(collection, (m = new Map<string, Entry | null>()));
      return m;
    };
    return {
      get: async <T extends Doc = Doc>(collection: string, id: string) => {
        const c = own(collection);
        const pending = overlay.get(collection)?.get(id);
        const entry = pending === undefined ? c.docs.get(id) : pending;
        if (entry === null || entry === undefined) return undefined;
        return (entry.doc ?? JSON.parse(entry.json)) as T;
      },
      findIds: async (collection: string, field: string, value: string | number | boolean) => {
        const c = own(collection);
        this.catalog.requireIndexed(c.entry, field);
        const fieldIndex = c.fields.indexOf(field);
        const key = indexKey(value);
        const pending = overlay.get(collection);
        const ids = new Set<string>();
        for (const id of c.index.get(field)?.get(key) ?? []) {
          if (pending?.has(id) !== true) ids.add(id);
        }
        for (const [id, entry] of pending ?? []) {
          if (entry !== null && entry.keys[fieldIndex] === key) ids.add(id);
        }
        return [...ids].sort(compareCodePoints);
      },
      put: async (collection: string, id: string, doc: Doc) => {
        const c = own(collection);
        staged(collection).set(id, this.entryOf(c.fields, doc, c.cache !== undefined));
      },
      delete: async (collection: string, id: string) => {
        own(collection);
        staged(collection).set(id, null);
      },
    };
  }
}
