import { describe, expect, it } from 'vitest';
import type { DatapathEvent } from './events/layout.js';
import { FakeDatapath } from './fake-datapath.js';
import { PolicyMapFullError } from './errors.js';

describe('FakeDatapath', () => {
  it('attaches endpoints with a deny-all policy map, fails closed when full, flushes conntrack', () => {
    const dp = new FakeDatapath({ policyMapMaxEntries: 1 });
    const rec = dp.attachEndpoint({ endpointId: 7, identity: 300, ifname: 'lxc7' });
    expect(rec).toMatchObject({ endpointId: 7, identity: 300, lockedDown: false });
    const m = dp.policy.get(7)!;
    expect(m.verdict({ remoteIdentity: 2, direction: 0, protocol: 6, port: 80 }).allowed).toBe(false);
    const any = { identity: 0, direction: 0 as const, protocol: 0 as const, port: 0, portPrefixLen: 0 };
    const allow = { deny: false, proxyPort: 0 };
    m.setDesired([[any, allow]]);
    expect(m.verdict({ remoteIdentity: 2, direction: 0, protocol: 6, port: 80 }).allowed).toBe(true);
    expect(() => m.setDesired([[any, allow], [{ ...any, identity: 5 }, allow]])).toThrow(PolicyMapFullError);
    expect(dp.attachEndpoint({ endpointId: 7, identity: 300, ifname: 'lxc7' }).lockedDown).toBe(true);
    dp.addConntrack(7, '10.0.0.1');
    dp.addConntrack(8, '10.0.0.1');
    expect(dp.flushConntrack({ endpointId: 7 })).toBe(1);
    dp.attachEndpoint({ endpointId: 8, identity: 301, ifname: 'lxc8' });
    expect(dp.sweepEndpoints([8])).toEqual({ endpoints: 1, policyMaps: 1 });
    dp.detachEndpoint(8);
    expect(dp.endpoints.size).toBe(0);
  });

  it('delivers injected events to subscribers until they unsubscribe', () => {
    const dp = new FakeDatapath();
    const got: DatapathEvent[] = [];
    const sub = dp.onEvents((e) => got.push(...e));
    const ev = { type: 'drop', reason: 130, reasonName: 'policy-denied', tsNs: 1n, endpointId: 1, remoteIdentity: 2, saddr: '1.1.1.1', daddr: '2.2.2.2', sport: 1, dport: 2, protocol: 6, direction: 'ingress', ifindex: 3, proxyPort: 0, length: 60 } as const;
    dp.emit([ev]);
    sub.close();
    dp.emit([ev]);
    expect(got).toHaveLength(1);
    dp.close();
    expect(() => dp.onEvents(() => undefined)).toThrow(/closed/);
  });
});
