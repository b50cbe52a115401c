import { checkName, prefixRangeEnd, type KeySchema } from '../../kvstore-schema/index.js';

/** One etcd key permission: an exact key, or a prefix (`[key, rangeEnd)`). */
export interface RbacPermission {
  readonly perm: 'Read' | 'Write' | 'Readwrite';
  readonly key: string;
  readonly prefix: boolean;
}

export interface RbacRole {
  readonly name: string;
  readonly permissions: readonly RbacPermission[];
}

export interface RbacUser {
  readonly name: string;
  readonly role: string;
  /** undefined: a password-less user that logs in by its TLS client certificate (CN = name). */
  readonly password: string | undefined;
}

export interface RbacPlan {
  readonly roles: readonly RbacRole[];
  readonly users: readonly RbacUser[];
}

export interface RbacPlanOptions {
  readonly nodes: readonly string[];
  readonly adminUser?: string;
  readonly adminPassword?: string | undefined;
  readonly rootPassword?: string | undefined;
  /** Per-node passwords (tests, password auth); nodes without one log in by certificate. */
  readonly nodePasswords?: ReadonlyMap<string, string>;
}

export const DEFAULT_ADMIN_USER = 'ward-admin';
export const ADMIN_ROLE = 'ward-admin';
export const NODE_ROLE_PREFIX = 'ward-node-';

/**
 * What `ward etcd setup-rbac` creates. A node reads the whole root and writes only:
 * its node key, its endpoint prefix and its reference prefix (all its own), plus the shared
 * identity keys (id/, labels/) because allocation is a create-if-absent transaction by whichever
 * node first sees a label set, the GC leader key and the schema marker. Policies: admin only.
 */
export function planRbac(schema: KeySchema, o: RbacPlanOptions): RbacPlan {
  if (o.nodes.length === 0) throw new RangeError('nodes: at least one node name is required');
  const admin = checkName('admin user', o.adminUser ?? DEFAULT_ADMIN_USER);
  const seen = new Set<string>();
  const roles: RbacRole[] = [{ name: ADMIN_ROLE, permissions: [{ perm: 'Readwrite', key: schema.root, prefix: true }] }];
  const users: RbacUser[] = [
    { name: 'root', role: 'root', password: o.rootPassword },
    { name: admin, role: ADMIN_ROLE, password: o.adminPassword },
  ];
  for (const node of o.nodes) {
    checkName('node', node);
    if (seen.has(node)) throw new RangeError(`nodes: ${node} is listed twice`);
    if (node === 'root' || node === admin) throw new RangeError(`nodes: ${node} clashes with the root or admin user name`);
    seen.add(node);
    const role = `${NODE_ROLE_PREFIX}${node}`;
    roles.push({
      name: role,
      permissions: [
        { perm: 'Read', key: schema.root, prefix: true },
        { perm: 'Readwrite', key: schema.nodeKey(node), prefix: false },
        { perm: 'Readwrite', key: schema.endpointsNodePrefix(node), prefix: true },
        { perm: 'Readwrite', key: schema.refsNodePrefix(node), prefix: true },
        { perm: 'Readwrite', key: schema.ids, prefix: true },
        { perm: 'Readwrite', key: schema.labels, prefix: true },
        { perm: 'Readwrite', key: schema.leaders, prefix: true },
        { perm: 'Readwrite', key: schema.schemaMarkerKey, prefix: false },
      ],
    });
    users.push({ name: node, role, password: o.nodePasswords?.get(node) });
  }
  return { roles, users };
}

/** etcd's [key, range_end) for a permission; an empty range_end means the exact key. */
export function permissionRange(p: RbacPermission): { key: Buffer; rangeEnd: Buffer } {
  return { key: Buffer.from(p.key), rangeEnd: p.prefix ? prefixRangeEnd(p.key) : Buffer.alloc(0) };
}
