import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { WardError } from '../../identity/index.js';
import { OfflineTrace, identityName, type DirectionTrace, type TraceEndpointSpec, type TracePeer, type TraceProtocol, type TraceResult } from '../calc/index.js';
import { parsePolicy, type HttpRequest, type ParsedPolicy } from '../policy/index.js';
import { API_SOCKET_HELP, apiClientFrom } from './api-flags.js';
import { UsageError, type Command, type CommandContext } from './command.js';
import { parseOutputFormat } from './output.js';

/** An input file that cannot be read or has the wrong shape. */
export class TraceFileError extends WardError {}

const USAGE = `Usage: ward policy trace --endpoints FILE --policy FILE [--policy FILE ...]
                         --from SPEC --to SPEC --dport N [--proto TCP|UDP|SCTP|ANY]
                         [--http-method M] [--http-path P] [--http-host H]
                         [--http-header 'Name: value' ...] [-o table|json]
       ward policy trace [--api-socket PATH] --from SPEC --to SPEC --dport N [...]

Online policy trace (no --endpoints/--policy): asks the local agent, which answers from its
live policy engine, identity cache and kernel ipcache. --from/--to then take a local endpoint
name, an IPv4 address (a local or remote endpoint, a node, a CIDR; resolved through the live
ipcache), host, remote-node or world.
${API_SOCKET_HELP}

Offline policy trace: computes the policy of every endpoint in FILE from the policy files
(nothing is read from or written to a cluster) and reports whether the source's egress
policy AND the destination's ingress policy allow the connection.

  --endpoints FILE   JSON array of {"name": "web", "labels": ["k8s:app=web"], "ip": "10.0.1.10"};
                     each distinct label set gets an identity (256, 257, ... in file order)
  --policy FILE      YAML or JSON policy (rules, rule lists, CiliumNetworkPolicy documents);
                     repeatable. An invalid file is rejected whole with its problems listed.
  --from, --to SPEC  an endpoint name, host, remote-node, world, or an IPv4 address (an
                     endpoint's IP means that endpoint; else the most specific CIDR identity a
                     rule created, else world)
  --dport N          destination port (0..65535)
  --proto P          TCP (default), UDP, SCTP, or ANY (allowed only if TCP, UDP and SCTP are)
  --http-*           evaluate this HTTP request against L7 rules (method defaults to GET,
                     path to /)
  -o json            one JSON object with "verdict": "allowed" | "denied" and the details

Exit status 0 whatever the verdict; 1 on bad input files, 2 on bad flags.
`;

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    const code = cause instanceof Error && 'code' in cause ? ` (${String(cause.code)})` : '';
    throw new TraceFileError(`cannot read ${what} file ${path}${code}`, { cause });
  }
}

/** Parses and checks the endpoints file: names the file, index and field on bad input. */
export function parseEndpointsFile(text: string, file: string): TraceEndpointSpec[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new TraceFileError(`${file}: not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  if (!Array.isArray(raw)) throw new TraceFileError(`${file}: must be a JSON array of endpoints`);
  return raw.map((e: unknown, i) => {
    const at = `${file}: [${i}]`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new TraceFileError(`${at}: must be an object {"name", "labels", "ip"}`);
    const o = e as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['name', 'labels', 'ip'].includes(k)) throw new TraceFileError(`${at}.${k}: unknown field (allowed: name, labels, ip)`);
    if (typeof o['name'] !== 'string' || o['name'] === '') throw new TraceFileError(`${at}.name: must be a non-empty string`);
    const labels = o['labels'];
    if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) throw new TraceFileError(`${at}.labels: must be a list of strings such as "k8s:app=web"`);
    if (o['ip'] !== undefined && typeof o['ip'] !== 'string') throw new TraceFileError(`${at}.ip: must be a string`);
    return { name: o['name'], labels, ...(typeof o['ip'] === 'string' ? { ip: o['ip'] } : {}) };
  });
}

function parsePort(v: string | undefined): number {
  if (v === undefined) throw new UsageError('--dport is required');
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new UsageError(`--dport ${JSON.stringify(v)} must be a port number 0..65535`);
  return Number(v);
}

function parseProto(v: string | undefined): TraceProtocol {
  const p = (v ?? 'TCP').toUpperCase();
  if (p !== 'TCP' && p !== 'UDP' && p !== 'SCTP' && p !== 'ANY') throw new UsageError(`--proto ${JSON.stringify(v)} must be TCP, UDP, SCTP or ANY`);
  return p;
}

function parseHeader(h: string): [string, string] {
  const colon = h.indexOf(':');
  if (colon <= 0) throw new UsageError(`--http-header ${JSON.stringify(h)} must look like 'Name: value'`);
  return [h.slice(0, colon).trim(), h.slice(colon + 1).trim()];
}

function peerText(p: TracePeer): string {
  switch (p.kind) {
    case 'endpoint':
      return `${p.name} (identity ${p.identity}${p.ip !== undefined ? `, ${p.ip}` : ''}; ${p.labels.join(',')})`;
    case 'reserved':
      return `${p.name} (identity ${identityName(p.identity)})`;
    case 'address':
      if (p.labels !== undefined) return `${p.ip} (remote endpoint, identity ${p.identity}; ${p.labels.join(',')})`;
      return `${p.ip} (identity ${identityName(p.identity)}${p.prefix !== undefined ? ` from CIDR ${p.prefix}` : ', no CIDR rule covers it'})`;
  }
}

function directionText(d: DirectionTrace, local: TracePeer): string[] {
  const title = d.direction === 'egress' ? `Egress policy of ${peerName(local)}` : `Ingress policy of ${peerName(local)}`;
  const lines = [`${title}:`];
  if (d.endpoint === null) {
    lines.push(`  ${d.reason}`, '  verdict: ALLOWED');
    return lines;
  }
  lines.push(`  enforcement: ${d.enforced ? 'default deny (a rule selecting the endpoint has ' + d.direction + ' rules)' : 'off (default allow)'}`);
  if (d.rules.length === 0) lines.push(`  rules selecting ${d.endpoint} with ${d.direction} rules: none`);
  else {
    lines.push(`  rules selecting ${d.endpoint} with ${d.direction} rules:`);
    for (const r of d.rules) {
      const at = `${r.file} document ${r.document} rule ${r.rule}${r.line !== undefined ? ` (line ${r.line})` : ''}`;
      lines.push(`    ${r.ref}: ${at}${r.name !== undefined ? ` ${r.name}` : ''}${r.description !== undefined ? ` "${r.description}"` : ''}`);
    }
  }
  lines.push(`  remote identity: ${identityName(d.remoteIdentity)}`);
  if (d.entries.length === 0) lines.push('  matching map entries: none');
  else {
    lines.push('  matching map entries:');
    for (const e of d.entries) lines.push(`    ${e.action.toUpperCase()} ${e.key}${e.proxyPort !== 0 ? ` proxy-port ${e.proxyPort}` : ''} <- ${e.rules.join(', ')}`);
  }
  if (d.http !== undefined && d.http.rules.length > 0) {
    lines.push('  HTTP rules on this port:');
    for (const r of d.http.rules) lines.push(`    ${r}`);
  }
  lines.push(`  decided by: ${d.reason}`, `  verdict: ${d.verdict.toUpperCase()}`);
  return lines;
}

function peerName(p: TracePeer): string {
  return p.kind === 'endpoint' ? p.name : p.kind === 'reserved' ? p.name : p.ip;
}

export function renderTrace(t: TraceResult, http: HttpRequest | undefined): string {
  const lines = [`Tracing ${peerText(t.from)} => ${peerText(t.to)}`, `Port: ${t.protocol}/${t.dport}`];
  if (http !== undefined) lines.push(`HTTP request: ${http.method} ${http.path}${http.host !== undefined ? ` (host ${http.host})` : ''}${http.headers.map(([n, v]) => ` [${n}: ${v}]`).join('')}`);
  lines.push('', ...directionText(t.egress, t.from), '', ...directionText(t.ingress, t.to), '', `Final verdict: ${t.verdict.toUpperCase()}`);
  return `${lines.join('\n')}\n`;
}

export const policyTraceCommand: Command = {
  path: ['policy', 'trace'],
  summary: 'Trace a connection through policy files (offline) or the local agent (online)',
  usage: USAGE,
  async run(ctx: CommandContext): Promise<number> {
    const { values, positionals } = parseArgs({
      args: [...ctx.argv],
      allowPositionals: true,
      options: {
        endpoints: { type: 'string' },
        policy: { type: 'string', multiple: true },
        from: { type: 'string' },
        to: { type: 'string' },
        dport: { type: 'string' },
        proto: { type: 'string' },
        'http-method': { type: 'string' },
        'http-path': { type: 'string' },
        'http-host': { type: 'string' },
        'http-header': { type: 'string', multiple: true },
        output: { type: 'string', short: 'o' },
        'api-socket': { type: 'string' },
      },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    let format;
    try {
      format = parseOutputFormat(values.output);
    } catch (e) {
      throw new UsageError(e instanceof Error ? e.message : String(e));
    }
    const online = values.endpoints === undefined && (values.policy === undefined || values.policy.length === 0);
    if (!online && values['api-socket'] !== undefined) throw new UsageError('--api-socket is for the online trace: drop --endpoints/--policy');
    if (!online && values.endpoints === undefined) throw new UsageError('--endpoints FILE is required with --policy (or give neither for the online trace)');
    if (!online && (values.policy === undefined || values.policy.length === 0)) throw new UsageError('at least one --policy FILE is required with --endpoints (or give neither for the online trace)');
    if (values.from === undefined) throw new UsageError('--from SPEC is required');
    if (values.to === undefined) throw new UsageError('--to SPEC is required');
    const dport = parsePort(values.dport);
    const protocol = parseProto(values.proto);
    const headers = (values['http-header'] ?? []).map(parseHeader);
    const wantsHttp = values['http-method'] !== undefined || values['http-path'] !== undefined || values['http-host'] !== undefined || headers.length > 0;
    const http: HttpRequest | undefined = wantsHttp
      ? {
          method: values['http-method'] ?? 'GET',
          path: values['http-path'] ?? '/',
          ...(values['http-host'] !== undefined ? { host: values['http-host'] } : {}),
          headers,
        }
      : undefined;

    const query = { from: values.from, to: values.to, dport, protocol, ...(http !== undefined ? { http } : {}) };
    let result: TraceResult;
    if (online) result = await apiClientFrom(values['api-socket'], ctx.env).tracePolicy(query);
    else {
      const endpoints = parseEndpointsFile(await readText(values.endpoints!, 'endpoints'), values.endpoints!);
      const policies: ParsedPolicy[] = [];
      for (const file of values.policy!) policies.push(parsePolicy(await readText(file, 'policy'), file));
      result = new OfflineTrace(endpoints, policies).trace(query);
    }
    if (format === 'json') ctx.stdout.write(`${JSON.stringify({ ...result, ...(http !== undefined ? { http } : {}) }, null, 2)}\n`);
    else ctx.stdout.write(renderTrace(result, http));
    return 0;
  },
};
