import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { decodeValue, encodeValue, DEFAULT_ROOT, KeyError, KeySchema } from '../../kvstore-schema/index.js';
import { policyValueFromText } from '../daemon/index.js';
import { KvClient, silentLogger } from '../kvstore/index.js';
import { UsageError, type Command, type CommandContext } from './command.js';
import { etcdAuthFromEnv, etcdTlsFromEnv } from './etcd-tls.js';
import { parseEndpoints } from './identity-commands.js';
import { renderTable } from './output.js';

const ETCD_OPTIONS = { etcd: { type: 'string' }, root: { type: 'string' } } as const;
const ETCD_HELP = `  --etcd host:port,...   etcd endpoints (default: $WARD_ETCD_ENDPOINTS or 127.0.0.1:2379)
  --root PREFIX          key root in etcd (default: $WARD_ETCD_ROOT or ward/)`;

function schemaOf(flag: string | undefined, env: NodeJS.ProcessEnv): KeySchema {
  try {
    return new KeySchema(flag ?? env['WARD_ETCD_ROOT'] ?? DEFAULT_ROOT);
  } catch (err) {
    throw new UsageError(`--root: ${err instanceof KeyError ? err.message : String(err)}`);
  }
}

/** Runs fn with a short-lived etcd client (CLI calls: short deadlines, always closed). */
async function withEtcd<T>(values: { etcd?: string | undefined; root?: string | undefined }, ctx: CommandContext, fn: (c: KvClient, s: KeySchema) => Promise<T>): Promise<T> {
  const endpoints = parseEndpoints(values.etcd, ctx.env);
  const schema = schemaOf(values.root, ctx.env);
  const client = new KvClient({ endpoints, logger: silentLogger(), attemptTimeoutMs: 1500, callTimeoutMs: 4000, ...etcdTlsFromEnv(ctx.env), ...etcdAuthFromEnv(ctx.env) });
  try {
    return await fn(client, schema);
  } finally {
    client.close();
  }
}

const one = (positionals: string[], what: string): string => {
  if (positionals.length !== 1) throw new UsageError(`give exactly one ${what}`);
  return positionals[0]!;
};

export const policyImportCommand: Command = {
  path: ['policy', 'import'],
  summary: 'validate a policy file and store it in etcd for the whole cluster',
  usage: `Usage: ward policy import FILE [--name NAME] [flags]

Validates every rule of FILE (YAML or JSON: rules, or CiliumNetworkPolicy documents); any
error rejects the whole file. Stores it as one policy (NAME, else the file's metadata.name);
importing the same name again replaces it (the etcd revision is the policy's revision).

Flags:
  --name NAME            policy name (default: the documents' metadata.name)
${ETCD_HELP}`,
  async run(ctx) {
    const { values, positionals } = parseArgs({ args: [...ctx.argv], options: { ...ETCD_OPTIONS, name: { type: 'string' } }, allowPositionals: true, strict: true });
    const file = one(positionals, 'policy FILE');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const value = policyValueFromText(text, basename(file), values.name, Date.now());
    const rev = await withEtcd(values, ctx, async (client, schema) => {
      return client.put(schema.policyKey(value.name), encodeValue('policy', value));
    });
    ctx.stdout.write(`policy ${value.name} imported: ${value.rules.length} rule(s), revision ${rev}\n`);
    return 0;
  },
};

export const policyListCommand: Command = {
  path: ['policy', 'list'],
  summary: 'list the policies stored in etcd',
  usage: `Usage: ward policy list [flags]

Flags:
${ETCD_HELP}
  -o, --output FORMAT    table (default) or json`,
  async run(ctx) {
    const { values, positionals } = parseArgs({ args: [...ctx.argv], options: { ...ETCD_OPTIONS, output: { type: 'string', short: 'o' } }, allowPositionals: true, strict: true });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const rows = await withEtcd(values, ctx, async (client, schema) => {
      const list = await client.listPrefix(schema.policies);
      return list.kvs.map((kv) => {
        const name = schema.parsePolicyKey(kv.key.toString());
        try {
          const v = decodeValue('policy', kv.value);
          return { name, revision: kv.mod_revision, rules: v.rules.length, description: v.description, updatedAtMs: v.updatedAtMs };
        } catch (err) {
          return { name, revision: kv.mod_revision, rules: 0, description: `(unreadable: ${err instanceof Error ? err.message : String(err)})`, updatedAtMs: 0 };
        }
      });
    });
    if (values.output === 'json') ctx.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else ctx.stdout.write(renderTable(['NAME', 'REVISION', 'RULES', 'DESCRIPTION'], rows.map((r) => [r.name, r.revision, String(r.rules), r.description])));
    return 0;
  },
};

export const policyGetCommand: Command = {
  path: ['policy', 'get'],
  summary: 'show one stored policy (its rules as YAML, or JSON)',
  usage: `Usage: ward policy get NAME [flags]

Exit status 1 when it does not exist.

Flags:
${ETCD_HELP}
  -o, --output FORMAT    yaml (default) or json`,
  async run(ctx) {
    const { values, positionals } = parseArgs({ args: [...ctx.argv], options: { ...ETCD_OPTIONS, output: { type: 'string', short: 'o' } }, allowPositionals: true, strict: true });
    const name = one(positionals, 'policy NAME');
    const got = await withEtcd(values, ctx, async (client, schema) => client.get(schema.policyKey(name)));
    if (got.kv === undefined) {
      ctx.stderr.write(`ward policy get: no policy ${JSON.stringify(name)}\n`);
      return 1;
    }
    const v = decodeValue('policy', got.kv.value);
    const out = { name: v.name, revision: got.kv.mod_revision, description: v.description, updatedAtMs: v.updatedAtMs, rules: v.rules };
    ctx.stdout.write(values.output === 'json' ? `${JSON.stringify(out, null, 2)}\n` : stringify(out));
    return 0;
  },
};

export const policyDeleteCommand: Command = {
  path: ['policy', 'delete'],
  summary: 'delete a stored policy (every agent drops its rules)',
  usage: `Usage: ward policy delete NAME [flags]

Exit status 1 when it does not exist.

Flags:
${ETCD_HELP}`,
  async run(ctx) {
    const { values, positionals } = parseArgs({ args: [...ctx.argv], options: ETCD_OPTIONS, allowPositionals: true, strict: true });
    const name = one(positionals, 'policy NAME');
    const n = await withEtcd(values, ctx, async (client, schema) => client.delete(schema.policyKey(name)));
    if (n === 0) {
      ctx.stderr.write(`ward policy delete: no policy ${JSON.stringify(name)}\n`);
      return 1;
    }
    ctx.stdout.write(`policy ${name} deleted\n`);
    return 0;
  },
};

export const POLICY_COMMANDS: readonly Command[] = [policyImportCommand, policyListCommand, policyGetCommand, policyDeleteCommand];
