import { deciderSpec, FakeClock } from '@ledgerflow/testing';
import {
  modelVersionCommentsDecider,
  transitionRequestDecider,
  type TransitionRequestCommand,
} from './governance.deciders.js';
import type { TransitionRequestEvent } from './governance.events.js';
import {
  authorizeApprover,
  authorizeDirectChange,
  authorizeSelfApproval,
  parseGovernancePolicy,
  type EffectivePolicy,
} from './policy.js';

const target = { kind: 'alias', alias: 'champion' } as const;
const ref = { requestId: 'r1', modelId: 'm1', name: 'fraud', version: 3, target };
const created: TransitionRequestEvent = {
  type: 'TransitionRequestCreated',
  data: {
    ...ref,
    requester: 'alice',
    comment: 'better AUC',
    approvalsRequired: 2,
    rule: 'aliases.champion',
    expiresAt: Date.UTC(2026, 2, 4, 9),
  },
};
const create: TransitionRequestCommand = {
  type: 'CreateTransitionRequest',
  requestId: 'r2',
  modelId: 'm1',
  name: 'fraud',
  version: 3,
  target,
  requester: 'alice',
  comment: 'again',
  approvalsRequired: 2,
  rule: 'aliases.champion',
  ttlMs: 3_600_000,
};
const approve = (approver: string): TransitionRequestCommand => ({
  type: 'ApproveTransitionRequest',
  approver,
  comment: 'ok',
  archiveExistingVersions: false,
});

describe('transition request decider', () => {
  it('refuses a second open request for the same target', () => {
    deciderSpec(transitionRequestDecider)
      .given([created])
      .when(create)
      .thenThrows('RESOURCE_ALREADY_EXISTS', /already open \(r1/);
  });

  it('records an approval below the threshold without applying', () => {
    deciderSpec(transitionRequestDecider)
      .given([created])
      .when(approve('bob'))
      .then([
        {
          type: 'TransitionRequestApproved',
          data: { ...ref, approver: 'bob', comment: 'ok', approvals: 1 },
        },
      ]);
  });

  it('applies on the approval that reaches the threshold', () => {
    const first: TransitionRequestEvent = {
      type: 'TransitionRequestApproved',
      data: { ...ref, approver: 'bob', comment: 'ok', approvals: 1 },
    };
    deciderSpec(transitionRequestDecider)
      .given([created, first])
      .when(approve('carol'))
      .then([
        {
          type: 'TransitionRequestApproved',
          data: { ...ref, approver: 'carol', comment: 'ok', approvals: 2 },
        },
        {
          type: 'TransitionRequestApplied',
          data: {
            ...ref,
            requester: 'alice',
            approvers: ['bob', 'carol'],
            archiveExistingVersions: false,
          },
        },
      ]);
    deciderSpec(transitionRequestDecider)
      .given([created, first])
      .when(approve('bob'))
      .thenThrows('RESOURCE_ALREADY_EXISTS', /already approved/);
  });

  it('expires a request whose time is up, and then refuses to act on it', () => {
    const clock = new FakeClock(Date.UTC(2026, 2, 4, 9));
    deciderSpec(transitionRequestDecider, clock)
      .given([created])
      .when({ type: 'ExpireTransitionRequest' })
      .then([
        { type: 'TransitionRequestExpired', data: { ...ref, expiresAt: Date.UTC(2026, 2, 4, 9) } },
      ]);
    deciderSpec(transitionRequestDecider, clock)
      .given([created])
      .when(approve('bob'))
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
    deciderSpec(transitionRequestDecider)
      .given([created])
      .when({ type: 'ExpireTransitionRequest' })
      .then([]);
  });

  it('lets only the requester (or an admin) delete a request', () => {
    deciderSpec(transitionRequestDecider)
      .given([created])
      .when({ type: 'DeleteTransitionRequest', deletedBy: 'bob', comment: '', admin: false })
      .thenThrows('PERMISSION_DENIED', /Only the requester \('alice'\)/);
  });

  it('names the outcome of the last request when none is open', () => {
    deciderSpec(transitionRequestDecider)
      .given([
        created,
        { type: 'TransitionRequestRejected', data: { ...ref, rejecter: 'bob', comment: 'no' } },
      ])
      .when(approve('carol'))
      .thenThrows('RESOURCE_DOES_NOT_EXIST', /r1, was rejected/);
  });
});

describe('version comments decider', () => {
  it('lets only the author edit a comment', () => {
    deciderSpec(modelVersionCommentsDecider)
      .given([
        {
          type: 'ModelVersionCommentCreated',
          data: {
            modelId: 'm1',
            name: 'fraud',
            version: 1,
            commentId: 'c1',
            author: 'alice',
            comment: 'hi',
          },
        },
      ])
      .when({
        type: 'UpdateModelVersionComment',
        modelId: 'm1',
        name: 'fraud',
        version: 1,
        commentId: 'c1',
        user: 'bob',
        comment: 'x',
      })
      .thenThrows('PERMISSION_DENIED');
  });
});

describe('governance policy', () => {
  const p: EffectivePolicy = {
    source: 'model policy',
    modelName: 'fraud',
    policy: parseGovernancePolicy({
      stages: { production: { allowed: ['alice', 'group:leads'], approvals: 0 } },
      aliases: {
        champion: { approvals: 2, approvers: ['group:leads'] },
        '*': { allowed: ['alice'] },
      },
    }),
  };
  const user = (name: string, groups: string[] = [], admin = false) => ({
    user: name,
    groups,
    admin,
  });

  it('names the rule that denies a direct change', () => {
    expect(() =>
      authorizeDirectChange(p, { kind: 'stage', stage: 'Production' }, user('bob')),
    ).toThrow(/rule stages\.Production\.allowed of the model policy of registered model 'fraud'/);
    expect(() =>
      authorizeDirectChange(p, { kind: 'stage', stage: 'Production' }, user('bob', ['leads'])),
    ).not.toThrow();
    expect(() => authorizeDirectChange(p, target, user('alice'))).toThrow(
      /rule aliases\.champion\.approvals .* needs 2 approvals/,
    );
    expect(() => authorizeDirectChange(p, { kind: 'alias', alias: 'shadow' }, user('bob'))).toThrow(
      /aliases\.\*\.allowed/,
    );
    expect(() =>
      authorizeDirectChange(p, { kind: 'stage', stage: 'Staging' }, user('anyone')),
    ).not.toThrow();
  });

  it('checks approvers and self-approval', () => {
    expect(() => authorizeApprover(p, target, user('bob'))).toThrow(/aliases\.champion\.approvers/);
    expect(() => authorizeApprover(p, target, user('bob', ['leads']))).not.toThrow();
    expect(() => authorizeSelfApproval(p, 'alice', user('alice', ['leads'], true))).toThrow(
      /rule allow_self_approval/,
    );
  });

  it('rejects malformed policies naming the field', () => {
    expect(() => parseGovernancePolicy({ stages: { Prod: {} } })).toThrow(/Invalid stage 'Prod'/);
    expect(() => parseGovernancePolicy({ aliases: { champion: { approvals: -1 } } })).toThrow(
      /aliases\.champion\.approvals/,
    );
    expect(() => parseGovernancePolicy({ aliases: { champion: { allowed: 'bob' } } })).toThrow(
      /aliases\.champion\.allowed/,
    );
    expect(() => parseGovernancePolicy({ colour: 1 })).toThrow(/Unknown policy field 'colour'/);
  });
});
