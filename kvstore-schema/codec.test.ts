import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeValue, encodeValue, tryDecodeValue } from './codec.js';
import { DecodeError, UnknownVersionError } from './errors.js';
import type { ValueKind, ValueKinds } from './values.js';

const str = fc.string({ maxLength: 12 });
const uint = fc.integer({ min: 0, max: 0xffff_ffff });
const ms = fc.integer({ min: 0, max: 2 ** 48 });
const label = fc.record({ source: str, key: str, value: str });

const arbs: { [K in ValueKind]: fc.Arbitrary<ValueKinds[K]> } = {
  identity: fc.record({ v: fc.constant(1 as const), id: uint, labels: fc.array(label, { maxLength: 4 }), node: str, token: str }),
  'identity-index': fc.record({ v: fc.constant(1 as const), id: uint, token: str }),
  'identity-ref': fc.record({ v: fc.constant(1 as const), id: uint, token: str }),
  node: fc.record({
    v: fc.constant(1 as const),
    name: str,
    addresses: fc.array(str),
    endpointCidrs: fc.array(str),
    labels: fc.dictionary(fc.string({ minLength: 1, maxLength: 5 }).filter((k) => k !== '__proto__'), str),
    startedAtMs: ms,
  }),
  endpoint: fc.record({ v: fc.constant(1 as const), ip: str, identity: uint, node: str, name: str }),
  policy: fc.record({ v: fc.constant(1 as const), name: str, rules: fc.array(fc.jsonValue(), { maxLength: 3 }), description: str, updatedAtMs: ms }),
  leader: fc.record({ v: fc.constant(1 as const), holder: str, token: str, sinceMs: ms }),
};
const kinds = Object.keys(arbs) as ValueKind[];

describe('value codec', () => {
  it.each(kinds)('%s round-trips', (kind) => {
    fc.assert(
      fc.property(arbs[kind] as fc.Arbitrary<ValueKinds[typeof kind]>, (v) => {
        expect(decodeValue(kind, encodeValue(kind, v))).toEqual(JSON.parse(JSON.stringify(v)));
      }),
    );
  });
  it('never throws anything but DecodeError on garbage', () => {
    fc.assert(
      fc.property(fc.constantFrom(...kinds), fc.uint8Array({ maxLength: 40 }), (kind, bytes) => {
        const r = tryDecodeValue(kind, bytes);
        if (!r.ok) expect(r.error).toBeInstanceOf(DecodeError);
      }),
    );
  });
  it('reports wrong shapes and unknown versions with typed errors', () => {
    const p = new Packr({ useRecords: false });
    expect(() => decodeValue('identity-ref', p.pack({ v: 2, id: 1, token: 'x' }))).toThrow(UnknownVersionError);
    expect(() => decodeValue('identity-ref', p.pack({ id: 1, token: 'x' }))).toThrow(/version/);
    expect(() => decodeValue('identity-ref', p.pack({ v: 1, id: -1, token: 'x' }))).toThrow(/id must be a uint32/);
    expect(() => decodeValue('identity', p.pack({ v: 1, id: 1, labels: [1], node: 'n', token: 't' }))).toThrow(DecodeError);
    expect(() => decodeValue('node', p.pack([1, 2]))).toThrow(/not a map/);
    expect(() => decodeValue('node', Buffer.from('{"v":1}'))).toThrow(DecodeError);
    expect(() => encodeValue('identity-ref', { v: 1, id: 1.5, token: 'x' })).toThrow(DecodeError);
  });
  it('encodes plain maps without msgpackr records', () => {
    const bytes = encodeValue('identity-index', { v: 1, id: 300, token: 't' });
    expect(new Packr({ useRecords: false, mapsAsObjects: true }).unpack(bytes)).toEqual({ v: 1, id: 300, token: 't' });
    expect(bytes[0]! & 0xf0).toBe(0x80); // fixmap
  });
});
