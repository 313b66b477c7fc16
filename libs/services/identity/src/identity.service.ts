import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  invalidParameter,
  notFound,
  type DomainEvent,
  type EventMetadata,
} from '@ledgerflow/contracts';
import { LEDGERFLOW_CONFIG, type LedgerflowConfig } from '@ledgerflow/config';
import {
  aclStream,
  allows,
  effectivePermission,
  grantDecider,
  groupDecider,
  groupStream,
  tokenDecider,
  tokenStream,
  userDecider,
  userStream,
  validatePrincipalName,
  type Capability,
  type GrantCommand,
  type Permission,
  type PrincipalType,
  type ResourceType,
} from '@ledgerflow/domain-identity';
import {
  AGGREGATE_STORE,
  type AggregateCommand,
  type AggregateStore,
} from '@ledgerflow/event-store';
import type { ProjectionRunner, ReadModelReader } from '@ledgerflow/projections';
import { PROJECTION_RUNNER, READ_MODEL_READER } from '@ledgerflow/runtime';
import {
  MIN_PASSWORD_LENGTH,
  generatePassword,
  hashPassword,
  newApiToken,
  verifyPassword,
} from './credentials.js';
import {
  GRANTS,
  GROUPS,
  TOKENS,
  USERS,
  principalKey,
  resourceKey,
  type GrantDoc,
  type GroupDoc,
  type TokenDoc,
  type UserDoc,
} from './identity.projection.js';

type AnyCommand = AggregateCommand<unknown, unknown, DomainEvent>;

const SYSTEM: EventMetadata = { actor: 'system', correlationId: 'bootstrap', causationId: null };

function checkPassword(password: string): string {
  if (password.length < MIN_PASSWORD_LENGTH)
    throw invalidParameter(`Password must be at least ${MIN_PASSWORD_LENGTH} characters long.`);
  if (password.length > 1024) throw invalidParameter('Password is longer than 1024 characters.');
  return password;
}

/**
 * Users, API tokens, groups and permission grants: commands (events on the identity streams)
 * and the lookups the access checks make (from the cached identity read models).
 */
@Injectable()
export class IdentityService {
  private readonly logger = new Logger('identity');
  /** Per-process key of the verified-credential cache (so a password is not re-hashed per request). */
  private readonly cacheKey = randomBytes(32);
  private readonly verified = new Map<string, { storedHash: string; digest: Buffer }>();

  constructor(
    @Inject(AGGREGATE_STORE) private readonly aggregates: AggregateStore,
    @Inject(PROJECTION_RUNNER) private readonly projections: ProjectionRunner,
    @Inject(READ_MODEL_READER) private readonly reader: ReadModelReader,
    @Inject(LEDGERFLOW_CONFIG) private readonly config: LedgerflowConfig,
  ) {}

  get defaultPermission(): Permission {
    return this.config.auth.defaultPermission;
  }

  private async run(cmds: AnyCommand[], meta: EventMetadata): Promise<void> {
    const { lastPosition } = await this.aggregates.executeAll(cmds, meta);
    await this.projections.readYourWrites(lastPosition);
  }

  // ---------------------------------------------------------------------------------------------
  // Lookups

  user(username: string): Promise<UserDoc | undefined> {
    return this.reader.get<UserDoc>(USERS, username);
  }

  async requireUser(username: string): Promise<UserDoc> {
    const doc = await this.user(username);
    if (doc === undefined) throw notFound(`User with username=${username} not found`);
    return doc;
  }

  users(): Promise<UserDoc[]> {
    return this.reader.scan<UserDoc>(USERS);
  }

  token(tokenId: string): Promise<TokenDoc | undefined> {
    return this.reader.get<TokenDoc>(TOKENS, tokenId);
  }

  tokensOf(username: string): Promise<TokenDoc[]> {
    return this.reader.find<TokenDoc>(TOKENS, 'username', username);
  }

  group(group: string): Promise<GroupDoc | undefined> {
    return this.reader.get<GroupDoc>(GROUPS, group);
  }

  groups(): Promise<GroupDoc[]> {
    return this.reader.scan<GroupDoc>(GROUPS);
  }

  async groupsOf(username: string): Promise<string[]> {
    return (await this.groups()).filter((g) => g.members.includes(username)).map((g) => g.group);
  }

  grantsOn(type: ResourceType, id: string): Promise<GrantDoc[]> {
    return this.reader.find<GrantDoc>(GRANTS, 'resource_key', resourceKey(type, id));
  }

  grantsOf(type: PrincipalType, name: string): Promise<GrantDoc[]> {
    return this.reader.find<GrantDoc>(GRANTS, 'principal_key', principalKey(type, name));
  }

  /** A user's effective permission on a resource (own grant, else best group grant, else default). */
  async permissionOf(username: string, type: ResourceType, id: string): Promise<Permission> {
    const grants = await this.grantsOn(type, id);
    if (grants.length === 0) return this.defaultPermission;
    const own = grants.find((g) => g.principal_type === 'user' && g.principal === username);
    if (own !== undefined) return own.permission as Permission;
    const groups = new Set(await this.groupsOf(username));
    const viaGroups = grants
      .filter((g) => g.principal_type === 'group' && groups.has(g.principal))
      .map((g) => g.permission as Permission);
    return effectivePermission(undefined, viaGroups, this.defaultPermission);
  }

  /** A predicate over resource ids of one type: may this user `capability` it? */
  async predicate(
    username: string,
    type: ResourceType,
    capability: Capability,
  ): Promise<(id: string) => boolean> {
    const own = new Map<string, Permission>();
    for (const g of await this.grantsOf('user', username))
      if (g.resource_type === type) own.set(g.resource_id, g.permission as Permission);
    const viaGroups = new Map<string, Permission[]>();
    for (const group of await this.groupsOf(username)) {
      for (const g of await this.grantsOf('group', group)) {
        if (g.resource_type !== type) continue;
        const list = viaGroups.get(g.resource_id) ?? [];
        list.push(g.permission as Permission);
        viaGroups.set(g.resource_id, list);
      }
    }
    const fallback = this.defaultPermission;
    return (id) =>
      allows(effectivePermission(own.get(id), viaGroups.get(id) ?? [], fallback), capability);
  }

  // ---------------------------------------------------------------------------------------------
  // Credentials

  /** The user when this exact password was verified before in this process (no scrypt); else undefined. */
  async checkCachedPassword(username: string, password: string): Promise<UserDoc | undefined> {
    const cached = this.verified.get(username);
    if (cached === undefined) return undefined;
    const doc = await this.user(username);
    if (doc === undefined || cached.storedHash !== doc.password_hash) return undefined;
    const digest = createHmac('sha256', this.cacheKey).update(password).digest();
    return timingSafeEqual(cached.digest, digest) ? doc : undefined;
  }

  /** The user when the password is right (constant-time; a verified pair is cached per process). */
  async checkPassword(username: string, password: string): Promise<UserDoc | undefined> {
    const doc = await this.user(username);
    const digest = createHmac('sha256', this.cacheKey).update(password).digest();
    if (doc === undefined) {
      // same work as a wrong password, so timing does not reveal which user names exist
      await verifyPassword(password, DUMMY_HASH);
      return undefined;
    }
    const cached = this.verified.get(username);
    if (cached !== undefined && cached.storedHash === doc.password_hash)
      return timingSafeEqual(cached.digest, digest) ? doc : undefined;
    if (!(await verifyPassword(password, doc.password_hash))) return undefined;
    this.verified.set(username, { storedHash: doc.password_hash, digest });
    if (this.verified.size > 10_000) {
      const oldest = this.verified.keys().next();
      if (!oldest.done) this.verified.delete(oldest.value);
    }
    return doc;
  }

  // ---------------------------------------------------------------------------------------------
  // Users

  /**
   * Creates the admin at first start: with LEDGERFLOW_ADMIN_PASSWORD, or a generated password
   * printed once to stderr (it is never stored or logged anywhere else).
   */
  async bootstrapAdmin(print: (line: string) => void = (l) => console.error(l)): Promise<void> {
    const { adminUsername, adminPassword } = this.config.auth;
    if ((await this.users()).some((u) => u.is_admin)) return;
    const existing = await this.user(adminUsername);
    if (existing !== undefined) {
      await this.run(
        [this.userCmd({ type: 'SetAdmin', username: adminUsername, isAdmin: true })],
        SYSTEM,
      );
      return;
    }
    const password = adminPassword ?? generatePassword();
    await this.run(
      [
        this.userCmd({
          type: 'CreateUser',
          username: adminUsername,
          passwordHash: await hashPassword(password),
          isAdmin: true,
        }),
      ],
      SYSTEM,
    );
    if (adminPassword === undefined)
      print(
        `[ledgerflow] created admin user '${adminUsername}' with password: ${password}\n` +
          '[ledgerflow] this password is shown only once; change it with `users/update-password`.',
      );
    else
      this.logger.log(
        `created admin user '${adminUsername}' (password from LEDGERFLOW_ADMIN_PASSWORD)`,
      );
  }

  private userCmd(command: Parameters<typeof userDecider.decide>[0]): AnyCommand {
    return { stream: userStream(command.username), decider: userDecider, command };
  }

  async createUser(
    username: string,
    password: string,
    isAdmin: boolean,
    meta: EventMetadata,
  ): Promise<UserDoc> {
    validatePrincipalName('user', username);
    const passwordHash = await hashPassword(checkPassword(password));
    await this.run([this.userCmd({ type: 'CreateUser', username, passwordHash, isAdmin })], meta);
    return this.requireUser(username);
  }

  async updatePassword(username: string, password: string, meta: EventMetadata): Promise<void> {
    await this.requireUser(username);
    const passwordHash = await hashPassword(checkPassword(password));
    await this.run([this.userCmd({ type: 'ChangePassword', username, passwordHash })], meta);
    this.verified.delete(username);
  }

  async updateAdmin(username: string, isAdmin: boolean, meta: EventMetadata): Promise<void> {
    await this.run([this.userCmd({ type: 'SetAdmin', username, isAdmin })], meta);
  }

  /** Deletes a user with everything that names them: tokens, group memberships, grants. */
  async deleteUser(username: string, meta: EventMetadata): Promise<void> {
    await this.requireUser(username);
    const cmds: AnyCommand[] = [this.userCmd({ type: 'DeleteUser', username })];
    for (const t of await this.tokensOf(username))
      if (t.revoked_at === null)
        cmds.push({
          stream: tokenStream(t.token_id),
          decider: tokenDecider,
          command: { type: 'RevokeToken', tokenId: t.token_id },
        });
    for (const group of await this.groupsOf(username))
      cmds.push({
        stream: groupStream(group),
        decider: groupDecider,
        command: { type: 'RemoveGroupMember', group, username },
      });
    for (const g of await this.grantsOf('user', username))
      cmds.push(
        this.grantCmd({
          type: 'Revoke',
          resourceType: g.resource_type as ResourceType,
          resourceId: g.resource_id,
          principalType: 'user',
          principal: username,
        }),
      );
    await this.run(cmds, meta);
    this.verified.delete(username);
  }

  // ---------------------------------------------------------------------------------------------
  // API tokens

  async createToken(
    username: string,
    name: string,
    expiresAt: number | null,
    meta: EventMetadata,
  ): Promise<{ token: string; doc: TokenDoc }> {
    await this.requireUser(username);
    const { tokenId, token, secretHash } = newApiToken();
    await this.run(
      [
        {
          stream: tokenStream(tokenId),
          decider: tokenDecider,
          command: { type: 'CreateToken', tokenId, username, name, secretHash, expiresAt },
        },
      ],
      meta,
    );
    const doc = await this.token(tokenId);
    if (doc === undefined) throw new Error(`token ${tokenId} missing after create`);
    return { token, doc };
  }

  async revokeToken(tokenId: string, meta: EventMetadata): Promise<void> {
    await this.run(
      [
        {
          stream: tokenStream(tokenId),
          decider: tokenDecider,
          command: { type: 'RevokeToken', tokenId },
        },
      ],
      meta,
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Groups

  async groupCommand(
    command: Parameters<typeof groupDecider.decide>[0],
    meta: EventMetadata,
  ): Promise<void> {
    const cmds: AnyCommand[] = [
      { stream: groupStream(command.group), decider: groupDecider, command },
    ];
    if (command.type === 'AddGroupMember') await this.requireUser(command.username);
    if (command.type === 'DeleteGroup')
      for (const g of await this.grantsOf('group', command.group))
        cmds.push(
          this.grantCmd({
            type: 'Revoke',
            resourceType: g.resource_type as ResourceType,
            resourceId: g.resource_id,
            principalType: 'group',
            principal: command.group,
          }),
        );
    await this.run(cmds, meta);
  }

  // ---------------------------------------------------------------------------------------------
  // Grants

  private grantCmd(command: GrantCommand): AnyCommand {
    return {
      stream: aclStream(command.resourceType, command.resourceId),
      decider: grantDecider,
      command,
    };
  }

  /** Grants or revokes a permission (MLflow's permissions/create, update, delete). */
  async changeGrant(command: GrantCommand, meta: EventMetadata): Promise<void> {
    if (command.principalType === 'user') await this.requireUser(command.principal);
    else if ((await this.group(command.principal)) === undefined)
      throw notFound(`Group with name=${command.principal} not found`);
    await this.run([this.grantCmd(command)], meta);
  }

  /** The creator's grant on a new experiment or registered model (LEDGERFLOW_AUTH_CREATOR_PERMISSION). */
  async grantCreator(
    username: string,
    resourceType: ResourceType,
    resourceId: string,
    meta: EventMetadata,
  ): Promise<void> {
    const permission = this.config.auth.creatorPermission;
    if (permission === 'NO_PERMISSIONS') return;
    await this.run(
      [
        this.grantCmd({
          type: 'Grant',
          mode: 'set',
          permission,
          resourceType,
          resourceId,
          principalType: 'user',
          principal: username,
        }),
      ],
      meta,
    );
  }

  /** Moves every grant of a renamed resource to its new name (MLflow does the same on rename). */
  async moveGrants(
    resourceType: ResourceType,
    from: string,
    to: string,
    meta: EventMetadata,
  ): Promise<void> {
    const grants = await this.grantsOn(resourceType, from);
    if (grants.length === 0) return;
    // one principal at a time: each pair touches the two resources' streams once
    for (const g of grants) {
      const principal = {
        resourceType,
        principalType: g.principal_type as PrincipalType,
        principal: g.principal,
      };
      await this.run(
        [
          this.grantCmd({ type: 'Revoke', resourceId: from, ...principal }),
          this.grantCmd({
            type: 'Grant',
            mode: 'set',
            permission: g.permission as Permission,
            resourceId: to,
            ...principal,
          }),
        ],
        meta,
      );
    }
  }
}

/** A valid hash of a random password: verified against when the user name is unknown. */
const DUMMY_HASH =
  'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
