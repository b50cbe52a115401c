import { Etcd3, EtcdPermissionDeniedError, EtcdRoleExistsError, EtcdUserExistsError } from 'etcd3';
import type { KeySchema } from '../../kvstore-schema/index.js';
import { KvError, KvPermissionError, toKvError } from './errors.js';
import type { KvClientOptions } from './client.js';
import { permissionRange, planRbac, type RbacPlan, type RbacPlanOptions } from './rbac-plan.js';

/** Setting up etcd users, roles or auth failed; the message names the user or role. */
export class KvRbacError extends KvError {}

export interface RbacSetupOptions extends RbacPlanOptions {
  readonly endpoints: readonly string[];
  readonly credentials?: KvClientOptions['credentials'];
  /** Who runs the setup once auth is on (root); omit while auth is still off or with a root cert. */
  readonly auth?: KvClientOptions['auth'];
  /** Turn `auth enable` on at the end (needs the root user, which the plan always creates). */
  readonly enableAuth?: boolean;
  readonly callTimeoutMs?: number;
}

export interface RbacSetupResult {
  readonly plan: RbacPlan;
  readonly createdRoles: string[];
  readonly createdUsers: string[];
  readonly revoked: number;
  readonly authEnabled: boolean;
}

function fail(what: string, err: unknown): never {
  if (err instanceof EtcdPermissionDeniedError) throw new KvPermissionError(`${what}: permission denied (run as root: --user root --password-file, or a root client certificate)`, { cause: err });
  const e = toKvError(err, what);
  throw new KvRbacError(e.message, { cause: err });
}

const rangeId = (key: Buffer, end: Buffer | undefined): string => `${key.toString('hex')}:${(end ?? Buffer.alloc(0)).toString('hex')}`;

/**
 * Creates the plan's roles and users idempotently: existing ones are kept, permissions are
 * granted again (etcd replaces equal ranges) and ranges no longer in the plan are revoked, so a
 * re-run converges. Passwords of existing users are reset when given.
 */
export async function setupRbac(schema: KeySchema, o: RbacSetupOptions): Promise<RbacSetupResult> {
  const plan = planRbac(schema, o);
  const tls = o.credentials !== undefined;
  const timeout = o.callTimeoutMs ?? 5000;
  const etcd = new Etcd3({
    hosts: o.endpoints.map((e) => (/^https?:\/\//.test(e) ? e : `${tls ? 'https' : 'http'}://${e}`)),
    ...(o.credentials !== undefined ? { credentials: { ...o.credentials } } : {}),
    ...(o.auth !== undefined ? { auth: { ...o.auth } } : {}),
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
  });
  const createdRoles: string[] = [];
  const createdUsers: string[] = [];
  let revoked = 0;
  try {
    for (const role of plan.roles) {
      try {
        await etcd.role(role.name).create();
        createdRoles.push(role.name);
      } catch (err) {
        if (!(err instanceof EtcdRoleExistsError)) fail(`create role ${role.name}`, err);
      }
      const want = new Set<string>();
      for (const p of role.permissions) {
        const { key, rangeEnd } = permissionRange(p);
        want.add(rangeId(key, rangeEnd));
        await etcd.auth.roleGrantPermission({ name: role.name, perm: { permType: p.perm, key, range_end: rangeEnd } }).catch((err: unknown) => fail(`grant ${p.perm} ${p.key} to role ${role.name}`, err));
      }
      const got = await etcd.auth.roleGet({ role: role.name }).catch((err: unknown) => fail(`read role ${role.name}`, err));
      for (const perm of got.perm ?? []) {
        if (want.has(rangeId(perm.key, perm.range_end))) continue;
        await etcd.auth.roleRevokePermission({ role: role.name, key: perm.key, range_end: perm.range_end }).catch((err: unknown) => fail(`revoke ${perm.key.toString()} from role ${role.name}`, err));
        revoked += 1;
      }
    }
    // `root` needs the root role (etcd creates that role by itself on `role add root`).
    await etcd.role('root').create().catch((err: unknown) => {
      if (!(err instanceof EtcdRoleExistsError)) fail('create role root', err);
    });
    for (const u of plan.users) {
      try {
        await etcd.auth.userAdd({ name: u.name, password: u.password ?? '', options: { no_password: u.password === undefined } });
        createdUsers.push(u.name);
      } catch (err) {
        if (!(err instanceof EtcdUserExistsError)) fail(`create user ${u.name}`, err);
        if (u.password !== undefined) await etcd.user(u.name).setPassword(u.password).catch((e: unknown) => fail(`set password of user ${u.name}`, e));
      }
      await etcd.user(u.name).addRole(u.role).catch((err: unknown) => fail(`grant role ${u.role} to user ${u.name}`, err));
    }
    if (o.enableAuth === true) await etcd.auth.authEnable().catch((err: unknown) => fail('auth enable', err));
    return { plan, createdRoles, createdUsers, revoked, authEnabled: o.enableAuth === true };
  } finally {
    etcd.close();
  }
}
