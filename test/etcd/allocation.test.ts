import { describe, expect, it } from 'vitest';
import { IdentityRangeExhaustedError, LabelSet } from '../../identity/index.js';
import { decodeValue, encodeValue, KeySchema } from '../../kvstore-schema/index.js';
import { IdentityClient, KvClient, KvUnavailableError, silentLogger } from '../../agent/kvstore/index.js';
import { useEtcdCluster, uniqueRoot } from '../helpers/etcd.js';

const etcd = useEtcdCluster({ members: 3 });
const log = silentLogger();

async function nodes(root: string, n: number, extra: Partial<Parameters<typeof IdentityClient.connect>[0]> = {}): Promise<IdentityClient[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      IdentityClient.connect({ endpoints: etcd.get().endpoints, node: `node-${i}`, root, logger: log, leaseTtlSeconds: 5, ...extra }),
    ),
  );
}

/** Allocates, retrying while etcd is failing over (the caller's retry policy). */
async function allocateRetrying(c: IdentityClient, labels: LabelSet): Promise<number> {
  const end = Date.now() + 30_000; // a failover on a loaded 2-core box can take a while
  for (;;) {
    try {
      return (await c.allocate(labels)).id;
    } catch (err) {
      if (!(err instanceof KvUnavailableError) || Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Reads etcd directly and checks the identity invariants; returns canonical -> id. */
async function checkConsistent(root: string): Promise<Map<string, number>> {
  const schema = new KeySchema(root);
  const kv = new KvClient({ endpoints: etcd.get().endpoints, logger: log });
  try {
    const ids = await kv.listPrefix(schema.ids);
    const index = await kv.listPrefix(schema.labels);
    const byLabels = new Map<string, number>();
    for (const e of index.kvs) {
      const labels = LabelSet.of(schema.parseLabelsKey(e.key.toString()));
      byLabels.set(labels.canonical, decodeValue('identity-index', e.value).id);
    }
    const seen = new Set<number>();
    for (const e of ids.kvs) {
      const v = decodeValue('identity', e.value);
      expect(seen.has(v.id)).toBe(false);
      seen.add(v.id);
      expect(byLabels.get(LabelSet.of(v.labels).canonical)).toBe(v.id);
    }
    expect(seen.size).toBe(byLabels.size); // one id per label set and back
    return byLabels;
  } finally {
    kv.close();
  }
}

async function refsOf(root: string, node: string): Promise<Map<string, number>> {
  const schema = new KeySchema(root);
  const kv = new KvClient({ endpoints: etcd.get().endpoints, logger: log });
  try {
    const refs = await kv.listPrefix(schema.refsNodePrefix(node));
    return new Map(refs.kvs.map((e) => [LabelSet.of(schema.parseRefKey(e.key.toString()).labels).canonical, decodeValue('identity-ref', e.value).id]));
  } finally {
    kv.close();
  }
}

const labelSets = Array.from({ length: 24 }, (_, i) => LabelSet.parse([`app=svc-${i % 12}`, `env=${i < 12 ? 'prod' : 'dev'}`, 'k8s:path=a/b=c;d']));

describe('identity allocation on a 3-member cluster', () => {
  it('8 nodes over overlapping label sets agree on one identity per label set', async () => {
    const root = uniqueRoot('alloc8');
    const clients = await nodes(root, 8);
    try {
      // Each node allocates an overlapping window of 12 of the 24 label sets, concurrently.
      const results = await Promise.all(
        clients.map((c, n) => Promise.all(Array.from({ length: 12 }, (_, k) => labelSets[(n * 3 + k) % 24]!).map(async (ls) => [ls.canonical, (await c.allocate(ls)).id] as const))),
      );
      const agreed = new Map<string, number>();
      for (const r of results)
        for (const [canonical, id] of r) {
          if (agreed.has(canonical)) expect(agreed.get(canonical)).toBe(id);
          agreed.set(canonical, id);
        }
      expect(new Set(agreed.values()).size).toBe(agreed.size); // different sets never share
      const inEtcd = await checkConsistent(root);
      expect(inEtcd).toEqual(agreed);
      for (let n = 0; n < 8; n++) {
        const refs = await refsOf(root, `node-${n}`);
        expect(refs).toEqual(new Map(results[n]));
      }
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it('a second user of a label set costs no round trip; release drops only this node', async () => {
    const root = uniqueRoot('refcount');
    const [a, b] = await nodes(root, 2);
    try {
      const ls = LabelSet.parse(['app=db']);
      const first = await a!.allocate(ls);
      expect(first).toMatchObject({ isNew: true, roundTrips: 1 });
      const before = a!.client.stats.calls;
      const second = await a!.allocate(ls);
      expect(second).toEqual({ id: first.id, isNew: false, roundTrips: 0 });
      expect(a!.client.stats.calls).toBe(before);
      // b learns of the identity through its watch, then needs exactly one txn.
      await waitFor(() => b!.lookup(ls) !== undefined);
      expect(await b!.allocate(ls)).toEqual({ id: first.id, isNew: false, roundTrips: 1 });

      expect(await a!.release(ls)).toBe(false); // still one local user
      expect((await refsOf(root, 'node-0')).size).toBe(1);
      expect(await a!.release(ls)).toBe(true);
      expect((await refsOf(root, 'node-0')).size).toBe(0);
      expect((await refsOf(root, 'node-1')).size).toBe(1);
    } finally {
      await a!.close();
      await b!.close();
    }
  });

  it('reconcile drops references this node does not hold (e.g. a write applied after its timeout)', async () => {
    const root = uniqueRoot('reconcile');
    const schema = new KeySchema(root);
    const [a] = await nodes(root, 1);
    const kv = new KvClient({ endpoints: etcd.get().endpoints, logger: log });
    try {
      const held = LabelSet.parse(['app=held']);
      const { id } = await a!.allocate(held);
      const stale = LabelSet.parse(['app=stale']);
      await kv.put(schema.refKey('node-0', stale.labels), encodeValue('identity-ref', { v: 1, id, token: 'late' }));
      expect(await a!.reconcile()).toBe(1);
      expect([...(await refsOf(root, 'node-0')).keys()]).toEqual([held.canonical]);
    } finally {
      await a!.close();
      kv.close();
    }
  });

  it('an exhausted range is a clear error, not a hang', async () => {
    const root = uniqueRoot('exhaust');
    const [a] = await nodes(root, 1, { range: { min: 300, max: 302 } });
    try {
      for (let i = 0; i < 3; i++) await a!.allocate(LabelSet.parse([`x=${i}`]));
      await expect(a!.allocate(LabelSet.parse(['x=overflow']))).rejects.toBeInstanceOf(IdentityRangeExhaustedError);
    } finally {
      await a!.close();
    }
  });

  it('member kill during allocation: no duplicates, no lost reference', async () => {
    const root = uniqueRoot('kill');
    const clients = await nodes(root, 4, { attemptTimeoutMs: 400, callTimeoutMs: 1500 });
    try {
      const leader = (await etcd.get().leader()) ?? 0;
      const work = clients.map((c) => Promise.all(labelSets.map((ls) => allocateRetrying(c, ls))));
      await etcd.get().kill(leader); // while the first transactions are in flight
      const results = await Promise.all(work);
      await etcd.get().restart(leader);
      for (const r of results) expect(r).toEqual(results[0]);
      const inEtcd = await checkConsistent(root);
      expect(inEtcd.size).toBe(labelSets.length);
      for (let n = 0; n < clients.length; n++) expect((await refsOf(root, `node-${n}`)).size).toBe(labelSets.length);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
