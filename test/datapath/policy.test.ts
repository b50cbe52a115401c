import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfMap, Datapath, PolicyMapFullError, Protocol, Reason, ebpf, encodePolicyKey } from '../../bpf/index.js';
import type { DatapathEvent } from '../../bpf/index.js';
import { allow, allowRange, deny } from './helpers/policy.js';
import { Probe } from './helpers/probe.js';
import { ensureBpffs, shQuiet } from './helpers/sh.js';
import { Topology, uniqueName } from './helpers/topology.js';

// Real programs on the host-side veths of three endpoint namespaces, real packets between them.
const ID_A = 1001;
const ID_B = 1002;
const ID_C = 1003;
const EP_A = 101;
const EP_B = 102;
const EP_C = 103;
const WORLD = 2;
const CAPACITY = 64;

let topo: Topology;
let dp: Datapath;
let pinRoot: string;
let a: Probe;
let b: Probe;
let c: Probe;
const events: DatapathEvent[] = [];

const ep = (i: number) => topo.endpoints[i]!;

function identitiesKnown(): void {
  dp.ipcache.setDesired([
    { cidr: `${ep(0).ip}/32`, identity: ID_A },
    { cidr: `${ep(1).ip}/32`, identity: ID_B },
    { cidr: `${ep(2).ip}/32`, identity: ID_C },
  ]);
}

/** A may talk to B on TCP/UDP/ICMP as far as A's egress is concerned; tests vary B's ingress. */
function aEgressOpen(): void {
  dp.policy.get(EP_A)!.setDesired([allow(0, 'out', Protocol.any)]);
}

function takeEvents(): DatapathEvent[] {
  dp.pollEvents();
  return events.splice(0);
}

beforeAll(async () => {
  ensureBpffs();
  pinRoot = `/sys/fs/bpf/${uniqueName('wdt')}`;
  topo = Topology.create('wdp', 3);
  dp = Datapath.open({ pinRoot, policyMapMaxEntries: CAPACITY });
  identitiesKnown();
  dp.attachEndpoint({ endpointId: EP_A, identity: ID_A, ifname: ep(0).hostIf, netns: topo.hostPath });
  dp.attachEndpoint({ endpointId: EP_B, identity: ID_B, ifname: ep(1).hostIf, netns: topo.hostPath });
  dp.attachEndpoint({ endpointId: EP_C, identity: ID_C, ifname: ep(2).hostIf, netns: topo.hostPath });
  dp.onEvents((evs) => events.push(...evs));
  [a, b, c] = await Promise.all([Probe.start(ep(0).netns), Probe.start(ep(1).netns), Probe.start(ep(2).netns)]);
  await b.listenTcp(8080);
  await b.listenTcp(8081);
  await b.listenUdp(9090);
  await c.listenTcp(8080);
});

afterAll(() => {
  for (const p of [a, b, c]) p?.stop();
  try {
    dp?.close();
  } finally {
    topo?.destroy();
    if (pinRoot) Datapath.removePins(pinRoot);
    shQuiet('true', []);
  }
});

describe('datapath policy on real packets', () => {
  it('drops everything with empty policy maps and reports the drop with its fields', async () => {
    dp.policy.get(EP_A)!.setDesired([]);
    dp.policy.get(EP_B)!.setDesired([]);
    takeEvents();
    expect(await a.tcp(ep(1).ip, 8080, 1000)).toBe(false);
    const drop = takeEvents().find((e) => e.type === 'drop' && e.endpointId === EP_A && e.dport === 8080);
    expect(drop).toMatchObject({
      reason: Reason.dropPolicy,
      reasonName: 'policy-denied',
      direction: 'egress',
      remoteIdentity: ID_B,
      saddr: ep(0).ip,
      daddr: ep(1).ip,
      protocol: 6,
    });
    expect(drop!.sport).toBeGreaterThan(0);
    const counters = dp.counters(EP_A).filter((x) => x.reason === Reason.dropPolicy && x.direction === 'egress');
    expect(counters[0]!.packets).toBeGreaterThan(0);
  });

  it('allows TCP as entries are added and stops new connections when removed, without reattaching', async () => {
    const progs = dp.attachedProgramIds(EP_B);
    aEgressOpen();
    dp.policy.get(EP_B)!.setDesired([allow(ID_A, 'in', Protocol.tcp, 8080)]);
    expect(await a.tcp(ep(1).ip, 8080, 3000)).toBe(true);
    expect(await a.tcp(ep(1).ip, 8081, 1000)).toBe(false);
    const verdict = takeEvents().find((e) => e.type === 'policy-verdict' && e.endpointId === EP_B);
    expect(verdict).toMatchObject({ direction: 'ingress', remoteIdentity: ID_A, dport: 8080, reason: Reason.policyAllow });

    dp.policy.get(EP_B)!.applyChanges({ deletes: [allow(ID_A, 'in', Protocol.tcp, 8080)[0]] });
    expect(await a.tcp(ep(1).ip, 8080, 1000)).toBe(false);
    dp.policy.get(EP_B)!.applyChanges({ upserts: [allow(ID_A, 'in', Protocol.tcp, 8080)] });
    expect(await a.tcp(ep(1).ip, 8080, 3000)).toBe(true);
    expect(dp.attachedProgramIds(EP_B)).toEqual(progs);
  });

  it('lets deny beat allow, from either lookup', async () => {
    aEgressOpen();
    dp.policy.get(EP_B)!.setDesired([allow(0, 'in', Protocol.tcp), deny(ID_A, 'in', Protocol.tcp, 8080)]);
    expect(await a.tcp(ep(1).ip, 8080, 1000)).toBe(false);
    expect(takeEvents().some((e) => e.endpointId === EP_B && e.reason === Reason.dropPolicyDeny && e.remoteIdentity === ID_A)).toBe(true);
    expect(await a.tcp(ep(1).ip, 8081, 3000)).toBe(true);
    // A wildcard-identity deny beats an identity-specific allow.
    dp.policy.get(EP_B)!.setDesired([allow(ID_A, 'in', Protocol.tcp, 8081), deny(0, 'in', Protocol.tcp, 8081)]);
    expect(await a.tcp(ep(1).ip, 8081, 1000)).toBe(false);
  });

  it('matches port ranges as LPM prefixes', async () => {
    aEgressOpen();
    dp.policy.get(EP_B)!.setDesired(allowRange(ID_A, 'in', Protocol.tcp, 8075, 8080));
    expect(await a.tcp(ep(1).ip, 8080, 3000)).toBe(true);
    expect(await a.tcp(ep(1).ip, 8081, 1000)).toBe(false);
    dp.policy.get(EP_B)!.setDesired(allowRange(ID_A, 'in', Protocol.tcp, 8081, 9000));
    expect(await a.tcp(ep(1).ip, 8081, 3000)).toBe(true);
    expect(await a.tcp(ep(1).ip, 8080, 1000)).toBe(false);
  });

  it('allows and denies UDP; replies pass through conntrack with no egress policy on the server', async () => {
    aEgressOpen();
    dp.policy.get(EP_B)!.setDesired([allow(ID_A, 'in', Protocol.udp, 9090)]);
    expect(await a.udp(ep(1).ip, 9090, 3000)).toBe(true);
    dp.policy.get(EP_B)!.setDesired([allow(ID_A, 'in', Protocol.tcp, 9090)]);
    dp.flushConntrack({ endpointId: EP_B });
    expect(await a.udp(ep(1).ip, 9090, 1000)).toBe(false);
  });

  it('allows and denies ping', () => {
    aEgressOpen();
    dp.policy.get(EP_B)!.setDesired([allow(ID_A, 'in', Protocol.icmp)]);
    expect(topo.ping(ep(0), ep(1).ip, 3)).toBe(true);
    dp.policy.get(EP_B)!.setDesired([]);
    expect(topo.ping(ep(0), ep(1).ip, 1)).toBe(false);
  });

  it('sees unknown addresses as world and known ones by identity through the ipcache', async () => {
    aEgressOpen();
    dp.policy.get(EP_B)!.setDesired([allow(ID_A, 'in', Protocol.tcp, 8080)]);
    dp.ipcache.applyChanges({ deletes: [`${ep(0).ip}/32`] });
    expect(dp.ipcache.lookup(ep(0).ip)).toBeUndefined();
    takeEvents();
    expect(await a.tcp(ep(1).ip, 8080, 1000)).toBe(false);
    expect(takeEvents().some((e) => e.endpointId === EP_B && e.type === 'drop' && e.remoteIdentity === WORLD)).toBe(true);
    dp.policy.get(EP_B)!.setDesired([allow(WORLD, 'in', Protocol.tcp, 8080)]);
    expect(await a.tcp(ep(1).ip, 8080, 3000)).toBe(true);
    // A covering prefix maps the address again (longest prefix wins over nothing).
    dp.ipcache.applyChanges({ upserts: [{ cidr: '10.77.1.0/24', identity: ID_A }] });
    expect(dp.ipcache.lookup(ep(0).ip)).toEqual({ identity: ID_A });
    expect(await a.tcp(ep(1).ip, 8080, 1000)).toBe(false);
    identitiesKnown();
  });

  it('drops and counts IPv6 (fails closed)', () => {
    topo.runIn(ep(0).netns, 'ping', ['-6', '-c', '1', '-W', '1', '-I', 'eth0', 'ff02::1']);
    const v6 = dp.counters(EP_A).filter((x) => x.reason === Reason.dropIpv6);
    expect(v6.reduce((s, x) => s + x.packets, 0)).toBeGreaterThan(0);
  });

  it('fails the endpoint closed when its policy does not fit, and recovers when it does', async () => {
    dp.policy.get(EP_C)!.setDesired([allow(0, 'in', Protocol.any)]);
    dp.policy.get(EP_A)!.setDesired([allow(0, 'out', Protocol.any)]);
    expect(await a.tcp(ep(2).ip, 8080, 3000)).toBe(true);
    const tooMany = [allow(0, 'in', Protocol.any), ...Array.from({ length: CAPACITY }, (_, i) => allow(5000 + i, 'in', Protocol.tcp, 80))];
    expect(() => dp.policy.get(EP_C)!.setDesired(tooMany)).toThrow(PolicyMapFullError);
    expect(dp.policy.get(EP_C)!.lockedDown).toBe(true);
    expect(dp.endpoints.byEndpoint(EP_C)[0]!.lockedDown).toBe(true);
    takeEvents();
    expect(await a.tcp(ep(2).ip, 8080, 1000)).toBe(false);
    expect(takeEvents().some((e) => e.endpointId === EP_C && e.reason === Reason.dropLockdown)).toBe(true);
    dp.policy.get(EP_C)!.setDesired(tooMany.slice(0, CAPACITY));
    expect(dp.policy.get(EP_C)!.lockedDown).toBe(false);
    expect(await a.tcp(ep(2).ip, 8080, 3000)).toBe(true);
  });

  it('repairs drift between the kernel map and the desired state', () => {
    const m = dp.policy.get(EP_B)!;
    m.setDesired([allow(ID_A, 'in', Protocol.tcp, 8080), allow(ID_A, 'in', Protocol.udp, 9090)]);
    const raw = BpfMap.openPinned(`${pinRoot}/policy/ep_${EP_B}`);
    try {
      raw.delete(encodePolicyKey(allow(ID_A, 'in', Protocol.udp, 9090)[0]));
      raw.update(encodePolicyKey(allow(777, 'in', Protocol.tcp, 1)[0]), Buffer.alloc(8));
    } finally {
      raw.close();
    }
    expect(m.repair()).toMatchObject({ missing: 1, extra: 1, changed: 0 });
    expect(m.dump()).toEqual(m.desired());
    expect(m.repair()).toMatchObject({ missing: 0, extra: 0, changed: 0 });
  });

  it('repairs detached programs, lost endpoint records and policy-map registrations', async () => {
    dp.policy.get(EP_A)!.setDesired([allow(0, 'out', Protocol.any)]);
    dp.policy.get(EP_C)!.setDesired([allow(ID_A, 'in', Protocol.tcp, 8080)]);
    const ifindex = dp.endpoints.byEndpoint(EP_C)[0]!.ifindex;
    ebpf().tcDetach({ netns: topo.hostPath, ifindex, attachPoint: 'egress', handle: 0x5744, priority: 1 });
    dp.endpoints.delete(ifindex);
    const outer = BpfMap.openPinned(`${pinRoot}/ward_policy`);
    try {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(EP_C);
      expect(outer.delete(k)).toBe(true);
    } finally {
      outer.close();
    }
    expect(dp.attachedProgramIds(EP_C).toEndpoint).toBe(0);
    const reports = dp.repairAll();
    expect(reports.find((r) => r.map === 'programs')).toMatchObject({ missing: 1 });
    expect(reports.find((r) => r.map === 'endpoints')).toMatchObject({ missing: 2 });
    expect(dp.attachedProgramIds(EP_C).toEndpoint).toBeGreaterThan(0);
    expect(await a.tcp(ep(2).ip, 8080, 3000)).toBe(true);
    expect(dp.repairAll().every((r) => r.missing + r.extra + r.changed === 0)).toBe(true);
  });
});
