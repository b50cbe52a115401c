import { cidrContainsIp, formatIPv4, isLocalIdentity, isReserved, LabelSet, parseIPv4, ReservedIdentity } from '../../identity/index.js';
import { PolicyEngine, TraceInputError, traceEngine, type TracePeer, type TraceQuery, type TraceResult } from '../calc/index.js';

/** What an online trace reads from the running agent (all live, nothing recomputed). */
export interface LiveTraceSources {
  readonly engine: PolicyEngine;
  /** This host's endpoints. */
  local(): Iterable<{ readonly name: string; readonly ip: string; readonly identity: number; readonly labels: readonly string[] }>;
  /** The kernel ipcache's longest-prefix match (what the datapath sees). */
  ipcacheLookup(ip: string): { readonly identity: number } | undefined;
  /** Labels of a cluster identity from the identity cache. */
  identityLabels(id: number): readonly string[] | undefined;
  /** Every known cluster identity (for judging a remote endpoint's side). */
  identities(): Iterable<readonly [number, LabelSet]>;
}

const RESERVED_PEERS: Readonly<Record<string, number>> = { host: ReservedIdentity.host, 'remote-node': ReservedIdentity.remoteNode, world: ReservedIdentity.world };

/**
 * SPEC: a local endpoint name, `host`, `remote-node`, `world`, or an IPv4 address resolved as
 * the datapath would: a local endpoint's IP is that endpoint, else the kernel ipcache's
 * identity (remote endpoints carry their labels), else world.
 */
export function resolveLivePeer(src: LiveTraceSources, spec: string): TracePeer {
  const locals = [...src.local()];
  const ep = locals.find((e) => e.name === spec);
  if (ep !== undefined) return { kind: 'endpoint', name: ep.name, identity: ep.identity, labels: ep.labels, ip: ep.ip };
  const reserved = RESERVED_PEERS[spec];
  if (reserved !== undefined) return { kind: 'reserved', name: spec, identity: reserved };
  const ip = parseIPv4(spec);
  if (ip === undefined) {
    const names = locals.map((e) => e.name).slice(0, 10).join(', ');
    throw new TraceInputError(`unknown peer ${JSON.stringify(spec)}: not a local endpoint (${names || 'none on this host'}), host, remote-node, world or an IPv4 address`);
  }
  const text = formatIPv4(ip);
  const mine = locals.find((e) => e.ip === text);
  if (mine !== undefined) return { kind: 'endpoint', name: mine.name, identity: mine.identity, labels: mine.labels, ip: mine.ip };
  const hit = src.ipcacheLookup(text);
  if (hit === undefined) return { kind: 'address', ip: text, identity: ReservedIdentity.world };
  if (isLocalIdentity(hit.identity)) {
    const prefix = src.engine
      .ipcache()
      .filter((c) => c.identity === hit.identity && cidrContainsIp(c.cidr, ip))
      .sort((a, b) => b.cidr.len - a.cidr.len)[0]?.prefix;
    return { kind: 'address', ip: text, identity: hit.identity, ...(prefix !== undefined ? { prefix } : {}) };
  }
  const labels = isReserved(hit.identity) ? undefined : src.identityLabels(hit.identity);
  return { kind: 'address', ip: text, identity: hit.identity, ...(labels !== undefined ? { labels } : {}) };
}

type RemoteEndpointPeer = Extract<TracePeer, { kind: 'address' }> & { readonly labels: readonly string[] };

/** An address that the ipcache maps to a cluster identity with labels: another host's endpoint. */
function isRemoteEndpoint(p: TracePeer): p is RemoteEndpointPeer {
  return p.kind === 'address' && p.labels !== undefined;
}

/**
 * The policy of endpoints on other hosts: policies are cluster-wide, so this host can compute
 * them from the same rules and identities in a scratch engine (per query; the live engine is
 * never touched).
 */
function remoteSide(src: LiveTraceSources, from: TracePeer, to: TracePeer, q: TraceQuery): TraceResult {
  const scratch = new PolicyEngine();
  scratch.updateIdentities(src.identities());
  for (const name of src.engine.repository.names()) {
    const stored = src.engine.repository.get(name);
    if (stored !== undefined) scratch.upsertPolicy(name, stored.rules.map((r) => r.rule));
  }
  const asEndpoint = (p: TracePeer): TracePeer => {
    if (!isRemoteEndpoint(p)) return p;
    const name = `remote endpoint ${p.ip}`;
    scratch.upsertEndpoint(name, LabelSet.parse(p.labels));
    return { kind: 'endpoint', name, identity: p.identity, labels: p.labels, ip: p.ip };
  };
  const f = asEndpoint(from);
  const t = asEndpoint(to);
  scratch.flush();
  return traceEngine(scratch, f, t, q);
}

/**
 * The offline trace's question answered from the agent's live state: local endpoints' sides
 * from the live engine, remote endpoints' sides (enforced on their own hosts) computed from
 * the same cluster-wide policies and identities.
 */
export function liveTrace(src: LiveTraceSources, q: TraceQuery): TraceResult {
  const from = resolveLivePeer(src, q.from);
  const to = resolveLivePeer(src, q.to);
  const live = traceEngine(src.engine, from, to, q);
  if (!isRemoteEndpoint(from) && !isRemoteEndpoint(to)) return live;
  const remote = remoteSide(src, from, to, q);
  const egress = isRemoteEndpoint(from) ? remote.egress : live.egress;
  const ingress = isRemoteEndpoint(to) ? remote.ingress : live.ingress;
  const verdict = egress.verdict === 'allowed' && ingress.verdict === 'allowed' ? 'allowed' : 'denied';
  return { ...live, verdict, egress, ingress };
}
