import { describe, expect, it } from 'vitest';
import { IdentityClient, KvClient, silentLogger } from '../../agent/kvstore/index.js';
import { KeySchema } from '../../kvstore-schema/index.js';
import { useEtcdCluster, uniqueRoot } from '../helpers/etcd.js';
import { runWard } from '../helpers/cli.js';

const etcd = useEtcdCluster({ members: 1 });

const ward = runWard;

describe('ward identity list/get against a real etcd', () => {
  it('lists, gets by number and by labels, as table and json', async () => {
    const root = uniqueRoot('cli');
    const eps = etcd.get().endpoints.join(',');
    const n1 = await IdentityClient.connect({ endpoints: etcd.get().endpoints, root, node: 'node-1', logger: silentLogger() });
    const n2 = await IdentityClient.connect({ endpoints: etcd.get().endpoints, root, node: 'node-2', logger: silentLogger() });
    try {
      const web = await n1.allocate(['k8s:app=web', 'env=prod']);
      await n2.allocate(['k8s:app=web', 'env=prod']);
      const db = await n2.allocate(['app=db', 'path=a/b=c;d']);

      const table = await ward(['identity', 'list', '--etcd', eps, '--root', root]);
      expect(table.code).toBe(0);
      expect(table.out).toMatch(/^ID\s+LABELS\s+REFERENCED BY/);
      expect(table.out).toContain('reserved:world');
      expect(table.out).toMatch(new RegExp(`${web.id}\\s+k8s:app=web,env=prod\\s+node-1,node-2`));

      const json = await ward(['identity', 'list', '-o', 'json', '--no-reserved', '--root', root], { WARD_ETCD_ENDPOINTS: eps });
      expect(JSON.parse(json.out)).toEqual(
        [
          { id: web.id, labels: ['k8s:app=web', 'env=prod'], reserved: false, referencedBy: ['node-1', 'node-2'] },
          { id: db.id, labels: ['app=db', 'path=a/b=c;d'], reserved: false, referencedBy: ['node-2'] },
        ].sort((a, b) => a.id - b.id),
      );

      const byId = await ward(['identity', 'get', String(db.id), '--etcd', eps, '--root', root, '-o', 'json']);
      expect(JSON.parse(byId.out)).toMatchObject({ id: db.id, labels: ['app=db', 'path=a/b=c;d'] });
      const byLabels = await ward(['identity', 'get', '--labels', 'env=prod,k8s:app=web', '--etcd', eps, '--root', root]);
      expect(byLabels.code).toBe(0);
      expect(byLabels.out).toContain(String(web.id));
      const reserved = await ward(['identity', 'get', '2', '-o', 'json']);
      expect(JSON.parse(reserved.out)).toMatchObject({ id: 2, labels: ['reserved:world'], reserved: true });
      const missing = await ward(['identity', 'get', '65000', '--etcd', eps, '--root', root]);
      expect(missing.code).toBe(1);
      expect(missing.err).toContain('no identity 65000');
    } finally {
      await n1.close();
      await n2.close();
    }
  });

  it('reports a bad value under the identities prefix and keeps going', async () => {
    const root = uniqueRoot('clibad');
    const kv = new KvClient({ endpoints: etcd.get().endpoints, logger: silentLogger() });
    try {
      await kv.put(new KeySchema(root).idKey(777), Buffer.from('garbage'));
      const r = await ward(['identity', 'list', '--no-reserved', '--etcd', etcd.get().endpoints[0]!, '--root', root]);
      expect(r.code).toBe(0);
      expect(r.err).toContain(`${root}state/identities/v1/id/777`);
    } finally {
      kv.close();
    }
  });

  it('bad input names the flag; unreachable etcd is a clear error', async () => {
    const bad = await ward(['identity', 'list', '--etcd', 'nonsense']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--etcd: "nonsense" is not host:port');
    expect((await ward(['identity', 'get', 'abc'])).err).toContain('ID: "abc" is not a number');
    expect((await ward(['identity', 'get', '--labels', '=x'])).err).toContain('--labels');
    expect((await ward(['identity', 'list', '-o', 'yaml'])).err).toContain('-o: unknown output format');
    expect((await ward(['identity', 'get'])).code).toBe(2);
    const down = await ward(['identity', 'list', '--etcd', '127.0.0.1:1']);
    expect(down.code).toBe(1);
    expect(down.err).toContain('cannot read etcd at 127.0.0.1:1');
  });
});
