import { createHmac, randomBytes } from 'node:crypto';
import type { EventMetadata } from '@ledgerflow/contracts';
import type {
  CallContext,
  GrantResourceType,
  IdentityAccess,
  IdentityAuthResult,
  UserGrants,
} from './ports.js';

/** Seconds a client is told to wait (Retry-After) when the identity service cannot be reached. */
export const IDENTITY_UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

const MAX_ENTRIES = 10_000;

interface Entry<T> {
  readonly value: T;
  readonly expiresAt: number;
}

/** A bounded map of entries that expire (the oldest is dropped past MAX_ENTRIES). */
class TtlMap<T> {
  private readonly entries = new Map<string, Entry<T>>();
  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  get(key: string): T | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: T): void {
    if (this.ttlMs <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + this.ttlMs });
    if (this.entries.size > MAX_ENTRIES) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  deleteWhere(test: (key: string) => boolean): void {
    for (const key of [...this.entries.keys()]) if (test(key)) this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * The remote IdentityAccess of a service that does not mount the identity module, with:
 * - a cache of successful authentications for `ttlMs`, keyed by an HMAC of the Authorization value
 *   under a per-process random key (the secret itself is never kept). Failures are never cached:
 *   they go to the identity service, whose failed-login limits count them. So a changed password,
 *   a revoked or expired token, a deleted user or a changed admin flag takes effect here within
 *   `ttlMs`;
 * - a cache of permissions for `ttlMs` that is only trusted when it allows: a denial is re-asked
 *   (`fresh`), so a new grant works at once and a revoked one within `ttlMs`;
 * - concurrent identical authentications share one call;
 * - fail closed: when the identity service cannot answer, authentication is a 503 with
 *   Retry-After and a permission check throws (TEMPORARILY_UNAVAILABLE, also 503).
 */
export class CachingIdentityAccess implements IdentityAccess {
  private readonly key = randomBytes(32);
  private readonly authenticated: TtlMap<IdentityAuthResult>;
  private readonly permissions: TtlMap<string>;
  private readonly inflight = new Map<string, Promise<IdentityAuthResult>>();

  constructor(
    private readonly inner: IdentityAccess,
    ttlMs: number,
    private readonly log: (message: string) => void = () => undefined,
    now: () => number = Date.now,
  ) {
    this.authenticated = new TtlMap(ttlMs, now);
    this.permissions = new TtlMap(ttlMs, now);
  }

  /** Entries held (for tests). */
  get cachedAuthentications(): number {
    return this.authenticated.size;
  }

  private digest(value: string): string {
    return createHmac('sha256', this.key).update(value).digest('base64url');
  }

  authenticate(
    authorization: string | undefined,
    client: string,
    call?: CallContext,
  ): Promise<IdentityAuthResult> {
    if (authorization === undefined) return Promise.resolve({ ok: false, status: 401 });
    const key = this.digest(authorization);
    const hit = this.authenticated.get(key);
    if (hit !== undefined) return Promise.resolve(hit);
    // one call per distinct value at a time (keyed by address too: each counts its own failures)
    const flightKey = `${key}\0${client}`;
    const pending = this.inflight.get(flightKey);
    if (pending !== undefined) return pending;
    const asked = this.inner.authenticate(authorization, client, call).then(
      (result) => {
        if (result.ok) this.authenticated.set(key, result);
        return result;
      },
      (e: unknown): IdentityAuthResult => {
        this.log(
          `identity service unreachable, request refused with 503: ${e instanceof Error ? e.message : String(e)}`,
        );
        return {
          ok: false,
          status: 503,
          retryAfterSeconds: IDENTITY_UNAVAILABLE_RETRY_AFTER_SECONDS,
        };
      },
    );
    const done = asked.finally(() => this.inflight.delete(flightKey));
    this.inflight.set(flightKey, done);
    return done;
  }

  async permissionOf(
    username: string,
    type: GrantResourceType,
    resourceId: string,
    options?: { readonly fresh?: boolean; readonly call?: CallContext },
  ): Promise<string> {
    const key = `${username}\0${type}\0${resourceId}`;
    if (options?.fresh !== true) {
      const hit = this.permissions.get(key);
      if (hit !== undefined) return hit;
    }
    const permission = await this.inner.permissionOf(username, type, resourceId, options);
    this.permissions.set(key, permission);
    return permission;
  }

  userGrants(username: string, type: GrantResourceType, call?: CallContext): Promise<UserGrants> {
    return this.inner.userGrants(username, type, call);
  }

  async grantCreator(
    username: string,
    type: GrantResourceType,
    resourceId: string,
    metadata: EventMetadata,
  ): Promise<void> {
    await this.inner.grantCreator(username, type, resourceId, metadata);
    this.permissions.deleteWhere((k) => k.endsWith(`\0${type}\0${resourceId}`));
  }

  async moveGrants(
    type: GrantResourceType,
    from: string,
    to: string,
    metadata: EventMetadata,
  ): Promise<void> {
    await this.inner.moveGrants(type, from, to, metadata);
    this.permissions.deleteWhere(
      (k) => k.endsWith(`\0${type}\0${from}`) || k.endsWith(`\0${type}\0${to}`),
    );
  }
}
