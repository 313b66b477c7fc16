import type { RecordedEvent } from '@ledgerflow/contracts';
import { InMemoryReadModelStore } from './in-memory-read-model-store.js';
import type { Projection } from './projection.js';
import { SplitReadModelStore } from './split-read-model-store.js';

function event(position: number, value: string): RecordedEvent {
  return {
    id: `e${position}`,
    stream: 's',
    revision: position - 1,
    position,
    type: 'Noted',
    schemaVersion: 1,
    occurredAt: 0,
    data: { value },
    metadata: { actor: 'a', correlationId: 'c' },
    hash: '',
    prevHash: '',
  } as unknown as RecordedEvent;
}

function noting(name: string, collection: string): Projection {
  return {
    name,
    version: 1,
    collections: [{ name: collection, indexes: ['value'] }],
    async apply(e, writer) {
      await writer.put(collection, String(e.position), {
        value: (e.data as { value: string }).value,
      });
    },
  };
}

describe('SplitReadModelStore', () => {
  const sideProjection = noting('side', 'side_docs');
  const mainProjection = noting('main', 'main_docs');

  it('keeps each read model, its checkpoint and its readers in its own store', async () => {
    const main = new InMemoryReadModelStore();
    const side = new InMemoryReadModelStore();
    const split = new SplitReadModelStore(main, side, [sideProjection]);
    await split.setup(mainProjection);
    await split.setup(sideProjection);
    expect(await split.applyBatch(sideProjection, [event(1, 'a'), event(2, 'b')])).toBe(2);
    expect(await split.applyBatch(mainProjection, [event(1, 'x')])).toBe(1);

    expect(await side.reader.count('side_docs')).toBe(2);
    await expect(main.reader.count('side_docs')).rejects.toThrow();
    expect(await main.reader.count('main_docs')).toBe(1);
    expect(await split.reader.get('side_docs', '2')).toEqual({ value: 'b' });
    expect(await split.reader.find('side_docs', 'value', 'a')).toEqual([{ value: 'a' }]);
    expect(await split.reader.scan('main_docs')).toEqual([{ value: 'x' }]);
    expect(await split.checkpoint('side')).toEqual({ position: 2, version: 1 });
    expect(await split.checkpoint('main')).toEqual({ position: 1, version: 1 });
    expect(await split.contentHash(sideProjection)).toBe(await side.contentHash(sideProjection));

    await split.drop(sideProjection);
    expect(await split.checkpoint('side')).toEqual({ position: 0, version: null });
    expect(await split.checkpoint('main')).toEqual({ position: 1, version: 1 });
    const closed: string[] = [];
    main.close = async () => void closed.push('main');
    side.close = async () => void closed.push('side');
    await split.close();
    expect(closed.sort()).toEqual(['main', 'side']);
  });

  it('refuses a main read model that claims a collection of a side one', async () => {
    const split = new SplitReadModelStore(
      new InMemoryReadModelStore(),
      new InMemoryReadModelStore(),
      [sideProjection],
    );
    await expect(split.setup(noting('other', 'side_docs'))).rejects.toThrow(
      "collection 'side_docs' of read model 'other' belongs to another read model",
    );
  });
});
