import type { DomainEvent, RecordedEvent } from '@ledgerflow/contracts';
import {
  canonicalStage,
  modelVersionDecider,
  modelVersionStream,
  registeredModelDecider,
  registeredModelStream,
  registryPlacements,
  registryStateFold,
  type ModelVersionDoc,
  type RegisteredModelCommand,
  type RegisteredModelState,
  type RegistryPlacementSnapshot,
} from '@ledgerflow/domain-registry';
import { InMemoryReadModelStore } from '@ledgerflow/projections';
import { MODEL_VERSIONS, REGISTERED_MODELS, registryProjection } from './registry.projection.js';
import type { RegisteredModelDoc } from '@ledgerflow/domain-registry';

/** A tiny seeded PRNG, so a failure reproduces. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Drives the real deciders with random commands over a few models, records the events as the
 * store would, and checks that the read models and the pure registry fold agree on every model's
 * stages, aliases and live versions, at the end and at every tenth position.
 */
describe('registry projection against the pure fold', () => {
  it('agrees with registryStateFold over a random history', async () => {
    const random = prng(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const log: RecordedEvent[] = [];
    const states = new Map<string, RegisteredModelState>();
    const revisions = new Map<string, number>();
    let clock = 1_000;

    const record = (stream: string, events: readonly DomainEvent[]) => {
      for (const e of events) {
        const revision = (revisions.get(stream) ?? -1) + 1;
        revisions.set(stream, revision);
        log.push({
          id: `e${log.length + 1}`,
          type: e.type,
          schemaVersion: 1,
          occurredAt: (clock += 1000),
          data: e.data,
          metadata: { actor: pick(['ana', 'bo']), correlationId: 'c', causationId: null },
          stream,
          revision,
          position: log.length + 1,
          prevHash: '',
          hash: '',
        });
      }
    };
    const onModel = (modelId: string, command: RegisteredModelCommand) => {
      const state = states.get(modelId) ?? registeredModelDecider.initialState();
      let events;
      try {
        events = registeredModelDecider.decide(command, state, { now: clock, newId: () => 'x' });
      } catch {
        return; // refused: nothing recorded
      }
      let next = state;
      for (const e of events)
        next = registeredModelDecider.evolve(next, e, { position: 0, occurredAt: 0 });
      states.set(modelId, next);
      record(registeredModelStream(modelId), events);
    };

    const models = ['m1', 'm2', 'm3'];
    models.forEach((id, i) =>
      onModel(id, {
        type: 'CreateRegisteredModel',
        modelId: id,
        name: `model-${i}`,
        description: '',
        tags: [],
      }),
    );
    for (let step = 0; step < 600; step++) {
      const modelId = pick(models);
      const state = states.get(modelId)!;
      const version = 1 + Math.floor(random() * Math.max(1, state.lastVersion + 1));
      switch (
        pick([
          'create',
          'create',
          'stage',
          'stage',
          'stage',
          'alias',
          'unalias',
          'delete',
          'tag',
          'rename',
        ])
      ) {
        case 'create':
          onModel(modelId, {
            type: 'CreateModelVersion',
            source: 's',
            storageLocation: 's',
            runId: '',
            runLink: '',
            description: '',
            tags: [{ key: 'k', value: String(step) }],
            loggedModelId: '',
          });
          break;
        case 'stage':
          onModel(modelId, {
            type: 'TransitionModelVersionStage',
            version,
            stage: canonicalStage(pick(['None', 'Staging', 'Production', 'Archived'])),
            archiveExistingVersions: random() < 0.6,
          });
          break;
        case 'alias':
          onModel(modelId, {
            type: 'SetRegisteredModelAlias',
            alias: pick(['champion', 'challenger']),
            version,
          });
          break;
        case 'unalias':
          onModel(modelId, {
            type: 'DeleteRegisteredModelAlias',
            alias: pick(['champion', 'challenger']),
          });
          break;
        case 'delete':
          if (random() < 0.3) onModel(modelId, { type: 'DeleteModelVersion', version });
          break;
        case 'rename':
          onModel(modelId, { type: 'RenameRegisteredModel', newName: `${modelId}-${step}` });
          break;
        case 'tag': {
          const placement = state.versions.get(version);
          if (placement === undefined || placement.deleted) break;
          const events = modelVersionDecider.decide(
            {
              type: 'SetModelVersionTag',
              modelId,
              name: state.name,
              version,
              live: true,
              initialTagKeys: placement.initialTagKeys,
              key: 'k',
              value: 'edited',
            },
            modelVersionDecider.initialState(),
            { now: clock, newId: () => 'x' },
          );
          record(modelVersionStream(modelId, version), events);
          break;
        }
      }
    }
    expect(log.length).toBeGreaterThan(300);

    const store = new InMemoryReadModelStore();
    await store.setup(registryProjection);
    const fromReadModels = async (): Promise<RegistryPlacementSnapshot[]> => {
      const models = await store.reader.scan<RegisteredModelDoc>(REGISTERED_MODELS);
      const versions = await store.reader.scan<ModelVersionDoc>(MODEL_VERSIONS);
      return models
        .map((m) => {
          const live = versions
            .filter((v) => v.model_id === m.model_id && !v.deleted)
            .sort((a, b) => a.version - b.version);
          const inStage = (s: string) =>
            live.filter((v) => v.current_stage === s).map((v) => v.version);
          return {
            name: m.name,
            stages: {
              None: inStage('None'),
              Staging: inStage('Staging'),
              Production: inStage('Production'),
              Archived: inStage('Archived'),
            },
            aliases: Object.fromEntries(m.aliases.map((a) => [a.alias, a.version])),
            versions: live.map((v) => v.version),
          };
        })
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    };
    for (let at = 0; at < log.length; at += 10) {
      const batch = log.slice(at, at + 10);
      await store.applyBatch(registryProjection, batch);
      const upTo = log.slice(0, at + batch.length);
      expect(await fromReadModels()).toEqual(registryPlacements(registryStateFold(upTo)));
    }
    // version documents carry the same aliases as their model
    const versions = await store.reader.scan<ModelVersionDoc>(MODEL_VERSIONS);
    for (const m of await store.reader.scan<RegisteredModelDoc>(REGISTERED_MODELS))
      for (const a of m.aliases)
        expect(
          versions.find((v) => v.model_id === m.model_id && v.version === a.version)?.aliases,
        ).toContain(a.alias);
  });
});
