import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import {
  invalidParameter,
  MlflowError,
  notFound,
  type Clock,
  type DomainEvent,
  type EventMetadata,
} from '@ledgerflow/contracts';
import {
  AGGREGATE_STORE,
  EVENT_STORE,
  type AggregateCommand,
  type AggregateStore,
  type EventStore,
} from '@ledgerflow/event-store';
import { groupDecider, groupStream, userDecider, userStream } from '@ledgerflow/domain-identity';
import {
  authorizeApprover,
  authorizeDirectChange,
  authorizeRequest,
  authorizeSelfApproval,
  describeTarget,
  groupsNamedBy,
  modelVersionCommentsDecider,
  modelVersionCommentsStream,
  PolicyDenied,
  registeredModelDecider,
  registeredModelNameStream,
  registeredModelStream,
  registryDenialDecider,
  registryDenialStream,
  registryPolicyDecider,
  registryPolicyStream,
  requestTtlMs,
  ruleFor,
  transitionRequestDecider,
  transitionRequestStream,
  type DeniedAction,
  type EffectivePolicy,
  type GovernancePolicy,
  type GovernanceTarget,
  type Principal,
  type RegisteredModelCommand,
  type RegisteredModelState,
  type TransitionRequestCommand,
  type TransitionRequestState,
} from '@ledgerflow/domain-registry';
import type { ReadModelReader } from '@ledgerflow/projections';
import { CLOCK, EVENT_IDS, PROJECTION_RUNNER, READ_MODEL_READER } from '@ledgerflow/runtime';
import type { ProjectionRunner } from '@ledgerflow/projections';
import {
  TRANSITION_REQUESTS,
  VERSION_COMMENTS,
  versionKeyOf,
  type TransitionRequestDoc,
  type VersionCommentDoc,
} from './governance.projection.js';

/** The server default policy (LEDGERFLOW_REGISTRY_POLICY), parsed at boot. */
export const GOVERNANCE_DEFAULT_POLICY = Symbol.for('ledgerflow.GovernanceDefaultPolicy');
/** How often the timer expires overdue transition requests (ms). */
export const GOVERNANCE_EXPIRY_INTERVAL = Symbol.for('ledgerflow.GovernanceExpiryInterval');

/** A model resolved by name: its id and aggregate state. */
export interface ResolvedModel {
  readonly modelId: string;
  readonly state: RegisteredModelState;
}

/**
 * Governance of the registry: policies per registered model (or the server default), the gate on
 * direct stage and alias changes, transition requests (request → approve/reject → applied or
 * expired) and comments on versions. Every change is an event carrying the actor and the comment.
 */
@Injectable()
export class GovernanceService implements OnModuleInit, OnModuleDestroy {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    @Inject(AGGREGATE_STORE) private readonly aggregates: AggregateStore,
    @Inject(EVENT_STORE) private readonly events: EventStore,
    @Inject(READ_MODEL_READER) private readonly reader: ReadModelReader,
    @Inject(PROJECTION_RUNNER) private readonly projections: ProjectionRunner,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(EVENT_IDS) private readonly ids: { next(): string },
    @Inject(GOVERNANCE_DEFAULT_POLICY) private readonly defaultPolicy: GovernancePolicy,
    @Inject(GOVERNANCE_EXPIRY_INTERVAL) private readonly expiryIntervalMs: number,
  ) {}

  onModuleInit(): void {
    if (this.expiryIntervalMs <= 0) return;
    this.timer = setInterval(() => {
      void this.expireDue().catch(() => undefined);
    }, this.expiryIntervalMs);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  // ------------------------------------------------------------ lookups

  /** The live model with this name, or RESOURCE_DOES_NOT_EXIST. */
  async model(name: string): Promise<ResolvedModel> {
    const claims = await this.events.readStream(registeredModelNameStream(name));
    let modelId: string | undefined;
    for (const e of claims) {
      const d = e.data as { modelId: string };
      modelId = e.type === 'RegisteredModelNameClaimed' ? d.modelId : undefined;
    }
    if (modelId === undefined) throw notFound(`Registered Model with name=${name} not found`);
    const { state } = await this.aggregates.load(
      registeredModelStream(modelId),
      registeredModelDecider,
    );
    if (!state.exists || state.deleted)
      throw notFound(`Registered Model with name=${name} not found`);
    return { modelId, state };
  }

  private requireVersion(m: ResolvedModel, version: number): void {
    const v = m.state.versions.get(version);
    if (v === undefined || v.deleted)
      throw notFound(`Model Version (name=${m.state.name}, version=${version}) not found`);
  }

  /** The model's own policy, else the server default. */
  async effectivePolicy(m: ResolvedModel): Promise<EffectivePolicy> {
    const { state } = await this.aggregates.load(
      registryPolicyStream(m.modelId),
      registryPolicyDecider,
    );
    return state.policy === null
      ? { policy: this.defaultPolicy, source: 'server default policy', modelName: m.state.name }
      : { policy: state.policy, source: 'model policy', modelName: m.state.name };
  }

  /** The caller as policies see them: admin flag and the groups the policy names. */
  async principal(user: string, policy: GovernancePolicy): Promise<Principal> {
    const { state } = await this.aggregates.load(userStream(user), userDecider);
    const groups: string[] = [];
    for (const g of groupsNamedBy(policy)) {
      const group = await this.aggregates.load(groupStream(g), groupDecider);
      if (group.state.exists && group.state.members.includes(user)) groups.push(g);
    }
    return { user, groups, admin: state.exists && state.isAdmin };
  }

  // ------------------------------------------------------------ the gate

  /**
   * Runs a policy check (or a write that makes one); a refusal by a policy rule is recorded as a
   * `RegistryChangeDenied` event (actor, rule, what was tried, the request's comment and
   * correlation id) before the 403 goes back. Nothing else is appended for it.
   */
  private async guarded<T>(
    m: ResolvedModel,
    denial: { action: DeniedAction; version: number | undefined; target: GovernanceTarget | null },
    meta: EventMetadata,
    fn: () => Promise<T> | T,
  ): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof PolicyDenied)) throw err;
      const result = await this.aggregates.execute(
        {
          stream: registryDenialStream(m.modelId),
          decider: registryDenialDecider,
          command: {
            type: 'RecordRegistryDenial',
            denial: {
              modelId: m.modelId,
              name: m.state.name,
              action: denial.action,
              ...(denial.version === undefined ? {} : { version: denial.version }),
              target: denial.target,
              rule: err.rule,
              message: err.message,
            },
          },
        },
        meta,
      );
      await this.projections.readYourWrites(result.lastPosition);
      throw err;
    }
  }

  /**
   * Called before a direct transition-stage, alias set or alias delete: refuses with
   * PERMISSION_DENIED naming the policy rule when the caller may not, or when approvals are needed
   * (and records the refusal).
   */
  async authorizeDirect(
    name: string,
    target: GovernanceTarget,
    attempt: { action: 'transition_stage' | 'set_alias' | 'delete_alias'; version?: number },
    meta: EventMetadata,
  ): Promise<void> {
    const m = await this.model(name);
    const p = await this.effectivePolicy(m);
    if (ruleFor(p.policy, target) === undefined) return;
    // an alias delete names no version: record the one the alias pointed at
    const version =
      attempt.version ?? (target.kind === 'alias' ? m.state.aliases.get(target.alias) : undefined);
    await this.guarded(m, { action: attempt.action, version, target }, meta, async () =>
      authorizeDirectChange(p, target, await this.principal(meta.actor, p.policy)),
    );
  }

  /**
   * Deleting a version removes the aliases that point at it: each is an alias change the policy
   * must allow directly, or a protected alias could be dropped without its approvals.
   */
  async authorizeVersionDelete(name: string, version: number, meta: EventMetadata): Promise<void> {
    const m = await this.model(name);
    await this.guarded(m, { action: 'delete_version', version, target: null }, meta, () =>
      this.authorizeAliasRemoval(m, version, meta.actor),
    );
  }

  /**
   * Deleting a registered model drops all its aliases: each protected one must be changeable
   * directly by the caller (so a model holding an approved @champion cannot vanish unapproved).
   */
  async authorizeModelDelete(name: string, meta: EventMetadata): Promise<void> {
    const m = await this.model(name);
    await this.guarded(m, { action: 'delete_model', version: undefined, target: null }, meta, () =>
      this.authorizeAliasRemoval(m, undefined, meta.actor),
    );
  }

  private async authorizeAliasRemoval(
    m: ResolvedModel,
    version: number | undefined,
    actor: string,
  ): Promise<void> {
    const aliases = [...m.state.aliases]
      .filter(([, v]) => version === undefined || v === version)
      .map(([a]) => a);
    if (aliases.length === 0) return;
    const p = await this.effectivePolicy(m);
    const who = await this.principal(actor, p.policy);
    for (const alias of aliases.sort()) {
      if (ruleFor(p.policy, { kind: 'alias', alias }) === undefined) continue;
      authorizeDirectChange(p, { kind: 'alias', alias }, who);
    }
  }

  // ------------------------------------------------------------ policies

  async setPolicy(
    name: string,
    policy: GovernancePolicy | null,
    meta: EventMetadata,
  ): Promise<void> {
    const m = await this.model(name);
    await this.requireManager(m, meta.actor);
    const result = await this.aggregates.execute(
      {
        stream: registryPolicyStream(m.modelId),
        decider: registryPolicyDecider,
        command:
          policy === null
            ? { type: 'ClearRegistryPolicy', modelId: m.modelId, name: m.state.name }
            : { type: 'SetRegistryPolicy', modelId: m.modelId, name: m.state.name, policy },
      },
      meta,
    );
    await this.projections.readYourWrites(result.lastPosition);
  }

  /** Policies can be changed by admins when identity knows the caller; by anyone with auth off. */
  private async requireManager(m: ResolvedModel, actor: string): Promise<void> {
    if (actor === 'anonymous') return;
    const { state } = await this.aggregates.load(userStream(actor), userDecider);
    if (!state.exists) return; // no identity record: auth is off or the principal is external
    if (!state.isAdmin)
      throw new MlflowError(
        'PERMISSION_DENIED',
        `Only an admin may change the governance policy of registered model '${m.state.name}'.`,
      );
  }

  async getPolicy(name: string): Promise<EffectivePolicy> {
    return this.effectivePolicy(await this.model(name));
  }

  // ------------------------------------------------------------ transition requests

  private async expireIfDue(stream: string, meta: EventMetadata): Promise<number | undefined> {
    const r = await this.aggregates.execute(
      { stream, decider: transitionRequestDecider, command: { type: 'ExpireTransitionRequest' } },
      { ...meta, actor: 'system', reason: 'transition request expired' },
    );
    return r.events.length > 0 ? r.lastPosition : undefined;
  }

  async createRequest(
    name: string,
    version: number,
    target: GovernanceTarget,
    comment: string,
    meta: EventMetadata,
  ): Promise<TransitionRequestDoc> {
    const m = await this.model(name);
    this.requireVersion(m, version);
    const p = await this.effectivePolicy(m);
    const found = ruleFor(p.policy, target);
    const needed = found?.rule.approvals ?? 0;
    if (found === undefined || needed < 1)
      throw invalidParameter(
        `${describeTarget(target)} of registered model '${m.state.name}' needs no approval under its ${p.source}; change it directly.`,
      );
    const who = await this.principal(meta.actor, p.policy);
    await this.guarded(m, { action: 'request_transition', version, target }, meta, () =>
      authorizeRequest(p, target, who),
    );
    const requestId = this.ids.next().replaceAll('-', '');
    const result = await this.aggregates.execute(
      {
        stream: transitionRequestStream(m.modelId, version, target),
        decider: transitionRequestDecider,
        command: {
          type: 'CreateTransitionRequest',
          requestId,
          modelId: m.modelId,
          name: m.state.name,
          version,
          target,
          requester: meta.actor,
          comment,
          approvalsRequired: needed,
          rule: found.path,
          ttlMs: requestTtlMs(p.policy),
        },
      },
      meta,
    );
    await this.projections.readYourWrites(result.lastPosition);
    const doc = await this.reader.get<TransitionRequestDoc>(TRANSITION_REQUESTS, requestId);
    if (doc === undefined) throw new Error(`transition request ${requestId} missing after create`);
    return doc;
  }

  /**
   * Approves the open request; the approval that reaches the threshold appends, in the same atomic
   * write, the request's Applied event and the registry change itself.
   */
  async approve(
    name: string,
    version: number,
    target: GovernanceTarget,
    comment: string,
    archiveExistingVersions: boolean,
    meta: EventMetadata,
  ): Promise<{ request: TransitionRequestDoc; applied: boolean }> {
    const m = await this.model(name);
    const p = await this.effectivePolicy(m);
    const stream = transitionRequestStream(m.modelId, version, target);
    const expired = await this.expireIfDue(stream, meta);
    if (expired !== undefined) await this.projections.readYourWrites(expired);
    const who = await this.principal(meta.actor, p.policy);
    const denial = { action: 'approve_request' as const, version, target };
    await this.guarded(m, denial, meta, () => authorizeApprover(p, target, who));
    let completes = false;
    let requestId = '';
    const requestCmd: AggregateCommand<TransitionRequestCommand, unknown, DomainEvent> = {
      stream,
      decider: {
        ...transitionRequestDecider,
        // runs under the stream's lock on its current state: the self-approval check and the
        // approval see the same request
        decide: (c, s, ctx) => {
          const open = (s as TransitionRequestState).open;
          if (open !== null) {
            authorizeSelfApproval(p, open.requester, who);
            requestId = open.requestId;
          }
          const events = transitionRequestDecider.decide(c, s as never, ctx);
          completes = events.some((e) => e.type === 'TransitionRequestApplied');
          return events;
        },
        evolve: (s, e, place) => transitionRequestDecider.evolve(s as never, e as never, place),
        initialState: () => transitionRequestDecider.initialState(),
      },
      command: {
        type: 'ApproveTransitionRequest',
        approver: meta.actor,
        comment,
        archiveExistingVersions,
      },
    };
    const change: RegisteredModelCommand =
      target.kind === 'stage'
        ? {
            type: 'TransitionModelVersionStage',
            version,
            stage: target.stage,
            archiveExistingVersions,
          }
        : { type: 'SetRegisteredModelAlias', alias: target.alias, version };
    const modelCmd: AggregateCommand<RegisteredModelCommand, unknown, DomainEvent> = {
      stream: registeredModelStream(m.modelId),
      decider: {
        ...registeredModelDecider,
        decide: (c, s, ctx) => (completes ? registeredModelDecider.decide(c, s as never, ctx) : []),
        evolve: (s, e, place) => registeredModelDecider.evolve(s as never, e as never, place),
        initialState: () => registeredModelDecider.initialState(),
      },
      command: change,
    };
    // self-approval is checked under the request stream's lock; its refusal is recorded too
    const result = await this.guarded(m, denial, meta, () =>
      this.aggregates.executeAll(
        [requestCmd, modelCmd] as AggregateCommand<unknown, unknown, DomainEvent>[],
        meta,
      ),
    );
    await this.projections.readYourWrites(result.lastPosition);
    const doc = await this.reader.get<TransitionRequestDoc>(TRANSITION_REQUESTS, requestId);
    if (doc === undefined) throw new Error(`transition request ${requestId} missing after approve`);
    return { request: doc, applied: doc.status === 'applied' };
  }

  async reject(
    name: string,
    version: number,
    target: GovernanceTarget,
    comment: string,
    meta: EventMetadata,
  ): Promise<TransitionRequestDoc> {
    const m = await this.model(name);
    const p = await this.effectivePolicy(m);
    const stream = transitionRequestStream(m.modelId, version, target);
    const expired = await this.expireIfDue(stream, meta);
    if (expired !== undefined) await this.projections.readYourWrites(expired);
    const who = await this.principal(meta.actor, p.policy);
    await this.guarded(m, { action: 'reject_request', version, target }, meta, () =>
      authorizeApprover(p, target, who),
    );
    return this.closeRequest(
      stream,
      { type: 'RejectTransitionRequest', rejecter: meta.actor, comment },
      meta,
    );
  }

  async deleteRequest(
    name: string,
    version: number,
    target: GovernanceTarget,
    comment: string,
    meta: EventMetadata,
  ): Promise<TransitionRequestDoc> {
    const m = await this.model(name);
    const stream = transitionRequestStream(m.modelId, version, target);
    const expired = await this.expireIfDue(stream, meta);
    if (expired !== undefined) await this.projections.readYourWrites(expired);
    const { state } = await this.aggregates.load(userStream(meta.actor), userDecider);
    return this.closeRequest(
      stream,
      {
        type: 'DeleteTransitionRequest',
        deletedBy: meta.actor,
        comment,
        admin: state.exists && state.isAdmin,
      },
      meta,
    );
  }

  private async closeRequest(
    stream: string,
    command: TransitionRequestCommand,
    meta: EventMetadata,
  ): Promise<TransitionRequestDoc> {
    const { state } = await this.aggregates.load(stream, transitionRequestDecider);
    const result = await this.aggregates.execute(
      { stream, decider: transitionRequestDecider, command },
      meta,
    );
    await this.projections.readYourWrites(result.lastPosition);
    const doc = await this.reader.get<TransitionRequestDoc>(
      TRANSITION_REQUESTS,
      state.open?.requestId ?? '',
    );
    if (doc === undefined) throw new Error('transition request missing after close');
    return doc;
  }

  /** Open requests of a version (expiring overdue ones first). */
  async listOpen(
    name: string,
    version: number,
    meta: EventMetadata,
  ): Promise<TransitionRequestDoc[]> {
    const m = await this.model(name);
    this.requireVersion(m, version);
    const key = versionKeyOf(m.modelId, version);
    let last = 0;
    for (const r of await this.reader.find<TransitionRequestDoc>(
      TRANSITION_REQUESTS,
      'versionKey',
      key,
    ))
      if (r.status === 'open' && r.expiresAt <= this.clock.now())
        last = Math.max(
          last,
          (await this.expireIfDue(transitionRequestStream(r.modelId, r.version, r.target), meta)) ??
            0,
        );
    if (last > 0) await this.projections.readYourWrites(last);
    return (await this.reader.find<TransitionRequestDoc>(TRANSITION_REQUESTS, 'versionKey', key))
      .filter((r) => r.status === 'open')
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Expires every overdue open request (the timer; tests call it after advancing the clock). */
  async expireDue(): Promise<number> {
    const now = this.clock.now();
    let n = 0;
    let last = 0;
    for (const r of await this.reader.find<TransitionRequestDoc>(
      TRANSITION_REQUESTS,
      'status',
      'open',
    )) {
      if (r.expiresAt > now) continue;
      const position = await this.expireIfDue(
        transitionRequestStream(r.modelId, r.version, r.target),
        {
          actor: 'system',
          correlationId: this.ids.next(),
          causationId: null,
          traceId: null,
          reason: null,
        },
      );
      if (position !== undefined) {
        n++;
        last = Math.max(last, position);
      }
    }
    if (last > 0) await this.projections.readYourWrites(last);
    return n;
  }

  // ------------------------------------------------------------ comments

  async createComment(
    name: string,
    version: number,
    comment: string,
    meta: EventMetadata,
  ): Promise<VersionCommentDoc> {
    const m = await this.model(name);
    this.requireVersion(m, version);
    const commentId = this.ids.next().replaceAll('-', '');
    const result = await this.aggregates.execute(
      {
        stream: modelVersionCommentsStream(m.modelId, version),
        decider: modelVersionCommentsDecider,
        command: {
          type: 'CreateModelVersionComment',
          modelId: m.modelId,
          name: m.state.name,
          version,
          commentId,
          author: meta.actor,
          comment,
        },
      },
      meta,
    );
    await this.projections.readYourWrites(result.lastPosition);
    return this.comment(commentId);
  }

  async comment(commentId: string): Promise<VersionCommentDoc> {
    const c = await this.reader.get<VersionCommentDoc>(VERSION_COMMENTS, commentId);
    if (c === undefined) throw notFound(`Comment '${commentId}' not found.`);
    return c;
  }

  async updateComment(
    commentId: string,
    comment: string,
    meta: EventMetadata,
  ): Promise<VersionCommentDoc> {
    const c = await this.comment(commentId);
    const result = await this.aggregates.execute(
      {
        stream: modelVersionCommentsStream(c.modelId, c.version),
        decider: modelVersionCommentsDecider,
        command: {
          type: 'UpdateModelVersionComment',
          modelId: c.modelId,
          name: c.name,
          version: c.version,
          commentId,
          user: meta.actor,
          comment,
        },
      },
      meta,
    );
    await this.projections.readYourWrites(result.lastPosition);
    return this.comment(commentId);
  }

  async deleteComment(commentId: string, meta: EventMetadata): Promise<void> {
    const c = await this.comment(commentId);
    const { state } = await this.aggregates.load(userStream(meta.actor), userDecider);
    const result = await this.aggregates.execute(
      {
        stream: modelVersionCommentsStream(c.modelId, c.version),
        decider: modelVersionCommentsDecider,
        command: {
          type: 'DeleteModelVersionComment',
          modelId: c.modelId,
          name: c.name,
          version: c.version,
          commentId,
          user: meta.actor,
          admin: state.exists && state.isAdmin,
        },
      },
      meta,
    );
    await this.projections.readYourWrites(result.lastPosition);
  }

  async listComments(name: string, version: number): Promise<VersionCommentDoc[]> {
    const m = await this.model(name);
    this.requireVersion(m, version);
    return (
      await this.reader.find<VersionCommentDoc>(
        VERSION_COMMENTS,
        'versionKey',
        versionKeyOf(m.modelId, version),
      )
    ).sort((a, b) => a.createdAt - b.createdAt);
  }
}
