import { l4PrefixLen } from './layout.js';
import { portMask } from './types.js';
import type { Direction, PolicyEntry, PolicyKey } from './types.js';

export interface PacketPolicyQuery {
  readonly remoteIdentity: number;
  readonly direction: Direction;
  /** IP protocol number of the packet. */
  readonly protocol: number;
  /** Destination port (host order); ignored for ICMP (treated as 0). */
  readonly port: number;
}

export type PolicyVerdict =
  | { readonly allowed: true; readonly proxyPort: number }
  | { readonly allowed: false; readonly reason: 'deny' | 'no-match' };

/** The longest entry of `identity` covering the packet (what one LPM lookup returns). */
function lpm(entries: ReadonlyMap<string, readonly [PolicyKey, PolicyEntry]>, identity: number, q: PacketPolicyQuery): readonly [PolicyKey, PolicyEntry] | undefined {
  const port = q.protocol === 1 ? 0 : q.port;
  let best: readonly [PolicyKey, PolicyEntry] | undefined;
  for (const e of entries.values()) {
    const k = e[0];
    if (k.identity !== identity || k.direction !== q.direction) continue;
    if (k.protocol !== 0 && (k.protocol !== q.protocol || (port & portMask(k.portPrefixLen)) !== k.port)) continue;
    if (!best || l4PrefixLen(k) > l4PrefixLen(best[0])) best = e;
  }
  return best;
}

/**
 * The datapath's decision for a packet, exactly as bpf/progs/ward_endpoint.c computes it:
 * two longest-prefix lookups (remote identity, then 0); a deny from either wins; otherwise the
 * longer allow decides the proxy port (the remote-identity match on a tie); nothing = drop.
 * O(entries): for fakes and tests, not for the datapath.
 */
export function evaluatePolicy(entries: ReadonlyMap<string, readonly [PolicyKey, PolicyEntry]>, q: PacketPolicyQuery): PolicyVerdict {
  const l3 = lpm(entries, q.remoteIdentity, q);
  const any = lpm(entries, 0, q);
  if (l3?.[1].deny || any?.[1].deny) return { allowed: false, reason: 'deny' };
  let pick = l3;
  if (!pick || (any && l4PrefixLen(any[0]) > l4PrefixLen(pick[0]))) pick = any;
  if (!pick) return { allowed: false, reason: 'no-match' };
  return { allowed: true, proxyPort: pick[1].proxyPort };
}
