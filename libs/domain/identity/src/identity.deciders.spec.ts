import { deciderSpec } from '@ledgerflow/testing';
import { grantDecider, groupDecider, tokenDecider, userDecider } from './identity.deciders.js';
import type { GrantEvent } from './identity.events.js';
import { allows, effectivePermission } from './permissions.js';

describe('userDecider', () => {
  const spec = deciderSpec(userDecider);
  const created = {
    type: 'UserCreated' as const,
    data: { username: 'ann', passwordHash: 'h', isAdmin: false },
  };
  it('creates a user once, with a valid name', () => {
    spec
      .given([])
      .when({ type: 'CreateUser', username: 'ann', passwordHash: 'h', isAdmin: false })
      .then([created]);
    spec
      .given([created])
      .when({ type: 'CreateUser', username: 'ann', passwordHash: 'x', isAdmin: false })
      .thenThrows('RESOURCE_ALREADY_EXISTS');
    spec
      .given([])
      .when({ type: 'CreateUser', username: 'a b', passwordHash: 'h', isAdmin: false })
      .thenThrows('INVALID_PARAMETER_VALUE');
  });
  it('changes password and admin flag of existing users only', () => {
    spec
      .given([])
      .when({ type: 'ChangePassword', username: 'ann', passwordHash: 'x' })
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
    spec
      .given([created])
      .when({ type: 'SetAdmin', username: 'ann', isAdmin: true })
      .then([{ type: 'UserAdminChanged', data: { username: 'ann', isAdmin: true } }]);
    spec.given([created]).when({ type: 'SetAdmin', username: 'ann', isAdmin: false }).then([]);
    spec
      .given([created, { type: 'UserDeleted', data: { username: 'ann' } }])
      .when({ type: 'DeleteUser', username: 'ann' })
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
  });
});

describe('tokenDecider', () => {
  const spec = deciderSpec(tokenDecider);
  it('refuses an expiry in the past and revokes once', () => {
    spec
      .given([])
      .when({
        type: 'CreateToken',
        tokenId: 't',
        username: 'ann',
        name: 'ci',
        secretHash: 'h',
        expiresAt: 1,
      })
      .thenThrows('INVALID_PARAMETER_VALUE', /future/);
    const created = {
      type: 'ApiTokenCreated' as const,
      data: { tokenId: 't', username: 'ann', name: 'ci', secretHash: 'h', expiresAt: null },
    };
    spec
      .given([created])
      .when({ type: 'RevokeToken', tokenId: 't' })
      .then([{ type: 'ApiTokenRevoked', data: { tokenId: 't', username: 'ann' } }]);
    spec
      .given([created, { type: 'ApiTokenRevoked', data: { tokenId: 't', username: 'ann' } }])
      .when({ type: 'RevokeToken', tokenId: 't' })
      .then([]);
  });
});

describe('groupDecider', () => {
  const spec = deciderSpec(groupDecider);
  it('adds members once and removes only members', () => {
    const created = { type: 'GroupCreated' as const, data: { group: 'team' } };
    spec
      .given([created])
      .when({ type: 'AddGroupMember', group: 'team', username: 'ann' })
      .then([{ type: 'GroupMemberAdded', data: { group: 'team', username: 'ann' } }]);
    spec
      .given([created])
      .when({ type: 'RemoveGroupMember', group: 'team', username: 'ann' })
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
    spec
      .given([])
      .when({ type: 'AddGroupMember', group: 'team', username: 'ann' })
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
  });
});

describe('grantDecider', () => {
  const spec = deciderSpec(grantDecider);
  const base = {
    resourceType: 'experiment' as const,
    resourceId: '1',
    principalType: 'user' as const,
    principal: 'ann',
  };
  const granted: GrantEvent = { type: 'PermissionGranted', data: { ...base, permission: 'READ' } };
  it("follows MLflow's create / update / delete rules", () => {
    spec
      .given([])
      .when({ type: 'Grant', mode: 'create', permission: 'READ', ...base })
      .then([granted]);
    spec
      .given([granted])
      .when({ type: 'Grant', mode: 'create', permission: 'EDIT', ...base })
      .thenThrows('RESOURCE_ALREADY_EXISTS');
    spec
      .given([])
      .when({ type: 'Grant', mode: 'update', permission: 'EDIT', ...base })
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
    spec
      .given([])
      .when({ type: 'Revoke', ...base })
      .thenThrows('RESOURCE_DOES_NOT_EXIST');
    spec
      .given([granted])
      .when({ type: 'Revoke', ...base })
      .then([{ type: 'PermissionRevoked', data: base }]);
  });
});

describe('permissions', () => {
  it("maps levels to capabilities as MLflow's auth app", () => {
    expect(allows('READ', 'read')).toBe(true);
    expect(allows('READ', 'update')).toBe(false);
    expect(allows('EDIT', 'update')).toBe(true);
    expect(allows('EDIT', 'delete')).toBe(false);
    expect(allows('MANAGE', 'manage')).toBe(true);
    expect(allows('NO_PERMISSIONS', 'read')).toBe(false);
  });
  it('prefers the user grant, then the best group grant, then the default', () => {
    expect(effectivePermission('NO_PERMISSIONS', ['MANAGE'], 'READ')).toBe('NO_PERMISSIONS');
    expect(effectivePermission(undefined, ['READ', 'EDIT'], 'NO_PERMISSIONS')).toBe('EDIT');
    expect(effectivePermission(undefined, [], 'READ')).toBe('READ');
  });
});
