import type { RecordedEvent } from '@ledgerflow/contracts';
import { InMemoryReadModelStore } from '@ledgerflow/projections';
import {
  DEPLOYMENT_TARGETS,
  deploymentTargetsProjection,
  type DeploymentTargetDoc,
} from './deployment-targets.projection.js';

/** Registry events as the registry's topic carries them (its log's envelope and data). */
function log(
  entries: readonly (readonly [stream: string, type: string, data: Record<string, unknown>])[],
): RecordedEvent[] {
  return entries.map(([stream, type, data], i) => ({
    id: `e${i + 1}`,
    type,
    schemaVersion: 1,
    occurredAt: 1_000 + i,
    data,
    metadata: { actor: 'ana', correlationId: 'c', causationId: null },
    stream,
    revision: i,
    position: i + 1,
    prevHash: '',
    hash: '',
  }));
}

const M = 'registered-model-m1';
const ref = { modelId: 'm1', name: 'fraud' };

describe('deployment-targets projection', () => {
  it('follows versions, stages (with archiving) and aliases of a registered model', async () => {
    const store = new InMemoryReadModelStore();
    await store.setup(deploymentTargetsProjection);
    await store.applyBatch(
      deploymentTargetsProjection,
      log([
        [
          'registered-model-name-fraud',
          'RegisteredModelNameClaimed',
          { name: 'fraud', modelId: 'm1' },
        ],
        [M, 'RegisteredModelCreated', { ...ref, description: '', tags: [] }],
        [M, 'ModelVersionCreated', { ...ref, version: 1, storageLocation: 's3://b/1' }],
        [M, 'ModelVersionCreated', { ...ref, version: 2, storageLocation: 's3://b/2' }],
        [
          M,
          'ModelVersionStageTransitioned',
          { ...ref, version: 1, toStage: 'Production', archived: [] },
        ],
        ['model-version-m1-1', 'ModelVersionTagSet', { ...ref, version: 1, key: 'k', value: 'v' }],
        [
          M,
          'RegisteredModelAliasSet',
          { ...ref, alias: 'champion', version: 1, previousVersion: null },
        ],
        [
          M,
          'RegisteredModelAliasSet',
          { ...ref, alias: 'challenger', version: 2, previousVersion: null },
        ],
        [
          M,
          'ModelVersionStageTransitioned',
          {
            ...ref,
            version: 2,
            toStage: 'Production',
            archived: [{ version: 1, fromStage: 'Production' }],
          },
        ],
        [M, 'RegisteredModelRenamed', { modelId: 'm1', name: 'fraud-v2', previousName: 'fraud' }],
        ['run-r1', 'RunCreated', { runId: 'r1' }],
      ]),
    );
    const doc = await store.reader.get<DeploymentTargetDoc>(DEPLOYMENT_TARGETS, 'm1');
    expect(doc).toEqual({
      model_id: 'm1',
      name: 'fraud-v2',
      versions: [
        { version: 1, stage: 'Archived', storage_location: 's3://b/1' },
        { version: 2, stage: 'Production', storage_location: 's3://b/2' },
      ],
      aliases: [
        { alias: 'challenger', version: 2 },
        { alias: 'champion', version: 1 },
      ],
      position: 10,
    });
    expect(await store.reader.find(DEPLOYMENT_TARGETS, 'name', 'fraud-v2')).toHaveLength(1);
  });

  it('drops a deleted version with its aliases, and a deleted model', async () => {
    const store = new InMemoryReadModelStore();
    await store.setup(deploymentTargetsProjection);
    const events = log([
      [M, 'RegisteredModelCreated', { ...ref, description: '', tags: [] }],
      [M, 'ModelVersionCreated', { ...ref, version: 1, storageLocation: 'a' }],
      [M, 'ModelVersionCreated', { ...ref, version: 2, storageLocation: 'b' }],
      [
        M,
        'RegisteredModelAliasSet',
        { ...ref, alias: 'champion', version: 1, previousVersion: null },
      ],
      [M, 'RegisteredModelAliasSet', { ...ref, alias: 'next', version: 2, previousVersion: null }],
      [M, 'RegisteredModelAliasDeleted', { ...ref, alias: 'next', version: 2 }],
      [
        M,
        'ModelVersionDeleted',
        { ...ref, version: 1, stage: 'None', removedAliases: ['champion'] },
      ],
    ]);
    await store.applyBatch(deploymentTargetsProjection, events);
    expect(await store.reader.get(DEPLOYMENT_TARGETS, 'm1')).toMatchObject({
      versions: [{ version: 2, stage: 'None', storage_location: 'b' }],
      aliases: [],
    });
    await store.applyBatch(
      deploymentTargetsProjection,
      log([
        ...events.map((e) => [e.stream, e.type, e.data as Record<string, unknown>] as const),
        [M, 'RegisteredModelDeleted', { ...ref, versions: [1, 2] }],
      ]).slice(events.length),
    );
    expect(await store.reader.count(DEPLOYMENT_TARGETS)).toBe(0);
  });
});
