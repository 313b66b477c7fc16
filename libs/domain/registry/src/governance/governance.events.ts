import type { DomainEvent } from '@ledgerflow/contracts';
import type { GovernancePolicy, GovernanceTarget } from './policy.js';

interface ModelRef {
  readonly modelId: string;
  /** The model's name when the event happened (timelines read without a lookup). */
  readonly name: string;
}
interface RequestRef extends ModelRef {
  readonly requestId: string;
  readonly version: number;
  readonly target: GovernanceTarget;
}

// ---- stream `registry-policy-<modelId>`: the model's own governance policy ----

export type RegistryPolicySet = DomainEvent<
  'RegistryPolicySet',
  ModelRef & { readonly policy: GovernancePolicy }
>;
/** The model falls back to the server default policy. */
export type RegistryPolicyCleared = DomainEvent<'RegistryPolicyCleared', ModelRef>;
export type RegistryPolicyEvent = RegistryPolicySet | RegistryPolicyCleared;

// ---- stream `transition-request-<modelId>-<version>-<stage:X|alias:Y>`: one request at a time ----

export type TransitionRequestCreated = DomainEvent<
  'TransitionRequestCreated',
  RequestRef & {
    readonly requester: string;
    readonly comment: string;
    /** Approvals needed, fixed when the request is made (from the policy then in force). */
    readonly approvalsRequired: number;
    /** The policy rule that required approval (`stages.Production`, `aliases.*`). */
    readonly rule: string;
    readonly expiresAt: number;
  }
>;
export type TransitionRequestApproved = DomainEvent<
  'TransitionRequestApproved',
  RequestRef & { readonly approver: string; readonly comment: string; readonly approvals: number }
>;
export type TransitionRequestRejected = DomainEvent<
  'TransitionRequestRejected',
  RequestRef & { readonly rejecter: string; readonly comment: string }
>;
/** Withdrawn by its requester (Databricks' delete-transition-request). */
export type TransitionRequestDeleted = DomainEvent<
  'TransitionRequestDeleted',
  RequestRef & { readonly deletedBy: string; readonly comment: string }
>;
export type TransitionRequestExpired = DomainEvent<
  'TransitionRequestExpired',
  RequestRef & { readonly expiresAt: number }
>;
/** Appended together with the approval that completes it and the registry change it causes. */
export type TransitionRequestApplied = DomainEvent<
  'TransitionRequestApplied',
  RequestRef & {
    readonly requester: string;
    readonly approvers: readonly string[];
    readonly archiveExistingVersions: boolean;
  }
>;
export type TransitionRequestEvent =
  | TransitionRequestCreated
  | TransitionRequestApproved
  | TransitionRequestRejected
  | TransitionRequestDeleted
  | TransitionRequestExpired
  | TransitionRequestApplied;

// ---- stream `model-version-comments-<modelId>-<version>` ----

export type ModelVersionCommentCreated = DomainEvent<
  'ModelVersionCommentCreated',
  ModelRef & {
    readonly version: number;
    readonly commentId: string;
    readonly author: string;
    readonly comment: string;
  }
>;
export type ModelVersionCommentUpdated = DomainEvent<
  'ModelVersionCommentUpdated',
  ModelRef & { readonly version: number; readonly commentId: string; readonly comment: string }
>;
export type ModelVersionCommentDeleted = DomainEvent<
  'ModelVersionCommentDeleted',
  ModelRef & { readonly version: number; readonly commentId: string }
>;
export type ModelVersionCommentEvent =
  ModelVersionCommentCreated | ModelVersionCommentUpdated | ModelVersionCommentDeleted;

// ---- stream `registry-denial-<modelId>`: changes a governance rule refused (the 403s) ----

/** What a refused caller tried to do (the timeline action of the change it would have been). */
export type DeniedAction =
  | 'transition_stage'
  | 'set_alias'
  | 'delete_alias'
  | 'delete_version'
  | 'delete_model'
  | 'request_transition'
  | 'approve_request'
  | 'reject_request';

/**
 * A change a governance policy refused, with the rule that refused it and the 403's message.
 * Nothing else is appended for a refusal: the registry and the requests stay as they were.
 */
export type RegistryChangeDenied = DomainEvent<
  'RegistryChangeDenied',
  ModelRef & {
    readonly action: DeniedAction;
    /** The version it was about, when the request named one. */
    readonly version?: number;
    readonly target: GovernanceTarget | null;
    /** The policy rule's path (`stages.Production.allowed`, `allow_self_approval`). */
    readonly rule: string;
    readonly message: string;
  }
>;

export type GovernanceEvent =
  RegistryPolicyEvent | TransitionRequestEvent | ModelVersionCommentEvent | RegistryChangeDenied;

export const GOVERNANCE_EVENT_TYPES: readonly GovernanceEvent['type'][] = [
  'RegistryPolicySet',
  'RegistryPolicyCleared',
  'TransitionRequestCreated',
  'TransitionRequestApproved',
  'TransitionRequestRejected',
  'TransitionRequestDeleted',
  'TransitionRequestExpired',
  'TransitionRequestApplied',
  'ModelVersionCommentCreated',
  'ModelVersionCommentUpdated',
  'ModelVersionCommentDeleted',
  'RegistryChangeDenied',
];

const GOVERNANCE_TYPE_SET: ReadonlySet<string> = new Set(GOVERNANCE_EVENT_TYPES);

/** Narrows any recorded event to a governance event. */
export function isGovernanceEvent<T extends { readonly type: string }>(
  e: T,
): e is T & GovernanceEvent {
  return GOVERNANCE_TYPE_SET.has(e.type);
}

/** Stream ids. */
export const registryPolicyStream = (modelId: string): string => `registry-policy-${modelId}`;
export const transitionRequestStream = (
  modelId: string,
  version: number,
  target: GovernanceTarget,
): string =>
  `transition-request-${modelId}-${version}-${target.kind === 'stage' ? `stage:${target.stage}` : `alias:${target.alias}`}`;
export const modelVersionCommentsStream = (modelId: string, version: number): string =>
  `model-version-comments-${modelId}-${version}`;
export const registryDenialStream = (modelId: string): string => `registry-denial-${modelId}`;
