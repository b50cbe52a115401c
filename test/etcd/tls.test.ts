import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateAddEndpoint } from '../../agent/api/index.js';
import { loadAgentConfig } from '../../agent/config/index.js';
import { Agent, type NetlinkPort } from '../../agent/daemon/index.js';
import { IdentityClient, KvClient, KvTlsError, readEtcdTls, silentLogger } from '../../agent/kvstore/index.js';
import { FakeDatapath } from '../../bpf/index.js';
import { KeySchema } from '../../kvstore-schema/index.js';
import { Writable } from 'node:stream';
import { runCli } from '../../agent/cli/main.js';
import { LabelSet } from '../../identity/index.js';

/*
 * A one-member etcd that only speaks mutual TLS (client certs checked against our own CA):
 * the etcd layer connects with the files an agent config names, and refuses without them.
 */

let dir = '';
let proc: ChildProcess | undefined;
let endpoint = '';

function openssl(args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

/** CA, server cert for 127.0.0.1, client cert (CN=ward-node), each signed by the CA. */
function makeCerts(): void {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=ward-test-ca']);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, cn] of [['server', '127.0.0.1'], ['client', 'ward-node']] as const) {
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`]);
  }
}

async function waitReady(deadlineMs: number): Promise<void> {
  const client = new KvClient({ endpoints: [endpoint], logger: silentLogger(), credentials: creds(), attemptTimeoutMs: 300, callTimeoutMs: 600 });
  const end = Date.now() + deadlineMs;
  try {
    for (;;) {
      if (proc?.exitCode !== null) throw new Error(`etcd exited (${String(proc?.exitCode)}); see ${dir}/etcd.log`);
      try {
        await client.get('ready-probe');
        return;
      } catch (err) {
        if (Date.now() > end) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } finally {
    client.close();
  }
}

const creds = (): ReturnType<typeof readEtcdTls> => readEtcdTls({ caFile: join(dir, 'ca.pem'), certFile: join(dir, 'client.pem'), keyFile: join(dir, 'client.key') });

beforeAll(async () => {
  dir = mkdtempSync(join('/dev/shm', `ward-tls-${process.pid}-`));
  makeCerts();
  const [cport, pport] = [await freePort(), await freePort()];
  endpoint = `127.0.0.1:${cport}`;
  // prettier-ignore
  proc = spawn('etcd', [
    '--name', 'tls0', '--data-dir', join(dir, 'data'),
    '--listen-client-urls', `https://${endpoint}`, '--advertise-client-urls', `https://${endpoint}`,
    '--listen-peer-urls', `http://127.0.0.1:${pport}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${pport}`,
    '--initial-cluster', `tls0=http://127.0.0.1:${pport}`,
    '--cert-file', join(dir, 'server.pem'), '--key-file', join(dir, 'server.key'),
    '--client-cert-auth', '--trusted-ca-file', join(dir, 'ca.pem'),
    '--heartbeat-interval', '25', '--election-timeout', '250', '--quota-backend-bytes', String(64 * 1024 * 1024),
    '--log-level', 'warn', '--logger', 'zap', '--log-outputs', join(dir, 'etcd.log'),
  ], { stdio: 'ignore' });
  await waitReady(15_000);
}, 30_000);

afterAll(() => {
  if (proc?.pid !== undefined && proc.exitCode === null) process.kill(proc.pid, 'SIGKILL');
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('etcd over mutual TLS', () => {
  it('the identity client and a watch client work with the files of an agent config', async () => {
    const tls = { caFile: join(dir, 'ca.pem'), certFile: join(dir, 'client.pem'), keyFile: join(dir, 'client.key') };
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
    const netlink: NetlinkPort = {
      replaceRoute: async () => undefined,
      deleteRoute: async () => undefined,
      createVeth: async () => undefined,
      deleteVeth: async () => undefined,
      linkExists: async () => false,
      enableForwarding: async () => undefined,
    };
    const root = `t-tlsagent-${process.pid}/`;
    const config = loadAgentConfig({
      flags: {
        'node-name': 'tls-agent',
        'node-ip': '10.98.9.1',
        'endpoint-cidr': '10.219.0.0/24',
        etcd: endpoint,
        'etcd-root': root,
        'etcd-ca-file': join(dir, 'ca.pem'),
        'etcd-cert-file': join(dir, 'client.pem'),
        'etcd-key-file': join(dir, 'client.key'),
        'bpf-root': '/unused',
        'api-socket': join(dir, 'agent.sock'),
        'state-dir': join(dir, 'agent-state'),
      },
    });
    const agent = await Agent.start({ config, logger: silentLogger(), datapath: new FakeDatapath(), netlink, leaseTtlSeconds: 5 });
    const kv = new KvClient({ endpoints: [endpoint], logger: silentLogger(), credentials: creds() });
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
    const c = new KvClient({ endpoints: [endpoint], logger: silentLogger(), credentials: readEtcdTls({ caFile: join(dir, 'ca.pem') }), attemptTimeoutMs: 300, callTimeoutMs: 800, maxAttempts: 1 });
    try {
      await expect(c.get('x')).rejects.toThrow();
    } finally {
      c.close();
    }
  });

  it('the CLI reaches it with WARD_ETCD_CA_FILE/CERT_FILE/KEY_FILE', async () => {
    const out: string[] = [];
    const sink = (into: string[]): Writable => new Writable({ write: (c: Buffer, _e, cb) => (into.push(c.toString()), cb()) });
    const env = { WARD_ETCD_ENDPOINTS: endpoint, WARD_ETCD_ROOT: `t-tlscli-${process.pid}/`, WARD_ETCD_CA_FILE: join(dir, 'ca.pem'), WARD_ETCD_CERT_FILE: join(dir, 'client.pem'), WARD_ETCD_KEY_FILE: join(dir, 'client.key') };
    const err: string[] = [];
    expect(await runCli(['policy', 'list', '-o', 'json'], { env, stdout: sink(out), stderr: sink(err) })).toBe(0);
    expect(JSON.parse(out.join(''))).toEqual([]);
    expect(await runCli(['policy', 'list'], { env: { ...env, WARD_ETCD_CA_FILE: join(dir, 'none.pem') }, stdout: sink(out), stderr: sink(err) })).not.toBe(0);
    expect(err.join('')).toContain('WARD_ETCD_CA_FILE');
  });

  it('bad TLS settings are errors naming the setting and the file', () => {
    expect(() => readEtcdTls({ caFile: join(dir, 'nope.pem') })).toThrow(/etcd\.ca-file .*nope\.pem: cannot read/);
    expect(() => readEtcdTls({ caFile: join(dir, 'ca.pem'), certFile: join(dir, 'client.key'), keyFile: join(dir, 'client.key') })).toThrow(/etcd\.cert-file .*client\.key: not a PEM file/);
    expect(() => readEtcdTls({ caFile: join(dir, 'ca.pem'), certFile: join(dir, 'client.pem') })).toThrow(KvTlsError);
  });
});
