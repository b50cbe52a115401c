import { readU16Host, readU32Host, htons, ntohs, writeU16Host, writeU32Host } from '../byteorder.js';
import { portMask, validatePolicyKey } from './types.js';
import type { Direction, PolicyEntry, PolicyKey, Protocol } from './types.js';

/**
 * Kernel layout of the per-endpoint policy map (LPM trie), mirroring `struct ward_policy_key`
 * and `struct ward_policy_value` in bpf/include/ward_abi.h byte for byte.
 *
 *   key   (12 B): u32 prefixLen | u32 identityHost | u8 direction | u8 protocol | be16 portNetwork
 *   value ( 8 B): be16 proxyPortNetwork | u8 flags | u8 l4PrefixLen | u32 reserved
 *
 * prefixLen always covers identity and direction (40 bits); then protocol (8) and the port's
 * leading portPrefixLen bits. `*Network` fields hold the u16 as it sits in memory read in host
 * order (like Cilium's DestPortNetwork), i.e. htons(port).
 */
export const POLICY_KEY_SIZE = 12;
export const POLICY_VALUE_SIZE = 8;
export const POLICY_STATIC_PREFIX = 40;
export const POLICY_FULL_PREFIX = 64;
export const POLICY_FLAG_DENY = 0x1;

export interface PolicyKeyRaw {
  prefixLen: number;
  identityHost: number;
  direction: number;
  protocol: number;
  portNetwork: number;
}

export interface PolicyValueRaw {
  proxyPortNetwork: number;
  flags: number;
  l4PrefixLen: number;
}

/** Protocol + port prefix bits of a key: how specific its L4 part is (0..24). */
export function l4PrefixLen(k: PolicyKey): number {
  return k.protocol === 0 ? 0 : 8 + k.portPrefixLen;
}

export function policyKeyToRaw(k: PolicyKey): PolicyKeyRaw {
  validatePolicyKey(k);
  return {
    prefixLen: POLICY_STATIC_PREFIX + l4PrefixLen(k),
    identityHost: k.identity,
    direction: k.direction,
    protocol: k.protocol,
    portNetwork: htons(k.port),
  };
}

export function policyKeyFromRaw(r: PolicyKeyRaw): PolicyKey {
  const l4 = Math.max(0, r.prefixLen - POLICY_STATIC_PREFIX);
  const protocol = (l4 >= 8 ? r.protocol : 0) as Protocol;
  const portPrefixLen = Math.max(0, l4 - 8);
  return {
    identity: r.identityHost,
    direction: r.direction as Direction,
    protocol,
    port: ntohs(r.portNetwork) & portMask(portPrefixLen),
    portPrefixLen,
  };
}

export function encodePolicyKeyRaw(r: PolicyKeyRaw, buf: Buffer, off = 0): void {
  writeU32Host(buf, r.prefixLen, off);
  writeU32Host(buf, r.identityHost, off + 4);
  buf.writeUInt8(r.direction, off + 8);
  buf.writeUInt8(r.protocol, off + 9);
  writeU16Host(buf, r.portNetwork, off + 10);
}

export function decodePolicyKeyRaw(buf: Buffer, off = 0): PolicyKeyRaw {
  return {
    prefixLen: readU32Host(buf, off),
    identityHost: readU32Host(buf, off + 4),
    direction: buf.readUInt8(off + 8),
    protocol: buf.readUInt8(off + 9),
    portNetwork: readU16Host(buf, off + 10),
  };
}

export function policyValueToRaw(e: PolicyEntry, key: PolicyKey): PolicyValueRaw {
  if (!Number.isInteger(e.proxyPort) || e.proxyPort < 0 || e.proxyPort > 0xffff) throw new RangeError(`proxyPort ${e.proxyPort}`);
  return { proxyPortNetwork: htons(e.proxyPort), flags: e.deny ? POLICY_FLAG_DENY : 0, l4PrefixLen: l4PrefixLen(key) };
}

export function policyValueFromRaw(r: PolicyValueRaw): PolicyEntry {
  return { deny: (r.flags & POLICY_FLAG_DENY) !== 0, proxyPort: ntohs(r.proxyPortNetwork) };
}

export function encodePolicyValueRaw(r: PolicyValueRaw, buf: Buffer, off = 0): void {
  writeU16Host(buf, r.proxyPortNetwork, off);
  buf.writeUInt8(r.flags, off + 2);
  buf.writeUInt8(r.l4PrefixLen, off + 3);
  writeU32Host(buf, 0, off + 4);
}

export function decodePolicyValueRaw(buf: Buffer, off = 0): PolicyValueRaw {
  return { proxyPortNetwork: readU16Host(buf, off), flags: buf.readUInt8(off + 2), l4PrefixLen: buf.readUInt8(off + 3) };
}

/** PolicyKey -> kernel bytes. */
export function encodePolicyKey(k: PolicyKey, buf: Buffer = Buffer.alloc(POLICY_KEY_SIZE), off = 0): Buffer {
  encodePolicyKeyRaw(policyKeyToRaw(k), buf, off);
  return buf;
}

export function decodePolicyKey(buf: Buffer, off = 0): PolicyKey {
  return policyKeyFromRaw(decodePolicyKeyRaw(buf, off));
}

export function encodePolicyValue(e: PolicyEntry, k: PolicyKey, buf: Buffer = Buffer.alloc(POLICY_VALUE_SIZE), off = 0): Buffer {
  encodePolicyValueRaw(policyValueToRaw(e, k), buf, off);
  return buf;
}

export function decodePolicyValue(buf: Buffer, off = 0): PolicyEntry {
  return policyValueFromRaw(decodePolicyValueRaw(buf, off));
}
