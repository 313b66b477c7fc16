import { Controller, Delete, Get, HttpCode, Inject, Patch, Post, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { MlflowError, invalidParameter, notFound, type EventMetadata } from '@ledgerflow/contracts';
import {
  isPermission,
  type Permission,
  type PrincipalType,
  type ResourceType,
} from '@ledgerflow/domain-identity';
import {
  Ctx,
  Msg,
  metadataOf,
  type Principal,
  type RequestContext,
  type RequestMessage,
} from '@ledgerflow/http';
import { verifyPassword } from './credentials.js';
import type { GrantDoc, TokenDoc, UserDoc } from './identity.projection.js';
import { IdentityService } from './identity.service.js';

/** Longest token lifetime that may be asked for. */
const MAX_TOKEN_TTL_SECONDS = 10 * 365 * 24 * 3600;

type AuthedRequest = FastifyRequest & { ledgerflowAuth?: Principal };

const PREFIXES = (path: string, versions: readonly string[] = ['2.0']): string[] =>
  versions.flatMap((v) => [`api/${v}/${path}`, `ajax-api/${v}/${path}`]);

function permissionOf(msg: RequestMessage): Permission {
  const raw = msg.requiredString('permission').toUpperCase();
  if (!isPermission(raw))
    throw invalidParameter(
      `Invalid permission '${raw}'. Valid permissions are: READ, EDIT, MANAGE, NO_PERMISSIONS`,
    );
  return raw;
}

function resourceTypeOf(msg: RequestMessage): ResourceType {
  const raw = msg.requiredString('resource_type');
  if (raw !== 'experiment' && raw !== 'registered_model')
    throw invalidParameter(
      `Unsupported resource_type '${raw}'. Supported: experiment, registered_model`,
    );
  return raw;
}

function caller(req: AuthedRequest): Principal | undefined {
  return req.ledgerflowAuth;
}

/** MLflow's auth REST endpoints (fact sheet §7) over the identity service. */
@Controller()
export class MlflowAuthController {
  constructor(@Inject(IdentityService) private readonly identity: IdentityService) {}

  private async userJson(doc: UserDoc): Promise<object> {
    const grants = await this.identity.grantsOf('user', doc.username);
    return {
      id: doc.user_id,
      username: doc.username,
      is_admin: doc.is_admin,
      experiment_permissions: grants
        .filter((g) => g.resource_type === 'experiment')
        .map((g) => ({
          experiment_id: g.resource_id,
          user_id: doc.user_id,
          permission: g.permission,
        })),
      registered_model_permissions: grants
        .filter((g) => g.resource_type === 'registered_model')
        .map((g) => ({ name: g.resource_id, user_id: doc.user_id, permission: g.permission })),
    };
  }

  @Post(PREFIXES('mlflow/users/create'))
  @HttpCode(200)
  async createUser(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const username = msg.requiredString('username');
    const password = msg.requiredString('password');
    const doc = await this.identity.createUser(username, password, false, metadataOf(ctx));
    return { user: await this.userJson(doc) };
  }

  @Get(PREFIXES('mlflow/users/get'))
  async getUser(@Msg() msg: RequestMessage): Promise<object> {
    return {
      user: await this.userJson(await this.identity.requireUser(msg.requiredString('username'))),
    };
  }

  @Get(PREFIXES('mlflow/users/current'))
  async currentUser(@Req() req: AuthedRequest): Promise<object> {
    const who = caller(req);
    if (who === undefined) throw new MlflowError('UNAUTHENTICATED', 'Authentication is off');
    return { user: await this.userJson(await this.identity.requireUser(who.username)) };
  }

  @Get(PREFIXES('mlflow/users/list'))
  async listUsers(): Promise<object> {
    const users = await this.identity.users();
    return { users: await Promise.all(users.map((u) => this.userJson(u))) };
  }

  @Patch(PREFIXES('mlflow/users/update-password'))
  async updatePassword(
    @Msg() msg: RequestMessage,
    @Req() req: AuthedRequest,
    @Ctx() ctx: RequestContext,
  ): Promise<object> {
    const username = msg.requiredString('username');
    const password = msg.requiredString('password');
    // changing one's own password re-asserts the current one (as MLflow 3.x)
    if (caller(req)?.username === username) {
      const current = msg.optionalString('current_password');
      if (!current)
        throw invalidParameter('Current password is required when changing your own password.');
      const doc = await this.identity.requireUser(username);
      if (!(await verifyPassword(current, doc.password_hash)))
        throw invalidParameter('Current password does not match.');
      if (current === password)
        throw invalidParameter('New password must differ from the current password.');
    }
    await this.identity.updatePassword(username, password, metadataOf(ctx));
    return {};
  }

  @Patch(PREFIXES('mlflow/users/update-admin'))
  async updateAdmin(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const username = msg.requiredString('username');
    const isAdmin = msg.optionalBool('is_admin');
    if (isAdmin === undefined)
      throw invalidParameter("Missing value for required parameter 'is_admin'.");
    await this.identity.updateAdmin(username, isAdmin, metadataOf(ctx));
    return {};
  }

  @Delete(PREFIXES('mlflow/users/delete'))
  async deleteUser(
    @Msg() msg: RequestMessage,
    @Req() req: AuthedRequest,
    @Ctx() ctx: RequestContext,
  ): Promise<object> {
    const username = msg.requiredString('username');
    if (caller(req)?.username === username)
      throw new MlflowError(
        'BAD_REQUEST',
        'Users cannot delete their own account. Ask another admin to delete this user instead.',
      );
    await this.identity.deleteUser(username, metadataOf(ctx));
    return {};
  }

  // --- per-resource permission endpoints (2.x shape)

  private async grantOf(type: ResourceType, id: string, username: string): Promise<GrantDoc> {
    await this.identity.requireUser(username);
    const grant = (await this.identity.grantsOn(type, id)).find(
      (g) => g.principal_type === 'user' && g.principal === username,
    );
    if (grant === undefined)
      throw notFound(
        `${type === 'experiment' ? 'Experiment' : 'Registered model'} permission with ${
          type === 'experiment' ? 'experiment_id' : 'name'
        }=${id} and username=${username} not found`,
      );
    return grant;
  }

  private async permissionJson(type: ResourceType, id: string, username: string): Promise<object> {
    const user = await this.identity.requireUser(username);
    const g = await this.grantOf(type, id, username);
    return type === 'experiment'
      ? {
          experiment_permission: {
            experiment_id: id,
            user_id: user.user_id,
            permission: g.permission,
          },
        }
      : {
          registered_model_permission: {
            name: id,
            user_id: user.user_id,
            permission: g.permission,
          },
        };
  }

  private async change(
    type: ResourceType,
    msg: RequestMessage,
    mode: 'create' | 'update' | 'delete',
    meta: EventMetadata,
  ): Promise<object> {
    const id = type === 'experiment' ? msg.requiredId('experiment_id') : msg.requiredString('name');
    const username = msg.requiredString('username');
    const base = {
      resourceType: type,
      resourceId: id,
      principalType: 'user' as const,
      principal: username,
    };
    if (mode === 'delete') {
      await this.identity.changeGrant({ type: 'Revoke', ...base }, meta);
      return {};
    }
    await this.identity.changeGrant(
      { type: 'Grant', mode, permission: permissionOf(msg), ...base },
      meta,
    );
    return mode === 'create' ? this.permissionJson(type, id, username) : {};
  }

  @Post(PREFIXES('mlflow/experiments/permissions/create'))
  @HttpCode(200)
  createExperimentPermission(
    @Msg() msg: RequestMessage,
    @Ctx() ctx: RequestContext,
  ): Promise<object> {
    return this.change('experiment', msg, 'create', metadataOf(ctx));
  }

  @Get(PREFIXES('mlflow/experiments/permissions/get'))
  getExperimentPermission(@Msg() msg: RequestMessage): Promise<object> {
    return this.permissionJson(
      'experiment',
      msg.requiredId('experiment_id'),
      msg.requiredString('username'),
    );
  }

  @Patch(PREFIXES('mlflow/experiments/permissions/update'))
  updateExperimentPermission(
    @Msg() msg: RequestMessage,
    @Ctx() ctx: RequestContext,
  ): Promise<object> {
    return this.change('experiment', msg, 'update', metadataOf(ctx));
  }

  @Delete(PREFIXES('mlflow/experiments/permissions/delete'))
  deleteExperimentPermission(
    @Msg() msg: RequestMessage,
    @Ctx() ctx: RequestContext,
  ): Promise<object> {
    return this.change('experiment', msg, 'delete', metadataOf(ctx));
  }

  @Post(PREFIXES('mlflow/registered-models/permissions/create'))
  @HttpCode(200)
  createModelPermission(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    return this.change('registered_model', msg, 'create', metadataOf(ctx));
  }

  @Get(PREFIXES('mlflow/registered-models/permissions/get'))
  getModelPermission(@Msg() msg: RequestMessage): Promise<object> {
    return this.permissionJson(
      'registered_model',
      msg.requiredString('name'),
      msg.requiredString('username'),
    );
  }

  @Patch(PREFIXES('mlflow/registered-models/permissions/update'))
  updateModelPermission(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    return this.change('registered_model', msg, 'update', metadataOf(ctx));
  }

  @Delete(PREFIXES('mlflow/registered-models/permissions/delete'))
  deleteModelPermission(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    return this.change('registered_model', msg, 'delete', metadataOf(ctx));
  }

  // --- unified permission endpoints of the 3.x auth client (/api/3.0/mlflow/users/permissions/*)

  @Post(PREFIXES('mlflow/users/permissions/grant', ['3.0']))
  @HttpCode(200)
  async grantUserPermission(
    @Msg() msg: RequestMessage,
    @Ctx() ctx: RequestContext,
  ): Promise<object> {
    await this.identity.changeGrant(
      {
        type: 'Grant',
        mode: 'set',
        permission: permissionOf(msg),
        resourceType: resourceTypeOf(msg),
        resourceId: msg.requiredId('resource_id'),
        principalType: 'user',
        principal: msg.requiredString('username'),
      },
      metadataOf(ctx),
    );
    return {};
  }

  @Post(PREFIXES('mlflow/users/permissions/revoke', ['3.0']))
  @HttpCode(200)
  async revokeUserPermission(
    @Msg() msg: RequestMessage,
    @Ctx() ctx: RequestContext,
  ): Promise<object> {
    await this.identity.changeGrant(
      {
        type: 'Revoke',
        resourceType: resourceTypeOf(msg),
        resourceId: msg.requiredId('resource_id'),
        principalType: 'user',
        principal: msg.requiredString('username'),
      },
      metadataOf(ctx),
    );
    return {};
  }

  @Get(PREFIXES('mlflow/users/permissions/get', ['3.0']))
  async getUserPermission(@Msg() msg: RequestMessage): Promise<object> {
    const username = msg.requiredString('username');
    const user = await this.identity.requireUser(username);
    const type = resourceTypeOf(msg);
    const id = msg.requiredId('resource_id');
    const permission = user.is_admin
      ? 'MANAGE'
      : await this.identity.permissionOf(username, type, id);
    return { allowed: permission !== 'NO_PERMISSIONS', permission };
  }
}

function tokenJson(t: TokenDoc): object {
  return {
    token_id: t.token_id,
    username: t.username,
    name: t.name,
    created_at: t.created_at,
    ...(t.expires_at === null ? {} : { expires_at: t.expires_at }),
    ...(t.revoked_at === null ? {} : { revoked_at: t.revoked_at }),
  };
}

/**
 * Ledgerflow's identity endpoints: API tokens (`MLFLOW_TRACKING_TOKEN`) and groups, whose grants
 * every member gets (a user's own grant wins over their groups').
 */
@Controller(['api/2.0/ledgerflow', 'ajax-api/2.0/ledgerflow'])
export class LedgerflowIdentityController {
  constructor(@Inject(IdentityService) private readonly identity: IdentityService) {}

  /** {username?, name?, expires_in_seconds?} → {token (shown once), token_info} */
  @Post('tokens/create')
  @HttpCode(200)
  async createToken(
    @Msg() msg: RequestMessage,
    @Req() req: AuthedRequest,
    @Ctx() ctx: RequestContext,
  ): Promise<object> {
    const username = msg.optionalString('username') ?? caller(req)?.username;
    if (username === undefined)
      throw invalidParameter("Missing value for required parameter 'username'.");
    const ttl = msg.optionalInt('expires_in_seconds');
    if (ttl !== undefined && (ttl <= 0 || ttl > MAX_TOKEN_TTL_SECONDS))
      throw invalidParameter(
        `expires_in_seconds must be between 1 and ${MAX_TOKEN_TTL_SECONDS} (ten years).`,
      );
    const { token, doc } = await this.identity.createToken(
      username,
      msg.optionalString('name') ?? '',
      ttl === undefined ? null : Date.now() + ttl * 1000,
      metadataOf(ctx),
    );
    return { token, token_info: tokenJson(doc) };
  }

  /** ?username → {tokens[]} (never the secrets) */
  @Get('tokens/list')
  async listTokens(@Msg() msg: RequestMessage, @Req() req: AuthedRequest): Promise<object> {
    const username = msg.optionalString('username') ?? caller(req)?.username;
    if (username === undefined)
      throw invalidParameter("Missing value for required parameter 'username'.");
    const tokens = await this.identity.tokensOf(username);
    return tokens.length === 0 ? {} : { tokens: tokens.map(tokenJson) };
  }

  /** {token_id}: the owner or an admin; another user's token is answered as unknown. */
  @Post('tokens/revoke')
  @HttpCode(200)
  async revokeToken(
    @Msg() msg: RequestMessage,
    @Req() req: AuthedRequest,
    @Ctx() ctx: RequestContext,
  ): Promise<object> {
    const tokenId = msg.requiredString('token_id');
    const doc = await this.identity.token(tokenId);
    const who = caller(req);
    if (doc === undefined || (who !== undefined && !who.isAdmin && doc.username !== who.username))
      throw notFound(`Token ${tokenId} not found`);
    await this.identity.revokeToken(tokenId, metadataOf(ctx));
    return {};
  }

  @Post('groups/create')
  @HttpCode(200)
  async createGroup(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const group = msg.requiredString('group');
    await this.identity.groupCommand({ type: 'CreateGroup', group }, metadataOf(ctx));
    return { group: await this.groupJson(group) };
  }

  private async groupJson(group: string): Promise<object> {
    const doc = await this.identity.group(group);
    if (doc === undefined) throw notFound(`Group with name=${group} not found`);
    const grants = await this.identity.grantsOf('group', group);
    return {
      group: doc.group,
      members: doc.members,
      permissions: grants.map((g) => ({
        resource_type: g.resource_type,
        resource_id: g.resource_id,
        permission: g.permission,
      })),
    };
  }

  @Get('groups/get')
  async getGroup(@Msg() msg: RequestMessage): Promise<object> {
    return { group: await this.groupJson(msg.requiredString('group')) };
  }

  @Get('groups/list')
  async listGroups(): Promise<object> {
    const groups = await this.identity.groups();
    return groups.length === 0
      ? {}
      : { groups: await Promise.all(groups.map((g) => this.groupJson(g.group))) };
  }

  @Delete('groups/delete')
  async deleteGroup(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    await this.identity.groupCommand(
      { type: 'DeleteGroup', group: msg.requiredString('group') },
      metadataOf(ctx),
    );
    return {};
  }

  @Post('groups/add-member')
  @HttpCode(200)
  async addMember(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    await this.identity.groupCommand(
      {
        type: 'AddGroupMember',
        group: msg.requiredString('group'),
        username: msg.requiredString('username'),
      },
      metadataOf(ctx),
    );
    return {};
  }

  @Post('groups/remove-member')
  @HttpCode(200)
  async removeMember(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    await this.identity.groupCommand(
      {
        type: 'RemoveGroupMember',
        group: msg.requiredString('group'),
        username: msg.requiredString('username'),
      },
      metadataOf(ctx),
    );
    return {};
  }

  /** {group, resource_type, resource_id, permission}: creates or replaces the group's grant. */
  @Post('groups/permissions/grant')
  @HttpCode(200)
  async grantGroup(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    await this.identity.changeGrant(
      {
        type: 'Grant',
        mode: 'set',
        permission: permissionOf(msg),
        resourceType: resourceTypeOf(msg),
        resourceId: msg.requiredId('resource_id'),
        principalType: 'group' as PrincipalType,
        principal: msg.requiredString('group'),
      },
      metadataOf(ctx),
    );
    return {};
  }

  @Post('groups/permissions/revoke')
  @HttpCode(200)
  async revokeGroup(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    await this.identity.changeGrant(
      {
        type: 'Revoke',
        resourceType: resourceTypeOf(msg),
        resourceId: msg.requiredId('resource_id'),
        principalType: 'group',
        principal: msg.requiredString('group'),
      },
      metadataOf(ctx),
    );
    return {};
  }
}
