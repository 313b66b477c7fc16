import type { EventMetadata } from '@ledgerflow/contracts';
import {
  registeredModelDecider,
  registeredModelStream,
  registryPlacements,
  registryStateFold,
  type RegisteredModelCommand,
} from '@ledgerflow/domain-registry';
import { AggregateStore, InMemoryEventStore } from '@ledgerflow/event-store';
import { InMemoryReadModelStore, ProjectionRunner } from '@ledgerflow/projections';
import { FakeClock, SequentialIds } from '@ledgerflow/testing';
import { auditProjection } from './audit.projection.js';
import { AuditQueries, parseInstant } from './audit.queries.js';

/** Seeded PRNG (mulberry32), so a failing history can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const meta: EventMetadata = { actor: 'alice', correlationId: 'c', causationId: null };

describe('registry-audit read models', () => {
  it('answer as-of exactly as a fold of the log does, and rebuild to the same content hash', async () => {
    const events = new InMemoryEventStore();
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const aggregates = new AggregateStore(events, clock, new SequentialIds('e-'));
    const readModels = new InMemoryReadModelStore();
    const runner = new ProjectionRunner({
      eventStore: events,
      readModels,
      projections: [auditProjection],
    });
    await runner.start();
    const next = random(2026);
    const stages = ['None', 'Staging', 'Production', 'Archived'] as const;
    const live = new Map<string, { name: string; versions: number }>();
    const run = async (modelId: string, command: RegisteredModelCommand): Promise<void> => {
      try {
        await aggregates.execute(
          { stream: registeredModelStream(modelId), decider: registeredModelDecider, command },
          meta,
        );
      } catch {
        // refused commands (a deleted version, a stale alias) change nothing: that is part of the test
      }
    };
    for (let step = 0; step < 600; step++) {
      clock.advance(Math.floor(next() * 6 * 3600 * 1000));
      const roll = next();
      const ids = [...live.keys()];
      const id = ids[Math.floor(next() * ids.length)];
      const m = id === undefined ? undefined : live.get(id);
      if (m === undefined || id === undefined || roll < 0.05) {
        const modelId = `m${step}`;
        live.set(modelId, { name: `model-${step}`, versions: 0 });
        await run(modelId, {
          type: 'CreateRegisteredModel',
          modelId,
          name: `model-${step}`,
          description: '',
          tags: [],
        });
      } else if (roll < 0.3 || m.versions === 0) {
        m.versions += 1;
        await run(id, {
          type: 'CreateModelVersion',
          source: 's',
          storageLocation: 's',
          runId: '',
          runLink: '',
          description: '',
          tags: [],
          loggedModelId: '',
        });
      } else if (roll < 0.7) {
        await run(id, {
          type: 'TransitionModelVersionStage',
          version: 1 + Math.floor(next() * m.versions),
          stage: stages[Math.floor(next() * 4)]!,
          archiveExistingVersions: next() < 0.5,
        });
      } else if (roll < 0.85) {
        await run(id, {
          type: 'SetRegisteredModelAlias',
          alias: next() < 0.5 ? 'champion' : 'shadow',
          version: 1 + Math.floor(next() * m.versions),
        });
      } else if (roll < 0.9) {
        await run(id, { type: 'DeleteRegisteredModelAlias', alias: 'shadow' });
      } else if (roll < 0.95) {
        await run(id, { type: 'DeleteModelVersion', version: 1 + Math.floor(next() * m.versions) });
      } else if (roll < 0.98) {
        m.name = `${m.name}-r`;
        await run(id, { type: 'RenameRegisteredModel', newName: m.name });
      } else {
        live.delete(id);
        await run(id, { type: 'DeleteRegisteredModel' });
      }
    }
    await runner.waitFor(await events.headPosition());
    const log = await events.readAll(0, 1_000_000);
    const types = new Set(log.map((e) => e.type));
    for (const type of [
      'ModelVersionStageTransitioned',
      'RegisteredModelAliasSet',
      'RegisteredModelAliasDeleted',
      'ModelVersionDeleted',
      'RegisteredModelRenamed',
      'RegisteredModelDeleted',
    ])
      expect(types).toContain(type);
    expect(log.some((e) => (e.data as { archived?: unknown[] }).archived?.length)).toBe(true);
    const queries = new AuditQueries(readModels.reader);
    const first = log[0]!.occurredAt;
    const last = log.at(-1)!.occurredAt;
    for (let i = 0; i <= 40; i++) {
      const t = i === 0 ? first - 1 : first + Math.floor(((last - first) * i) / 40);
      const folded = registryPlacements(registryStateFold(log.filter((e) => e.occurredAt <= t)));
      expect({ t, state: await queries.asOf(t) }).toEqual({ t, state: folded });
    }
    const before = await readModels.contentHash(auditProjection);
    await runner.rebuild(auditProjection.name);
    expect(await readModels.contentHash(auditProjection)).toBe(before);
    await runner.stop();
  });

  it('parses instants as epoch milliseconds or ISO 8601 (UTC when no zone is given)', () => {
    expect(parseInstant('1767225600000')).toBe(Date.UTC(2026, 0, 1));
    expect(parseInstant('2026-01-01')).toBe(Date.UTC(2026, 0, 1));
    expect(parseInstant('2026-01-01T12:00')).toBe(Date.UTC(2026, 0, 1, 12));
    expect(parseInstant('2026-01-01T12:00:00+02:00')).toBe(Date.UTC(2026, 0, 1, 10));
    expect(() => parseInstant('last tuesday')).toThrow(/Invalid timestamp/);
  });
});
