import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datapath, Direction, Protocol, Reason, evaluatePolicy, policyKeyString, validatePolicyKey } from '../../bpf/index.js';
import type { PolicyEntry, PolicyKey } from '../../bpf/index.js';
import { arpFrame, frame, ipv6Frame, TCP_ACK, TCP_SYN } from './helpers/packet.js';
import { ensureBpffs } from './helpers/sh.js';
import { uniqueName } from './helpers/topology.js';

// The kernel programs judged on synthetic frames (BPF_PROG_TEST_RUN, no namespaces): the
// endpoint is registered on lo (ifindex 1), which is the device test runs claim.
const EP = 900;
const LOCAL = '10.9.1.1';
const REMOTES = [
  { ip: '10.9.0.1', identity: 1001 },
  { ip: '10.9.0.2', identity: 1002 },
  { ip: '10.9.0.3', identity: 2 }, // not in the ipcache: world
];

let dp: Datapath;
let pinRoot: string;
let sport = 10000;

beforeAll(() => {
  ensureBpffs();
  pinRoot = `/sys/fs/bpf/${uniqueName('wdv')}`;
  dp = Datapath.open({ pinRoot });
  dp.ipcache.setDesired(REMOTES.filter((r) => r.identity !== 2).map((r) => ({ cidr: r.ip, identity: r.identity })));
  dp.policy.open(EP);
  dp.endpoints.put({ ifindex: 1, endpointId: EP, identity: 3000, lockedDown: false });
});

afterAll(() => {
  try {
    dp?.close();
  } finally {
    if (pinRoot) Datapath.removePins(pinRoot);
  }
});

function run(direction: Direction, remote: string, protocol: number, dport: number, extra: Partial<Parameters<typeof frame>[0]> = {}): 'pass' | 'drop' {
  const ingress = direction === Direction.ingress;
  const f = frame({ saddr: ingress ? remote : LOCAL, daddr: ingress ? LOCAL : remote, protocol, sport: sport++, dport, ...extra });
  return dp.testPacket(ingress ? 'to-endpoint' : 'from-endpoint', f);
}

function counter(reason: number): number {
  return dp.counters(EP).filter((c) => c.reason === reason).reduce((s, c) => s + c.packets, 0);
}

describe('parsing and fail-closed paths', () => {
  it('passes ARP, drops IPv6, malformed packets and non-first fragments, and counts them', () => {
    dp.policy.get(EP)!.setDesired([[{ identity: 0, direction: 0, protocol: 0, port: 0, portPrefixLen: 0 }, { deny: false, proxyPort: 0 }]]);
    expect(dp.testPacket('to-endpoint', arpFrame())).toBe('pass');
    const v6 = counter(Reason.dropIpv6);
    expect(dp.testPacket('to-endpoint', ipv6Frame())).toBe('drop');
    expect(dp.testPacket('from-endpoint', ipv6Frame())).toBe('drop');
    expect(counter(Reason.dropIpv6)).toBe(v6 + 2);
    expect(run(Direction.ingress, '10.9.0.1', Protocol.tcp, 80, { truncate: 10 })).toBe('drop');
    expect(run(Direction.ingress, '10.9.0.1', Protocol.tcp, 80, { ihl: 4 })).toBe('drop');
    expect(counter(Reason.dropMalformed)).toBeGreaterThanOrEqual(2);
    expect(run(Direction.ingress, '10.9.0.1', Protocol.udp, 80, { fragOffset: 100 })).toBe('drop');
    expect(counter(Reason.dropFragment)).toBe(1);
    expect(dp.testPacket('to-endpoint', frame({ saddr: '1.1.1.1', daddr: LOCAL, protocol: 6, etherType: 0x88b5 }))).toBe('drop');
    // With allow-all, a well-formed packet of any protocol passes.
    expect(run(Direction.ingress, '10.9.0.1', 47, 0)).toBe('pass');
  });

  it('drops traffic of an interface that is not a known endpoint', () => {
    dp.endpoints.delete(1);
    try {
      expect(run(Direction.ingress, '10.9.0.1', Protocol.tcp, 80)).toBe('drop');
      expect(dp.counters(0).some((c) => c.reason === Reason.dropUnknownEndpoint)).toBe(true);
    } finally {
      dp.endpoints.put({ ifindex: 1, endpointId: EP, identity: 3000, lockedDown: false });
    }
  });

  it('lets a reply through conntrack only for the connection that opened it', () => {
    dp.policy.get(EP)!.setDesired([[{ identity: 1001, direction: 1, protocol: 6, port: 443, portPrefixLen: 16 }, { deny: false, proxyPort: 0 }]]);
    const out = frame({ saddr: LOCAL, daddr: '10.9.0.1', protocol: 6, sport: 5555, dport: 443 });
    expect(dp.testPacket('from-endpoint', out)).toBe('pass');
    const reply = frame({ saddr: '10.9.0.1', daddr: LOCAL, protocol: 6, sport: 443, dport: 5555, tcpFlags: TCP_SYN | TCP_ACK });
    expect(dp.testPacket('to-endpoint', reply)).toBe('pass');
    const other = frame({ saddr: '10.9.0.2', daddr: LOCAL, protocol: 6, sport: 443, dport: 5555, tcpFlags: TCP_ACK });
    expect(dp.testPacket('to-endpoint', other)).toBe('drop');
    // A new SYN on the same tuple is judged by policy again, never by conntrack.
    dp.policy.get(EP)!.setDesired([]);
    expect(dp.testPacket('from-endpoint', out)).toBe('drop');
    expect(dp.testPacket('from-endpoint', frame({ saddr: LOCAL, daddr: '10.9.0.1', protocol: 6, sport: 5555, dport: 443, tcpFlags: TCP_ACK }))).toBe('pass');
    expect(dp.flushConntrack({ endpointId: EP, peer: '10.9.0.1' })).toBe(1);
    expect(dp.testPacket('from-endpoint', frame({ saddr: LOCAL, daddr: '10.9.0.1', protocol: 6, sport: 5555, dport: 443, tcpFlags: TCP_ACK }))).toBe('drop');
  });
});

const identityArb = fc.constantFrom(0, 1001, 1002, 2);
const protoArb = fc.constantFrom<Protocol>(Protocol.any, Protocol.tcp, Protocol.udp, Protocol.icmp, Protocol.sctp);
const keyArb: fc.Arbitrary<PolicyKey> = fc
  .record({
    identity: identityArb,
    direction: fc.constantFrom<Direction>(0, 1),
    protocol: protoArb,
    port: fc.integer({ min: 0, max: 0xffff }),
    portPrefixLen: fc.integer({ min: 0, max: 16 }),
  })
  .map((k) => {
    const portPrefixLen = k.protocol === 0 || k.protocol === 1 ? 0 : k.portPrefixLen;
    const mask = portPrefixLen === 0 ? 0 : (0xffff << (16 - portPrefixLen)) & 0xffff;
    return validatePolicyKey({ ...k, portPrefixLen, port: k.port & mask });
  });
const entryArb = fc.tuple(keyArb, fc.record({ deny: fc.boolean(), proxyPort: fc.constantFrom(0, 0, 15001) }));
const queryArb = fc.record({
  remote: fc.constantFrom(...REMOTES),
  direction: fc.constantFrom<Direction>(0, 1),
  protocol: fc.constantFrom(6, 17, 132, 1),
  port: fc.oneof(fc.integer({ min: 1, max: 0xffff }), fc.constantFrom(80, 443, 8080)),
});

describe('kernel verdicts equal the policy-map contract (evaluatePolicy)', () => {
  it('for random policies and packets', () => {
    const seen = { pass: 0, drop: 0 };
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 24 }), fc.array(queryArb, { minLength: 1, maxLength: 24 }), (entries, queries) => {
        const desired = new Map<string, readonly [PolicyKey, PolicyEntry]>();
        for (const e of entries) desired.set(policyKeyString(e[0]), e);
        dp.policy.get(EP)!.setDesired(desired.values());
        for (const q of queries) {
          const want = evaluatePolicy(desired, { remoteIdentity: q.remote.identity, direction: q.direction, protocol: q.protocol, port: q.port });
          const got = run(q.direction, q.remote.ip, q.protocol, q.port);
          seen[got]++;
          // A TCP connection redirected to the proxy at egress needs a listener on
          // 127.0.0.1:<proxy port>; there is none here, so it fails closed (no-proxy-listener).
          const noListener = want.allowed && want.proxyPort !== 0 && q.protocol === 6 && q.direction === Direction.egress;
          if (got !== (want.allowed && !noListener ? 'pass' : 'drop')) {
            throw new Error(`kernel ${got}, contract ${JSON.stringify(want)} for ${JSON.stringify(q)}`);
          }
        }
      }),
      { numRuns: 150 },
    );
    // Both outcomes were exercised (the property is not vacuous).
    expect(seen.pass).toBeGreaterThan(50);
    expect(seen.drop).toBeGreaterThan(50);
  });
});
