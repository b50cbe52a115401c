import { once } from 'node:events';
import { rmSync } from 'node:fs';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfError, BpffsError, BpfMap, Datapath, MapFlags, MapFullError, MapType, UpdateFlags, ebpf, proxyUpstream, transparentListen } from '../../bpf/index.js';
import type { DatapathEvent } from '../../bpf/index.js';
import { endpointObjectPath } from '../../bpf/paths.js';
import { frame } from './helpers/packet.js';
import { ensureBpffs, sh, shQuiet } from './helpers/sh.js';
import { uniqueName } from './helpers/topology.js';

// The ebpf-napi binding itself: map syscalls and their errors, batches, tc in a namespace,
// the ring buffer on the event loop, and the IP_TRANSPARENT listener.
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

let pinRoot: string;
let netns: string;

beforeAll(() => {
  ensureBpffs();
  pinRoot = `/sys/fs/bpf/${uniqueName('wda')}`;
  netns = uniqueName('wda');
  sh('ip', ['netns', 'add', netns]);
  sh('ip', ['-n', netns, 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1']);
});

afterAll(() => {
  shQuiet('ip', ['netns', 'del', netns]);
  Datapath.removePins(pinRoot);
});

describe('ebpf-napi maps', () => {
  it('creates, updates, looks up, iterates and deletes, with typed errno errors', () => {
    const m = BpfMap.create({ type: MapType.hash, name: 'ward_t1', keySize: 4, valueSize: 4, maxEntries: 8 });
    try {
      m.update(u32(1), u32(10));
      m.update(u32(2), u32(20));
      expect(m.lookup(u32(1))!.readUInt32LE(0)).toBe(10);
      expect(m.lookup(u32(3))).toBeUndefined();
      expect([...m.keys()].map((k) => k.readUInt32LE(0)).sort()).toEqual([1, 2]);
      let err: unknown;
      try {
        m.update(u32(1), u32(11), UpdateFlags.noExist);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BpfError);
      expect(err).toMatchObject({ errno: 17, code: 'EEXIST', syscall: 'bpf_map_update_elem' });
      expect((err as Error).message).toMatch(/File exists \(EEXIST\)/);
      expect(m.delete(u32(1))).toBe(true);
      expect(m.delete(u32(1))).toBe(false);
    } finally {
      m.close();
      m.close(); // idempotent
    }
    expect(() => m.lookup(u32(1))).toThrow(/closed/);
  });

  it('batches updates and deletes, and reports a full map with how much was applied', () => {
    const m = BpfMap.create({ type: MapType.hash, name: 'ward_t2', keySize: 4, valueSize: 4, maxEntries: 4 });
    try {
      const keys = Buffer.concat([1, 2, 3, 4, 5, 6].map(u32));
      const vals = Buffer.concat([1, 2, 3, 4, 5, 6].map((n) => u32(n * 100)));
      let err: unknown;
      try {
        m.updateBatch(keys, vals, 6);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MapFullError);
      expect(err).toMatchObject({ code: 'E2BIG', applied: 4 });
      expect([...m.entries()].length).toBe(4);
      // Absent keys in a delete batch are skipped.
      expect(m.deleteBatch(Buffer.concat([1, 9, 2, 8].map(u32)), 4)).toBe(2);
      expect([...m.keys()].map((k) => k.readUInt32LE(0)).sort()).toEqual([3, 4]);
      // Batched read, one entry per syscall to exercise the resume token.
      const all = m.lookupAllBatch(1).map(([k, v]) => [k.readUInt32LE(0), v.readUInt32LE(0)]);
      expect(all.sort()).toEqual([[3, 300], [4, 400]]);
    } finally {
      m.close();
    }
  });

  it('reports a full LPM trie (ENOSPC) as MapFullError', () => {
    const m = BpfMap.create({ type: MapType.lpmTrie, keySize: 8, valueSize: 4, maxEntries: 2, flags: MapFlags.noPrealloc });
    try {
      const key = (p: number): Buffer => Buffer.concat([u32(32), u32(p)]);
      m.update(key(1), u32(1));
      m.update(key(2), u32(2));
      expect(() => m.update(key(3), u32(3))).toThrow(MapFullError);
    } finally {
      m.close();
    }
  });

  it('opens pinned maps and fails on missing pins with ENOENT', () => {
    const m = BpfMap.create({ type: MapType.array, keySize: 4, valueSize: 8, maxEntries: 2 });
    sh('mkdir', ['-p', pinRoot]);
    try {
      m.pin(`${pinRoot}/arr`);
      const again = BpfMap.openPinned(`${pinRoot}/arr`);
      expect(again.info.id).toBe(m.info.id);
      again.close();
    } finally {
      m.close();
    }
    expect(() => BpfMap.openPinned(`${pinRoot}/nope`)).toThrow(expect.objectContaining({ code: 'ENOENT' }) as Error);
  });
});

describe('ebpf-napi tc, ring buffer and sockets', () => {
  it('attaches, atomically replaces, queries and detaches tc programs inside a namespace', () => {
    const dp = Datapath.open({ pinRoot });
    try {
      const nsPath = `/run/netns/${netns}`;
      const ifindex = ebpf().ifNameToIndex('d0', nsPath);
      const obj1 = ebpf().loadObject(endpointObjectPath(), { pinRoot });
      const obj2 = ebpf().loadObject(endpointObjectPath(), { pinRoot });
      const target = { netns: nsPath, ifindex, attachPoint: 'ingress' as const, handle: 7, priority: 3 };
      ebpf().tcAttach(target, obj1.programs.from_endpoint!);
      expect(ebpf().tcQuery(target)).toBe(ebpf().progInfo(obj1.programs.from_endpoint!).id);
      ebpf().tcAttach(target, obj2.programs.from_endpoint!);
      expect(ebpf().tcQuery(target)).toBe(ebpf().progInfo(obj2.programs.from_endpoint!).id);
      expect(ebpf().tcDetach(target)).toBe(true);
      expect(ebpf().tcQuery(target)).toBe(0);
      expect(ebpf().tcDetach(target)).toBe(false);
      for (const o of [obj1, obj2]) for (const fd of [...Object.values(o.programs), ...Object.values(o.maps)]) ebpf().closeFd(fd);
      expect(() => ebpf().ifNameToIndex('nope0', nsPath)).toThrow(/if_nametoindex nope0/);
    } finally {
      dp.close();
    }
  });

  it('delivers ring-buffer events on the event loop without polling', async () => {
    const dp = Datapath.open({ pinRoot });
    try {
      dp.endpoints.put({ ifindex: 1, endpointId: 77, identity: 5000, lockedDown: false });
      const got = new Promise<DatapathEvent>((resolve) => {
        dp.onEvents((evs) => {
          const e = evs.find((x) => x.endpointId === 77);
          if (e) resolve(e);
        });
      });
      dp.policy.open(77);
      expect(dp.testPacket('to-endpoint', frame({ saddr: '10.1.2.3', daddr: '10.1.2.4', protocol: 17, sport: 1234, dport: 53 }))).toBe('drop');
      const e = await got; // arrives through the uv poll handle, no pollEvents() call
      expect(e).toMatchObject({ type: 'drop', endpointId: 77, remoteIdentity: 2, saddr: '10.1.2.3', daddr: '10.1.2.4', sport: 1234, dport: 53, protocol: 17, direction: 'ingress', ifindex: 1 });
    } finally {
      dp.endpoints.delete(1);
      dp.close();
    }
  });

  it('creates an IP_TRANSPARENT listener that Node adopts', async () => {
    const fd = transparentListen({ address: '127.0.0.1', port: 0 });
    const server = net.createServer((s) => s.end('hi'));
    server.listen({ fd });
    await once(server, 'listening');
    const addr = server.address() as net.AddressInfo;
    expect(addr.port).toBeGreaterThan(0);
    const client = net.connect(addr.port, '127.0.0.1');
    const [data] = (await once(client, 'data')) as [Buffer];
    expect(data.toString()).toBe('hi');
    client.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it("connects a proxy upstream from the client's own address and port, or from the host's when that 4-tuple is taken", async () => {
    // In the test's namespace: 10.254.0.0/24 is delivered locally (as the proxy's fwmark route
    // does for answers to its upstreams), so nothing leaves through a real interface.
    const nsPath = `/run/netns/${netns}`;
    sh('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', netns, 'route', 'replace', 'local', '10.254.0.0/24', 'dev', 'lo']);
    const peers: string[] = [];
    const server = net.createServer((s) => {
      peers.push(`${s.remoteAddress}:${s.remotePort}`);
      s.end('hi');
    });
    server.listen({ fd: transparentListen({ address: '127.0.0.1', port: 0, netns: nsPath }) });
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const spec = { mark: 0x400, netns: nsPath, source: { address: '10.254.0.9', port: 40123 }, destination: { address: '127.0.0.1', port } };
    const sockets: net.Socket[] = [];
    try {
      const first = proxyUpstream(spec);
      expect(first.transparent).toBe(true);
      const a = new net.Socket({ fd: first.fd, readable: true, writable: true });
      sockets.push(a);
      const [hi] = (await once(a, 'data')) as [Buffer];
      expect(hi.toString()).toBe('hi');
      // The same 4-tuple again while the first holds it: from the host's address instead.
      const second = proxyUpstream(spec);
      expect(second.transparent).toBe(false);
      const b = new net.Socket({ fd: second.fd, readable: true, writable: true });
      sockets.push(b);
      await once(b, 'data');
      expect(peers[0]).toBe('10.254.0.9:40123');
      expect(peers[1]).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(() => proxyUpstream({ ...spec, destination: { address: 'nope', port } })).toThrow(/destination must be/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 15_000);
});

describe('Datapath.open', () => {
  it('refuses a pin root outside bpffs', () => {
    const dir = `/tmp/${uniqueName('wdx')}`;
    try {
      expect(() => Datapath.open({ pinRoot: dir })).toThrow(BpffsError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
