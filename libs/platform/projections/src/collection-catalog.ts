import type { CollectionSpec, Projection } from './projection.js';

/** A collection as a store knows it: who owns it and which fields it may be queried by. */
export interface CatalogEntry {
  readonly projection: string;
  readonly spec: CollectionSpec;
  readonly indexes: ReadonlySet<string>;
}

// Index fields become part of SQL expressions (`json_extract(doc, '$.field')`) that must match the
// index text exactly, so they cannot be bound parameters: only plain identifiers are accepted.
const FIELD = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Which projection owns which collection. Readers address collections by name alone, so a name
 * may belong to one projection only; shared by every ReadModelStore adapter.
 */
export class CollectionCatalog {
  private readonly byCollection = new Map<string, CatalogEntry>();
  private readonly byProjection = new Map<string, readonly string[]>();

  /** Validates the projection's collections and (re)registers them under its name. */
  register(projection: Projection): readonly CatalogEntry[] {
    validateProjection(projection);
    for (const spec of projection.collections) {
      const owner = this.byCollection.get(spec.name)?.projection;
      if (owner !== undefined && owner !== projection.name) {
        throw new Error(
          `collection '${spec.name}' of projection '${projection.name}' already belongs to projection '${owner}'`,
        );
      }
    }
    for (const name of this.byProjection.get(projection.name) ?? []) this.byCollection.delete(name);
    const entries = projection.collections.map((spec) => ({
      projection: projection.name,
      spec,
      indexes: new Set(spec.indexes ?? []),
    }));
    for (const entry of entries) this.byCollection.set(entry.spec.name, entry);
    this.byProjection.set(
      projection.name,
      entries.map((e) => e.spec.name),
    );
    return entries;
  }

  isRegistered(projection: string): boolean {
    return this.byProjection.has(projection);
  }

  /** The collection for a reader query; throws for a name no set-up projection declares. */
  resolve(collection: string): CatalogEntry {
    const entry = this.byCollection.get(collection);
    if (entry === undefined) {
      throw new Error(
        `unknown read-model collection '${collection}' (is its projection set up in this store?)`,
      );
    }
    return entry;
  }

  /** The collection for a projection's own writes; throws when the projection does not declare it. */
  resolveOwn(projection: string, collection: string): CatalogEntry {
    const entry = this.byCollection.get(collection);
    if (entry === undefined || entry.projection !== projection) {
      throw new Error(`projection '${projection}' does not declare collection '${collection}'`);
    }
    return entry;
  }

  /** Throws unless `field` is a declared index of the collection: a query never silently scans. */
  requireIndexed(entry: CatalogEntry, field: string): void {
    if (!entry.indexes.has(field)) {
      throw new Error(`field '${field}' of collection '${entry.spec.name}' is not indexed`);
    }
  }
}

function validateProjection(projection: Projection): void {
  if (projection.name.length === 0) throw new Error('a projection needs a name');
  if (!Number.isInteger(projection.version)) {
    throw new Error(`projection '${projection.name}' needs an integer version`);
  }
  const seen = new Set<string>();
  for (const spec of projection.collections) {
    if (spec.name.length === 0) {
      throw new Error(`projection '${projection.name}' has a collection without a name`);
    }
    if (seen.has(spec.name)) {
      throw new Error(`projection '${projection.name}' declares collection '${spec.name}' twice`);
    }
    seen.add(spec.name);
    for (const field of spec.indexes ?? []) {
      if (!FIELD.test(field)) {
        throw new Error(
          `index field '${field}' of collection '${spec.name}' must be a plain identifier (top-level field)`,
        );
      }
    }
  }
}

/** Value of an indexed field as the equality queries see it: JSON scalars only, after JSON encoding. */
export type IndexValue = string | number | boolean;

/** The indexable value of `doc[field]` as it will read back from JSON, or undefined when not a scalar. */
export function indexValueOf(
  doc: Readonly<Record<string, unknown>>,
  field: string,
): IndexValue | undefined {
  let value = doc[field];
  if (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  ) {
    // A Date (or anything with toJSON) is stored as its JSON form, and queried as that.
    value = JSON.parse(JSON.stringify(value)) as unknown;
  }
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  return undefined;
}
