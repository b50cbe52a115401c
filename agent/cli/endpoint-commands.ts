import { parseArgs } from 'node:util';
import type { EndpointJson } from '../api/index.js';
import { UsageError, type Command, type CommandContext } from './command.js';
import { API_SOCKET_HELP, apiClientFrom } from './api-flags.js';
import { parseOutputFormat, renderTable, type OutputFormat } from './output.js';

const COMMON = { 'api-socket': { type: 'string' }, output: { type: 'string', short: 'o' } } as const;

function format(v: string | undefined): OutputFormat {
  try {
    return parseOutputFormat(v);
  } catch (err) {
    throw new UsageError(`--output: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function render(ctx: CommandContext, eps: readonly EndpointJson[], fmt: OutputFormat, single: boolean): void {
  if (fmt === 'json') {
    ctx.stdout.write(`${JSON.stringify(single ? eps[0] : eps, null, 2)}\n`);
    return;
  }
  const state = (e: EndpointJson): string => (e.lockedDown ? 'locked-down' : e.programmed ? 'ready' : 'pending');
  ctx.stdout.write(
    renderTable(
      ['NAME', 'ID', 'IP', 'IDENTITY', 'IFNAME', 'STATE', 'ENTRIES', 'LABELS'],
      eps.map((e) => [e.name, String(e.id), e.ip, String(e.identity), e.ifname, state(e), String(e.policyEntries), e.labels.join(',')]),
    ),
  );
}

const one = (positionals: string[], what: string): string => {
  if (positionals.length !== 1) throw new UsageError(`give exactly one ${what}`);
  return positionals[0]!;
};

export const endpointAddCommand: Command = {
  path: ['endpoint', 'add'],
  summary: 'add an endpoint: veth into a netns, IP, identity, policy (agent API)',
  usage: `Usage: ward endpoint add --name N --labels k=v,... --netns NAME|PATH [--ip A.B.C.D] [flags]

Joins the network namespace to this host with a veth pair, gives it an IP from the node's
endpoint CIDR (or --ip), allocates its identity, programs its policy and publishes IP -> identity.

Flags:
  --name NAME            endpoint name (lowercase DNS label)
  --labels LIST          comma-separated labels (k=v or source:k=v)
  --netns NAME|PATH      network namespace name (/run/netns/NAME) or path
  --ip A.B.C.D           address inside the node's endpoint CIDR (default: the next free one)
${API_SOCKET_HELP}
  -o, --output FORMAT    table (default) or json`,
  async run(ctx) {
    const { values, positionals } = parseArgs({
      args: [...ctx.argv],
      options: { ...COMMON, name: { type: 'string' }, labels: { type: 'string' }, netns: { type: 'string' }, ip: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const fmt = format(values.output);
    if (values.name === undefined) throw new UsageError('--name is required');
    if (values.labels === undefined) throw new UsageError('--labels is required');
    if (values.netns === undefined) throw new UsageError('--netns is required');
    const labels = values.labels.split(',').map((l) => l.trim()).filter((l) => l !== '');
    const ep = await apiClientFrom(values['api-socket'], ctx.env).addEndpoint({
      name: values.name,
      labels,
      netns: values.netns,
      ...(values.ip !== undefined ? { ip: values.ip } : {}),
    });
    render(ctx, [ep], fmt, true);
    return 0;
  },
};

export const endpointDeleteCommand: Command = {
  path: ['endpoint', 'delete'],
  summary: 'delete an endpoint and everything it was given',
  usage: `Usage: ward endpoint delete NAME [flags]

Detaches its programs, drops its policy map, its ipcache and etcd entries, releases its
identity and removes the veth pair.

Flags:
${API_SOCKET_HELP}`,
  async run(ctx) {
    const { values, positionals } = parseArgs({ args: [...ctx.argv], options: { 'api-socket': { type: 'string' } }, allowPositionals: true, strict: true });
    const name = one(positionals, 'endpoint NAME');
    await apiClientFrom(values['api-socket'], ctx.env).deleteEndpoint(name);
    ctx.stdout.write(`endpoint ${name} deleted\n`);
    return 0;
  },
};

export const endpointListCommand: Command = {
  path: ['endpoint', 'list'],
  summary: "list this node's endpoints",
  usage: `Usage: ward endpoint list [flags]

Flags:
${API_SOCKET_HELP}
  -o, --output FORMAT    table (default) or json`,
  async run(ctx) {
    const { values, positionals } = parseArgs({ args: [...ctx.argv], options: COMMON, allowPositionals: true, strict: true });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const fmt = format(values.output);
    render(ctx, await apiClientFrom(values['api-socket'], ctx.env).listEndpoints(), fmt, false);
    return 0;
  },
};

export const endpointGetCommand: Command = {
  path: ['endpoint', 'get'],
  summary: 'show one endpoint',
  usage: `Usage: ward endpoint get NAME [flags]

Exit status 1 when it does not exist.

Flags:
${API_SOCKET_HELP}
  -o, --output FORMAT    table (default) or json`,
  async run(ctx) {
    const { values, positionals } = parseArgs({ args: [...ctx.argv], options: COMMON, allowPositionals: true, strict: true });
    const name = one(positionals, 'endpoint NAME');
    const fmt = format(values.output);
    render(ctx, [await apiClientFrom(values['api-socket'], ctx.env).getEndpoint(name)], fmt, true);
    return 0;
  },
};

export const ENDPOINT_COMMANDS: readonly Command[] = [endpointAddCommand, endpointDeleteCommand, endpointListCommand, endpointGetCommand];
