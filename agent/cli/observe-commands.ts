import { parseArgs } from 'node:util';
import {
  followMonitor,
  isMonitorType,
  MONITOR_EVENT_TYPES,
  type BpfPolicyJson,
  type CounterJson,
  type CtEntryJson,
  type IpcacheEntryJson,
  type MonitorDatapathEventJson,
  type MonitorEventJson,
  type MonitorL7EventJson,
  type MonitorQuery,
  type SelectorJson,
} from '../api/index.js';
import { API_SOCKET_HELP, apiClientFrom } from './api-flags.js';
import { UsageError, type Command, type CommandContext } from './command.js';
import { parseOutputFormat, renderTable, type OutputFormat } from './output.js';

const OUTPUT_HELP = '  -o, --output FORMAT    table (default) or json';

interface Parsed {
  readonly values: Record<string, string | boolean | undefined>;
  readonly positionals: string[];
  readonly fmt: OutputFormat;
}

function parse(ctx: CommandContext, extra: Record<string, { type: 'string' | 'boolean' }>, maxPositionals: number): Parsed {
  let p;
  try {
    p = parseArgs({ args: [...ctx.argv], options: { 'api-socket': { type: 'string' }, output: { type: 'string', short: 'o' }, ...extra }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if (p.positionals.length > maxPositionals) throw new UsageError(`unexpected argument ${JSON.stringify(p.positionals[maxPositionals])}`);
  let fmt: OutputFormat;
  try {
    fmt = parseOutputFormat(p.values.output);
  } catch (err) {
    throw new UsageError(`--output: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { values: p.values, positionals: p.positionals, fmt };
}

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const labelsText = (l: readonly string[] | undefined): string => (l === undefined ? '?' : l.length === 0 ? '-' : l.join(','));
const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

function datapathLine(e: MonitorDatapathEventJson): string {
  const ep = `${e.endpoint ?? `#${e.endpointId}`}${e.identity !== undefined ? ` (${e.identity})` : ''}`;
  const remote = `identity ${e.remoteIdentity} ${labelsText(e.remoteLabels)}`;
  const flow = `${e.saddr}${e.sport !== 0 ? `:${e.sport}` : ''} -> ${e.daddr}${e.dport !== 0 ? `:${e.dport}` : ''} ${e.protocol}`;
  const what = e.type === 'drop' ? `DROP (${e.reasonName})` : `VERDICT ${e.reasonName}`;
  return `${what} ${e.direction} endpoint ${ep}, remote ${remote}: ${flow}\n`;
}

/** `HTTP DENIED ingress endpoint web (400): GET http://web/private => 403, 10.0.0.2:41000 (identity 300 app=client) -> 10.0.0.3:80 (identity 400 app=web): reason`. */
function l7Line(e: MonitorL7EventJson): string {
  const ep = `${e.endpoint}${e.identity !== undefined ? ` (${e.identity})` : ''}`;
  const url = e.method === '' ? '(unparseable request)' : `${e.method} http://${e.host ?? e.destination}${e.path}`;
  const answer = e.status === undefined ? 'forwarded' : String(e.status);
  const flow = `${e.source} (identity ${e.sourceIdentity} ${labelsText(e.sourceLabels)}) -> ${e.destination} (identity ${e.destinationIdentity} ${labelsText(e.destinationLabels)})`;
  return `HTTP ${e.verdict.toUpperCase()} ${e.direction} endpoint ${ep}: ${url} => ${answer}, ${flow}: ${e.reason}\n`;
}

/** One `ward monitor` text line. */
export function eventLine(e: MonitorEventJson): string {
  return e.type === 'l7' ? l7Line(e) : datapathLine(e);
}

export const monitorCommand: Command = {
  path: ['monitor'],
  summary: 'stream datapath drops, policy verdicts and L7 (HTTP) request decisions, endpoints and identities resolved',
  usage: `Usage: ward monitor [--type drop|policy-verdict|l7] [--endpoint NAME|ID] [-o json] [flags]

Follows the local agent's datapath events and the L7 proxy's request decisions until
interrupted (or --count events). One line per event; with -o json one JSON object per line
(NDJSON). Exit status 0 when interrupted or after --count events, 1 when the agent is
unreachable or ends the stream.

Flags:
  --type TYPE            only drop, policy-verdict or l7 (HTTP requests) events; default all
  --endpoint NAME|ID     only events of this local endpoint
  --count N              stop after N events (exit 0)
${API_SOCKET_HELP}
${OUTPUT_HELP}`,
  async run(ctx) {
    const { values, fmt } = parse(ctx, { type: { type: 'string' }, endpoint: { type: 'string' }, count: { type: 'string' } }, 0);
    const type = str(values['type']);
    if (type !== undefined && !isMonitorType(type)) throw new UsageError(`--type must be one of ${MONITOR_EVENT_TYPES.join(', ')}; got ${JSON.stringify(type)}`);
    const countText = str(values['count']);
    const count = countText === undefined ? undefined : Number(countText);
    if (count !== undefined && (!Number.isInteger(count) || count < 1)) throw new UsageError(`--count must be a positive integer, got ${JSON.stringify(countText)}`);
    const endpoint = str(values['endpoint']);
    const q: MonitorQuery = { ...(type !== undefined ? { type } : {}), ...(endpoint !== undefined ? { endpoint } : {}) };
    const stop = new AbortController();
    const onSignal = (): void => stop.abort();
    process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
    let seen = 0;
    try {
      const socket = apiClientFrom(str(values['api-socket']), ctx.env).socketPath;
      await followMonitor(
        socket,
        q,
        (e) => {
          if (stop.signal.aborted) return;
          ctx.stdout.write(fmt === 'json' ? `${JSON.stringify(e)}\n` : eventLine(e));
          if (count !== undefined && ++seen >= count) stop.abort();
        },
        stop.signal,
      );
    } finally {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    }
    if (stop.signal.aborted) return 0;
    ctx.stderr.write('ward monitor: the agent ended the stream (stopped or restarted)\n');
    return 1;
  },
};

function policyTable(p: BpfPolicyJson): string {
  const head = `endpoint ${p.endpoint} (id ${p.id}): ${p.entries.length}/${p.capacity} entries${p.lockedDown ? ', LOCKED DOWN (policy does not fit: all traffic dropped)' : ''}\n`;
  const rows = p.entries.map((e) => [
    e.direction,
    e.deny ? 'deny' : 'allow',
    String(e.identity),
    labelsText(e.labels),
    e.protocol,
    e.ports,
    e.proxyPort === 0 ? '-' : String(e.proxyPort),
    e.inKernel && e.desired ? 'ok' : e.inKernel ? 'stale' : 'missing',
  ]);
  return head + renderTable(['DIRECTION', 'VERDICT', 'IDENTITY', 'LABELS', 'PROTO', 'PORTS', 'PROXY', 'STATE'], rows);
}

export const bpfPolicyGetCommand: Command = {
  path: ['bpf', 'policy', 'get'],
  summary: "an endpoint's kernel policy map, identities resolved",
  usage: `Usage: ward bpf policy get ENDPOINT [-o json] [flags]

ENDPOINT is a local endpoint's name or id. STATE: ok (kernel = desired), stale (in the
kernel only), missing (desired, not in the kernel: the repair loop fixes it).

Flags:
${API_SOCKET_HELP}
${OUTPUT_HELP}`,
  async run(ctx) {
    const { values, positionals, fmt } = parse(ctx, {}, 1);
    const ep = positionals[0];
    if (ep === undefined) throw new UsageError('missing ENDPOINT (name or id)');
    const p = await apiClientFrom(str(values['api-socket']), ctx.env).getJson<BpfPolicyJson>(`/v1/bpf/policy/${encodeURIComponent(ep)}`);
    ctx.stdout.write(fmt === 'json' ? json(p) : policyTable(p));
    return 0;
  },
};

export const bpfIpcacheListCommand: Command = {
  path: ['bpf', 'ipcache', 'list'],
  summary: 'the kernel ipcache: prefix -> identity (labels) -> node',
  usage: `Usage: ward bpf ipcache list [-o json] [flags]

Flags:
${API_SOCKET_HELP}
${OUTPUT_HELP}`,
  async run(ctx) {
    const { values, fmt } = parse(ctx, {}, 0);
    const list = await apiClientFrom(str(values['api-socket']), ctx.env).getJson<IpcacheEntryJson[]>('/v1/bpf/ipcache');
    ctx.stdout.write(fmt === 'json' ? json(list) : renderTable(['PREFIX', 'IDENTITY', 'LABELS', 'NODE'], list.map((e) => [e.cidr, String(e.identity), labelsText(e.labels), e.nodeAddress ?? '-'])));
    return 0;
  },
};

export const bpfCtListCommand: Command = {
  path: ['bpf', 'ct', 'list'],
  summary: 'the kernel conntrack table (flows of local endpoints)',
  usage: `Usage: ward bpf ct list [--endpoint NAME|ID] [-o json] [flags]

Flags:
  --endpoint NAME|ID     only this endpoint's flows
${API_SOCKET_HELP}
${OUTPUT_HELP}`,
  async run(ctx) {
    const { values, fmt } = parse(ctx, { endpoint: { type: 'string' } }, 0);
    const ep = str(values['endpoint']);
    const list = await apiClientFrom(str(values['api-socket']), ctx.env).getJson<CtEntryJson[]>(`/v1/bpf/ct${ep !== undefined ? `?endpoint=${encodeURIComponent(ep)}` : ''}`);
    const rows = list.map((e) => [
      e.endpoint ?? `#${e.endpointId}`,
      e.direction,
      e.protocol,
      `${e.saddr}:${e.sport}`,
      `${e.daddr}:${e.dport}`,
      String(e.remoteIdentity),
      String(e.packets),
      String(e.bytes),
      `${e.idleSeconds}s${e.closing ? ' closing' : ''}`,
    ]);
    ctx.stdout.write(fmt === 'json' ? json(list) : renderTable(['ENDPOINT', 'DIRECTION', 'PROTO', 'SOURCE', 'DESTINATION', 'REMOTE ID', 'PACKETS', 'BYTES', 'IDLE'], rows));
    return 0;
  },
};

export const policySelectorsCommand: Command = {
  path: ['policy', 'selectors'],
  summary: "the agent's selector cache: selector -> identities -> endpoints using it",
  usage: `Usage: ward policy selectors [-o json] [flags]

Flags:
${API_SOCKET_HELP}
${OUTPUT_HELP}`,
  async run(ctx) {
    const { values, fmt } = parse(ctx, {}, 0);
    const list = await apiClientFrom(str(values['api-socket']), ctx.env).getJson<SelectorJson[]>('/v1/policy/selectors');
    const rows = list.map((s) => [s.selector, s.identities.map((i) => `${i.id}(${labelsText(i.labels)})`).join(' ') || '-', s.users.join(',') || '-']);
    ctx.stdout.write(fmt === 'json' ? json(list) : renderTable(['SELECTOR', 'IDENTITIES', 'USERS'], rows));
    return 0;
  },
};

/** Drop and verdict counters as table rows (used by `ward status --verbose`). */
export function countersTable(list: readonly CounterJson[]): string {
  const rows = list
    .filter((c) => c.packets > 0)
    .map((c) => [c.endpoint ?? `#${c.endpointId}`, c.direction, c.reason, String(c.packets), String(c.bytes)])
    .sort((a, b) => a.join(' ').localeCompare(b.join(' ')));
  return renderTable(['ENDPOINT', 'DIRECTION', 'REASON', 'PACKETS', 'BYTES'], rows);
}

export const OBSERVE_COMMANDS: readonly Command[] = [monitorCommand, bpfPolicyGetCommand, bpfIpcacheListCommand, bpfCtListCommand, policySelectorsCommand];
