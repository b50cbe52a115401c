// Each local endpoint's policy map as the pure engine computes it from etcd, and the same entries
// read back from an agent's kernel map (GET /v1/bpf/policy/<endpoint>), in one comparable form.
import { Direction, Protocol, policyKeyString, type PolicyKey } from '../../bpf/policy-map/types.js';
import { PolicyEngine } from '../../agent/calc/index.js';
import type { BpfPolicyEntryJson, BpfPolicyJson } from '../../agent/api/observe-types.js';
import type { ClusterSnapshot } from './cluster-state.js';

/** Policy key string -> `deny` / `allow` / `allow+proxy` (proxy ports are per agent: only 0 vs non-zero). */
export type MapLines = ReadonlyMap<string, string>;

const verdict = (deny: boolean, proxyPort: number): string => (deny ? 'deny' : proxyPort !== 0 ? 'allow+proxy' : 'allow');

/**
 * The policy maps of `node`'s endpoints as an agent that saw exactly this snapshot programs
 * them: a fresh PolicyEngine (as the online trace's scratch engine) fed the cluster
 * identities, the node's endpoints (labels = their identity's labels) and every policy.
 * An endpoint whose identity is missing maps to a reason instead.
 */
export function desiredPolicyMaps(s: ClusterSnapshot, node: string): Map<string, MapLines | string> {
  const engine = new PolicyEngine();
  engine.updateIdentities(s.identities);
  const out = new Map<string, MapLines | string>();
  for (const e of s.endpoints) {
    if (e.node !== node) continue;
    const labels = s.identities.get(e.identity);
    if (labels === undefined) out.set(e.name, `identity ${e.identity} of endpoint ${e.name} is missing in etcd`);
    else engine.upsertEndpoint(e.name, labels);
  }
  for (const p of s.policies) engine.upsertPolicy(p.name, p.rules);
  engine.flush();
  for (const name of engine.endpointIds()) {
    const view = engine.endpoint(name)!;
    out.set(name, new Map(view.entries.map((d) => [policyKeyString(d.key), verdict(d.entry.deny, d.entry.proxyPort)])));
  }
  return out;
}

const PROTOCOL_BY_NAME: Readonly<Record<string, number>> = { ANY: Protocol.any, ICMP: Protocol.icmp, TCP: Protocol.tcp, UDP: Protocol.udp, SCTP: Protocol.sctp };

/** The API's `ports` text (`ANY`, `80`, `8000-8007`) back to port + prefix length. */
function keyOf(e: BpfPolicyEntryJson): PolicyKey {
  const protocol = (PROTOCOL_BY_NAME[e.protocol] ?? Number(e.protocol)) as Protocol;
  const direction = e.direction === 'ingress' ? Direction.ingress : Direction.egress;
  if (e.ports === 'ANY') return { identity: e.identity, direction, protocol, port: 0, portPrefixLen: 0 };
  const [lo, hi] = e.ports.split('-').map(Number) as [number, number | undefined];
  const size = hi === undefined ? 1 : hi - lo + 1;
  return { identity: e.identity, direction, protocol, port: lo, portPrefixLen: 16 - Math.log2(size) };
}

/** The entries the kernel map holds (inKernel), in the form of desiredPolicyMaps. */
export function kernelPolicyMap(m: BpfPolicyJson): MapLines {
  return new Map(m.entries.filter((e) => e.inKernel).map((e) => [policyKeyString(keyOf(e)), verdict(e.deny, e.proxyPort)]));
}

/** Human-readable differences (empty: equal). */
export function diffMaps(want: MapLines, got: MapLines, limit = 8): string[] {
  const out: string[] = [];
  for (const [k, v] of want) if (got.get(k) !== v) out.push(`missing ${k} ${v}${got.has(k) ? ` (kernel: ${got.get(k)})` : ''}`);
  for (const [k, v] of got) if (!want.has(k)) out.push(`extra ${k} ${v}`);
  return out.length > limit ? [...out.slice(0, limit), `... ${out.length - limit} more`] : out;
}
