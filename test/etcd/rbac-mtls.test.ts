import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateAddEndpoint } from '../../agent/api/index.js';
import { loadAgentConfig } from '../../agent/config/index.js';
import { Agent } from '../../agent/daemon/index.js';
import { KvClient, KvPermissionError, readEtcdTls, silentLogger } from '../../agent/kvstore/index.js';
import { FakeDatapath } from '../../bpf/index.js';
import { encodeValue, KeySchema } from '../../kvstore-schema/index.js';
import { useTlsEtcd } from '../helpers/tls-etcd.js';
import { runWard, type CliResult } from '../helpers/cli.js';
import { noopNetlink } from '../helpers/netlink.js';

// mTLS-only etcd: every user logs in by its certificate CN (users made without a password).
const etcd = useTlsEtcd(['root', 'ward-admin', 'n1', 'n2']);
const dir = mkdtempSync(join('/dev/shm', `ward-rbac-mtls-${process.pid}-`));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const schema = new KeySchema();

const ward = (argv: string[], env: NodeJS.ProcessEnv): Promise<CliResult> => runWard(argv, env);

const netlink = noopNetlink;

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: web-from-api }
spec:
  endpointSelector: { matchLabels: { app: web } }
  ingress: [{ fromEndpoints: [{ matchLabels: { app: api } }] }]
`;

describe('setup-rbac with certificate users on a mutual-TLS etcd', () => {
  it('a real agent runs as its node user; another node and policies are out of its reach; the admin cert imports policies', async () => {
    const e = etcd.get();
    const setup = await ward(['etcd', 'setup-rbac', '--etcd', e.endpoint, '--nodes', 'n1,n2', '--enable-auth'], e.env('root'));
    expect(setup.err).toBe('');
    expect(setup.out).toContain('user n1 (role ward-node-n1, certificate): created');
    expect(setup.out).toContain('auth enabled');
    // Re-run after auth enable, logged in by the root certificate: converges, nothing new.
    const again = await ward(['etcd', 'setup-rbac', '--etcd', e.endpoint, '--nodes', 'n1,n2'], e.env('root'));
    expect(again.code).toBe(0);
    expect(again.out).not.toContain('created');

    const config = loadAgentConfig({
      flags: {
        'node-name': 'n1',
        'node-ip': '10.98.8.1',
        'endpoint-cidr': '10.218.0.0/24',
        etcd: e.endpoint,
        'etcd-ca-file': e.files('n1').caFile,
        'etcd-cert-file': e.files('n1').certFile,
        'etcd-key-file': e.files('n1').keyFile,
        'bpf-root': '/unused',
        'api-socket': join(dir, 'agent.sock'),
        'state-dir': join(dir, 'agent-state'),
      },
    });
    const agent = await Agent.start({ config, logger: silentLogger(), datapath: new FakeDatapath(), netlink, leaseTtlSeconds: 5 });
    const n1 = new KvClient({ endpoints: [e.endpoint], logger: silentLogger(), credentials: readEtcdTls(e.files('n1')), maxAttempts: 1 });
    try {
      const deadline = Date.now() + 10_000;
      while (!agent.inSync && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(agent.inSync).toBe(true);
      const ep = await agent.addEndpoint(validateAddEndpoint({ name: 'web', labels: ['app=web'], netns: '/proc/self/ns/net' }));
      expect((await n1.get(schema.endpointKey('n1', ep.ip))).kv).toBeDefined();
      expect((await n1.get(schema.nodeKey('n1'))).kv).toBeDefined();
      expect((await n1.get(schema.schemaMarkerKey)).kv?.value.toString()).toBe('1');

      const endpoint = encodeValue('endpoint', { v: 1, ip: '10.218.1.9', identity: 300, node: 'n2', name: 'x' });
      await expect(n1.put(schema.nodeKey('n2'), Buffer.from('forged'))).rejects.toBeInstanceOf(KvPermissionError);
      await expect(n1.put(schema.endpointKey('n2', '10.218.1.9'), endpoint)).rejects.toBeInstanceOf(KvPermissionError);
      await expect(n1.put(schema.policyKey('evil'), Buffer.from('x'))).rejects.toBeInstanceOf(KvPermissionError);

      const policyFile = join(dir, 'policy.yaml');
      writeFileSync(policyFile, POLICY);
      const denied = await ward(['policy', 'import', policyFile, '--etcd', e.endpoint], e.env('n1'));
      expect(denied.err).toMatch(/permission denied/);
      const imported = await ward(['policy', 'import', policyFile, '--etcd', e.endpoint], e.env('ward-admin'));
      expect(imported.err).toBe('');
      expect((await n1.get(schema.policyKey('web-from-api'))).kv).toBeDefined();
    } finally {
      n1.close();
      await agent.close();
    }
  });
});
