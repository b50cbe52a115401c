import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_ROOT, KeyError, KeySchema } from '../../kvstore-schema/index.js';
import { DEFAULT_ADMIN_USER, setupRbac } from '../kvstore/index.js';
import { UsageError, type Command } from './command.js';
import { etcdAuthFromEnv, etcdTlsFromEnv, readSecretFile } from './etcd-tls.js';
import { parseEndpoints } from './identity-commands.js';

function secretFlag(path: string | undefined, flag: string): string | undefined {
  return path === undefined ? undefined : readSecretFile(path, flag);
}

/** DIR/<node> holds that node's password; nodes without a file log in by certificate. */
function nodePasswordsFrom(dir: string | undefined, nodes: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (dir === undefined) return out;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new UsageError(`--node-password-dir ${dir}: cannot read: ${err instanceof Error ? err.message : String(err)}`);
  }
  for (const node of nodes) if (names.includes(node)) out.set(node, readSecretFile(join(dir, node), '--node-password-dir'));
  return out;
}

export const etcdSetupRbacCommand: Command = {
  path: ['etcd', 'setup-rbac'],
  summary: 'create (idempotently) the etcd roles and users that confine each node to its own keys',
  usage: `Usage: ward etcd setup-rbac --nodes n1,n2,... [flags]

Creates a role and a user per node (user name = node name = TLS certificate CN), an admin
role and user that alone can write policies, and the root user etcd needs before auth is
enabled. A node reads the whole root and writes only its node key, its endpoints, its
identity references, the shared identity keys (id/, labels/), the GC leader key and the
schema marker. Re-running converges: missing grants are added, stale ones revoked.

Flags:
  --nodes LIST               comma-separated node names (required)
  --admin-user NAME          admin user (default ${DEFAULT_ADMIN_USER})
  --admin-password-file F    admin password (default: password-less, certificate CN only)
  --root-password-file F     root password (default: password-less, certificate CN root)
  --node-password-dir DIR    DIR/<node> holds a node's password (default: certificates only)
  --enable-auth              run \`auth enable\` at the end
  --etcd host:port,...       etcd endpoints (default: $WARD_ETCD_ENDPOINTS or 127.0.0.1:2379)
  --root PREFIX              key root in etcd (default: $WARD_ETCD_ROOT or ${DEFAULT_ROOT})

Connects with WARD_ETCD_CA_FILE/CERT_FILE/KEY_FILE (TLS) and, once auth is on,
WARD_ETCD_USER + WARD_ETCD_PASSWORD_FILE (or a root client certificate).`,
  async run(ctx) {
    const { values, positionals } = parseArgs({
      args: [...ctx.argv],
      options: {
        nodes: { type: 'string' },
        'admin-user': { type: 'string' },
        'admin-password-file': { type: 'string' },
        'root-password-file': { type: 'string' },
        'node-password-dir': { type: 'string' },
        'enable-auth': { type: 'boolean' },
        etcd: { type: 'string' },
        root: { type: 'string' },
      },
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    if (values.nodes === undefined) throw new UsageError('--nodes is required');
    const nodes = values.nodes.split(',').map((s) => s.trim()).filter((s) => s !== '');
    let schema: KeySchema;
    try {
      schema = new KeySchema(values.root ?? ctx.env['WARD_ETCD_ROOT'] ?? DEFAULT_ROOT);
    } catch (err) {
      throw new UsageError(`--root: ${err instanceof KeyError ? err.message : String(err)}`);
    }
    const endpoints = parseEndpoints(values.etcd, ctx.env);
    const options = {
      endpoints,
      nodes,
      adminUser: values['admin-user'] ?? DEFAULT_ADMIN_USER,
      adminPassword: secretFlag(values['admin-password-file'], '--admin-password-file'),
      rootPassword: secretFlag(values['root-password-file'], '--root-password-file'),
      nodePasswords: nodePasswordsFrom(values['node-password-dir'], nodes),
      enableAuth: values['enable-auth'] === true,
      ...etcdTlsFromEnv(ctx.env),
      ...etcdAuthFromEnv(ctx.env),
    };
    let result;
    try {
      result = await setupRbac(schema, options);
    } catch (err) {
      // Bad node or user names are usage errors; etcd failures keep their typed error.
      if (err instanceof RangeError || err instanceof KeyError) throw new UsageError(`--nodes/--admin-user: ${err.message}`);
      throw err;
    }
    for (const r of result.plan.roles) ctx.stdout.write(`role ${r.name}: ${result.createdRoles.includes(r.name) ? 'created' : 'exists'}, ${r.permissions.length} permission(s)\n`);
    for (const u of result.plan.users) ctx.stdout.write(`user ${u.name} (role ${u.role}, ${u.password === undefined ? 'certificate' : 'password'}): ${result.createdUsers.includes(u.name) ? 'created' : 'exists'}\n`);
    if (result.revoked > 0) ctx.stdout.write(`revoked ${result.revoked} stale permission(s)\n`);
    ctx.stdout.write(result.authEnabled ? 'auth enabled\n' : 'auth not changed (pass --enable-auth to turn it on)\n');
    return 0;
  },
};

export const ETCD_COMMANDS: readonly Command[] = [etcdSetupRbacCommand];
