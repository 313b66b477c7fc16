/** MLflow's permission levels (fact sheet §7) and what each allows. */
export type Permission = 'READ' | 'EDIT' | 'MANAGE' | 'NO_PERMISSIONS';
export const PERMISSIONS: readonly Permission[] = ['READ', 'EDIT', 'MANAGE', 'NO_PERMISSIONS'];

/** What an operation needs on its resource. */
export type Capability = 'read' | 'update' | 'delete' | 'manage';

const ALLOWS: Readonly<Record<Permission, readonly Capability[]>> = {
  READ: ['read'],
  EDIT: ['read', 'update'],
  MANAGE: ['read', 'update', 'delete', 'manage'],
  NO_PERMISSIONS: [],
};

/** Rank for "the highest of several grants" (a user's groups). */
const RANK: Readonly<Record<Permission, number>> = {
  NO_PERMISSIONS: 0,
  READ: 1,
  EDIT: 2,
  MANAGE: 3,
};

export function allows(permission: Permission, capability: Capability): boolean {
  return ALLOWS[permission].includes(capability);
}

export function isPermission(v: unknown): v is Permission {
  return typeof v === 'string' && (PERMISSIONS as readonly string[]).includes(v);
}

/** Kinds of resource a permission is granted on. */
export type ResourceType = 'experiment' | 'registered_model';

/** Who a grant is for: one user, or every member of a group. */
export type PrincipalType = 'user' | 'group';

/**
 * The permission a user has on a resource: their own grant wins; else the highest grant of their
 * groups; else the configured default (MLflow's default_permission).
 */
export function effectivePermission(
  userGrant: Permission | undefined,
  groupGrants: readonly Permission[],
  defaultPermission: Permission,
): Permission {
  if (userGrant !== undefined) return userGrant;
  if (groupGrants.length > 0)
    return groupGrants.reduce((a, b) => (RANK[b] > RANK[a] ? b : a), 'NO_PERMISSIONS');
  return defaultPermission;
}
