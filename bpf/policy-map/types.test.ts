import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { keyCovers, parsePolicyKeyString, policyKeyString, portMask, portRangeToPrefixes, type PolicyKey } from './types.js';

describe('portRangeToPrefixes', () => {
  it('covers exactly the range with aligned blocks', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), (a, b) => {
        const [start, end] = a <= b ? [a, b] : [b, a];
        const blocks = portRangeToPrefixes(start, end);
        let next = start;
        for (const blk of blocks) {
          expect(blk.port).toBe(next);
          expect(blk.port & portMask(blk.portPrefixLen)).toBe(blk.port);
          next = blk.port + 2 ** (16 - blk.portPrefixLen);
        }
        expect(next).toBe(end + 1);
        expect(blocks.length).toBeLessThanOrEqual(32);
      }),
    );
  });
  it('gives single ports and the whole range', () => {
    expect(portRangeToPrefixes(80, 80)).toEqual([{ port: 80, portPrefixLen: 16 }]);
    expect(portRangeToPrefixes(0, 65535)).toEqual([{ port: 0, portPrefixLen: 0 }]);
    expect(portRangeToPrefixes(8080, 8083)).toEqual([{ port: 8080, portPrefixLen: 14 }]);
  });
});

describe('policy keys', () => {
  it('round-trip through strings', () => {
    const k: PolicyKey = { identity: 300, direction: 1, protocol: 6, port: 8080, portPrefixLen: 14 };
    expect(parsePolicyKeyString(policyKeyString(k))).toEqual(k);
  });
  it('cover narrower keys of the same identity', () => {
    const all: PolicyKey = { identity: 5, direction: 0, protocol: 0, port: 0, portPrefixLen: 0 };
    const tcp80: PolicyKey = { identity: 5, direction: 0, protocol: 6, port: 80, portPrefixLen: 16 };
    expect(keyCovers(all, tcp80)).toBe(true);
    expect(keyCovers(tcp80, all)).toBe(false);
    expect(keyCovers({ ...tcp80, identity: 6 }, tcp80)).toBe(false);
  });
});
