import { describe, expect, it } from 'vitest';
import { policyMapContract } from '../../test/datapath/helpers/contract.js';
import { policyChangesFromDelta } from './delta.js';
import { FakePolicyMapManager } from './fake.js';

let next = 1;
policyMapContract('fake', (capacity) => {
  const map = new FakePolicyMapManager(capacity).open(next++);
  return {
    map,
    injectDrift: () => {
      const [first] = map.kernel.keys();
      map.kernel.delete(first!);
      map.kernel.set('7/0/6/1/16', [{ identity: 7, direction: 0, protocol: 6, port: 1, portPrefixLen: 16 }, { deny: false, proxyPort: 0 }]);
    },
  };
});

describe('FakeEndpointPolicyMap.verdict', () => {
  it('judges packets like the datapath, and drops everything while locked down', () => {
    const m = new FakePolicyMapManager(2).open(1);
    m.setDesired([[{ identity: 0, direction: 0, protocol: 6, port: 80, portPrefixLen: 16 }, { deny: false, proxyPort: 0 }]]);
    expect(m.verdict({ remoteIdentity: 300, direction: 0, protocol: 6, port: 80 })).toEqual({ allowed: true, proxyPort: 0 });
    expect(m.verdict({ remoteIdentity: 300, direction: 0, protocol: 6, port: 81 })).toEqual({ allowed: false, reason: 'no-match' });
    expect(() => m.setDesired(Array.from({ length: 3 }, (_, i) => [{ identity: i + 1, direction: 0, protocol: 0, port: 0, portPrefixLen: 0 }, { deny: false, proxyPort: 0 }] as const))).toThrow();
    expect(m.verdict({ remoteIdentity: 300, direction: 0, protocol: 6, port: 80 }).allowed).toBe(false);
  });
});

describe('engine deltas', () => {
  it('apply through policyChangesFromDelta', () => {
    const m = new FakePolicyMapManager().open(3);
    const key = { identity: 5, direction: 1 as const, protocol: 17 as const, port: 53, portPrefixLen: 16 };
    m.applyChanges(policyChangesFromDelta({ added: [{ key, entry: { deny: false, proxyPort: 0 } }], deleted: [] }));
    expect([...m.dump().keys()]).toEqual(['5/1/17/53/16']);
    m.applyChanges(policyChangesFromDelta({ added: [], deleted: [key] }));
    expect(m.dump().size).toBe(0);
  });
});
