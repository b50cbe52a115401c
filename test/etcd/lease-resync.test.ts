import { describe, expect, it } from 'vitest';
import { KvClient, LeaseManager, silentLogger } from '../../agent/kvstore/index.js';
import { uniqueRoot, useEtcdCluster } from '../helpers/etcd.js';

const etcd = useEtcdCluster({ members: 1 });

describe('LeaseManager.resync', () => {
  it('re-runs every restorer on the same lease after our keys were deleted, and not after close', async () => {
    const client = new KvClient({ endpoints: etcd.get().endpoints, logger: silentLogger() });
    const leases = new LeaseManager(client, { ttlSeconds: 10, logger: silentLogger() });
    try {
      const key = `${uniqueRoot('resync')}mine`;
      const seen: string[] = [];
      leases.onRenewed(async (id) => {
        seen.push(id);
        await client.put(key, Buffer.from('v'), id);
      });
      const id = await leases.current();
      await client.put(key, Buffer.from('v'), id);
      expect(await client.deletePrefix(key)).toBe(1);

      leases.resync('test');
      leases.resync('test again'); // coalesces into the running recovery
      await leases.settled();
      const got = (await client.get(key)).kv;
      expect(got?.value.toString()).toBe('v');
      expect(got?.lease).toBe(id);
      expect(seen.length).toBeGreaterThanOrEqual(1);
      expect(new Set(seen)).toEqual(new Set([id]));

      await leases.close({ revoke: true });
      const runs = seen.length;
      leases.resync('after close');
      await leases.settled();
      expect(seen.length).toBe(runs);
      expect((await client.get(key)).kv).toBeUndefined();
    } finally {
      await leases.close();
      client.close();
    }
  });
});
