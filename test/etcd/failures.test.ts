import { describe, expect, it } from 'vitest';
import { LabelSet } from '../../identity/index.js';
import { KeySchema, decodeValue } from '../../kvstore-schema/index.js';
import { IdentityClient, KvClient, KvUnavailableError, silentLogger } from '../../agent/kvstore/index.js';
import { useEtcdCluster, uniqueRoot } from '../helpers/etcd.js';

const etcd = useEtcdCluster({ members: 3 });
const log = silentLogger();

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function timed<T>(p: Promise<T>): Promise<{ ms: number; ok: boolean; err?: unknown }> {
  const t0 = Date.now();
  try {
    await p;
    return { ms: Date.now() - t0, ok: true };
  } catch (err) {
    return { ms: Date.now() - t0, ok: false, err };
  }
}

describe('etcd failures on a 3-member cluster', () => {
  it('a frozen member (SIGSTOP) never hangs a call beyond its deadline', async () => {
    const c = etcd.get();
    const callTimeoutMs = 1000;
    const leader = (await c.leader()) ?? 0;
    const frozen = (leader + 1) % 3; // a follower first: the others keep serving
    const only = new KvClient({ endpoints: [c.endpoints[frozen]!], logger: log, attemptTimeoutMs: 300, callTimeoutMs });
    const all = new KvClient({ endpoints: c.endpoints, logger: log, attemptTimeoutMs: 300, callTimeoutMs });
    const batch = (): Promise<{ ms: number; ok: boolean; err?: unknown }[]> =>
      Promise.all(
        [
          ...Array.from({ length: 5 }, (_, i) => only.put(`frozen/only/${i}`, Buffer.from('x'))),
          only.get('frozen/x'),
          only.listPrefix('frozen/'),
          ...Array.from({ length: 30 }, (_, i) => all.put(`frozen/all/${i}`, Buffer.from('x'))),
          ...Array.from({ length: 10 }, () => all.get('frozen/all/1')),
        ].map((p) => timed(p as Promise<unknown>)),
      );
    try {
      c.stop(frozen);
      const results = await batch();
      for (const r of results) expect(r.ms).toBeLessThan(callTimeoutMs + 400);
      // Calls to the frozen member alone fail with a typed, retryable error.
      for (const r of results.slice(0, 7)) expect(r.err).toBeInstanceOf(KvUnavailableError);
      // With the other members there, calls succeed through retries on them.
      expect(results.slice(7).filter((r) => r.ok).length).toBeGreaterThan(30);
      c.resume(frozen);
      // Now freeze the leader too: calls may fail during the election, but none hangs.
      c.stop(leader);
      for (const r of await batch()) expect(r.ms).toBeLessThan(callTimeoutMs + 400);
    } finally {
      c.resume(frozen);
      c.resume(leader);
      only.close();
      all.close();
    }
  });

  it('quorum loss: writes fail fast with a typed error, and work again when quorum returns', async () => {
    const c = etcd.get();
    const root = uniqueRoot('quorum');
    const opts = { endpoints: c.endpoints, root, logger: log, leaseTtlSeconds: 10, attemptTimeoutMs: 300, callTimeoutMs: 1000 };
    const a = await IdentityClient.connect({ ...opts, node: 'a' });
    const b = await IdentityClient.connect({ ...opts, node: 'b' });
    try {
      const before = await a.allocate(LabelSet.parse(['app=before']));
      await c.kill(0);
      await c.kill(1);
      const r = await timed(a.allocate(LabelSet.parse(['app=during'])));
      expect(r.ok).toBe(false);
      expect(r.err).toBeInstanceOf(KvUnavailableError);
      expect(r.ms).toBeLessThan(2 * 1000 + 500); // create attempt + ambiguous read-back
      await c.restart(0, false);
      await c.restart(1, false);
      await c.waitHealthy();
      let after: number | undefined;
      await waitFor(async () => {
        try {
          after = (await a.allocate(LabelSet.parse(['app=after']))).id;
          return true;
        } catch (err) {
          if (err instanceof KvUnavailableError) return false;
          throw err;
        }
      });
      // b's watch caught up across the outage.
      await waitFor(() => b.get(after!) !== undefined && b.get(before.id) !== undefined);
      expect(b.get(after!)!.labels.toString()).toBe('app=after');
      expect(b.watcher.cache.inSync).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('connect to an unreachable etcd fails within its timeout', async () => {
    const r = await timed(IdentityClient.connect({ endpoints: ['127.0.0.1:1'], node: 'x', logger: log, connectTimeoutMs: 1000, attemptTimeoutMs: 200, callTimeoutMs: 500 }));
    expect(r.ok).toBe(false);
    expect(r.err).toBeInstanceOf(KvUnavailableError);
    expect(r.ms).toBeLessThan(3000);
  });

  it('lease loss: a new lease is granted and every reference is put again', async () => {
    const c = etcd.get();
    const root = uniqueRoot('lease');
    const schema = new KeySchema(root);
    const a = await IdentityClient.connect({ endpoints: c.endpoints, root, node: 'a', logger: log, leaseTtlSeconds: 3 });
    const raw = new KvClient({ endpoints: c.endpoints, logger: log });
    try {
      const ls = [LabelSet.parse(['app=x']), LabelSet.parse(['app=y'])];
      const ids = await Promise.all(ls.map(async (l) => (await a.allocate(l)).id));
      const oldLease = await a.leases.current();
      await raw.revokeLease(oldLease); // as if etcd had expired it during a partition
      expect((await raw.listPrefix(schema.refsNodePrefix('a'))).kvs).toHaveLength(0);
      await waitFor(async () => (await raw.listPrefix(schema.refsNodePrefix('a'))).kvs.length === 2);
      await a.leases.settled();
      const refs = await raw.listPrefix(schema.refsNodePrefix('a'));
      const newLease = await a.leases.current();
      expect(newLease).not.toBe(oldLease);
      for (const kv of refs.kvs) expect(kv.lease).toBe(newLease);
      expect(refs.kvs.map((kv) => decodeValue('identity-ref', kv.value).id).sort()).toEqual([...ids].sort());
    } finally {
      await a.close();
      raw.close();
    }
  });
});
