import { describe, expect, it } from 'vitest';
import { LabelSet } from '../../../identity/index.js';
import { parsePolicy } from '../../../agent/policy/index.js';
import type { BpfPolicyEntryJson, BpfPolicyJson } from '../../../agent/api/observe-types.js';
import { identityInvariants, type ClusterSnapshot } from '../../chaos/cluster-state.js';
import { desiredPolicyMaps, diffMaps, kernelPolicyMap } from '../../chaos/policy-maps.js';
import { RssSamples } from '../../chaos/rss.js';

// The chaos suite's checkers must fail on a wrong state, or a green run means nothing.

const POLICY = `- endpointSelector: { matchLabels: { app: db } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: web } }]
      toPorts: [{ ports: [{ port: "5432", protocol: TCP }, { port: "8000", endPort: 8007, protocol: TCP }] }]
`;

function snapshot(over: Partial<ClusterSnapshot> = {}): ClusterSnapshot {
  return {
    revision: '7',
    identities: new Map([
      [300, LabelSet.parse(['app=db'])],
      [301, LabelSet.parse(['app=web'])],
    ]),
    index: [
      { key: 'ward/state/identities/v1/labels/db', id: 300 },
      { key: 'ward/state/identities/v1/labels/web', id: 301 },
    ],
    refs: [{ key: 'ward/state/identities/v1/refs/h1/db', node: 'h1', labelsKey: 'ward/state/identities/v1/labels/db', id: 300 }],
    endpoints: [
      { v: 1, ip: '10.230.0.2', identity: 300, node: 'h1', name: 'db' },
      { v: 1, ip: '10.230.1.2', identity: 301, node: 'h2', name: 'web' },
    ],
    policies: [{ name: 'p', rules: parsePolicy(POLICY, 'p.yaml').rules }],
    ...over,
  };
}

const entry = (identity: number, direction: 'ingress' | 'egress', protocol: string, ports: string, over: Partial<BpfPolicyEntryJson> = {}): BpfPolicyEntryJson => ({
  identity,
  direction,
  protocol,
  ports,
  deny: false,
  proxyPort: 0,
  inKernel: true,
  desired: true,
  ...over,
});

const kernel = (entries: BpfPolicyEntryJson[]): BpfPolicyJson => ({ endpoint: 'db', id: 1, capacity: 1024, lockedDown: false, entries });

describe('chaos checks', () => {
  it('computes a node-local endpoint policy map from etcd and matches the kernel form', () => {
    const want = desiredPolicyMaps(snapshot(), 'h1');
    expect([...want.keys()]).toEqual(['db']);
    const db = want.get('db');
    if (db === undefined || typeof db === 'string') throw new Error('no map for db');
    const good = kernel([entry(0, 'egress', 'ANY', 'ANY'), entry(301, 'ingress', 'TCP', '5432'), entry(301, 'ingress', 'TCP', '8000-8007')]);
    expect(diffMaps(db, kernelPolicyMap(good))).toEqual([]);
    // Only inKernel entries count; a deny where an allow belongs, a missing and an extra entry all show.
    const bad = kernel([
      entry(0, 'egress', 'ANY', 'ANY'),
      entry(301, 'ingress', 'TCP', '5432', { deny: true }),
      entry(301, 'ingress', 'TCP', '8000-8007', { inKernel: false }),
      entry(300, 'ingress', 'UDP', '53'),
    ]);
    const diff = diffMaps(db, kernelPolicyMap(bad));
    expect(diff).toHaveLength(3);
    expect(diff.join('\n')).toMatch(/missing 301\/0\/6\/5432\/16 allow \(kernel: deny\)/);
    expect(diff.join('\n')).toMatch(/missing 301\/0\/6\/8000\/13 allow$/m);
    expect(diff.join('\n')).toMatch(/extra 300\/0\/17\/53\/16 allow/);
  });

  it('compares proxy ports as zero or not (they are allocated per agent)', () => {
    const m = kernelPolicyMap(kernel([entry(301, 'ingress', 'TCP', '80', { proxyPort: 15001 })]));
    const n = kernelPolicyMap(kernel([entry(301, 'ingress', 'TCP', '80', { proxyPort: 17222 })]));
    expect(diffMaps(m, n)).toEqual([]);
    expect(diffMaps(m, kernelPolicyMap(kernel([entry(301, 'ingress', 'TCP', '80')])))).toHaveLength(1);
  });

  it('reports an endpoint whose identity is missing instead of a map', () => {
    expect(desiredPolicyMaps(snapshot({ identities: new Map([[301, LabelSet.parse(['app=web'])]]) }), 'h1').get('db')).toMatch(/identity 300 .* missing/);
  });

  it('finds shared ids and references or endpoints pointing to missing identities', () => {
    expect(identityInvariants(snapshot())).toEqual({ duplicates: 0, dangling: 0, details: [] });
    const s = snapshot({
      identities: new Map([[301, LabelSet.parse(['app=web'])]]),
      index: [
        { key: 'ward/state/identities/v1/labels/db', id: 300 },
        { key: 'ward/state/identities/v1/labels/web', id: 301 },
        { key: 'ward/state/identities/v1/labels/web2', id: 301 },
      ],
    });
    const inv = identityInvariants(s);
    expect(inv.duplicates).toBe(1);
    // index db -> 300, reference of h1 -> 300, endpoint db -> 300
    expect(inv.dangling).toBe(3);
    expect(inv.details.join('\n')).toMatch(/reference .*refs\/h1\/db -> missing identity 300/);
  });

  it('judges RSS growth per process after warm-up', () => {
    const r = new RssSamples();
    const mb = 1048576;
    for (let t = 0; t <= 90_000; t += 1500) r.add('h1', 1, t, (t < 15_000 ? 50 : 100 + t / 1500) * mb); // warm-up jump ignored
    for (let t = 0; t <= 30_000; t += 1500) r.add('h2', 2, t, (100 + t / 100) * mb); // grows more, but too short to judge
    r.add('h3', 3, 0, undefined); // gone: no sample
    const g = r.growth();
    expect(g.judged).toBe(true);
    expect(g.ratio).toBeGreaterThan(1.2);
    expect(g.ratio).toBeLessThan(1.5);
    expect(g.worst).toMatch(/^h1 pid 1/);
  });
});
