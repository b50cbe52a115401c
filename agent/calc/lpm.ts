import { portMask, type PolicyKey } from '../../bpf/policy-map/types.js';
import type { DesiredEntry } from './map-state.js';

/** LPM length of a key over (protocol, port): protocol 0 = /0, else 8 + port prefix. */
export function policyKeyLength(k: PolicyKey): number {
  return k.protocol === 0 ? 0 : 8 + k.portPrefixLen;
}

/** Whether a policy key covers (direction, protocol, port), as the datapath's LPM trie sees it. */
export function policyKeyMatches(k: PolicyKey, direction: number, protocol: number, port: number): boolean {
  if (k.direction !== direction) return false;
  if (k.protocol === 0) return true;
  return k.protocol === protocol && (port & portMask(k.portPrefixLen)) === k.port;
}

/** The datapath's longest-prefix lookup for one identity (shared by `ward policy trace` and the L7 proxy, so they agree). */
export function lpmLookup(entries: Iterable<DesiredEntry>, identity: number, direction: number, protocol: number, port: number): DesiredEntry | undefined {
  let best: DesiredEntry | undefined;
  for (const e of entries) {
    if (e.key.identity !== identity || !policyKeyMatches(e.key, direction, protocol, port)) continue;
    if (best === undefined || policyKeyLength(e.key) > policyKeyLength(best.key)) best = e;
  }
  return best;
}
