import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIpv4 } from '../byteorder.js';
import {
  canonicalCidr,
  cidrFromIpcacheKey,
  decodeIpcacheKeyRaw,
  decodeIpcacheValueRaw,
  encodeIpcacheKeyRaw,
  encodeIpcacheValueRaw,
  IPCACHE_KEY_SIZE,
  ipcacheKeyFromCidr,
  ipcacheValueToRaw,
} from './layout.js';

describe('ipcache layout (struct ward_ipcache_key / ward_ipcache_value)', () => {
  it('encodes u32 prefixlen (host) then the address in network order', () => {
    const b = Buffer.alloc(IPCACHE_KEY_SIZE);
    encodeIpcacheKeyRaw(ipcacheKeyFromCidr('10.1.2.3/32')!, b);
    expect([...b]).toEqual([32, 0, 0, 0, 10, 1, 2, 3]);
    const v = Buffer.alloc(8);
    encodeIpcacheValueRaw(ipcacheValueToRaw(0x01000005, '192.168.0.9'), v);
    expect([...v]).toEqual([5, 0, 0, 1, 192, 168, 0, 9]);
  });

  it('canonicalises CIDRs and ignores IPv6', () => {
    expect(canonicalCidr('10.1.2.3')).toBe('10.1.2.3/32');
    expect(canonicalCidr('10.1.2.3/8')).toBe('10.0.0.0/8');
    expect(canonicalCidr('0.0.0.0/0')).toBe('0.0.0.0/0');
    expect(canonicalCidr('fd00::1/128')).toBeUndefined();
    expect(() => canonicalCidr('10.1.2/8')).toThrow(RangeError);
    expect(() => canonicalCidr('10.1.2.3/33')).toThrow(RangeError);
    expect(() => canonicalCidr('10.1.2.256')).toThrow(RangeError);
  });

  it('round-trips keys and values', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 32 }), (addr, len) => {
        const cidr = canonicalCidr(`${formatIpv4(addr)}/${len}`)!;
        const b = Buffer.alloc(8);
        encodeIpcacheKeyRaw(ipcacheKeyFromCidr(cidr)!, b);
        expect(cidrFromIpcacheKey(decodeIpcacheKeyRaw(b))).toBe(cidr);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 1, max: 0xffff_ffff }), (id, node) => {
        const b = Buffer.alloc(8);
        encodeIpcacheValueRaw(ipcacheValueToRaw(id, formatIpv4(node)), b);
        expect(decodeIpcacheValueRaw(b)).toEqual({ identityHost: id, nodeAddrNetwork: node });
      }),
    );
  });
});
