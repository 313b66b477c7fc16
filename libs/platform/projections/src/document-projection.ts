import type { RecordedEvent } from '@ledgerflow/contracts';
import type { CollectionSpec, Doc, Projection, ReadModelWriter } from './projection.js';

/** The part of a projection that composes: its collections and how it applies an event. */
export type ProjectionPart = Pick<Projection, 'collections' | 'apply'>;

/** A read model of one collection written as a pure fold per document. */
export interface DocumentFold<TDoc extends Doc> {
  readonly collection: CollectionSpec;
  /** Ids of the documents the event changes; empty when it changes none. */
  keysOf(event: RecordedEvent): readonly string[];
  /** The document after the event, or undefined to delete it. Must not mutate `doc`. */
  evolve(doc: TDoc | undefined, event: RecordedEvent, key: string): TDoc | undefined;
}

export interface DocumentProjectionSpec<TDoc extends Doc> extends DocumentFold<TDoc> {
  readonly name: string;
  readonly version: number;
}

/** A projection part from a pure per-document fold: the I/O (get, put, delete) stays here. */
export function documentFold<TDoc extends Doc>(fold: DocumentFold<TDoc>): ProjectionPart {
  const collection = fold.collection.name;
  return {
    collections: [fold.collection],
    async apply(event: RecordedEvent, writer: ReadModelWriter): Promise<void> {
      for (const key of fold.keysOf(event)) {
        const current = await writer.get<TDoc>(collection, key);
        const next = fold.evolve(current, event, key);
        if (next !== undefined) await writer.put(collection, key, next);
        else if (current !== undefined) await writer.delete(collection, key);
      }
    },
  };
}

/** A one-collection projection from a pure per-document fold. */
export function documentProjection<TDoc extends Doc>(
  spec: DocumentProjectionSpec<TDoc>,
): Projection {
  return { name: spec.name, version: spec.version, ...documentFold(spec) };
}

/**
 * One projection (one checkpoint, one transaction per batch) over several parts, each applied in
 * order to every event. Bump `version` when any part changes meaning.
 */
export function composeProjections(
  name: string,
  version: number,
  parts: readonly ProjectionPart[],
): Projection {
  const collections = parts.flatMap((part) => part.collections);
  const names = new Set<string>();
  for (const c of collections) {
    if (names.has(c.name))
      throw new Error(`projection '${name}' declares collection '${c.name}' twice`);
    names.add(c.name);
  }
  return {
    name,
    version,
    collections,
    async apply(event: RecordedEvent, writer: ReadModelWriter): Promise<void> {
      for (const part of parts) {
        const pending = part.apply(event, writer);
        if (pending !== undefined) await pending;
      }
    },
  };
}
