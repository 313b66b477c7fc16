import { Controller, Delete, Get, HttpCode, Inject, Patch, Post } from '@nestjs/common';
import { invalidParameter } from '@ledgerflow/contracts';
import {
  canonicalStage,
  parseGovernancePolicy,
  parseVersionNumber,
  validateAliasName,
  validateComment,
  validateModelName,
  type GovernanceTarget,
} from '@ledgerflow/domain-registry';
import { Ctx, metadataOf, Msg, type RequestContext, type RequestMessage } from '@ledgerflow/http';
import type { TransitionRequestDoc, VersionCommentDoc } from './governance.projection.js';
import { GovernanceService } from './governance.service.js';

/** The target of a request: `stage` (Databricks' field) or, for aliases, `alias`. */
function targetOf(msg: RequestMessage): GovernanceTarget {
  const stage = msg.optionalString('stage');
  const alias = msg.optionalString('alias');
  if ((stage === undefined) === (alias === undefined))
    throw invalidParameter("Exactly one of 'stage' or 'alias' is required.");
  return stage !== undefined
    ? { kind: 'stage', stage: canonicalStage(stage) }
    : { kind: 'alias', alias: validateAliasName(alias ?? '', true) };
}

const versionOf = (msg: RequestMessage): number => {
  const raw = msg.optionalString('version') ?? String(msg.optionalInt('version') ?? '');
  if (raw === '') throw invalidParameter("Missing value for required parameter 'version'.");
  return parseVersionNumber(raw);
};

function requestJson(r: TransitionRequestDoc): object {
  return {
    request_id: r.requestId,
    name: r.name,
    version: String(r.version),
    ...(r.target.kind === 'stage' ? { to_stage: r.target.stage } : { alias: r.target.alias }),
    user_id: r.requester,
    comment: r.comment,
    creation_timestamp: r.createdAt,
    expiration_timestamp: r.expiresAt,
    status: r.status,
    approvals_required: r.approvalsRequired,
    rule: r.rule,
    approvals: r.approvals.map((a) => ({
      user_id: a.user,
      comment: a.comment,
      creation_timestamp: a.at,
    })),
    correlation_id: r.correlationId,
  };
}

function commentJson(c: VersionCommentDoc): object {
  return {
    id: c.commentId,
    user_id: c.author,
    comment: c.comment,
    creation_timestamp: c.createdAt,
    last_updated_timestamp: c.updatedAt,
  };
}

/** Databricks-shaped transition requests: create, approve, reject, delete, list. */
@Controller(['api/2.0/mlflow/transition-requests', 'ajax-api/2.0/mlflow/transition-requests'])
export class TransitionRequestsController {
  constructor(@Inject(GovernanceService) private readonly governance: GovernanceService) {}

  @Post('create')
  @HttpCode(200)
  async create(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = validateModelName(msg.requiredString('name'));
    const version = versionOf(msg);
    const target = targetOf(msg);
    const comment = msg.optionalString('comment') ?? '';
    const r = await this.governance.createRequest(
      name,
      version,
      target,
      comment,
      metadataOf(ctx, comment || null),
    );
    return { request: requestJson(r) };
  }

  @Post('approve')
  @HttpCode(200)
  async approve(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = validateModelName(msg.requiredString('name'));
    const version = versionOf(msg);
    const target = targetOf(msg);
    const comment = msg.optionalString('comment') ?? '';
    const archive = msg.optionalBool('archive_existing_versions') ?? false;
    if (
      archive &&
      (target.kind !== 'stage' || (target.stage !== 'Staging' && target.stage !== 'Production'))
    )
      throw invalidParameter(
        "archive_existing_versions is only allowed when the target stage is 'Staging' or 'Production'.",
      );
    const { request, applied } = await this.governance.approve(
      name,
      version,
      target,
      comment,
      archive,
      metadataOf(ctx, comment || null),
    );
    return {
      activity: {
        activity_type: 'APPROVED_REQUEST',
        ...(target.kind === 'stage' ? { to_stage: target.stage } : { alias: target.alias }),
        user_id: ctx.actor,
        comment,
      },
      applied,
      request: requestJson(request),
    };
  }

  @Post('reject')
  @HttpCode(200)
  async reject(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = validateModelName(msg.requiredString('name'));
    const version = versionOf(msg);
    const target = targetOf(msg);
    const comment = msg.optionalString('comment') ?? '';
    const request = await this.governance.reject(
      name,
      version,
      target,
      comment,
      metadataOf(ctx, comment || null),
    );
    return {
      activity: {
        activity_type: 'REJECTED_REQUEST',
        ...(target.kind === 'stage' ? { to_stage: target.stage } : { alias: target.alias }),
        user_id: ctx.actor,
        comment,
      },
      request: requestJson(request),
    };
  }

  @Delete('delete')
  async delete(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = validateModelName(msg.requiredString('name'));
    const version = versionOf(msg);
    const target = targetOf(msg);
    const comment = msg.optionalString('comment') ?? '';
    await this.governance.deleteRequest(
      name,
      version,
      target,
      comment,
      metadataOf(ctx, comment || null),
    );
    return {};
  }

  @Get('list')
  async list(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = validateModelName(msg.requiredString('name'));
    const requests = await this.governance.listOpen(name, versionOf(msg), metadataOf(ctx));
    return requests.length === 0 ? {} : { requests: requests.map(requestJson) };
  }
}

/** Comments on model versions (Databricks' comments endpoints, plus list). */
@Controller(['api/2.0/mlflow/comments', 'ajax-api/2.0/mlflow/comments'])
export class VersionCommentsController {
  constructor(@Inject(GovernanceService) private readonly governance: GovernanceService) {}

  @Post('create')
  @HttpCode(200)
  async create(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = validateModelName(msg.requiredString('name'));
    const version = versionOf(msg);
    const comment = validateComment(msg.requiredString('comment'));
    return {
      comment: commentJson(
        await this.governance.createComment(name, version, comment, metadataOf(ctx)),
      ),
    };
  }

  @Patch('update')
  async update(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const id = msg.requiredString('id');
    const comment = validateComment(msg.requiredString('comment'));
    return {
      comment: commentJson(await this.governance.updateComment(id, comment, metadataOf(ctx))),
    };
  }

  @Delete('delete')
  async delete(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    await this.governance.deleteComment(msg.requiredString('id'), metadataOf(ctx));
    return {};
  }

  @Get('list')
  async list(@Msg() msg: RequestMessage): Promise<object> {
    const name = validateModelName(msg.requiredString('name'));
    const comments = await this.governance.listComments(name, versionOf(msg));
    return comments.length === 0 ? {} : { comments: comments.map(commentJson) };
  }
}

/** Governance policies per registered model (the server default applies when none is set). */
@Controller(['api/2.0/ledgerflow/registry/policies', 'ajax-api/2.0/ledgerflow/registry/policies'])
export class RegistryPoliciesController {
  constructor(@Inject(GovernanceService) private readonly governance: GovernanceService) {}

  @Post('set')
  @HttpCode(200)
  async set(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = validateModelName(msg.requiredString('name'));
    const raw = msg.raw['policy'];
    if (raw === undefined) throw invalidParameter("Missing value for required parameter 'policy'.");
    const policy = raw === null ? null : parseGovernancePolicy(raw);
    await this.governance.setPolicy(
      name,
      policy,
      metadataOf(ctx, msg.optionalString('reason') ?? null),
    );
    return this.get(msg);
  }

  @Get('get')
  async get(@Msg() msg: RequestMessage): Promise<object> {
    const name = validateModelName(msg.requiredString('name'));
    const p = await this.governance.getPolicy(name);
    return {
      name,
      source: p.source === 'model policy' ? 'model' : 'server_default',
      policy: p.policy,
    };
  }
}
