import type { RecordedEvent } from '@ledgerflow/contracts';
import { IDENTITY_EVENT_TYPES, type IdentityEvent } from '@ledgerflow/domain-identity';
import type { Projection, ReadModelWriter } from '@ledgerflow/projections';

export const USERS = 'identity_users';
export const TOKENS = 'identity_tokens';
export const GROUPS = 'identity_groups';
export const GRANTS = 'identity_grants';

export interface UserDoc {
  [k: string]: unknown;
  username: string;
  /** MLflow's numeric user id: the log position of the user's creation. */
  user_id: number;
  password_hash: string;
  is_admin: boolean;
  created_at: number;
}

export interface TokenDoc {
  [k: string]: unknown;
  token_id: string;
  username: string;
  name: string;
  secret_hash: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

export interface GroupDoc {
  [k: string]: unknown;
  group: string;
  members: string[];
  created_at: number;
}

export interface GrantDoc {
  [k: string]: unknown;
  resource_type: string;
  resource_id: string;
  /** `${resource_type}:${resource_id}` (indexed). */
  resource_key: string;
  principal_type: string;
  principal: string;
  /** `${principal_type}:${principal}` (indexed). */
  principal_key: string;
  permission: string;
}

export const resourceKey = (type: string, id: string): string => `${type}:${id}`;
export const principalKey = (type: string, name: string): string => `${type}:${name}`;

const types = new Set<string>(IDENTITY_EVENT_TYPES);

async function apply(e: IdentityEvent, event: RecordedEvent, w: ReadModelWriter): Promise<void> {
  switch (e.type) {
    case 'UserCreated':
      return w.put(USERS, e.data.username, {
        username: e.data.username,
        user_id: event.position,
        password_hash: e.data.passwordHash,
        is_admin: e.data.isAdmin,
        created_at: event.occurredAt,
      } satisfies UserDoc);
    case 'UserPasswordChanged':
    case 'UserAdminChanged': {
      const doc = await w.get<UserDoc>(USERS, e.data.username);
      if (doc === undefined) return;
      return w.put(
        USERS,
        e.data.username,
        e.type === 'UserPasswordChanged'
          ? { ...doc, password_hash: e.data.passwordHash }
          : { ...doc, is_admin: e.data.isAdmin },
      );
    }
    case 'UserDeleted':
      return w.delete(USERS, e.data.username);
    case 'ApiTokenCreated':
      return w.put(TOKENS, e.data.tokenId, {
        token_id: e.data.tokenId,
        username: e.data.username,
        name: e.data.name,
        secret_hash: e.data.secretHash,
        created_at: event.occurredAt,
        expires_at: e.data.expiresAt,
        revoked_at: null,
      } satisfies TokenDoc);
    case 'ApiTokenRevoked': {
      const doc = await w.get<TokenDoc>(TOKENS, e.data.tokenId);
      if (doc === undefined) return;
      return w.put(TOKENS, e.data.tokenId, { ...doc, revoked_at: event.occurredAt });
    }
    case 'GroupCreated':
      return w.put(GROUPS, e.data.group, {
        group: e.data.group,
        members: [],
        created_at: event.occurredAt,
      } satisfies GroupDoc);
    case 'GroupDeleted':
      return w.delete(GROUPS, e.data.group);
    case 'GroupMemberAdded':
    case 'GroupMemberRemoved': {
      const doc = await w.get<GroupDoc>(GROUPS, e.data.group);
      if (doc === undefined) return;
      const others = doc.members.filter((m) => m !== e.data.username);
      return w.put(GROUPS, e.data.group, {
        ...doc,
        members: e.type === 'GroupMemberAdded' ? [...others, e.data.username].sort() : others,
      });
    }
    case 'PermissionGranted':
    case 'PermissionRevoked': {
      const rk = resourceKey(e.data.resourceType, e.data.resourceId);
      const pk = principalKey(e.data.principalType, e.data.principal);
      const id = `${rk}|${pk}`;
      if (e.type === 'PermissionRevoked') return w.delete(GRANTS, id);
      return w.put(GRANTS, id, {
        resource_type: e.data.resourceType,
        resource_id: e.data.resourceId,
        resource_key: rk,
        principal_type: e.data.principalType,
        principal: e.data.principal,
        principal_key: pk,
        permission: e.data.permission,
      } satisfies GrantDoc);
    }
  }
}

/** Users, API tokens, groups and permission grants, as the access checks look them up. */
export const identityProjection: Projection = {
  name: 'identity',
  version: 1,
  collections: [
    { name: USERS, cached: true },
    { name: TOKENS, indexes: ['username'], cached: true },
    { name: GROUPS, cached: true },
    { name: GRANTS, indexes: ['resource_key', 'principal_key'], cached: true },
  ],
  async apply(event, writer) {
    if (types.has(event.type))
      await apply(event as unknown as IdentityEvent & RecordedEvent, event, writer);
  },
};
