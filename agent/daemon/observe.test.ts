import { describe, expect, it } from 'vitest';
import { FakeDatapath, Reason, type DatapathEvent } from '../../bpf/index.js';
import { LabelSet } from '../../identity/index.js';
import type { MonitorEventJson } from '../api/index.js';
import { PolicyEngine } from '../calc/index.js';
import { EndpointNotFoundError, type EndpointRecord } from '../endpoint/index.js';
import type { L7Event } from '../proxy/index.js';
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

function l7Event(over: Partial<L7Event>): L7Event {
  return {
    timeMs: 1700000000000,
    endpoint: 'db',
    direction: 'ingress',
    sourceIdentity: WEB,
    destinationIdentity: DB,
    source: '10.200.0.2:40000',
    destination: `${db.ip}:80`,
    method: 'GET',
    path: '/public/x',
    verdict: 'allowed',
    reason: 'allowed by rule',
    ...over,
  };
}

const DENIED = { path: '/private', host: 'db', verdict: 'denied', status: 403, reason: 'no HTTP rule matches' } as const;

/** Stands in for L7Service.onRequest: counts subscriptions to the proxy. */
class FakeL7 {
  readonly fns = new Set<(e: L7Event) => void>();
  subscribes = 0;
  readonly onRequest = (fn: (e: L7Event) => void): (() => void) => {
    this.subscribes++;
    this.fns.add(fn);
    return () => void this.fns.delete(fn);
  };
  emit(e: L7Event): void {
    for (const fn of this.fns) fn(e);
  }
}

function setup(): { dp: FakeDatapath; obs: Observer; l7: FakeL7 } {
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
  const l7 = new FakeL7();
  return { dp, l7, obs: new Observer({ dp, engine, endpoints: () => [db], onL7Request: l7.onRequest }) };
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

  it('resolves L7 request decisions: endpoint, identities and labels', () => {
    const { obs, l7 } = setup();
    const got: MonitorEventJson[] = [];
    const sub = obs.monitor({ type: 'l7' }, (e) => got.push(e));
    l7.emit(l7Event(DENIED));
    l7.emit(l7Event({ endpoint: 'gone', direction: 'egress', sourceIdentity: 999, destinationIdentity: 2, path: '/x' }));
    sub.close();
    expect(got).toEqual([
      {
        type: 'l7',
        timeMs: 1700000000000,
        endpoint: 'db',
        endpointId: 7,
        identity: DB,
        labels: ['app=db'],
        direction: 'ingress',
        sourceIdentity: WEB,
        sourceLabels: ['app=web'],
        destinationIdentity: DB,
        destinationLabels: ['app=db'],
        source: '10.200.0.2:40000',
        destination: '10.200.0.3:80',
        method: 'GET',
        path: '/private',
        host: 'db',
        verdict: 'denied',
        status: 403,
        reason: 'no HTTP rule matches',
      },
      // Not a local endpoint (any more), unknown source identity: left out, not guessed.
      {
        type: 'l7',
        timeMs: 1700000000000,
        endpoint: 'gone',
        direction: 'egress',
        sourceIdentity: 999,
        destinationIdentity: 2,
        destinationLabels: ['reserved:world'],
        source: '10.200.0.2:40000',
        destination: '10.200.0.3:80',
        method: 'GET',
        path: '/x',
        verdict: 'allowed',
        reason: 'allowed by rule',
      },
    ]);
  });

  it('selects by type and endpoint: no type gives datapath and L7 events, drop gives no L7', () => {
    const { dp, obs, l7 } = setup();
    const all: string[] = [];
    const byId: string[] = [];
    const drops: string[] = [];
    const subs = [
      obs.monitor({}, (e) => all.push(e.type)),
      obs.monitor({ endpoint: '7' }, (e) => byId.push(e.type === 'l7' ? e.endpoint : String(e.endpointId))),
      obs.monitor({ type: 'drop' }, (e) => drops.push(e.type)),
    ];
    dp.emit([event({}), event({ type: 'policy-verdict', reason: Reason.policyAllow, reasonName: 'policy-allow' })]);
    l7.emit(l7Event({}));
    l7.emit(l7Event({ endpoint: 'other' }));
    for (const s of subs) s.close();
    expect(all).toEqual(['drop', 'policy-verdict', 'l7', 'l7']);
    expect(byId).toEqual(['7', '7', 'db']);
    expect(drops).toEqual(['drop']);
  });

  it('subscribes to the proxy only while an L7 monitor exists, once for all of them', () => {
    const { obs, l7 } = setup();
    const drops = obs.monitor({ type: 'drop' }, () => undefined);
    expect(l7.fns.size).toBe(0); // a drop monitor does not make the proxy build events
    expect(obs.l7Subscribed).toBe(false);
    const a = obs.monitor({ type: 'l7' }, () => undefined);
    const b = obs.monitor({}, () => undefined);
    expect(l7.fns.size).toBe(1);
    expect(l7.subscribes).toBe(1);
    a.close();
    a.close(); // idempotent: does not drop b's share
    expect(l7.fns.size).toBe(1);
    b.close();
    expect(l7.fns.size).toBe(0);
    expect(obs.l7Subscribed).toBe(false);
    const c = obs.monitor({ type: 'l7' }, () => undefined);
    expect(l7.subscribes).toBe(2);
    c.close();
    drops.close();
    expect(l7.fns.size).toBe(0);
  });

  it('a monitor callback that throws loses its subscription, the proxy and the others are unaffected', () => {
    const { obs, l7 } = setup();
    const got: MonitorEventJson[] = [];
    obs.monitor({ type: 'l7' }, () => {
      throw new Error('client gone');
    });
    const ok = obs.monitor({ type: 'l7' }, (e) => got.push(e));
    expect(() => l7.emit(l7Event({}))).not.toThrow();
    l7.emit(l7Event({}));
    expect(got).toHaveLength(2);
    ok.close();
    expect(l7.fns.size).toBe(0);
  });

  it('without an L7 source, type l7 streams nothing and an unknown endpoint still fails', () => {
    const dp = new FakeDatapath();
    const obs = new Observer({ dp, engine: new PolicyEngine(), endpoints: () => [db] });
    const got: MonitorEventJson[] = [];
    const sub = obs.monitor({ type: 'l7' }, (e) => got.push(e));
    dp.emit([event({})]);
    sub.close();
    expect(got).toEqual([]);
    expect(() => obs.monitor({ type: 'l7', endpoint: 'nope' }, () => undefined)).toThrow(EndpointNotFoundError);
  });
});
