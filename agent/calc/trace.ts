import { LabelSet, RESERVED_LABEL_NAMES, ReservedIdentity, WardError, cidrContainsIp, formatIPv4, parseIPv4 } from '../../identity/index.js';
import { Direction, Protocol } from '../../bpf/policy-map/types.js';
import { describeHttpRule, httpRuleMatches, type HttpRequest, type HttpRule, type ParsedPolicy, type RuleOrigin } from '../policy/index.js';
import { PolicyEngine } from './engine.js';
import { lpmLookup, policyKeyLength, policyKeyMatches } from './lpm.js';
import type { DesiredEntry } from './map-state.js';

/** Bad trace input (unknown endpoint, duplicate name, bad address...). */
export class TraceInputError extends WardError {}

export interface TraceEndpointSpec {
  readonly name: string;
  readonly labels: readonly string[];
  readonly ip?: string;
}

interface OfflineEndpoint {
  readonly name: string;
  readonly labels: LabelSet;
  readonly identity: number;
  readonly ip?: number;
}

/** A traced peer: a local endpoint, a reserved entity, or an address outside the endpoints. */
export type TracePeer =
  | { readonly kind: 'endpoint'; readonly name: string; readonly identity: number; readonly labels: readonly string[]; readonly ip?: string }
  | { readonly kind: 'reserved'; readonly name: string; readonly identity: number }
  | {
      readonly kind: 'address';
      readonly ip: string;
      readonly identity: number;
      readonly prefix?: string;
      /** Online trace: labels of the cluster identity the live ipcache maps the address to (a remote endpoint). */
      readonly labels?: readonly string[];
    };

export type TraceProtocol = 'TCP' | 'UDP' | 'SCTP' | 'ANY';

export interface TraceQuery {
  readonly from: string;
  readonly to: string;
  readonly dport: number;
  readonly protocol: TraceProtocol;
  readonly http?: HttpRequest;
}

export interface TraceRuleRef {
  readonly ref: string;
  readonly file: string;
  readonly document: number;
  readonly rule: number;
  readonly line?: number;
  readonly name?: string;
  readonly description?: string;
}

export interface TraceEntry {
  readonly identity: number;
  readonly key: string;
  readonly action: 'allow' | 'deny';
  readonly proxyPort: number;
  readonly rules: readonly string[];
}

export interface DirectionTrace {
  readonly direction: 'egress' | 'ingress';
  /** The local endpoint whose policy applies, or null when that side is not a local endpoint. */
  readonly endpoint: string | null;
  readonly remoteIdentity: number;
  readonly enforced: boolean;
  readonly rules: readonly TraceRuleRef[];
  readonly verdict: 'allowed' | 'denied';
  readonly reason: string;
  readonly entries: readonly TraceEntry[];
  readonly proxyPort: number;
  readonly http?: { readonly evaluated: boolean; readonly allowed: boolean; readonly matchedRule?: string; readonly rules: readonly string[] };
}

export interface TraceResult {
  readonly verdict: 'allowed' | 'denied';
  readonly from: TracePeer;
  readonly to: TracePeer;
  readonly dport: number;
  readonly protocol: TraceProtocol;
  readonly egress: DirectionTrace;
  readonly ingress: DirectionTrace;
}

const PROTOCOLS: Readonly<Record<Exclude<TraceProtocol, 'ANY'>, Protocol>> = { TCP: Protocol.tcp, UDP: Protocol.udp, SCTP: Protocol.sctp };

function entryView(e: DesiredEntry): TraceEntry {
  const k = e.key;
  const proto = k.protocol === 0 ? 'ANY' : (Object.entries(PROTOCOLS).find(([, n]) => n === k.protocol)?.[0] ?? String(k.protocol));
  const port = k.protocol === 0 || k.portPrefixLen === 0 ? '*' : k.portPrefixLen === 16 ? String(k.port) : `${k.port}-${k.port + 2 ** (16 - k.portPrefixLen) - 1}`;
  return {
    identity: k.identity,
    key: `${k.identity === 0 ? 'any' : k.identity} ${k.direction === 0 ? 'ingress' : 'egress'} ${proto}/${port}`,
    action: e.entry.deny ? 'deny' : 'allow',
    proxyPort: e.entry.proxyPort,
    rules: e.rules,
  };
}

/**
 * An offline world for `ward policy trace`: endpoints from a file (one identity per distinct
 * label set, numbered from 256 in order of first appearance), policies from files.
 */
export class OfflineTrace {
  readonly engine = new PolicyEngine();
  private readonly endpoints = new Map<string, OfflineEndpoint>();

  constructor(endpoints: readonly TraceEndpointSpec[], policies: readonly ParsedPolicy[]) {
    const ids = new Map<string, number>();
    const byIp = new Map<number, string>();
    for (const spec of endpoints) {
      if (this.endpoints.has(spec.name)) throw new TraceInputError(`endpoint name ${JSON.stringify(spec.name)} appears twice`);
      if (['host', 'remote-node', 'world'].includes(spec.name)) throw new TraceInputError(`endpoint name ${JSON.stringify(spec.name)} is reserved`);
      const labels = LabelSet.parse(spec.labels);
      let identity = ids.get(labels.canonical);
      if (identity === undefined) ids.set(labels.canonical, (identity = 256 + ids.size));
      let ip: number | undefined;
      if (spec.ip !== undefined) {
        ip = parseIPv4(spec.ip);
        if (ip === undefined) throw new TraceInputError(`endpoint ${spec.name}: ip ${JSON.stringify(spec.ip)} is not an IPv4 address`);
        const other = byIp.get(ip);
        if (other !== undefined) throw new TraceInputError(`endpoints ${other} and ${spec.name} have the same ip ${spec.ip}`);
        byIp.set(ip, spec.name);
      }
      this.endpoints.set(spec.name, { name: spec.name, labels, identity, ...(ip !== undefined ? { ip } : {}) });
    }
    this.engine.updateIdentities([...ids].map(([canonical, id]) => [id, LabelSet.fromCanonical(canonical)] as const));
    for (const ep of this.endpoints.values()) this.engine.upsertEndpoint(ep.name, ep.labels);
    const names = new Set<string>();
    for (const p of policies) {
      let name = p.file;
      for (let n = 2; names.has(name); n++) name = `${p.file}(${n})`;
      names.add(name);
      this.engine.upsertPolicy(name, p.rules);
    }
    this.engine.flush();
  }

  /** SPEC: an endpoint name, `host`, `remote-node`, `world`, or an IPv4 address. */
  resolvePeer(spec: string): TracePeer {
    const ep = this.endpoints.get(spec);
    if (ep !== undefined) return this.endpointPeer(ep);
    if (spec === 'host') return { kind: 'reserved', name: 'host', identity: ReservedIdentity.host };
    if (spec === 'remote-node') return { kind: 'reserved', name: 'remote-node', identity: ReservedIdentity.remoteNode };
    if (spec === 'world') return { kind: 'reserved', name: 'world', identity: ReservedIdentity.world };
    const ip = parseIPv4(spec);
    if (ip === undefined) {
      const names = [...this.endpoints.keys()].slice(0, 10).join(', ');
      throw new TraceInputError(`unknown peer ${JSON.stringify(spec)}: not an endpoint name (${names || 'none defined'}), host, remote-node, world or an IPv4 address`);
    }
    for (const e of this.endpoints.values()) if (e.ip === ip) return this.endpointPeer(e);
    // The ipcache is an LPM trie: the most specific CIDR identity wins, misses are world.
    let best: { prefix: string; identity: number; len: number } | undefined;
    for (const c of this.engine.ipcache()) {
      if (cidrContainsIp(c.cidr, ip) && (best === undefined || c.cidr.len > best.len)) best = { prefix: c.prefix, identity: c.identity, len: c.cidr.len };
    }
    const text = formatIPv4(ip);
    if (best === undefined) return { kind: 'address', ip: text, identity: ReservedIdentity.world };
    return { kind: 'address', ip: text, identity: best.identity, prefix: best.prefix };
  }

  private endpointPeer(ep: OfflineEndpoint): TracePeer {
    return { kind: 'endpoint', name: ep.name, identity: ep.identity, labels: ep.labels.toStrings(), ...(ep.ip !== undefined ? { ip: formatIPv4(ep.ip) } : {}) };
  }

  trace(q: TraceQuery): TraceResult {
    checkDport(q.dport);
    return traceEngine(this.engine, this.resolvePeer(q.from), this.resolvePeer(q.to), q);
  }
}

function checkDport(dport: number): void {
  if (!Number.isInteger(dport) || dport < 0 || dport > 65535) throw new TraceInputError(`dport ${dport} is out of range 0..65535`);
}

/**
 * Traces a connection between two resolved peers through an engine's current (last flushed)
 * state: the source's egress AND the destination's ingress must allow it. Read-only: the live
 * agent uses it on its own engine (online trace), OfflineTrace on a world built from files.
 */
export function traceEngine(engine: PolicyEngine, from: TracePeer, to: TracePeer, q: TraceQuery): TraceResult {
  checkDport(q.dport);
  const egress = side(engine, 'egress', from, to.identity, q);
  const ingress = side(engine, 'ingress', to, from.identity, q);
  const verdict = egress.verdict === 'allowed' && ingress.verdict === 'allowed' ? 'allowed' : 'denied';
  return { verdict, from, to, dport: q.dport, protocol: q.protocol, egress, ingress };
}

function side(engine: PolicyEngine, direction: 'egress' | 'ingress', local: TracePeer, remoteIdentity: number, q: TraceQuery): DirectionTrace {
  const view = local.kind === 'endpoint' ? engine.endpoint(local.name) : undefined;
  if (local.kind !== 'endpoint' || view === undefined) {
    return { direction, endpoint: null, remoteIdentity, enforced: false, rules: [], verdict: 'allowed', reason: `${peerName(local)} is not a local endpoint: no ${direction} policy applies`, entries: [], proxyPort: 0 };
  }
  const dir = direction === 'ingress' ? Direction.ingress : Direction.egress;
  const rules = view.rules
    .filter((r) => (direction === 'ingress' ? r.rule.ingress.length + r.rule.ingressDeny.length : r.rule.egress.length + r.rule.egressDeny.length) > 0 || r.rule.defaultDeny[direction])
    .map((r) => ruleRef(r.ref, r.rule.origin, r.rule.description));
  const enforced = view.enforcement[direction];
  const protos = q.protocol === 'ANY' ? (['TCP', 'UDP', 'SCTP'] as const) : [q.protocol];
  let result: DirectionTrace | undefined;
  for (const p of protos) {
    const r = decide(direction, local.name, view.entries, dir, PROTOCOLS[p], q, remoteIdentity, enforced, rules, protos.length > 1 ? p : undefined);
    if (result === undefined || (result.verdict === 'allowed' && r.verdict === 'denied')) result = r;
  }
  return result!;
}

function decide(
  direction: 'egress' | 'ingress',
  endpoint: string,
  entries: readonly DesiredEntry[],
  dir: Direction,
  protocol: Protocol,
  q: TraceQuery,
  remote: number,
  enforced: boolean,
  rules: readonly TraceRuleRef[],
  protoNote: string | undefined,
): DirectionTrace {
  const specific = lpmLookup(entries, remote, dir, protocol, q.dport);
  const wildcard = lpmLookup(entries, 0, dir, protocol, q.dport);
  const hits = [specific, wildcard].filter((e): e is DesiredEntry => e !== undefined);
  const base = { direction, endpoint, remoteIdentity: remote, enforced, rules, entries: hits.map(entryView) };
  const on = protoNote === undefined ? '' : ` (${protoNote})`;
  const deny = hits.find((e) => e.entry.deny);
  if (deny !== undefined) return { ...base, verdict: 'denied', reason: `deny entry ${entryView(deny).key} from ${deny.rules.join(', ')}${on}`, proxyPort: 0 };
  if (hits.length === 0) {
    return { ...base, verdict: 'denied', reason: `no entry allows identity ${remote}${on}: default deny (${direction} policy is enforced)`, proxyPort: 0 };
  }
  // Longer match wins the redirect decision; on a tie the identity-specific entry wins.
  const chosen = hits.length === 2 && policyKeyLength(hits[1]!.key) > policyKeyLength(hits[0]!.key) ? hits[1]! : hits[0]!;
  const proxyPort = chosen.entry.proxyPort;
  const why = chosen.rules.includes('default-allow') ? `no rule enforces ${direction} on this endpoint: default allow` : `allow entry ${entryView(chosen).key} from ${chosen.rules.join(', ')}`;
  if (proxyPort === 0) {
    return { ...base, verdict: 'allowed', reason: `${why}${on}`, proxyPort, ...(q.http !== undefined ? { http: { evaluated: false, allowed: true, rules: [] } } : {}) };
  }
  // The proxy applies the HTTP rules of this identity and of identity 0 on the exact port.
  const l7: HttpRule[] = [];
  for (const id of [remote, 0]) {
    for (const e of entries) {
      if (e.key.identity === id && policyKeyMatches(e.key, dir, protocol, q.dport) && e.entry.proxyPort !== 0 && e.http !== undefined) l7.push(...e.http);
    }
  }
  const ruleTexts = l7.map(describeHttpRule);
  if (q.http === undefined) {
    return { ...base, verdict: 'allowed', reason: `${why}${on}; L7: redirected to proxy port ${proxyPort}, HTTP rules apply (give --http-method/--http-path to evaluate a request)`, proxyPort, http: { evaluated: false, allowed: true, rules: ruleTexts } };
  }
  const match = l7.find((r) => httpRuleMatches(r, q.http!));
  if (match === undefined) {
    return { ...base, verdict: 'denied', reason: `${why}${on}; L7: no HTTP rule matches ${q.http.method} ${q.http.path} (proxy answers 403)`, proxyPort, http: { evaluated: true, allowed: false, rules: ruleTexts } };
  }
  return { ...base, verdict: 'allowed', reason: `${why}${on}; L7: HTTP rule ${describeHttpRule(match)} matches`, proxyPort, http: { evaluated: true, allowed: true, matchedRule: describeHttpRule(match), rules: ruleTexts } };
}

function peerName(p: TracePeer): string {
  switch (p.kind) {
    case 'endpoint':
      return `endpoint ${p.name}`;
    case 'reserved':
      return p.name;
    case 'address':
      return `address ${p.ip}`;
  }
}

function ruleRef(ref: string, o: RuleOrigin, description: string | undefined): TraceRuleRef {
  return {
    ref,
    file: o.file,
    document: o.document,
    rule: o.rule,
    ...(o.line !== undefined ? { line: o.line } : {}),
    ...(o.name !== undefined ? { name: o.name } : {}),
    ...(description !== undefined ? { description } : {}),
  };
}

export function identityName(id: number): string {
  if (id === 0) return 'any';
  const r = RESERVED_LABEL_NAMES[id];
  return r !== undefined ? `${id} (reserved:${r})` : String(id);
}
