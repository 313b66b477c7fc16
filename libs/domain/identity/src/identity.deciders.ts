import { MlflowError, invalidParameter, notFound, type Decider } from '@ledgerflow/contracts';
import type {
  GrantData,
  GrantEvent,
  GroupEvent,
  TokenEvent,
  UserEvent,
} from './identity.events.js';
import type { Permission, PrincipalType, ResourceType } from './permissions.js';

const exists = (message: string): MlflowError =>
  new MlflowError('RESOURCE_ALREADY_EXISTS', message);

const NAME = /^[\w.@-]{1,256}$/;

/** User and group names: letters, digits, `_`, `.`, `@`, `-`; at most 256 characters. */
export function validatePrincipalName(kind: 'user' | 'group', name: string): string {
  if (!NAME.test(name))
    throw invalidParameter(
      `Invalid ${kind} name '${name.slice(0, 64)}': use 1-256 letters, digits, '_', '.', '@' or '-'.`,
    );
  return name;
}

// ---------------------------------------------------------------------------------------------
// Users

export type UserCommand =
  | { type: 'CreateUser'; username: string; passwordHash: string; isAdmin: boolean }
  | { type: 'ChangePassword'; username: string; passwordHash: string }
  | { type: 'SetAdmin'; username: string; isAdmin: boolean }
  | { type: 'DeleteUser'; username: string };

export interface UserState {
  readonly exists: boolean;
  readonly isAdmin: boolean;
}

export const userDecider: Decider<UserCommand, UserState, UserEvent> = {
  initialState: () => ({ exists: false, isAdmin: false }),
  decide(command, state) {
    if (command.type === 'CreateUser') {
      validatePrincipalName('user', command.username);
      if (state.exists) throw exists(`User '${command.username}' already exists.`);
      return [
        {
          type: 'UserCreated',
          data: {
            username: command.username,
            passwordHash: command.passwordHash,
            isAdmin: command.isAdmin,
          },
        },
      ];
    }
    if (!state.exists) throw notFound(`User with username=${command.username} not found`);
    switch (command.type) {
      case 'ChangePassword':
        return [
          {
            type: 'UserPasswordChanged',
            data: { username: command.username, passwordHash: command.passwordHash },
          },
        ];
      case 'SetAdmin':
        if (state.isAdmin === command.isAdmin) return [];
        return [
          {
            type: 'UserAdminChanged',
            data: { username: command.username, isAdmin: command.isAdmin },
          },
        ];
      case 'DeleteUser':
        return [{ type: 'UserDeleted', data: { username: command.username } }];
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'UserCreated':
        return { exists: true, isAdmin: event.data.isAdmin };
      case 'UserAdminChanged':
        return { ...state, isAdmin: event.data.isAdmin };
      case 'UserDeleted':
        return { exists: false, isAdmin: false };
      default:
        return state;
    }
  },
};

// ---------------------------------------------------------------------------------------------
// API tokens

export type TokenCommand =
  | {
      type: 'CreateToken';
      tokenId: string;
      username: string;
      name: string;
      secretHash: string;
      expiresAt: number | null;
    }
  | { type: 'RevokeToken'; tokenId: string };

export interface TokenState {
  readonly exists: boolean;
  readonly revoked: boolean;
  readonly username: string;
}

export const tokenDecider: Decider<TokenCommand, TokenState, TokenEvent> = {
  initialState: () => ({ exists: false, revoked: false, username: '' }),
  decide(command, state, ctx) {
    if (command.type === 'CreateToken') {
      if (state.exists) throw exists(`Token ${command.tokenId} already exists.`);
      if (command.name.length > 256)
        throw invalidParameter('Token name is longer than 256 characters.');
      if (command.expiresAt !== null && command.expiresAt <= ctx.now)
        throw invalidParameter('Token expiry must be in the future.');
      return [
        {
          type: 'ApiTokenCreated',
          data: {
            tokenId: command.tokenId,
            username: command.username,
            name: command.name,
            secretHash: command.secretHash,
            expiresAt: command.expiresAt,
          },
        },
      ];
    }
    if (!state.exists) throw notFound(`Token ${command.tokenId} not found`);
    if (state.revoked) return [];
    return [
      { type: 'ApiTokenRevoked', data: { tokenId: command.tokenId, username: state.username } },
    ];
  },
  evolve(state, event) {
    if (event.type === 'ApiTokenCreated')
      return { exists: true, revoked: false, username: event.data.username };
    return { ...state, revoked: true };
  },
};

// ---------------------------------------------------------------------------------------------
// Groups

export type GroupCommand =
  | { type: 'CreateGroup'; group: string }
  | { type: 'DeleteGroup'; group: string }
  | { type: 'AddGroupMember'; group: string; username: string }
  | { type: 'RemoveGroupMember'; group: string; username: string };

export interface GroupState {
  readonly exists: boolean;
  readonly members: readonly string[];
}

export const groupDecider: Decider<GroupCommand, GroupState, GroupEvent> = {
  initialState: () => ({ exists: false, members: [] }),
  decide(command, state) {
    if (command.type === 'CreateGroup') {
      validatePrincipalName('group', command.group);
      if (state.exists) throw exists(`Group '${command.group}' already exists.`);
      return [{ type: 'GroupCreated', data: { group: command.group } }];
    }
    if (!state.exists) throw notFound(`Group with name=${command.group} not found`);
    switch (command.type) {
      case 'DeleteGroup':
        return [{ type: 'GroupDeleted', data: { group: command.group } }];
      case 'AddGroupMember':
        if (state.members.includes(command.username)) return [];
        return [
          { type: 'GroupMemberAdded', data: { group: command.group, username: command.username } },
        ];
      case 'RemoveGroupMember':
        if (!state.members.includes(command.username))
          throw notFound(`User '${command.username}' is not a member of group '${command.group}'`);
        return [
          {
            type: 'GroupMemberRemoved',
            data: { group: command.group, username: command.username },
          },
        ];
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'GroupCreated':
        return { exists: true, members: [] };
      case 'GroupDeleted':
        return { exists: false, members: [] };
      case 'GroupMemberAdded':
        return { ...state, members: [...state.members, event.data.username] };
      case 'GroupMemberRemoved':
        return { ...state, members: state.members.filter((m) => m !== event.data.username) };
    }
  },
};

// ---------------------------------------------------------------------------------------------
// Permission grants on one resource (an experiment or a registered model)

/**
 * `create` fails if the principal already has a grant (MLflow's permissions/create), `update`
 * and `delete` fail if it has none; `set` creates or replaces (creator grants, group grants).
 */
export type GrantCommand =
  | (GrantData & { type: 'Grant'; mode: 'create' | 'update' | 'set'; permission: Permission })
  | (GrantData & { type: 'Revoke' });

export interface GrantState {
  /** `${principalType}:${principal}` → permission. */
  readonly grants: Readonly<Record<string, Permission>>;
}

export const grantKey = (principalType: PrincipalType, principal: string): string =>
  `${principalType}:${principal}`;

function describe(c: GrantData): string {
  const what = c.resourceType === 'experiment' ? 'experiment_id' : 'name';
  return `${what}=${c.resourceId} and ${c.principalType === 'user' ? 'username' : 'group'}=${c.principal}`;
}

export const grantDecider: Decider<GrantCommand, GrantState, GrantEvent> = {
  initialState: () => ({ grants: {} }),
  decide(command, state) {
    const { resourceType, resourceId, principalType, principal } = command;
    const data: GrantData = { resourceType, resourceId, principalType, principal };
    const current = state.grants[grantKey(principalType, principal)];
    if (command.type === 'Revoke') {
      if (current === undefined) throw notFound(`No permission found for ${describe(command)}`);
      return [{ type: 'PermissionRevoked', data }];
    }
    if (command.mode === 'create' && current !== undefined)
      throw exists(`Permission already exists for ${describe(command)}`);
    if (command.mode === 'update' && current === undefined)
      throw notFound(`No permission found for ${describe(command)}`);
    if (current === command.permission) return [];
    return [{ type: 'PermissionGranted', data: { ...data, permission: command.permission } }];
  },
  evolve(state, event) {
    const key = grantKey(event.data.principalType, event.data.principal);
    const grants = { ...state.grants };
    if (event.type === 'PermissionGranted') grants[key] = event.data.permission;
    else delete grants[key];
    return { grants };
  },
};

export type { ResourceType };
