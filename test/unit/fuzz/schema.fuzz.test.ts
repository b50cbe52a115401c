import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import {
  decodeLabelSegment,
  decodeValue,
  DecodeError,
  encodeLabelSegment,
  encodeValue,
  KeyError,
  KeySchema,
  tryDecodeValue,
  VALUE_VERSION,
  type ValueKind,
} from '../../../kvstore-schema/index.js';
import { fuzzRuns, fuzzTimeout, thrown } from './runs.js';

const KINDS: ValueKind[] = ['identity', 'identity-index', 'identity-ref', 'node', 'endpoint', 'policy', 'leader'];
const ks = new KeySchema('ward/');
const PREFIXES = [ks.ids, ks.labels, ks.refs, ks.nodes, ks.endpoints, ks.policies, ks.leaders, ks.root, 'other/'];

const label = fc.record({ source: fc.string({ maxLength: 6 }), key: fc.string({ minLength: 0, maxLength: 8 }), value: fc.string({ maxLength: 8 }) });
// Values near the schema: right or wrong version, right or wrong field types.
const fieldValue = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.double(), fc.constant(null), fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }), fc.array(label, { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 3 }));
const FIELD_NAMES = ['v', 'id', 'labels', 'node', 'token', 'name', 'addresses', 'endpointCidrs', 'startedAtMs', 'ip', 'identity', 'rules', 'description', 'updatedAtMs', 'holder', 'sinceMs'];
const nearValue = fc.dictionary(fc.constantFrom(...FIELD_NAMES), fieldValue, { maxKeys: 8 }).chain((o) =>
  fc.constantFrom(VALUE_VERSION, VALUE_VERSION + 1, 0, -1, '1').map((v) => ({ ...o, v })),
);

/** decodeValue on these bytes gives a value or a DecodeError; tryDecodeValue agrees and never throws. */
function checkDecode(kind: ValueKind, bytes: Uint8Array): void {
  const err = thrown(() => decodeValue(kind, bytes));
  if (err !== undefined && !(err instanceof DecodeError)) throw err;
  const r = tryDecodeValue(kind, bytes);
  expect(r.ok).toBe(err === undefined);
  // Whatever decodes re-encodes (the shape check is the same both ways).
  if (r.ok) expect(() => encodeValue(kind, r.value)).not.toThrow();
}

describe('kvstore-schema value codec fuzzing', () => {
  const runs = fuzzRuns(2000);

  it('random bytes: a DecodeError or a valid value', () => {
    fc.assert(fc.property(fc.constantFrom(...KINDS), fc.uint8Array({ maxLength: 256 }), checkDecode), { numRuns: runs });
  }, fuzzTimeout(runs));

  it('msgpack maps near the schema: wrong versions and wrong field types are DecodeErrors', () => {
    fc.assert(fc.property(fc.constantFrom(...KINDS), nearValue, (kind, o) => checkDecode(kind, pack(o))), { numRuns: runs });
  }, fuzzTimeout(runs));

  it('valid values with flipped or truncated bytes', () => {
    const node = encodeValue('node', { v: VALUE_VERSION, name: 'n1', addresses: ['10.0.0.1'], endpointCidrs: ['10.200.1.0/24'], labels: { a: 'b' }, startedAtMs: 1 });
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat(), (at, byte, cut) => {
        const b = Buffer.from(node);
        b[at % b.length] = byte;
        checkDecode('node', b);
        checkDecode('node', node.subarray(0, cut % node.length));
      }),
      { numRuns: runs },
    );
  }, fuzzTimeout(runs));
});

describe('kvstore-schema key fuzzing', () => {
  const runs = fuzzRuns(2000);
  const parsers: ((k: string) => unknown)[] = [
    (k) => ks.parseIdKey(k),
    (k) => ks.parseLabelsKey(k),
    (k) => ks.parseRefKey(k),
    (k) => ks.parseNodeKey(k),
    (k) => ks.parseEndpointKey(k),
    (k) => ks.parsePolicyKey(k),
    (k) => ks.parseLeaderKey(k),
  ];

  it('random keys under every prefix: parsers throw KeyError or parse; classify never throws', () => {
    const key = fc.tuple(fc.constantFrom(...PREFIXES), fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.stringMatching(/^[a-z0-9.%:=;/-]{0,40}$/))).map(([p, s]) => p + s);
    fc.assert(
      fc.property(key, (k) => {
        for (const parse of parsers) {
          const err = thrown(() => parse(k));
          if (err !== undefined && !(err instanceof KeyError)) throw err;
        }
        const c = ks.classify(k);
        // A classified key rebuilds to itself (parsers accept only canonical spellings).
        if (c?.kind === 'identity') expect(ks.idKey(c.id)).toBe(k);
        if (c?.kind === 'node') expect(ks.nodeKey(c.node)).toBe(k);
        if (c?.kind === 'policy') expect(ks.policyKey(c.name)).toBe(k);
        if (c?.kind === 'identity-index') expect(ks.labelsKey(c.labels)).toBe(k);
        if (c?.kind === 'identity-ref') expect(ks.refKey(c.node, c.labels)).toBe(k);
        if (c?.kind === 'endpoint') expect(ks.endpointKey(c.node, c.ip)).toBe(k);
      }),
      { numRuns: runs },
    );
  }, fuzzTimeout(runs));

  it('label segments: encode/decode round-trip; random segments give KeyError or canonical labels', () => {
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 4 }), (labels) => {
        const err = thrown(() => encodeLabelSegment(labels));
        if (err !== undefined) {
          // Only lone surrogates cannot be encoded.
          expect(err).toBeInstanceOf(KeyError);
          return;
        }
        const seg = encodeLabelSegment(labels);
        expect(seg).not.toContain('/');
        expect(decodeLabelSegment(seg)).toEqual(labels);
      }),
      { numRuns: runs },
    );
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.stringMatching(/^[a-z%0-9A-F:=;]{0,40}$/)), (seg) => {
        const err = thrown(() => decodeLabelSegment(seg));
        if (err !== undefined && !(err instanceof KeyError)) throw err;
        if (err === undefined) expect(encodeLabelSegment(decodeLabelSegment(seg))).toBe(seg);
      }),
      { numRuns: runs },
    );
  }, fuzzTimeout(runs));
});
