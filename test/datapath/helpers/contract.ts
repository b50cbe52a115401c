import { describe, expect, it } from 'vitest';
import { PolicyMapFullError } from '../../../bpf/errors.js';
import type { IpcacheManager } from '../../../bpf/ipcache/api.js';
import type { EndpointPolicyMap } from '../../../bpf/policy-map/api.js';
import type { PolicyEntry, PolicyKey } from '../../../bpf/policy-map/types.js';

/**
 * Behaviour every EndpointPolicyMap / IpcacheManager must show, run against the in-memory
 * fakes (unit project) and the kernel-backed managers (integration project).
 */
export interface PolicyMapSubject {
  map: EndpointPolicyMap;
  /** Removes one kernel entry and adds one undesired entry behind the manager's back. */
  injectDrift(): void;
}

const ALLOW: PolicyEntry = { deny: false, proxyPort: 0 };
const k = (identity: number, port: number): PolicyKey => ({ identity, direction: 0, protocol: 6, port, portPrefixLen: 16 });
const many = (n: number): (readonly [PolicyKey, PolicyEntry])[] => Array.from({ length: n }, (_, i) => [k(300 + i, 80), ALLOW] as const);

export function policyMapContract(name: string, make: (capacity: number) => PolicyMapSubject): void {
  describe(`EndpointPolicyMap contract: ${name}`, () => {
    it('realizes the desired state and writes nothing when it is unchanged', () => {
      const { map } = make(16);
      const desired = [[k(1, 80), ALLOW] as const, [k(0, 443), { deny: true, proxyPort: 0 }] as const, [k(2, 8080), { deny: false, proxyPort: 15001 }] as const];
      expect(map.setDesired(desired)).toEqual({ upserted: 3, deleted: 0 });
      expect(map.dump()).toEqual(map.desired());
      expect(map.dump().size).toBe(3);
      expect(map.setDesired(desired)).toEqual({ upserted: 0, deleted: 0 });
    });

    it('applies incremental changes', () => {
      const { map } = make(16);
      map.setDesired(many(3));
      expect(map.applyChanges({ deletes: [k(300, 80)], upserts: [[k(9, 9), ALLOW]] })).toEqual({ upserted: 1, deleted: 1 });
      expect([...map.dump().keys()].sort()).toEqual(['301/0/6/80/16', '302/0/6/80/16', '9/0/6/9/16']);
    });

    it('fails closed when the policy does not fit, and recovers when it does', () => {
      const { map } = make(8);
      map.setDesired(many(4));
      expect(() => map.setDesired(many(9))).toThrow(PolicyMapFullError);
      expect(map.lockedDown).toBe(true);
      expect(map.desired().size).toBe(9);
      expect(map.setDesired(many(8)).upserted).toBe(4);
      expect(map.lockedDown).toBe(false);
      expect(map.dump()).toEqual(map.desired());
    });

    it('repairs drift', () => {
      const s = make(16);
      s.map.setDesired(many(5));
      s.injectDrift();
      expect(s.map.repair()).toMatchObject({ missing: 1, extra: 1, changed: 0 });
      expect(s.map.dump()).toEqual(s.map.desired());
    });
  });
}

export interface IpcacheSubject {
  ipcache: IpcacheManager;
  injectDrift(): void;
}

export function ipcacheContract(name: string, make: () => IpcacheSubject): void {
  describe(`IpcacheManager contract: ${name}`, () => {
    it('maps addresses by longest prefix, ignores IPv6 and deletes', () => {
      const { ipcache } = make();
      ipcache.setDesired([
        { cidr: '10.0.0.0/8', identity: 16777217 },
        { cidr: '10.1.2.3', identity: 300, nodeAddress: '192.168.1.5' },
        { cidr: 'fd00::/64', identity: 301 },
      ]);
      expect(ipcache.lookup('10.1.2.3')).toEqual({ identity: 300, nodeAddress: '192.168.1.5' });
      expect(ipcache.lookup('10.9.9.9')).toEqual({ identity: 16777217 });
      expect(ipcache.lookup('11.0.0.1')).toBeUndefined();
      expect(ipcache.dump().size).toBe(2);
      expect(ipcache.applyChanges({ deletes: ['10.1.2.3/32'] })).toEqual({ upserted: 0, deleted: 1 });
      expect(ipcache.lookup('10.1.2.3')).toEqual({ identity: 16777217 });
      expect(ipcache.setDesired([{ cidr: '10.0.0.0/8', identity: 16777217 }])).toEqual({ upserted: 0, deleted: 0 });
    });

    it('repairs drift', () => {
      const s = make();
      s.ipcache.setDesired([
        { cidr: '10.0.0.1', identity: 300 },
        { cidr: '10.0.0.2', identity: 301 },
      ]);
      s.injectDrift();
      expect(s.ipcache.repair()).toMatchObject({ missing: 1, extra: 1 });
      expect([...s.ipcache.dump().keys()].sort()).toEqual(['10.0.0.1/32', '10.0.0.2/32']);
    });
  });
}
