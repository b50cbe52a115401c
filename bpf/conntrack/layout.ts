import { formatIpv4, parseIpv4, readIpv4Network, readU16Host, readU32Host, readU64Host, htons, ntohs, writeIpv4Network, writeU16Host, writeU32Host, writeU64Host } from '../byteorder.js';

/**
 * Kernel layout of the conntrack map (LRU hash), mirroring `struct ward_ct_key` and
 * `struct ward_ct_value` in bpf/include/ward_abi.h.
 *   key   (20 B): u32 endpointIdHost | be32 saddr | be32 daddr | be16 sportNetwork | be16 dportNetwork
 *                 | u8 protocol | u8 direction | u16 pad
 *   value (40 B): u64 createdNsHost | u64 lastSeenNsHost | u64 packets | u64 bytes
 *                 | u32 remoteIdentityHost | be16 proxyPortNetwork | u8 flags | u8 pad
 * The tuple is that of the packet which opened the connection, as seen by the endpoint in the
 * policy direction `direction`. ICMP echo puts the identifier in both ports.
 */
export const CT_KEY_SIZE = 20;
export const CT_VALUE_SIZE = 40;
export const CT_FLAG_CLOSING = 0x1;

export interface CtKeyRaw {
  endpointIdHost: number;
  saddrNetwork: number;
  daddrNetwork: number;
  sportNetwork: number;
  dportNetwork: number;
  protocol: number;
  direction: number;
}

export interface CtKey {
  endpointId: number;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  protocol: number;
  direction: number;
}

export interface CtValue {
  createdNs: bigint;
  lastSeenNs: bigint;
  packets: bigint;
  bytes: bigint;
  remoteIdentity: number;
  proxyPort: number;
  flags: number;
}

export function encodeCtKeyRaw(k: CtKeyRaw, buf: Buffer = Buffer.alloc(CT_KEY_SIZE), off = 0): Buffer {
  writeU32Host(buf, k.endpointIdHost, off);
  writeIpv4Network(buf, k.saddrNetwork, off + 4);
  writeIpv4Network(buf, k.daddrNetwork, off + 8);
  writeU16Host(buf, k.sportNetwork, off + 12);
  writeU16Host(buf, k.dportNetwork, off + 14);
  buf.writeUInt8(k.protocol, off + 16);
  buf.writeUInt8(k.direction, off + 17);
  buf.writeUInt16LE(0, off + 18);
  return buf;
}

export function decodeCtKeyRaw(buf: Buffer, off = 0): CtKeyRaw {
  return {
    endpointIdHost: readU32Host(buf, off),
    saddrNetwork: readIpv4Network(buf, off + 4),
    daddrNetwork: readIpv4Network(buf, off + 8),
    sportNetwork: readU16Host(buf, off + 12),
    dportNetwork: readU16Host(buf, off + 14),
    protocol: buf.readUInt8(off + 16),
    direction: buf.readUInt8(off + 17),
  };
}

export function ctKeyFromRaw(r: CtKeyRaw): CtKey {
  return {
    endpointId: r.endpointIdHost,
    saddr: formatIpv4(r.saddrNetwork),
    daddr: formatIpv4(r.daddrNetwork),
    sport: ntohs(r.sportNetwork),
    dport: ntohs(r.dportNetwork),
    protocol: r.protocol,
    direction: r.direction,
  };
}

export function ctKeyToRaw(k: CtKey): CtKeyRaw {
  return {
    endpointIdHost: k.endpointId,
    saddrNetwork: parseIpv4(k.saddr),
    daddrNetwork: parseIpv4(k.daddr),
    sportNetwork: htons(k.sport),
    dportNetwork: htons(k.dport),
    protocol: k.protocol,
    direction: k.direction,
  };
}

export function decodeCtValue(buf: Buffer, off = 0): CtValue {
  return {
    createdNs: readU64Host(buf, off),
    lastSeenNs: readU64Host(buf, off + 8),
    packets: readU64Host(buf, off + 16),
    bytes: readU64Host(buf, off + 24),
    remoteIdentity: readU32Host(buf, off + 32),
    proxyPort: ntohs(readU16Host(buf, off + 36)),
    flags: buf.readUInt8(off + 38),
  };
}

export function encodeCtValue(v: CtValue, buf: Buffer = Buffer.alloc(CT_VALUE_SIZE), off = 0): Buffer {
  writeU64Host(buf, v.createdNs, off);
  writeU64Host(buf, v.lastSeenNs, off + 8);
  writeU64Host(buf, v.packets, off + 16);
  writeU64Host(buf, v.bytes, off + 24);
  writeU32Host(buf, v.remoteIdentity, off + 32);
  writeU16Host(buf, htons(v.proxyPort), off + 36);
  buf.writeUInt8(v.flags, off + 38);
  buf.writeUInt8(0, off + 39);
  return buf;
}
