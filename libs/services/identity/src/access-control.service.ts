import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { LEDGERFLOW_CONFIG, type LedgerflowConfig } from '@ledgerflow/config';
import {
  allows,
  effectivePermission,
  isPermission,
  type Capability,
  type Permission,
  type ResourceType,
} from '@ledgerflow/domain-identity';
import {
  RequestMessage,
  type AccessCapability,
  type AccessControl,
  type AuthResult,
  type Principal,
  type ReadScope,
  type ResourceRef,
  type RouteCall,
} from '@ledgerflow/http';
import {
  IDENTITY_ACCESS,
  TRACKING_LOOKUP,
  type IdentityAccess,
  type TrackingLookup,
  type UserGrants,
} from '@ledgerflow/service-calls';
import { ruleFor, type Rule, type Target } from './route-rules.js';

/** `007` names experiment `7` wherever an id is parsed as a number: check it as `7`. */
function canonicalExperimentId(id: string): string {
  return /^\d{1,19}$/.test(id) ? String(BigInt(id)) : id;
}

/** A resource a permission hangs on, or `unknown` (a run id that names no run). */
type Anchor = { type: ResourceType; id: string } | 'unknown' | 'none';

function messageOf(call: RouteCall): RequestMessage {
  if (call.method === 'GET') return new RequestMessage(call.query, true);
  const body = call.body;
  const raw =
    typeof body === 'object' && body !== null && !Array.isArray(body) && !Buffer.isBuffer(body)
      ? (body as Record<string, unknown>)
      : {};
  return new RequestMessage(raw, false);
}

/** Field values parsed exactly as the handlers parse them; undefined when absent or malformed. */
function field(read: () => string | undefined): string | undefined {
  try {
    const v = read();
    return v === '' ? undefined : v;
  } catch {
    return undefined;
  }
}

const PROXY_PATH =
  /^\/(?:ajax-)?api\/2\.0\/mlflow-artifacts\/(?:artifacts|mpu\/create|mpu\/complete|mpu\/abort)\/([^?]*)/;

/** Percent-decodes until stable (double encoding cannot hide the first segment). */
function decodeFully(s: string): string | undefined {
  let current = s;
  for (let i = 0; i < 5; i++) {
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      return undefined;
    }
    if (next === current) return current;
    current = next;
  }
  return undefined;
}

/** The experiment id an artifact proxy path belongs to: its first segment. */
function experimentOfArtifactPath(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  const decoded = decodeFully(path);
  if (decoded === undefined) return undefined;
  const first = decoded.replace(/^\/+/, '').split(/[/\\]/, 1)[0] ?? '';
  return /^\d{1,19}$/.test(first) ? first : undefined;
}

/**
 * The enforcement side of identity: authenticates credentials (Basic, Bearer API tokens) and
 * decides each call by the route's rule. Non-admins get the same answer for a resource that does
 * not exist as for one they may not see, so a 403 never tells them it exists.
 */
@Injectable()
export class AccessControlService implements AccessControl {
  private readonly logger = new Logger('auth');

  constructor(
    /** The identity module's answers: in process, or over gRPC from registry-governance. */
    @Inject(IDENTITY_ACCESS) private readonly identity: IdentityAccess,
    /** Resolves runs, logged models and experiment names (absent: those count as unknown). */
    @Optional() @Inject(TRACKING_LOOKUP) private readonly tracking: TrackingLookup | undefined,
    @Inject(LEDGERFLOW_CONFIG) private readonly config: LedgerflowConfig,
  ) {}

  get enabled(): boolean {
    return this.config.auth.mode !== 'off';
  }

  // ---------------------------------------------------------------------------------------------
  // Authentication

  authenticate(authorization: string | undefined, client: string): Promise<AuthResult> {
    return this.identity.authenticate(authorization, client);
  }

  // ---------------------------------------------------------------------------------------------
  // Authorization

  hasRule(method: string, route: string): boolean {
    return ruleFor(method, route) !== undefined;
  }

  rule(method: string, route: string): Rule | undefined {
    return ruleFor(method, route);
  }

  async authorize(principal: Principal, call: RouteCall): Promise<boolean> {
    const rule = ruleFor(call.method, call.route);
    if (rule === undefined) return false;
    if (principal.isAdmin) return true;
    switch (rule.kind) {
      case 'public':
      case 'authenticated':
        return true;
      case 'admin':
        return false;
      case 'self': {
        const named = field(() => messageOf(call).optionalString(rule.field));
        return named === undefined || named === principal.username;
      }
      case 'resource':
        if (!(await this.allowedOn(principal, rule.capability, rule.target, call))) return false;
        for (const extra of rule.also ?? [])
          if (!(await this.allowedOn(principal, extra.capability, extra.target, call)))
            return false;
        return true;
    }
  }

  private async allowedOn(
    principal: Principal,
    capability: Capability,
    target: Target,
    call: RouteCall,
  ): Promise<boolean> {
    const anchors = await this.anchorsOf(target, call);
    for (const anchor of anchors) {
      // a request without the identifying field is let through: its handler answers 400
      if (anchor === 'none') continue;
      if (anchor === 'unknown') return false;
      if (!(await this.permits(principal.username, anchor.type, anchor.id, capability)))
        return false;
    }
    return true;
  }

  private async anchorsOf(target: Target, call: RouteCall): Promise<Anchor[]> {
    const msg = messageOf(call);
    switch (target.type) {
      case 'experiment': {
        const id = field(() => msg.optionalId(target.field)) ?? target.dflt;
        return [id === undefined ? 'none' : { type: 'experiment', id: canonicalExperimentId(id) }];
      }
      case 'experiment_name': {
        const name = field(() => msg.optionalString(target.field));
        if (name === undefined) return ['none'];
        return [await this.experimentNameAnchor(name)];
      }
      case 'run': {
        let id: string | undefined;
        for (const f of target.fields) id ??= field(() => msg.optionalString(f));
        return [id === undefined ? 'none' : await this.runAnchor(id)];
      }
      case 'runs': {
        let ids: string[];
        try {
          ids = msg.stringList(target.field);
        } catch {
          return ['none'];
        }
        if (ids.length === 0) return ['none'];
        return Promise.all([...new Set(ids)].map((id) => this.runAnchor(id)));
      }
      case 'logged_model': {
        const raw = call.params[target.param];
        if (typeof raw !== 'string' || raw === '') return ['none'];
        const doc = await this.tracked((t) => t.loggedModel(raw));
        return [
          typeof doc?.experiment_id === 'string'
            ? { type: 'experiment', id: doc.experiment_id }
            : 'unknown',
        ];
      }
      case 'registered_model': {
        const name = field(() => msg.optionalString(target.field));
        if (name === undefined) return [target.absentMeansAll === true ? 'unknown' : 'none'];
        return [{ type: 'registered_model', id: name }];
      }
      case 'artifact_path': {
        const m = PROXY_PATH.exec(call.url);
        const path = m !== null ? m[1] : field(() => msg.optionalString('path'));
        const id = experimentOfArtifactPath(path);
        // the store's root (every experiment's folder) is for admins only
        return [
          id === undefined ? 'unknown' : { type: 'experiment', id: canonicalExperimentId(id) },
        ];
      }
      case 'model_source': {
        const anchors: Anchor[] = [];
        const runId = field(() => msg.optionalString('run_id'));
        if (runId !== undefined) anchors.push(await this.runAnchor(runId));
        const modelId = field(() => msg.optionalString('model_id'));
        if (modelId !== undefined) anchors.push(await this.loggedModelAnchor(modelId));
        const source = field(() => msg.optionalString('source')) ?? '';
        const run = /^runs:\/+([^/]+)/i.exec(source);
        if (run !== null) anchors.push(await this.runAnchor(run[1]!));
        const model = /^models:\/+(m-[^/]+)/i.exec(source);
        if (model !== null) anchors.push(await this.loggedModelAnchor(model[1]!));
        const proxied = /^mlflow-artifacts:(?:\/\/[^/]*)?\/*(.*)$/i.exec(source);
        if (proxied !== null) {
          const id = experimentOfArtifactPath(proxied[1]);
          anchors.push(
            id === undefined ? 'unknown' : { type: 'experiment', id: canonicalExperimentId(id) },
          );
        }
        return anchors.length === 0 ? ['none'] : anchors;
      }
      case 'resource_field': {
        const type = field(() => msg.optionalString('resource_type'));
        const id = field(() => msg.optionalId('resource_id'));
        if (type === undefined || id === undefined) return ['none'];
        if (type === 'experiment') return [{ type, id: canonicalExperimentId(id) }];
        if (type === 'registered_model') return [{ type, id }];
        return ['unknown'];
      }
    }
  }

  /**
   * The experiment of a run, logged model or experiment name, asked of the tracking service
   * (TrackingLookup: in process, or over gRPC when tracking runs elsewhere). When tracking cannot
   * answer, the resource counts as unknown, so non-admins are refused rather than let through.
   */
  private async tracked(
    ask: (tracking: TrackingLookup) => Promise<{ readonly experiment_id: string } | undefined>,
  ): Promise<{ experiment_id?: unknown } | undefined> {
    if (this.tracking === undefined) return undefined;
    try {
      return await ask(this.tracking);
    } catch (e) {
      this.logger.warn(
        `tracking lookup failed, access refused: ${e instanceof Error ? e.message : String(e)}`,
      );
      return undefined;
    }
  }

  /**
   * The experiment a name names. A name that names none is let through to its handler, which
   * answers RESOURCE_DOES_NOT_EXIST as MLflow's auth app does: `mlflow.set_experiment(name)` asks
   * get-by-name and creates the experiment on that answer (a 403 would stop every non-admin). It
   * tells no more than experiments/create does, which refuses a name that is taken. When tracking
   * cannot answer, the name counts as unknown: refused for non-admins.
   */
  private async experimentNameAnchor(name: string): Promise<Anchor> {
    const tracking = this.tracking;
    if (tracking === undefined) return 'unknown';
    let doc: { readonly experiment_id: string } | undefined;
    try {
      doc = await tracking.experimentByName(name);
    } catch (e) {
      this.logger.warn(
        `tracking lookup failed, access refused: ${e instanceof Error ? e.message : String(e)}`,
      );
      return 'unknown';
    }
    if (doc === undefined) return 'none';
    return typeof doc.experiment_id === 'string'
      ? { type: 'experiment', id: doc.experiment_id }
      : 'unknown';
  }

  private async loggedModelAnchor(modelId: string): Promise<Anchor> {
    const doc = await this.tracked((t) => t.loggedModel(modelId));
    return typeof doc?.experiment_id === 'string'
      ? { type: 'experiment', id: doc.experiment_id }
      : 'unknown';
  }

  private async runAnchor(runId: string): Promise<Anchor> {
    const doc = await this.tracked((t) => t.run(runId));
    return typeof doc?.experiment_id === 'string'
      ? { type: 'experiment', id: doc.experiment_id }
      : 'unknown';
  }

  async authorizeResource(
    principal: Principal,
    resource: ResourceRef,
    capability: AccessCapability,
  ): Promise<boolean> {
    if (!this.enabled || principal.isAdmin) return true;
    let anchor: Anchor;
    if (resource.type === 'run') anchor = await this.runAnchor(resource.id);
    else if (resource.type === 'logged_model') {
      const doc = await this.tracked((t) => t.loggedModel(resource.id));
      anchor =
        typeof doc?.experiment_id === 'string'
          ? { type: 'experiment', id: doc.experiment_id }
          : 'unknown';
    } else if (resource.type === 'experiment')
      anchor = { type: 'experiment', id: canonicalExperimentId(resource.id) };
    else anchor = { type: resource.type, id: resource.id };
    if (anchor === 'unknown' || anchor === 'none') return false;
    return this.permits(principal.username, anchor.type, anchor.id, capability);
  }

  /**
   * Whether the user's permission on the resource allows the capability. A cached answer is only
   * trusted when it allows: a denial is asked again, so a grant made a moment ago counts.
   */
  private async permits(
    username: string,
    type: ResourceType,
    id: string,
    capability: Capability,
  ): Promise<boolean> {
    const permission = await this.identity.permissionOf(username, type, id);
    if (isPermission(permission) && allows(permission, capability)) return true;
    const fresh = await this.identity.permissionOf(username, type, id, { fresh: true });
    return isPermission(fresh) && allows(fresh, capability);
  }

  async afterSuccess(principal: Principal, call: RouteCall, responseBody: unknown): Promise<void> {
    const rule = ruleFor(call.method, call.route);
    const after = rule !== undefined && 'after' in rule ? rule.after : undefined;
    if (after === undefined) return;
    const meta = { actor: principal.username, correlationId: randomUUID(), causationId: null };
    const text = Buffer.isBuffer(responseBody) ? responseBody.toString('utf8') : responseBody;
    if (typeof text !== 'string') return;
    const body = JSON.parse(text) as Record<string, unknown>;
    if (after.kind === 'grant_creator') {
      const id =
        after.resource === 'experiment'
          ? body['experiment_id']
          : (body['registered_model'] as { name?: unknown } | undefined)?.name;
      if (typeof id === 'string')
        await this.identity.grantCreator(principal.username, after.resource, id, meta);
      return;
    }
    const msg = messageOf(call);
    const from = field(() => msg.optionalString('name'));
    const to = field(() => msg.optionalString('new_name'));
    if (from !== undefined && to !== undefined && from !== to)
      await this.identity.moveGrants('registered_model', from, to, meta);
  }

  readScope(principal: Principal): ReadScope {
    if (principal.isAdmin || !this.enabled)
      return { experiments: async () => () => true, registeredModels: async () => () => true };
    return {
      experiments: async () =>
        readable(await this.identity.userGrants(principal.username, 'experiment')),
      registeredModels: async () =>
        readable(await this.identity.userGrants(principal.username, 'registered_model')),
    };
  }
}

/** A predicate over resource ids: may the user read it (own grant, else groups, else default)? */
function readable(grants: UserGrants): (id: string) => boolean {
  // an unknown level (a newer identity service) counts as no permission: fail closed
  const known = (p: string): Permission => (isPermission(p) ? p : 'NO_PERMISSIONS');
  const own = new Map<string, Permission>();
  for (const g of grants.own) own.set(g.resourceId, known(g.permission));
  const viaGroups = new Map<string, Permission[]>();
  for (const g of grants.viaGroups) {
    const list = viaGroups.get(g.resourceId) ?? [];
    list.push(known(g.permission));
    viaGroups.set(g.resourceId, list);
  }
  const fallback = known(grants.defaultPermission);
  return (id) =>
    allows(effectivePermission(own.get(id), viaGroups.get(id) ?? [], fallback), 'read');
}
