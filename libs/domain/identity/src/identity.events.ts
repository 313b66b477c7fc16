import type { DomainEvent } from '@ledgerflow/contracts';
import type { Permission, PrincipalType, ResourceType } from './permissions.js';

export type UserCreated = DomainEvent<
  'UserCreated',
  { username: string; passwordHash: string; isAdmin: boolean }
>;
export type UserPasswordChanged = DomainEvent<
  'UserPasswordChanged',
  { username: string; passwordHash: string }
>;
export type UserAdminChanged = DomainEvent<
  'UserAdminChanged',
  { username: string; isAdmin: boolean }
>;
export type UserDeleted = DomainEvent<'UserDeleted', { username: string }>;
export type UserEvent = UserCreated | UserPasswordChanged | UserAdminChanged | UserDeleted;

export type ApiTokenCreated = DomainEvent<
  'ApiTokenCreated',
  {
    tokenId: string;
    username: string;
    name: string;
    /** sha256 of the secret part, hex: the token itself is never stored. */
    secretHash: string;
    /** Epoch ms, or null for a token that does not expire. */
    expiresAt: number | null;
  }
>;
export type ApiTokenRevoked = DomainEvent<'ApiTokenRevoked', { tokenId: string; username: string }>;
export type TokenEvent = ApiTokenCreated | ApiTokenRevoked;

export type GroupCreated = DomainEvent<'GroupCreated', { group: string }>;
export type GroupDeleted = DomainEvent<'GroupDeleted', { group: string }>;
export type GroupMemberAdded = DomainEvent<'GroupMemberAdded', { group: string; username: string }>;
export type GroupMemberRemoved = DomainEvent<
  'GroupMemberRemoved',
  { group: string; username: string }
>;
export type GroupEvent = GroupCreated | GroupDeleted | GroupMemberAdded | GroupMemberRemoved;

export interface GrantData {
  resourceType: ResourceType;
  resourceId: string;
  principalType: PrincipalType;
  principal: string;
}
export type PermissionGranted = DomainEvent<
  'PermissionGranted',
  GrantData & { permission: Permission }
>;
export type PermissionRevoked = DomainEvent<'PermissionRevoked', GrantData>;
export type GrantEvent = PermissionGranted | PermissionRevoked;

export type IdentityEvent = UserEvent | TokenEvent | GroupEvent | GrantEvent;

export const IDENTITY_EVENT_TYPES: readonly IdentityEvent['type'][] = [
  'UserCreated',
  'UserPasswordChanged',
  'UserAdminChanged',
  'UserDeleted',
  'ApiTokenCreated',
  'ApiTokenRevoked',
  'GroupCreated',
  'GroupDeleted',
  'GroupMemberAdded',
  'GroupMemberRemoved',
  'PermissionGranted',
  'PermissionRevoked',
];

export const userStream = (username: string): string => `user-${username}`;
export const tokenStream = (tokenId: string): string => `api-token-${tokenId}`;
export const groupStream = (group: string): string => `group-${group}`;
export const aclStream = (resourceType: ResourceType, resourceId: string): string =>
  `acl-${resourceType}-${resourceId}`;
