import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NewEvent, RecordedEvent } from '@ledgerflow/contracts';
import { InMemoryEventStore, SqliteEventStore, type EventStore } from '@ledgerflow/event-store';
import { documentProjection } from './document-projection.js';
import { InMemoryReadModelStore } from './in-memory-read-model-store.js';
import type { Doc, Projection, ReadModelStore } from './projection.js';
import {
  ProjectionFailedError,
  ProjectionRunner,
  ProjectionWaitTimeoutError,
  type ProjectionRunnerOptions,
} from './projection-runner.js';
import { SqliteReadModelStore } from './sqlite-read-model-store.js';

interface StreamActivity extends Doc {
  readonly stream: string;
  readonly category: string;
  readonly events: number;
  readonly lastType: string;
}

/** Counts events per stream (times `weight`, so a new version can visibly change meaning). */
function streamActivity(
  options: { version?: number; weight?: number; applied?: number[] } = {},
): Projection {
  const weight = options.weight ?? 1;
  const inner = documentProjection<StreamActivity>({
    name: 'stream-activity',
    version: options.version ?? 1,
    collection: { name: 'stream_activity', indexes: ['category'] },
    keysOf: (event) => [event.stream],
    evolve: (doc, event) =>
      event.type === 'StreamArchived'
        ? undefined
        : {
            stream: event.stream,
            category: event.stream.split(':')[0] ?? '',
            events: (doc?.events ?? 0) + weight,
            lastType: event.type,
          },
  });
  return {
    ...inner,
    apply: (event, writer) => {
      options.applied?.push(event.position);
      return inner.apply(event, writer);
    },
  };
}

/** Counts events per type, and cannot cope with a `Poison` event. */
function poisonSensitive(): Projection {
  return documentProjection<{ n: number }>({
    name: 'event-types',
    version: 1,
    collection: { name: 'event_types' },
    keysOf: (event) => [event.type],
    evolve: (doc, event) => {
      if (event.type === 'Poison') throw new Error(`cannot digest ${event.id}`);
      return { n: (doc?.n ?? 0) + 1 };
    },
  });
}

let sequence = 0;
function newEvent(type: string, data: unknown = {}): NewEvent {
  sequence += 1;
  return {
    id: `event-${sequence}`,
    type,
    schemaVersion: 1,
    occurredAt: 1_700_000_000_000 + sequence,
    data,
    metadata: { actor: 'test', correlationId: `correlation-${sequence}`, causationId: null },
  };
}

interface Stores {
  readonly eventStore: EventStore;
  readonly readModels: ReadModelStore;
}

interface Backend {
  readonly name: string;
  /** Fresh, empty stores for one test. */
  create(): Stores;
  /** The same data, as a restarted process would see it. */
  reopen(stores: Stores): Promise<Stores>;
}

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const backends: Backend[] = [
  {
    name: 'InMemoryEventStore + InMemoryReadModelStore',
    create: () => ({
      eventStore: new InMemoryEventStore(),
      readModels: new InMemoryReadModelStore(),
    }),
    // Memory does not survive a restart: the same instances stand in for the reopened files.
    reopen: async (stores) => stores,
  },
  {
    name: 'SqliteEventStore + SqliteReadModelStore',
    create: () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-runner-'));
      tempDirs.push(dir);
      return openSqlite(dir);
    },
    reopen: async (stores) => {
      const dir = path.dirname((stores.eventStore as SqliteEventStore).path);
      await closeStores(stores);
      return openSqlite(dir);
    },
  },
];

function openSqlite(dir: string): Stores {
  return {
    eventStore: new SqliteEventStore({ path: path.join(dir, 'events.db'), synchronous: 'normal' }),
    readModels: new SqliteReadModelStore({ path: path.join(dir, 'read-models.db') }),
  };
}

async function closeStores(stores: Stores): Promise<void> {
  await stores.eventStore.close();
  await stores.readModels.close();
}

describe.each(backends)('ProjectionRunner over $name', (backend) => {
  let stores: Stores;
  const runners: ProjectionRunner[] = [];
  const logs: string[] = [];

  beforeEach(() => {
    stores = backend.create();
    logs.length = 0;
  });
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()));
    await closeStores(stores);
  });

  const runnerOf = (
    projections: readonly Projection[],
    options: Partial<ProjectionRunnerOptions> = {},
  ): ProjectionRunner => {
    const runner = new ProjectionRunner({
      eventStore: stores.eventStore,
      readModels: stores.readModels,
      projections,
      logger: (message) => logs.push(message),
      ...options,
    });
    runners.push(runner);
    return runner;
  };
  const append = async (stream: string, ...types: string[]): Promise<number> =>
    (
      await stores.eventStore.append(
        stream,
        'any',
        types.map((type) => newEvent(type)),
      )
    ).lastPosition;
  const activity = (stream: string): Promise<StreamActivity | undefined> =>
    stores.readModels.reader.get<StreamActivity>('stream_activity', stream);
  const givenHistory = async (): Promise<number> => {
    await append('run:1', 'RunCreated', 'MetricLogged', 'MetricLogged');
    await append('run:2', 'RunCreated');
    await append('experiment:1', 'ExperimentCreated', 'ExperimentRenamed');
    return append('run:1', 'RunFinished');
  };

  it('catches up on start with everything already in the log', async () => {
    const head = await givenHistory();
    const runner = runnerOf([streamActivity()], { batchSize: 2 });

    await runner.start();

    expect(runner.positions()).toEqual(new Map([['stream-activity', head]]));
    expect(await activity('run:1')).toEqual({
      stream: 'run:1',
      category: 'run',
      events: 4,
      lastType: 'RunFinished',
    });
    expect(
      (
        await stores.readModels.reader.find<StreamActivity>('stream_activity', 'category', 'run')
      ).map((d) => d.stream),
    ).toEqual(['run:1', 'run:2']);
    expect(await stores.readModels.checkpoint('stream-activity')).toEqual({
      position: head,
      version: 1,
    });
  });

  it('starts on an empty log and follows appends live', async () => {
    const runner = runnerOf([streamActivity()]);
    await runner.start();

    const position = await append('run:7', 'RunCreated', 'TagSet');
    await runner.waitFor(position);

    expect(await activity('run:7')).toMatchObject({ events: 2, lastType: 'TagSet' });

    const archived = await append('run:7', 'StreamArchived');
    await runner.waitFor(archived);

    expect(await activity('run:7')).toBeUndefined();
    expect(runner.status()).toEqual([
      { name: 'stream-activity', version: 1, position: archived, state: 'running', error: null },
    ]);
  });

  it('readYourWrites answers false (not an error) when the read models lag, and views streams from the log meanwhile', async () => {
    const head = await givenHistory();
    const runner = runnerOf([streamActivity()]);
    await runner.start();
    await expect(runner.readYourWrites(head)).resolves.toBe(true);
    expect(runner.behind()).toBe(false);

    await runner.stop();
    const later = await append('run:1', 'MetricLogged');
    await expect(runner.readYourWrites(later, 20)).resolves.toBe(false);
    expect(runner.readYourWritesTimeouts).toBe(1);
    expect(runner.behind()).toBe(true);
    expect(logs.join('\n')).toContain(`a write at position ${later} is answered before`);
    // the read model is stale; the view of the stream from the log is not
    expect(await activity('run:1')).toMatchObject({ events: 4 });
    const view = await runner.viewOfStreams('stream-activity', ['run:1']);
    expect(await view.get('stream_activity', 'run:1')).toMatchObject({
      events: 5,
      lastType: 'MetricLogged',
    });
    expect(await view.get('stream_activity', 'run:2')).toBeUndefined();

    await runner.start();
    expect(runner.behind()).toBe(false);
    expect(await activity('run:1')).toMatchObject({ events: 5 });
  });

  it('waitFor resolves at once for a position already applied, and times out for one never reached', async () => {
    const head = await givenHistory();
    const runner = runnerOf([streamActivity()]);
    await runner.start();

    await expect(runner.waitFor(head)).resolves.toBeUndefined();
    await expect(runner.waitFor(0)).resolves.toBeUndefined();
    const never = runner.waitFor(head + 1, 20);
    await expect(never).rejects.toBeInstanceOf(ProjectionWaitTimeoutError);
    await expect(never).rejects.toThrow(
      `did not reach position ${head + 1} within 20 ms (stream-activity at ${head})`,
    );
  });

  it('waits for every projection, not just the first to arrive', async () => {
    const runner = runnerOf([streamActivity(), poisonSensitive()]);
    await runner.start();

    const position = await append('run:1', 'RunCreated');
    await runner.waitFor(position);

    expect(runner.positions()).toEqual(
      new Map([
        ['stream-activity', position],
        ['event-types', position],
      ]),
    );
    expect(await stores.readModels.reader.get('event_types', 'RunCreated')).toEqual({ n: 1 });
    await expect(runner.waitFor(position, 1_000, ['nope'])).rejects.toThrow(
      "no projection named 'nope'",
    );
  });

  it('rebuilds to the same content hash as the live read model, then keeps following the log', async () => {
    const projection = streamActivity();
    await givenHistory();
    const runner = runnerOf([projection], { batchSize: 3 });
    await runner.start();
    const live = await append('run:2', 'MetricLogged', 'StreamArchived');
    await runner.waitFor(live);
    const liveHash = await stores.readModels.contentHash(projection);

    const result = await runner.rebuild('stream-activity');

    expect(result.events).toBe(live);
    expect(result.ms).toBeGreaterThanOrEqual(0);
    expect(await stores.readModels.contentHash(projection)).toBe(liveHash);
    expect(logs).toContain(`rebuilt read model 'stream-activity' from ${live} events`);

    const after = await append('run:1', 'TagSet');
    await runner.waitFor(after);
    expect(await activity('run:1')).toMatchObject({ events: 5, lastType: 'TagSet' });
  });

  it('rebuilds every projection when no name is given, and refuses an unknown name', async () => {
    const head = await givenHistory();
    const runner = runnerOf([streamActivity(), poisonSensitive()]);
    await runner.start();

    expect((await runner.rebuild()).events).toBe(2 * head);
    await expect(runner.rebuild('nope')).rejects.toThrow("no projection named 'nope'");
  });

  it('rebuilds on start when the projection version changed', async () => {
    const head = await givenHistory();
    const v1 = runnerOf([streamActivity({ version: 1 })]);
    await v1.start();
    await v1.stop();

    stores = await backend.reopen(stores);
    const v2 = runnerOf([streamActivity({ version: 2, weight: 10 })]);
    await v2.start();

    expect(await activity('run:1')).toMatchObject({ events: 40 });
    expect(await stores.readModels.checkpoint('stream-activity')).toEqual({
      position: head,
      version: 2,
    });
    expect(logs).toContain(
      "rebuilding read model 'stream-activity': it was built by version 1, the code is version 2",
    );
  });

  it('resumes from its checkpoint after a restart, applying each event once', async () => {
    await givenHistory();
    const first = runnerOf([streamActivity()]);
    await first.start();
    await first.stop();
    const whileStopped = await append('run:1', 'MetricLogged', 'MetricLogged');

    stores = await backend.reopen(stores);
    const applied: number[] = [];
    const second = runnerOf([streamActivity({ applied })]);
    await second.start();

    expect(applied).toEqual([whileStopped - 1, whileStopped]);
    expect(await activity('run:1')).toMatchObject({ events: 6 });
    expect(logs).toEqual([]);
  });

  it('stops a projection that throws, without advancing its checkpoint, while the others go on', async () => {
    const runner = runnerOf([streamActivity(), poisonSensitive()]);
    await runner.start();
    const healthy = await append('run:1', 'RunCreated');
    await runner.waitFor(healthy);

    const result = await stores.eventStore.append('run:1', 'any', [
      newEvent('MetricLogged'),
      newEvent('Poison'),
      newEvent('MetricLogged'),
    ]);
    const poison = (result.events[1] as RecordedEvent).position;
    const waiting = runner.waitFor(result.lastPosition);

    await expect(waiting).rejects.toBeInstanceOf(ProjectionFailedError);
    await expect(waiting).rejects.toThrow(/projection 'event-types' has stopped: .*cannot digest/);
    const [, failed] = runner.status();
    expect(failed).toMatchObject({
      name: 'event-types',
      position: healthy,
      state: 'failed',
      error: { eventPosition: poison },
    });
    expect(await stores.readModels.checkpoint('event-types')).toEqual({
      position: healthy,
      version: 1,
    });
    expect(await stores.readModels.reader.get('event_types', 'MetricLogged')).toBeUndefined();

    const later = await append('run:1', 'RunFinished');
    await runner.waitFor(later, undefined, ['stream-activity']);
    await expect(runner.waitFor(later)).rejects.toBeInstanceOf(ProjectionFailedError);
    expect(await activity('run:1')).toMatchObject({ events: 5 });
    expect(runner.positions().get('event-types')).toBe(healthy);
    expect(
      logs.some((l) => l.startsWith(`projection 'event-types' stopped at position ${healthy}`)),
    ).toBe(true);
  });

  it('rejects start when a projection fails during catch-up; the healthy ones still catch up', async () => {
    await append('run:1', 'RunCreated', 'Poison');
    const head = await append('run:1', 'RunFinished');
    const runner = runnerOf([streamActivity(), poisonSensitive()]);

    await expect(runner.start()).rejects.toBeInstanceOf(ProjectionFailedError);

    await runner.waitFor(head, undefined, ['stream-activity']);
    expect(runner.status().map((s) => [s.name, s.state])).toEqual([
      ['stream-activity', 'running'],
      ['event-types', 'failed'],
    ]);
    expect(await stores.readModels.checkpoint('event-types')).toEqual({
      position: 0,
      version: null,
    });
    expect(await stores.readModels.checkpoint('stream-activity')).toMatchObject({ position: head });
  });

  it('rejects pending waitFor calls on stop, and waitFor calls made after it', async () => {
    const runner = runnerOf([streamActivity()]);
    await runner.start();
    const pending = runner.waitFor(1_000);

    await runner.stop();

    await expect(pending).rejects.toThrow(/runner is stopped/);
    await expect(runner.waitFor(1_000)).rejects.toThrow(/runner is stopped/);
  });
});
