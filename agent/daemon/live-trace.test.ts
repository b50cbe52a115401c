import { describe, expect, it } from 'vitest';
import { LabelSet, ReservedIdentity } from '../../identity/index.js';
import { PolicyEngine, TraceInputError } from '../calc/index.js';
import { parsePolicy } from '../policy/index.js';
import { liveTrace, resolveLivePeer, type LiveTraceSources } from './live-trace.js';

const POLICY = `
- endpointSelector: { matchLabels: { app: db } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: web } }]
      toPorts: [{ ports: [{ port: "5432", protocol: TCP }] }]
    - fromCIDR: ["192.0.2.0/24"]
`;

function world(): LiveTraceSources {
  const engine = new PolicyEngine();
  const web = LabelSet.parse(['app=web']);
  const db = LabelSet.parse(['app=db']);
  engine.updateIdentities([
    [300, web],
    [301, db],
  ]);
  engine.upsertEndpoint('db', db);
  engine.upsertPolicy('p', parsePolicy(POLICY, 'p.yaml').rules);
  const cidr = engine.flush().ipcache.added[0]!;
  const ipcache = new Map<string, number>([
    ['10.1.0.5', 300], // a remote web endpoint
    ['10.9.0.1', ReservedIdentity.remoteNode],
    ['10.2.0.3', 301], // db, seen from a host where it is not local
    ['192.0.2.7', cidr.identity],
  ]);
  const local = [{ name: 'db', ip: '10.2.0.3', identity: 301, labels: db.toStrings() }];
  return {
    engine,
    local: () => local,
    ipcacheLookup: (ip) => (ipcache.has(ip) ? { identity: ipcache.get(ip)! } : undefined),
    identityLabels: (id) => (id === 300 ? web.toStrings() : id === 301 ? db.toStrings() : undefined),
    identities: () => [
      [300, web],
      [301, db],
    ],
  };
}

describe('online trace on live sources', () => {
  it('resolves local names and IPs, remote endpoints through the ipcache, CIDR identities, world', () => {
    const w = world();
    expect(resolveLivePeer(w, 'db')).toMatchObject({ kind: 'endpoint', name: 'db', identity: 301 });
    expect(resolveLivePeer(w, '10.2.0.3')).toMatchObject({ kind: 'endpoint', name: 'db' });
    expect(resolveLivePeer(w, '10.1.0.5')).toEqual({ kind: 'address', ip: '10.1.0.5', identity: 300, labels: ['app=web'] });
    expect(resolveLivePeer(w, '10.9.0.1')).toEqual({ kind: 'address', ip: '10.9.0.1', identity: ReservedIdentity.remoteNode });
    expect(resolveLivePeer(w, '192.0.2.7')).toMatchObject({ kind: 'address', prefix: '192.0.2.0/24' });
    expect(resolveLivePeer(w, '8.8.8.8')).toEqual({ kind: 'address', ip: '8.8.8.8', identity: ReservedIdentity.world });
    expect(() => resolveLivePeer(w, 'nosuch')).toThrow(TraceInputError);
  });

  it("judges a remote endpoint's own side with the cluster-wide rules", () => {
    const w = { ...world(), local: () => [] };
    expect(liveTrace(w, { from: '10.1.0.5', to: '10.2.0.3', dport: 5432, protocol: 'TCP' }).verdict).toBe('allowed');
    const denied = liveTrace(w, { from: '10.1.0.5', to: '10.2.0.3', dport: 22, protocol: 'TCP' });
    expect(denied.verdict).toBe('denied');
    expect(denied.ingress.endpoint).toBe('remote endpoint 10.2.0.3');
    expect(denied.to).toMatchObject({ kind: 'address', ip: '10.2.0.3', identity: 301 });
  });

  it('gives the verdicts of the live engine', () => {
    const w = world();
    expect(liveTrace(w, { from: '10.1.0.5', to: 'db', dport: 5432, protocol: 'TCP' }).verdict).toBe('allowed');
    expect(liveTrace(w, { from: '10.1.0.5', to: 'db', dport: 22, protocol: 'TCP' }).verdict).toBe('denied');
    expect(liveTrace(w, { from: '192.0.2.7', to: '10.2.0.3', dport: 22, protocol: 'UDP' }).verdict).toBe('allowed');
    expect(liveTrace(w, { from: 'world', to: 'db', dport: 5432, protocol: 'TCP' }).verdict).toBe('denied');
    // Traffic leaving a local endpoint without egress rules: allowed by this host's policy.
    expect(liveTrace(w, { from: 'db', to: '8.8.8.8', dport: 53, protocol: 'UDP' }).verdict).toBe('allowed');
  });
});
