import { formatIpv4, parseIpv4, readIpv4Network, readU32Host, writeIpv4Network, writeU32Host } from '../byteorder.js';

/**
 * Kernel layout of the global ipcache (LPM trie over IPv4), mirroring `struct ward_ipcache_key`
 * and `struct ward_ipcache_value` in bpf/include/ward_abi.h.
 *
 *   key   (8 B): u32 prefixLen (0..32) | be32 addrNetwork
 *   value (8 B): u32 identityHost | be32 nodeAddrNetwork (owning node, 0 = none)
 *
 * `addrNetwork`/`nodeAddrNetwork` hold the address value (a.b.c.d = a<<24|...); the encoder
 * writes them most significant byte first, as the kernel's __be32.
 */
export const IPCACHE_KEY_SIZE = 8;
export const IPCACHE_VALUE_SIZE = 8;

export interface IpcacheKeyRaw {
  prefixLen: number;
  addrNetwork: number;
}
export interface IpcacheValueRaw {
  identityHost: number;
  nodeAddrNetwork: number;
}

/** An ipcache entry as callers see it. */
export interface IpcacheEntry {
  /** IPv4 CIDR, e.g. "10.1.0.7/32" (a bare address means /32). */
  readonly cidr: string;
  readonly identity: number;
  /** IPv4 of the node that owns the endpoint, if remote. */
  readonly nodeAddress?: string;
}

/** Parses an IPv4 CIDR into its canonical raw key; returns undefined for IPv6. Throws on junk. */
export function ipcacheKeyFromCidr(cidr: string): IpcacheKeyRaw | undefined {
  if (cidr.includes(':')) return undefined;
  const [addr, len] = cidr.split('/');
  const prefixLen = len === undefined ? 32 : Number(len);
  if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > 32) throw new RangeError(`bad prefix length in ${cidr}`);
  const a = parseIpv4(addr ?? '');
  const mask = prefixLen === 0 ? 0 : (0xffff_ffff << (32 - prefixLen)) >>> 0;
  return { prefixLen, addrNetwork: (a & mask) >>> 0 };
}

export function cidrFromIpcacheKey(k: IpcacheKeyRaw): string {
  return `${formatIpv4(k.addrNetwork)}/${k.prefixLen}`;
}

/** Canonical CIDR text (host bits cleared, explicit length); undefined for IPv6. */
export function canonicalCidr(cidr: string): string | undefined {
  const k = ipcacheKeyFromCidr(cidr);
  return k && cidrFromIpcacheKey(k);
}

export function encodeIpcacheKeyRaw(k: IpcacheKeyRaw, buf: Buffer, off = 0): void {
  writeU32Host(buf, k.prefixLen, off);
  writeIpv4Network(buf, k.addrNetwork, off + 4);
}
export function decodeIpcacheKeyRaw(buf: Buffer, off = 0): IpcacheKeyRaw {
  return { prefixLen: readU32Host(buf, off), addrNetwork: readIpv4Network(buf, off + 4) };
}

export function ipcacheValueToRaw(identity: number, nodeAddress?: string): IpcacheValueRaw {
  if (!Number.isInteger(identity) || identity < 0 || identity > 0xffff_ffff) throw new RangeError(`identity ${identity}`);
  return { identityHost: identity, nodeAddrNetwork: nodeAddress === undefined ? 0 : parseIpv4(nodeAddress) };
}

export function encodeIpcacheValueRaw(v: IpcacheValueRaw, buf: Buffer, off = 0): void {
  writeU32Host(buf, v.identityHost, off);
  writeIpv4Network(buf, v.nodeAddrNetwork, off + 4);
}
export function decodeIpcacheValueRaw(buf: Buffer, off = 0): IpcacheValueRaw {
  return { identityHost: readU32Host(buf, off), nodeAddrNetwork: readIpv4Network(buf, off + 4) };
}
