import { LineCounter, parseDocument, isMap, type Document } from 'yaml';
import { WardError, parseCidr, parseIPv4, formatCidr } from '../../identity/index.js';

/** A bad agent setting; names where it came from (file and line, env variable, or flag). */
export class AgentConfigError extends WardError {}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The validated, frozen configuration of one ward agent. */
export interface AgentConfig {
  readonly nodeName: string;
  readonly nodeIp: string;
  /** This host's endpoint range, normalised (`10.200.1.0/24`). */
  readonly endpointCidr: string;
  readonly etcd: {
    readonly endpoints: readonly string[];
    readonly root: string;
    readonly caFile?: string;
    readonly certFile?: string;
    readonly keyFile?: string;
  };
  readonly bpfRoot: string;
  readonly apiSocket: string;
  readonly stateDir: string;
  readonly logLevel: LogLevel;
  /** Prometheus /metrics listener; absent: no metrics endpoint. */
  readonly metricsAddress?: { readonly host: string; readonly port: number };
  /** TTL of the node's etcd lease: a dead agent's endpoints and references vanish after it. */
  readonly leaseTtlSeconds: number;
}

type Kind = 'string' | 'list';

/** Below 5 s, an event-loop stall or an etcd election of a few seconds could cost a healthy agent its lease. */
export const LEASE_TTL_MIN = 5;
export const LEASE_TTL_MAX = 3600;

/** One setting: its YAML path, environment variable and flag. The table is the documentation. */
interface Field {
  readonly yaml: readonly string[];
  readonly env: string;
  readonly flag: string;
  readonly kind: Kind;
  readonly default?: string | readonly string[];
  readonly help: string;
}

export const AGENT_FIELDS = {
  nodeName: { yaml: ['node-name'], env: 'WARD_NODE_NAME', flag: 'node-name', kind: 'string', help: 'name of this node (unique in the cluster)' },
  nodeIp: { yaml: ['node-ip'], env: 'WARD_NODE_IP', flag: 'node-ip', kind: 'string', help: 'IPv4 address other nodes route endpoint traffic to' },
  endpointCidr: { yaml: ['endpoint-cidr'], env: 'WARD_ENDPOINT_CIDR', flag: 'endpoint-cidr', kind: 'string', help: "IPv4 CIDR of this node's endpoints" },
  etcdEndpoints: { yaml: ['etcd', 'endpoints'], env: 'WARD_ETCD_ENDPOINTS', flag: 'etcd', kind: 'list', default: ['127.0.0.1:2379'], help: 'etcd members, host:port' },
  etcdRoot: { yaml: ['etcd', 'root'], env: 'WARD_ETCD_ROOT', flag: 'etcd-root', kind: 'string', default: 'ward/', help: 'key root in etcd' },
  etcdCaFile: { yaml: ['etcd', 'ca-file'], env: 'WARD_ETCD_CA_FILE', flag: 'etcd-ca-file', kind: 'string', help: 'CA bundle for etcd TLS' },
  etcdCertFile: { yaml: ['etcd', 'cert-file'], env: 'WARD_ETCD_CERT_FILE', flag: 'etcd-cert-file', kind: 'string', help: 'client certificate for etcd mTLS' },
  etcdKeyFile: { yaml: ['etcd', 'key-file'], env: 'WARD_ETCD_KEY_FILE', flag: 'etcd-key-file', kind: 'string', help: 'client key for etcd mTLS' },
  bpfRoot: { yaml: ['bpf-root'], env: 'WARD_BPF_ROOT', flag: 'bpf-root', kind: 'string', default: '/sys/fs/bpf/ward', help: 'bpffs directory for pinned maps' },
  apiSocket: { yaml: ['api-socket'], env: 'WARD_API_SOCKET', flag: 'api-socket', kind: 'string', default: '/run/ward/agent.sock', help: 'unix socket of the local API' },
  stateDir: { yaml: ['state-dir'], env: 'WARD_STATE_DIR', flag: 'state-dir', kind: 'string', default: '/var/lib/ward', help: 'local state (endpoints) directory' },
  logLevel: { yaml: ['log-level'], env: 'WARD_LOG_LEVEL', flag: 'log-level', kind: 'string', default: 'info', help: LOG_LEVELS.join('|') },
  leaseTtl: { yaml: ['lease-ttl'], env: 'WARD_LEASE_TTL', flag: 'lease-ttl', kind: 'string', default: '15', help: `etcd lease TTL in seconds (${LEASE_TTL_MIN}..${LEASE_TTL_MAX}): how long a dead node's endpoints outlive it` },
  metricsAddress: { yaml: ['metrics-address'], env: 'WARD_METRICS_ADDRESS', flag: 'metrics-address', kind: 'string', help: 'host:port of the Prometheus /metrics endpoint, e.g. 127.0.0.1:9962 (unset or "off": none)' },
} as const satisfies Record<string, Field>;

type FieldName = keyof typeof AGENT_FIELDS;
type RawValue = { value: string | readonly string[]; origin: string };

/** Reads the YAML file's values, rejecting unknown keys and wrong types with file:line. */
function fromYaml(text: string, file: string): Map<FieldName, RawValue> {
  const lc = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined): string => (offset === undefined ? file : `${file}:${lc.linePos(offset).line}`);
  const firstError = doc.errors[0];
  if (firstError !== undefined) throw new AgentConfigError(`${at(firstError.pos[0])}: ${firstError.message.split('\n')[0] ?? ''}`);
  const out = new Map<FieldName, RawValue>();
  if (doc.contents === null) return out;
  if (!isMap(doc.contents)) throw new AgentConfigError(`${file}: must be a YAML mapping of settings`);
  const known = new Map(Object.entries(AGENT_FIELDS).map(([n, f]) => [f.yaml.join('.'), n as FieldName]));
  const walk = (node: unknown, path: string[]): void => {
    if (!isMap(node)) return;
    for (const pair of node.items) {
      const keyNode = pair.key as { value?: unknown; range?: [number, number, number] } | null;
      const key = String(keyNode?.value);
      const p = [...path, key];
      const dotted = p.join('.');
      const valueNode = pair.value as { range?: [number, number, number]; toJSON?: () => unknown } | null;
      const where = at(keyNode?.range?.[0]);
      const name = known.get(dotted);
      if (name === undefined) {
        if (dotted === 'etcd' || (isMap(valueNode) && [...known.keys()].some((k) => k.startsWith(`${dotted}.`)))) {
          walk(valueNode, p);
          continue;
        }
        throw new AgentConfigError(`${where}: unknown setting ${JSON.stringify(dotted)} (known: ${[...known.keys()].join(', ')})`);
      }
      const v: unknown = valueNode === null ? null : valueNode.toJSON?.();
      const field: Field = AGENT_FIELDS[name];
      if (field.kind === 'list') {
        const list = typeof v === 'string' ? v.split(',') : v;
        if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) throw new AgentConfigError(`${where}: ${dotted} must be a list of strings`);
        out.set(name, { value: list.map((x: string) => x.trim()), origin: `${where} (${dotted})` });
      } else {
        if (typeof v !== 'string' && typeof v !== 'number') throw new AgentConfigError(`${where}: ${dotted} must be a string`);
        out.set(name, { value: String(v), origin: `${where} (${dotted})` });
      }
    }
  };
  walk(doc.contents, []);
  return out;
}

export interface AgentConfigSources {
  /** YAML text and its file name, if a config file is used. */
  readonly file?: { readonly name: string; readonly text: string };
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Flag values by flag name (without `--`). */
  readonly flags?: Readonly<Record<string, string | undefined>>;
}

function validate(name: FieldName, raw: RawValue): string | readonly string[] {
  const bad = (why: string): never => {
    throw new AgentConfigError(`${raw.origin}: ${why}`);
  };
  const v = raw.value;
  switch (name) {
    case 'nodeName':
      if (typeof v !== 'string' || !/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/.test(v)) bad(`node name ${JSON.stringify(v)} must be a DNS label (lowercase letters, digits, '-', '.')`);
      return v;
    case 'nodeIp':
      if (typeof v !== 'string' || parseIPv4(v) === undefined) bad(`${JSON.stringify(v)} is not an IPv4 address`);
      return v;
    case 'endpointCidr': {
      try {
        const c = parseCidr(String(v));
        if (c.len > 30 || c.len < 8) bad(`endpoint CIDR ${String(v)} must have a prefix length between /8 and /30`);
        return formatCidr(c);
      } catch (cause) {
        if (cause instanceof AgentConfigError) throw cause;
        return bad(cause instanceof Error ? cause.message : String(cause));
      }
    }
    case 'etcdEndpoints': {
      const list = typeof v === 'string' ? v.split(',').map((s) => s.trim()) : v;
      if (list.length === 0 || list.some((e) => !/^(https?:\/\/)?[A-Za-z0-9.-]+:\d{1,5}$/.test(e))) bad(`etcd endpoints must be host:port[,host:port...], got ${JSON.stringify(list.join(','))}`);
      return list;
    }
    case 'etcdRoot':
      if (typeof v !== 'string' || !/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*\/$/.test(v)) bad(`etcd root ${JSON.stringify(v)} must be path segments ending in '/' (e.g. ward/)`);
      return v;
    case 'logLevel':
      if (!(LOG_LEVELS as readonly unknown[]).includes(v)) bad(`log level ${JSON.stringify(v)} must be one of ${LOG_LEVELS.join(', ')}`);
      return v;
    case 'metricsAddress': {
      const m = typeof v === 'string' ? /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/.exec(v) : null;
      if (v === 'off') return v;
      if (m === null || Number(m[2]) > 65535) bad(`metrics address ${JSON.stringify(v)} must be host:port (e.g. 127.0.0.1:9962) or off`);
      return String(v);
    }
    case 'leaseTtl': {
      const n = typeof v === 'string' && /^\d{1,6}$/.test(v) ? Number(v) : Number.NaN;
      if (!(n >= LEASE_TTL_MIN && n <= LEASE_TTL_MAX)) bad(`lease TTL ${JSON.stringify(v)} must be a whole number of seconds from ${LEASE_TTL_MIN} to ${LEASE_TTL_MAX}`);
      return String(n);
    }
    case 'etcdCaFile':
    case 'etcdCertFile':
    case 'etcdKeyFile':
    case 'bpfRoot':
    case 'apiSocket':
    case 'stateDir':
      if (typeof v !== 'string' || !v.startsWith('/')) bad(`${JSON.stringify(v)} must be an absolute path`);
      return v;
  }
}

/**
 * Merges file < environment < flags over the defaults and validates every value. Pure: the
 * caller reads the file. Throws AgentConfigError naming the source of the first bad value.
 */
export function loadAgentConfig(src: AgentConfigSources): AgentConfig {
  const raw = src.file === undefined ? new Map<FieldName, RawValue>() : fromYaml(src.file.text, src.file.name);
  for (const [name, f] of Object.entries(AGENT_FIELDS) as [FieldName, Field][]) {
    const env = src.env?.[f.env];
    if (env !== undefined && env !== '') raw.set(name, { value: env, origin: `environment ${f.env}` });
    const flag = src.flags?.[f.flag];
    if (flag !== undefined) raw.set(name, { value: flag, origin: `flag --${f.flag}` });
  }
  const v = new Map<FieldName, string | readonly string[]>();
  for (const [name, f] of Object.entries(AGENT_FIELDS) as [FieldName, Field][]) {
    const r = raw.get(name);
    if (r !== undefined) v.set(name, validate(name, r));
    else if (f.default !== undefined) v.set(name, f.default);
  }
  const need = (name: FieldName): string => {
    const x = v.get(name);
    if (typeof x !== 'string') {
      const f = AGENT_FIELDS[name];
      throw new AgentConfigError(`missing setting ${f.yaml.join('.')} (config file), ${f.env} or --${f.flag}: ${f.help}`);
    }
    return x;
  };
  const tls = ['etcdCaFile', 'etcdCertFile', 'etcdKeyFile'] as const;
  const tlsSet = tls.filter((n) => v.has(n));
  if (tlsSet.length > 0 && !(tlsSet.includes('etcdCaFile') && (tlsSet.length === 1 || tlsSet.length === 3))) {
    throw new AgentConfigError('etcd TLS needs ca-file, and cert-file with key-file for mutual TLS');
  }
  const opt = (n: FieldName, key: string): Record<string, string> => (v.has(n) ? { [key]: String(v.get(n)) } : {});
  const metrics = v.get('metricsAddress');
  const metricsAt = typeof metrics === 'string' && metrics !== 'off' ? metrics.lastIndexOf(':') : -1;
  return Object.freeze({
    nodeName: need('nodeName'),
    nodeIp: need('nodeIp'),
    endpointCidr: need('endpointCidr'),
    etcd: Object.freeze({
      endpoints: Object.freeze([...(v.get('etcdEndpoints') as readonly string[])]),
      root: need('etcdRoot'),
      ...opt('etcdCaFile', 'caFile'),
      ...opt('etcdCertFile', 'certFile'),
      ...opt('etcdKeyFile', 'keyFile'),
    }),
    bpfRoot: need('bpfRoot'),
    apiSocket: need('apiSocket'),
    stateDir: need('stateDir'),
    logLevel: need('logLevel') as LogLevel,
    leaseTtlSeconds: Number(need('leaseTtl')),
    ...(metricsAt > 0 ? { metricsAddress: Object.freeze({ host: String(metrics).slice(0, metricsAt).replace(/^\[(.*)\]$/, '$1'), port: Number(String(metrics).slice(metricsAt + 1)) }) } : {}),
  });
}
