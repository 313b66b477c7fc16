import { computeEventHash, GENESIS_HASH, hashFieldsOf } from '@ledgerflow/contracts';
import type { EventMetadata, NewEvent, RecordedEvent } from '@ledgerflow/contracts';
import { DuplicateEventIdError, WrongExpectedRevisionError } from '@ledgerflow/event-store';
import type { EventStore, Subscription } from '@ledgerflow/event-store';

/** A fresh, empty store for one test, and how to dispose of it. */
export interface EventStoreFixture {
  readonly store: EventStore;
  cleanup(): Promise<void>;
}

let eventSeq = 0;

/** A NewEvent with a unique id and fixed, non-default metadata. */
export function newTestEvent(
  type = 'ThingHappened',
  data: unknown = { n: eventSeq },
  metadata: Partial<EventMetadata> = {},
): NewEvent {
  eventSeq += 1;
  return {
    id: `evt-${eventSeq.toString().padStart(6, '0')}`,
    type,
    schemaVersion: 1,
    occurredAt: 1_700_000_000_000 + eventSeq,
    data,
    metadata: { actor: 'alice', correlationId: `corr-${eventSeq}`, causationId: null, ...metadata },
  };
}

function newTestEvents(count: number): NewEvent[] {
  return Array.from({ length: count }, () => newTestEvent());
}

/** Collects what a subscription delivers, and lets a test await a count without sleeping. */
class SubscriptionRecorder {
  readonly events: RecordedEvent[] = [];
  readonly batchSizes: number[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];

  readonly handler = (batch: readonly RecordedEvent[]): void => {
    this.events.push(...batch);
    this.batchSizes.push(batch.length);
    const ready = this.waiters.filter((w) => this.events.length >= w.count);
    this.waiters = this.waiters.filter((w) => this.events.length < w.count);
    for (const w of ready) w.resolve();
  };

  until(count: number): Promise<void> {
    if (this.events.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  positions(): number[] {
    return this.events.map((e) => e.position);
  }
}

/** A promise with its resolve function, to hold a handler until the test releases it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Lets already-queued I/O and timers-at-zero callbacks run; used to show something did NOT happen. */
async function drainEventLoop(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/**
 * The behaviour every EventStore adapter must have. Call inside a spec file with a factory that
 * returns a fresh, empty store for each test.
 */
export function describeEventStoreContract(
  name: string,
  factory: () => Promise<EventStoreFixture>,
): void {
  describe(`EventStore contract: ${name}`, () => {
    let fixture: EventStoreFixture;
    let store: EventStore;

    beforeEach(async () => {
      fixture = await factory();
      store = fixture.store;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    describe('an empty log', () => {
      it('has head 0, no events, absent streams at revision -1, and verifies', async () => {
        expect(await store.headPosition()).toBe(0);
        expect(await store.readAll(0)).toEqual([]);
        expect(await store.readStream('nothing')).toEqual([]);
        expect(await store.streamRevision('nothing')).toBe(-1);
        expect(await store.verify()).toEqual({
          ok: true,
          count: 0,
          headPosition: 0,
          headHash: GENESIS_HASH,
        });
      });
    });

    describe('append and read', () => {
      it('gives revisions from 0 and positions from 1, and returns the stored events', async () => {
        const events = newTestEvents(3);
        const result = await store.append('order-1', 'no_stream', events);
        expect(result.events.map((e) => [e.id, e.stream, e.revision, e.position])).toEqual([
          [events[0]!.id, 'order-1', 0, 1],
          [events[1]!.id, 'order-1', 1, 2],
          [events[2]!.id, 'order-1', 2, 3],
        ]);
        expect(result.lastPosition).toBe(3);
        expect([...result.revisions]).toEqual([['order-1', 2]]);
        expect(await store.streamRevision('order-1')).toBe(2);
        expect(await store.headPosition()).toBe(3);
        expect(await store.readStream('order-1')).toEqual(result.events);
      });

      it('keeps positions contiguous across appends to interleaved streams', async () => {
        await store.append('a', 'no_stream', newTestEvents(2));
        await store.append('b', 'no_stream', newTestEvents(3));
        await store.append('a', 1, newTestEvents(1));
        await store.append('c', 'any', newTestEvents(4));
        await store.append('b', 'stream_exists', newTestEvents(2));
        const all = await store.readAll(0);
        expect(all.map((e) => e.position)).toEqual(range(1, 12));
        expect(all.map((e) => `${e.stream}:${e.revision}`)).toEqual([
          'a:0',
          'a:1',
          'b:0',
          'b:1',
          'b:2',
          'a:2',
          'c:0',
          'c:1',
          'c:2',
          'c:3',
          'b:3',
          'b:4',
        ]);
        expect((await store.readStream('b')).map((e) => e.revision)).toEqual([0, 1, 2, 3, 4]);
        expect((await store.readStream('b')).map((e) => e.position)).toEqual([3, 4, 5, 11, 12]);
      });

      it('reads a stream from a revision with a maximum count', async () => {
        await store.append('s', 'no_stream', newTestEvents(10));
        expect((await store.readStream('s', { fromRevision: 4 })).map((e) => e.revision)).toEqual(
          range(4, 9),
        );
        expect(
          (await store.readStream('s', { fromRevision: 2, maxCount: 3 })).map((e) => e.revision),
        ).toEqual([2, 3, 4]);
        expect(await store.readStream('s', { fromRevision: 10 })).toEqual([]);
        expect(await store.readStream('s', { maxCount: 0 })).toEqual([]);
      });

      it('reads the log after a position with a maximum count', async () => {
        await store.append('x', 'no_stream', newTestEvents(4));
        await store.append('y', 'no_stream', newTestEvents(4));
        expect((await store.readAll(3)).map((e) => e.position)).toEqual(range(4, 8));
        expect((await store.readAll(2, 3)).map((e) => e.position)).toEqual([3, 4, 5]);
        expect(await store.readAll(8)).toEqual([]);
        expect(await store.readAll(100)).toEqual([]);
      });

      it('round-trips every metadata field and the data', async () => {
        const data = {
          text: 'héllo \u2603 "quoted" \\ back',
          int: 42,
          float: 0.1 + 0.2,
          negative: -7,
          flag: false,
          nothing: null,
          list: [1, 'two', { three: 3 }],
          nested: { deeper: { deepest: [] } },
        };
        const full = newTestEvent('ModelVersionStageTransitioned', data, {
          actor: 'bob@example.com',
          correlationId: 'corr-abc',
          causationId: 'cmd-123',
          traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
          reason: 'passed validation',
        });
        const minimal: NewEvent = {
          id: 'evt-minimal',
          type: 'Minimal',
          schemaVersion: 3,
          occurredAt: 1_234,
          data: 'just a string',
          metadata: { actor: 'system', correlationId: 'corr-min', causationId: null },
        };
        await store.append('model-version:fraud-rf:7', 'no_stream', [full, minimal]);
        const [a, b] = await store.readStream('model-version:fraud-rf:7');
        expect(a).toEqual({
          ...full,
          metadata: { ...full.metadata },
          stream: 'model-version:fraud-rf:7',
          revision: 0,
          position: 1,
          prevHash: GENESIS_HASH,
          hash: a!.hash,
        });
        // Optional metadata absent on the way in comes back as explicit nulls.
        expect(b).toMatchObject({
          id: 'evt-minimal',
          type: 'Minimal',
          schemaVersion: 3,
          occurredAt: 1_234,
          data: 'just a string',
          metadata: {
            actor: 'system',
            correlationId: 'corr-min',
            causationId: null,
            traceId: null,
            reason: null,
          },
        });
        expect(await store.readAll(0)).toEqual([a, b]);
      });

      it('stores a copy of the data: later mutation on either side changes nothing', async () => {
        const data = { list: [1, 2] };
        await store.append('s', 'no_stream', [newTestEvent('T', data)]);
        data.list.push(3);
        const [first] = await store.readStream('s');
        (first!.data as { list: number[] }).list.push(4);
        const [again] = await store.readStream('s');
        expect(again!.data).toEqual({ list: [1, 2] });
        expect((await store.verify()).ok).toBe(true);
      });
    });

    describe('expected revision', () => {
      it('no_stream: accepts an absent stream, rejects an existing one', async () => {
        await store.append('s', 'no_stream', newTestEvents(1));
        await expect(store.append('s', 'no_stream', newTestEvents(1))).rejects.toBeInstanceOf(
          WrongExpectedRevisionError,
        );
      });

      it('stream_exists: rejects an absent stream, accepts an existing one', async () => {
        await expect(store.append('s', 'stream_exists', newTestEvents(1))).rejects.toBeInstanceOf(
          WrongExpectedRevisionError,
        );
        await store.append('s', 'any', newTestEvents(1));
        await store.append('s', 'stream_exists', newTestEvents(1));
        expect(await store.streamRevision('s')).toBe(1);
      });

      it('any: accepts both', async () => {
        await store.append('s', 'any', newTestEvents(2));
        await store.append('s', 'any', newTestEvents(1));
        expect(await store.streamRevision('s')).toBe(2);
      });

      it("a number: accepts only the stream's last revision", async () => {
        await expect(store.append('s', 0, newTestEvents(1))).rejects.toBeInstanceOf(
          WrongExpectedRevisionError,
        );
        await store.append('s', 'no_stream', newTestEvents(3));
        await expect(store.append('s', 1, newTestEvents(1))).rejects.toBeInstanceOf(
          WrongExpectedRevisionError,
        );
        await expect(store.append('s', 3, newTestEvents(1))).rejects.toBeInstanceOf(
          WrongExpectedRevisionError,
        );
        await store.append('s', 2, newTestEvents(1));
        expect(await store.streamRevision('s')).toBe(3);
      });

      it('a conflict names the stream and both revisions, and writes nothing', async () => {
        await store.append('s', 'no_stream', newTestEvents(2));
        const before = await store.readAll(0);
        const failed = store.append('s', 0, newTestEvents(3));
        await expect(failed).rejects.toMatchObject({
          name: 'WrongExpectedRevisionError',
          stream: 's',
          expected: 0,
          actual: 1,
        });
        expect(await store.readAll(0)).toEqual(before);
        expect(await store.headPosition()).toBe(2);
        expect(await store.streamRevision('s')).toBe(1);
        // The log continues without a gap after a rejected append.
        const next = await store.append('s', 1, newTestEvents(1));
        expect(next.events[0]!.position).toBe(3);
        expect((await store.verify()).ok).toBe(true);
      });
    });

    describe('appendMulti', () => {
      it('writes several streams in one atomic append, in the order given', async () => {
        await store.append('a', 'no_stream', newTestEvents(1));
        const result = await store.appendMulti([
          { stream: 'b', expectedRevision: 'no_stream', events: newTestEvents(2) },
          { stream: 'a', expectedRevision: 0, events: newTestEvents(1) },
        ]);
        expect(result.events.map((e) => `${e.position} ${e.stream}:${e.revision}`)).toEqual([
          '2 b:0',
          '3 b:1',
          '4 a:1',
        ]);
        expect(result.lastPosition).toBe(4);
        expect(Object.fromEntries(result.revisions)).toEqual({ a: 1, b: 1 });
      });

      it('writes nothing from any stream when one expectation fails', async () => {
        await store.append('a', 'no_stream', newTestEvents(1));
        await expect(
          store.appendMulti([
            { stream: 'b', expectedRevision: 'no_stream', events: newTestEvents(2) },
            { stream: 'c', expectedRevision: 'any', events: newTestEvents(2) },
            { stream: 'a', expectedRevision: 5, events: newTestEvents(1) },
          ]),
        ).rejects.toMatchObject({
          name: 'WrongExpectedRevisionError',
          stream: 'a',
          expected: 5,
          actual: 0,
        });
        expect(await store.headPosition()).toBe(1);
        expect(await store.streamRevision('b')).toBe(-1);
        expect(await store.streamRevision('c')).toBe(-1);
        expect((await store.readAll(0)).length).toBe(1);
      });

      it("lets a write with no events assert another stream's revision", async () => {
        await store.append('policy', 'no_stream', newTestEvents(2));
        await expect(
          store.appendMulti([
            { stream: 'policy', expectedRevision: 0, events: [] },
            { stream: 'model', expectedRevision: 'any', events: newTestEvents(1) },
          ]),
        ).rejects.toBeInstanceOf(WrongExpectedRevisionError);
        const result = await store.appendMulti([
          { stream: 'policy', expectedRevision: 1, events: [] },
          { stream: 'model', expectedRevision: 'any', events: newTestEvents(1) },
        ]);
        expect(result.events.map((e) => e.stream)).toEqual(['model']);
        expect(await store.streamRevision('policy')).toBe(1);
      });

      it('rejects the same stream twice', async () => {
        await expect(
          store.appendMulti([
            { stream: 'a', expectedRevision: 'any', events: newTestEvents(1) },
            { stream: 'a', expectedRevision: 'any', events: newTestEvents(1) },
          ]),
        ).rejects.toBeInstanceOf(TypeError);
        expect(await store.headPosition()).toBe(0);
      });
    });

    describe('invalid appends write nothing', () => {
      it('rejects an append with no events (RangeError), rather than a silent no-op', async () => {
        await expect(store.append('s', 'any', [])).rejects.toBeInstanceOf(RangeError);
        await expect(store.appendMulti([])).rejects.toBeInstanceOf(RangeError);
        await expect(
          store.appendMulti([{ stream: 's', expectedRevision: 'any', events: [] }]),
        ).rejects.toBeInstanceOf(RangeError);
        expect(await store.headPosition()).toBe(0);
        expect(await store.streamRevision('s')).toBe(-1);
      });

      it('rejects an event id that is already in the log, or twice in one append', async () => {
        const first = newTestEvent();
        await store.append('s', 'no_stream', [first]);
        await expect(
          store.append('t', 'any', [newTestEvent(), { ...first }]),
        ).rejects.toBeInstanceOf(DuplicateEventIdError);
        const twice = newTestEvent();
        await expect(store.append('t', 'any', [twice, { ...twice }])).rejects.toBeInstanceOf(
          DuplicateEventIdError,
        );
        expect(await store.headPosition()).toBe(1);
        expect(await store.streamRevision('t')).toBe(-1);
      });

      it('rejects data that JSON cannot represent', async () => {
        await expect(
          store.append('s', 'any', [{ ...newTestEvent(), data: undefined }]),
        ).rejects.toBeInstanceOf(TypeError);
        await expect(
          store.append('s', 'any', [newTestEvent('T', { big: 1n })]),
        ).rejects.toBeInstanceOf(TypeError);
        expect(await store.headPosition()).toBe(0);
      });
    });

    describe('hash chain', () => {
      it('links every event to the previous one and hashes its stored content', async () => {
        await store.append('a', 'no_stream', newTestEvents(3));
        await store.appendMulti([
          { stream: 'b', expectedRevision: 'no_stream', events: newTestEvents(2) },
          {
            stream: 'a',
            expectedRevision: 2,
            events: [newTestEvent('T', { reason: 'x' }, { reason: 'why', traceId: 't' })],
          },
        ]);
        const all = await store.readAll(0);
        let prev = GENESIS_HASH;
        for (const event of all) {
          expect(event.prevHash).toBe(prev);
          expect(event.hash).toBe(computeEventHash(hashFieldsOf(event)));
          prev = event.hash;
        }
        const verification = await store.verify();
        expect(verification).toEqual({ ok: true, count: 6, headPosition: 6, headHash: prev });
      });

      it('gives the events in an append result the same hashes as when read back', async () => {
        const result = await store.append('a', 'no_stream', newTestEvents(4));
        expect(await store.readAll(0)).toEqual(result.events);
      });
    });

    describe('concurrency', () => {
      it('32 concurrent appends with the same expected revision: exactly one wins', async () => {
        await store.append('contested', 'no_stream', newTestEvents(1));
        const attempts = await Promise.allSettled(
          Array.from({ length: 32 }, () => store.append('contested', 0, newTestEvents(2))),
        );
        const won = attempts.filter((a) => a.status === 'fulfilled');
        const lost = attempts.filter((a): a is PromiseRejectedResult => a.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(31);
        expect(lost.every((a) => a.reason instanceof WrongExpectedRevisionError)).toBe(true);
        expect(await store.streamRevision('contested')).toBe(2);
        expect((await store.readAll(0)).map((e) => e.position)).toEqual([1, 2, 3]);
        expect((await store.verify()).ok).toBe(true);
      });

      it('32 concurrent creations of one stream with no_stream: exactly one wins', async () => {
        const attempts = await Promise.allSettled(
          Array.from({ length: 32 }, () => store.append('new', 'no_stream', newTestEvents(1))),
        );
        expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(1);
        const lost = attempts.filter((a): a is PromiseRejectedResult => a.status === 'rejected');
        expect(lost.every((a) => a.reason instanceof WrongExpectedRevisionError)).toBe(true);
        expect(lost).toHaveLength(31);
      });

      it('commits concurrent appends to different streams with contiguous positions, despite failures among them', async () => {
        const attempts = await Promise.allSettled(
          Array.from({ length: 40 }, (_, i) =>
            i % 4 === 3
              ? store.append(`stream-${i}`, 'stream_exists', newTestEvents(2))
              : store.append(`stream-${i}`, 'no_stream', newTestEvents(1 + (i % 3))),
          ),
        );
        const failed = attempts.filter((a) => a.status === 'rejected');
        expect(failed).toHaveLength(10);
        const expectedCount = Array.from({ length: 40 }, (_, i) =>
          i % 4 === 3 ? 0 : 1 + (i % 3),
        ).reduce((a, b) => a + b, 0);
        const all = await store.readAll(0);
        expect(all.map((e) => e.position)).toEqual(range(1, expectedCount));
        for (let i = 0; i < 40; i++) {
          expect(await store.streamRevision(`stream-${i}`)).toBe(i % 4 === 3 ? -1 : i % 3);
        }
        // Each successful append's events are contiguous in the log.
        for (const attempt of attempts) {
          if (attempt.status !== 'fulfilled') continue;
          const positions = attempt.value.events.map((e) => e.position);
          expect(positions).toEqual(range(positions[0]!, attempt.value.lastPosition));
        }
        expect((await store.verify()).ok).toBe(true);
      });

      it('applies concurrent appends with numeric revisions in order when each expects the previous', async () => {
        await store.append('seq', 'no_stream', newTestEvents(1));
        const results = await Promise.all(
          range(0, 9).map((r) => store.append('seq', r, newTestEvents(1))),
        );
        expect(results.map((r) => r.revisions.get('seq'))).toEqual(range(1, 10));
      });
    });

    describe('subscriptions', () => {
      let subscriptions: Subscription[];
      beforeEach(() => {
        subscriptions = [];
      });
      afterEach(async () => {
        await Promise.allSettled(subscriptions.map((s) => s.close()));
      });

      it('catches up from the start, then delivers live appends', async () => {
        await store.append('a', 'no_stream', newTestEvents(5));
        const recorder = new SubscriptionRecorder();
        const sub = store.subscribe(0, recorder.handler);
        subscriptions.push(sub);
        await recorder.until(5);
        expect(recorder.positions()).toEqual(range(1, 5));
        await store.append('b', 'no_stream', newTestEvents(2));
        await store.append('a', 4, newTestEvents(1));
        await recorder.until(8);
        expect(recorder.positions()).toEqual(range(1, 8));
        expect(recorder.events.map((e) => e.stream)).toEqual([
          'a',
          'a',
          'a',
          'a',
          'a',
          'b',
          'b',
          'a',
        ]);
        expect(recorder.events).toEqual(await store.readAll(0));
        await sub.close();
        expect(sub.position).toBe(8);
      });

      it('starts after a middle position', async () => {
        await store.append('a', 'no_stream', newTestEvents(6));
        const recorder = new SubscriptionRecorder();
        subscriptions.push(store.subscribe(4, recorder.handler));
        await recorder.until(2);
        await store.append('a', 5, newTestEvents(1));
        await recorder.until(3);
        expect(recorder.positions()).toEqual([5, 6, 7]);
      });

      it('delivers live events to a subscription that started on an empty log', async () => {
        const recorder = new SubscriptionRecorder();
        subscriptions.push(store.subscribe(0, recorder.handler));
        await drainEventLoop();
        await store.append('a', 'no_stream', newTestEvents(3));
        await recorder.until(3);
        expect(recorder.positions()).toEqual([1, 2, 3]);
      });

      it('hands batches no larger than batchSize', async () => {
        await store.append('a', 'no_stream', newTestEvents(10));
        const recorder = new SubscriptionRecorder();
        subscriptions.push(store.subscribe(0, recorder.handler, { batchSize: 3 }));
        await recorder.until(10);
        expect(recorder.batchSizes).toEqual([3, 3, 3, 1]);
        expect(recorder.positions()).toEqual(range(1, 10));
      });

      it('waits for each batch before handing the next', async () => {
        await store.append('a', 'no_stream', newTestEvents(4));
        const recorder = new SubscriptionRecorder();
        const first = gate();
        let inFlight = 0;
        let maxInFlight = 0;
        let calls = 0;
        const sub = store.subscribe(
          0,
          async (batch) => {
            inFlight += 1;
            maxInFlight = Math.max(maxInFlight, inFlight);
            calls += 1;
            if (calls === 1) await first.promise;
            recorder.handler(batch);
            inFlight -= 1;
          },
          { batchSize: 2 },
        );
        subscriptions.push(sub);
        await drainEventLoop();
        await store.append('a', 3, newTestEvents(2));
        await drainEventLoop();
        expect(calls).toBe(1);
        expect(sub.position).toBe(0);
        first.open();
        await recorder.until(6);
        expect(recorder.positions()).toEqual(range(1, 6));
        expect(maxInFlight).toBe(1);
      });

      it('close() resolves only after the in-flight batch, and nothing is delivered afterwards', async () => {
        await store.append('a', 'no_stream', newTestEvents(2));
        const hold = gate();
        const started = gate();
        const delivered: number[] = [];
        let handlerFinished = false;
        const sub = store.subscribe(0, async (batch) => {
          started.open();
          await hold.promise;
          delivered.push(...batch.map((e) => e.position));
          handlerFinished = true;
        });
        await started.promise;
        let closed = false;
        const closing = sub.close().then(() => {
          closed = true;
        });
        await drainEventLoop();
        expect(closed).toBe(false);
        hold.open();
        await closing;
        expect(handlerFinished).toBe(true);
        expect(sub.position).toBe(2);
        await store.append('a', 1, newTestEvents(2));
        await drainEventLoop();
        expect(delivered).toEqual([1, 2]);
      });

      it('stops on a handler error and reports it through onError', async () => {
        await store.append('a', 'no_stream', newTestEvents(4));
        const failure = new Error('projection broke');
        const reported = gate();
        const errors: unknown[] = [];
        let calls = 0;
        const sub = store.subscribe(
          0,
          (batch) => {
            calls += 1;
            if (batch[0]!.position === 3) throw failure;
          },
          {
            batchSize: 2,
            onError: (error) => {
              errors.push(error);
              reported.open();
            },
          },
        );
        subscriptions.push(sub);
        await reported.promise;
        expect(errors).toEqual([failure]);
        expect(sub.position).toBe(2);
        await store.append('a', 3, newTestEvents(1));
        await drainEventLoop();
        expect(calls).toBe(2);
        await sub.close();
      });

      it('without onError, a handler error stops delivery and is rethrown by close()', async () => {
        await store.append('a', 'no_stream', newTestEvents(2));
        const failure = new Error('no handler for this');
        const attempted = gate();
        const sub = store.subscribe(0, () => {
          attempted.open();
          throw failure;
        });
        await attempted.promise;
        await expect(sub.close()).rejects.toBe(failure);
        expect(sub.position).toBe(0);
      });

      it('runs several subscriptions independently', async () => {
        await store.append('a', 'no_stream', newTestEvents(3));
        const one = new SubscriptionRecorder();
        const two = new SubscriptionRecorder();
        subscriptions.push(store.subscribe(0, one.handler), store.subscribe(2, two.handler));
        await store.append('a', 2, newTestEvents(1));
        await Promise.all([one.until(4), two.until(2)]);
        expect(one.positions()).toEqual([1, 2, 3, 4]);
        expect(two.positions()).toEqual([3, 4]);
      });
    });
  });
}
