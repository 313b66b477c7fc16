import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  composeProjections,
  documentFold,
  documentProjection,
  type DocumentFold,
} from './document-projection.js';
import { InMemoryReadModelStore } from './in-memory-read-model-store.js';
import type { Doc, Projection } from './projection.js';

interface RunSummary extends Doc {
  readonly runId: string;
  readonly experimentId: string;
  readonly status: string;
}

function recorded(position: number, type: string, data: Record<string, string>): RecordedEvent {
  return {
    id: `event-${position}`,
    type,
    schemaVersion: 1,
    occurredAt: 1_700_000_000_000 + position,
    data,
    metadata: { actor: 'test', correlationId: 'c', causationId: null },
    stream: `run:${data['runId'] ?? '?'}`,
    revision: position - 1,
    position,
    prevHash: '0'.repeat(64),
    hash: '0'.repeat(64),
  };
}

const runData = (event: RecordedEvent): Record<string, string> =>
  event.data as Record<string, string>;

const runSummaryFold: DocumentFold<RunSummary> = {
  collection: { name: 'run_summaries', indexes: ['experimentId', 'status'] },
  keysOf: (event) => (event.type.startsWith('Run') ? [runData(event)['runId'] ?? ''] : []),
  evolve: (doc, event) => {
    const data = runData(event);
    switch (event.type) {
      case 'RunCreated':
        return {
          runId: data['runId'] ?? '',
          experimentId: data['experimentId'] ?? '',
          status: 'RUNNING',
        };
      case 'RunFinished':
        return doc === undefined ? undefined : { ...doc, status: data['status'] ?? 'FINISHED' };
      case 'RunDeleted':
        return undefined;
      default:
        return doc;
    }
  },
};
const runSummaries = documentFold(runSummaryFold);

const runsPerExperiment = documentFold<{ runs: number }>({
  collection: { name: 'experiment_run_counts' },
  keysOf: (event) =>
    event.type === 'RunCreated' || event.type === 'RunDeleted'
      ? [runData(event)['experimentId'] ?? '']
      : [],
  evolve: (doc, event) => {
    const runs = (doc?.runs ?? 0) + (event.type === 'RunCreated' ? 1 : -1);
    return runs === 0 ? undefined : { runs };
  },
});

/** given a projection, when these events are applied, then the read model is queried. */
async function given(
  projection: Projection,
  ...events: RecordedEvent[]
): Promise<InMemoryReadModelStore> {
  const store = new InMemoryReadModelStore();
  await store.setup(projection);
  await store.applyBatch(projection, events);
  return store;
}

describe('documentProjection', () => {
  const projection = documentProjection({ name: 'runs', version: 3, ...runSummaryFold });

  it('declares its name, version and one collection', () => {
    expect(projection.name).toBe('runs');
    expect(projection.version).toBe(3);
    expect(projection.collections).toEqual([
      { name: 'run_summaries', indexes: ['experimentId', 'status'] },
    ]);
  });

  it('folds each keyed document', async () => {
    const store = await given(
      projection,
      recorded(1, 'RunCreated', { runId: 'r1', experimentId: 'e1' }),
      recorded(2, 'RunCreated', { runId: 'r2', experimentId: 'e1' }),
      recorded(3, 'RunFinished', { runId: 'r1' }),
    );

    expect(await store.reader.find('run_summaries', 'experimentId', 'e1')).toEqual([
      { runId: 'r1', experimentId: 'e1', status: 'FINISHED' },
      { runId: 'r2', experimentId: 'e1', status: 'RUNNING' },
    ]);
  });

  it('deletes a document when evolve returns undefined, and never creates one from nothing', async () => {
    const store = await given(
      projection,
      recorded(1, 'RunCreated', { runId: 'r1', experimentId: 'e1' }),
      recorded(2, 'RunDeleted', { runId: 'r1' }),
      recorded(3, 'RunFinished', { runId: 'ghost' }),
    );

    expect(await store.reader.count('run_summaries')).toBe(0);
  });
});

describe('composeProjections', () => {
  const projection = composeProjections('tracking', 1, [runSummaries, runsPerExperiment]);

  it('applies every part to each event, in one checkpoint', async () => {
    const store = await given(
      projection,
      recorded(1, 'RunCreated', { runId: 'r1', experimentId: 'e1' }),
      recorded(2, 'RunCreated', { runId: 'r2', experimentId: 'e1' }),
      recorded(3, 'RunFinished', { runId: 'r2', status: 'FAILED' }),
      recorded(4, 'RunDeleted', { runId: 'r1', experimentId: 'e1' }),
    );

    expect(projection.collections.map((c) => c.name)).toEqual([
      'run_summaries',
      'experiment_run_counts',
    ]);
    expect(await store.reader.scan('run_summaries')).toEqual([
      { runId: 'r2', experimentId: 'e1', status: 'FAILED' },
    ]);
    expect(await store.reader.get('experiment_run_counts', 'e1')).toEqual({ runs: 1 });
    expect(await store.checkpoint('tracking')).toEqual({ position: 4, version: 1 });
  });

  it('refuses two parts that declare the same collection', () => {
    expect(() => composeProjections('twice', 1, [runSummaries, runSummaries])).toThrow(
      "projection 'twice' declares collection 'run_summaries' twice",
    );
  });
});
