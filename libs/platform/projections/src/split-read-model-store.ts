import type { RecordedEvent } from '@ledgerflow/contracts';
import type { Doc, Projection, ReadModelReader, ReadModelStore } from './projection.js';

/**
 * Two read-model stores seen as one: the projections named in `sideProjections` (and their
 * collections, for readers) live in `side`, every other one in `main`. Embedded mode uses it to
 * give the metric history its own database file, written by a worker thread, while the other read
 * models stay where they were; callers (runner, queries, rebuild) see one ReadModelStore.
 */
export class SplitReadModelStore implements ReadModelStore {
  readonly reader: ReadModelReader;
  private readonly sideNames: ReadonlySet<string>;
  private readonly sideCollections: ReadonlySet<string>;

  constructor(
    private readonly main: ReadModelStore,
    private readonly side: ReadModelStore,
    sideProjections: readonly Projection[],
  ) {
    this.sideNames = new Set(sideProjections.map((p) => p.name));
    this.sideCollections = new Set(
      sideProjections.flatMap((p) => p.collections.map((c) => c.name)),
    );
    const pick = (collection: string): ReadModelReader =>
      this.sideCollections.has(collection) ? side.reader : main.reader;
    this.reader = {
      get: <T extends Doc = Doc>(collection: string, id: string) =>
        pick(collection).get<T>(collection, id),
      find: <T extends Doc = Doc>(
        collection: string,
        field: string,
        value: string | number | boolean,
      ) => pick(collection).find<T>(collection, field, value),
      scan: <T extends Doc = Doc>(collection: string) => pick(collection).scan<T>(collection),
      count: (collection: string) => pick(collection).count(collection),
    };
  }

  /** The store a projection's read model lives in. */
  storeOf(projection: string): ReadModelStore {
    return this.sideNames.has(projection) ? this.side : this.main;
  }

  async setup(projection: Projection): Promise<void> {
    if (!this.sideNames.has(projection.name)) {
      const taken = projection.collections.find((c) => this.sideCollections.has(c.name));
      if (taken !== undefined) {
        throw new Error(
          `collection '${taken.name}' of read model '${projection.name}' belongs to another read model`,
        );
      }
    }
    await this.storeOf(projection.name).setup(projection);
  }

  checkpoint(name: string): Promise<{ position: number; version: number | null }> {
    return this.storeOf(name).checkpoint(name);
  }

  applyBatch(projection: Projection, events: readonly RecordedEvent[]): Promise<number> {
    return this.storeOf(projection.name).applyBatch(projection, events);
  }

  drop(projection: Projection): Promise<void> {
    return this.storeOf(projection.name).drop(projection);
  }

  contentHash(projection: Projection): Promise<string> {
    return this.storeOf(projection.name).contentHash(projection);
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled([this.side.close(), this.main.close()]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
}
