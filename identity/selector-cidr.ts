import { WardError } from './errors.js';

/** A CIDR that cannot be parsed (IPv6 is rejected explicitly: the ipcache is IPv4 only). */
export class CidrParseError extends WardError {
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid CIDR ${JSON.stringify(input)}: ${reason}`);
  }
}

/** An IPv4 prefix; `addr` has no bits beyond `len` (host bits are masked off when parsing). */
export interface Cidr4 {
  readonly addr: number;
  readonly len: number;
}

export function cidrMask(len: number): number {
  return len === 0 ? 0 : (0xffff_ffff << (32 - len)) >>> 0;
}

/** Parses `a.b.c.d` into a uint32, or undefined. */
export function parseIPv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Parses `a.b.c.d/len` or a bare address (= /32), as Cilium does. */
export function parseCidr(text: string): Cidr4 {
  if (text.includes(':')) throw new CidrParseError(text, 'IPv6 is not supported by ward');
  const slash = text.indexOf('/');
  const ipText = slash < 0 ? text : text.slice(0, slash);
  const lenText = slash < 0 ? '32' : text.slice(slash + 1);
  const ip = parseIPv4(ipText);
  if (ip === undefined) throw new CidrParseError(text, 'not an IPv4 address');
  if (!/^\d{1,2}$/.test(lenText) || Number(lenText) > 32) throw new CidrParseError(text, 'prefix length must be 0..32');
  const len = Number(lenText);
  return { addr: (ip & cidrMask(len)) >>> 0, len };
}

export function formatCidr(c: Cidr4): string {
  return `${formatIPv4(c.addr)}/${c.len}`;
}

/** Does `outer` contain `inner` (equal counts)? */
export function cidrContains(outer: Cidr4, inner: Cidr4): boolean {
  return inner.len >= outer.len && ((inner.addr & cidrMask(outer.len)) >>> 0) === outer.addr;
}

export function cidrContainsIp(outer: Cidr4, ip: number): boolean {
  return ((ip & cidrMask(outer.len)) >>> 0) === outer.addr;
}
