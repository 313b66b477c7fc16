import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  describeTarget,
  isGovernanceEvent,
  isRegistryEvent,
  type GovernanceEvent,
  type ModelVersionStage,
  type RegistryEvent,
} from '@ledgerflow/domain-registry';
import type { Projection, ReadModelWriter } from '@ledgerflow/projections';

/** One line of a model's timeline: who, what, when, why, approvals, correlation id. */
export interface TimelineEntryDoc {
  [key: string]: unknown;
  readonly position: number;
  readonly modelId: string;
  /** `<modelId>:<version>` for entries about one version, '' otherwise. */
  readonly versionKey: string;
  readonly name: string;
  readonly version: number | null;
  readonly timestamp: number;
  readonly actor: string;
  readonly action: string;
  readonly summary: string;
  readonly reason: string | null;
  readonly correlationId: string;
  readonly requestId: string | null;
  readonly approvals: readonly { user: string; comment: string; at: number }[];
  /** A stage or alias change (what replay reports). */
  readonly promotion: boolean;
}

/** A version's stage history: parallel arrays of instants and stages ('' once deleted). */
export interface VersionStagesDoc {
  [key: string]: unknown;
  readonly modelId: string;
  readonly version: number;
  readonly at: readonly number[];
  readonly stage: readonly string[];
}

/** An alias's history: instants and the version it pointed at (0: unset). */
export interface AliasHistoryDoc {
  [key: string]: unknown;
  readonly modelId: string;
  readonly alias: string;
  readonly at: readonly number[];
  readonly version: readonly number[];
}

/** A model's names over time ('' once deleted). */
export interface ModelNamesDoc {
  [key: string]: unknown;
  readonly modelId: string;
  readonly at: readonly number[];
  readonly name: readonly string[];
}

/** Approvals gathered by an open request, attached to the change its completion applies. */
interface RequestApprovalsDoc {
  [key: string]: unknown;
  readonly approvals: readonly { user: string; comment: string; at: number }[];
}

/**
 * Approvals of a request just applied. The registry change it causes is the next event of the
 * same append (position + 1, same correlation id); any other event discards it.
 */
interface PendingApprovalsDoc extends RequestApprovalsDoc {
  readonly position: number;
  readonly correlationId: string;
}
const PENDING = 'last-applied';

export const AUDIT_TIMELINE = 'audit_timeline';
export const AUDIT_VERSION_STAGES = 'audit_version_stages';
export const AUDIT_ALIASES = 'audit_aliases';
export const AUDIT_MODEL_NAMES = 'audit_model_names';
const AUDIT_REQUESTS = 'audit_requests';
/** The last applied request's approvals, waiting for the registry change it caused. */
const AUDIT_PENDING = 'audit_pending_approvals';

const pad = (n: number): string => String(n).padStart(15, '0');
export const timelineVersionKey = (modelId: string, version: number): string =>
  `${modelId}:${version}`;

function append<T>(xs: readonly T[], x: T): T[] {
  return [...xs, x];
}

async function pushStage(
  w: ReadModelWriter,
  modelId: string,
  version: number,
  at: number,
  stage: string,
): Promise<void> {
  const id = timelineVersionKey(modelId, version);
  const doc = (await w.get<VersionStagesDoc>(AUDIT_VERSION_STAGES, id)) ?? {
    modelId,
    version,
    at: [],
    stage: [],
  };
  await w.put(AUDIT_VERSION_STAGES, id, {
    ...doc,
    at: append(doc.at, at),
    stage: append(doc.stage, stage),
  });
}

async function pushAlias(
  w: ReadModelWriter,
  modelId: string,
  alias: string,
  at: number,
  version: number,
): Promise<void> {
  const id = `${modelId}:${alias}`;
  const doc = (await w.get<AliasHistoryDoc>(AUDIT_ALIASES, id)) ?? {
    modelId,
    alias,
    at: [],
    version: [],
  };
  await w.put(AUDIT_ALIASES, id, {
    ...doc,
    at: append(doc.at, at),
    version: append(doc.version, version),
  });
}

async function pushName(
  w: ReadModelWriter,
  modelId: string,
  at: number,
  name: string,
): Promise<void> {
  const doc = (await w.get<ModelNamesDoc>(AUDIT_MODEL_NAMES, modelId)) ?? {
    modelId,
    at: [],
    name: [],
  };
  await w.put(AUDIT_MODEL_NAMES, modelId, {
    ...doc,
    at: append(doc.at, at),
    name: append(doc.name, name),
  });
}

/** What a registry event says, in words, and whether it is a promotion (stage or alias change). */
function describeRegistry(e: RegistryEvent): {
  action: string;
  summary: string;
  promotion: boolean;
} {
  const d = e.data;
  switch (e.type) {
    case 'RegisteredModelCreated':
      return {
        action: 'create_model',
        summary: `created registered model '${d.name}'`,
        promotion: false,
      };
    case 'RegisteredModelRenamed':
      return {
        action: 'rename_model',
        summary: `renamed '${e.data.previousName}' to '${d.name}'`,
        promotion: false,
      };
    case 'RegisteredModelDescriptionUpdated':
      return { action: 'update_model', summary: 'updated the description', promotion: false };
    case 'RegisteredModelTagSet':
      return {
        action: 'set_tag',
        summary: `set tag ${e.data.key}=${e.data.value}`,
        promotion: false,
      };
    case 'RegisteredModelTagDeleted':
      return { action: 'delete_tag', summary: `deleted tag ${e.data.key}`, promotion: false };
    case 'RegisteredModelAliasSet':
      return {
        action: 'set_alias',
        summary:
          e.data.previousVersion === null
            ? `set alias @${e.data.alias} to version ${e.data.version}`
            : `moved alias @${e.data.alias} from version ${e.data.previousVersion} to ${e.data.version}`,
        promotion: true,
      };
    case 'RegisteredModelAliasDeleted':
      return {
        action: 'delete_alias',
        summary: `deleted alias @${e.data.alias} (was version ${e.data.version})`,
        promotion: true,
      };
    case 'RegisteredModelDeleted':
      return {
        action: 'delete_model',
        summary: `deleted registered model '${d.name}'`,
        promotion: false,
      };
    case 'ModelVersionCreated':
      return {
        action: 'create_version',
        summary: `created version ${e.data.version} from ${e.data.source}`,
        promotion: false,
      };
    case 'ModelVersionStageTransitioned': {
      const archived = e.data.archived.map((a) => `${a.version} (${a.fromStage})`);
      return {
        action: 'transition_stage',
        summary:
          `moved version ${e.data.version} from ${e.data.fromStage} to ${e.data.toStage}` +
          (archived.length > 0 ? `, archiving ${archived.join(', ')}` : ''),
        promotion: true,
      };
    }
    case 'ModelVersionDeleted':
      return {
        action: 'delete_version',
        summary:
          `deleted version ${e.data.version}` +
          (e.data.removedAliases.length > 0
            ? ` (removing ${e.data.removedAliases.map((a) => `@${a}`).join(', ')})`
            : ''),
        promotion: e.data.removedAliases.length > 0,
      };
    case 'ModelVersionDescriptionUpdated':
      return {
        action: 'update_version',
        summary: `updated version ${e.data.version}'s description`,
        promotion: false,
      };
    case 'ModelVersionTagSet':
      return {
        action: 'set_version_tag',
        summary: `set tag ${e.data.key}=${e.data.value} on version ${e.data.version}`,
        promotion: false,
      };
    case 'ModelVersionTagDeleted':
      return {
        action: 'delete_version_tag',
        summary: `deleted tag ${e.data.key} of version ${e.data.version}`,
        promotion: false,
      };
  }
}

function describeGovernance(e: GovernanceEvent): { action: string; summary: string } {
  switch (e.type) {
    case 'RegistryPolicySet':
      return {
        action: 'set_policy',
        summary: `set governance policy ${JSON.stringify(e.data.policy)}`,
      };
    case 'RegistryPolicyCleared':
      return {
        action: 'clear_policy',
        summary: 'cleared the governance policy (server default applies)',
      };
    case 'TransitionRequestCreated':
      return {
        action: 'request_transition',
        summary: `requested version ${e.data.version} → ${describeTarget(e.data.target)} (needs ${e.data.approvalsRequired} approval${e.data.approvalsRequired === 1 ? '' : 's'}, rule ${e.data.rule}; request ${e.data.requestId})`,
      };
    case 'TransitionRequestApproved':
      return {
        action: 'approve_request',
        summary: `approved version ${e.data.version} → ${describeTarget(e.data.target)} (${e.data.approvals} approval${e.data.approvals === 1 ? '' : 's'}; request ${e.data.requestId})`,
      };
    case 'TransitionRequestRejected':
      return {
        action: 'reject_request',
        summary: `rejected version ${e.data.version} → ${describeTarget(e.data.target)} (request ${e.data.requestId})`,
      };
    case 'TransitionRequestDeleted':
      return {
        action: 'delete_request',
        summary: `withdrew request for version ${e.data.version} → ${describeTarget(e.data.target)} (request ${e.data.requestId})`,
      };
    case 'TransitionRequestExpired':
      return {
        action: 'expire_request',
        summary: `request for version ${e.data.version} → ${describeTarget(e.data.target)} expired unapproved (request ${e.data.requestId})`,
      };
    case 'TransitionRequestApplied':
      return {
        action: 'apply_request',
        summary: `applied version ${e.data.version} → ${describeTarget(e.data.target)} approved by ${e.data.approvers.join(', ')} (request ${e.data.requestId})`,
      };
    case 'ModelVersionCommentCreated':
      return {
        action: 'comment',
        summary: `commented on version ${e.data.version}: ${e.data.comment}`,
      };
    case 'ModelVersionCommentUpdated':
      return {
        action: 'edit_comment',
        summary: `edited a comment on version ${e.data.version}: ${e.data.comment}`,
      };
    case 'ModelVersionCommentDeleted':
      return {
        action: 'delete_comment',
        summary: `deleted a comment on version ${e.data.version}`,
      };
    case 'RegistryChangeDenied': {
      const what = [
        e.data.action,
        e.data.version === undefined ? '' : `of version ${e.data.version}`,
        e.data.target === null ? '' : `→ ${describeTarget(e.data.target)}`,
      ]
        .filter((x) => x !== '')
        .join(' ');
      return {
        action: 'denied',
        summary: `was refused ${what} by rule ${e.data.rule}: ${e.data.message}`,
      };
    }
  }
}

async function indexRegistry(e: RegistryEvent & RecordedEvent, w: ReadModelWriter): Promise<void> {
  const at = e.occurredAt;
  const { modelId } = e.data;
  switch (e.type) {
    case 'RegisteredModelCreated':
    case 'RegisteredModelRenamed':
      return pushName(w, modelId, at, e.data.name);
    case 'RegisteredModelDeleted':
      return pushName(w, modelId, at, '');
    case 'ModelVersionCreated':
      return pushStage(w, modelId, e.data.version, at, 'None');
    case 'ModelVersionStageTransitioned':
      for (const a of e.data.archived) await pushStage(w, modelId, a.version, at, 'Archived');
      return pushStage(w, modelId, e.data.version, at, e.data.toStage);
    case 'ModelVersionDeleted':
      for (const a of e.data.removedAliases) await pushAlias(w, modelId, a, at, 0);
      return pushStage(w, modelId, e.data.version, at, '');
    case 'RegisteredModelAliasSet':
      return pushAlias(w, modelId, e.data.alias, at, e.data.version);
    case 'RegisteredModelAliasDeleted':
      return pushAlias(w, modelId, e.data.alias, at, 0);
    default:
      return;
  }
}

/**
 * The audit read models: every model's timeline (registry and governance events, one document per
 * event, approvals attached to the change they approved) and a per-version, per-alias and per-name
 * history index that answers "as of" by binary search instead of folding the log.
 */
export const auditProjection: Projection = {
  name: 'registry-audit',
  version: 2,
  collections: [
    { name: AUDIT_TIMELINE, indexes: ['modelId', 'versionKey'] },
    { name: AUDIT_VERSION_STAGES, indexes: ['modelId'], cached: true },
    { name: AUDIT_ALIASES, indexes: ['modelId'], cached: true },
    { name: AUDIT_MODEL_NAMES, cached: true },
    { name: AUDIT_REQUESTS },
    { name: AUDIT_PENDING },
  ],
  async apply(event: RecordedEvent, w: ReadModelWriter): Promise<void> {
    let entry: {
      modelId: string;
      versionKey: string;
      name: string;
      version: number | null;
      action: string;
      summary: string;
      requestId: string | null;
      approvals: readonly { user: string; comment: string; at: number }[];
      promotion: boolean;
    };
    if (isRegistryEvent(event)) {
      await indexRegistry(event, w);
      const d = event.data as { modelId: string; name: string; version?: number };
      const { action, summary, promotion } = describeRegistry(event);
      const last = await w.get<PendingApprovalsDoc>(AUDIT_PENDING, PENDING);
      if (last !== undefined) await w.delete(AUDIT_PENDING, PENDING);
      const pending =
        last !== undefined &&
        last.position + 1 === event.position &&
        last.correlationId === event.metadata.correlationId
          ? last
          : undefined;
      entry = {
        modelId: d.modelId,
        versionKey: d.version === undefined ? '' : timelineVersionKey(d.modelId, d.version),
        name: d.name,
        version: d.version ?? null,
        action,
        summary,
        requestId: null,
        approvals: promotion ? (pending?.approvals ?? []) : [],
        promotion,
      };
    } else if (isGovernanceEvent(event)) {
      const d = event.data as {
        modelId: string;
        name: string;
        version?: number;
        requestId?: string;
      };
      const { action, summary } = describeGovernance(event);
      let approvals: { user: string; comment: string; at: number }[] = [];
      if (d.requestId !== undefined) {
        const req = await w.get<RequestApprovalsDoc>(AUDIT_REQUESTS, d.requestId);
        approvals = [...(req?.approvals ?? [])];
        if (event.type === 'TransitionRequestApproved') {
          approvals.push({
            user: event.data.approver,
            comment: event.data.comment,
            at: event.occurredAt,
          });
          await w.put(AUDIT_REQUESTS, d.requestId, { approvals });
        } else if (event.type === 'TransitionRequestApplied') {
          const pending: PendingApprovalsDoc = {
            approvals,
            position: event.position,
            correlationId: event.metadata.correlationId,
          };
          await w.put(AUDIT_PENDING, PENDING, pending);
        }
        if (event.type !== 'TransitionRequestApproved' && event.type !== 'TransitionRequestCreated')
          await w.delete(AUDIT_REQUESTS, d.requestId);
      }
      entry = {
        modelId: d.modelId,
        versionKey: d.version === undefined ? '' : timelineVersionKey(d.modelId, d.version),
        name: d.name,
        version: d.version ?? null,
        action,
        summary,
        requestId: d.requestId ?? null,
        approvals: event.type === 'TransitionRequestApplied' ? approvals : [],
        promotion: false,
      };
    } else return;
    const doc: TimelineEntryDoc = {
      ...entry,
      position: event.position,
      timestamp: event.occurredAt,
      actor: event.metadata.actor,
      reason: event.metadata.reason ?? null,
      correlationId: event.metadata.correlationId,
    };
    await w.put(AUDIT_TIMELINE, pad(event.position), doc);
  },
};

/** Index of the last entry at or before `t` in ascending `at` (-1 when none). */
export function lastAtOrBefore(at: readonly number[], t: number): number {
  let lo = 0;
  let hi = at.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((at[mid] ?? Infinity) <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export type StageName = ModelVersionStage;
