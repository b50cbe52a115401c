import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BpfPolicyJson, CtEntryJson, EndpointJson, IpcacheEntryJson, MonitorDatapathEventJson, SelectorJson } from '../../agent/api/index.js';
import { EtcdCluster } from '../../agent/dev/etcd-cluster.js';
import { Probe } from '../datapath/helpers/probe.js';
import { AgentProcess } from './helpers/agent-process.js';
import { freeLoopbackPort } from '../../agent/dev/free-port.js';
import { eventually } from './helpers/eventually.js';
import { metricSample } from './helpers/metrics.js';
import { startMonitor } from './helpers/monitor-process.js';
import { TestHost, type CliResult } from './helpers/host.js';
import { DB_POLICY } from './helpers/policies.js';


// One host with a real agent process: a drop caused here shows up in `ward monitor`, and the
// bpf/selector views show the entries the policy implies.
describe('observability: ward monitor, bpf policy/ipcache/ct, policy selectors, status --verbose', () => {
  let etcd: EtcdCluster | undefined;
  let host: TestHost | undefined;
  const probes: Probe[] = [];
  let web: EndpointJson;
  let db: EndpointJson;
  let other: EndpointJson;
  let pWeb: Probe;
  let pOther: Probe;
  let metricsPort = 0;
  let notify: ChildProcess | undefined;
  let notified = '';

  beforeAll(async () => {
    etcd = await EtcdCluster.start({ members: 1 });
    host = new TestHost(etcd);
    host.setup();
    metricsPort = await freeLoopbackPort();
    appendFileSync(join(host.dir, 'agent.yaml'), `metrics-address: 127.0.0.1:${metricsPort}\n`);
    // A stand-in for systemd's notify socket: the agent runs as under Type=notify.
    const notifySock = join(host.dir, 'notify.sock');
    notify = spawn('socat', ['-u', `UNIX-RECV:${notifySock}`, 'STDOUT'], { stdio: ['ignore', 'pipe', 'ignore'] });
    notify.stdout!.on('data', (c: Buffer) => (notified += c.toString()));
    if (!(await eventually(() => existsSync(notifySock), 5000, 20))) throw new Error('socat did not bind the notify socket');
    const h = host;
    h.agent = AgentProcess.start(['--config', join(h.dir, 'agent.yaml'), `--host-netns=/run/netns/${h.hostNs}`], h.logFile, { NOTIFY_SOCKET: notifySock });
    if (!(await eventually(async () => (await h.status())?.inSync === true, 30_000))) throw new Error(`agent did not come up in sync; see ${h.logFile}`);
    const ns = { web: h.addNetns('w'), db: h.addNetns('d'), other: h.addNetns('o') };
    const add = async (name: keyof typeof ns, labels: string): Promise<EndpointJson> =>
      JSON.parse(await h.wardOk(['endpoint', 'add', '--name', name, '--labels', labels, '--netns', ns[name], '-o', 'json'])) as EndpointJson;
    web = await add('web', 'app=web');
    db = await add('db', 'app=db,env=prod');
    other = await add('other', 'app=other');
    const pDb = await Probe.start(ns.db);
    pWeb = await Probe.start(ns.web);
    pOther = await Probe.start(ns.other);
    probes.push(pDb, pWeb, pOther);
    await pDb.listenTcp(5432);
    const policyFile = join(h.dir, 'db-policy.yaml');
    writeFileSync(policyFile, DB_POLICY);
    await h.wardOk(['policy', 'import', policyFile]);
    if (!(await eventually(async () => !(await pOther.tcp(db.ip, 5432, 500)), 10_000))) throw new Error('policy never took effect');
  }, 60_000);

  afterAll(async () => {
    if (notify?.pid !== undefined && notify.exitCode === null) process.kill(notify.pid, 'SIGKILL');
    for (const p of probes) p.stop();
    await host?.agent?.stop(5000);
    host?.destroy();
    await etcd?.close();
  });

  it('tells systemd (NOTIFY_SOCKET) it is ready once in sync', async () => {
    expect(await eventually(() => notified.includes('READY=1'), 10_000, 20)).toBe(true);
    expect(notified).toContain(`MAINPID=${host!.agent!.pid}`);
    expect(notified).toContain('STATUS=in sync');
  });

  it('ward monitor -o json shows a drop caused here, with endpoint, identities and labels', async () => {
    const h = host!;
    // A real `ward monitor` process, stopped with SIGINT like an operator's Ctrl-C.
    const mon = startMonitor<MonitorDatapathEventJson>(h.socket, ['--type', 'drop', '--endpoint', 'db']);
    const { events } = mon;
    const ours = (): MonitorDatapathEventJson | undefined => events.find((e) => e.saddr === other.ip && e.dport === 5432);
    try {
      // Keep causing the drop until the monitor (subscribing asynchronously) has shown one.
      for (let i = 0; i < 150 && ours() === undefined && mon.running(); i++) await pOther.tcp(db.ip, 5432, 200);
      expect(mon.err()).toBe('');
      const e = ours();
      expect(e).toMatchObject({
        type: 'drop',
        direction: 'ingress',
        endpoint: 'db',
        endpointId: db.id,
        identity: db.identity,
        remoteIdentity: other.identity,
        protocol: 'TCP',
        saddr: other.ip,
        daddr: db.ip,
        dport: 5432,
      });
      expect(e!.reasonName).toMatch(/policy/i);
      expect(e!.labels?.join(',')).toMatch(/app=db/);
      expect(e!.remoteLabels?.join(',')).toMatch(/app=other/);
      // Only drops of db.
      expect(events.every((x) => x.type === 'drop' && x.endpointId === db.id)).toBe(true);
      expect(await mon.interrupt()).toBe(0);
    } finally {
      mon.kill();
    }
  });

  it('ward monitor --count stops after N events (in-process CLI, table output)', async () => {
    const h = host!;
    let done: CliResult | undefined;
    const mon = h.ward(['monitor', '--type', 'drop', '--endpoint', String(db.id), '--count', '1']).then((r) => (done = r));
    for (let i = 0; i < 150 && done === undefined; i++) await pOther.tcp(db.ip, 5432, 200);
    const r = await mon;
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^DROP \(\S+\) (ingress|egress) endpoint db \(\d+\)/);
    expect(r.out.trim().split('\n')).toHaveLength(1);
  });

  it('ward monitor rejects bad input with usage or API errors', async () => {
    const h = host!;
    expect((await h.ward(['monitor', '--type', 'bogus'])).code).toBe(2);
    expect((await h.ward(['monitor', '--count', '0'])).code).toBe(2);
    const missing = await h.ward(['monitor', '--endpoint', 'no-such-endpoint']);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('no endpoint "no-such-endpoint"');
  });

  it('ward bpf policy get shows the kernel entries of the policy, readable', async () => {
    const h = host!;
    const p = JSON.parse(await h.wardOk(['bpf', 'policy', 'get', 'db', '-o', 'json'])) as BpfPolicyJson;
    expect(p).toMatchObject({ endpoint: 'db', id: db.id, lockedDown: false, capacity: 16384 });
    const allow = p.entries.find((e) => e.identity === web.identity && e.direction === 'ingress');
    expect(allow).toMatchObject({ protocol: 'TCP', ports: '5432', deny: false, inKernel: true, desired: true });
    expect(allow!.labels?.join(',')).toMatch(/app=web/);
    expect(p.entries.some((e) => e.identity === other.identity && e.direction === 'ingress' && !e.deny)).toBe(false);
    expect(p.entries.every((e) => e.inKernel && e.desired)).toBe(true);
    // By id too, and as a table.
    expect(await h.wardOk(['bpf', 'policy', 'get', String(db.id)])).toMatch(new RegExp(`ingress\\s+allow\\s+${web.identity}\\s+\\S*app=web\\S*\\s+TCP\\s+5432\\s+-\\s+ok`));
    const none = await h.ward(['bpf', 'policy', 'get', 'nope']);
    expect(none.code).toBe(1);
    expect(none.err).toContain('no endpoint "nope"');
    expect((await h.ward(['bpf', 'policy', 'get'])).code).toBe(2);
  });

  it('ward bpf ipcache list shows endpoint IPs with identities and labels', async () => {
    const h = host!;
    const list = JSON.parse(await h.wardOk(['bpf', 'ipcache', 'list', '-o', 'json'])) as IpcacheEntryJson[];
    for (const ep of [web, db, other]) expect(list.find((e) => e.cidr === `${ep.ip}/32`)).toMatchObject({ identity: ep.identity });
    expect(list.find((e) => e.cidr === `${db.ip}/32`)!.labels?.join(',')).toMatch(/app=db/);
    expect(list.find((e) => e.cidr === `${h.nodeIp}/32`)).toMatchObject({ identity: 1, labels: ['reserved:host'] });
    expect(await h.wardOk(['bpf', 'ipcache', 'list'])).toMatch(/^PREFIX\s+IDENTITY\s+LABELS\s+NODE/);
  });

  it('ward bpf ct list shows an open flow of the endpoint', async () => {
    const h = host!;
    const sid = await pWeb.openSession(db.ip, 5432);
    try {
      const list = JSON.parse(await h.wardOk(['bpf', 'ct', 'list', '--endpoint', 'db', '-o', 'json'])) as CtEntryJson[];
      const flow = list.find((e) => e.saddr === web.ip && e.daddr === db.ip && e.dport === 5432);
      expect(flow).toMatchObject({ endpoint: 'db', endpointId: db.id, protocol: 'TCP', remoteIdentity: web.identity });
      expect(flow!.packets).toBeGreaterThan(0);
      expect(list.every((e) => e.endpointId === db.id)).toBe(true);
      expect(await h.wardOk(['bpf', 'ct', 'list'])).toMatch(/^ENDPOINT\s+DIRECTION\s+PROTO\s+SOURCE/);
    } finally {
      await pWeb.closeSession(sid);
    }
  });

  it('ward policy selectors maps selectors to identities and the endpoints using them', async () => {
    const h = host!;
    const list = JSON.parse(await h.wardOk(['policy', 'selectors', '-o', 'json'])) as SelectorJson[];
    const fromWeb = list.find((s) => s.identities.some((i) => i.id === web.identity) && s.users.includes('db'));
    expect(fromWeb).toBeDefined();
    expect(fromWeb!.selector).toMatch(/app/);
    expect(fromWeb!.identities.map((i) => i.id)).not.toContain(other.identity);
    expect(await h.wardOk(['policy', 'selectors'])).toMatch(/^SELECTOR\s+IDENTITIES\s+USERS/);
  });

  it('ward status --verbose adds policy map fill and drop counters', async () => {
    const h = host!;
    const s = JSON.parse(await h.wardOk(['status', '--verbose', '-o', 'json'])) as {
      inSync: boolean;
      verbose: { endpoints: { endpoint: string; capacity: number }[]; entries: Record<string, number>; counters: { endpoint?: string; reason: string; packets: number }[] };
    };
    expect(s.inSync).toBe(true);
    expect(s.verbose.endpoints.map((e) => e.endpoint).sort()).toEqual(['db', 'other', 'web']);
    expect(s.verbose.entries['db']).toBeGreaterThan(0);
    expect(s.verbose.counters.some((c) => c.endpoint === 'db' && /policy/i.test(c.reason) && c.packets > 0)).toBe(true);
    expect(await h.wardOk(['status', '-v'])).toMatch(/policy maps:\nENDPOINT\s+ID\s+ENTRIES\s+PRESSURE/);
  });

  it('serves Prometheus metrics over HTTP with the named series', async () => {
    expect(await pOther.tcp(db.ip, 5432, 300)).toBe(false); // one more drop, counted
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(metricSample(text, 'ward_identities')).toBeGreaterThanOrEqual(3);
    expect(metricSample(text, 'ward_endpoints')).toBe(3);
    expect(metricSample(text, 'ward_in_sync')).toBe(1);
    expect(metricSample(text, 'ward_policy_map_entries{endpoint="db"}')).toBeGreaterThan(0);
    expect(metricSample(text, 'ward_policy_map_pressure_ratio{endpoint="db"}')).toBeGreaterThan(0);
    expect(metricSample(text, 'ward_policy_map_pressure_ratio{endpoint="db"}')).toBeLessThan(1);
    expect(metricSample(text, 'ward_policy_map_locked_down{endpoint="db"}')).toBe(0);
    expect(metricSample(text, 'ward_kvstore_entries{kind="policies"}')).toBe(1);
    expect(metricSample(text, 'ward_kvstore_events_total{kind="policies"}')).toBeGreaterThanOrEqual(1);
    expect(metricSample(text, 'ward_event_to_datapath_seconds_count{kind="policies"}')).toBeGreaterThanOrEqual(1);
    expect(metricSample(text, 'ward_event_to_datapath_seconds_bucket{le="+Inf",kind="policies"}')).toBeGreaterThanOrEqual(1);
    // Present; their values depend on how loaded etcd was (a slow call is an error, then retried).
    expect(metricSample(text, 'ward_etcd_errors_total')).toBeGreaterThanOrEqual(0);
    expect(metricSample(text, 'ward_kvstore_resyncs_total{kind="policies"}')).toBeGreaterThanOrEqual(0);
    expect(metricSample(text, 'ward_kvstore_watch_restarts_total{kind="nodes"}')).toBeDefined();
    const drops = text.split('\n').filter((l) => l.startsWith('ward_drops_total{') && l.includes('direction="ingress"') && /policy/i.test(l));
    expect(drops.length).toBeGreaterThan(0);
    expect(drops.reduce((n, l) => n + Number(l.split(' ').pop()), 0)).toBeGreaterThan(0);
    expect(text).toMatch(/^ward_datapath_packets_total\{endpoint="db",direction="ingress",reason="[^"]+"\} [1-9]/m);
    expect(text).toContain('ward_process_cpu_seconds_total');
    expect((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status).toBe(404);
  });
});
