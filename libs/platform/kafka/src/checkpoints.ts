import type { RecordedEvent } from '@ledgerflow/contracts';
import type { Projection, ReadModelStore } from '@ledgerflow/projections';

/** Where a publisher keeps the position it has published up to. */
export interface CheckpointStore {
  /** The stored position (0 when none). */
  load(name: string): Promise<number>;
  /** Stores `event.position` as the checkpoint; never moves a checkpoint back. */
  save(name: string, event: RecordedEvent): Promise<void>;
}

/**
 * Checkpoints kept in a ReadModelStore (SQLite next to the read models, or MongoDB), as the
 * checkpoint of an empty read model named after the publisher: the store's own atomic
 * "apply and checkpoint" stores it, and it can never go backwards.
 */
export class ReadModelCheckpointStore implements CheckpointStore {
  private readonly ready = new Map<string, Promise<Projection>>();

  constructor(private readonly store: ReadModelStore) {}

  private marker(name: string): Promise<Projection> {
    let ready = this.ready.get(name);
    if (ready === undefined) {
      const projection: Projection = {
        name,
        version: 1,
        collections: [],
        apply: () => {},
      };
      ready = this.store.setup(projection).then(() => projection);
      ready.catch(() => this.ready.delete(name));
      this.ready.set(name, ready);
    }
    return ready;
  }

  async load(name: string): Promise<number> {
    await this.marker(name);
    return (await this.store.checkpoint(name)).position;
  }

  async save(name: string, event: RecordedEvent): Promise<void> {
    await this.store.applyBatch(await this.marker(name), [event]);
  }
}
