import { compareCodePoints } from './canonical-json.js';
import { indexValueOf, type IndexValue } from './collection-catalog.js';
import type { Doc } from './projection.js';

/** Staged changes of one batch to one cached collection: null marks a delete. */
export type CacheChanges = ReadonlyMap<string, Doc | null>;

/** Freezes a parsed JSON value all the way down: cached documents are shared by every reader. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  }
  return value;
}

/** A document as a reader will get it from JSON storage, parsed once and frozen. */
export function cachedCopy(doc: Doc): Doc {
  return deepFreeze(JSON.parse(JSON.stringify(doc)) as Doc);
}

function indexKey(value: IndexValue): string {
  return `${typeof value}:${String(value)}`;
}

/** Ids in code-point order and their documents, kept side by side. */
interface Ordered {
  ids: string[];
  docs: Doc[];
}

// Sorted views are patched in place while a batch changes few members, and dropped (rebuilt on
// the next read) when it changes many: a rebuild replaying thousands of new ids must not pay
// one array shift per id.
const PATCH_LIMIT = 256;

const EMPTY: readonly Doc[] = Object.freeze([]);

function search(ids: readonly string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareCodePoints(ids[mid]!, id) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * One index bucket (or the whole collection): member ids, a lazily built sorted view, and a frozen
 * snapshot of that view handed to readers. The snapshot is replaced (copy on write) when a member
 * changes, so the same array object means the same documents: callers may memoise on it.
 */
class Bucket {
  readonly ids = new Set<string>();
  ordered: Ordered | null = null;
  snapshot: readonly Doc[] | null = null;
  /** Membership changes in the batch being committed; beyond PATCH_LIMIT the view is dropped. */
  pending = 0;

  view(docs: ReadonlyMap<string, Doc>): readonly Doc[] {
    if (this.ordered === null) {
      const ids = [...this.ids].sort(compareCodePoints);
      this.ordered = { ids, docs: ids.map((id) => docs.get(id)!) };
    }
    this.snapshot ??= Object.freeze(this.ordered.docs.slice());
    return this.snapshot;
  }

  add(id: string, doc: Doc): void {
    this.ids.add(id);
    this.snapshot = null;
    const o = this.ordered;
    if (o === null) return;
    if ((this.pending += 1) > PATCH_LIMIT) {
      this.ordered = null;
      return;
    }
    const at = search(o.ids, id);
    o.ids.splice(at, 0, id);
    o.docs.splice(at, 0, doc);
  }

  replace(id: string, doc: Doc): void {
    this.snapshot = null;
    const o = this.ordered;
    if (o === null) return;
    o.docs[search(o.ids, id)] = doc;
  }

  remove(id: string): void {
    this.ids.delete(id);
    this.snapshot = null;
    const o = this.ordered;
    if (o === null) return;
    if ((this.pending += 1) > PATCH_LIMIT) {
      this.ordered = null;
      return;
    }
    const at = search(o.ids, id);
    o.ids.splice(at, 1);
    o.docs.splice(at, 1);
  }
}

/**
 * The parsed, frozen documents of one read-model collection held in memory, with its equality
 * indexes and id-ordered views. Stores keep it equal to what they have committed: they load it when
 * the collection is set up and apply a batch's changes only after the batch commits, so readers
 * never see uncommitted state. Every reader gets the same document objects, which is what lets
 * queries memoise per-document work (e.g. lookup maps in a WeakMap).
 */
export class DocumentCache {
  private readonly docs = new Map<string, Doc>();
  private readonly all = new Bucket();
  private readonly indexes = new Map<string, Map<string, Bucket>>();

  constructor(readonly fields: readonly string[]) {
    for (const field of fields) this.indexes.set(field, new Map());
  }

  /** Fills an empty cache from committed documents (already parsed; they are frozen here). */
  load(entries: Iterable<readonly [string, Doc]>): void {
    for (const [id, doc] of entries) this.insert(id, deepFreeze(doc));
  }

  get size(): number {
    return this.docs.size;
  }

  get(id: string): Doc | undefined {
    return this.docs.get(id);
  }

  /** Every document, in code-point order of ids: a frozen array, the same until one changes. */
  scan(): readonly Doc[] {
    return this.all.view(this.docs);
  }

  /** Documents whose indexed `field` equals `value`, in code-point order of ids (frozen, shared). */
  find(field: string, value: IndexValue): readonly Doc[] {
    const bucket = this.indexes.get(field)?.get(indexKey(value));
    return bucket === undefined ? EMPTY : bucket.view(this.docs);
  }

  /** Applies a committed batch: documents must already be frozen copies (see cachedCopy). */
  commit(changes: CacheChanges): void {
    for (const [id, doc] of changes) {
      if (doc === null) this.delete(id);
      else this.insert(id, doc);
    }
    this.all.pending = 0;
    for (const buckets of this.indexes.values()) for (const b of buckets.values()) b.pending = 0;
  }

  private keyOf(field: string, doc: Doc | undefined): string | undefined {
    if (doc === undefined) return undefined;
    const value = indexValueOf(doc, field);
    return value === undefined ? undefined : indexKey(value);
  }

  private insert(id: string, doc: Doc): void {
    const old = this.docs.get(id);
    this.docs.set(id, doc);
    if (old === undefined) this.all.add(id, doc);
    else this.all.replace(id, doc);
    for (const field of this.fields) {
      const buckets = this.indexes.get(field)!;
      const from = this.keyOf(field, old);
      const to = this.keyOf(field, doc);
      if (from === to) {
        if (to !== undefined) buckets.get(to)?.replace(id, doc);
        continue;
      }
      if (from !== undefined) this.leave(buckets, from, id);
      if (to !== undefined) {
        let bucket = buckets.get(to);
        if (bucket === undefined) buckets.set(to, (bucket = new Bucket()));
        bucket.add(id, doc);
      }
    }
  }

  private delete(id: string): void {
    const old = this.docs.get(id);
    if (old === undefined) return;
    this.docs.delete(id);
    this.all.remove(id);
    for (const field of this.fields) {
      const key = this.keyOf(field, old);
      if (key !== undefined) this.leave(this.indexes.get(field)!, key, id);
    }
  }

  private leave(buckets: Map<string, Bucket>, key: string, id: string): void {
    const bucket = buckets.get(key);
    if (bucket === undefined) return;
    bucket.remove(id);
    if (bucket.ids.size === 0) buckets.delete(key);
  }
}
