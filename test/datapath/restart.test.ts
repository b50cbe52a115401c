import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datapath, Protocol } from '../../bpf/index.js';
import { allow } from './helpers/policy.js';
import { Probe } from './helpers/probe.js';
import { ensureBpffs } from './helpers/sh.js';
import { Topology, uniqueName } from './helpers/topology.js';

// An established TCP connection must survive a program replacement and an agent restart
// (maps reopened from their pins), and stop when its conntrack entries are flushed.
const ID_A = 2001;
const ID_B = 2002;
const EP_A = 201;
const EP_B = 202;

let topo: Topology;
let dp: Datapath | undefined;
let pinRoot: string;
let a: Probe;
let b: Probe;

const ep = (i: number) => topo.endpoints[i]!;

function openAgent(): Datapath {
  const d = Datapath.open({ pinRoot });
  d.ipcache.setDesired([
    { cidr: `${ep(0).ip}/32`, identity: ID_A },
    { cidr: `${ep(1).ip}/32`, identity: ID_B },
  ]);
  d.attachEndpoint({ endpointId: EP_A, identity: ID_A, ifname: ep(0).hostIf, netns: topo.hostPath });
  d.attachEndpoint({ endpointId: EP_B, identity: ID_B, ifname: ep(1).hostIf, netns: topo.hostPath });
  return d;
}

beforeAll(async () => {
  ensureBpffs();
  pinRoot = `/sys/fs/bpf/${uniqueName('wdr')}`;
  topo = Topology.create('wdr', 2);
  dp = openAgent();
  dp.policy.get(EP_A)!.setDesired([allow(ID_B, 'out', Protocol.tcp, 7000)]);
  dp.policy.get(EP_B)!.setDesired([allow(ID_A, 'in', Protocol.tcp, 7000)]);
  [a, b] = await Promise.all([Probe.start(ep(0).netns), Probe.start(ep(1).netns)]);
  await b.listenTcp(7000);
});

afterAll(() => {
  for (const p of [a, b]) p?.stop();
  try {
    dp?.close();
  } finally {
    topo?.destroy();
    if (pinRoot) Datapath.removePins(pinRoot);
  }
});

describe('connection continuity', () => {
  it('keeps an established connection through program replacement and an agent restart', async () => {
    const sid = await a.openSession(ep(1).ip, 7000);
    expect(await a.sessionEcho(sid, 'one')).toBe(true);

    const before = dp!.attachedProgramIds(EP_B);
    expect(dp!.replacePrograms()).toBe(2);
    const after = dp!.attachedProgramIds(EP_B);
    expect(after.toEndpoint).not.toBe(before.toEndpoint);
    expect(after.toEndpoint).toBeGreaterThan(0);
    expect(await a.sessionEcho(sid, 'two')).toBe(true);

    // Policy removal stops new connections but not the established one.
    dp!.policy.get(EP_B)!.setDesired([]);
    expect(await a.tcp(ep(1).ip, 7000, 1000)).toBe(false);
    expect(await a.sessionEcho(sid, 'three')).toBe(true);

    // Agent restart: every fd closed, a new agent reopens everything from the pins.
    dp!.close();
    dp = undefined;
    expect(await a.sessionEcho(sid, 'four')).toBe(true); // no agent at all: the kernel keeps enforcing
    dp = openAgent();
    expect(dp.policy.get(EP_B)!.dump().size).toBe(0);
    expect(dp.policy.get(EP_A)!.dump().size).toBe(1); // restored from the pinned map
    expect(dp.policy.get(EP_A)!.setDesired([allow(ID_B, 'out', Protocol.tcp, 7000)])).toEqual({ upserted: 0, deleted: 0 });
    expect(await a.sessionEcho(sid, 'five')).toBe(true);
    // State of an endpoint that vanished while no agent ran is swept; live ones are kept.
    dp.policy.open(999);
    dp.endpoints.put({ ifindex: 99_999, endpointId: 999, identity: 5, lockedDown: false });
    expect(dp.sweepEndpoints([EP_A, EP_B])).toEqual({ endpoints: 1, policyMaps: 1 });
    expect(dp.policy.list()).toEqual([EP_A, EP_B]);
    expect(await a.sessionEcho(sid, 'five again')).toBe(true);
    expect(dp.conntrackEntries().some(([k]) => k.endpointId === EP_B && k.dport === 7000)).toBe(true);

    // Flushing B's conntrack entries cuts the connection: B's policy no longer allows it.
    expect(dp.flushConntrack({ endpointId: EP_B, peer: ep(0).ip })).toBeGreaterThan(0);
    expect(await a.sessionEcho(sid, 'six', 1000)).toBe(false);
    await a.closeSession(sid);
  });
});
