import { invalidParameter, MlflowError } from '@ledgerflow/contracts';
import { MODEL_VERSION_STAGES, type ModelVersionStage } from '../registry.events.js';

/**
 * Who may set one stage or alias, and whether it needs approval. Principals are user names,
 * `group:<name>` for every member of a group, or `*` for anyone.
 */
export interface TargetRule {
  /** Who may set it directly or request it; absent: anyone. */
  readonly allowed?: readonly string[];
  /** Approvals needed before a change applies; 0 or absent: direct changes are allowed. */
  readonly approvals?: number;
  /** Who may approve or reject requests for it; absent: the `allowed` list (or anyone). */
  readonly approvers?: readonly string[];
}

/** A registered model's governance policy (or the server default), as stored and served. */
export interface GovernancePolicy {
  readonly stages?: Partial<Readonly<Record<ModelVersionStage, TargetRule>>>;
  /** Per alias name; `*` is the rule of every alias not listed. */
  readonly aliases?: Readonly<Record<string, TargetRule>>;
  /** May a requester approve their own request (default false). */
  readonly allow_self_approval?: boolean;
  /** How long a transition request stays open before it expires (default 7 days). */
  readonly request_ttl_seconds?: number;
}

export const DEFAULT_REQUEST_TTL_SECONDS = 7 * 24 * 3600;
const MAX_APPROVALS = 100;
const PRINCIPAL = /^(\*|group:[\w.@+-]{1,128}|[\w.@+-]{1,128})$/;

/** What a change targets: a stage or an alias of one version. */
export type GovernanceTarget =
  | { readonly kind: 'stage'; readonly stage: ModelVersionStage }
  | { readonly kind: 'alias'; readonly alias: string };

/** `stage:Production` or `alias:champion`: a target as one token (stream ids, messages). */
export function targetKey(t: GovernanceTarget): string {
  return t.kind === 'stage' ? `stage:${t.stage}` : `alias:${t.alias}`;
}

/** How a target reads in messages: `stage Production`, `alias @champion`. */
export function describeTarget(t: GovernanceTarget): string {
  return t.kind === 'stage' ? `stage ${t.stage}` : `alias @${t.alias}`;
}

/** The policy that governs a model: its own, or the server default. */
export interface EffectivePolicy {
  readonly policy: GovernancePolicy;
  /** `model policy` or `server default policy`, for denial messages. */
  readonly source: string;
  readonly modelName: string;
}

/** Who is acting: user name, groups, and whether identity marks them admin. */
export interface Principal {
  readonly user: string;
  readonly groups: readonly string[];
  readonly admin: boolean;
}

/** The rule that governs a target, and its path in the policy (`stages.Production`, `aliases.*`). */
export function ruleFor(
  policy: GovernancePolicy,
  target: GovernanceTarget,
): { readonly rule: TargetRule; readonly path: string } | undefined {
  if (target.kind === 'stage') {
    const rule = policy.stages?.[target.stage];
    return rule === undefined ? undefined : { rule, path: `stages.${target.stage}` };
  }
  const own = policy.aliases?.[target.alias];
  if (own !== undefined) return { rule: own, path: `aliases.${target.alias}` };
  const any = policy.aliases?.['*'];
  return any === undefined ? undefined : { rule: any, path: 'aliases.*' };
}

/** Whether a principal is named by a list of user names, `group:<g>` entries or `*`. */
export function principalMatches(list: readonly string[], who: Principal): boolean {
  return list.some(
    (entry) =>
      entry === '*' ||
      entry === who.user ||
      (entry.startsWith('group:') && who.groups.includes(entry.slice('group:'.length))),
  );
}

/** The groups a rule names (so a caller resolves only those memberships). */
export function groupsNamedBy(policy: GovernancePolicy): string[] {
  const out = new Set<string>();
  const rules = [...Object.values(policy.stages ?? {}), ...Object.values(policy.aliases ?? {})];
  for (const rule of rules)
    for (const entry of [...(rule?.allowed ?? []), ...(rule?.approvers ?? [])])
      if (entry.startsWith('group:')) out.add(entry.slice('group:'.length));
  return [...out].sort();
}

/** A refusal by a governance policy rule (403 PERMISSION_DENIED); `rule` is its path. */
export class PolicyDenied extends MlflowError {
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super('PERMISSION_DENIED', message);
  }
}

function denied(p: EffectivePolicy, path: string, detail: string): PolicyDenied {
  return new PolicyDenied(
    path,
    `Denied by rule ${path} of the ${p.source} of registered model '${p.modelName}': ${detail}`,
  );
}

const list = (xs: readonly string[]): string => xs.join(', ');

/** The approvals a target needs under a policy (0: none). */
export function approvalsRequired(policy: GovernancePolicy, target: GovernanceTarget): number {
  return ruleFor(policy, target)?.rule.approvals ?? 0;
}

/** Refuses a principal the `allowed` list does not name (admins pass). */
function checkAllowed(p: EffectivePolicy, target: GovernanceTarget, who: Principal): void {
  const found = ruleFor(p.policy, target);
  const allowed = found?.rule.allowed;
  if (found === undefined || allowed === undefined || who.admin) return;
  if (!principalMatches(allowed, who))
    throw denied(
      p,
      `${found.path}.allowed`,
      `user '${who.user}' may not set ${describeTarget(target)} (allowed: ${list(allowed) || 'nobody'}).`,
    );
}

/**
 * A direct change (transition-stage, alias set or delete): refused when the principal is not
 * allowed, or when the target needs approvals (then only a transition request can change it).
 */
export function authorizeDirectChange(
  p: EffectivePolicy,
  target: GovernanceTarget,
  who: Principal,
): void {
  checkAllowed(p, target, who);
  const found = ruleFor(p.policy, target);
  const needed = found?.rule.approvals ?? 0;
  if (found !== undefined && needed > 0)
    throw denied(
      p,
      `${found.path}.approvals`,
      `${describeTarget(target)} needs ${needed} approval${needed === 1 ? '' : 's'}; ` +
        'request it with POST /api/2.0/mlflow/transition-requests/create.',
    );
}

/** Opening a transition request: the principal must be allowed to set the target. */
export function authorizeRequest(
  p: EffectivePolicy,
  target: GovernanceTarget,
  who: Principal,
): void {
  checkAllowed(p, target, who);
}

/** Approving or rejecting: the rule's approvers (else its allowed list, else anyone); admins pass. */
export function authorizeApprover(
  p: EffectivePolicy,
  target: GovernanceTarget,
  who: Principal,
): void {
  const found = ruleFor(p.policy, target);
  if (found === undefined || who.admin) return;
  const approvers = found.rule.approvers ?? found.rule.allowed;
  if (approvers === undefined) return;
  const key = found.rule.approvers !== undefined ? 'approvers' : 'allowed';
  if (!principalMatches(approvers, who))
    throw denied(
      p,
      `${found.path}.${key}`,
      `user '${who.user}' may not approve or reject requests for ${describeTarget(target)} (${key}: ${list(approvers) || 'nobody'}).`,
    );
}

/** Refuses self-approval unless the policy allows it (admins included: four eyes means four). */
export function authorizeSelfApproval(p: EffectivePolicy, requester: string, who: Principal): void {
  if (requester === who.user && p.policy.allow_self_approval !== true)
    throw denied(
      p,
      'allow_self_approval',
      `user '${who.user}' requested this transition and may not approve it.`,
    );
}

/** How long a request made under this policy stays open, in milliseconds. */
export function requestTtlMs(policy: GovernancePolicy): number {
  return (policy.request_ttl_seconds ?? DEFAULT_REQUEST_TTL_SECONDS) * 1000;
}

function parsePrincipals(v: unknown, path: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !PRINCIPAL.test(x)))
    throw invalidParameter(
      `Policy field '${path}' must be a list of user names, 'group:<name>' or '*'.`,
    );
  return v as string[];
}

function parseRule(v: unknown, path: string): TargetRule {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw invalidParameter(`Policy field '${path}' must be an object.`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!['allowed', 'approvals', 'approvers'].includes(k))
      throw invalidParameter(
        `Unknown policy field '${path}.${k}' (expected allowed, approvals, approvers).`,
      );
  const rule: { allowed?: string[]; approvals?: number; approvers?: string[] } = {};
  if (o['allowed'] !== undefined) rule.allowed = parsePrincipals(o['allowed'], `${path}.allowed`);
  if (o['approvers'] !== undefined)
    rule.approvers = parsePrincipals(o['approvers'], `${path}.approvers`);
  if (o['approvals'] !== undefined) {
    const n = o['approvals'];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_APPROVALS)
      throw invalidParameter(
        `Policy field '${path}.approvals' must be an integer from 0 to ${MAX_APPROVALS}.`,
      );
    rule.approvals = n;
  }
  return rule;
}

/** Parses untrusted JSON into a policy, or throws INVALID_PARAMETER_VALUE naming the field. */
export function parseGovernancePolicy(v: unknown): GovernancePolicy {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw invalidParameter("Policy must be a JSON object with 'stages' and/or 'aliases'.");
  const o = v as Record<string, unknown>;
  const known = ['stages', 'aliases', 'allow_self_approval', 'request_ttl_seconds'];
  for (const k of Object.keys(o))
    if (!known.includes(k))
      throw invalidParameter(`Unknown policy field '${k}' (expected ${known.join(', ')}).`);
  const out: {
    stages?: Partial<Record<ModelVersionStage, TargetRule>>;
    aliases?: Record<string, TargetRule>;
    allow_self_approval?: boolean;
    request_ttl_seconds?: number;
  } = {};
  if (o['stages'] !== undefined) {
    const s = o['stages'];
    if (typeof s !== 'object' || s === null || Array.isArray(s))
      throw invalidParameter("Policy field 'stages' must be an object keyed by stage.");
    const stages: Partial<Record<ModelVersionStage, TargetRule>> = {};
    for (const [k, r] of Object.entries(s)) {
      const stage = MODEL_VERSION_STAGES.find((x) => x.toLowerCase() === k.toLowerCase());
      if (stage === undefined)
        throw invalidParameter(
          `Invalid stage '${k}' in policy field 'stages'. Value must be one of ${MODEL_VERSION_STAGES.join(', ')}.`,
        );
      stages[stage] = parseRule(r, `stages.${stage}`);
    }
    out.stages = stages;
  }
  if (o['aliases'] !== undefined) {
    const a = o['aliases'];
    if (typeof a !== 'object' || a === null || Array.isArray(a))
      throw invalidParameter("Policy field 'aliases' must be an object keyed by alias name.");
    const aliases: Record<string, TargetRule> = {};
    for (const [k, r] of Object.entries(a)) {
      if (k !== '*' && !/^[\w-]{1,255}$/.test(k))
        throw invalidParameter(`Invalid alias name '${k}' in policy field 'aliases'.`);
      aliases[k] = parseRule(r, `aliases.${k}`);
    }
    out.aliases = aliases;
  }
  if (o['allow_self_approval'] !== undefined) {
    if (typeof o['allow_self_approval'] !== 'boolean')
      throw invalidParameter("Policy field 'allow_self_approval' must be true or false.");
    out.allow_self_approval = o['allow_self_approval'];
  }
  if (o['request_ttl_seconds'] !== undefined) {
    const t = o['request_ttl_seconds'];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 366 * 24 * 3600)
      throw invalidParameter(
        "Policy field 'request_ttl_seconds' must be an integer from 1 to 31622400 (366 days).",
      );
    out.request_ttl_seconds = t;
  }
  return out;
}
