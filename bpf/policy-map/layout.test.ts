import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { htons } from '../byteorder.js';
import {
  decodePolicyKey,
  decodePolicyKeyRaw,
  decodePolicyValue,
  encodePolicyKey,
  encodePolicyValue,
  POLICY_KEY_SIZE,
  POLICY_VALUE_SIZE,
  policyKeyToRaw,
} from './layout.js';
import { validatePolicyKey } from './types.js';
import type { Direction, PolicyKey, Protocol } from './types.js';

const keyArb: fc.Arbitrary<PolicyKey> = fc
  .record({
    identity: fc.integer({ min: 0, max: 0xffff_ffff }),
    direction: fc.constantFrom<Direction>(0, 1),
    protocol: fc.constantFrom<Protocol>(0, 1, 6, 17, 132),
    port: fc.integer({ min: 0, max: 0xffff }),
    portPrefixLen: fc.integer({ min: 0, max: 16 }),
  })
  .map((k) => {
    const portPrefixLen = k.protocol === 0 ? 0 : k.portPrefixLen;
    const mask = portPrefixLen === 0 ? 0 : (0xffff << (16 - portPrefixLen)) & 0xffff;
    return validatePolicyKey({ ...k, portPrefixLen, port: k.port & mask });
  });

describe('policy map layout (struct ward_policy_key / ward_policy_value)', () => {
  it('encodes a key byte for byte: u32 prefixlen, u32 identity (host), u8 dir, u8 proto, be16 port', () => {
    const b = encodePolicyKey({ identity: 0x01020304, direction: 1, protocol: 6, port: 0x1f90, portPrefixLen: 16 });
    expect(b.length).toBe(POLICY_KEY_SIZE);
    // x86-64 (little-endian host): prefixlen 64, identity LE, port in network order.
    expect([...b]).toEqual([64, 0, 0, 0, 0x04, 0x03, 0x02, 0x01, 1, 6, 0x1f, 0x90]);
  });

  it('sets the prefix length from protocol and port prefix', () => {
    expect(policyKeyToRaw({ identity: 5, direction: 0, protocol: 0, port: 0, portPrefixLen: 0 }).prefixLen).toBe(40);
    expect(policyKeyToRaw({ identity: 5, direction: 0, protocol: 17, port: 0, portPrefixLen: 0 }).prefixLen).toBe(48);
    expect(policyKeyToRaw({ identity: 5, direction: 0, protocol: 17, port: 0x8000, portPrefixLen: 1 }).prefixLen).toBe(49);
    expect(policyKeyToRaw({ identity: 5, direction: 0, protocol: 17, port: 53, portPrefixLen: 16 }).prefixLen).toBe(64);
  });

  it('keeps portNetwork as the u16 read from memory in host order (htons(port))', () => {
    fc.assert(
      fc.property(keyArb, (k) => {
        expect(decodePolicyKeyRaw(encodePolicyKey(k)).portNetwork).toBe(htons(k.port));
      }),
    );
  });

  it('round-trips every valid key', () => {
    fc.assert(fc.property(keyArb, (k) => {
      expect(decodePolicyKey(encodePolicyKey(k))).toEqual(k);
    }));
  });

  it('encodes values: be16 proxy port, deny flag, L4 prefix length', () => {
    const k: PolicyKey = { identity: 0, direction: 0, protocol: 6, port: 8000, portPrefixLen: 12 };
    const b = encodePolicyValue({ deny: true, proxyPort: 15001 }, k);
    expect(b.length).toBe(POLICY_VALUE_SIZE);
    expect([...b]).toEqual([0x3a, 0x99, 1, 20, 0, 0, 0, 0]);
    fc.assert(
      fc.property(fc.boolean(), fc.integer({ min: 0, max: 0xffff }), keyArb, (deny, proxyPort, key) => {
        expect(decodePolicyValue(encodePolicyValue({ deny, proxyPort }, key))).toEqual({ deny, proxyPort });
      }),
    );
  });

  it('refuses keys the kernel map cannot hold', () => {
    expect(() => encodePolicyKey({ identity: 1, direction: 0, protocol: 0, port: 80, portPrefixLen: 16 })).toThrow(RangeError);
    expect(() => encodePolicyKey({ identity: 1, direction: 0, protocol: 6, port: 81, portPrefixLen: 15 })).toThrow(RangeError);
  });
});
