import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateAddEndpoint } from '../../agent/api/index.js';
import { loadAgentConfig } from '../../agent/config/index.js';
import { Agent } from '../../agent/daemon/index.js';
import { IdentityClient, KvClient, KvTlsError, readEtcdTls, silentLogger } from '../../agent/kvstore/index.js';
import { FakeDatapath } from '../../bpf/index.js';
import { KeySchema } from '../../kvstore-schema/index.js';
import { LabelSet } from '../../identity/index.js';
import { runWard } from '../helpers/cli.js';
import { useTlsEtcd } from '../helpers/tls-etcd.js';
import { noopNetlink } from '../helpers/netlink.js';

/*
 * A one-member etcd that only speaks mutual TLS (client certs checked against our own CA):
 * the etcd layer connects with the files an agent config names, and refuses without them.
 */
const tlsEtcd = useTlsEtcd(['ward-node']);

describe('etcd over mutual TLS', () => {
  it('the identity client and a watch client work with the files of an agent config', async () => {
    const { endpoint, files } = tlsEtcd.get();
    const tls = files('ward-node');
    const ids = await IdentityClient.connect({ endpoints: [endpoint], node: 'tls-node', root: `t-tls-${process.pid}/`, logger: silentLogger(), tls, connectTimeoutMs: 10_000 });
    try {
      const { id } = await ids.allocate(LabelSet.parseCsv('app=tls'));
      expect(id).toBeGreaterThanOrEqual(256);
      const deadline = Date.now() + 10_000;
      while (ids.get(id) === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(ids.get(id)?.labels.toString()).toContain('app=tls');
    } finally {
      await ids.close({ revoke: true });
    }
  });

  it('an agent configured with etcd.ca-file/cert-file/key-file starts, syncs and publishes', async () => {
    const { endpoint, dir, files } = tlsEtcd.get();
    const tls = files('ward-node');
    const netlink = noopNetlink;
    const root = `t-tlsagent-${process.pid}/`;
    const config = loadAgentConfig({
      flags: {
        'node-name': 'tls-agent',
        'node-ip': '10.98.9.1',
        'endpoint-cidr': '10.219.0.0/24',
        etcd: endpoint,
        'etcd-root': root,
        'etcd-ca-file': tls.caFile,
        'etcd-cert-file': tls.certFile,
        'etcd-key-file': tls.keyFile,
        'bpf-root': '/unused',
        'api-socket': join(dir, 'agent.sock'),
        'state-dir': join(dir, 'agent-state'),
      },
    });
    const agent = await Agent.start({ config, logger: silentLogger(), datapath: new FakeDatapath(), netlink, leaseTtlSeconds: 5 });
    const kv = new KvClient({ endpoints: [endpoint], logger: silentLogger(), credentials: readEtcdTls(tls) });
    try {
      const deadline = Date.now() + 10_000;
      while (!agent.inSync && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const st = await agent.status();
      expect(st.etcd.connected).toBe(true);
      expect(st.inSync).toBe(true);
      const ep = await agent.addEndpoint(validateAddEndpoint({ name: 'web', labels: ['app=web'], netns: '/proc/self/ns/net' }));
      expect((await kv.get(new KeySchema(root).endpointKey('tls-agent', ep.ip))).kv).toBeDefined();
    } finally {
      kv.close();
      await agent.close();
    }
  });

  it('without a client certificate etcd refuses the connection', async () => {
    const { endpoint, files } = tlsEtcd.get();
    const c = new KvClient({ endpoints: [endpoint], logger: silentLogger(), credentials: readEtcdTls({ caFile: files('ward-node').caFile }), attemptTimeoutMs: 300, callTimeoutMs: 800, maxAttempts: 1 });
    try {
      await expect(c.get('x')).rejects.toThrow();
    } finally {
      c.close();
    }
  });

  it('the CLI reaches it with WARD_ETCD_CA_FILE/CERT_FILE/KEY_FILE', async () => {
    const { endpoint, dir, env: tlsEnv } = tlsEtcd.get();
    const env = { WARD_ETCD_ENDPOINTS: endpoint, WARD_ETCD_ROOT: `t-tlscli-${process.pid}/`, ...tlsEnv('ward-node') };
    const ok = await runWard(['policy', 'list', '-o', 'json'], env);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toEqual([]);
    const bad = await runWard(['policy', 'list'], { ...env, WARD_ETCD_CA_FILE: join(dir, 'none.pem') });
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('WARD_ETCD_CA_FILE');
  });

  it('bad TLS settings are errors naming the setting and the file', () => {
    const { dir, files } = tlsEtcd.get();
    const f = files('ward-node');
    expect(() => readEtcdTls({ caFile: join(dir, 'nope.pem') })).toThrow(/etcd\.ca-file .*nope\.pem: cannot read/);
    expect(() => readEtcdTls({ caFile: f.caFile, certFile: f.keyFile, keyFile: f.keyFile })).toThrow(/etcd\.cert-file .*ward-node\.key: not a PEM file/);
    expect(() => readEtcdTls({ caFile: f.caFile, certFile: f.certFile })).toThrow(KvTlsError);
  });
});
