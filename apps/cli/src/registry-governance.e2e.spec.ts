import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '@ledgerflow/config';
import {
  registryPlacements,
  registryStateFold,
  type RegistryPlacementSnapshot,
} from '@ledgerflow/domain-registry';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import { SqliteReadModelStore, type ProjectionRunner } from '@ledgerflow/projections';
import { PROJECTION_RUNNER, type RunningServer } from '@ledgerflow/runtime';
import { FakeClock } from '@ledgerflow/testing';
import {
  AUDIT_TIMELINE,
  auditProjection,
  GovernanceService,
  governanceProjection,
  registryProjection,
  TRANSITION_REQUESTS,
  VERSION_COMMENTS,
} from '@ledgerflow/service-registry';
import { auditAsOf, auditExport, auditReplay, auditTimeline } from './commands/audit.js';
import { auditVerify } from './commands/audit-verify.js';
import { startEmbeddedServer } from './commands/server.js';
import { apiCaller, basic, call } from './testing/auth-client.js';
import { testServerConfig } from './testing/test-config.js';

const ADMIN = basic('admin', 'admin-password-123');
const user = (name: string): string => basic(name, `${name}-password-1`);
const [ALICE, BOB, CAROL, DAVE, ERIN] = ['alice', 'bob', 'carol', 'dave', 'erin'].map(user) as [
  string,
  string,
  string,
  string,
  string,
];
const DAY = 24 * 3600 * 1000;

/** Silences a CLI command function, returning its exit code and output. */
async function quiet(
  fn: () => Promise<number>,
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const w1 = process.stdout.write.bind(process.stdout);
  const w2 = process.stderr.write.bind(process.stderr);
  process.stdout.write = (c: string | Uint8Array) => ((out += c.toString()), true);
  process.stderr.write = (c: string | Uint8Array) => ((err += c.toString()), true);
  try {
    return { code: await fn(), out, err };
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
  }
}

describe('registry governance and audit (auth on, injected clock)', () => {
  let server: RunningServer;
  let dir: string;
  let dataDir: string;
  const clock = new FakeClock(Date.UTC(2026, 2, 2, 9, 0, 0));
  let runId: string;

  const api = apiCaller(() => server);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-governance-'));
    dataDir = path.join(dir, 'data');
    server = await startEmbeddedServer(
      testServerConfig(dataDir, {
        auth: {
          ...loadConfig({}).auth,
          mode: 'basic',
          adminPassword: 'admin-password-123',
          defaultPermission: 'EDIT',
        },
      }),
      { clock },
    );
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin'])
      await api('POST', 'mlflow/users/create', ADMIN, {
        username: name,
        password: `${name}-password-1`,
      });
    await api('POST', 'ledgerflow/groups/create', ADMIN, { group: 'leads' });
    for (const name of ['bob', 'carol', 'erin'])
      await api('POST', 'ledgerflow/groups/add-member', ADMIN, { group: 'leads', username: name });
    const exp = await api('POST', 'mlflow/experiments/create', ALICE, { name: 'gov' });
    const run = await api('POST', 'mlflow/runs/create', ALICE, {
      experiment_id: exp.json['experiment_id'],
    });
    runId = (run.json['run'] as { info: { run_id: string } }).info.run_id;
  });

  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const newModel = async (name: string, versions: number, auth = ALICE): Promise<void> => {
    await api('POST', 'mlflow/registered-models/create', auth, { name });
    for (let i = 0; i < versions; i++)
      await api('POST', 'mlflow/model-versions/create', auth, {
        name,
        source: `runs:/${runId}/model`,
        run_id: runId,
      });
  };
  const aliasOf = async (name: string, alias: string): Promise<number | undefined> => {
    const res = await call(server, 'GET', `/api/2.0/mlflow/registered-models/alias`, ALICE, {
      name,
      alias,
    });
    return res.status === 200
      ? Number((res.json['model_version'] as { version: string }).version)
      : undefined;
  };
  const stageOf = async (name: string, version: number): Promise<string> =>
    (
      (await api('GET', 'mlflow/model-versions/get', ALICE, { name, version })).json[
        'model_version'
      ] as { current_stage: string }
    ).current_stage;
  interface Entry {
    actor: string;
    action: string;
    summary: string;
    version: number | null;
    reason: string | null;
    correlation_id: string;
    approvals: { user: string; comment: string }[];
  }
  const timeline = async (name: string, version?: number): Promise<Entry[]> =>
    (
      await api('GET', 'ledgerflow/audit/timeline', ADMIN, {
        name,
        ...(version === undefined ? {} : { version }),
      })
    ).json['entries'] as Entry[];

  describe('governance', () => {
    beforeAll(async () => {
      await newModel('fraud', 3);
      await api('POST', 'ledgerflow/registry/policies/set', ADMIN, {
        name: 'fraud',
        policy: {
          stages: { Production: { allowed: ['alice', 'group:leads'] } },
          aliases: { champion: { approvals: 2, approvers: ['group:leads'] } },
          request_ttl_seconds: 7 * 24 * 3600,
        },
      });
    });

    it('refuses a user without the right, naming the rule, and records the refusal alone', async () => {
      const before = (await timeline('fraud')).length;
      const res = await call(
        server,
        'POST',
        '/api/2.0/mlflow/model-versions/transition-stage',
        DAVE,
        {
          name: 'fraud',
          version: '1',
          stage: 'Production',
          comment: 'hotfix',
        },
      );
      expect(res.status).toBe(403);
      expect(res.json).toMatchObject({ error_code: 'PERMISSION_DENIED' });
      expect(res.json['message']).toContain('rule stages.Production.allowed');
      expect(res.json['message']).toContain("user 'dave'");
      // the audit record: one 'denied' entry naming who, what, the rule and why; no change
      const after = await timeline('fraud');
      expect(after).toHaveLength(before + 1);
      expect(after.at(-1)).toMatchObject({
        actor: 'dave',
        action: 'denied',
        version: 1,
        reason: 'hotfix',
      });
      expect(after.at(-1)!.summary).toBe(
        `was refused transition_stage of version 1 → stage Production by rule stages.Production.allowed: ${String(res.json['message'])}`,
      );
      expect(after.at(-1)!.correlation_id).toMatch(/\S/);
      expect(await stageOf('fraud', 1)).toBe('None');
      await api('POST', 'mlflow/model-versions/transition-stage', ALICE, {
        name: 'fraud',
        version: '1',
        stage: 'Production',
      });
      expect((await timeline('fraud')).at(-1)).toMatchObject({
        actor: 'alice',
        action: 'transition_stage',
      });
      // only an admin changes a policy
      const policy = await call(
        server,
        'POST',
        '/api/2.0/ledgerflow/registry/policies/set',
        ALICE,
        {
          name: 'fraud',
          policy: {},
        },
      );
      expect(policy.status).toBe(403);
    });

    it('will not move a protected alias directly, and refuses self-approval', async () => {
      const direct = await call(server, 'POST', '/api/2.0/mlflow/registered-models/alias', ALICE, {
        name: 'fraud',
        alias: 'champion',
        version: '2',
      });
      expect(direct.status).toBe(403);
      expect(direct.json['message']).toContain('rule aliases.champion.approvals');
      expect(direct.json['message']).toContain('needs 2 approvals');
      const refusedMove = (await timeline('fraud', 2)).at(-1)!;
      expect(refusedMove).toMatchObject({ actor: 'alice', action: 'denied' });
      expect(refusedMove.summary).toMatch(
        /^was refused set_alias of version 2 → alias @champion by rule aliases\.champion\.approvals: /,
      );

      await api('POST', 'mlflow/transition-requests/create', BOB, {
        name: 'fraud',
        version: '2',
        alias: 'champion',
        comment: 'recall +4%',
      });
      const self = await call(server, 'POST', '/api/2.0/mlflow/transition-requests/approve', BOB, {
        name: 'fraud',
        version: '2',
        alias: 'champion',
        comment: 'lgtm',
      });
      expect(self.status).toBe(403);
      expect(self.json['message']).toContain('rule allow_self_approval');
      const afterSelf = await timeline('fraud', 2);
      expect(afterSelf.at(-1)).toMatchObject({ actor: 'bob', action: 'denied', reason: 'lgtm' });
      expect(afterSelf.at(-1)!.summary).toMatch(
        /^was refused approve_request of version 2 → alias @champion by rule allow_self_approval: /,
      );
      // the refused approval counted for nothing: the request is open with no approvals
      expect(afterSelf.filter((e) => e.action === 'approve_request')).toEqual([]);
      const outsider = await call(
        server,
        'POST',
        '/api/2.0/mlflow/transition-requests/approve',
        DAVE,
        {
          name: 'fraud',
          version: '2',
          alias: 'champion',
        },
      );
      expect(outsider.status).toBe(403);
      expect(outsider.json['message']).toContain('rule aliases.champion.approvers');
      const refusedApprover = (await timeline('fraud', 2)).at(-1)!;
      expect(refusedApprover).toMatchObject({ actor: 'dave', action: 'denied' });
      expect(refusedApprover.summary).toContain('by rule aliases.champion.approvers: ');
      expect(await aliasOf('fraud', 'champion')).toBeUndefined();
    });

    it('applies an approved request atomically with the approval that completes it', async () => {
      const first = await api('POST', 'mlflow/transition-requests/approve', CAROL, {
        name: 'fraud',
        version: '2',
        alias: 'champion',
        comment: 'checked the eval',
      });
      expect(first.json['applied']).toBe(false);
      expect(await aliasOf('fraud', 'champion')).toBeUndefined();
      const second = await call(
        server,
        'POST',
        '/api/2.0/mlflow/transition-requests/approve',
        ERIN,
        {
          name: 'fraud',
          version: '2',
          alias: 'champion',
          comment: 'ship it',
        },
      );
      expect(second.status).toBe(200);
      expect(second.json['applied']).toBe(true);
      expect(await aliasOf('fraud', 'champion')).toBe(2);

      const export_ = await api('GET', 'ledgerflow/audit/export', ADMIN);
      const events = export_.text
        .trim()
        .split('\n')
        .map(
          (l) =>
            JSON.parse(l) as {
              type: string;
              position: number;
              metadata: { correlationId: string };
            },
        );
      const applied = events.find((e) => e.type === 'TransitionRequestApplied')!;
      const moved = events.find((e) => e.type === 'RegisteredModelAliasSet')!;
      const approval = events.filter((e) => e.type === 'TransitionRequestApproved').at(-1)!;
      // one append: the completing approval, the request's closing and the alias move are adjacent
      expect([approval.position + 1, approval.position + 2]).toEqual([
        applied.position,
        moved.position,
      ]);
      expect(moved.metadata.correlationId).toBe(approval.metadata.correlationId);

      const entries = await timeline('fraud', 2);
      const actions = entries.map((e) => `${e.actor}:${e.action}`);
      expect(actions).toEqual(
        expect.arrayContaining([
          'bob:request_transition',
          'carol:approve_request',
          'erin:approve_request',
          'erin:apply_request',
          'erin:set_alias',
        ]),
      );
      const set = entries.find((e) => e.action === 'set_alias')!;
      expect(set.approvals.map((a) => a.user)).toEqual(['carol', 'erin']);
      expect(set.reason).toBe('ship it');
      expect(entries.find((e) => e.action === 'request_transition')!.reason).toBe('recall +4%');
      expect(set.correlation_id).toBe(moved.metadata.correlationId);
    });

    it('applies an approved stage request, archiving the previous holder in the same append', async () => {
      await newModel('risk', 2);
      await api('POST', 'ledgerflow/registry/policies/set', ADMIN, {
        name: 'risk',
        policy: { stages: { Production: { approvals: 1, approvers: ['group:leads'] } } },
      });
      const direct = await call(
        server,
        'POST',
        '/api/2.0/mlflow/model-versions/transition-stage',
        ALICE,
        { name: 'risk', version: '1', stage: 'Production' },
      );
      expect(direct.status).toBe(403);
      expect(direct.json['message']).toContain('rule stages.Production.approvals');
      for (const [version, approver] of [
        ['1', CAROL],
        ['2', ERIN],
      ] as const) {
        await api('POST', 'mlflow/transition-requests/create', ALICE, {
          name: 'risk',
          version,
          stage: 'production',
          comment: `promote ${version}`,
        });
        const approved = await api('POST', 'mlflow/transition-requests/approve', approver, {
          name: 'risk',
          version,
          stage: 'Production',
          archive_existing_versions: true,
          comment: `ok ${version}`,
        });
        expect(approved.json['applied']).toBe(true);
        expect(approved.json['request']).toMatchObject({
          to_stage: 'Production',
          status: 'applied',
        });
      }
      expect([await stageOf('risk', 1), await stageOf('risk', 2)]).toEqual([
        'Archived',
        'Production',
      ]);
      const moved = (await timeline('risk', 2)).find((e) => e.action === 'transition_stage')!;
      expect(moved).toMatchObject({
        actor: 'erin',
        summary: 'moved version 2 from None to Production, archiving 1 (Production)',
        reason: 'ok 2',
      });
      expect(moved.approvals.map((a) => a.user)).toEqual(['erin']);
      // archiving is for Staging and Production only, as in MLflow
      const bad = await call(server, 'POST', '/api/2.0/mlflow/transition-requests/approve', ERIN, {
        name: 'risk',
        version: '1',
        stage: 'Archived',
        archive_existing_versions: true,
      });
      expect(bad.status).toBe(400);
    });

    it('leaves the alias alone when a request is rejected or expires', async () => {
      await api('POST', 'mlflow/transition-requests/create', BOB, {
        name: 'fraud',
        version: '3',
        alias: 'champion',
        comment: 'try v3',
      });
      await api('POST', 'mlflow/transition-requests/reject', CAROL, {
        name: 'fraud',
        version: '3',
        alias: 'champion',
        comment: 'calibration is off',
      });
      const late = await call(server, 'POST', '/api/2.0/mlflow/transition-requests/approve', ERIN, {
        name: 'fraud',
        version: '3',
        alias: 'champion',
      });
      expect(late.status).toBe(404);
      expect(late.json['message']).toContain('was rejected');
      expect(await aliasOf('fraud', 'champion')).toBe(2);

      await api('POST', 'mlflow/transition-requests/create', BOB, {
        name: 'fraud',
        version: '3',
        alias: 'champion',
        comment: 'recalibrated',
      });
      const open = await api('GET', 'mlflow/transition-requests/list', BOB, {
        name: 'fraud',
        version: '3',
      });
      expect(open.json['requests']).toHaveLength(1);
      clock.advance(8 * DAY);
      const after = await api('GET', 'mlflow/transition-requests/list', BOB, {
        name: 'fraud',
        version: '3',
      });
      expect(after.json['requests']).toBeUndefined();
      const expired = await call(
        server,
        'POST',
        '/api/2.0/mlflow/transition-requests/approve',
        CAROL,
        {
          name: 'fraud',
          version: '3',
          alias: 'champion',
        },
      );
      expect(expired.status).toBe(404);
      expect(expired.json['message']).toContain('was expired');
      expect(await aliasOf('fraud', 'champion')).toBe(2);

      const entries = await timeline('fraud', 3);
      expect(entries.map((e) => `${e.actor}:${e.action}`)).toEqual(
        expect.arrayContaining([
          'bob:request_transition',
          'carol:reject_request',
          'system:expire_request',
        ]),
      );
      expect(entries.find((e) => e.action === 'reject_request')!.reason).toBe('calibration is off');
      expect(entries.some((e) => e.action === 'set_alias')).toBe(false);
    });

    it('closes overdue requests by the expiry sweep, without anyone touching them', async () => {
      await api('POST', 'mlflow/transition-requests/create', BOB, {
        name: 'fraud',
        version: '1',
        alias: 'champion',
        comment: 'back to v1?',
      });
      const governance = server.app.get(GovernanceService);
      expect(await governance.expireDue()).toBe(0);
      clock.advance(7 * DAY + 1);
      expect(await governance.expireDue()).toBe(1);
      const entries = await timeline('fraud', 1);
      expect(entries.at(-1)).toMatchObject({ actor: 'system', action: 'expire_request' });
      expect(await aliasOf('fraud', 'champion')).toBe(2);

      // reading the timeline closes an overdue request first, so it never shows one as open
      await api('POST', 'mlflow/transition-requests/create', BOB, {
        name: 'fraud',
        version: '1',
        alias: 'champion',
        comment: 'once more',
      });
      clock.advance(7 * DAY + 1);
      expect((await timeline('fraud', 1)).slice(-2).map((e) => `${e.actor}:${e.action}`)).toEqual([
        'bob:request_transition',
        'system:expire_request',
      ]);
    });

    it('refuses deleting a version (or the model) that holds a protected alias', async () => {
      const res = await call(server, 'DELETE', '/api/2.0/mlflow/model-versions/delete', ALICE, {
        name: 'fraud',
        version: '2',
      });
      expect(res.status).toBe(403);
      expect(res.json['message']).toContain('rule aliases.champion.approvals');
      const model = await call(
        server,
        'DELETE',
        '/api/2.0/mlflow/registered-models/delete',
        ALICE,
        {
          name: 'fraud',
        },
      );
      expect(model.status).toBe(403);
      expect(model.json['message']).toContain('rule aliases.champion.approvals');
      expect(await aliasOf('fraud', 'champion')).toBe(2);
      const refusals = (await timeline('fraud')).slice(-2);
      expect(refusals.map((e) => [e.actor, e.action, e.version])).toEqual([
        ['alice', 'denied', 2],
        ['alice', 'denied', null],
      ]);
      expect(refusals[0]!.summary).toContain('was refused delete_version of version 2 by rule');
      expect(refusals[1]!.summary).toContain('was refused delete_model by rule');
    });

    it('pages a timeline with max_results and page_token', async () => {
      const all = await timeline('fraud');
      const seen: Entry[] = [];
      let token: string | undefined;
      do {
        const page = await api('GET', 'ledgerflow/audit/timeline', ADMIN, {
          name: 'fraud',
          max_results: 3,
          ...(token === undefined ? {} : { page_token: token }),
        });
        const entries = page.json['entries'] as Entry[];
        expect(entries.length).toBeLessThanOrEqual(3);
        seen.push(...entries);
        token = page.json['next_page_token'] as string | undefined;
      } while (token !== undefined);
      expect(seen).toEqual(all);
      const bad = await call(server, 'GET', '/api/2.0/ledgerflow/audit/timeline', ADMIN, {
        name: 'fraud',
        page_token: 'garbage',
      });
      expect(bad.status).toBe(400);
      const tooMany = await call(server, 'GET', '/api/2.0/ledgerflow/audit/timeline', ADMIN, {
        name: 'fraud',
        max_results: 10_001,
      });
      expect(tooMany.status).toBe(400);
    });

    it('prints the timeline, as-of and replay through the CLI', async () => {
      process.env['MLFLOW_TRACKING_USERNAME'] = 'admin';
      process.env['MLFLOW_TRACKING_PASSWORD'] = 'admin-password-123';
      try {
        const t = await quiet(() => auditTimeline('fraud', '2', { server: server.url }));
        expect(t.code).toBe(0);
        expect(t.out).toMatch(/bob\s+requested version 2 → alias @champion .*why: recall \+4%/);
        expect(t.out).toMatch(
          /erin\s+set alias @champion to version 2\s+why: ship it\s+approvals: carol \("checked the eval"\), erin \("ship it"\)\s+\[correlation [\w-]+\]/,
        );
        const a = await quiet(() =>
          auditAsOf(String(clock.now()), 'fraud', { server: server.url }),
        );
        expect(a.out).toContain('fraud: Production: 1; None: 2, 3; @champion=2');
        const r = await quiet(() => auditReplay('fraud', { server: server.url }));
        expect(r.out).toContain('approved by: carol ("checked the eval"), erin ("ship it")');
        const missing = await quiet(() => auditTimeline('nope', undefined, { server: server.url }));
        expect(missing.code).toBe(1);
        expect(missing.err).toContain('404');
      } finally {
        delete process.env['MLFLOW_TRACKING_USERNAME'];
        delete process.env['MLFLOW_TRACKING_PASSWORD'];
      }
    });

    it('keeps comments on versions, editable only by their author', async () => {
      const c = await api('POST', 'mlflow/comments/create', BOB, {
        name: 'fraud',
        version: '3',
        comment: 'drift on segment B',
      });
      const id = (c.json['comment'] as { id: string }).id;
      const edit = await call(server, 'PATCH', '/api/2.0/mlflow/comments/update', CAROL, {
        id,
        comment: 'x',
      });
      expect(edit.status).toBe(403);
      await api('PATCH', 'mlflow/comments/update', BOB, {
        id,
        comment: 'drift on segment B (fixed)',
      });
      const list = await api('GET', 'mlflow/comments/list', BOB, { name: 'fraud', version: '3' });
      expect(list.json['comments']).toMatchObject([
        { id, user_id: 'bob', comment: 'drift on segment B (fixed)' },
      ]);
      expect((await timeline('fraud', 3)).some((e) => e.action === 'edit_comment')).toBe(true);
    });
  });

  describe('time travel', () => {
    const instants: number[] = [];
    const mark = (): void => {
      instants.push(clock.now());
      clock.advance(60_000);
    };
    const step = async (days: number, actions: () => Promise<void>): Promise<void> => {
      clock.advance(days * DAY);
      await actions();
      mark();
    };
    const stage = (version: number, s: string, archive = false) =>
      api('POST', 'mlflow/model-versions/transition-stage', ALICE, {
        name: 'churn',
        version: String(version),
        stage: s,
        archive_existing_versions: archive,
      });
    const alias = (a: string, version: number) =>
      api('POST', 'mlflow/registered-models/alias', ALICE, {
        name: 'churn',
        alias: a,
        version: String(version),
      });

    const expected: [string, Partial<Record<string, number[]>>, Record<string, number>][] = [
      ['', {}, {}],
      ['churn', { None: [1, 2] }, {}],
      ['churn', { Staging: [1], None: [2] }, {}],
      ['churn', { Production: [1], None: [2] }, { champion: 1 }],
      ['churn', { Production: [1], Staging: [2], None: [3] }, { champion: 1 }],
      ['churn', { Production: [2], Archived: [1], None: [3] }, { champion: 1 }],
      ['churn', { Production: [2], Archived: [1], None: [3] }, { champion: 2, challenger: 3 }],
      ['churn', { Production: [2], Staging: [3], Archived: [1] }, { champion: 2 }],
      ['churn', { Production: [3], Archived: [1, 2] }, { champion: 3 }],
      ['churn', { Production: [3], Archived: [2] }, { champion: 3 }],
      ['churn-v2', { Production: [3], Archived: [2] }, { champion: 3 }],
    ];

    beforeAll(async () => {
      mark(); // before the model exists
      await step(1, () => newModel('churn', 2));
      await step(1, async () => void (await stage(1, 'Staging')));
      await step(2, async () => {
        await stage(1, 'Production');
        await alias('champion', 1);
      });
      await step(7, async () => {
        await api('POST', 'mlflow/model-versions/create', ALICE, {
          name: 'churn',
          source: `runs:/${runId}/model`,
        });
        await stage(2, 'Staging');
      });
      await step(1, async () => void (await stage(2, 'Production', true)));
      await step(1, async () => {
        await alias('champion', 2);
        await alias('challenger', 3);
      });
      await step(7, async () => {
        await stage(3, 'Staging');
        await api('DELETE', 'mlflow/registered-models/alias', ALICE, {
          name: 'churn',
          alias: 'challenger',
        });
      });
      await step(7, async () => {
        await stage(3, 'Production', true);
        await alias('champion', 3);
      });
      await step(
        1,
        async () =>
          void (await api('DELETE', 'mlflow/model-versions/delete', ALICE, {
            name: 'churn',
            version: '1',
          })),
      );
      await step(
        7,
        async () =>
          void (await api('POST', 'mlflow/registered-models/rename', ALICE, {
            name: 'churn',
            new_name: 'churn-v2',
          })),
      );
    });

    const asOf = async (t: number): Promise<RegistryPlacementSnapshot[]> =>
      (await api('GET', 'ledgerflow/audit/as-of', ADMIN, { timestamp: new Date(t).toISOString() }))
        .json['registered_models'] as RegistryPlacementSnapshot[];

    it('answers as-of at 11 instants over simulated weeks with exactly the expected stages and aliases', async () => {
      expect(instants).toHaveLength(expected.length);
      for (const [i, t] of instants.entries()) {
        const [name, stages, aliases] = expected[i]!;
        const churn = (await asOf(t))
          .filter((m) => m.name.startsWith('churn'))
          .map((m) => ({ at: i, name: m.name, stages: m.stages, aliases: m.aliases }));
        expect(churn).toEqual(
          name === ''
            ? []
            : [
                {
                  at: i,
                  name,
                  stages: { None: [], Staging: [], Production: [], Archived: [], ...stages },
                  aliases,
                },
              ],
        );
      }
      // epoch milliseconds work too, and a name filter
      const byName = (
        await api('GET', 'ledgerflow/audit/as-of', ADMIN, { timestamp: instants[5], name: 'churn' })
      ).json['registered_models'] as RegistryPlacementSnapshot[];
      expect(byName.map((m) => m.name)).toEqual(['churn']);
      const bad = await call(server, 'GET', '/api/2.0/ledgerflow/audit/as-of', ADMIN, {
        timestamp: 'yesterday',
      });
      expect(bad.status).toBe(400);
    });

    it('matches a fold of the exported log at every instant, and an edited export fails verify', async () => {
      const file = path.join(dir, 'export.jsonl');
      expect((await quiet(() => auditExport({ dataDir, out: file }))).code).toBe(0);
      expect((await quiet(() => auditVerify({ dataDir, file }))).code).toBe(0);
      const events = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map(
          (l) =>
            JSON.parse(l) as {
              type: string;
              data: unknown;
              occurredAt: number;
              position: number;
              metadata: { actor: string };
            },
        );
      for (const t of instants) {
        const folded = registryPlacements(
          registryStateFold(events.filter((e) => e.occurredAt <= t)),
        );
        expect(await asOf(t)).toEqual(folded);
      }
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
      const i = lines.findIndex(
        (l) => l.includes('"type":"RegisteredModelAliasSet"') && l.includes('"alias":"champion"'),
      );
      lines[i] = lines[i]!.replace('"alias":"champion"', '"alias":"champ1on"');
      writeFileSync(file, `${lines.join('\n')}\n`);
      const bad = await quiet(() => auditVerify({ dataDir, file }));
      expect(bad.code).toBe(1);
      expect(bad.err).toContain(`FAILED at line ${i + 1}`);
    });

    it('replays the promotion history as a readable report that ends in the as-of state', async () => {
      const res = await api('GET', 'ledgerflow/audit/replay', ADMIN, { name: 'churn-v2' });
      const report = res.json['report'] as string;
      // every line of the report, in order, at the instant of the scripted step that made it
      const at = (step: number): string => new Date(instants[step]!).toISOString();
      const source = `runs:/${runId}/model`;
      const lines = [...report.matchAll(/^(\S+Z) {2}(\w+): (.*)$/gm)].map((m) => [
        m[1],
        m[2],
        m[3],
      ]);
      expect(lines).toEqual(
        (
          [
            [1, "created registered model 'churn'"],
            [1, `created version 1 from ${source}`],
            [1, `created version 2 from ${source}`],
            [2, 'moved version 1 from None to Staging'],
            [3, 'moved version 1 from Staging to Production'],
            [3, 'set alias @champion to version 1'],
            [4, `created version 3 from ${source}`],
            [4, 'moved version 2 from None to Staging'],
            [5, 'moved version 2 from Staging to Production, archiving 1 (Production)'],
            [6, 'moved alias @champion from version 1 to 2'],
            [6, 'set alias @challenger to version 3'],
            [7, 'moved version 3 from None to Staging'],
            [7, 'deleted alias @challenger (was version 3)'],
            [8, 'moved version 3 from Staging to Production, archiving 2 (Production)'],
            [8, 'moved alias @champion from version 2 to 3'],
            [9, 'deleted version 1'],
            [10, "renamed 'churn' to 'churn-v2'"],
          ] as const
        ).map(([step, summary]) => [at(step), 'alice', summary]),
      );
      expect(report).toContain('\n11 promotions.\n');
      expect(report).toContain('Final state: Production: 3; Archived: 2; @champion=3');
    });
  });

  it('rebuilds the registry, governance and audit read models to the live content hashes', async () => {
    const runner = server.app.get<ProjectionRunner>(PROJECTION_RUNNER);
    const events = server.app.get<EventStore>(EVENT_STORE);
    await runner.waitFor(await events.headPosition());
    const store = new SqliteReadModelStore({ path: path.join(dataDir, 'read-models.db') });
    try {
      const projections = [registryProjection, governanceProjection, auditProjection];
      const live = new Map<string, string>();
      for (const p of projections) {
        await store.setup(p);
        live.set(p.name, await store.contentHash(p));
      }
      // not vacuous: each read model holds what the tests above made
      expect(await store.reader.count('model_versions')).toBeGreaterThan(5);
      expect(await store.reader.count(TRANSITION_REQUESTS)).toBeGreaterThan(3);
      expect(await store.reader.count(VERSION_COMMENTS)).toBeGreaterThan(0);
      expect(await store.reader.count(AUDIT_TIMELINE)).toBeGreaterThan(40);
      for (const p of projections) {
        await runner.rebuild(p.name);
        expect({ name: p.name, hash: await store.contentHash(p) }).toEqual({
          name: p.name,
          hash: live.get(p.name),
        });
      }
    } finally {
      await store.close();
    }
  });

  it('answers timeline, as-of and replay from the data dir alone, as the server did', async () => {
    process.env['MLFLOW_TRACKING_USERNAME'] = 'admin';
    process.env['MLFLOW_TRACKING_PASSWORD'] = 'admin-password-123';
    const runs = (o: { server?: string; dataDir?: string }) => [
      () => auditTimeline('fraud', undefined, { ...o, json: true }),
      () => auditTimeline('churn-v2', '3', o),
      () => auditAsOf(String(clock.now()), undefined, o),
      () => auditAsOf('2026-03-10T00:00:00Z', 'churn', { ...o, json: true }),
      () => auditReplay('churn-v2', o),
    ];
    const online: string[] = [];
    try {
      for (const run of runs({ server: server.url })) online.push((await quiet(run)).out);
    } finally {
      delete process.env['MLFLOW_TRACKING_USERNAME'];
      delete process.env['MLFLOW_TRACKING_PASSWORD'];
    }
    await server.close();
    const offline: string[] = [];
    for (const run of runs({ dataDir })) {
      const r = await quiet(run);
      expect(r.code).toBe(0);
      offline.push(r.out);
    }
    expect(offline).toEqual(online);
    expect(online[0]).toContain('"action": "apply_request"');
    const missing = await quiet(() => auditReplay('nope', { dataDir }));
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('RESOURCE_DOES_NOT_EXIST');
  });
});
