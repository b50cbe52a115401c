import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyError } from './errors.js';
import { KeySchema, prefixRangeEnd } from './keys.js';
import { decodeLabelSegment, encodeLabelSegment, type SchemaLabel } from './labels.js';

// Label text deliberately rich in the key delimiters.
const text = fc.string({ unit: fc.constantFrom('a', 'b', '/', '=', ';', ':', '%', ',', ' ', 'é', '\u{1F600}', '0'), maxLength: 8 });
const label = fc.record({ source: text, key: text, value: text });
const labels = fc.array(label, { minLength: 1, maxLength: 5 });
const name = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/);
const root = fc.constantFrom('ward/', 'x/', 'a/b/', 'ward-test-1/');
const ipv4 = fc.ipV4();

describe('label segment', () => {
  it('round-trips and never contains "/"', () => {
    fc.assert(
      fc.property(labels, (ls) => {
        const seg = encodeLabelSegment(ls);
        expect(seg).not.toContain('/');
        expect(decodeLabelSegment(seg)).toEqual(ls);
      }),
    );
  });
  it('is injective: different label lists give different segments', () => {
    fc.assert(
      fc.property(labels, labels, (a, b) => {
        fc.pre(JSON.stringify(a) !== JSON.stringify(b));
        expect(encodeLabelSegment(a)).not.toBe(encodeLabelSegment(b));
      }),
    );
  });
  it('rejects non-canonical and malformed segments', () => {
    expect(() => decodeLabelSegment('unspec:%61=b')).toThrow(KeyError);
    expect(() => decodeLabelSegment('nocolon')).toThrow(KeyError);
    expect(() => decodeLabelSegment('a:b=%E0%A4%A')).toThrow(KeyError);
    expect(() => decodeLabelSegment('')).toThrow(KeyError);
    expect(() => encodeLabelSegment([])).toThrow(KeyError);
    expect(() => encodeLabelSegment([{ source: 'a', key: '\ud800', value: '' }])).toThrow(KeyError);
  });
  it('reads well in etcdctl', () => {
    const ls: SchemaLabel[] = [
      { source: 'k8s', key: 'app', value: 'web' },
      { source: 'unspec', key: 'path', value: 'a/b=c;d' },
    ];
    expect(new KeySchema().labelsKey(ls)).toBe('ward/state/identities/v1/labels/k8s:app=web;unspec:path=a%2Fb%3Dc%3Bd');
  });
});

describe('KeySchema', () => {
  it('round-trips every key kind under any root', () => {
    fc.assert(
      fc.property(root, fc.integer({ min: 0, max: 0xffff_ffff }), labels, name, ipv4, (r, id, ls, node, ip) => {
        const s = new KeySchema(r);
        expect(s.parseIdKey(s.idKey(id))).toBe(id);
        expect(s.parseLabelsKey(s.labelsKey(ls))).toEqual(ls);
        expect(s.parseRefKey(s.refKey(node, ls))).toEqual({ node, labels: ls });
        expect(s.parseNodeKey(s.nodeKey(node))).toBe(node);
        expect(s.parseEndpointKey(s.endpointKey(node, ip))).toEqual({ node, ip });
        expect(s.parsePolicyKey(s.policyKey(node))).toBe(node);
        expect(s.parseLeaderKey(s.leaderKey(node))).toBe(node);
        expect(s.classify(s.idKey(id))).toEqual({ kind: 'identity', id });
        expect(s.classify(s.refKey(node, ls))).toEqual({ kind: 'identity-ref', node, labels: ls });
        expect(s.classify(s.endpointKey(node, ip))).toEqual({ kind: 'endpoint', node, ip });
        expect(s.refKey(node, ls).startsWith(s.refsNodePrefix(node))).toBe(true);
      }),
    );
  });
  it('keeps IPv6 endpoint keys', () => {
    const s = new KeySchema();
    expect(s.parseEndpointKey(s.endpointKey('n1', 'fd00::1'))).toEqual({ node: 'n1', ip: 'fd00::1' });
  });
  it('rejects bad names, ids, ips and roots with KeyError', () => {
    const s = new KeySchema();
    expect(() => s.nodeKey('a/b')).toThrow(KeyError);
    expect(() => s.nodeKey('')).toThrow(KeyError);
    expect(() => s.endpointKey('n', '10.0.0.1/32')).toThrow(KeyError);
    expect(() => s.endpointKey('n', '300.0.0.1')).toThrow(KeyError);
    expect(() => s.idKey(-1)).toThrow(KeyError);
    expect(() => s.parseIdKey('ward/state/identities/v1/id/007')).toThrow(KeyError);
    expect(() => s.parseIdKey('other/state/identities/v1/id/7')).toThrow(KeyError);
    expect(() => new KeySchema('ward')).toThrow(KeyError);
    expect(s.classify('ward/unknown/x')).toBeUndefined();
    expect(s.classify('ward/state/identities/v1/id/abc')).toBeUndefined();
  });
  it('prefixRangeEnd bounds the prefix', () => {
    expect(prefixRangeEnd('ward/').toString()).toBe('ward0');
    expect(prefixRangeEnd('ab')).toEqual(Buffer.from('ac'));
  });
});
