import { endianness } from 'node:os';

/** True on little-endian hosts (x86-64, arm64): "host order" fields follow this. */
export const HOST_LITTLE_ENDIAN = endianness() === 'LE';

export function htons(v: number): number {
  return HOST_LITTLE_ENDIAN ? ((v & 0xff) << 8) | ((v >>> 8) & 0xff) : v & 0xffff;
}
export const ntohs = htons;

export function htonl(v: number): number {
  if (!HOST_LITTLE_ENDIAN) return v >>> 0;
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;
}
export const ntohl = htonl;

export function writeU16Host(buf: Buffer, v: number, off: number): void {
  if (HOST_LITTLE_ENDIAN) buf.writeUInt16LE(v, off);
  else buf.writeUInt16BE(v, off);
}
export function readU16Host(buf: Buffer, off: number): number {
  return HOST_LITTLE_ENDIAN ? buf.readUInt16LE(off) : buf.readUInt16BE(off);
}
export function writeU32Host(buf: Buffer, v: number, off: number): void {
  if (HOST_LITTLE_ENDIAN) buf.writeUInt32LE(v >>> 0, off);
  else buf.writeUInt32BE(v >>> 0, off);
}
export function readU32Host(buf: Buffer, off: number): number {
  return HOST_LITTLE_ENDIAN ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
}
export function writeU64Host(buf: Buffer, v: bigint, off: number): void {
  if (HOST_LITTLE_ENDIAN) buf.writeBigUInt64LE(v, off);
  else buf.writeBigUInt64BE(v, off);
}
export function readU64Host(buf: Buffer, off: number): bigint {
  return HOST_LITTLE_ENDIAN ? buf.readBigUInt64LE(off) : buf.readBigUInt64BE(off);
}

/** Dotted IPv4 text <-> its 32-bit value (host number, most significant byte first). */
export function parseIpv4(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4) throw new RangeError(`not an IPv4 address: ${s}`);
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) throw new RangeError(`not an IPv4 address: ${s}`);
    const n = Number(p);
    if (n > 255) throw new RangeError(`not an IPv4 address: ${s}`);
    v = v * 256 + n;
  }
  return v >>> 0;
}

export function formatIpv4(v: number): string {
  return `${(v >>> 24) & 0xff}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

/** Writes an IPv4 address in network order (the kernel's __be32). */
export function writeIpv4Network(buf: Buffer, addr: number, off: number): void {
  buf.writeUInt32BE(addr >>> 0, off);
}
export function readIpv4Network(buf: Buffer, off: number): number {
  return buf.readUInt32BE(off);
}
