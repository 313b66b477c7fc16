import { deciderSpec } from '@ledgerflow/testing';
import {
  loggedModelDecider,
  type LoggedModelCommand,
  type LoggedModelExperimentFacts,
} from './logged-model.decider.js';
import type { LoggedModelEvent } from './logged-model.events.js';
import {
  evolveLoggedModelDoc,
  modelMetricsOf,
  withModelMetrics,
  type LoggedModelDoc,
} from './logged-model-doc.js';
import { searchLoggedModels, type LoggedModelSearch } from './logged-model-search.js';

const ID = 'm-0123456789abcdef0123456789abcdef';
const active: LoggedModelExperimentFacts = {
  exists: true,
  lifecycleStage: 'active',
  artifactLocation: 'mlflow-artifacts:/1',
};
const create = (
  over: Partial<Extract<LoggedModelCommand, { type: 'CreateLoggedModel' }>> = {},
): LoggedModelCommand => ({
  type: 'CreateLoggedModel',
  modelId: ID,
  experimentId: '1',
  experiment: active,
  name: 'classifier',
  generatedName: 'brave-owl-7',
  modelType: null,
  sourceRunId: null,
  params: [],
  tags: [],
  ...over,
});
const created: LoggedModelEvent = {
  type: 'LoggedModelCreated',
  data: {
    modelId: ID,
    experimentId: '1',
    name: 'classifier',
    artifactUri: `mlflow-artifacts:/1/models/${ID}/artifacts`,
    params: [],
    tags: [],
  },
};

describe('logged-model decider', () => {
  const spec = deciderSpec(loggedModelDecider);

  it('creates a PENDING model under <experiment artifact location>/models/<id>/artifacts', () => {
    spec.given([]).when(create()).then([created]);
    spec
      .given([])
      .when(
        create({
          name: null,
          modelType: 'agent',
          sourceRunId: 'r1',
          params: [
            { key: 'lr', value: '0.1' },
            { key: 'lr', value: '0.1' },
          ],
          tags: [
            { key: 't', value: 'a' },
            { key: 't', value: 'b' },
          ],
        }),
      )
      .then([
        {
          type: 'LoggedModelCreated',
          data: {
            ...created.data,
            name: 'brave-owl-7',
            modelType: 'agent',
            sourceRunId: 'r1',
            params: [{ key: 'lr', value: '0.1' }],
            tags: [{ key: 't', value: 'b' }],
          },
        },
      ]);
  });

  it('refuses a missing or deleted experiment and names MLflow forbids', () => {
    spec
      .given([])
      .when(create({ experiment: { ...active, exists: false } }))
      .thenThrows('RESOURCE_DOES_NOT_EXIST', 'No Experiment with id=1 exists');
    spec
      .given([])
      .when(create({ experiment: { ...active, lifecycleStage: 'deleted' } }))
      .thenThrows('INVALID_PARAMETER_VALUE', "must be in the 'active' state");
    for (const name of ['a/b', 'a.b', 'a:b', '50%', "it's", 'say "x"']) {
      spec
        .given([])
        .when(create({ name }))
        .thenThrows('INVALID_PARAMETER_VALUE', 'Invalid model name');
    }
    spec
      .given([])
      .when(
        create({
          params: [
            { key: 'lr', value: '0.1' },
            { key: 'lr', value: '0.2' },
          ],
        }),
      )
      .thenThrows('INVALID_PARAMETER_VALUE', 'Changing param values is not allowed');
  });

  it('finalizes only to READY or UPLOAD_FAILED', () => {
    spec
      .given([created])
      .when({ type: 'FinalizeLoggedModel', modelId: ID, status: 'LOGGED_MODEL_READY' })
      .then([
        { type: 'LoggedModelFinalized', data: { modelId: ID, status: 'LOGGED_MODEL_READY' } },
      ]);
    spec
      .given([created])
      .when({ type: 'FinalizeLoggedModel', modelId: ID, status: 'LOGGED_MODEL_PENDING' })
      .thenThrows('INVALID_PARAMETER_VALUE', 'Invalid status');
    spec
      .given([])
      .when({ type: 'FinalizeLoggedModel', modelId: ID, status: 'LOGGED_MODEL_READY' })
      .thenThrows('RESOURCE_DOES_NOT_EXIST', `Logged model with ID '${ID}' not found.`);
  });

  it('sets tags (last value wins), deletes only existing tags, and keeps params immutable', () => {
    const tagged: LoggedModelEvent = {
      type: 'LoggedModelTagsSet',
      data: { modelId: ID, tags: [{ key: 'k', value: 'v' }] },
    };
    spec
      .given([created])
      .when({
        type: 'SetLoggedModelTags',
        modelId: ID,
        tags: [
          { key: 'k', value: 'x' },
          { key: 'k', value: 'v' },
        ],
      })
      .then([tagged]);
    spec
      .given([created, tagged])
      .when({ type: 'DeleteLoggedModelTag', modelId: ID, key: 'k' })
      .then([{ type: 'LoggedModelTagDeleted', data: { modelId: ID, key: 'k' } }]);
    spec
      .given([created])
      .when({ type: 'DeleteLoggedModelTag', modelId: ID, key: 'k' })
      .thenThrows(
        'RESOURCE_DOES_NOT_EXIST',
        `No tag with key 'k' found for model with ID '${ID}'.`,
      );
    const logged: LoggedModelEvent = {
      type: 'LoggedModelParamsLogged',
      data: { modelId: ID, params: [{ key: 'a', value: '1' }] },
    };
    spec
      .given([created])
      .when({ type: 'LogLoggedModelParams', modelId: ID, params: [{ key: 'a', value: '1' }] })
      .then([logged]);
    spec
      .given([created, logged])
      .when({ type: 'LogLoggedModelParams', modelId: ID, params: [{ key: 'a', value: '1' }] })
      .then([]);
    spec
      .given([created, logged])
      .when({ type: 'LogLoggedModelParams', modelId: ID, params: [{ key: 'a', value: '2' }] })
      .thenThrows('INVALID_PARAMETER_VALUE', "key='a' was already logged with value='1'");
  });

  it('deletes softly; writes still find a deleted model, as MLflow does', () => {
    const deleted: LoggedModelEvent = { type: 'LoggedModelDeleted', data: { modelId: ID } };
    spec.given([created]).when({ type: 'DeleteLoggedModel', modelId: ID }).then([deleted]);
    spec
      .given([created, deleted])
      .when({ type: 'SetLoggedModelTags', modelId: ID, tags: [{ key: 'k', value: 'v' }] })
      .then([
        { type: 'LoggedModelTagsSet', data: { modelId: ID, tags: [{ key: 'k', value: 'v' }] } },
      ]);
    spec
      .given([])
      .when({ type: 'DeleteLoggedModel', modelId: ID })
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
  });
});

function fold(events: readonly LoggedModelEvent[], start = 1000): LoggedModelDoc | undefined {
  let doc: LoggedModelDoc | undefined;
  events.forEach((e, i) => {
    doc = evolveLoggedModelDoc(doc, e, { occurredAt: start + i, position: i + 1 });
  });
  return doc;
}

describe('logged-model read model', () => {
  it('given created, finalized and deleted, shows status, timestamps and lifecycle', () => {
    const doc = fold([
      created,
      { type: 'LoggedModelFinalized', data: { modelId: ID, status: 'LOGGED_MODEL_READY' } },
    ]);
    expect(doc).toMatchObject({
      model_id: ID,
      status: 'LOGGED_MODEL_READY',
      creation_timestamp_ms: 1000,
      last_updated_timestamp_ms: 1001,
      lifecycle_stage: 'active',
      artifact_uri: `mlflow-artifacts:/1/models/${ID}/artifacts`,
    });
    expect(fold([created, { type: 'LoggedModelDeleted', data: { modelId: ID } }])).toMatchObject({
      lifecycle_stage: 'deleted',
      last_updated_timestamp_ms: 1001,
    });
  });

  it('links metric points that name the model, once per (key, timestamp, step, run)', () => {
    const batch = {
      keys: ['acc', 'loss'],
      k: [0, 1, 0],
      v: [0.9, 0, 0.5],
      t: [10, 10, 11],
      s: [1, 1, 2],
      nan: [1],
      extras: [
        { i: 0, model_id: ID, dataset_name: 'test', dataset_digest: 'd1' },
        { i: 1, model_id: ID },
        { i: 2, dataset_name: 'train' },
      ],
    };
    const points = modelMetricsOf('r1', batch).get(ID) ?? [];
    expect(points).toEqual([
      {
        key: 'acc',
        value: 0.9,
        timestamp: 10,
        step: 1,
        run_id: 'r1',
        dataset_name: 'test',
        dataset_digest: 'd1',
      },
      { key: 'loss', value: 0, timestamp: 10, step: 1, run_id: 'r1', is_nan: true },
    ]);
    const doc = withModelMetrics(withModelMetrics(fold([created])!, points), [
      { ...points[0]!, value: 0.1 },
    ]);
    expect(doc.metrics).toEqual(points);
  });
});

describe('logged-model search', () => {
  const model = (id: string, created_at: number, over: Partial<LoggedModelDoc> = {}) =>
    ({
      model_id: id,
      experiment_id: '1',
      name: id,
      artifact_uri: `a/${id}`,
      creation_timestamp_ms: created_at,
      last_updated_timestamp_ms: created_at,
      status: 'LOGGED_MODEL_PENDING',
      lifecycle_stage: 'active',
      tags: [],
      params: [],
      metrics: [],
      ...over,
    }) as LoggedModelDoc;
  const point = (key: string, value: number, timestamp: number, dataset_name?: string) => ({
    key,
    value,
    timestamp,
    step: 0,
    run_id: 'r1',
    ...(dataset_name ? { dataset_name } : {}),
  });
  const docs = [
    model('m-a', 1, {
      status: 'LOGGED_MODEL_READY',
      params: [{ key: 'lr', value: '0.1' }],
      metrics: [point('acc', 0.7, 1, 'test'), point('acc', 0.95, 2, 'train')],
    }),
    model('m-b', 2, {
      tags: [{ key: 'team', value: 'x' }],
      metrics: [point('acc', 0.8, 1, 'test')],
    }),
    model('m-c', 3, { experiment_id: '2' }),
    model('m-d', 4, { lifecycle_stage: 'deleted' }),
  ];
  const q = (over: Partial<LoggedModelSearch> = {}): LoggedModelSearch => ({
    experimentIds: ['1', '2'],
    datasets: [],
    maxResults: 50,
    orderBy: [],
    ...over,
  });
  const ids = (over: Partial<LoggedModelSearch> = {}) =>
    searchLoggedModels(docs, q(over)).models.map((m) => m.model_id);

  it('given active models, returns newest first, scoped to experiments, without deleted ones', () => {
    expect(ids()).toEqual(['m-c', 'm-b', 'm-a']);
    expect(ids({ experimentIds: ['2'] })).toEqual(['m-c']);
  });

  it('filters by attributes, metrics (any point, optionally per dataset), params and tags', () => {
    expect(ids({ filter: "name = 'm-a'" })).toEqual(['m-a']);
    expect(ids({ filter: "status = 'READY'" })).toEqual(['m-a']);
    expect(ids({ filter: "attributes.status IN ('LOGGED_MODEL_PENDING')" })).toEqual([
      'm-c',
      'm-b',
    ]);
    expect(ids({ filter: 'creation_timestamp > 1' })).toEqual(['m-c', 'm-b']);
    expect(ids({ filter: 'metrics.acc > 0.9' })).toEqual(['m-a']);
    expect(ids({ filter: 'metrics.acc > 0.9', datasets: [{ dataset_name: 'test' }] })).toEqual([]);
    expect(ids({ datasets: [{ dataset_name: 'test' }] })).toEqual(['m-b', 'm-a']);
    expect(ids({ filter: "params.lr = '0.1' AND tags.team != 'y'" })).toEqual([]);
    expect(ids({ filter: "tags.team LIKE 'x%'" })).toEqual(['m-b']);
  });

  it('orders by attributes and by the latest metric (per dataset), nulls last', () => {
    expect(ids({ orderBy: [{ field_name: 'name', ascending: true }] })).toEqual([
      'm-a',
      'm-b',
      'm-c',
    ]);
    expect(ids({ orderBy: [{ field_name: 'metrics.acc', ascending: false }] })).toEqual([
      'm-a',
      'm-b',
      'm-c',
    ]);
    expect(
      ids({ orderBy: [{ field_name: 'metrics.acc', ascending: true, dataset_name: 'test' }] }),
    ).toEqual(['m-a', 'm-b', 'm-c']);
    expect(ids({ orderBy: [{ field_name: 'metrics.acc', ascending: true }] })).toEqual([
      'm-b',
      'm-a',
      'm-c',
    ]);
  });

  it('pages with a token that must match the query', () => {
    const first = searchLoggedModels(docs, q({ maxResults: 2 }));
    expect(first.models.map((m) => m.model_id)).toEqual(['m-c', 'm-b']);
    const second = searchLoggedModels(docs, q({ maxResults: 2, pageToken: first.nextPageToken! }));
    expect(second.models.map((m) => m.model_id)).toEqual(['m-a']);
    expect(second.nextPageToken).toBeUndefined();
    expect(() =>
      searchLoggedModels(
        docs,
        q({ maxResults: 2, filter: "name = 'x'", pageToken: first.nextPageToken! }),
      ),
    ).toThrow('Filter string in the page token does not match');
  });

  it('refuses bad filters and order-by fields with INVALID_PARAMETER_VALUE', () => {
    for (const bad of [
      "foo = 'x'",
      "metrics.acc = 'x'",
      "params.lr > '1'",
      "name = 'a' OR name = 'b'",
      'creation_timestamp LIKE 1',
    ]) {
      expect(() => ids({ filter: bad })).toThrow();
    }
    expect(() => ids({ orderBy: [{ field_name: 'bogus', ascending: true }] })).toThrow(
      'Invalid order by field name: bogus',
    );
    expect(() => ids({ orderBy: [{ field_name: 'params.lr', ascending: true }] })).toThrow(
      'Only metrics are supported',
    );
    expect(() => ids({ datasets: [{ dataset_name: '' }] })).toThrow('`dataset_name`');
  });
});
