import { describe, expect, it } from 'vitest';
import { LabelSet } from '../../identity/index.js';
import { KeySchema, decodeValue } from '../../kvstore-schema/index.js';
import { IdentityClient, IdentityGc, KvClient, LeaseManager, silentLogger } from '../../agent/kvstore/index.js';
import { useEtcdCluster, uniqueRoot } from '../helpers/etcd.js';

const etcd = useEtcdCluster({ members: 3 });
const log = silentLogger();
const GRACE = 60_000;

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A GC with a hand-driven clock: rounds happen only when the test calls scan/sweep. */
function manualGc(root: string, client: KvClient): { gc: IdentityGc; leases: LeaseManager; advance(ms: number): void } {
  let now = 1_000_000;
  const leases = new LeaseManager(client, { ttlSeconds: 10, logger: log });
  const gc = new IdentityGc({ client, schema: new KeySchema(root), leases, node: 'gc', graceMs: GRACE, clock: () => now, logger: log });
  return { gc, leases, advance: (ms) => (now += ms) };
}

async function identityKeys(kv: KvClient, root: string): Promise<{ ids: number[]; index: number }> {
  const s = new KeySchema(root);
  const ids = (await kv.listPrefix(s.ids)).kvs.map((e) => decodeValue('identity', e.value).id).sort();
  return { ids, index: (await kv.listPrefix(s.labels)).kvs.length };
}

describe('identity GC on a 3-member cluster', () => {
  it('GC race: a reference attached between the GC check and its delete wins (both interleavings)', async () => {
    const c = etcd.get();
    const root = uniqueRoot('gcrace');
    const schema = new KeySchema(root);
    const opts = { endpoints: c.endpoints, root, logger: log, leaseTtlSeconds: 10 };
    const a = await IdentityClient.connect({ ...opts, node: 'a' });
    const b = await IdentityClient.connect({ ...opts, node: 'b' });
    const kv = new KvClient({ endpoints: c.endpoints, logger: log });
    const { gc, leases, advance } = manualGc(root, kv);
    try {
      expect(await gc.campaign()).toBe(true);
      const ls = LabelSet.parse(['app=racy', 'k8s:ns=a/b']);
      const { id } = await a.allocate(ls);
      await a.release(ls); // now unreferenced

      // Interleaving 1: GC checks (mark, grace, decide) -> node b references -> GC deletes.
      expect((await gc.scan()).candidates).toHaveLength(0); // marked
      advance(GRACE);
      const plan = await gc.scan();
      expect(plan.candidates.map((x) => x.id)).toEqual([id]);
      await waitFor(() => b.lookup(ls) !== undefined);
      expect(await b.allocate(ls)).toMatchObject({ id, roundTrips: 1 }); // the reference txn
      const sweep = await gc.sweep(plan);
      expect(sweep).toEqual({ deleted: [], skipped: 1 });
      expect(await identityKeys(kv, root)).toEqual({ ids: [id], index: 1 });
      expect((await kv.get(schema.refKey('b', ls.labels))).kv).toBeDefined();
      // The reference reset the mark: the next scans start the grace period again.
      expect((await gc.scan()).candidates).toHaveLength(0);

      // Interleaving 2: GC deletes -> node b (whose cache still knows the identity) references.
      await b.release(ls);
      await gc.scan();
      advance(GRACE);
      const plan2 = await gc.scan();
      expect(await gc.sweep(plan2)).toEqual({ deleted: [id], skipped: 0 });
      expect(await identityKeys(kv, root)).toEqual({ ids: [], index: 0 });
      const again = await b.allocate(ls); // reference txn fails its guard, then creates anew
      expect(again.isNew).toBe(true);
      expect(again.roundTrips).toBeGreaterThanOrEqual(1);
      const after = await identityKeys(kv, root);
      expect(after).toEqual({ ids: [again.id], index: 1 });
      const ref = (await kv.get(schema.refKey('b', ls.labels))).kv;
      expect(decodeValue('identity-ref', ref!.value).id).toBe(again.id);
    } finally {
      await gc.close();
      await leases.close();
      await a.close();
      await b.close();
      kv.close();
    }
  });

  it('a dead node: its references expire with its lease, then GC collects its identities', async () => {
    const c = etcd.get();
    const root = uniqueRoot('gcdead');
    const schema = new KeySchema(root);
    const dead = await IdentityClient.connect({ endpoints: c.endpoints, root, logger: log, node: 'dead', leaseTtlSeconds: 2 });
    const alive = await IdentityClient.connect({ endpoints: c.endpoints, root, logger: log, node: 'alive', leaseTtlSeconds: 10 });
    const kv = new KvClient({ endpoints: c.endpoints, logger: log });
    const { gc, leases, advance } = manualGc(root, kv);
    try {
      const only = await dead.allocate(LabelSet.parse(['app=only-dead']));
      const shared = await dead.allocate(LabelSet.parse(['app=shared']));
      await alive.allocate(LabelSet.parse(['app=shared']));
      expect(await gc.campaign()).toBe(true);
      expect((await gc.scan()).referenced).toBe(2);

      await dead.close(); // stops keepalives without revoking: the node just vanishes
      await waitFor(async () => (await kv.listPrefix(schema.refsNodePrefix('dead'))).kvs.length === 0, 15_000);

      expect((await gc.scan()).candidates).toHaveLength(0); // marked, grace starts
      advance(GRACE - 1);
      expect((await gc.scan()).candidates).toHaveLength(0); // still in grace
      advance(1);
      expect(await gc.runRound()).toEqual({ deleted: [only.id], skipped: 0 });
      expect(await identityKeys(kv, root)).toEqual({ ids: [shared.id], index: 1 });
      await waitFor(() => alive.get(only.id) === undefined); // watchers see the delete
    } finally {
      await gc.close();
      await leases.close();
      await dead.close();
      await alive.close();
      kv.close();
    }
  });

  it('the GC loop: one leader among GC-enabled nodes collects released identities', async () => {
    const c = etcd.get();
    const root = uniqueRoot('gcloop');
    const opts = { endpoints: c.endpoints, root, logger: log, gc: { graceMs: 0, intervalMs: 100 } };
    const a = await IdentityClient.connect({ ...opts, node: 'a' });
    const b = await IdentityClient.connect({ ...opts, node: 'b' });
    const kv = new KvClient({ endpoints: c.endpoints, logger: log });
    try {
      const keep = await a.allocate(LabelSet.parse(['app=keep']));
      const gone = LabelSet.parse(['app=gone']);
      const { id } = await b.allocate(gone);
      await b.release(gone);
      await waitFor(async () => (await identityKeys(kv, root)).ids.length === 1, 20_000);
      expect(await identityKeys(kv, root)).toEqual({ ids: [keep.id], index: 1 });
      await waitFor(() => a.get(id) === undefined && b.get(id) === undefined);
      expect([a.gc!.isLeader, b.gc!.isLeader].filter(Boolean)).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
      kv.close();
    }
  });

  it('rate limit, orphan ids, and one leader at a time', async () => {
    const c = etcd.get();
    const root = uniqueRoot('gcrate');
    const schema = new KeySchema(root);
    const a = await IdentityClient.connect({ endpoints: c.endpoints, root, logger: log, node: 'a' });
    const kv = new KvClient({ endpoints: c.endpoints, logger: log });
    const g1 = manualGc(root, kv);
    const g2 = manualGc(root, kv);
    try {
      expect(await g1.gc.campaign()).toBe(true);
      expect(await g2.gc.campaign()).toBe(false);
      for (let i = 0; i < 5; i++) {
        const ls = LabelSet.parse([`n=${i}`]);
        await a.allocate(ls);
        await a.release(ls);
      }
      // An id key without an index (e.g. written by hand): unreachable, collected too.
      const orphan = { v: 1 as const, id: 999, labels: [{ source: 'unspec', key: 'o', value: '' }], node: 'x', token: 't' };
      const { encodeValue } = await import('../../kvstore-schema/index.js');
      await kv.put(schema.idKey(999), encodeValue('identity', orphan));
      const limited = new IdentityGc({ client: kv, schema, leases: g1.leases, node: 'gc', graceMs: 0, maxDeletesPerRound: 2, logger: log });
      await limited.scan(); // marks
      expect((await limited.runRound()).deleted).toHaveLength(2);
      expect((await limited.runRound()).deleted).toHaveLength(2);
      expect((await limited.runRound()).deleted).toHaveLength(2);
      expect(await identityKeys(kv, root)).toEqual({ ids: [], index: 0 });
      await g1.gc.close(); // resigns
      expect(await g2.gc.campaign()).toBe(true);
    } finally {
      await g1.gc.close();
      await g2.gc.close();
      await g1.leases.close();
      await g2.leases.close();
      await a.close();
      kv.close();
    }
  });
});
