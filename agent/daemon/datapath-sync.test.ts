import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeDatapath, type IpcacheChanges, type PolicyMapChanges } from '../../bpf/index.js';
import { LabelSet } from '../../identity/index.js';
import { PolicyEngine } from '../calc/index.js';
import { parsePolicy } from '../policy/index.js';
import { DatapathSync } from './datapath-sync.js';
import { DesiredIpcache } from './desired-ipcache.js';

const POLICY = `
endpointSelector: { matchLabels: { app: db } }
ingress:
  - fromEndpoints: [{ matchLabels: { app: web } }]
    toPorts: [{ ports: [{ port: "5432", protocol: TCP }] }]
`;

/** A FakeDatapath whose map and ipcache writes are recorded in order. */
function recording(): { dp: FakeDatapath; calls: string[]; watch(id: number): void } {
  const dp = new FakeDatapath();
  const calls: string[] = [];
  const n = (x: Iterable<unknown> | undefined): number => [...(x ?? [])].length;
  const ipApply = dp.ipcache.applyChanges.bind(dp.ipcache);
  dp.ipcache.applyChanges = (c: IpcacheChanges) => {
    calls.push(`ipcache +${n(c.upserts)} -${n(c.deletes)}`);
    return ipApply(c);
  };
  return {
    dp,
    calls,
    watch(id) {
      const m = dp.policy.get(id)!;
      const apply = m.applyChanges.bind(m);
      m.applyChanges = (c: PolicyMapChanges) => {
        calls.push(`ep${id} +${n(c.upserts)} -${n(c.deletes)}`);
        return apply(c);
      };
    },
  };
}

describe('DatapathSync', () => {
  it('writes policy-map additions before the ipcache, and deletions after it', () => {
    const { dp, calls, watch } = recording();
    const engine = new PolicyEngine();
    const ipcache = new DesiredIpcache();
    const sync = new DatapathSync(dp, pino({ level: 'silent' }));
    const db = LabelSet.parse(['app=db']);
    engine.updateIdentities([[300, db]]);
    engine.upsertPolicy('p', parsePolicy(POLICY, 'p.yaml').rules);
    engine.upsertEndpoint('db', db);
    engine.flush();
    sync.program('db', { endpointId: 7, identity: 300, ifname: 'lxc0' }, engine.endpoint('db')!.entries);
    expect(dp.endpoints.get(7)?.identity).toBe(300);
    watch(7);
    const before = dp.policy.get(7)!.desired().size;

    // A new web identity appears together with its endpoint IP.
    engine.updateIdentities([[301, LabelSet.parse(['app=web'])]]);
    ipcache.set('endpoint', '10.0.0.9', { identity: 301 });
    sync.apply(engine.flush(), ipcache.takeChanges());
    expect(calls).toEqual(['ep7 +1 -0', 'ipcache +1 -0']);
    expect(dp.policy.get(7)!.desired().size).toBe(before + 1);

    // It goes away: the ipcache forgets it first, then the map entry goes.
    calls.length = 0;
    engine.updateIdentities([], [301]);
    ipcache.delete('endpoint', '10.0.0.9');
    sync.apply(engine.flush(), ipcache.takeChanges());
    expect(calls).toEqual(['ipcache +0 -1', 'ep7 +0 -1']);

    // Unprogrammed endpoints are skipped; unprogram drops the map.
    sync.unprogram('db', 7);
    expect(dp.policy.get(7)).toBeUndefined();
    expect(sync.isProgrammed('db')).toBe(false);
  });
});
