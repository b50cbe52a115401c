import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIpv4, htonl, htons, parseIpv4 } from './byteorder.js';
import { CT_KEY_SIZE, ctKeyFromRaw, ctKeyToRaw, decodeCtKeyRaw, decodeCtValue, encodeCtKeyRaw, encodeCtValue } from './conntrack/layout.js';
import type { CtKey } from './conntrack/layout.js';
import { decodeEndpointValue, encodeEndpointKey, encodeEndpointValue, ENDPOINT_VALUE_SIZE } from './endpoint/layout.js';
import { decodeEvent, EVENT_SIZE } from './events/layout.js';
import { decodeCounterKey, encodeCounterKey } from './metrics/layout.js';
import { Reason } from './reasons.js';

describe('byte order helpers', () => {
  it('swap on this little-endian host and round-trip', () => {
    expect(htons(0x1234)).toBe(0x3412);
    expect(htonl(0x01020304)).toBe(0x04030201);
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffff }), (v) => {
      expect(htons(htons(v))).toBe(v);
    }));
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), (v) => {
      expect(htonl(htonl(v))).toBe(v);
    }));
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), (v) => {
      expect(parseIpv4(formatIpv4(v))).toBe(v);
    }));
  });
});

const ctKeyArb: fc.Arbitrary<CtKey> = fc.record({
  endpointId: fc.integer({ min: 0, max: 0xffff_ffff }),
  saddr: fc.integer({ min: 0, max: 0xffff_ffff }).map(formatIpv4),
  daddr: fc.integer({ min: 0, max: 0xffff_ffff }).map(formatIpv4),
  sport: fc.integer({ min: 0, max: 0xffff }),
  dport: fc.integer({ min: 0, max: 0xffff }),
  protocol: fc.integer({ min: 0, max: 255 }),
  direction: fc.constantFrom(0, 1),
});

describe('conntrack layout (struct ward_ct_key / ward_ct_value)', () => {
  it('encodes the tuple with addresses and ports in network order', () => {
    const b = encodeCtKeyRaw(ctKeyToRaw({ endpointId: 7, saddr: '10.0.0.1', daddr: '10.0.0.2', sport: 0x1234, dport: 80, protocol: 6, direction: 1 }));
    expect(b.length).toBe(CT_KEY_SIZE);
    expect([...b]).toEqual([7, 0, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x12, 0x34, 0, 80, 6, 1, 0, 0]);
  });

  it('round-trips keys and values', () => {
    fc.assert(fc.property(ctKeyArb, (k) => {
      expect(ctKeyFromRaw(decodeCtKeyRaw(encodeCtKeyRaw(ctKeyToRaw(k))))).toEqual(k);
    }));
    const v = { createdNs: 1n, lastSeenNs: 2n ** 63n, packets: 3n, bytes: 4n, remoteIdentity: 0x01000001, proxyPort: 15001, flags: 1 };
    expect(decodeCtValue(encodeCtValue(v))).toEqual(v);
  });
});

describe('endpoint and counter layouts', () => {
  it('endpoint: u32 ifindex key; id, identity, flags values in host order', () => {
    expect([...encodeEndpointKey(5)]).toEqual([5, 0, 0, 0]);
    const v = encodeEndpointValue({ endpointIdHost: 1, identityHost: 0x0102, flagsHost: 1 });
    expect(v.length).toBe(ENDPOINT_VALUE_SIZE);
    expect([...v]).toEqual([1, 0, 0, 0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(decodeEndpointValue(v)).toEqual({ endpointIdHost: 1, identityHost: 0x0102, flagsHost: 1 });
  });

  it('counter key: u32 endpoint, u8 direction, u8 reason', () => {
    const k = { endpointId: 9, direction: 1, reason: Reason.dropIpv6 };
    expect([...encodeCounterKey(k)]).toEqual([9, 0, 0, 0, 1, 132, 0, 0]);
    expect(decodeCounterKey(encodeCounterKey(k))).toEqual(k);
  });
});

describe('event layout (struct ward_event)', () => {
  it('decodes every field at its offset', () => {
    const b = Buffer.alloc(EVENT_SIZE);
    b.writeBigUInt64LE(123456789n, 0);
    b.writeUInt32LE(42, 8);
    b.writeUInt32LE(1002, 12);
    b.writeUInt32BE(parseIpv4('10.77.1.2'), 16);
    b.writeUInt32BE(parseIpv4('10.77.2.2'), 20);
    b.writeUInt16BE(40000, 24);
    b.writeUInt16BE(8080, 26);
    b.writeUInt8(6, 28);
    b.writeUInt8(1, 29);
    b.writeUInt8(1, 30);
    b.writeUInt8(Reason.dropPolicyDeny, 31);
    b.writeUInt32LE(12, 32);
    b.writeUInt16BE(15001, 36);
    b.writeUInt32LE(74, 40);
    expect(decodeEvent(b)).toEqual({
      type: 'drop',
      reason: 131,
      reasonName: 'policy-deny-rule',
      tsNs: 123456789n,
      endpointId: 42,
      remoteIdentity: 1002,
      saddr: '10.77.1.2',
      daddr: '10.77.2.2',
      sport: 40000,
      dport: 8080,
      protocol: 6,
      direction: 'egress',
      ifindex: 12,
      proxyPort: 15001,
      length: 74,
    });
    expect(() => decodeEvent(b.subarray(0, 40))).toThrow(RangeError);
  });
});
