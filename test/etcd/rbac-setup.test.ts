import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3, Range } from 'etcd3';
import { afterAll, describe, expect, it } from 'vitest';
import { LabelSet } from '../../identity/index.js';
import { encodeValue, KeySchema } from '../../kvstore-schema/index.js';
import { IdentityClient, KvClient, KvPermissionError, setupRbac, silentLogger } from '../../agent/kvstore/index.js';
import { useEtcdCluster } from '../helpers/etcd.js';
import { runWard } from '../helpers/cli.js';

// Its own one-member cluster: enabling auth must not disturb other files' clusters.
const etcd = useEtcdCluster({ members: 1 });
const log = silentLogger();
const schema = new KeySchema();
const dir = mkdtempSync(join(tmpdir(), 'ward-rbac-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ward = runWard;

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: web-from-api }
spec:
  endpointSelector: { matchLabels: { app: web } }
  ingress: [{ fromEndpoints: [{ matchLabels: { app: api } }] }]
`;

const nodePasswords = new Map([
  ['n1', 'pw-n1'],
  ['n2', 'pw-n2'],
]);
const endpoint = (node: string, ip: string): Buffer => encodeValue('endpoint', { v: 1, ip, identity: 1234, node, name: 'ep' });
const policy = (name: string): Buffer => encodeValue('policy', { v: 1, name, rules: [], description: '', updatedAtMs: 0 });

describe('ward etcd setup-rbac', () => {
  it('limits a node to its own keys plus shared identities; only the admin writes policies; re-running converges', async () => {
    const eps = etcd.get().endpoints;
    mkdirSync(join(dir, 'nodes'));
    for (const [n, pw] of nodePasswords) file(join('nodes', n), `${pw}\n`);
    const first = await ward([
      'etcd', 'setup-rbac', '--etcd', eps.join(','), '--nodes', 'n1,n2', '--node-password-dir', join(dir, 'nodes'),
      '--admin-password-file', file('admin.pw', 'pw-admin\n'), '--root-password-file', file('root.pw', 'pw-root'), '--enable-auth',
    ]);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.out).toContain('role ward-node-n1: created, 8 permission(s)');
    expect(first.out).toContain('user n2 (role ward-node-n2, password): created');
    expect(first.out).toContain('auth enabled');

    // Once auth is on, a re-run (as root) creates nothing and revokes only what the plan lacks.
    const raw = new Etcd3({ hosts: eps.map((e) => `http://${e}`), auth: { username: 'root', password: 'pw-root' } });
    try {
      await raw.role('ward-node-n1').grant({ permission: 'Readwrite', range: Range.prefix(schema.policies) });
    } finally {
      raw.close();
    }
    const again = await setupRbac(schema, { endpoints: eps, nodes: ['n1', 'n2'], nodePasswords, adminPassword: 'pw-admin', rootPassword: 'pw-root', auth: { username: 'root', password: 'pw-root' } });
    expect([again.createdRoles, again.createdUsers, again.revoked]).toEqual([[], [], 1]);

    const n2 = new KvClient({ endpoints: eps, logger: log, auth: { username: 'n2', password: 'pw-n2' } });
    const n1 = new KvClient({ endpoints: eps, logger: log, auth: { username: 'n1', password: 'pw-n1' } });
    const admin = new KvClient({ endpoints: eps, logger: log, auth: { username: 'ward-admin', password: 'pw-admin' } });
    const ids = await IdentityClient.connect({ endpoints: eps, node: 'n1', logger: log, auth: { username: 'n1', password: 'pw-n1' } });
    try {
      await n2.put(schema.nodeKey('n2'), Buffer.from('n2'));
      await n2.put(schema.endpointKey('n2', '10.0.2.5'), endpoint('n2', '10.0.2.5'));

      // What n1 may do: allocate identities (shared id/ and labels/ keys, its own refs), its node key and endpoints.
      const { id } = await ids.allocate(LabelSet.parse(['app=web']));
      expect(id).toBeGreaterThan(0);
      await n1.put(schema.nodeKey('n1'), Buffer.from('n1'));
      await n1.put(schema.endpointKey('n1', '10.0.1.5'), endpoint('n1', '10.0.1.5'));
      expect((await n1.listPrefix(schema.root)).kvs.length).toBeGreaterThanOrEqual(5); // it reads everything

      // What n1 may not do: touch n2's keys or any policy; denials are typed.
      const ref = encodeValue('identity-ref', { v: 1, id, token: 'forged' });
      await expect(n1.put(schema.nodeKey('n2'), Buffer.from('forged'))).rejects.toBeInstanceOf(KvPermissionError);
      await expect(n1.put(schema.endpointKey('n2', '10.0.2.5'), endpoint('n2', '10.0.2.5'))).rejects.toBeInstanceOf(KvPermissionError);
      await expect(n1.delete(schema.endpointKey('n2', '10.0.2.5'))).rejects.toBeInstanceOf(KvPermissionError);
      await expect(n1.put(schema.refKey('n2', LabelSet.parse(['app=web']).labels), ref)).rejects.toBeInstanceOf(KvPermissionError);
      await expect(n1.put(schema.policyKey('allow-all'), policy('allow-all'))).rejects.toThrow(/permission denied/);

      // The admin imports a policy with the CLI; the same import as n1 is denied; n1 reads it.
      const policyFile = file('policy.yaml', POLICY);
      const asN1 = await ward(['policy', 'import', policyFile, '--etcd', eps.join(',')], { WARD_ETCD_USER: 'n1', WARD_ETCD_PASSWORD_FILE: join(dir, 'nodes', 'n1') });
      expect(asN1.code).not.toBe(0);
      expect(asN1.err).toMatch(/permission denied/);
      const asAdmin = await ward(['policy', 'import', policyFile, '--etcd', eps.join(',')], { WARD_ETCD_USER: 'ward-admin', WARD_ETCD_PASSWORD_FILE: join(dir, 'admin.pw') });
      expect(asAdmin.err).toBe('');
      expect(asAdmin.out).toContain('policy web-from-api imported');
      expect((await n1.get(schema.policyKey('web-from-api'))).kv?.value.length).toBeGreaterThan(0);
      await admin.delete(schema.policyKey('web-from-api'));
    } finally {
      await ids.close();
      n1.close();
      n2.close();
      admin.close();
    }
  });
});
