import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  compareCodePoints,
  ContentHasher,
  ProjectionApplyError,
  ProjectionVersionMismatchError,
  type Doc,
  type Projection,
  type ReadModelStore,
  type ReadModelWriter,
} from '@ledgerflow/projections';

/**
 * What a contract event asks the test projection to do. Driving every write through events keeps
 * the suite on the port's public surface: the only way to write a read model is applyBatch.
 */
export type ContractOp =
  | { readonly put: string; readonly id: string; readonly doc: Doc }
  | { readonly delete: string; readonly id: string }
  /** Reads a counter document through the writer and writes it back incremented. */
  | { readonly increment: string; readonly id: string }
  /** Records (in `seen`) which ids of `collection` the writer finds by `field` = `value`. */
  | {
      readonly findIds: string;
      readonly field: string;
      readonly value: string | number | boolean;
    }
  | { readonly fail: string }
  /** Awaits the contract's gate before going on: holds a batch open mid-transaction. */
  | { readonly gate: true };

/** A latch the test opens by hand: lets a test observe a store while a batch is half applied. */
export class Gate {
  private release: (() => void) | undefined;
  private enteredSignal: (() => void) | undefined;
  /** Resolves when an apply reaches the gate. */
  readonly entered = new Promise<void>((resolve) => (this.enteredSignal = resolve));
  private readonly opened = new Promise<void>((resolve) => (this.release = resolve));

  async pass(): Promise<void> {
    this.enteredSignal?.();
    await this.opened;
  }

  open(): void {
    this.release?.();
  }
}

interface TestProjectionOptions {
  readonly name?: string;
  readonly version?: number;
  readonly collections?: Projection['collections'];
  readonly gate?: Gate;
  /** Receives each applied event's position, and each findIds result. */
  readonly log?: unknown[];
  /** Receives the writer of each call, to check it dies with its batch. */
  readonly writers?: ReadModelWriter[];
}

/** A projection that executes the ContractOps in each event's data. */
export function contractProjection(options: TestProjectionOptions = {}): Projection {
  return {
    name: options.name ?? 'contract',
    version: options.version ?? 1,
    collections: options.collections ?? [
      { name: 'items', indexes: ['kind', 'rank', 'active'] },
      { name: 'counters' },
    ],
    async apply(event: RecordedEvent, writer: ReadModelWriter): Promise<void> {
      options.writers?.push(writer);
      options.log?.push(event.position);
      for (const op of event.data as readonly ContractOp[]) {
        if ('put' in op) await writer.put(op.put, op.id, op.doc);
        else if ('delete' in op) await writer.delete(op.delete, op.id);
        else if ('increment' in op) {
          const current = await writer.get<{ n: number }>(op.increment, op.id);
          await writer.put(op.increment, op.id, { n: (current?.n ?? 0) + 1 });
        } else if ('findIds' in op) {
          const ids = await writer.findIds(op.findIds, op.field, op.value);
          options.log?.push(ids);
        } else if ('fail' in op) throw new Error(op.fail);
        else await options.gate?.pass();
      }
    },
  };
}

/** A recorded event at `position` carrying `ops`; hashes are placeholders, stores do not check them. */
export function contractEvent(position: number, ...ops: ContractOp[]): RecordedEvent {
  return {
    id: `event-${position}`,
    type: 'ContractOpsRequested',
    schemaVersion: 1,
    occurredAt: 1_700_000_000_000 + position,
    data: ops,
    metadata: { actor: 'contract', correlationId: `c-${position}`, causationId: null },
    stream: 'contract-1',
    revision: position - 1,
    position,
    prevHash: '0'.repeat(64),
    hash: position.toString(16).padStart(64, '0'),
  };
}

/** Events at consecutive positions from `first`, one per op list. */
export function contractEvents(first: number, ...opsPerEvent: ContractOp[][]): RecordedEvent[] {
  return opsPerEvent.map((ops, i) => contractEvent(first + i, ...ops));
}

/**
 * The behaviour every ReadModelStore adapter must show. `factory` returns a fresh, empty store
 * each call; the suite closes it.
 */
export function describeReadModelStoreContract(
  name: string,
  factory: () => ReadModelStore | Promise<ReadModelStore>,
): void {
  describe(`${name} (ReadModelStore contract)`, () => {
    const opened: ReadModelStore[] = [];
    const open = async (): Promise<ReadModelStore> => {
      const store = await factory();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });

    const projection = contractProjection();
    const givenSetUp = async (p: Projection = projection): Promise<ReadModelStore> => {
      const store = await open();
      await store.setup(p);
      return store;
    };

    describe('setup and checkpoint', () => {
      it('starts with empty collections and no checkpoint', async () => {
        const store = await givenSetUp();

        expect(await store.checkpoint('contract')).toEqual({ position: 0, version: null });
        expect(await store.reader.count('items')).toBe(0);
        expect(await store.reader.scan('items')).toEqual([]);
        expect(await store.reader.get('items', 'a')).toBeUndefined();
        expect(await store.reader.find('items', 'kind', 'x')).toEqual([]);
      });

      it('is idempotent and keeps what is stored', async () => {
        const store = await givenSetUp();
        await store.applyBatch(projection, [
          contractEvent(1, { put: 'items', id: 'a', doc: { v: 1 } }),
        ]);

        await store.setup(projection);

        expect(await store.reader.get('items', 'a')).toEqual({ v: 1 });
        expect(await store.checkpoint('contract')).toEqual({ position: 1, version: 1 });
      });

      it('refuses a collection name that another projection already owns', async () => {
        const store = await givenSetUp();
        const rival = contractProjection({ name: 'rival', collections: [{ name: 'items' }] });

        await expect(store.setup(rival)).rejects.toThrow(
          /already belongs to projection 'contract'/,
        );
      });

      it('rejects queries of collections no projection declares', async () => {
        const store = await givenSetUp();

        await expect(store.reader.get('nope', 'a')).rejects.toThrow(
          /unknown read-model collection 'nope'/,
        );
      });

      it('rejects applying a projection that was not set up', async () => {
        const store = await open();

        await expect(store.applyBatch(projection, [contractEvent(1)])).rejects.toThrow(
          /not set up/,
        );
      });
    });

    describe('documents', () => {
      it('puts, replaces, gets and deletes documents', async () => {
        const store = await givenSetUp();

        const applied = await store.applyBatch(
          projection,
          contractEvents(
            1,
            [{ put: 'items', id: 'a', doc: { kind: 'x', nested: { list: [1, 'two', null] } } }],
            [{ put: 'items', id: 'b', doc: { kind: 'y' } }],
            [{ put: 'items', id: 'b', doc: { kind: 'z' } }],
            [{ put: 'items', id: 'c', doc: {} }],
            [{ delete: 'items', id: 'c' }],
            [{ delete: 'items', id: 'never-existed' }],
          ),
        );

        expect(applied).toBe(6);
        expect(await store.reader.get('items', 'a')).toEqual({
          kind: 'x',
          nested: { list: [1, 'two', null] },
        });
        expect(await store.reader.get('items', 'b')).toEqual({ kind: 'z' });
        expect(await store.reader.get('items', 'c')).toBeUndefined();
        expect(await store.reader.count('items')).toBe(2);
        expect(await store.checkpoint('contract')).toEqual({ position: 6, version: 1 });
      });

      it('stores JSON: undefined fields vanish, and a returned document is a copy', async () => {
        const store = await givenSetUp();
        const doc = { kind: 'x', gone: undefined, list: [1] };
        await store.applyBatch(projection, [contractEvent(1, { put: 'items', id: 'a', doc })]);
        doc.list.push(2);

        const first = await store.reader.get<{ kind: string; list: number[] }>('items', 'a');
        first?.list.push(3);

        expect(await store.reader.get('items', 'a')).toEqual({ kind: 'x', list: [1] });
        expect(Object.keys((await store.reader.get('items', 'a')) ?? {})).toEqual(['kind', 'list']);
      });

      it('scans and finds in code-point order of ids, as SQLite BINARY collation orders them', async () => {
        const store = await givenSetUp();
        const ids = ['b', 'a', 'B', '\u{1F600}', '\uE000', 'é', 'a0', ''];
        await store.applyBatch(
          projection,
          ids.map((id, i) => contractEvent(i + 1, { put: 'items', id, doc: { id, kind: 'k' } })),
        );

        const expected = ['', 'B', 'a', 'a0', 'b', 'é', '\uE000', '\u{1F600}'];
        expect((await store.reader.scan<{ id: string }>('items')).map((d) => d.id)).toEqual(
          expected,
        );
        expect(
          (await store.reader.find<{ id: string }>('items', 'kind', 'k')).map((d) => d.id),
        ).toEqual(expected);
      });

      it('finds by indexed fields, keeping JSON types apart', async () => {
        const store = await givenSetUp();
        await store.applyBatch(
          projection,
          contractEvents(
            1,
            [
              {
                put: 'items',
                id: 'text',
                doc: { tag: 'text', kind: '1', rank: '1', active: 'true' },
              },
            ],
            [{ put: 'items', id: 'number', doc: { tag: 'number', kind: 1, rank: 1, active: 1 } }],
            [{ put: 'items', id: 'float', doc: { tag: 'float', rank: 1.5 } }],
            [{ put: 'items', id: 'true', doc: { tag: 'true', kind: true, rank: 0, active: true } }],
            [{ put: 'items', id: 'false', doc: { tag: 'false', kind: false, active: false } }],
            [
              {
                put: 'items',
                id: 'nested',
                doc: { tag: 'nested', kind: { not: 'scalar' }, rank: [1] },
              },
            ],
            [{ put: 'items', id: 'null', doc: { tag: 'null', kind: null } }],
          ),
        );
        const tags = async (field: string, value: string | number | boolean): Promise<string[]> =>
          (await store.reader.find<{ tag: string }>('items', field, value)).map((d) => d.tag);

        expect(await tags('kind', '1')).toEqual(['text']);
        expect(await tags('kind', 1)).toEqual(['number']);
        expect(await tags('kind', true)).toEqual(['true']);
        expect(await tags('kind', false)).toEqual(['false']);
        expect(await tags('rank', 1)).toEqual(['number']);
        expect(await tags('rank', 1.5)).toEqual(['float']);
        expect(await tags('rank', 0)).toEqual(['true']);
        expect(await tags('active', 'true')).toEqual(['text']);
        expect(await tags('active', true)).toEqual(['true']);
        expect(await tags('kind', 'missing')).toEqual([]);
      });

      it('moves a document between index values when it changes, and forgets it when deleted', async () => {
        const store = await givenSetUp();
        await store.applyBatch(
          projection,
          contractEvents(
            1,
            [{ put: 'items', id: 'a', doc: { kind: 'old' } }],
            [{ put: 'items', id: 'b', doc: { kind: 'old' } }],
          ),
        );

        await store.applyBatch(
          projection,
          contractEvents(
            3,
            [{ put: 'items', id: 'a', doc: { kind: 'new' } }],
            [{ delete: 'items', id: 'b' }],
          ),
        );

        expect(await store.reader.find('items', 'kind', 'old')).toEqual([]);
        expect(await store.reader.find('items', 'kind', 'new')).toEqual([{ kind: 'new' }]);
      });

      it('refuses to query a field that is not indexed', async () => {
        const store = await givenSetUp();

        await expect(store.reader.find('items', 'colour', 'red')).rejects.toThrow(/not indexed/);
        await expect(
          store.applyBatch(projection, [
            contractEvent(1, { findIds: 'counters', field: 'n', value: 1 }),
          ]),
        ).rejects.toThrow(/not indexed/);
      });

      it('refuses writes to a collection the projection does not declare', async () => {
        const store = await givenSetUp();

        await expect(
          store.applyBatch(projection, [contractEvent(1, { put: 'elsewhere', id: 'a', doc: {} })]),
        ).rejects.toThrow(/does not declare collection 'elsewhere'/);
      });
    });

    describe('inside a batch', () => {
      it('lets the writer read the batch’s own writes', async () => {
        const store = await givenSetUp();
        const log: unknown[] = [];
        const p = contractProjection({ log });

        await store.applyBatch(
          p,
          contractEvents(
            1,
            [
              { increment: 'counters', id: 'n' },
              { increment: 'counters', id: 'n' },
            ],
            [{ increment: 'counters', id: 'n' }],
            [
              { put: 'items', id: 'a', doc: { kind: 'x' } },
              { put: 'items', id: 'b', doc: { kind: 'x' } },
              { findIds: 'items', field: 'kind', value: 'x' },
              { delete: 'items', id: 'a' },
              { findIds: 'items', field: 'kind', value: 'x' },
              { put: 'items', id: 'b', doc: { kind: 'y' } },
              { findIds: 'items', field: 'kind', value: 'x' },
            ],
          ),
        );

        expect(await store.reader.get('counters', 'n')).toEqual({ n: 3 });
        expect(log.filter((entry) => Array.isArray(entry))).toEqual([['a', 'b'], ['b'], []]);
      });

      it('hides a batch from readers until it commits', async () => {
        const store = await givenSetUp();
        await store.applyBatch(projection, [
          contractEvent(1, { put: 'items', id: 'a', doc: { v: 1 } }),
        ]);
        const gate = new Gate();
        const gated = contractProjection({ gate });

        const batch = store.applyBatch(
          gated,
          contractEvents(
            2,
            [
              { put: 'items', id: 'a', doc: { v: 2 } },
              { put: 'items', id: 'b', doc: { v: 2 } },
            ],
            [{ gate: true }],
          ),
        );
        await gate.entered;

        expect(await store.reader.get('items', 'a')).toEqual({ v: 1 });
        expect(await store.reader.get('items', 'b')).toBeUndefined();
        expect(await store.checkpoint('contract')).toEqual({ position: 1, version: 1 });

        gate.open();
        await batch;
        expect(await store.reader.get('items', 'a')).toEqual({ v: 2 });
        expect(await store.reader.get('items', 'b')).toEqual({ v: 2 });
        expect(await store.checkpoint('contract')).toEqual({ position: 3, version: 1 });
      });

      it('runs concurrent batches one after the other, never interleaved', async () => {
        const store = await givenSetUp();
        const gate = new Gate();
        const log: unknown[] = [];
        const p = contractProjection({ gate, log });

        const first = store.applyBatch(
          p,
          contractEvents(1, [{ gate: true }, { increment: 'counters', id: 'n' }]),
        );
        const second = store.applyBatch(
          p,
          contractEvents(1, [], [{ increment: 'counters', id: 'n' }]),
        );
        await gate.entered;
        gate.open();

        expect(await first).toBe(1);
        expect(await second).toBe(1);
        expect(log).toEqual([1, 2]);
        expect(await store.reader.get('counters', 'n')).toEqual({ n: 2 });
      });

      it('invalidates the writer once its batch is over', async () => {
        const store = await givenSetUp();
        const writers: ReadModelWriter[] = [];
        const p = contractProjection({ writers });
        await store.applyBatch(p, [contractEvent(1)]);

        await expect(writers[0]!.put('items', 'late', {})).rejects.toThrow(/after its batch ended/);
        expect(await store.reader.get('items', 'late')).toBeUndefined();
      });
    });

    describe('atomicity', () => {
      it('rolls back the whole batch when apply throws part-way', async () => {
        const store = await givenSetUp();
        await store.applyBatch(projection, [
          contractEvent(1, { put: 'items', id: 'kept', doc: { v: 1 } }),
        ]);
        const before = await store.contentHash(projection);

        const failing = store.applyBatch(
          projection,
          contractEvents(
            2,
            [{ put: 'items', id: 'new', doc: { kind: 'x' } }],
            [
              { put: 'items', id: 'kept', doc: { v: 2 } },
              { delete: 'items', id: 'kept' },
            ],
            [{ increment: 'counters', id: 'n' }, { fail: 'boom' }],
            [{ put: 'items', id: 'after', doc: {} }],
          ),
        );

        await expect(failing).rejects.toBeInstanceOf(ProjectionApplyError);
        await expect(failing).rejects.toMatchObject({
          projection: 'contract',
          position: 4,
          cause: expect.objectContaining({ message: 'boom' }) as unknown,
        });
        expect(await store.reader.get('items', 'new')).toBeUndefined();
        expect(await store.reader.get('items', 'kept')).toEqual({ v: 1 });
        expect(await store.reader.find('items', 'kind', 'x')).toEqual([]);
        expect(await store.reader.count('counters')).toBe(0);
        expect(await store.checkpoint('contract')).toEqual({ position: 1, version: 1 });
        expect(await store.contentHash(projection)).toBe(before);
      });

      it('rolls back when an async apply rejects after awaiting, and accepts the next batch', async () => {
        const store = await givenSetUp();
        const gate = new Gate();
        const p = contractProjection({ gate });
        const failing = store.applyBatch(
          p,
          contractEvents(1, [{ put: 'items', id: 'a', doc: {} }, { gate: true }, { fail: 'late' }]),
        );
        await gate.entered;
        gate.open();
        await expect(failing).rejects.toThrow(/late/);

        expect(
          await store.applyBatch(p, contractEvents(1, [{ put: 'items', id: 'b', doc: {} }])),
        ).toBe(1);
        expect((await store.reader.scan('items')).length).toBe(1);
        expect(await store.checkpoint('contract')).toEqual({ position: 1, version: 1 });
      });
    });

    describe('exactly once', () => {
      it('ignores a redelivered batch', async () => {
        const store = await givenSetUp();
        const batch = contractEvents(
          1,
          [{ increment: 'counters', id: 'n' }],
          [
            { increment: 'counters', id: 'n' },
            { put: 'items', id: 'a', doc: { kind: 'x' } },
          ],
        );
        await store.applyBatch(projection, batch);
        const hash = await store.contentHash(projection);

        expect(await store.applyBatch(projection, batch)).toBe(0);

        expect(await store.reader.get('counters', 'n')).toEqual({ n: 2 });
        expect(await store.contentHash(projection)).toBe(hash);
        expect(await store.checkpoint('contract')).toEqual({ position: 2, version: 1 });
      });

      it('applies only the new tail of an overlapping batch', async () => {
        const store = await givenSetUp();
        const log: unknown[] = [];
        const p = contractProjection({ log });
        const events = contractEvents(
          1,
          ...Array.from({ length: 5 }, (): ContractOp[] => [{ increment: 'counters', id: 'n' }]),
        );
        await store.applyBatch(p, events.slice(0, 3));

        expect(await store.applyBatch(p, events.slice(1, 5))).toBe(2);

        expect(log).toEqual([1, 2, 3, 4, 5]);
        expect(await store.reader.get('counters', 'n')).toEqual({ n: 5 });
        expect(await store.checkpoint('contract')).toEqual({ position: 5, version: 1 });
      });

      it('treats an empty batch as nothing to do', async () => {
        const store = await givenSetUp();

        expect(await store.applyBatch(projection, [])).toBe(0);
        expect(await store.checkpoint('contract')).toEqual({ position: 0, version: null });
      });
    });

    describe('content hash', () => {
      const docs: [string, Doc][] = [
        ['b', { kind: 'x', nested: { z: 1, a: [true, null, 'é'] } }],
        ['a', { rank: 2.5, kind: 'y' }],
        ['\u{1F600}', { kind: 'emoji' }],
      ];
      const putAll = (entries: [string, Doc][]): RecordedEvent[] =>
        entries.map(([id, doc], i) => contractEvent(i + 1, { put: 'items', id, doc }));
      const reversedKeys = (doc: Doc): Doc =>
        Object.fromEntries(
          Object.entries(doc)
            .reverse()
            .map(([k, v]) => [
              k,
              v !== null && typeof v === 'object' && !Array.isArray(v) ? reversedKeys(v as Doc) : v,
            ]),
        );

      it('is the shared definition: collections in spec order, then (id, canonical JSON) in id order', async () => {
        const store = await givenSetUp();
        await store.applyBatch(projection, [
          ...putAll(docs),
          contractEvent(4, { increment: 'counters', id: 'n' }),
        ]);

        const expected = new ContentHasher();
        expected.collection('items');
        for (const [id, doc] of [...docs].sort(([x], [y]) => compareCodePoints(x, y))) {
          expected.doc(id, doc);
        }
        expected.collection('counters');
        expected.doc('n', { n: 1 });

        expect(await store.contentHash(projection)).toBe(expected.digest());
      });

      it('does not depend on insertion order or key order', async () => {
        const one = await givenSetUp();
        const other = await givenSetUp();

        await one.applyBatch(projection, putAll(docs));
        await other.applyBatch(
          projection,
          putAll([...docs].reverse().map(([id, doc]): [string, Doc] => [id, reversedKeys(doc)])),
        );

        expect(await one.contentHash(projection)).toBe(await other.contentHash(projection));
        expect(await one.contentHash(projection)).toBe(await one.contentHash(projection));
      });

      it('changes when any document changes', async () => {
        const store = await givenSetUp();
        await store.applyBatch(projection, putAll(docs));
        const before = await store.contentHash(projection);

        await store.applyBatch(projection, [
          contractEvent(4, { put: 'items', id: 'a', doc: { rank: 2.5, kind: 'Y' } }),
        ]);

        expect(await store.contentHash(projection)).not.toBe(before);
      });

      it('differs between an empty read model and one with an empty document', async () => {
        const store = await givenSetUp();
        const empty = await store.contentHash(projection);

        await store.applyBatch(projection, [
          contractEvent(1, { put: 'counters', id: '', doc: {} }),
        ]);

        expect(await store.contentHash(projection)).not.toBe(empty);
      });
    });

    describe('cached collections', () => {
      const cachedCollections: Projection['collections'] = [
        { name: 'items', indexes: ['kind', 'rank', 'active'], cached: true },
        { name: 'counters', cached: true },
      ];
      const cached = contractProjection({ collections: cachedCollections });
      const kinds = async (store: ReadModelStore, kind: string): Promise<string[]> =>
        (await store.reader.find<{ id: string }>('items', 'kind', kind)).map((d) => d.id);

      it('serves get, find, scan and count with the same answers as storage', async () => {
        const store = await givenSetUp(cached);
        const ids = ['b', 'a', 'B', '\u{1F600}', '\uE000', 'é', 'a0', ''];
        await store.applyBatch(
          cached,
          ids.map((id, i) =>
            contractEvent(i + 1, {
              put: 'items',
              id,
              doc: { id, kind: i % 2 === 0 ? 'even' : 'odd', rank: i, gone: undefined },
            }),
          ),
        );

        const expected = ['', 'B', 'a', 'a0', 'b', 'é', '\uE000', '\u{1F600}'];
        expect((await store.reader.scan<{ id: string }>('items')).map((d) => d.id)).toEqual(
          expected,
        );
        expect(await kinds(store, 'even')).toEqual(['B', 'a0', 'b', '\uE000']);
        expect(await store.reader.find('items', 'rank', '1')).toEqual([]);
        expect(await store.reader.find('items', 'rank', 1)).toEqual([
          { id: 'a', kind: 'odd', rank: 1 },
        ]);
        expect(await store.reader.get('items', 'a')).toEqual({ id: 'a', kind: 'odd', rank: 1 });
        expect(await store.reader.count('items')).toBe(8);
        await expect(store.reader.find('items', 'id', 'a')).rejects.toThrow(/not indexed/);
      });

      it('hands out frozen documents, the same objects until they change', async () => {
        const store = await givenSetUp(cached);
        const doc = { kind: 'x', list: [1] };
        await store.applyBatch(cached, [contractEvent(1, { put: 'items', id: 'a', doc })]);
        doc.list.push(2);

        const first = await store.reader.get<{ kind: string; list: number[] }>('items', 'a');
        expect(() => first?.list.push(3)).toThrow(TypeError);
        expect(await store.reader.get('items', 'a')).toBe(first);
        expect((await store.reader.find('items', 'kind', 'x'))[0]).toBe(first);
        expect((await store.reader.scan('items'))[0]).toBe(first);
        expect(first).toEqual({ kind: 'x', list: [1] });

        await store.applyBatch(cached, [
          contractEvent(2, { put: 'items', id: 'a', doc: { kind: 'x', list: [9] } }),
        ]);
        const second = await store.reader.get('items', 'a');
        expect(second).not.toBe(first);
        expect(second).toEqual({ kind: 'x', list: [9] });
      });

      it('hands out frozen lists from find and scan, the same object until a member changes', async () => {
        const store = await givenSetUp(cached);
        await store.applyBatch(
          cached,
          contractEvents(
            1,
            [{ put: 'items', id: 'a', doc: { kind: 'x' } }],
            [{ put: 'items', id: 'b', doc: { kind: 'y' } }],
          ),
        );
        const xs = await store.reader.find('items', 'kind', 'x');
        const all = await store.reader.scan('items');
        expect(Object.isFrozen(xs)).toBe(true);
        expect(Object.isFrozen(all)).toBe(true);
        expect(await store.reader.find('items', 'kind', 'x')).toBe(xs);
        expect(await store.reader.scan('items')).toBe(all);

        await store.applyBatch(cached, [
          contractEvent(3, { put: 'items', id: 'b', doc: { kind: 'y', v: 2 } }),
        ]);
        expect(await store.reader.find('items', 'kind', 'x')).toBe(xs);
        expect(await store.reader.scan('items')).not.toBe(all);
        expect(all).toEqual([{ kind: 'x' }, { kind: 'y' }]);
        expect(await store.reader.scan('items')).toEqual([{ kind: 'x' }, { kind: 'y', v: 2 }]);
      });

      it('moves documents between index values and forgets deleted ones', async () => {
        const store = await givenSetUp(cached);
        await store.applyBatch(
          cached,
          contractEvents(1, [
            { put: 'items', id: 'a', doc: { id: 'a', kind: 'x' } },
            { put: 'items', id: 'b', doc: { id: 'b', kind: 'x' } },
            { put: 'items', id: 'c', doc: { id: 'c', kind: 'y' } },
          ]),
        );
        expect(await kinds(store, 'x')).toEqual(['a', 'b']);

        await store.applyBatch(
          cached,
          contractEvents(
            2,
            [{ put: 'items', id: 'a', doc: { id: 'a', kind: 'y' } }],
            [{ delete: 'items', id: 'b' }],
            [{ put: 'items', id: 'd', doc: { id: 'd' } }],
          ),
        );

        expect(await kinds(store, 'x')).toEqual([]);
        expect(await kinds(store, 'y')).toEqual(['a', 'c']);
        expect((await store.reader.scan<{ id: string }>('items')).map((d) => d.id)).toEqual([
          'a',
          'c',
          'd',
        ]);
        expect(await store.reader.count('items')).toBe(3);
      });

      it('keeps sorted views right across many small and large batches', async () => {
        const store = await givenSetUp(cached);
        const expected = new Map<string, string>();
        let position = 0;
        // sizes below and above the point where stores rebuild a view instead of patching it
        for (const size of [1, 3, 300, 2, 700, 5]) {
          const ops: ContractOp[] = [];
          for (let i = 0; i < size; i++) {
            const id = `id-${(position * 7919 + i * 104729) % 100003}`;
            if (i % 5 === 4 && expected.size > 0) {
              const victim = [...expected.keys()][i % expected.size]!;
              expected.delete(victim);
              ops.push({ delete: 'items', id: victim });
            } else {
              const kind = i % 3 === 0 ? 'x' : 'y';
              expected.set(id, kind);
              ops.push({ put: 'items', id, doc: { id, kind } });
            }
          }
          position += 1;
          await store.applyBatch(cached, [contractEvent(position, ...ops)]);
          const sorted = [...expected.keys()].sort(compareCodePoints);
          expect((await store.reader.scan<{ id: string }>('items')).map((d) => d.id)).toEqual(
            sorted,
          );
          expect(await kinds(store, 'x')).toEqual(sorted.filter((id) => expected.get(id) === 'x'));
        }
      });

      it('lets the writer read its own batch, and hides the batch from readers until it commits', async () => {
        const store = await givenSetUp(cached);
        await store.applyBatch(cached, [
          contractEvent(1, { put: 'items', id: 'a', doc: { v: 1, kind: 'x' } }),
        ]);
        const gate = new Gate();
        const gated = contractProjection({ gate, collections: cachedCollections });

        const batch = store.applyBatch(
          gated,
          contractEvents(
            2,
            [
              { increment: 'counters', id: 'n' },
              { increment: 'counters', id: 'n' },
              { put: 'items', id: 'a', doc: { v: 2, kind: 'y' } },
              { put: 'items', id: 'b', doc: { v: 2, kind: 'x' } },
            ],
            [{ gate: true }],
          ),
        );
        await gate.entered;

        expect(await store.reader.get('items', 'a')).toEqual({ v: 1, kind: 'x' });
        expect(await store.reader.get('items', 'b')).toBeUndefined();
        expect(await store.reader.find('items', 'kind', 'x')).toEqual([{ v: 1, kind: 'x' }]);
        expect(await store.reader.count('counters')).toBe(0);

        gate.open();
        await batch;
        expect(await store.reader.get('counters', 'n')).toEqual({ n: 2 });
        expect(await store.reader.find('items', 'kind', 'x')).toEqual([{ v: 2, kind: 'x' }]);
        expect(await store.reader.find('items', 'kind', 'y')).toEqual([{ v: 2, kind: 'y' }]);
      });

      it('leaves the cache untouched when a batch rolls back', async () => {
        const store = await givenSetUp(cached);
        await store.applyBatch(cached, [
          contractEvent(1, { put: 'items', id: 'kept', doc: { v: 1, kind: 'x' } }),
        ]);
        const kept = await store.reader.get('items', 'kept');

        const failing = store.applyBatch(
          cached,
          contractEvents(
            2,
            [{ put: 'items', id: 'new', doc: { kind: 'x' } }],
            [
              { put: 'items', id: 'kept', doc: { v: 2 } },
              { delete: 'items', id: 'kept' },
            ],
            [{ increment: 'counters', id: 'n' }, { fail: 'boom' }],
          ),
        );
        await expect(failing).rejects.toBeInstanceOf(ProjectionApplyError);

        expect(await store.reader.get('items', 'kept')).toBe(kept);
        expect(await store.reader.get('items', 'new')).toBeUndefined();
        expect(await store.reader.find('items', 'kind', 'x')).toEqual([{ v: 1, kind: 'x' }]);
        expect(await store.reader.count('counters')).toBe(0);
        expect(
          await store.applyBatch(cached, [contractEvent(2, { increment: 'counters', id: 'n' })]),
        ).toBe(1);
        expect(await store.reader.get('counters', 'n')).toEqual({ n: 1 });
      });

      it('empties on drop and fills again on rebuild, to the same content hash', async () => {
        const store = await givenSetUp(cached);
        const events = contractEvents(
          1,
          [{ put: 'items', id: 'a', doc: { kind: 'x' } }],
          [{ increment: 'counters', id: 'n' }],
        );
        await store.applyBatch(cached, events);
        const hash = await store.contentHash(cached);

        await store.drop(cached);
        await store.setup(cached);
        expect(await store.reader.count('items')).toBe(0);
        expect(await store.reader.find('items', 'kind', 'x')).toEqual([]);
        expect(await store.reader.get('counters', 'n')).toBeUndefined();

        await store.applyBatch(cached, events);
        expect(await store.reader.find('items', 'kind', 'x')).toEqual([{ kind: 'x' }]);
        expect(await store.reader.get('counters', 'n')).toEqual({ n: 1 });
        expect(await store.contentHash(cached)).toBe(hash);
      });

      it('loads what is stored when a collection becomes cached, and stops caching when it is not', async () => {
        const store = await givenSetUp(projection);
        await store.applyBatch(projection, [
          contractEvent(1, { put: 'items', id: 'a', doc: { kind: 'x' } }),
        ]);

        await store.setup(cached);
        const doc = await store.reader.get('items', 'a');
        expect(doc).toEqual({ kind: 'x' });
        expect(Object.isFrozen(doc)).toBe(true);
        expect(await store.reader.find('items', 'kind', 'x')).toEqual([{ kind: 'x' }]);

        await store.setup(projection);
        const copy = await store.reader.get('items', 'a');
        expect(copy).toEqual({ kind: 'x' });
        expect(Object.isFrozen(copy)).toBe(false);
      });
    });

    describe('drop', () => {
      it('deletes documents and checkpoint, leaving the collections usable', async () => {
        const store = await givenSetUp();
        await store.applyBatch(
          projection,
          contractEvents(
            1,
            [{ put: 'items', id: 'a', doc: { kind: 'x' } }],
            [{ increment: 'counters', id: 'n' }],
          ),
        );
        const emptyHash = await (await givenSetUp()).contentHash(projection);

        await store.drop(projection);
        await store.setup(projection);

        expect(await store.checkpoint('contract')).toEqual({ position: 0, version: null });
        expect(await store.reader.count('items')).toBe(0);
        expect(await store.reader.find('items', 'kind', 'x')).toEqual([]);
        expect(await store.contentHash(projection)).toBe(emptyHash);
        expect(
          await store.applyBatch(projection, [
            contractEvent(1, { put: 'items', id: 'b', doc: { kind: 'x' } }),
          ]),
        ).toBe(1);
        expect(await store.reader.find('items', 'kind', 'x')).toEqual([{ kind: 'x' }]);
      });

      it('leaves other projections alone', async () => {
        const store = await givenSetUp();
        const other = contractProjection({ name: 'other', collections: [{ name: 'others' }] });
        await store.setup(other);
        await store.applyBatch(projection, [contractEvent(1, { put: 'items', id: 'a', doc: {} })]);
        await store.applyBatch(other, [
          contractEvent(1, { put: 'others', id: 'a', doc: { mine: true } }),
        ]);

        await store.drop(projection);

        expect(await store.reader.get('others', 'a')).toEqual({ mine: true });
        expect(await store.checkpoint('other')).toEqual({ position: 1, version: 1 });
      });

      it('is what lets a new projection version apply: a stored read model of another version is refused', async () => {
        const store = await givenSetUp();
        await store.applyBatch(projection, [contractEvent(1, { put: 'items', id: 'a', doc: {} })]);
        const v2 = contractProjection({ version: 2 });

        await expect(store.applyBatch(v2, [contractEvent(2)])).rejects.toBeInstanceOf(
          ProjectionVersionMismatchError,
        );
        await store.drop(v2);
        await store.setup(v2);
        await store.applyBatch(v2, [contractEvent(1, { put: 'items', id: 'a', doc: { v: 2 } })]);

        expect(await store.checkpoint('contract')).toEqual({ position: 1, version: 2 });
      });
    });
  });
}
