import { cidrContainsIp, isLocalIdentity, isReserved, parseCidr, parseIPv4 } from '../../identity/index.js';

/** What a remote endpoint entry claims, and where it was read from. */
export interface RemoteEndpointClaim {
  /** The node named by the key (`endpoints/v1/<node>/<ip>`): RBAC limits a node to its own prefix. */
  readonly keyNode: string;
  readonly keyIp: string;
  readonly value: { readonly node: string; readonly ip: string; readonly identity: number };
}

/**
 * Why another node's endpoint entry must not reach this node's ipcache, or undefined if it may.
 * A node can write only under its own prefix, so the key is trusted and the value is checked
 * against it: a compromised node may lie about its own endpoints, but must not claim a
 * reserved or CIDR identity (e.g. `host`, to get host privileges), another node's name, or
 * an address of this node's endpoint range.
 */
export function distrustRemoteEndpoint(c: RemoteEndpointClaim, ownEndpointCidr: string): string | undefined {
  if (c.value.node !== c.keyNode) return `value names node ${JSON.stringify(c.value.node)} under node ${JSON.stringify(c.keyNode)}'s prefix`;
  if (c.value.ip !== c.keyIp) return `value ip ${c.value.ip} differs from the key's ${c.keyIp}`;
  if (isReserved(c.value.identity) || isLocalIdentity(c.value.identity) || c.value.identity === 0) {
    return `identity ${c.value.identity} is not a cluster identity`;
  }
  const ip = parseIPv4(c.value.ip);
  if (ip === undefined) return `ip ${JSON.stringify(c.value.ip)} is not IPv4`;
  if (cidrContainsIp(parseCidr(ownEndpointCidr), ip)) return `ip ${c.value.ip} is inside this node's endpoint range ${ownEndpointCidr}`;
  return undefined;
}
