import type { ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EndpointJson, MonitorEventJson, MonitorL7EventJson } from '../../agent/api/index.js';
import { EtcdCluster } from '../../agent/dev/etcd-cluster.js';
import { sh } from '../datapath/helpers/sh.js';
import { freeLoopbackPort } from '../../agent/dev/free-port.js';
import { eventually } from './helpers/eventually.js';
import { metricSample } from './helpers/metrics.js';
import { startMonitor } from './helpers/monitor-process.js';
import { l7Policy } from './helpers/policies.js';
import { TestHost, type CliResult } from './helpers/host.js';
import { curlBody, curlStatuses, KeepAliveClient, serverLog, startServer, writeFixtures } from './helpers/http-fixtures.js';



const EGRESS_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: client-egress
spec:
  endpointSelector:
    matchLabels: { app: client }
  egress:
    - toEndpoints:
        - matchLabels: { app: api }
      toPorts:
        - ports: [{ port: "80", protocol: TCP }]
          rules:
            http:
              - { method: GET, path: "/eg/.*" }
    - toEndpoints:
        - matchLabels: { app: web }
      toPorts:
        - ports: [{ port: "80", protocol: TCP }]
`;

// One host with its agent process, three endpoints (client, web, api), real HTTP servers in
// web and api logging every request that reaches them, curl and a keep-alive client in client.
describe('L7 HTTP policy through the in-agent transparent proxy', () => {
  let etcd: EtcdCluster | undefined;
  let host: TestHost | undefined;
  const procs: ChildProcess[] = [];
  const clients: KeepAliveClient[] = [];
  const ns = { client: '', web: '', api: '' };
  const ip = { web: '', api: '' };
  const eps: Record<string, EndpointJson> = {};
  let metricsPort = 0;
  let fx = { server: '', client: '' };
  let logs = { web: '', api: '' };

  const curl = (urls: string[], extra: string[] = []): string[] => curlStatuses(ns.client, urls, extra);
  const body = (url: string): string => curlBody(ns.client, url);

  beforeAll(async () => {
    etcd = await EtcdCluster.start({ members: 1 });
    host = new TestHost(etcd);
    host.setup();
    host.strictRpFilter(); // steered packets re-enter through the veth they left: the agent loosens it
    metricsPort = await freeLoopbackPort();
    appendFileSync(join(host.dir, 'agent.yaml'), `metrics-address: 127.0.0.1:${metricsPort}\n`);
    await host.startAgent();
    expect(host.sysctl('net.ipv4.conf.all.rp_filter')).toBe('2');
    expect(host.sysctl('net.ipv4.conf.default.rp_filter')).toBe('2');
    const h = host;
    fx = writeFixtures(h.dir);
    const add = async (name: string, labels: string): Promise<EndpointJson> => {
      const netns = h.addNetns(name[0]!);
      (ns as Record<string, string>)[name] = netns;
      const ep = JSON.parse(await h.wardOk(['endpoint', 'add', '--name', name, '--labels', labels, '--netns', netns, '-o', 'json'])) as EndpointJson;
      eps[name] = ep;
      return ep;
    };
    await add('client', 'app=client');
    ip.web = (await add('web', 'app=web')).ip;
    ip.api = (await add('api', 'app=api')).ip;
    logs = { web: join(h.dir, 'web.log'), api: join(h.dir, 'api.log') };
    procs.push(startServer(ns.web, fx.server, logs.web, 80), startServer(ns.api, fx.server, logs.api, 80));
    for (const l of Object.values(logs)) {
      if (!(await eventually(() => readFileSync(l, 'utf8').includes('READY'), 10_000, 20))) throw new Error(`server for ${l} did not start`);
    }
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.stop();
    for (const p of procs) if (p.exitCode === null && p.pid !== undefined) p.kill('SIGKILL');
    await host?.agent?.stop(5000);
    host?.destroy();
    await etcd?.close();
  });

  it('ingress rules: allowed requests reach the server, denied ones get 403 and never arrive', async () => {
    expect(curl([`http://${ip.web}/public/x`])).toEqual(['200 1']); // no policy yet: plain L4
    await host!.importPolicy('web-l7', l7Policy('/public/.*'));
    // Applied once a denied path answers 403 (the proxy, not the server).
    expect(await eventually(() => curl([`http://${ip.web}/private`])[0] === '403 1', 10_000, 50)).toBe(true);
    writeFileSync(logs.web, '');
    expect(body(`http://${ip.web}/public/a`)).toBe('hello GET /public/a\n');
    expect(body(`http://${ip.web}/private`)).toBe('Access denied\r\n');
    expect(curl([`http://${ip.web}/public/b`], ['-X', 'POST'])).toEqual(['403 1']);
    expect(curl([`http://${ip.web}/public/c?q=1`])).toEqual(['200 1']);
    expect(serverLog(logs.web).map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['GET /public/a', 'GET /public/c?q=1']);
    // Every decision is an event in the agent's log (debug level in tests).
    expect(await eventually(() => host!.l7Events().some((e) => e['verdict'] === 'denied' && e['path'] === '/private' && e['direction'] === 'ingress'), 5000, 50)).toBe(true);
  });

  it('keep-alive connection with mixed allowed and denied requests', async () => {
    writeFileSync(logs.web, '');
    const out = curl([`http://${ip.web}/public/1`, `http://${ip.web}/private/2`, `http://${ip.web}/public/3`, `http://${ip.web}/nope`]);
    // One connection (num_connects 0 after the first) carries all four.
    expect(out).toEqual(['200 1', '403 0', '200 0', '403 0']);
    const seen = serverLog(logs.web);
    expect(seen.map((l) => l.split(' ')[1])).toEqual(['/public/1', '/public/3']);
    expect(new Set(seen.map((l) => l.split(' ')[2])).size).toBe(1); // one upstream connection
  });

  it('an unparseable request gets 400 and is not passed through', async () => {
    writeFileSync(logs.web, '');
    const js = `const s=require('net').connect(80,'${ip.web}',()=>s.write('BROKEN REQUEST\\r\\n\\r\\n'));let b='';s.on('data',d=>b+=d);s.on('close',()=>console.log(b.split('\\r\\n')[0]))`;
    expect(sh('nsenter', [`--net=/run/netns/${ns.client}`, process.execPath, '-e', js]).trim()).toBe('HTTP/1.1 400 Bad Request');
    expect(serverLog(logs.web)).toEqual([]);
  });

  it('ward policy trace agrees with the proxy', async () => {
    for (const [method, path, status] of [
      ['GET', '/public/x', 200],
      ['GET', '/private', 403],
      ['DELETE', '/public/x', 403],
    ] as const) {
      const r = await host!.ward(['policy', 'trace', '--from', 'client', '--to', 'web', '--dport', '80', '--http-method', method, '--http-path', path, '-o', 'json']);
      const verdict = (JSON.parse(r.out) as { verdict: string }).verdict;
      expect(verdict).toBe(status === 200 ? 'allowed' : 'denied');
      expect(curl([`http://${ip.web}${path}`], ['-X', method])).toEqual([`${status} 1`]);
    }
  });

  it('a policy change applies to the next request on an open connection', async () => {
    const c = new KeepAliveClient(ns.client, fx.client, ip.web, 80);
    clients.push(c);
    const first = await c.request('/admin');
    expect(first.status).toBe(403);
    await host!.importPolicy('web-l7', l7Policy('/(public/.*|admin)'));
    expect(await eventually(() => curl([`http://${ip.web}/admin`])[0] === '200 1', 10_000, 50)).toBe(true);
    const second = await c.request('/admin');
    expect(second).toMatchObject({ status: 200, body: 'hello GET /admin\n', localPort: first.localPort });
    // The proxy's upstream leaves with the client's own address and port: the server sees the client.
    expect(serverLog(logs.web).at(-1)).toBe(`GET /admin ${eps['client']!.ip}:${first.localPort}`);
    c.send('END');
  });

  it('egress rules on the client side', async () => {
    await host!.importPolicy('client-egress', EGRESS_POLICY);
    expect(await eventually(() => curl([`http://${ip.api}/other`])[0] === '403 1', 10_000, 50)).toBe(true);
    writeFileSync(logs.api, '');
    expect(body(`http://${ip.api}/eg/1`)).toBe('hello GET /eg/1\n');
    expect(curl([`http://${ip.api}/eg/2`, `http://${ip.api}/secret`, `http://${ip.api}/eg/3`])).toEqual(['200 1', '403 0', '200 0']);
    expect(serverLog(logs.api).map((l) => l.split(' ')[1])).toEqual(['/eg/1', '/eg/2', '/eg/3']);
    expect(await eventually(() => host!.l7Events().some((e) => e['direction'] === 'egress' && e['verdict'] === 'denied' && e['path'] === '/secret'), 5000, 50)).toBe(true);
    // The server sees the client's address and port, not the host's.
    const c = new KeepAliveClient(ns.client, fx.client, ip.api, 80);
    clients.push(c);
    const a = await c.request('/eg/peer');
    expect(a.status).toBe(200);
    c.send('END');
    expect(serverLog(logs.api).at(-1)).toBe(`GET /eg/peer ${eps['client']!.ip}:${a.localPort}`);
  });

  it('egress rules towards a local endpoint with ingress rules: one proxy applies both, the server sees the client', async () => {
    // api accepts from client only GET on /eg/ plus letters and digits.
    await host!.importPolicy('api-l7', l7Policy('/eg/[0-9a-z]*', { name: 'api-l7', app: 'api' }));
    // The client's egress rules allow /eg/no-way, api's ingress rules do not.
    expect(await eventually(() => curl([`http://${ip.api}/eg/no-way`])[0] === '403 1', 10_000, 50)).toBe(true);
    writeFileSync(logs.api, '');
    const c = new KeepAliveClient(ns.client, fx.client, ip.api, 80);
    clients.push(c);
    const a = await c.request('/eg/chain');
    expect(a).toMatchObject({ status: 200, body: 'hello GET /eg/chain\n' });
    expect(await c.request('/eg/no-way')).toMatchObject({ status: 403, localPort: a.localPort });
    expect(await c.request('/secret')).toMatchObject({ status: 403, localPort: a.localPort });
    expect(await c.request('/eg/again')).toMatchObject({ status: 200, localPort: a.localPort });
    c.send('END');
    expect(serverLog(logs.api)).toEqual([`GET /eg/chain ${eps['client']!.ip}:${a.localPort}`, `GET /eg/again ${eps['client']!.ip}:${a.localPort}`]);
    expect(await eventually(() => host!.l7Events().some((e) => e['path'] === '/eg/no-way' && e['reason'] === 'ingress of api: no HTTP rule matches'), 5000, 50)).toBe(true);
    await host!.wardOk(['policy', 'delete', 'api-l7']);
    expect(await eventually(() => curl([`http://${ip.api}/eg/no-way`])[0] === '200 1', 10_000, 50)).toBe(true);
  });

  it('ward monitor --type l7 shows every request decision with identities, and /metrics counts them', async () => {
    const h = host!;
    const { client, web, api } = eps as Record<'client' | 'web' | 'api', EndpointJson>;
    const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const before = await scrape();
    // A real `ward monitor` process, stopped with SIGINT like an operator's Ctrl-C.
    const mon = startMonitor(h.socket, ['--type', 'l7']);
    const { events } = mon;
    const l7 = (path: string): MonitorL7EventJson | undefined => events.find((e): e is MonitorL7EventJson => e.type === 'l7' && e.path === path);
    try {
      // The monitor subscribes asynchronously: keep asking until one request shows up.
      const subscribed = await eventually(() => (curl([`http://${ip.web}/public/ready`]), l7('/public/ready') !== undefined), 15_000, 100);
      expect(subscribed, mon.err()).toBe(true);
      expect(curl([`http://${ip.web}/public/mon`, `http://${ip.web}/private/mon`])).toEqual(['200 1', '403 0']);
      expect(curl([`http://${ip.api}/eg/mon`, `http://${ip.api}/secret/mon`])).toEqual(['200 1', '403 0']);
      const paths = ['/public/mon', '/private/mon', '/eg/mon', '/secret/mon'];
      expect(await eventually(() => paths.every((p) => l7(p) !== undefined), 5000, 20)).toBe(true);
      const ingress = { type: 'l7', endpoint: 'web', endpointId: web.id, identity: web.identity, direction: 'ingress', method: 'GET', host: ip.web, sourceIdentity: client.identity, destinationIdentity: web.identity, destination: `${web.ip}:80` };
      expect(l7('/public/mon')).toMatchObject({ ...ingress, verdict: 'allowed' });
      expect(l7('/public/mon')!.status).toBeUndefined(); // forwarded: the server answered
      expect(l7('/private/mon')).toMatchObject({ ...ingress, verdict: 'denied', status: 403 });
      const egress = { type: 'l7', endpoint: 'client', endpointId: client.id, identity: client.identity, direction: 'egress', method: 'GET', sourceIdentity: client.identity, destinationIdentity: api.identity, destination: `${api.ip}:80` };
      expect(l7('/eg/mon')).toMatchObject({ ...egress, verdict: 'allowed' });
      expect(l7('/secret/mon')).toMatchObject({ ...egress, verdict: 'denied', status: 403 });
      for (const p of paths) {
        const e = l7(p)!;
        expect(e.source).toMatch(new RegExp(`^${client.ip.replaceAll('.', '\\.')}:\\d+$`));
        expect(e.sourceLabels?.join(',')).toMatch(/app=client/);
        expect(e.destinationLabels?.join(',')).toMatch(p.startsWith('/eg') || p.startsWith('/secret') ? /app=api/ : /app=web/);
        expect(e.reason).not.toBe('');
      }
      expect(events.every((e) => e.type === 'l7')).toBe(true);
      expect(await mon.interrupt()).toBe(0);
      expect(mon.err()).toBe('');
    } finally {
      mon.kill();
    }
    // The proxy's own counters, read at scrape time: at least the requests sent above.
    const after = await scrape();
    const grew = (series: string): number => (metricSample(after, series) ?? 0) - (metricSample(before, series) ?? 0);
    const both = (verdict: string, f: (series: string) => number): number => f(`ward_l7_requests_total{direction="ingress",verdict="${verdict}"}`) + f(`ward_l7_requests_total{direction="egress",verdict="${verdict}"}`);
    expect(both('allowed', grew)).toBeGreaterThanOrEqual(3);
    expect(both('denied', grew)).toBeGreaterThanOrEqual(2);
    expect(grew('ward_l7_requests_total{direction="egress",verdict="denied"}')).toBeGreaterThanOrEqual(1); // the client's egress rules
    expect(grew('ward_l7_proxy_connections_total')).toBeGreaterThanOrEqual(3);
    expect(both('invalid', (series) => metricSample(after, series) ?? 0)).toBeGreaterThanOrEqual(1); // the unparseable request earlier
    expect(metricSample(after, 'ward_l7_proxy_listeners')).toBeGreaterThanOrEqual(2); // web ingress, client egress
    expect(metricSample(after, 'ward_l7_proxy_connections_active')).toBeGreaterThanOrEqual(0);
    expect(metricSample(after, 'ward_l7_upstream_errors_total')).toBeGreaterThanOrEqual(0);
  });

  it('ward monitor --type l7 --endpoint NAME --count N: only that endpoint, N events, json or text', async () => {
    const h = host!;
    let done: CliResult | undefined;
    const mon = h.ward(['monitor', '--type', 'l7', '--endpoint', 'client', '--count', '2', '-o', 'json']).then((r) => (done = r));
    // Requests to web are judged by web's ingress proxy: not events of the client endpoint.
    for (let i = 0; i < 100 && done === undefined; i++) {
      curl([`http://${ip.web}/public/n${i}`, `http://${ip.api}/eg/n${i}`]);
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = await mon;
    expect(r.code, r.err).toBe(0);
    const got = r.out.trim().split('\n').map((l) => JSON.parse(l) as MonitorEventJson);
    expect(got).toHaveLength(2);
    for (const e of got) expect(e).toMatchObject({ type: 'l7', endpoint: 'client', direction: 'egress', verdict: 'allowed', path: expect.stringMatching(/^\/eg\/n\d+$/) as unknown });

    done = undefined;
    const text = h.ward(['monitor', '--type', 'l7', '--endpoint', String(eps['web']!.id), '--count', '1']).then((x) => (done = x));
    for (let i = 0; i < 100 && done === undefined; i++) {
      curl([`http://${ip.web}/private/t${i}`]);
      await new Promise((res) => setTimeout(res, 50));
    }
    const t = await text;
    expect(t.code, t.err).toBe(0);
    expect(t.out).toMatch(/^HTTP DENIED ingress endpoint web \(\d+\): GET http:\/\/[\d.]+\/private\/t\d+ => 403, [\d.]+:\d+ \(identity \d+ [^)]*app=client[^)]*\) -> [\d.]+:80 \(identity \d+ [^)]*app=web[^)]*\): \S/);
    expect(t.out.trim().split('\n')).toHaveLength(1);
    const bad = await h.ward(['monitor', '--type', 'http']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('drop, policy-verdict, l7');
  });

  it('agent restart while a keep-alive connection is idle: the connection ends cleanly, L7 policy works again after', async () => {
    const c = new KeepAliveClient(ns.client, fx.client, ip.web, 80);
    clients.push(c);
    expect((await c.request('/public/before')).status).toBe(200);
    await host!.agent!.stop(10_000);
    // The proxy lives in the agent: its connections end with it (a FIN, not a hang).
    expect(await c.next()).toEqual({ closed: true });
    // Meanwhile the steering entries stay: new connections fail closed (no listener), never bypass.
    expect(curl([`http://${ip.web}/private`], ['-m', '1'])[0]).toBe('000 0'); // the SYN is dropped
    writeFileSync(logs.web, '');
    await host!.startAgent();
    expect(await eventually(() => curl([`http://${ip.web}/private`])[0] === '403 1', 10_000, 50)).toBe(true);
    expect(curl([`http://${ip.web}/public/after`])).toEqual(['200 1']);
    expect(serverLog(logs.web).map((l) => l.split(' ')[1])).toEqual(['/public/after']);
  });
});
