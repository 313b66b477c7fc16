import { Inject, Injectable, Logger } from '@nestjs/common';
import type { EventMetadata } from '@ledgerflow/contracts';
import { LEDGERFLOW_CONFIG, type LedgerflowConfig } from '@ledgerflow/config';
import type {
  GrantResourceType,
  IdentityAccess,
  IdentityAuthResult,
  UserGrants,
} from '@ledgerflow/service-calls';
import { parseApiToken, sameDigest, sha256Hex } from './credentials.js';
import { IdentityService } from './identity.service.js';
import { LoginLimiter } from './login-limiter.js';

/**
 * The identity module's answers to access checks, from its own read models: credentials (Basic,
 * Bearer API tokens) with the failed-login limits, permissions and grants. The process's
 * AccessControl uses it directly; registry-governance serves it to the other services over gRPC.
 */
@Injectable()
export class LocalIdentityAccess implements IdentityAccess {
  private readonly logger = new Logger('auth');
  /** Failures per user name (LEDGERFLOW_AUTH_MAX_FAILED_LOGINS per window). */
  private readonly users: LoginLimiter;
  /** Failures per client address: ten times as many (one address may serve several people). */
  private readonly clients: LoginLimiter;

  constructor(
    @Inject(IdentityService) private readonly identity: IdentityService,
    @Inject(LEDGERFLOW_CONFIG) config: LedgerflowConfig,
  ) {
    const { maxFailedLogins, failedLoginWindowMs } = config.auth;
    this.users = new LoginLimiter(maxFailedLogins, failedLoginWindowMs);
    this.clients = new LoginLimiter(maxFailedLogins * 10, failedLoginWindowMs);
  }

  async authenticate(
    authorization: string | undefined,
    client: string,
  ): Promise<IdentityAuthResult> {
    if (authorization === undefined) return { ok: false, status: 401 };
    const space = authorization.indexOf(' ');
    const scheme = space < 0 ? authorization : authorization.slice(0, space);
    const value = space < 0 ? '' : authorization.slice(space + 1).trim();
    if (/^basic$/i.test(scheme)) return this.basic(value, client);
    if (/^bearer$/i.test(scheme)) return this.bearer(value, client);
    return { ok: false, status: 401 };
  }

  private refuse(client: string, username?: string): IdentityAuthResult {
    this.clients.fail([client]);
    if (username !== undefined) this.users.fail([username]);
    return { ok: false, status: 401 };
  }

  /** Seconds the caller must wait before trying again (0: may try now). */
  private blocked(client: string, username?: string): number {
    return Math.max(
      this.clients.blockedFor([client]),
      username === undefined ? 0 : this.users.blockedFor([username]),
    );
  }

  private async basic(value: string, client: string): Promise<IdentityAuthResult> {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return { ok: false, status: 401 };
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return { ok: false, status: 401 };
    const username = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const wait = this.blocked(client, username);
    if (wait > 0) return { ok: false, status: 429, retryAfterSeconds: wait };
    const known = await this.identity.checkCachedPassword(username, password);
    if (known !== undefined)
      return { ok: true, principal: { username: known.username, isAdmin: known.is_admin } };
    // counted as a failure before the (slow) check, taken back when right: a burst of
    // concurrent guesses cannot all slip under the limit
    this.clients.fail([client]);
    this.users.fail([username]);
    const user = await this.identity.checkPassword(username, password);
    if (user === undefined) {
      this.logger.warn(`failed login for user '${username.slice(0, 64)}' from ${client}`);
      return { ok: false, status: 401 };
    }
    this.clients.forgive([client]);
    this.users.forgive([username]);
    return { ok: true, principal: { username: user.username, isAdmin: user.is_admin } };
  }

  private async bearer(value: string, client: string): Promise<IdentityAuthResult> {
    const wait = this.blocked(client);
    if (wait > 0) return { ok: false, status: 429, retryAfterSeconds: wait };
    const parsed = parseApiToken(value);
    if (parsed === undefined) return this.refuse(client);
    const token = await this.identity.token(parsed.tokenId);
    const presented = sha256Hex(parsed.secret);
    // compare even for an unknown id, so timing does not tell which ids exist
    const matches = sameDigest(presented, token?.secret_hash ?? '0'.repeat(64));
    if (
      token === undefined ||
      !matches ||
      token.revoked_at !== null ||
      (token.expires_at !== null && token.expires_at <= Date.now())
    ) {
      this.logger.warn(`refused API token ${parsed.tokenId.slice(0, 8)}… from ${client}`);
      return this.refuse(client);
    }
    const user = await this.identity.user(token.username);
    if (user === undefined) return this.refuse(client);
    return { ok: true, principal: { username: user.username, isAdmin: user.is_admin } };
  }

  permissionOf(username: string, type: GrantResourceType, resourceId: string): Promise<string> {
    return this.identity.permissionOf(username, type, resourceId);
  }

  async userGrants(username: string, type: GrantResourceType): Promise<UserGrants> {
    const own = (await this.identity.grantsOf('user', username))
      .filter((g) => g.resource_type === type)
      .map((g) => ({ resourceId: g.resource_id, permission: g.permission }));
    const viaGroups: { resourceId: string; permission: string }[] = [];
    for (const group of await this.identity.groupsOf(username))
      for (const g of await this.identity.grantsOf('group', group))
        if (g.resource_type === type)
          viaGroups.push({ resourceId: g.resource_id, permission: g.permission });
    return { own, viaGroups, defaultPermission: this.identity.defaultPermission };
  }

  grantCreator(
    username: string,
    type: GrantResourceType,
    resourceId: string,
    metadata: EventMetadata,
  ): Promise<void> {
    return this.identity.grantCreator(username, type, resourceId, metadata);
  }

  moveGrants(
    type: GrantResourceType,
    from: string,
    to: string,
    metadata: EventMetadata,
  ): Promise<void> {
    return this.identity.moveGrants(type, from, to, metadata);
  }
}
