import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DevState } from '../../agent/dev/dev-state.js';
import { isAlive } from '../../agent/dev/procs.js';
import { useDevSandbox } from './helpers/dev-sandbox.js';
import { eventually } from './helpers/eventually.js';

const CLUSTER = `hosts: [h1, h2]
network:
  node-cidr: 10.93.0.0/24
  endpoint-cidr: 10.213.0.0/16
policy: policy.yaml
workloads:
  - name: a
    host: h1
    labels: { app: a }
    command: socat TCP-LISTEN:7001,fork,reuseaddr SYSTEM:'echo a'
    ports: [7001]
  - name: b
    host: h2
    labels: { app: b }
    command: socat TCP-LISTEN:7002,fork,reuseaddr SYSTEM:'echo b'
    ports: [7002]
`;

// b accepts nothing but a; a accepts nobody.
const POLICY = `- endpointSelector: { matchLabels: { app: b } }
  ingress: [{ fromEndpoints: [{ matchLabels: { app: a } }] }]
- endpointSelector: { matchLabels: { app: a } }
  ingress: []
`;

describe('ward dev up --tls', () => {
  const dev = useDevSandbox('wtls', { 'cluster.yaml': CLUSTER, 'policy.yaml': POLICY }, { inheritEtcdEnv: false });
  const { name: NAME, tmp: TMP, ward } = dev;
  let state: DevState;


  it('runs etcd with client-cert auth only, agents on their certificates, and prints the CLI environment', async () => {
    const up = await ward(['dev', 'up', '--tls', '-f', join(TMP, 'cluster.yaml'), '--name', NAME, '--etcd-port', '0']);
    expect(up.code, `${up.out}\n${up.err}`).toBe(0);
    state = dev.readState();
    const pki = join(state.dir, 'pki');
    expect(state.etcd.tlsPki).toBe(pki);
    expect(up.out).toContain(`etcd speaks mutual TLS only; certificates in ${pki}`);
    expect(readFileSync(state.hosts[0]!.configFile, 'utf8')).toContain(`  cert-file: ${join(pki, 'h1.crt')}`);
    expect(up.out).toMatch(/matches the policy after \d+ ms/);

    // The printed CLI line works as printed; the same command without certificates is refused.
    const hint = /^ {3}(WARD_ETCD_CA_FILE=\S+ WARD_ETCD_CERT_FILE=\S+ WARD_ETCD_KEY_FILE=\S+) WARD_ETCD_ENDPOINTS=(\S+) npx ward policy list$/m.exec(up.out);
    expect(hint, up.out).not.toBeNull();
    const env = Object.fromEntries([...hint![1]!.split(' '), `WARD_ETCD_ENDPOINTS=${hint![2]!}`].map((kv) => kv.split('=') as [string, string]));
    const list = await ward(['policy', 'list'], env);
    expect(list.code, list.err).toBe(0);
    expect(list.out).toContain('policy');
    const plain = await ward(['policy', 'list'], { WARD_ETCD_ENDPOINTS: hint![2]! });
    expect(plain.code).not.toBe(0);

    // status probes /health over mutual TLS; a killed member restarts with TLS.
    expect((await ward(['dev', 'status', '--name', NAME])).code).toBe(0);
    expect((await ward(['dev', 'etcd', 'kill', '0', '--name', NAME])).code).toBe(0);
    const start = await ward(['dev', 'etcd', 'start', '0', '--name', NAME]);
    expect(start.code, start.err).toBe(0);
    expect(start.out).toMatch(/healthy/);
    expect(await eventually(async () => (await ward(['dev', 'status', '--name', NAME])).code === 0, 30_000, 200)).toBe(true);

    const down = await ward(['dev', 'down', '--name', NAME]);
    expect(down.code, down.err).toBe(0);
    for (const p of state.etcd.members.map((m) => m.proc)) expect(isAlive(p)).toBe(false);
    expect(existsSync(state.dir)).toBe(false);
  });
});
