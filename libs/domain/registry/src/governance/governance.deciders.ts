import { invalidParameter, MlflowError, notFound, type Decider } from '@ledgerflow/contracts';
import type {
  ModelVersionCommentEvent,
  RegistryChangeDenied,
  RegistryPolicyEvent,
  TransitionRequestEvent,
} from './governance.events.js';
import { describeTarget, type GovernancePolicy, type GovernanceTarget } from './policy.js';

// ---------------------------------------------------------------- policy

export type RegistryPolicyCommand =
  | {
      readonly type: 'SetRegistryPolicy';
      readonly modelId: string;
      readonly name: string;
      readonly policy: GovernancePolicy;
    }
  | { readonly type: 'ClearRegistryPolicy'; readonly modelId: string; readonly name: string };

export interface RegistryPolicyState {
  /** The model's own policy, or null when the server default applies. */
  readonly policy: GovernancePolicy | null;
}

/** A model's governance policy (stream `registry-policy-<modelId>`). */
export const registryPolicyDecider: Decider<
  RegistryPolicyCommand,
  RegistryPolicyState,
  RegistryPolicyEvent
> = {
  initialState: () => ({ policy: null }),
  decide(command, state) {
    const ref = { modelId: command.modelId, name: command.name };
    if (command.type === 'SetRegistryPolicy')
      return [{ type: 'RegistryPolicySet', data: { ...ref, policy: command.policy } }];
    return state.policy === null ? [] : [{ type: 'RegistryPolicyCleared', data: ref }];
  },
  evolve(_state, event) {
    return { policy: event.type === 'RegistryPolicySet' ? event.data.policy : null };
  },
};

// ---------------------------------------------------------------- transition requests

export interface OpenTransitionRequest {
  readonly requestId: string;
  readonly modelId: string;
  readonly name: string;
  readonly version: number;
  readonly target: GovernanceTarget;
  readonly requester: string;
  readonly comment: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly approvalsRequired: number;
  readonly rule: string;
  readonly approvals: readonly {
    readonly user: string;
    readonly comment: string;
    readonly at: number;
  }[];
}

export interface TransitionRequestState {
  readonly open: OpenTransitionRequest | null;
  /** How the last request ended (`applied`, `rejected`, `deleted`, `expired`), for messages. */
  readonly lastOutcome: {
    readonly requestId: string;
    readonly outcome: string;
    readonly at: number;
  } | null;
}

export type TransitionRequestCommand =
  | {
      readonly type: 'CreateTransitionRequest';
      readonly requestId: string;
      readonly modelId: string;
      readonly name: string;
      readonly version: number;
      readonly target: GovernanceTarget;
      readonly requester: string;
      readonly comment: string;
      readonly approvalsRequired: number;
      readonly rule: string;
      readonly ttlMs: number;
    }
  | {
      readonly type: 'ApproveTransitionRequest';
      readonly approver: string;
      readonly comment: string;
      readonly archiveExistingVersions: boolean;
    }
  | {
      readonly type: 'RejectTransitionRequest';
      readonly rejecter: string;
      readonly comment: string;
    }
  | {
      readonly type: 'DeleteTransitionRequest';
      readonly deletedBy: string;
      readonly comment: string;
      /** Admins may withdraw anyone's request. */
      readonly admin: boolean;
    }
  /** Closes the open request if its time is up (no events otherwise): lazy and timer expiry. */
  | { readonly type: 'ExpireTransitionRequest' };

function refOf(r: OpenTransitionRequest) {
  return {
    requestId: r.requestId,
    modelId: r.modelId,
    name: r.name,
    version: r.version,
    target: r.target,
  };
}

function noOpenRequest(state: TransitionRequestState, what: string): MlflowError {
  const last = state.lastOutcome;
  return notFound(
    `No open transition request for ${what}` +
      (last === null ? '.' : ` (the last one, ${last.requestId}, was ${last.outcome}).`),
  );
}

/**
 * One version's requests for one target (stream
 * `transition-request-<modelId>-<version>-<target>`): at most one open at a time, closed by the
 * approval that completes it (applied), a rejection, its requester's withdrawal, or expiry.
 */
export const transitionRequestDecider: Decider<
  TransitionRequestCommand,
  TransitionRequestState,
  TransitionRequestEvent
> = {
  initialState: () => ({ open: null, lastOutcome: null }),

  decide(command, state, ctx) {
    const open = state.open;
    const due = open !== null && ctx.now >= open.expiresAt;
    const expire = (r: OpenTransitionRequest): TransitionRequestEvent => ({
      type: 'TransitionRequestExpired',
      data: { ...refOf(r), expiresAt: r.expiresAt },
    });
    if (command.type === 'ExpireTransitionRequest')
      return open !== null && due ? [expire(open)] : [];
    if (command.type === 'CreateTransitionRequest') {
      const what = `version ${command.version} of '${command.name}' to ${describeTarget(command.target)}`;
      if (open !== null && !due)
        throw new MlflowError(
          'RESOURCE_ALREADY_EXISTS',
          `A transition request for ${what} is already open (${open.requestId}, requested by '${open.requester}').`,
        );
      if (command.approvalsRequired < 1)
        throw invalidParameter(
          `${describeTarget(command.target)} of '${command.name}' needs no approval; change it directly.`,
        );
      return [
        ...(open !== null ? [expire(open)] : []),
        {
          type: 'TransitionRequestCreated',
          data: {
            requestId: command.requestId,
            modelId: command.modelId,
            name: command.name,
            version: command.version,
            target: command.target,
            requester: command.requester,
            comment: command.comment,
            approvalsRequired: command.approvalsRequired,
            rule: command.rule,
            expiresAt: ctx.now + command.ttlMs,
          },
        },
      ];
    }
    if (open === null || due) throw noOpenRequest(state, 'this version and target');
    const ref = refOf(open);
    switch (command.type) {
      case 'ApproveTransitionRequest': {
        if (open.approvals.some((a) => a.user === command.approver))
          throw new MlflowError(
            'RESOURCE_ALREADY_EXISTS',
            `User '${command.approver}' already approved request ${open.requestId}.`,
          );
        const approvals = open.approvals.length + 1;
        const events: TransitionRequestEvent[] = [
          {
            type: 'TransitionRequestApproved',
            data: { ...ref, approver: command.approver, comment: command.comment, approvals },
          },
        ];
        if (approvals >= open.approvalsRequired)
          events.push({
            type: 'TransitionRequestApplied',
            data: {
              ...ref,
              requester: open.requester,
              approvers: [...open.approvals.map((a) => a.user), command.approver],
              archiveExistingVersions: command.archiveExistingVersions,
            },
          });
        return events;
      }
      case 'RejectTransitionRequest':
        return [
          {
            type: 'TransitionRequestRejected',
            data: { ...ref, rejecter: command.rejecter, comment: command.comment },
          },
        ];
      case 'DeleteTransitionRequest':
        if (command.deletedBy !== open.requester && !command.admin)
          throw new MlflowError(
            'PERMISSION_DENIED',
            `Only the requester ('${open.requester}') may delete transition request ${open.requestId}.`,
          );
        return [
          {
            type: 'TransitionRequestDeleted',
            data: { ...ref, deletedBy: command.deletedBy, comment: command.comment },
          },
        ];
    }
  },

  evolve(state, event, place) {
    const closed = (outcome: string): TransitionRequestState => ({
      open: null,
      lastOutcome: { requestId: event.data.requestId, outcome, at: place.occurredAt },
    });
    switch (event.type) {
      case 'TransitionRequestCreated': {
        const d = event.data;
        return {
          ...state,
          open: {
            requestId: d.requestId,
            modelId: d.modelId,
            name: d.name,
            version: d.version,
            target: d.target,
            requester: d.requester,
            comment: d.comment,
            createdAt: place.occurredAt,
            expiresAt: d.expiresAt,
            approvalsRequired: d.approvalsRequired,
            rule: d.rule,
            approvals: [],
          },
        };
      }
      case 'TransitionRequestApproved':
        return state.open === null
          ? state
          : {
              ...state,
              open: {
                ...state.open,
                approvals: [
                  ...state.open.approvals,
                  { user: event.data.approver, comment: event.data.comment, at: place.occurredAt },
                ],
              },
            };
      case 'TransitionRequestApplied':
        return closed('applied');
      case 'TransitionRequestRejected':
        return closed('rejected');
      case 'TransitionRequestDeleted':
        return closed('deleted');
      case 'TransitionRequestExpired':
        return closed('expired');
    }
  },
};

// ---------------------------------------------------------------- comments

export interface VersionComment {
  readonly commentId: string;
  readonly author: string;
  readonly comment: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface ModelVersionCommentsState {
  readonly comments: ReadonlyMap<string, VersionComment>;
}

export type ModelVersionCommentCommand =
  | {
      readonly type: 'CreateModelVersionComment';
      readonly modelId: string;
      readonly name: string;
      readonly version: number;
      readonly commentId: string;
      readonly author: string;
      readonly comment: string;
    }
  | {
      readonly type: 'UpdateModelVersionComment';
      readonly modelId: string;
      readonly name: string;
      readonly version: number;
      readonly commentId: string;
      readonly user: string;
      readonly comment: string;
    }
  | {
      readonly type: 'DeleteModelVersionComment';
      readonly modelId: string;
      readonly name: string;
      readonly version: number;
      readonly commentId: string;
      readonly user: string;
      readonly admin: boolean;
    };

const MAX_COMMENT_LENGTH = 100_000;

/** Validates a comment's text (required, bounded). */
export function validateComment(comment: string): string {
  if (comment.trim() === '')
    throw invalidParameter("Missing value for required parameter 'comment'.");
  if (comment.length > MAX_COMMENT_LENGTH)
    throw invalidParameter(
      `Comment had length ${comment.length}, which exceeded length limit of ${MAX_COMMENT_LENGTH}.`,
    );
  return comment;
}

/** Comments left on one model version (stream `model-version-comments-<modelId>-<version>`). */
export const modelVersionCommentsDecider: Decider<
  ModelVersionCommentCommand,
  ModelVersionCommentsState,
  ModelVersionCommentEvent
> = {
  initialState: () => ({ comments: new Map() }),
  decide(command, state) {
    const ref = { modelId: command.modelId, name: command.name, version: command.version };
    if (command.type === 'CreateModelVersionComment')
      return [
        {
          type: 'ModelVersionCommentCreated',
          data: {
            ...ref,
            commentId: command.commentId,
            author: command.author,
            comment: validateComment(command.comment),
          },
        },
      ];
    const existing = state.comments.get(command.commentId);
    if (existing === undefined) throw notFound(`Comment '${command.commentId}' not found.`);
    if (command.type === 'UpdateModelVersionComment') {
      if (existing.author !== command.user)
        throw new MlflowError(
          'PERMISSION_DENIED',
          `Only the author ('${existing.author}') may edit comment '${command.commentId}'.`,
        );
      return [
        {
          type: 'ModelVersionCommentUpdated',
          data: { ...ref, commentId: command.commentId, comment: validateComment(command.comment) },
        },
      ];
    }
    if (existing.author !== command.user && !command.admin)
      throw new MlflowError(
        'PERMISSION_DENIED',
        `Only the author ('${existing.author}') may delete comment '${command.commentId}'.`,
      );
    return [{ type: 'ModelVersionCommentDeleted', data: { ...ref, commentId: command.commentId } }];
  },
  evolve(state, event, place) {
    const comments = new Map(state.comments);
    const d = event.data;
    if (event.type === 'ModelVersionCommentCreated')
      comments.set(d.commentId, {
        commentId: d.commentId,
        author: event.data.author,
        comment: event.data.comment,
        createdAt: place.occurredAt,
        updatedAt: place.occurredAt,
      });
    else if (event.type === 'ModelVersionCommentUpdated') {
      const c = comments.get(d.commentId);
      if (c !== undefined)
        comments.set(d.commentId, {
          ...c,
          comment: event.data.comment,
          updatedAt: place.occurredAt,
        });
    } else comments.delete(d.commentId);
    return { comments };
  },
};

// ---------------------------------------------------------------- refusals

/** Records one refusal by a policy rule (stream `registry-denial-<modelId>`). */
export interface RecordRegistryDenial {
  readonly type: 'RecordRegistryDenial';
  readonly denial: RegistryChangeDenied['data'];
}

/** Refusals of one model: append-only, each command one event; the state counts them. */
export const registryDenialDecider: Decider<
  RecordRegistryDenial,
  { readonly denials: number },
  RegistryChangeDenied
> = {
  initialState: () => ({ denials: 0 }),
  decide(command) {
    return [{ type: 'RegistryChangeDenied', data: command.denial }];
  },
  evolve(state) {
    return { denials: state.denials + 1 };
  },
};
