import { describe, expect, it } from 'vitest';
import { FakeDatapath, Reason, type DatapathEvent } from '../../bpf/index.js';
import { LabelSet } from '../../identity/index.js';
import type { MonitorEventJson } from '../api/index.js';
import { PolicyEngine } from '../calc/index.js';
import { EndpointNotFoundError, type EndpointRecord } from '../endpoint/index.js';
import { Observer } from './observe.js';

const WEB = 300;
const DB = 400;
const db: EndpointRecord = { name: 'db', id: 7, labels: ['app=db'], netns: '/run/netns/d', ifname: 'lxc0', ip: '10.200.0.3', identity: DB, createdAtMs: 0 };

function event(over: Partial<DatapathEvent>): DatapathEvent {
  return {
    type: 'drop',
    reason: Reason.dropPolicy,
    reasonName: 'policy-denied',
    tsNs: 0n,
    endpointId: db.id,
    remoteIdentity: WEB,
    saddr: '10.200.0.2',
    daddr: db.ip,
    sport: 40000,
    dport: 5432,
    protocol: 6,
    direction: 'ingress',
    ifindex: 3,
    proxyPort: 0,
    length: 60,
    ...over,
  };
}

function setup(): { dp: FakeDatapath; obs: Observer } {
  const dp = new FakeDatapath();
  const engine = new PolicyEngine();
  engine.updateIdentities([
    [WEB, LabelSet.parse(['app=web'])],
    [DB, LabelSet.parse(['app=db'])],
  ]);
  dp.policy.open(db.id).setDesired([
    [{ identity: WEB, direction: 0, protocol: 6, port: 8000, portPrefixLen: 14 }, { deny: false, proxyPort: 0 }],
    [{ identity: 0, direction: 1, protocol: 0, port: 0, portPrefixLen: 0 }, { deny: false, proxyPort: 0 }],
  ]);
  dp.ipcache.setDesired([{ cidr: '10.200.0.2/32', identity: WEB }, { cidr: '10.9.0.1/32', identity: 6, nodeAddress: '10.9.0.1' }]);
  return { dp, obs: new Observer({ dp, engine, endpoints: () => [db] }) };
}

describe('Observer', () => {
  it('renders a policy map with labels and port ranges, by name or id', () => {
    const { obs } = setup();
    const p = obs.bpfPolicy('db');
    expect(p).toMatchObject({ endpoint: 'db', id: 7, lockedDown: false });
    expect(p.entries).toEqual([
      { identity: 0, labels: ['(any)'], direction: 'egress', protocol: 'ANY', ports: 'ANY', deny: false, proxyPort: 0, inKernel: true, desired: true },
      { identity: WEB, labels: ['app=web'], direction: 'ingress', protocol: 'TCP', ports: '8000-8003', deny: false, proxyPort: 0, inKernel: true, desired: true },
    ]);
    expect(obs.bpfPolicy('7').endpoint).toBe('db');
    expect(() => obs.bpfPolicy('nope')).toThrow(EndpointNotFoundError);
  });

  it('lists the ipcache with identity labels', () => {
    const { obs } = setup();
    expect(obs.ipcache()).toEqual([
      { cidr: '10.9.0.1/32', identity: 6, labels: ['reserved:remote-node'], nodeAddress: '10.9.0.1' },
      { cidr: '10.200.0.2/32', identity: WEB, labels: ['app=web'] },
    ]);
  });

  it('streams only matching events, resolved, until the subscription closes', () => {
    const { dp, obs } = setup();
    const got: MonitorEventJson[] = [];
    const sub = obs.monitor({ type: 'drop', endpoint: 'db' }, (e) => got.push(e));
    dp.emit([event({}), event({ type: 'policy-verdict', reason: Reason.policyAllow, reasonName: 'policy-allow' }), event({ endpointId: 99 })]);
    expect(got).toEqual([
      {
        type: 'drop',
        reason: Reason.dropPolicy,
        reasonName: 'policy-denied',
        direction: 'ingress',
        endpointId: 7,
        endpoint: 'db',
        identity: DB,
        labels: ['app=db'],
        remoteIdentity: WEB,
        remoteLabels: ['app=web'],
        protocol: 'TCP',
        saddr: '10.200.0.2',
        sport: 40000,
        daddr: db.ip,
        dport: 5432,
        length: 60,
        proxyPort: 0,
      },
    ]);
    sub.close();
    dp.emit([event({})]);
    expect(got).toHaveLength(1);
    expect(() => obs.monitor({ endpoint: 'nope' }, () => undefined)).toThrow(EndpointNotFoundError);
  });

  it('names endpoints in the counters', () => {
    const { dp, obs } = setup();
    dp.counterValues.push({ endpointId: 7, direction: 'ingress', reason: Reason.dropPolicy, reasonName: 'policy-denied', packets: 3, bytes: 180 });
    expect(obs.counters()).toEqual([{ endpointId: 7, endpoint: 'db', direction: 'ingress', reason: 'policy-denied', packets: 3, bytes: 180 }]);
  });
});
