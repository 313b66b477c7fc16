import type { RecordedEvent } from '@ledgerflow/contracts';

/** A named set of documents keyed by id, with top-level fields that can be looked up. */
export interface CollectionSpec {
  /** Unique within a store: readers address a collection by this name alone. */
  readonly name: string;
  /** Top-level document fields that findIds/find may query. */
  readonly indexes?: readonly string[];
  /**
   * Keep the collection's parsed documents in process memory (loaded on setup, updated only after a
   * batch commits), so that get/find/scan cost no I/O or parsing. Readers then share frozen
   * document objects, and find/scan return frozen arrays that stay the same object until one of
   * their documents changes (so callers may memoise work on them): never mutate what they return.
   */
  readonly cached?: boolean;
}

/** Plain JSON document stored in a read model. */
export type Doc = Record<string, unknown>;

/** Read access to read models: used by queries, and inside projections. */
export interface ReadModelReader {
  get<T extends Doc = Doc>(collection: string, id: string): Promise<T | undefined>;
  /** Documents whose indexed `field` equals `value`, ordered by id. */
  find<T extends Doc = Doc>(
    collection: string,
    field: string,
    value: string | number | boolean,
  ): Promise<T[]>;
  /** Every document of the collection, ordered by id. */
  scan<T extends Doc = Doc>(collection: string): Promise<T[]>;
  count(collection: string): Promise<number>;
}

/** Write access inside one projection transaction. Reads see this transaction's own writes. */
export interface ReadModelWriter {
  get<T extends Doc = Doc>(collection: string, id: string): Promise<T | undefined>;
  findIds(collection: string, field: string, value: string | number | boolean): Promise<string[]>;
  put(collection: string, id: string, doc: Doc): Promise<void>;
  delete(collection: string, id: string): Promise<void>;
}

/**
 * A read model built from the log. `apply` must be deterministic: everything it writes is derived
 * from the event and the current read model, never from the clock or randomness, so a rebuild
 * gives the same content hash.
 */
export interface Projection {
  /** Read-model name, unique per store (`ledgerflow rebuild <name>`). */
  readonly name: string;
  /** Bump when `apply` changes meaning: a stored read model of another version is rebuilt on start. */
  readonly version: number;
  readonly collections: readonly CollectionSpec[];
  apply(event: RecordedEvent, writer: ReadModelWriter): Promise<void> | void;
  /**
   * Where a worker thread can import this very projection from, so that an embedded store may
   * apply it off the main thread (its read model then lives in a database file of its own). Only
   * for projections with no `cached` collection; omitted, the projection runs on the main thread.
   */
  readonly offThread?: OffThreadSource;
}

/** A module a worker thread imports a projection from: `import(url)[exportName]`. */
export interface OffThreadSource {
  /** The defining module's `import.meta.url` (a `.ts` URL under test runners: not runnable there). */
  readonly url: string;
  readonly exportName: string;
}

/** Where read models and their checkpoints live: SQLite tables (embedded) or MongoDB collections. */
export interface ReadModelStore {
  readonly reader: ReadModelReader;
  /** Creates the projection's collections and indexes if absent. */
  setup(projection: Projection): Promise<void>;
  /** Stored checkpoint (last applied position, 0 if none) and the projection version it was built with. */
  checkpoint(name: string): Promise<{ position: number; version: number | null }>;
  /**
   * Applies events in order within one transaction and stores the checkpoint (the last event's
   * position) in the same transaction. Events at or below the stored checkpoint are skipped, so
   * redelivery has no effect. Either all of it commits, or none of it.
   * Resolves to the number of events applied (skipped ones not counted); an event that `apply`
   * rejects fails the whole batch with a ProjectionApplyError.
   */
  applyBatch(projection: Projection, events: readonly RecordedEvent[]): Promise<number>;
  /** Deletes the projection's documents and checkpoint. */
  drop(projection: Projection): Promise<void>;
  /** sha256 over every collection's documents in id order, with canonical (sorted-key) JSON. */
  contentHash(projection: Projection): Promise<string>;
  close(): Promise<void>;
}
