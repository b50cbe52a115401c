// Datapath benchmark: policy-map update rates from Node (singly and batched) against the same
// operations from a C loop calling libbpf (the floor, built and run in this same process tree),
// and the time from a policy-map change to the first real packet that sees it.
// Run as root: npm run bench:datapath. Last stdout line: one JSON object.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { BpfMap, Datapath, MapFlags, MapType, POLICY_FULL_PREFIX, POLICY_KEY_SIZE, POLICY_VALUE_SIZE, repoRoot } from '../../bpf/index.js';
import type { PolicyEntry, PolicyKey } from '../../bpf/index.js';
import { writeU16Host, writeU32Host, htons } from '../../bpf/byteorder.js';
import { ensureBpffs } from '../datapath/helpers/sh.js';
import { Topology, uniqueName } from '../datapath/helpers/topology.js';

const ENTRIES = 100_000;
const BATCH = 1000;
const ROUNDS = 7;
const LATENCY_SAMPLES = 15;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
};

/** Same keys as bpf/bench/floor.c: identity 256 + i/64, ingress, TCP, port 1000 + i%64, exact. */
function buildKeys(): { keys: Buffer; values: Buffer; single: [Buffer, Buffer][] } {
  const keys = Buffer.alloc(ENTRIES * POLICY_KEY_SIZE);
  const values = Buffer.alloc(ENTRIES * POLICY_VALUE_SIZE);
  const single: [Buffer, Buffer][] = [];
  for (let i = 0; i < ENTRIES; i++) {
    const ko = i * POLICY_KEY_SIZE;
    writeU32Host(keys, POLICY_FULL_PREFIX, ko);
    writeU32Host(keys, 256 + Math.floor(i / 64), ko + 4);
    keys.writeUInt8(0, ko + 8);
    keys.writeUInt8(6, ko + 9);
    writeU16Host(keys, htons(1000 + (i % 64)), ko + 10);
    values.writeUInt8(24, i * POLICY_VALUE_SIZE + 3);
    single.push([keys.subarray(ko, ko + POLICY_KEY_SIZE), values.subarray(i * POLICY_VALUE_SIZE, (i + 1) * POLICY_VALUE_SIZE)]);
  }
  return { keys, values, single };
}

function freshMap(): BpfMap {
  return BpfMap.create({ type: MapType.lpmTrie, name: 'ward_bench', keySize: POLICY_KEY_SIZE, valueSize: POLICY_VALUE_SIZE, maxEntries: ENTRIES, flags: MapFlags.noPrealloc });
}

function nodeRound(data: ReturnType<typeof buildKeys>): { single: number; batch: number } {
  let m = freshMap();
  let t0 = process.hrtime.bigint();
  for (const [k, v] of data.single) m.update(k, v);
  const single = ENTRIES / (Number(process.hrtime.bigint() - t0) / 1e9);
  m.close();
  // The C floor batches into the map its single pass filled; do the same.
  m = freshMap();
  for (const [k, v] of data.single) m.update(k, v);
  t0 = process.hrtime.bigint();
  for (let i = 0; i < ENTRIES; i += BATCH) {
    const n = Math.min(BATCH, ENTRIES - i);
    m.updateBatch(data.keys.subarray(i * POLICY_KEY_SIZE, (i + n) * POLICY_KEY_SIZE), data.values.subarray(i * POLICY_VALUE_SIZE, (i + n) * POLICY_VALUE_SIZE), n);
  }
  const batch = ENTRIES / (Number(process.hrtime.bigint() - t0) / 1e9);
  m.close();
  return { single, batch };
}

function cRound(floor: string): { single: number; batch: number } {
  const out = execFileSync(floor, [String(ENTRIES), String(BATCH), '1'], { encoding: 'utf8' });
  const j = JSON.parse(out.trim()) as { c_single_per_s: number; c_batch_per_s: number };
  return { single: j.c_single_per_s, batch: j.c_batch_per_s };
}

/** The manager path: 1000-entry incremental changes through the reconciler (encoding included). */
function managerRate(dp: Datapath): number {
  const m = dp.policy.open(4242);
  const allow: PolicyEntry = { deny: false, proxyPort: 0 };
  const rates: number[] = [];
  for (let r = 0; r < 5; r++) {
    const ups: [PolicyKey, PolicyEntry][] = [];
    for (let i = 0; i < 10_000; i++) ups.push([{ identity: 256 + r * 10_000 + i, direction: 0, protocol: 6, port: 80, portPrefixLen: 16 }, allow]);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ups.length; i += BATCH) m.applyChanges({ upserts: ups.slice(i, i + BATCH) });
    rates.push(ups.length / (Number(process.hrtime.bigint() - t0) / 1e9));
    m.setDesired([]);
  }
  dp.policy.remove(4242);
  return median(rates);
}

/** A line-oriented child in a netns. */
function child(netns: string, script: string): { proc: ChildProcessWithoutNullStreams; lines: AsyncIterator<string> } {
  const proc = spawn('nsenter', [`--net=/run/netns/${netns}`, process.execPath, '-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  proc.stderr.resume();
  return { proc, lines: createInterface({ input: proc.stdout })[Symbol.asyncIterator]() };
}

const RECEIVER = `
const d = require('node:dgram').createSocket('udp4');
let armed = false;
d.on('message', () => { if (armed) { armed = false; process.stdout.write(process.hrtime.bigint() + '\\n'); } });
d.bind(9999, () => process.stdout.write('ready\\n'));
require('node:readline').createInterface({ input: process.stdin }).on('line', () => { armed = true; process.stdout.write('armed\\n'); });
`;
const SENDER = (ip: string): string => `
const s = require('node:dgram').createSocket('udp4');
const m = Buffer.from('x');
const tick = () => { for (let i = 0; i < 8; i++) s.send(m, 9999, '${ip}'); setImmediate(tick); };
s.bind(0, () => { process.stdout.write('ready\\n'); tick(); });
`;

async function changeToPacket(): Promise<number[]> {
  const topo = Topology.create('wdb', 2);
  const pinRoot = `/sys/fs/bpf/${uniqueName('wdb')}`;
  const procs: ChildProcessWithoutNullStreams[] = [];
  const dp = Datapath.open({ pinRoot });
  try {
    const [a, b] = topo.endpoints as [(typeof topo.endpoints)[0], (typeof topo.endpoints)[0]];
    dp.ipcache.setDesired([
      { cidr: a.ip, identity: 1001 },
      { cidr: b.ip, identity: 1002 },
    ]);
    dp.attachEndpoint({ endpointId: 1, identity: 1001, ifname: a.hostIf, netns: topo.hostPath });
    dp.attachEndpoint({ endpointId: 2, identity: 1002, ifname: b.hostIf, netns: topo.hostPath });
    dp.policy.get(1)!.setDesired([[{ identity: 0, direction: 1, protocol: 0, port: 0, portPrefixLen: 0 }, { deny: false, proxyPort: 0 }]]);
    const polB = dp.policy.get(2)!;
    const allowKey: PolicyKey = { identity: 1001, direction: 0, protocol: 17, port: 9999, portPrefixLen: 16 };
    const rx = child(b.netns, RECEIVER);
    procs.push(rx.proc);
    await rx.lines.next();
    const tx = child(a.netns, SENDER(b.ip));
    procs.push(tx.proc);
    await tx.lines.next();
    const samples: number[] = [];
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      polB.setDesired([]);
      dp.flushConntrack({ endpointId: 2 });
      await new Promise((r) => setTimeout(r, 30)); // packets allowed before the deny are delivered by now
      rx.proc.stdin.write('arm\n');
      await rx.lines.next(); // "armed"
      const t0 = process.hrtime.bigint();
      polB.applyChanges({ upserts: [[allowKey, { deny: false, proxyPort: 0 }]] });
      const arrival = BigInt((await rx.lines.next()).value as string);
      samples.push(Number(arrival - t0) / 1e6);
    }
    return samples;
  } finally {
    for (const p of procs) if (p.pid !== undefined) process.kill(p.pid, 'SIGKILL');
    dp.close();
    topo.destroy();
    Datapath.removePins(pinRoot);
  }
}

async function main(): Promise<void> {
  ensureBpffs();
  const dir = mkdtempSync(join(tmpdir(), 'ward-bench-'));
  const floor = join(dir, 'bench-floor');
  try {
    execFileSync('clang', ['-O2', '-o', floor, join(repoRoot(), 'bpf/bench/floor.c'), '-lbpf', '-lelf', '-lz']);
    const data = buildKeys();
    nodeRound(data); // warm-up (JIT, allocator)
    cRound(floor);
    const node = { single: [] as number[], batch: [] as number[] };
    const c = { single: [] as number[], batch: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      // Interleaved so machine noise hits both sides alike.
      const cr = cRound(floor);
      c.single.push(cr.single);
      c.batch.push(cr.batch);
      const nr = nodeRound(data);
      node.single.push(nr.single);
      node.batch.push(nr.batch);
    }
    const pinRoot = `/sys/fs/bpf/${uniqueName('wdbm')}`;
    const dp = Datapath.open({ pinRoot, policyMapMaxEntries: 65536 });
    let manager: number;
    try {
      manager = managerRate(dp);
    } finally {
      dp.close();
      Datapath.removePins(pinRoot);
    }
    const latency = await changeToPacket();

    const r = {
      single: median(node.single),
      batch: median(node.batch),
      cSingle: median(c.single),
      cBatch: median(c.batch),
    };
    const rows: [string, string][] = [
      ['map', `LPM trie, ${ENTRIES} policy keys, batch ${BATCH}, ${ROUNDS} interleaved rounds (medians)`],
      ['node single updates/s', r.single.toFixed(0)],
      ['C    single updates/s', r.cSingle.toFixed(0)],
      ['single ratio', (r.single / r.cSingle).toFixed(3)],
      ['node batched updates/s', r.batch.toFixed(0)],
      ['C    batched updates/s', r.cBatch.toFixed(0)],
      ['batch ratio', (r.batch / r.cBatch).toFixed(3)],
      ['manager applyChanges entries/s', manager.toFixed(0)],
      ['change->first packet ms p50', median(latency).toFixed(3)],
      ['change->first packet ms p90', pct(latency, 0.9).toFixed(3)],
    ];
    const w = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
    console.log(
      JSON.stringify({
        bench: 'datapath',
        single_per_s: Math.round(r.single),
        batch_per_s: Math.round(r.batch),
        c_single_per_s: Math.round(r.cSingle),
        c_batch_per_s: Math.round(r.cBatch),
        single_ratio: Number((r.single / r.cSingle).toFixed(3)),
        batch_ratio: Number((r.batch / r.cBatch).toFixed(3)),
        change_to_packet_ms: Number(median(latency).toFixed(3)),
        change_to_packet_p90_ms: Number(pct(latency, 0.9).toFixed(3)),
        manager_apply_per_s: Math.round(manager),
        entries: ENTRIES,
        batch_size: BATCH,
        rounds: ROUNDS,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
