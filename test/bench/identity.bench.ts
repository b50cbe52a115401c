/**
 * npm run bench:identity — identity allocation against a real 3-member etcd on tmpfs.
 *
 * Per round (3 rounds, medians reported):
 *   raw:   8 workers doing the allocation-shaped guarded txn (2 absent-compares, 3 puts, one
 *          lease-bound) on fresh keys: the etcd ceiling for this concurrency.
 *   alloc: 8 nodes (one IdentityClient each, 1 allocation in flight per node) allocating new
 *          label sets; then every node allocates them again (local refcount, 0 round trips);
 *          then every node references the other nodes' identities (1 round trip each).
 * Last stdout line: one JSON object with the keys the issue names.
 */
import { randomBytes } from 'node:crypto';
import { EtcdCluster } from '../../agent/dev/etcd-cluster.js';
import { IdentityClient, KvClient, silentLogger } from '../../agent/kvstore/index.js';
import { LabelSet } from '../../identity/index.js';

const CONCURRENCY = 8;
const PER_ROUND = Number(process.env['WARD_BENCH_N'] ?? 2000);
const ROUNDS = 3;
const log = silentLogger();

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
};
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};

async function rawRound(endpoints: string[], tag: string): Promise<number> {
  const kv = new KvClient({ endpoints, logger: log });
  const lease = kv.lease(30);
  const leaseId = await lease.grant();
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < PER_ROUND) {
        const i = next++;
        const a = Buffer.from(`bench-raw/${tag}/l/${i}`);
        const b = Buffer.from(`bench-raw/${tag}/i/${i}`);
        const v = randomBytes(40);
        const res = await kv.txn({
          compare: [
            { key: a, target: 'Version', result: 'Equal', version: 0 },
            { key: b, target: 'Version', result: 'Equal', version: 0 },
          ],
          success: [
            { request_put: { key: a, value: v } },
            { request_put: { key: b, value: v } },
            { request_put: { key: Buffer.from(`bench-raw/${tag}/r/${i}`), value: v, lease: leaseId } },
          ],
          failure: [{ request_range: { key: a } }],
        });
        if (!res.succeeded) throw new Error('raw txn unexpectedly failed');
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  await kv.deletePrefix(`bench-raw/${tag}/`);
  lease.release();
  kv.close();
  return PER_ROUND / secs;
}

interface AllocRound {
  newPerS: number;
  latencies: number[];
  rttNew: number;
  rttReused: number;
  rttReferenceOther: number;
  rttContended: number;
}

async function allocRound(endpoints: string[], tag: string): Promise<AllocRound> {
  const root = `bench-${tag}/`;
  const nodes = await Promise.all(Array.from({ length: CONCURRENCY }, (_, n) => IdentityClient.connect({ endpoints, root, node: `node-${n}`, logger: log, leaseTtlSeconds: 30 })));
  const perNode = Math.ceil(PER_ROUND / CONCURRENCY);
  const sets = nodes.map((_, n) => Array.from({ length: perNode }, (_, k) => LabelSet.parse([`app=svc-${n}-${k}`, 'env=bench', `k8s:ns=${tag}`])));
  const latencies: number[] = [];
  let rtt = 0;
  const t0 = performance.now();
  await Promise.all(
    nodes.map(async (c, n) => {
      for (const ls of sets[n]!) {
        const s = performance.now();
        const r = await c.allocate(ls);
        latencies.push(performance.now() - s);
        rtt += r.roundTrips;
        if (!r.isNew) throw new Error('expected a new identity');
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const total = perNode * CONCURRENCY;

  // Reused on the same node: local refcount.
  const callsBefore = nodes.reduce((a, c) => a + c.client.stats.calls, 0);
  let rttReused = 0;
  for (const [n, c] of nodes.entries()) {
    for (const ls of sets[n]!) {
      const r = await c.allocate(ls);
      rttReused += r.roundTrips;
    }
  }
  const callsAfter = nodes.reduce((a, c) => a + c.client.stats.calls, 0);
  if (callsAfter !== callsBefore) throw new Error('reused allocations issued etcd calls');

  // Known in the cluster, new on this node: one reference txn (after the watch delivered it).
  const other = nodes[1]!;
  const probe = sets[0]!.slice(0, 200);
  while (probe.some((ls) => other.lookup(ls) === undefined)) await new Promise((r) => setTimeout(r, 10));
  let rttOther = 0;
  for (const ls of probe) {
    const r = await other.allocate(ls);
    rttOther += r.roundTrips;
  }

  // Contended: all 8 nodes allocate the same 100 new label sets at once (one wins each race,
  // the others reference the winner's number).
  const shared = Array.from({ length: 100 }, (_, k) => LabelSet.parse([`app=shared-${k}`, `k8s:ns=${tag}`]));
  let rttContended = 0;
  await Promise.all(nodes.map(async (c) => {
    for (const ls of shared) {
      const r = await c.allocate(ls);
      rttContended += r.roundTrips;
    }
  }));

  await Promise.all(nodes.map((c) => c.close({ revoke: true })));
  const kv = new KvClient({ endpoints, logger: log });
  await kv.deletePrefix(root);
  kv.close();
  return { newPerS: total / secs, latencies, rttNew: rtt / total, rttReused: rttReused / total, rttReferenceOther: rttOther / probe.length, rttContended: rttContended / (shared.length * nodes.length) };
}

async function main(): Promise<void> {
  const cluster = await EtcdCluster.start({ members: 3 });
  try {
    // Warm-up (connections, JIT).
    await rawRound(cluster.endpoints, 'warm');
    const raws: number[] = [];
    const allocs: AllocRound[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      raws.push(await rawRound(cluster.endpoints, `r${r}`));
      allocs.push(await allocRound(cluster.endpoints, `a${r}`));
    }
    const newPerS = median(allocs.map((a) => a.newPerS));
    const raw = median(raws);
    const lat = allocs.flatMap((a) => a.latencies);
    const result = {
      bench: 'identity',
      members: 3,
      concurrency: CONCURRENCY,
      per_round: PER_ROUND,
      rounds: ROUNDS,
      new_per_s: Math.round(newPerS),
      p50_ms: Number(pct(lat, 0.5).toFixed(2)),
      p99_ms: Number(pct(lat, 0.99).toFixed(2)),
      raw_cas_per_s: Math.round(raw),
      ratio: Number((newPerS / raw).toFixed(3)),
      rtt_per_new: Number(median(allocs.map((a) => a.rttNew)).toFixed(3)),
      rtt_per_reused: Number(median(allocs.map((a) => a.rttReused)).toFixed(3)),
      rtt_per_known_elsewhere: Number(median(allocs.map((a) => a.rttReferenceOther)).toFixed(3)),
      rtt_per_contended: Number(median(allocs.map((a) => a.rttContended)).toFixed(3)),
    };
    const rows: [string, string][] = [
      ['etcd members', '3 (tmpfs, one box)'],
      ['concurrent allocators', String(CONCURRENCY)],
      ['identities per round x rounds', `${PER_ROUND} x ${ROUNDS}`],
      ['raw guarded txn /s (median)', String(result.raw_cas_per_s)],
      ['new identities /s (median)', String(result.new_per_s)],
      ['ratio new / raw', String(result.ratio)],
      ['allocation p50 / p99 ms', `${result.p50_ms} / ${result.p99_ms}`],
      ['round trips per new identity', String(result.rtt_per_new)],
      ['round trips per reused (same node)', String(result.rtt_per_reused)],
      ['round trips per known elsewhere', String(result.rtt_per_known_elsewhere)],
      ['round trips, 8 nodes racing per set', String(result.rtt_per_contended)],
      ['per-round raw /s', raws.map((x) => Math.round(x)).join(', ')],
      ['per-round new /s', allocs.map((a) => Math.round(a.newPerS)).join(', ')],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    console.log(`${'metric'.padEnd(w)}   value`);
    for (const [k, v] of rows) console.log(`${k.padEnd(w)}   ${v}`);
    console.log(JSON.stringify(result));
  } finally {
    await cluster.close();
  }
}

await main();
