import { cidrContainsIp, formatIPv4, isLocalIdentity, isReserved, parseIPv4, ReservedIdentity } from '../../identity/index.js';
import { TraceInputError, traceEngine, type PolicyEngine, type TracePeer, type TraceQuery, type TraceResult } from '../calc/index.js';

/** What an online trace reads from the running agent (all live, nothing recomputed). */
export interface LiveTraceSources {
  readonly engine: PolicyEngine;
  /** This host's endpoints. */
  local(): Iterable<{ readonly name: string; readonly ip: string; readonly identity: number; readonly labels: readonly string[] }>;
  /** The kernel ipcache's longest-prefix match (what the datapath sees). */
  ipcacheLookup(ip: string): { readonly identity: number } | undefined;
  /** Labels of a cluster identity from the identity cache. */
  identityLabels(id: number): readonly string[] | undefined;
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

/** The offline trace's question answered from the agent's live engine and ipcache. */
export function liveTrace(src: LiveTraceSources, q: TraceQuery): TraceResult {
  return traceEngine(src.engine, resolveLivePeer(src, q.from), resolveLivePeer(src, q.to), q);
}
