import { MlflowError, type Decider, type DomainEvent } from '@ledgerflow/contracts';
import { AggregateStore } from './aggregate-store.js';
import { InMemoryEventStore } from './in-memory-event-store.js';

type Added = DomainEvent<'Added', { n: number }>;
type Add = { readonly n: number; readonly max: number };

/** A counter that refuses to pass `max`: enough rules to show retries and atomicity. */
const counter: Decider<Add, number, Added> = {
  initialState: () => 0,
  decide: (cmd, total) => {
    if (total + cmd.n > cmd.max)
      throw new MlflowError('INVALID_PARAMETER_VALUE', `over ${cmd.max}`);
    return cmd.n === 0 ? [] : [{ type: 'Added', data: { n: cmd.n } }];
  },
  evolve: (total, e) => total + e.data.n,
};

const meta = { actor: 'test', correlationId: 'c', causationId: null };

describe('AggregateStore', () => {
  it('decides on fresh state and appends with the expected revision', async () => {
    const log = new InMemoryEventStore();
    const store = new AggregateStore(log);
    await store.execute({ stream: 'c-1', decider: counter, command: { n: 2, max: 10 } }, meta);
    await store.execute({ stream: 'c-1', decider: counter, command: { n: 3, max: 10 } }, meta);
    expect(await store.load('c-1', counter)).toEqual({ state: 5, revision: 1 });
    const events = await log.readStream('c-1');
    expect(events.map((e) => e.metadata.actor)).toEqual(['test', 'test']);
  });

  it('re-decides after a concurrent write instead of losing an update', async () => {
    const log = new InMemoryEventStore();
    const a = new AggregateStore(log);
    const b = new AggregateStore(log);
    await a.load('c-1', counter);
    await b.execute({ stream: 'c-1', decider: counter, command: { n: 4, max: 5 } }, meta);
    // a's cached state says 0; the append conflicts, a reloads (4) and the rule refuses 4 + 4 > 5
    await expect(
      a.execute({ stream: 'c-1', decider: counter, command: { n: 4, max: 5 } }, meta),
    ).rejects.toThrow('over 5');
    expect(await a.load('c-1', counter)).toEqual({ state: 4, revision: 0 });
  });

  it('appends several aggregates atomically, or none of them', async () => {
    const log = new InMemoryEventStore();
    const store = new AggregateStore(log);
    const both = (n: number) =>
      [
        { stream: 'c-a', decider: counter, command: { n, max: 10 } },
        { stream: 'c-b', decider: counter, command: { n: n * 2, max: 10 } },
      ] as never;
    await store.executeAll(both(2), meta);
    await expect(store.executeAll(both(4), meta)).rejects.toThrow('over 10');
    expect((await store.load('c-a', counter)).state).toBe(2);
    expect((await store.load('c-b', counter)).state).toBe(4);
    expect(await log.headPosition()).toBe(2);
  });

  it('appends nothing when the decider decides nothing', async () => {
    const log = new InMemoryEventStore();
    const result = await new AggregateStore(log).execute(
      { stream: 'c-1', decider: counter, command: { n: 0, max: 1 } },
      meta,
    );
    expect(result.events).toEqual([]);
    expect(await log.headPosition()).toBe(0);
  });
});

describe('AggregateStore, concurrent commands on one stream', () => {
  it('lets them take turns instead of failing on revision conflicts', async () => {
    const log = new InMemoryEventStore();
    const store = new AggregateStore(log);
    // one attempt only: any conflict would surface as an error
    await Promise.all(
      Array.from({ length: 50 }, () =>
        store.executeAll(
          [{ stream: 'c-1', decider: counter, command: { n: 1, max: 1000 } }] as never,
          meta,
          1,
        ),
      ),
    );
    expect(await store.load('c-1', counter)).toEqual({ state: 50, revision: 49 });
  });
});
