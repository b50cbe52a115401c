import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { LabelSet } from '../../identity/index.js';
import { encodeValue, KeySchema } from '../../kvstore-schema/index.js';
import { IdentityClient, KvClient, KvPermissionError, silentLogger, WatchStore } from '../../agent/kvstore/index.js';
import { useEtcdCluster } from '../helpers/etcd.js';

// Its own one-member cluster: enabling auth must not disturb other files' clusters.
const etcd = useEtcdCluster({ members: 1 });
const log = silentLogger();
const schema = new KeySchema();

function etcdctl(...args: string[]): void {
  execFileSync('etcdctl', ['--endpoints', etcd.get().endpoints[0]!, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'pipe' });
}

/** node-<n> may read everything under ward/, create identities, and write only its own refs. */
function setUpRbac(): void {
  etcdctl('user', 'add', 'root:rootpw');
  etcdctl('role', 'add', 'root');
  etcdctl('user', 'grant-role', 'root', 'root');
  for (const n of ['a', 'b']) {
    etcdctl('role', 'add', `node-${n}`);
    etcdctl('role', 'grant-permission', `node-${n}`, '--prefix=true', 'read', 'ward/');
    etcdctl('role', 'grant-permission', `node-${n}`, '--prefix=true', 'readwrite', schema.ids);
    etcdctl('role', 'grant-permission', `node-${n}`, '--prefix=true', 'readwrite', schema.labels);
    etcdctl('role', 'grant-permission', `node-${n}`, '--prefix=true', 'readwrite', schema.refsNodePrefix(`node-${n}`));
    etcdctl('user', 'add', `node-${n}:pw-${n}`);
    etcdctl('user', 'grant-role', `node-${n}`, `node-${n}`);
  }
  etcdctl('auth', 'enable');
}

describe('etcd RBAC: a node is limited to its own reference prefix', () => {
  it('allocates with its own user, is denied on another node prefix, and a denied watch does not wedge the client', async () => {
    setUpRbac();
    const eps = etcd.get().endpoints;
    const a = await IdentityClient.connect({ endpoints: eps, node: 'node-a', logger: log, auth: { username: 'node-a', password: 'pw-a' } });
    const kvA = new KvClient({ endpoints: eps, logger: log, auth: { username: 'node-a', password: 'pw-a' } });
    try {
      const { id } = await a.allocate(LabelSet.parse(['app=web']));
      const until = Date.now() + 10_000;
      while (a.get(id) === undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(a.get(id)?.labels.toString()).toBe('app=web'); // its watch works under RBAC
      await expect(kvA.put(schema.refKey('node-b', LabelSet.parse(['app=web']).labels), encodeValue('identity-ref', { v: 1, id, token: 'forged' }))).rejects.toBeInstanceOf(KvPermissionError);

      // A watch on a forbidden prefix fails with a typed error; the same client then still watches.
      const forbidden = new WatchStore<string>(kvA, { prefix: 'elsewhere/', logger: log, decode: (_k, kv) => kv.value.toString(), createTimeoutMs: 1000, backoffMinMs: 20, backoffMaxMs: 100 });
      forbidden.start();
      const allowed = new WatchStore<string>(kvA, { prefix: schema.ids, logger: log, decode: (_k, kv) => kv.value.toString(), createTimeoutMs: 1000 });
      allowed.start();
      await allowed.waitInSync();
      await a.allocate(LabelSet.parse(['app=db']));
      const end = Date.now() + 10_000;
      while (allowed.size < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      expect(allowed.size).toBe(2);
      expect(forbidden.inSync).toBe(false);
      expect(allowed.streamEnds).toBe(0); // the denied store never disturbed the shared client
      await forbidden.close();
      await allowed.close();
    } finally {
      await a.close();
      kvA.close();
    }
  });
});
