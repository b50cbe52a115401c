import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EndpointJson } from '../../agent/api/index.js';
import { EtcdCluster } from '../../agent/dev/etcd-cluster.js';
import { Probe } from '../datapath/helpers/probe.js';
import { eventually } from './helpers/eventually.js';
import { TestHost } from './helpers/host.js';
import { DB_POLICY } from './helpers/policies.js';

// Two hosts (netns joined by a veth), one agent process each, one etcd: identities shared,
// native routing between endpoint CIDRs, policy enforced on the remote host from etcd.
describe('two hosts: cross-host identities, routing and policy', () => {
  let etcd: EtcdCluster | undefined;
  const hosts: TestHost[] = [];
  const probes: Probe[] = [];

  beforeAll(async () => {
    etcd = await EtcdCluster.start({ members: 1 });
    const root = `e2e2-${process.pid.toString(36)}/`;
    const h1 = new TestHost(etcd, { index: 3, root, nodeIp: '10.97.0.1' });
    const h2 = new TestHost(etcd, { index: 4, root, nodeIp: '10.97.0.2' });
    hosts.push(h1, h2);
    h1.setup();
    h2.setup();
    TestHost.link(h1, h2);
    await Promise.all([h1.startAgent(), h2.startAgent()]);
  });

  afterAll(async () => {
    for (const p of probes) p.stop();
    for (const h of hosts) await h.agent?.stop(5000);
    for (const h of hosts) h.destroy();
    await etcd?.close();
  });

  it('allows and denies cross-host TCP per policy; endpoint delete clears the remote ipcache', async () => {
    const [h1, h2] = hosts as [TestHost, TestHost];
    const add = async (h: TestHost, name: string, labels: string, netns: string): Promise<EndpointJson> =>
      JSON.parse(await h.wardOk(['endpoint', 'add', '--name', name, '--labels', labels, '--netns', netns, '-o', 'json'])) as EndpointJson;
    const ns = { web: h1.addNetns('w'), other: h1.addNetns('o'), gone: h1.addNetns('g'), db: h2.addNetns('d'), web2: h2.addNetns('x') };
    const web = await add(h1, 'web', 'app=web', ns.web);
    const other = await add(h1, 'other', 'app=other', ns.other);
    const t0 = performance.now();
    const gone = await add(h1, 'gone', 'app=gone', ns.gone);
    const t1 = performance.now();
    expect(await eventually(() => h2.ipcacheIdentity(gone.ip) === gone.identity, 10_000, 1)).toBe(true);
    const t2 = performance.now();
    console.log(`endpoint add (new identity) via CLI: ${(t1 - t0).toFixed(0)} ms; then in the other host's kernel ipcache after ${(t2 - t1).toFixed(1)} ms (bpftool polling)`);
    const db = await add(h2, 'db', 'app=db', ns.db);
    const web2 = await add(h2, 'web2', 'app=web', ns.web2);
    expect(web2.identity).toBe(web.identity); // same labels on two hosts: one identity

    // Each host's kernel ipcache learns the other's endpoints.
    expect(await eventually(() => h2.ipcacheIdentity(web.ip) === web.identity && h1.ipcacheIdentity(db.ip) === db.identity, 10_000)).toBe(true);
    expect(h1.ipcacheIdentity(h2.nodeIp)).toBe(6); // remote-node
    expect(h1.ipcacheIdentity(h1.nodeIp)).toBe(1); // host

    const [pWeb, pOther, pDb] = await Promise.all([Probe.start(ns.web), Probe.start(ns.other), Probe.start(ns.db)]);
    probes.push(pWeb, pOther, pDb);
    await pDb.listenTcp(5432);
    // No policy: routed across hosts and allowed.
    expect(await eventually(() => pWeb.tcp(db.ip, 5432, 700), 10_000)).toBe(true);
    expect(await pOther.tcp(db.ip, 5432)).toBe(true);

    // A policy imported on host 1 is enforced by host 2's agent.
    const policyFile = join(h1.dir, 'db-policy.yaml');
    writeFileSync(policyFile, DB_POLICY);
    await h1.wardOk(['policy', 'import', policyFile]);
    expect(await eventually(async () => !(await pOther.tcp(db.ip, 5432, 500)), 10_000)).toBe(true);
    expect(await pWeb.tcp(db.ip, 5432)).toBe(true);

    // Online trace on host 2's live state: remote endpoints by IP (through the ipcache), local by name.
    const trace = async (from: string, to: string): Promise<{ verdict: string; from: { kind: string; identity: number; labels?: string[] } }> =>
      JSON.parse(await h2.wardOk(['policy', 'trace', '--from', from, '--to', to, '--dport', '5432', '-o', 'json'])) as { verdict: string; from: { kind: string; identity: number; labels?: string[] } };
    const viaWeb = await trace(web.ip, 'db');
    expect(viaWeb).toMatchObject({ verdict: 'allowed', from: { kind: 'address', identity: web.identity } });
    expect(viaWeb.from.labels).toEqual(web.labels);
    expect((await trace(other.ip, 'db')).verdict).toBe('denied');
    expect((await trace('world', db.ip)).verdict).toBe('denied');
    expect(await h2.wardOk(['policy', 'trace', '--from', web.ip, '--to', 'db', '--dport', '5432'])).toMatch(/remote endpoint, identity \d+[\s\S]*Final verdict: ALLOWED/);
    expect((await h2.ward(['policy', 'trace', '--from', 'nosuch', '--to', 'db', '--dport', '5432'])).err).toContain('unknown peer "nosuch"');
    // From host 1, db is remote: its ingress side is judged from the same cluster-wide rules.
    const fromH1 = async (from: string): Promise<string> =>
      (JSON.parse(await h1.wardOk(['policy', 'trace', '--from', from, '--to', db.ip, '--dport', '5432', '-o', 'json'])) as { verdict: string }).verdict;
    expect(await fromH1('web')).toBe('allowed');
    expect(await fromH1('other')).toBe('denied');

    // Endpoint delete on host 1 removes its ipcache entry on host 2.
    expect(await eventually(() => h2.ipcacheIdentity(gone.ip) === gone.identity, 10_000)).toBe(true);
    await h1.wardOk(['endpoint', 'delete', 'gone']);
    expect(await eventually(() => h2.ipcacheIdentity(gone.ip) === undefined, 10_000)).toBe(true);
    expect(h2.ipcacheIdentity(web.ip)).toBe(web.identity);
    expect(h2.ipcacheIdentity(other.ip)).toBe(other.identity);

    // Policy delete takes effect on host 2.
    await h1.wardOk(['policy', 'delete', 'db-from-web']);
    expect(await eventually(() => pOther.tcp(db.ip, 5432, 500), 10_000)).toBe(true);
    expect(await pWeb.tcp(db.ip, 5432)).toBe(true);
  });
});
