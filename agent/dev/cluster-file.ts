import { LineCounter, isMap, isSeq, parseDocument, type Document, type Node, type Pair } from 'yaml';
import { LabelSet, WardError, cidrContainsIp, cidrMask, formatCidr, formatIPv4, parseCidr, parseIPv4 } from '../../identity/index.js';

/** A bad `ward dev` cluster file; the message starts with `file:line`. */
export class ClusterFileError extends WardError {}

export interface DevHostSpec {
  readonly name: string;
  /** Address on the fabric bridge; other hosts route this host's endpoint CIDR via it. */
  readonly nodeIp: string;
  /** Prefix length of the fabric subnet (from network.node-cidr). */
  readonly nodePrefixLen: number;
  readonly endpointCidr: string;
}

export interface DevWorkloadSpec {
  readonly name: string;
  readonly host: string;
  readonly labels: readonly string[];
  readonly ip?: string;
  /** Run with `sh -c` inside the workload's netns, detached. */
  readonly command?: string;
  /** TCP ports the connectivity matrix probes on this workload. */
  readonly ports: readonly number[];
}

export interface DevClusterSpec {
  readonly name: string;
  readonly etcdMembers: number;
  readonly hosts: readonly DevHostSpec[];
  readonly workloads: readonly DevWorkloadSpec[];
  /** As written in the file (relative to the file's directory). */
  readonly policy?: string;
}

export const DEFAULT_CLUSTER_NAME = 'ward';
const DEFAULT_NODE_CIDR = '10.90.0.0/24';
const DEFAULT_ENDPOINT_CIDR = '10.200.0.0/16';
/** Netns names are `<cluster>-<host|workload>`; keep them short and shell-safe. */
const NAME_RE = /^[a-z][a-z0-9-]{0,19}$/;
const CLUSTER_NAME_RE = /^[a-z][a-z0-9-]{0,11}$/;
const RESERVED_NAMES = new Set(['fabric']);

/** Checks a cluster name (also used for `--name`); returns an error text or undefined. */
export function clusterNameProblem(name: string): string | undefined {
  return CLUSTER_NAME_RE.test(name) ? undefined : `cluster name ${JSON.stringify(name)} must be 1-12 characters: a lowercase letter, then lowercase letters, digits or '-'`;
}

type Loc = (node: unknown) => string;

const KNOWN_TOP = ['name', 'etcd', 'network', 'hosts', 'workloads', 'policy'];
const KNOWN_WORKLOAD = ['name', 'host', 'labels', 'ip', 'command', 'ports'];

/**
 * Parses and validates a `ward dev` cluster file (YAML). Pure: the caller reads the file.
 * Every error names `file:line` and the field.
 */
export function parseClusterFile(text: string, file: string): DevClusterSpec {
  const lc = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined): string => (offset === undefined ? file : `${file}:${lc.linePos(offset).line}`);
  const at: Loc = (node) => lineOf((node as { range?: [number, number, number] } | null)?.range?.[0]);
  const firstError = doc.errors[0];
  if (firstError !== undefined) throw new ClusterFileError(`${lineOf(firstError.pos[0])}: ${firstError.message.split('\n')[0] ?? ''}`);
  const top = doc.contents;
  if (!isMap(top)) throw new ClusterFileError(`${file}: must be a YAML mapping with hosts and workloads`);
  const fields = pairs(top, KNOWN_TOP, '', at);

  const name = str(fields.get('name'), 'name', at) ?? DEFAULT_CLUSTER_NAME;
  const nameProblem = clusterNameProblem(name);
  if (nameProblem !== undefined) throw new ClusterFileError(`${at(fields.get('name')?.value)}: name: ${nameProblem}`);

  let etcdMembers = 1;
  const etcdPair = fields.get('etcd');
  if (etcdPair !== undefined) {
    if (!isMap(etcdPair.value)) throw new ClusterFileError(`${at(etcdPair.key)}: etcd must be a mapping (members: 1|3)`);
    const m = pairs(etcdPair.value, ['members'], 'etcd.', at).get('members');
    if (m !== undefined) etcdMembers = int(m, 'etcd.members', 1, 5, at);
  }

  let nodeCidrText = DEFAULT_NODE_CIDR;
  let endpointCidrText = DEFAULT_ENDPOINT_CIDR;
  const net = fields.get('network');
  let netFields = new Map<string, Pair>();
  if (net !== undefined) {
    if (!isMap(net.value)) throw new ClusterFileError(`${at(net.key)}: network must be a mapping (node-cidr, endpoint-cidr)`);
    netFields = pairs(net.value, ['node-cidr', 'endpoint-cidr'], 'network.', at);
    nodeCidrText = str(netFields.get('node-cidr'), 'network.node-cidr', at) ?? nodeCidrText;
    endpointCidrText = str(netFields.get('endpoint-cidr'), 'network.endpoint-cidr', at) ?? endpointCidrText;
  }
  const nodeCidr = cidr(nodeCidrText, 'network.node-cidr', netFields.get('node-cidr'), at, file);
  const endpointCidr = cidr(endpointCidrText, 'network.endpoint-cidr', netFields.get('endpoint-cidr'), at, file);
  if (nodeCidr.len > 29) throw new ClusterFileError(`${at(netFields.get('node-cidr')?.value)}: network.node-cidr ${nodeCidrText} is too small (at most /29)`);
  if (endpointCidr.len > 23) throw new ClusterFileError(`${at(netFields.get('endpoint-cidr')?.value)}: network.endpoint-cidr ${endpointCidrText} must be /23 or larger (each host gets a /24)`);
  const overlap = cidrContainsIp(nodeCidr, endpointCidr.addr) || cidrContainsIp(endpointCidr, nodeCidr.addr);
  if (overlap) throw new ClusterFileError(`${file}: network.node-cidr ${nodeCidrText} and network.endpoint-cidr ${endpointCidrText} overlap`);

  // Hosts: a count, or a list of names / {name} mappings.
  const hostNames: { name: string; node: unknown }[] = [];
  const hostsPair = fields.get('hosts');
  if (hostsPair === undefined) hostNames.push({ name: 'host1', node: top }, { name: 'host2', node: top });
  else if (isSeq(hostsPair.value)) {
    for (const item of hostsPair.value.items) {
      let n: unknown = item;
      if (isMap(item)) n = pairs(item, ['name'], 'hosts[].', at).get('name')?.value;
      const v = (n as { value?: unknown } | null)?.value;
      if (typeof v !== 'string') throw new ClusterFileError(`${at(item)}: hosts: each host is a name (or {name: NAME})`);
      hostNames.push({ name: v, node: n });
    }
  } else {
    const count = int(hostsPair, 'hosts', 1, 16, at);
    for (let i = 1; i <= count; i++) hostNames.push({ name: `host${i}`, node: hostsPair.value });
  }
  if (hostNames.length === 0) throw new ClusterFileError(`${at(hostsPair?.key)}: hosts: at least one host`);
  const subnets = 2 ** (24 - endpointCidr.len);
  if (hostNames.length >= subnets) throw new ClusterFileError(`${file}: network.endpoint-cidr ${endpointCidrText} has room for ${subnets - 1} hosts' /24s, not ${hostNames.length}`);
  if (hostNames.length > 2 ** (32 - nodeCidr.len) - 2) throw new ClusterFileError(`${file}: network.node-cidr ${nodeCidrText} has room for fewer than ${hostNames.length} hosts`);

  const taken = new Map<string, string>();
  const claim = (n: string, what: string, node: unknown): void => {
    if (!NAME_RE.test(n)) throw new ClusterFileError(`${at(node)}: ${what} name ${JSON.stringify(n)} must be 1-20 characters: a lowercase letter, then lowercase letters, digits or '-'`);
    if (RESERVED_NAMES.has(n)) throw new ClusterFileError(`${at(node)}: ${what} name ${JSON.stringify(n)} is reserved`);
    const other = taken.get(n);
    if (other !== undefined) throw new ClusterFileError(`${at(node)}: ${what} name ${JSON.stringify(n)} is already used by a ${other} (host and workload names share one namespace)`);
    taken.set(n, what);
  };
  const hosts: DevHostSpec[] = hostNames.map((h, i) => {
    claim(h.name, 'host', h.node);
    return {
      name: h.name,
      nodeIp: formatIPv4((nodeCidr.addr + i + 1) >>> 0),
      nodePrefixLen: nodeCidr.len,
      endpointCidr: formatCidr({ addr: (endpointCidr.addr + (i + 1) * 256) >>> 0, len: 24 }),
    };
  });

  const workloads: DevWorkloadSpec[] = [];
  const wlPair = fields.get('workloads');
  if (wlPair !== undefined && wlPair.value !== null) {
    if (!isSeq(wlPair.value)) throw new ClusterFileError(`${at(wlPair.key)}: workloads must be a list`);
    const ips = new Map<number, string>();
    for (const item of wlPair.value.items) {
      if (!isMap(item)) throw new ClusterFileError(`${at(item)}: workloads: each workload is a mapping (name, host, labels, command, ports)`);
      const f = pairs(item, KNOWN_WORKLOAD, 'workloads[].', at);
      const wname = str(f.get('name'), 'workloads[].name', at);
      if (wname === undefined) throw new ClusterFileError(`${at(item)}: workloads[]: name is required`);
      claim(wname, 'workload', f.get('name')?.value);
      const w = `workloads[${wname}]`;
      const hostName = str(f.get('host'), `${w}.host`, at) ?? hosts[workloads.length % hosts.length]!.name;
      const host = hosts.find((h) => h.name === hostName);
      if (host === undefined) throw new ClusterFileError(`${at(f.get('host')?.value)}: ${w}.host: unknown host ${JSON.stringify(hostName)} (hosts: ${hosts.map((h) => h.name).join(', ')})`);
      const labels = labelList(f.get('labels'), `${w}.labels`, at, item);
      let ip: string | undefined;
      const ipText = str(f.get('ip'), `${w}.ip`, at);
      if (ipText !== undefined) {
        const where = at(f.get('ip')?.value);
        const n = parseIPv4(ipText);
        if (n === undefined) throw new ClusterFileError(`${where}: ${w}.ip: ${JSON.stringify(ipText)} is not an IPv4 address`);
        const hc = parseCidr(host.endpointCidr);
        if (!cidrContainsIp(hc, n)) throw new ClusterFileError(`${where}: ${w}.ip: ${ipText} is outside host ${host.name}'s endpoint CIDR ${host.endpointCidr}`);
        const off = n - hc.addr;
        if (off <= 1 || off === 255) throw new ClusterFileError(`${where}: ${w}.ip: ${ipText} is the network, gateway or broadcast address of ${host.endpointCidr}`);
        const other = ips.get(n);
        if (other !== undefined) throw new ClusterFileError(`${where}: ${w}.ip: ${ipText} is already workload ${other}'s`);
        ips.set(n, wname);
        ip = ipText;
      }
      const command = str(f.get('command'), `${w}.command`, at);
      const ports: number[] = [];
      const portsPair = f.get('ports');
      if (portsPair !== undefined) {
        if (!isSeq(portsPair.value)) throw new ClusterFileError(`${at(portsPair.key)}: ${w}.ports must be a list of TCP ports`);
        for (const p of portsPair.value.items) {
          const v = (p as { value?: unknown } | null)?.value;
          if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) throw new ClusterFileError(`${at(p)}: ${w}.ports: ${JSON.stringify(v)} is not a port 1..65535`);
          if (!ports.includes(v)) ports.push(v);
        }
      }
      workloads.push({ name: wname, host: host.name, labels, ...(ip !== undefined ? { ip } : {}), ...(command !== undefined ? { command } : {}), ports });
    }
  }
  const policy = str(fields.get('policy'), 'policy', at);
  return { name, etcdMembers, hosts, workloads, ...(policy !== undefined ? { policy } : {}) };
}

function pairs(map: unknown, known: readonly string[], prefix: string, at: Loc): Map<string, Pair> {
  const out = new Map<string, Pair>();
  for (const pair of (map as { items: Pair[] }).items) {
    const key = String((pair.key as { value?: unknown } | null)?.value);
    if (!known.includes(key)) throw new ClusterFileError(`${at(pair.key)}: unknown field ${JSON.stringify(prefix + key)} (known: ${known.join(', ')})`);
    out.set(key, pair);
  }
  return out;
}

function str(pair: Pair | undefined, field: string, at: Loc): string | undefined {
  if (pair === undefined) return undefined;
  const v = (pair.value as { value?: unknown } | null)?.value;
  if (typeof v === 'number') return String(v);
  if (typeof v !== 'string' || v === '') throw new ClusterFileError(`${at(pair.value ?? pair.key)}: ${field} must be a non-empty string`);
  return v;
}

function int(pair: Pair, field: string, min: number, max: number, at: Loc): number {
  const v = (pair.value as { value?: unknown } | null)?.value;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ClusterFileError(`${at(pair.value ?? pair.key)}: ${field} must be an integer ${min}..${max}, got ${JSON.stringify(v)}`);
  return v;
}

function cidr(text: string, field: string, pair: Pair | undefined, at: Loc, file: string): { addr: number; len: number } {
  try {
    const c = parseCidr(text);
    return { addr: (c.addr & cidrMask(c.len)) >>> 0, len: c.len };
  } catch (cause) {
    throw new ClusterFileError(`${pair === undefined ? file : at(pair.value)}: ${field}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Labels as a mapping (`{app: web}`) or a list (`[app=web]`), validated by LabelSet. */
function labelList(pair: Pair | undefined, field: string, at: Loc, item: unknown): string[] {
  if (pair === undefined) throw new ClusterFileError(`${at(item)}: ${field} is required (e.g. {app: web})`);
  const node = pair.value as Node | null;
  let texts: string[];
  if (isMap(node)) {
    texts = node.items.map((p) => {
      const v = (p.value as { value?: unknown } | null)?.value;
      return `${String((p.key as { value?: unknown } | null)?.value)}=${typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : ''}`;
    });
  } else if (isSeq(node)) {
    texts = node.items.map((p) => String((p as { value?: unknown } | null)?.value));
  } else {
    throw new ClusterFileError(`${at(node ?? pair.key)}: ${field} must be a mapping (app: web) or a list (app=web)`);
  }
  if (texts.length === 0) throw new ClusterFileError(`${at(node ?? pair.key)}: ${field}: at least one label`);
  try {
    return LabelSet.parse(texts).toStrings();
  } catch (cause) {
    throw new ClusterFileError(`${at(node ?? pair.key)}: ${field}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
