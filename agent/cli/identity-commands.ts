import { parseArgs } from 'node:util';
import { asNumericIdentity, isReserved, LabelSet, RESERVED_LABEL_NAMES, reservedLabels, type LabelSet as LabelSetT } from '../../identity/index.js';
import { DEFAULT_ROOT, KeyError, KeySchema } from '../../kvstore-schema/index.js';
import { KvClient, readIdentities, silentLogger } from '../kvstore/index.js';
import { UsageError, type Command, type CommandContext } from './command.js';
import { etcdAuthFromEnv, etcdTlsFromEnv } from './etcd-tls.js';
import { parseOutputFormat, renderTable } from './output.js';

const ENDPOINT_RE = /^(https?:\/\/)?[A-Za-z0-9.-]+:\d{1,5}$|^(https?:\/\/)?\[[0-9a-fA-F:]+\]:\d{1,5}$/;

/** `--etcd` flag, else WARD_ETCD_ENDPOINTS, else 127.0.0.1:2379; each must be host:port. */
export function parseEndpoints(flag: string | undefined, env: NodeJS.ProcessEnv): string[] {
  const source = flag !== undefined ? '--etcd' : 'WARD_ETCD_ENDPOINTS';
  const raw = flag ?? env['WARD_ETCD_ENDPOINTS'] ?? '127.0.0.1:2379';
  const list = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new UsageError(`${source}: no endpoints given`);
  for (const e of list) if (!ENDPOINT_RE.test(e)) throw new UsageError(`${source}: ${JSON.stringify(e)} is not host:port`);
  return list;
}

function schemaOf(flag: string | undefined, env: NodeJS.ProcessEnv): KeySchema {
  const root = flag ?? env['WARD_ETCD_ROOT'] ?? DEFAULT_ROOT;
  try {
    return new KeySchema(root);
  } catch (err) {
    throw new UsageError(`--root: ${err instanceof KeyError ? err.message : String(err)}`);
  }
}

const COMMON_OPTIONS = {
  etcd: { type: 'string' },
  root: { type: 'string' },
  output: { type: 'string', short: 'o' },
} as const;

interface Row {
  readonly id: number;
  readonly labels: string[];
  readonly reserved: boolean;
  readonly referencedBy: string[];
}

function toJson(r: Row): object {
  return { id: r.id, labels: r.labels, reserved: r.reserved, referencedBy: r.referencedBy };
}

function renderRows(ctx: CommandContext, rows: readonly Row[], format: 'table' | 'json', single: boolean): void {
  if (format === 'json') {
    ctx.stdout.write(`${JSON.stringify(single ? toJson(rows[0]!) : rows.map(toJson), null, 2)}\n`);
    return;
  }
  ctx.stdout.write(renderTable(['ID', 'LABELS', 'REFERENCED BY'], rows.map((r) => [String(r.id), r.labels.join(','), r.reserved ? '(reserved)' : r.referencedBy.join(',') || '-'])));
}

/** Reads identities and who references them; bad keys are reported on stderr and skipped. */
async function readAll(ctx: CommandContext, endpoints: string[], schema: KeySchema): Promise<Row[]> {
  const client = new KvClient({ endpoints, logger: silentLogger(), attemptTimeoutMs: 1500, callTimeoutMs: 4000, ...etcdTlsFromEnv(ctx.env), ...etcdAuthFromEnv(ctx.env) });
  try {
    const [identities, refs] = await Promise.all([readIdentities(client, schema), client.listPrefix(schema.refs)]).catch((err: unknown) => {
      throw new Error(`cannot read etcd at ${endpoints.join(',')}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
    const refNodes = new Map<string, string[]>();
    for (const kv of refs.kvs) {
      try {
        const { node, labels } = schema.parseRefKey(kv.key.toString());
        const canonical = LabelSet.of(labels).canonical;
        refNodes.set(canonical, [...(refNodes.get(canonical) ?? []), node]);
      } catch {
        // not a reference key of this layout: ignore
      }
    }
    const rows: Row[] = [];
    for (const r of identities) {
      if (!r.ok) {
        ctx.stderr.write(`ward: skipping ${r.key}: ${r.error}\n`);
        continue;
      }
      const i = r.identity;
      rows.push({ id: i.id, labels: i.labels.toStrings(), reserved: false, referencedBy: (refNodes.get(i.labels.canonical) ?? []).sort() });
    }
    return rows.sort((a, b) => a.id - b.id);
  } finally {
    client.close();
  }
}

function reservedRow(id: number): Row {
  return { id, labels: reservedLabels(id).toStrings(), reserved: true, referencedBy: [] };
}

const ETCD_HELP = `  --etcd host:port,...   etcd endpoints (default: $WARD_ETCD_ENDPOINTS or 127.0.0.1:2379)
  --root PREFIX          key root in etcd (default: $WARD_ETCD_ROOT or ward/)
  -o, --output FORMAT    table (default) or json`;

export const identityListCommand: Command = {
  path: ['identity', 'list'],
  summary: 'list security identities (reserved and cluster-wide from etcd)',
  usage: `Usage: ward identity list [flags]

Lists the reserved identities and every cluster identity in etcd with the nodes referencing it.

Flags:
${ETCD_HELP}
  --no-reserved          leave out the reserved identities`,
  async run(ctx) {
    const { values, positionals } = parseArgs({ args: [...ctx.argv], options: { ...COMMON_OPTIONS, 'no-reserved': { type: 'boolean' } }, allowPositionals: true, strict: true });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const format = parseFormat(values.output);
    const endpoints = parseEndpoints(values.etcd, ctx.env);
    const schema = schemaOf(values.root, ctx.env);
    const rows = await readAll(ctx, endpoints, schema);
    const reserved = values['no-reserved'] === true ? [] : Object.keys(RESERVED_LABEL_NAMES).map((k) => reservedRow(Number(k)));
    renderRows(ctx, [...reserved, ...rows], format, false);
    return 0;
  },
};

export const identityGetCommand: Command = {
  path: ['identity', 'get'],
  summary: 'show one identity by number or by labels',
  usage: `Usage: ward identity get ID [flags]
       ward identity get --labels k=v,source:k2=v2 [flags]

Shows one identity. Exit status 1 when it does not exist.

Flags:
  --labels LIST          comma-separated labels (source:key=value, source optional)
${ETCD_HELP}`,
  async run(ctx) {
    const { values, positionals } = parseArgs({ args: [...ctx.argv], options: { ...COMMON_OPTIONS, labels: { type: 'string' } }, allowPositionals: true, strict: true });
    const format = parseFormat(values.output);
    if ((positionals.length === 0) === (values.labels === undefined)) throw new UsageError('give exactly one of ID or --labels');
    if (positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
    let wanted: { id: number } | { labels: LabelSetT };
    if (values.labels !== undefined) {
      let labels: LabelSetT;
      try {
        labels = LabelSet.parseCsv(values.labels);
      } catch (err) {
        throw new UsageError(`--labels: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (labels.size === 0) throw new UsageError('--labels: no labels given');
      wanted = { labels };
    } else {
      const text = positionals[0]!;
      if (!/^\d+$/.test(text)) throw new UsageError(`ID: ${JSON.stringify(text)} is not a number`);
      try {
        wanted = { id: asNumericIdentity(Number(text)) };
      } catch (err) {
        throw new UsageError(`ID: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (isReserved(wanted.id) && RESERVED_LABEL_NAMES[wanted.id] !== undefined) {
        renderRows(ctx, [reservedRow(wanted.id)], format, true);
        return 0;
      }
    }
    const endpoints = parseEndpoints(values.etcd, ctx.env);
    const schema = schemaOf(values.root, ctx.env);
    const rows = await readAll(ctx, endpoints, schema);
    const found = 'id' in wanted ? rows.find((r) => r.id === wanted.id) : rows.find((r) => LabelSet.parse(r.labels).equals(wanted.labels));
    if (found === undefined) {
      ctx.stderr.write(`ward identity get: no identity ${'id' in wanted ? String(wanted.id) : `with labels ${wanted.labels.toString()}`}\n`);
      return 1;
    }
    renderRows(ctx, [found], format, true);
    return 0;
  },
};

function parseFormat(v: string | undefined): 'table' | 'json' {
  try {
    return parseOutputFormat(v);
  } catch (err) {
    throw new UsageError(`-o: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export const IDENTITY_COMMANDS: readonly Command[] = [identityListCommand, identityGetCommand];
