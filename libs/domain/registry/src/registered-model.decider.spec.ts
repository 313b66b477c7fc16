import { deciderSpec } from '@ledgerflow/testing';
import { registeredModelDecider, registeredModelNameDecider } from './registered-model.decider.js';
import { modelVersionDecider } from './model-version.decider.js';
import type { RegisteredModelEvent } from './registry.events.js';
import { registryPlacements, registryStateFold } from './registry-state.js';
import { canonicalStage, parseVersionNumber, validateAliasName } from './registry-validation.js';

const ref = { modelId: 'm1', name: 'fraud' };
const created: RegisteredModelEvent = {
  type: 'RegisteredModelCreated',
  data: { ...ref, description: '', tags: [] },
};
const version = (n: number): RegisteredModelEvent => ({
  type: 'ModelVersionCreated',
  data: {
    ...ref,
    version: n,
    source: `runs:/r${n}/model`,
    storageLocation: `mlflow-artifacts:/1/r${n}/artifacts/model`,
    runId: `r${n}`,
    runLink: '',
    description: '',
    tags: [{ key: 'k', value: 'v' }],
    loggedModelId: '',
  },
});
const toProd = (
  n: number,
  archived: number[] = [],
  archive = archived.length > 0,
): RegisteredModelEvent => ({
  type: 'ModelVersionStageTransitioned',
  data: {
    ...ref,
    version: n,
    fromStage: 'None',
    toStage: 'Production',
    archiveExistingVersions: archive,
    archived: archived.map((v) => ({ version: v, fromStage: 'Production' as const })),
  },
});
const createCmd = {
  type: 'CreateModelVersion' as const,
  source: 's',
  storageLocation: 's',
  runId: '',
  runLink: '',
  description: '',
  tags: [],
  loggedModelId: '',
};

describe('registered model decider', () => {
  const spec = deciderSpec(registeredModelDecider);

  it('numbers versions after the highest ever given, deleted ones included', () => {
    const deleted: RegisteredModelEvent = {
      type: 'ModelVersionDeleted',
      data: { ...ref, version: 2, stage: 'None', removedAliases: [] },
    };
    spec
      .given([created, version(1), version(2), deleted])
      .when(createCmd)
      .then([
        {
          type: 'ModelVersionCreated',
          data: {
            ...ref,
            version: 3,
            source: 's',
            storageLocation: 's',
            runId: '',
            runLink: '',
            description: '',
            tags: [],
            loggedModelId: '',
          },
        },
      ]);
  });

  it('archives the other versions in the target stage in the same event', () => {
    spec
      .given([created, version(1), version(2), version(3), toProd(1), toProd(2)])
      .when({
        type: 'TransitionModelVersionStage',
        version: 3,
        stage: 'Production',
        archiveExistingVersions: true,
      })
      .then([toProd(3, [1, 2])]);
  });

  it('refuses archiving into a non-active stage, a deleted version and a stale revision', () => {
    const given = spec.given([created, version(1)]);
    given
      .when({
        type: 'TransitionModelVersionStage',
        version: 1,
        stage: 'Archived',
        archiveExistingVersions: true,
      })
      .thenThrows('INVALID_PARAMETER_VALUE', /not an Active stage/);
    given
      .when({
        type: 'TransitionModelVersionStage',
        version: 7,
        stage: 'Production',
        archiveExistingVersions: false,
      })
      .thenThrows('RESOURCE_DOES_NOT_EXIST', /version=7/);
    // revision after two events is 1
    given
      .when({
        type: 'TransitionModelVersionStage',
        version: 1,
        stage: 'Production',
        archiveExistingVersions: true,
        expectedRevision: 0,
      })
      .thenThrows('RESOURCE_CONFLICT', /revision 1/);
    given
      .when({
        type: 'TransitionModelVersionStage',
        version: 1,
        stage: 'Production',
        archiveExistingVersions: true,
        expectedRevision: 1,
      })
      .then([toProd(1, [], true)]);
  });

  it('moves aliases and drops those of a deleted version', () => {
    const alias: RegisteredModelEvent = {
      type: 'RegisteredModelAliasSet',
      data: { ...ref, alias: 'champion', version: 1, previousVersion: null },
    };
    spec
      .given([created, version(1), version(2)])
      .when({ type: 'SetRegisteredModelAlias', alias: 'champion', version: 1 })
      .then([alias]);
    spec
      .given([created, version(1), alias])
      .when({ type: 'DeleteModelVersion', version: 1 })
      .then([
        {
          type: 'ModelVersionDeleted',
          data: { ...ref, version: 1, stage: 'None', removedAliases: ['champion'] },
        },
      ]);
  });

  it('guards version edits, alias moves and renames', () => {
    const given = spec.given([
      created,
      version(1),
      version(2),
      {
        type: 'ModelVersionDeleted',
        data: { ...ref, version: 2, stage: 'None', removedAliases: [] },
      },
    ]);
    given.when({ type: 'RequireLiveModelVersion', version: 1 }).then([]);
    given
      .when({ type: 'RequireLiveModelVersion', version: 2 })
      .thenThrows('RESOURCE_DOES_NOT_EXIST', 'Model Version (name=fraud, version=2) not found');
    given
      .when({ type: 'SetRegisteredModelAlias', alias: 'a', version: 1, expectedRevision: 1 })
      .thenThrows('RESOURCE_CONFLICT', /at revision 3/);
    given.when({ type: 'RenameRegisteredModel', newName: 'fraud' }).then([]);
    given.when({ type: 'DeleteRegisteredModelAlias', alias: 'nope' }).then([]);
    given.when({ type: 'DeleteRegisteredModelTag', key: 'nope' }).then([]);
    given
      .when({ type: 'DeleteRegisteredModel' })
      .then([{ type: 'RegisteredModelDeleted', data: { ...ref, versions: [1, 2] } }]);
    spec
      .given([created, { type: 'RegisteredModelDeleted', data: { ...ref, versions: [] } }])
      .when(createCmd)
      .thenThrows('RESOURCE_DOES_NOT_EXIST', 'Registered Model with name=fraud not found');
  });

  it('records where a moved alias pointed before', () => {
    const set = (version: number, previousVersion: number | null): RegisteredModelEvent => ({
      type: 'RegisteredModelAliasSet',
      data: { ...ref, alias: 'champion', version, previousVersion },
    });
    spec
      .given([created, version(1), version(2), set(1, null)])
      .when({ type: 'SetRegisteredModelAlias', alias: 'champion', version: 2 })
      .then([set(2, 1)]);
    spec
      .given([created, version(1), set(1, null)])
      .when({ type: 'SetRegisteredModelAlias', alias: 'champion', version: 1 })
      .then([]);
  });

  it('gives a name to one model at a time', () => {
    const names = deciderSpec(registeredModelNameDecider);
    names
      .given([{ type: 'RegisteredModelNameClaimed', data: { name: 'fraud', modelId: 'm1' } }])
      .when({ type: 'ClaimRegisteredModelName', name: 'fraud', modelId: 'm2' })
      .thenThrows('RESOURCE_ALREADY_EXISTS', 'Registered Model (name=fraud) already exists.');
  });
});

describe('model version decider', () => {
  const spec = deciderSpec(modelVersionDecider);
  const target = { modelId: 'm1', name: 'fraud', version: 1, live: true, initialTagKeys: ['k'] };
  it('deletes a tag the version was created with, and refuses edits to a deleted version', () => {
    spec
      .given([])
      .when({ ...target, type: 'DeleteModelVersionTag', key: 'k' })
      .then([
        {
          type: 'ModelVersionTagDeleted',
          data: { modelId: 'm1', name: 'fraud', version: 1, key: 'k' },
        },
      ]);
    spec
      .given([])
      .when({ ...target, type: 'DeleteModelVersionTag', key: 'x' })
      .then([]);
    spec
      .given([])
      .when({ ...target, live: false, type: 'SetModelVersionTag', key: 'a', value: 'b' })
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
  });
});

describe('registry fold', () => {
  it('reconstructs stages and aliases at every position', () => {
    const events = [created, version(1), version(2), toProd(1), toProd(2, [1])].map((e, i) => ({
      ...e,
      occurredAt: 1000 + i,
      position: i + 1,
    }));
    const at = (n: number) => registryPlacements(registryStateFold(events.slice(0, n)));
    expect(at(4)[0]?.stages.Production).toEqual([1]);
    expect(at(5)[0]?.stages).toEqual({ None: [], Staging: [], Production: [2], Archived: [1] });
    expect(at(0)).toEqual([]);
  });
});

describe('registry validation', () => {
  it('matches MLflow on stages, versions and reserved aliases', () => {
    expect(canonicalStage('production')).toBe('Production');
    expect(() => canonicalStage('Prod')).toThrow('Invalid Model Version stage: Prod');
    expect(parseVersionNumber('12')).toBe(12);
    expect(() => parseVersionNumber('1.5')).toThrow("Parameter 'version' must be an integer");
    expect(() => validateAliasName('Latest', true)).toThrow('reserved');
    expect(() => validateAliasName('v12', true)).toThrow("Version alias name 'v12' is reserved.");
    expect(validateAliasName('champion', true)).toBe('champion');
    expect(() => validateAliasName('a b', true)).toThrow('Invalid alias name');
  });
});
