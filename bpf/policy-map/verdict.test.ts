import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluatePolicy } from './verdict.js';
import { policyKeyString, portRangeToPrefixes } from './types.js';
import type { PolicyEntry, PolicyKey } from './types.js';

type Entries = Map<string, readonly [PolicyKey, PolicyEntry]>;
const ALLOW: PolicyEntry = { deny: false, proxyPort: 0 };
const DENY: PolicyEntry = { deny: true, proxyPort: 0 };

function entries(...es: (readonly [PolicyKey, PolicyEntry])[]): Entries {
  return new Map(es.map((e) => [policyKeyString(e[0]), e]));
}
const key = (identity: number, protocol: PolicyKey['protocol'], port = 0, portPrefixLen = protocol && port ? 16 : 0): PolicyKey => ({ identity, direction: 0, protocol, port, portPrefixLen });
const q = (remoteIdentity: number, protocol: number, port: number) => ({ remoteIdentity, direction: 0 as const, protocol, port });

describe('evaluatePolicy (the datapath contract)', () => {
  it('drops when nothing matches; one wildcard allows everything', () => {
    expect(evaluatePolicy(new Map(), q(300, 6, 80))).toEqual({ allowed: false, reason: 'no-match' });
    const all = entries([key(0, 0), ALLOW]);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 70000 }), fc.constantFrom(1, 6, 17, 132, 47), fc.integer({ min: 0, max: 0xffff }), (id, p, port) => {
        expect(evaluatePolicy(all, q(id, p, port)).allowed).toBe(true);
      }),
    );
  });

  it('lets deny from either lookup beat any allow', () => {
    expect(evaluatePolicy(entries([key(300, 6, 80), ALLOW], [key(0, 6), DENY]), q(300, 6, 80)).allowed).toBe(false);
    expect(evaluatePolicy(entries([key(0, 6, 80), ALLOW], [key(300, 0), DENY]), q(300, 6, 80)).allowed).toBe(false);
    expect(evaluatePolicy(entries([key(0, 6, 80), ALLOW], [key(300, 0), DENY]), q(301, 6, 80)).allowed).toBe(true);
  });

  it('takes the proxy port of the more specific match', () => {
    const es = entries([key(300, 6), { deny: false, proxyPort: 1 }], [key(0, 6, 80), { deny: false, proxyPort: 2 }]);
    expect(evaluatePolicy(es, q(300, 6, 80))).toEqual({ allowed: true, proxyPort: 2 });
    expect(evaluatePolicy(es, q(300, 6, 81))).toEqual({ allowed: true, proxyPort: 1 });
  });

  it('ignores the port for ICMP', () => {
    expect(evaluatePolicy(entries([key(300, 1), ALLOW]), q(300, 1, 1234)).allowed).toBe(true);
  });

  it('allows exactly the ports of a range', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), (x, y, port) => {
        const [lo, hi] = x <= y ? [x, y] : [y, x];
        const es = entries(...portRangeToPrefixes(lo, hi).map((p) => [key(300, 17, p.port, p.portPrefixLen), ALLOW] as const));
        expect(evaluatePolicy(es, q(300, 17, port)).allowed).toBe(port >= lo && port <= hi);
      }),
    );
  });

  it('never turns a drop into an allow by adding a deny', () => {
    const entryArb = fc.tuple(
      fc.record({ identity: fc.constantFrom(0, 300), direction: fc.constant(0 as const), protocol: fc.constantFrom<PolicyKey['protocol']>(0, 6), port: fc.constantFrom(0, 80), portPrefixLen: fc.constant(0) }).map((k) => ({ ...k, port: k.protocol ? k.port : 0, portPrefixLen: k.protocol && k.port ? 16 : 0 })),
      fc.boolean().map((deny) => ({ deny, proxyPort: 0 })),
    );
    fc.assert(
      fc.property(fc.array(entryArb), entryArb, fc.constantFrom(80, 81), (es, extra, port) => {
        const base = entries(...es);
        const before = evaluatePolicy(base, q(300, 6, port)).allowed;
        const withDeny = new Map(base).set(policyKeyString(extra[0]), [extra[0], DENY]);
        if (!before) expect(evaluatePolicy(withDeny, q(300, 6, port)).allowed).toBe(false);
      }),
    );
  });
});
