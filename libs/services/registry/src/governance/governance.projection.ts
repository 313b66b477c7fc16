import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  isGovernanceEvent,
  isRegistryEvent,
  targetKey,
  type GovernanceEvent,
  type GovernanceTarget,
} from '@ledgerflow/domain-registry';
import type { Projection, ReadModelWriter } from '@ledgerflow/projections';

export const TRANSITION_REQUESTS = 'transition_requests';
export const VERSION_COMMENTS = 'version_comments';

/** A transition request as list and the expiry timer see it. */
export interface TransitionRequestDoc {
  [key: string]: unknown;
  readonly requestId: string;
  readonly modelId: string;
  readonly name: string;
  readonly version: number;
  /** `<modelId>:<version>` (the list endpoint's lookup). */
  readonly versionKey: string;
  readonly target: GovernanceTarget;
  readonly targetKey: string;
  readonly requester: string;
  readonly comment: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly approvalsRequired: number;
  readonly rule: string;
  readonly approvals: readonly { user: string; comment: string; at: number }[];
  /** open, applied, rejected, deleted, expired. */
  readonly status: string;
  readonly closedAt: number | null;
  readonly closedBy: string | null;
  readonly correlationId: string;
}

export interface VersionCommentDoc {
  [key: string]: unknown;
  readonly commentId: string;
  readonly modelId: string;
  readonly name: string;
  readonly version: number;
  readonly versionKey: string;
  readonly author: string;
  readonly comment: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export const versionKeyOf = (modelId: string, version: number): string => `${modelId}:${version}`;

async function applyRequest(e: GovernanceEvent & RecordedEvent, w: ReadModelWriter): Promise<void> {
  if (!e.type.startsWith('TransitionRequest')) return;
  const data = e.data as { requestId: string };
  const current = await w.get<TransitionRequestDoc>(TRANSITION_REQUESTS, data.requestId);
  const close = async (status: string, by: string | null): Promise<void> => {
    if (current === undefined) return;
    await w.put(TRANSITION_REQUESTS, data.requestId, {
      ...current,
      status,
      closedAt: e.occurredAt,
      closedBy: by,
    });
  };
  switch (e.type) {
    case 'TransitionRequestCreated': {
      const d = e.data;
      const doc: TransitionRequestDoc = {
        requestId: d.requestId,
        modelId: d.modelId,
        name: d.name,
        version: d.version,
        versionKey: versionKeyOf(d.modelId, d.version),
        target: d.target,
        targetKey: targetKey(d.target),
        requester: d.requester,
        comment: d.comment,
        createdAt: e.occurredAt,
        expiresAt: d.expiresAt,
        approvalsRequired: d.approvalsRequired,
        rule: d.rule,
        approvals: [],
        status: 'open',
        closedAt: null,
        closedBy: null,
        correlationId: e.metadata.correlationId,
      };
      await w.put(TRANSITION_REQUESTS, d.requestId, doc);
      return;
    }
    case 'TransitionRequestApproved':
      if (current !== undefined)
        await w.put(TRANSITION_REQUESTS, data.requestId, {
          ...current,
          approvals: [
            ...current.approvals,
            { user: e.data.approver, comment: e.data.comment, at: e.occurredAt },
          ],
        });
      return;
    case 'TransitionRequestApplied':
      return close('applied', e.metadata.actor);
    case 'TransitionRequestRejected':
      return close('rejected', e.data.rejecter);
    case 'TransitionRequestDeleted':
      return close('deleted', e.data.deletedBy);
    case 'TransitionRequestExpired':
      return close('expired', null);
  }
}

async function applyComment(e: GovernanceEvent & RecordedEvent, w: ReadModelWriter): Promise<void> {
  switch (e.type) {
    case 'ModelVersionCommentCreated': {
      const d = e.data;
      const doc: VersionCommentDoc = {
        commentId: d.commentId,
        modelId: d.modelId,
        name: d.name,
        version: d.version,
        versionKey: versionKeyOf(d.modelId, d.version),
        author: d.author,
        comment: d.comment,
        createdAt: e.occurredAt,
        updatedAt: e.occurredAt,
      };
      await w.put(VERSION_COMMENTS, d.commentId, doc);
      return;
    }
    case 'ModelVersionCommentUpdated': {
      const c = await w.get<VersionCommentDoc>(VERSION_COMMENTS, e.data.commentId);
      if (c !== undefined)
        await w.put(VERSION_COMMENTS, e.data.commentId, {
          ...c,
          comment: e.data.comment,
          updatedAt: e.occurredAt,
        });
      return;
    }
    case 'ModelVersionCommentDeleted':
      await w.delete(VERSION_COMMENTS, e.data.commentId);
      return;
    default:
      return;
  }
}

/** Drops a hard-deleted model's requests and comments (its streams stay in the log). */
async function applyModelDeleted(e: RecordedEvent, w: ReadModelWriter): Promise<void> {
  if (e.type !== 'RegisteredModelDeleted') return;
  const { modelId } = e.data as { modelId: string };
  for (const id of await w.findIds(TRANSITION_REQUESTS, 'modelId', modelId))
    await w.delete(TRANSITION_REQUESTS, id);
  for (const id of await w.findIds(VERSION_COMMENTS, 'modelId', modelId))
    await w.delete(VERSION_COMMENTS, id);
}

/** Transition requests (open and closed) and version comments, for list and the expiry timer. */
export const governanceProjection: Projection = {
  name: 'registry-governance',
  version: 1,
  collections: [
    { name: TRANSITION_REQUESTS, indexes: ['versionKey', 'status', 'modelId'] },
    { name: VERSION_COMMENTS, indexes: ['versionKey', 'modelId'] },
  ],
  async apply(event: RecordedEvent, writer: ReadModelWriter): Promise<void> {
    if (isGovernanceEvent(event)) {
      await applyRequest(event, writer);
      await applyComment(event, writer);
    } else if (isRegistryEvent(event)) await applyModelDeleted(event, writer);
  },
};
