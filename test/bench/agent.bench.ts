// Agent benchmark (issue 5): a 2-host dev cluster (two host netns, one `ward agent` process
// each) on 3 etcd members. Measures, in one run: bare etcd put-to-watch-event latency (the
// floor); endpoint published in etcd on host A -> IP in host B's kernel ipcache with the right
// identity; `ward policy import` returned -> every host's policy maps hold the new entry;
// `ward endpoint add` -> first allowed TCP connection from the other host; and one agent's
// heap/RSS growth per remote endpoint after 100,000 endpoints (10,000 identities) appear.
// Kernel maps are polled in-process through the addon (not bpftool).
// Run as root: npm run bench:agent. Last stdout line: one JSON object.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EndpointJson, StatusJson } from '../../agent/api/index.js';
import { EtcdCluster } from '../../agent/dev/etcd-cluster.js';
import { KvClient, op, silentLogger, WatchStore } from '../../agent/kvstore/index.js';
import { encodeValue, KeySchema, type EndpointValue, type IdentityValue } from '../../kvstore-schema/index.js';
import { BpfMap, Direction, encodeIpcacheKeyRaw, encodePolicyKey, IPCACHE_KEY_SIZE, ipcacheKeyFromCidr, Protocol, type PolicyKey } from '../../bpf/index.js';
import { Probe } from '../datapath/helpers/probe.js';
import { AgentProcess } from '../e2e/helpers/agent-process.js';
import { eventually } from '../e2e/helpers/eventually.js';
import { TestHost } from '../e2e/helpers/host.js';

const EVENTS = Number(process.env['WARD_BENCH_EVENTS'] ?? 50);
const ADD_SAMPLES = Number(process.env['WARD_BENCH_ADDS'] ?? 20);
const REMOTE_ENDPOINTS = Number(process.env['WARD_BENCH_REMOTE'] ?? 100_000);
const REMOTE_IDENTITIES = Math.max(1, Math.round(REMOTE_ENDPOINTS / 10));
const TXN_OPS = 1000;
const SETTLE_MS = Number(process.env['WARD_BENCH_SETTLE_MS'] ?? 1000);

const sorted = (xs: readonly number[]): number[] => [...xs].sort((a, b) => a - b);
const pct = (xs: readonly number[], p: number): number => {
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.ceil(s.length * p) - 1)]!;
};
const r2 = (x: number): number => Math.round(x * 100) / 100;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` (cheap, synchronous) every ~0.2 ms until true; returns the elapsed ms since `t0`. */
async function until(check: () => boolean, t0: number, timeoutMs = 30_000): Promise<number> {
  for (;;) {
    if (check()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise<void>((r) => setImmediate(r));
  }
}

function ipcacheIdentity(map: BpfMap, ip: string): number | undefined {
  const key = Buffer.alloc(IPCACHE_KEY_SIZE);
  encodeIpcacheKeyRaw(ipcacheKeyFromCidr(`${ip}/32`)!, key, 0);
  const v = map.lookup(key);
  return v === undefined ? undefined : v.readUInt32LE(0);
}

/** Exact (protocol + whole port) entry present in an endpoint's pinned policy map (an LPM trie). */
function policyHas(map: BpfMap, k: PolicyKey): boolean {
  const v = map.lookup(encodePolicyKey(k));
  return v !== undefined && v.readUInt8(3) === 24; // l4 prefix: protocol (8) + whole port (16)
}

function vmRss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** Restarts a host's agent at log level warn (the e2e helper starts it at debug). */
async function startQuiet(h: TestHost): Promise<void> {
  h.agent = AgentProcess.start(['--config', join(h.dir, 'agent.yaml'), `--host-netns=/run/netns/${h.hostNs}`, '--log-level=warn'], h.logFile);
  if (!(await eventually(async () => (await h.status())?.inSync === true, 30_000, 100))) throw new Error(`agent did not come up; see ${h.logFile}`);
}

async function main(): Promise<void> {
  const etcd = await EtcdCluster.start({ members: 3, extraArgs: ['--max-txn-ops', String(TXN_OPS)], quotaBackendBytes: 2 * 1024 ** 3 });
  const root = `bench-${process.pid.toString(36)}/`;
  const a = new TestHost(etcd, { index: 7, root, nodeIp: '10.96.0.1' });
  const b = new TestHost(etcd, { index: 8, root, nodeIp: '10.96.0.2' });
  const kv = new KvClient({ endpoints: etcd.endpoints, logger: silentLogger(), attemptTimeoutMs: 5000, callTimeoutMs: 20_000 });
  const schema = new KeySchema(root);
  const probes: Probe[] = [];
  const maps: BpfMap[] = [];
  const rows: [string, string, string, string][] = [];
  try {
    a.setup();
    b.setup();
    TestHost.link(a, b);
    await Promise.all([startQuiet(a), startQuiet(b)]);
    const add = async (h: TestHost, name: string, labels: string, netns: string): Promise<EndpointJson> =>
      JSON.parse(await h.wardOk(['endpoint', 'add', '--name', name, '--labels', labels, '--netns', netns, '-o', 'json'])) as EndpointJson;
    const web = await add(a, 'web', 'app=web', a.addNetns('w'));
    const dbA = await add(a, 'dba', 'app=db', a.addNetns('da'));
    const dbB = await add(b, 'dbb', 'app=db', b.addNetns('db'));
    const nsClient = b.addNetns('c');
    const client = await add(b, 'client', 'app=client', nsClient);

    // --- floor: bare etcd put -> watch event in this process (same cluster, same run)
    const floorPrefix = `${root}floor/`;
    const arrived = new Map<string, number>();
    const store = new WatchStore<string>(kv, { prefix: floorPrefix, logger: silentLogger(), decode: (_k, x) => x.value.toString() });
    store.subscribe((batch) => {
      const now = performance.now();
      for (const e of batch.events) arrived.set(e.key, now);
    });
    store.start();
    await store.waitInSync();
    // --- ipcache: endpoint key written (as host A's agent would) -> host B's kernel ipcache.
    // Floor and ipcache samples alternate, so both see the same cluster conditions.
    const ipcacheB = BpfMap.openPinned(join(b.bpfRoot, 'ward_ipcache'));
    maps.push(ipcacheB);
    const floor: number[] = [];
    const ipc: number[] = [];
    for (let i = -1; i < EVENTS; i++) {
      // i = -1 warms up (first put on a fresh stream, first ipcache write): not recorded.
      const key = `${floorPrefix}${i}`;
      const tf = performance.now();
      await kv.put(key, Buffer.from('x'));
      await until(() => arrived.has(key), tf);
      const f = arrived.get(key)! - tf;
      const ip = `10.208.0.${100 + i}`;
      const v: EndpointValue = { v: 1, ip, identity: web.identity, node: a.node, name: `pub${i}` };
      const t0 = performance.now();
      await kv.put(schema.endpointKey(a.node, ip), encodeValue('endpoint', v));
      const d = await until(() => ipcacheIdentity(ipcacheB, ip) === web.identity, t0);
      if (i >= 0) {
        floor.push(f);
        ipc.push(d);
      }
    }
    await store.close();
    for (let i = -1; i < EVENTS; i++) await kv.delete(schema.endpointKey(a.node, `10.208.0.${100 + i}`));

    // --- policy: `ward policy import` returns -> both hosts' db policy maps hold the entry
    const polA = BpfMap.openPinned(join(a.bpfRoot, 'policy', `ep_${dbA.id}`));
    const polB = BpfMap.openPinned(join(b.bpfRoot, 'policy', `ep_${dbB.id}`));
    maps.push(polA, polB);
    const policyFile = (i: number): string => {
      const f = join(a.dir, `bench-policy-${i}.yaml`);
      writeFileSync(
        f,
        `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: bench-${i}\nspec:\n  endpointSelector:\n    matchLabels:\n      app: db\n  ingress:\n    - fromEndpoints:\n        - matchLabels:\n            app: web\n      toPorts:\n        - ports:\n            - port: "${20000 + i}"\n              protocol: TCP\n`,
      );
      return f;
    };
    await a.wardOk(['policy', 'import', policyFile(999)]); // warm-up: db becomes enforced
    const warmKey: PolicyKey = { identity: web.identity, direction: Direction.ingress, protocol: Protocol.tcp, port: 20999, portPrefixLen: 16 };
    await until(() => policyHas(polA, warmKey) && policyHas(polB, warmKey), performance.now());
    const pol: number[] = [];
    const polFromCall: number[] = []; // from the CLI call's start (import itself included)
    for (let i = 0; i < EVENTS; i++) {
      const f = policyFile(i);
      const k: PolicyKey = { identity: web.identity, direction: Direction.ingress, protocol: Protocol.tcp, port: 20000 + i, portPrefixLen: 16 };
      const tCall = performance.now();
      await a.wardOk(['policy', 'import', f]);
      const t0 = performance.now();
      pol.push(await until(() => policyHas(polA, k) && policyHas(polB, k), t0));
      polFromCall.push(performance.now() - tCall);
    }

    // --- `ward endpoint add` on A -> first allowed TCP connection from B's client
    const pClient = await Probe.start(nsClient);
    probes.push(pClient);
    const addToPacket: number[] = [];
    for (let i = 0; i < ADD_SAMPLES; i++) {
      const ns = a.addNetns(`n${i}`);
      const p = await Probe.start(ns);
      probes.push(p);
      await p.listenTcp(8080);
      const t0 = performance.now();
      const ep = await add(a, `new${i}`, `app=new${i % 4}`, ns);
      while (!(await pClient.tcp(ep.ip, 8080, 50))) {
        if (performance.now() - t0 > 20_000) throw new Error(`no connection to ${ep.ip} within 20 s`);
      }
      addToPacket.push(performance.now() - t0);
      p.stop();
      await a.wardOk(['endpoint', 'delete', `new${i}`]);
    }
    // Bench identities: a block of numbers no real endpoint got (allocation picks at random).
    const listed = JSON.parse(await a.wardOk(['identity', 'list', '-o', 'json'])) as { id: number }[];
    const used = [web, dbA, dbB, client].map((e) => e.identity).concat(listed.map((x) => x.id));
    let base = 20_000;
    while (used.some((u) => u >= base && u < base + REMOTE_IDENTITIES)) base += REMOTE_IDENTITIES;

    // --- memory of host B's agent: 100,000 remote endpoints with 10,000 identities
    const pid = b.agent!.pid!;
    const before = await settledMemory(b, pid);
    const ops: ReturnType<typeof op.put>[] = [];
    const flush = async (): Promise<void> => {
      if (ops.length > 0) await kv.txn({ compare: [], success: ops.splice(0), failure: [] }, 'bench-load');
    };
    const tLoad = performance.now();
    for (let id = 0; id < REMOTE_IDENTITIES; id++) {
      const n = base + id;
      const v: IdentityValue = { v: 1, id: n, labels: [{ source: 'k8s', key: 'bench', value: String(n) }], node: 'bench-remote', token: `t${n}` };
      ops.push(op.put(schema.idKey(n), encodeValue('identity', v)));
      if (ops.length >= TXN_OPS) await flush();
    }
    await flush();
    for (let i = 0; i < REMOTE_ENDPOINTS; i++) {
      const ip = `10.${128 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
      const v: EndpointValue = { v: 1, ip, identity: base + (i % REMOTE_IDENTITIES), node: 'bench-remote', name: `r${i}` };
      ops.push(op.put(schema.endpointKey('bench-remote', ip), encodeValue('endpoint', v)));
      if (ops.length >= TXN_OPS) await flush();
    }
    await flush();
    const written = performance.now() - tLoad;
    const want = before.status.ipcacheEntries + REMOTE_ENDPOINTS;
    if (!(await eventually(async () => ((await b.status())?.ipcacheEntries ?? 0) >= want, 120_000, 200))) throw new Error('agent B did not learn every remote endpoint');
    const lastIp = `10.${128 + ((REMOTE_ENDPOINTS - 1) >> 16)}.${((REMOTE_ENDPOINTS - 1) >> 8) & 255}.${(REMOTE_ENDPOINTS - 1) & 255}`;
    await until(() => ipcacheIdentity(ipcacheB, lastIp) !== undefined, performance.now(), 60_000);
    const learned = performance.now() - tLoad;
    const after = await settledMemory(b, pid);
    const rssPer = (after.rss - before.rss) / REMOTE_ENDPOINTS;
    const heapPer = (after.heap - before.heap) / REMOTE_ENDPOINTS;

    rows.push(['etcd put -> watch event (floor)', `${r2(pct(floor, 0.5))}`, `${r2(pct(floor, 0.99))}`, `${EVENTS} puts`]);
    rows.push(['etcd publish -> remote kernel ipcache', `${r2(pct(ipc, 0.5))}`, `${r2(pct(ipc, 0.99))}`, `${EVENTS} endpoints`]);
    rows.push(['policy import returned -> both hosts maps', `${r2(pct(pol, 0.5))}`, `${r2(pct(pol, 0.99))}`, `${EVENTS} policies`]);
    rows.push(['policy import called -> both hosts maps', `${r2(pct(polFromCall, 0.5))}`, `${r2(pct(polFromCall, 0.99))}`, `${EVENTS} policies`]);
    rows.push(['endpoint add -> first allowed TCP (other host)', `${r2(pct(addToPacket, 0.5))}`, `${r2(pct(addToPacket, 0.99))}`, `${ADD_SAMPLES} adds`]);
    const target = 2 * pct(floor, 0.99) + 10;
    console.log(`\nward agent benchmark: 2 hosts (agent processes), 3 etcd members, ${EVENTS} events each\n`);
    console.log(`${'measure'.padEnd(48)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)}  samples`);
    for (const [n, p50, p99, s] of rows) console.log(`${n.padEnd(48)} ${p50.padStart(9)} ${p99.padStart(9)}  ${s}`);
    console.log(`\ntarget p99 propagation <= 2 x floor p99 + 10 ms = ${r2(target)} ms: ipcache ${pct(ipc, 0.99) <= target ? 'met' : 'MISSED'}, policy ${pct(pol, 0.99) <= target ? 'met' : 'MISSED'}`);
    console.log(
      `memory, host B agent, ${REMOTE_ENDPOINTS} remote endpoints / ${REMOTE_IDENTITIES} identities (written in ${r2(written / 1000)} s, in kernel ipcache after ${r2(learned / 1000)} s):`,
    );
    console.log(`  RSS ${r2(before.rss / 2 ** 20)} -> ${r2(after.rss / 2 ** 20)} MiB = ${Math.round(rssPer)} B/endpoint; heap used ${r2(before.heap / 2 ** 20)} -> ${r2(after.heap / 2 ** 20)} MiB = ${Math.round(heapPer)} B/endpoint (target <= 2048)`);
    console.log(
      JSON.stringify({
        bench: 'agent',
        ipcache_p50_ms: r2(pct(ipc, 0.5)),
        ipcache_p99_ms: r2(pct(ipc, 0.99)),
        policy_p50_ms: r2(pct(pol, 0.5)),
        policy_p99_ms: r2(pct(pol, 0.99)),
        floor_p50_ms: r2(pct(floor, 0.5)),
        floor_p99_ms: r2(pct(floor, 0.99)),
        policy_from_call_p99_ms: r2(pct(polFromCall, 0.99)),
        add_to_packet_p50_ms: r2(pct(addToPacket, 0.5)),
        add_to_packet_p99_ms: r2(pct(addToPacket, 0.99)),
        bytes_per_remote_endpoint: Math.round(Math.max(rssPer, heapPer)),
        rss_bytes_per_remote_endpoint: Math.round(rssPer),
        heap_bytes_per_remote_endpoint: Math.round(heapPer),
        remote_endpoints: REMOTE_ENDPOINTS,
        remote_identities: REMOTE_IDENTITIES,
      }),
    );
  } finally {
    for (const p of probes) p.stop();
    for (const m of maps) m.close();
    await a.agent?.stop(5000);
    await b.agent?.stop(5000);
    a.destroy();
    b.destroy();
    kv.close();
    await etcd.close();
  }
}

/** Memory once the agent is idle: status three times SETTLE_MS apart, the smallest heap (GC noise). */
async function settledMemory(h: TestHost, pid: number): Promise<{ rss: number; heap: number; status: StatusJson }> {
  let best: { rss: number; heap: number; status: StatusJson } | undefined;
  for (let i = 0; i < 3; i++) {
    await sleep(SETTLE_MS);
    const s = (await h.status())!;
    const heap = s.memory?.heapUsed ?? 0;
    if (best === undefined || heap < best.heap) best = { rss: vmRss(pid), heap, status: s };
  }
  return best!;
}

await main();
