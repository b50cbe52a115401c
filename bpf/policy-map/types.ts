/**
 * The policy-map contract shared by the policy engine (desired state) and the datapath
 * (kernel map). Host byte order everywhere here; the kernel layout lives in layout.ts.
 *
 * The kernel map is an LPM trie over (identity, direction, protocol, port): identity and
 * direction are always matched exactly; protocol and port can be wildcarded by prefix length,
 * as in Cilium's policy map. The datapath does two lookups per packet, one with the remote
 * identity and one with identity 0 (any), so lookups are O(1) in the number of identities.
 * Verdict: deny if either lookup hits a deny entry; otherwise allow if either hits an allow
 * entry (the proxy port of the longer match wins); otherwise drop.
 *
 * The engine guarantees that no allow entry is shadowed by a covering deny of the same
 * identity (it removes covered allows), so longest-prefix match never hides a deny.
 */

export const Direction = { ingress: 0, egress: 1 } as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

/** IANA protocol numbers the datapath understands; 0 = any protocol. */
export const Protocol = { any: 0, icmp: 1, tcp: 6, udp: 17, sctp: 132 } as const;
export type Protocol = (typeof Protocol)[keyof typeof Protocol];

export interface PolicyKey {
  /** Remote security identity; 0 = any identity. */
  readonly identity: number;
  readonly direction: Direction;
  /** 0 = any protocol; then portPrefixLen must be 0. */
  readonly protocol: Protocol;
  /** Destination port (host order); for ICMP the type is not matched (port must be 0). */
  readonly port: number;
  /** How many leading bits of `port` must match: 16 = exactly `port`, 0 = all ports. */
  readonly portPrefixLen: number;
}

export interface PolicyEntry {
  readonly deny: boolean;
  /** L7 proxy port (host order) for allowed traffic that must be redirected; 0 = none. */
  readonly proxyPort: number;
}

/** A stable string for a key, for use in JS maps and sets. */
export function policyKeyString(k: PolicyKey): string {
  return `${k.identity}/${k.direction}/${k.protocol}/${k.port}/${k.portPrefixLen}`;
}

export function parsePolicyKeyString(s: string): PolicyKey {
  const parts = s.split('/').map(Number);
  if (parts.length !== 5 || parts.some((n) => !Number.isInteger(n))) throw new Error(`bad policy key string ${s}`);
  const [identity, direction, protocol, port, portPrefixLen] = parts as [number, number, number, number, number];
  return validatePolicyKey({ identity, direction: direction as Direction, protocol: protocol as Protocol, port, portPrefixLen });
}

/** Throws RangeError if the key cannot be represented in the kernel map. */
export function validatePolicyKey(k: PolicyKey): PolicyKey {
  if (!Number.isInteger(k.identity) || k.identity < 0 || k.identity > 0xffff_ffff) throw new RangeError(`identity ${k.identity}`);
  if (k.direction !== 0 && k.direction !== 1) throw new RangeError(`direction ${String(k.direction)}`);
  if (![0, 1, 6, 17, 132].includes(k.protocol)) throw new RangeError(`protocol ${String(k.protocol)}`);
  if (!Number.isInteger(k.portPrefixLen) || k.portPrefixLen < 0 || k.portPrefixLen > 16) throw new RangeError(`portPrefixLen ${k.portPrefixLen}`);
  if (!Number.isInteger(k.port) || k.port < 0 || k.port > 0xffff) throw new RangeError(`port ${k.port}`);
  if (k.protocol === 0 && k.portPrefixLen !== 0) throw new RangeError('a port needs a protocol');
  const mask = portMask(k.portPrefixLen);
  if ((k.port & mask) !== k.port) throw new RangeError(`port ${k.port} has bits beyond /${k.portPrefixLen}`);
  return k;
}

export function portMask(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffff << (16 - prefixLen)) & 0xffff;
}

/** Does key `a` cover key `b` (same identity and direction, wider-or-equal protocol/port)? */
export function keyCovers(a: PolicyKey, b: PolicyKey): boolean {
  if (a.identity !== b.identity || a.direction !== b.direction) return false;
  if (a.protocol === 0) return true;
  if (a.protocol !== b.protocol) return false;
  if (a.portPrefixLen > b.portPrefixLen) return false;
  const m = portMask(a.portPrefixLen);
  return (b.port & m) === a.port;
}

/** Splits an inclusive port range into the fewest aligned (port, prefixLen) blocks. */
export function portRangeToPrefixes(start: number, end: number): { port: number; portPrefixLen: number }[] {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > 0xffff || start > end) {
    throw new RangeError(`bad port range ${start}-${end}`);
  }
  if (start === 0 && end === 0xffff) return [{ port: 0, portPrefixLen: 0 }];
  const out: { port: number; portPrefixLen: number }[] = [];
  let p = start;
  while (p <= end) {
    let size = 1;
    let bits = 0;
    // Grow the block while it stays aligned at p and inside the range.
    while (bits < 16 && p % (size * 2) === 0 && p + size * 2 - 1 <= end) {
      size *= 2;
      bits++;
    }
    out.push({ port: p, portPrefixLen: 16 - bits });
    p += size;
  }
  return out;
}
