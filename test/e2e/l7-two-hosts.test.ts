import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EndpointJson } from '../../agent/api/index.js';
import { EtcdCluster } from '../../agent/dev/etcd-cluster.js';
import { eventually } from './helpers/eventually.js';
import { TestHost } from './helpers/host.js';
import { curlBody, curlStatuses, KeepAliveClient, serverLog, startServer, writeFixtures } from './helpers/http-fixtures.js';
import { l4Policy, l7Policy } from './helpers/policies.js';

/** web accepts TCP 80 from client, L3/L4 only (no HTTP rules: web's ingress is not proxied). */
const WEB_FROM_CLIENT = l4Policy('web-from-client', 'web', 'client', 80);


// Two hosts (netns joined by a veth), one agent each, one etcd. client lives on host 1, web
// (a real HTTP server logging each request's peer) on host 2. client's egress is L7-proxied on
// host 1; the proxy's upstream leaves with the client's own address and port, so host 2 sees the
// client's identity (not remote-node) and its ingress policy "from app=client" admits it.
describe('L7 proxy across two hosts: the remote host sees the proxied client', () => {
  let etcd: EtcdCluster | undefined;
  const hosts: TestHost[] = [];
  const procs: ChildProcess[] = [];
  const clients: KeepAliveClient[] = [];
  const ns = { client: '', other: '', web: '' };
  const eps: Record<string, EndpointJson> = {};
  let fx = { server: '', client: '' };
  let webLog = '';

  const h1 = (): TestHost => hosts[0]!;
  const h2 = (): TestHost => hosts[1]!;
  const ep = (name: 'client' | 'other' | 'web'): EndpointJson => eps[name]!;

  const web = (path: string): string => `http://${ep('web').ip}${path}`;

  // cluster-wide: host 2 gets it from etcd
  const importPolicy = (name: string, text: string): Promise<void> => h1().importPolicy(name, text);
  const escaped = (ip: string): string => ip.replaceAll('.', '\\.');

  beforeAll(async () => {
    etcd = await EtcdCluster.start({ members: 1 });
    const root = `e2el7-${process.pid.toString(36)}/`;
    const a = new TestHost(etcd, { index: 5, root, nodeIp: '10.95.0.1' });
    const b = new TestHost(etcd, { index: 6, root, nodeIp: '10.95.0.2' });
    hosts.push(a, b);
    a.setup();
    b.setup();
    for (const h of [a, b]) h.strictRpFilter();
    TestHost.link(a, b);
    await Promise.all([a.startAgent(), b.startAgent()]);
    fx = writeFixtures(b.dir);
    const add = async (h: TestHost, name: 'client' | 'other' | 'web', labels: string): Promise<void> => {
      ns[name] = h.addNetns(name[0]!);
      eps[name] = JSON.parse(await h.wardOk(['endpoint', 'add', '--name', name, '--labels', labels, '--netns', ns[name], '-o', 'json'])) as EndpointJson;
    };
    await add(a, 'client', 'app=client');
    await add(a, 'other', 'app=other');
    await add(b, 'web', 'app=web');
    webLog = join(b.dir, 'web.log');
    procs.push(startServer(ns.web, fx.server, webLog, 80));
    if (!(await eventually(() => readFileSync(webLog, 'utf8').includes('READY'), 10_000, 20))) throw new Error('web server did not start');
  }, 90_000);

  afterAll(async () => {
    for (const c of clients) c.stop();
    for (const p of procs) if (p.exitCode === null && p.pid !== undefined) p.kill('SIGKILL');
    for (const h of hosts) await h.agent?.stop(5000);
    for (const h of hosts) h.destroy();
    await etcd?.close();
  });

  it('each host knows the other host\'s endpoints; a remote L3/L4 ingress policy admits client, not other', async () => {
    const [client, other, w] = [ep('client'), ep('other'), ep('web')];
    expect(await eventually(() => h1().ipcacheIdentity(w.ip) === w.identity && h2().ipcacheIdentity(client.ip) === client.identity && h2().ipcacheIdentity(other.ip) === other.identity, 10_000)).toBe(true);
    // No policy yet: routed across hosts, plain TCP, the server sees the client's address.
    expect(await eventually(() => curlStatuses(ns.client, [web('/plain')])[0] === '200 1', 10_000, 100)).toBe(true);
    expect(curlStatuses(ns.other, [web('/plain')])).toEqual(['200 1']);
    expect(serverLog(webLog).at(-2)).toMatch(new RegExp(`^GET /plain ${escaped(client.ip)}:\\d+$`));

    // Host 2 enforces "web from app=client" (imported on host 1) by the sender's identity.
    await importPolicy('web-from-client', WEB_FROM_CLIENT);
    expect(await eventually(() => curlStatuses(ns.other, [web('/other')], ['-m', '1'])[0] === '000 0', 10_000, 100)).toBe(true);
    expect(curlStatuses(ns.client, [web('/plain2')])).toEqual(['200 1']);
  });

  it('client egress L7 on host 1: denied requests get 403 there, allowed ones reach web on host 2 from the client\'s own IP', async () => {
    const client = ep('client');
    // client may send to web on TCP 80 only GET /ok/... (client's egress is proxied on its own host).
    await importPolicy('client-egress-l7', l7Policy('/ok/.*', { name: 'client-egress-l7', app: 'client', peer: 'web', direction: 'egress' }));
    // Applied once a denied path answers 403 (host 1's egress proxy, not the server).
    expect(await eventually(() => curlStatuses(ns.client, [web('/no')])[0] === '403 1', 15_000, 100)).toBe(true);
    writeFileSync(webLog, '');
    // Through the proxy, across hosts, admitted by host 2's "from app=client" rule.
    expect(curlBody(ns.client, web('/ok/1'))).toBe('hello GET /ok/1\n');
    expect(curlBody(ns.client, web('/no'))).toBe('Access denied\r\n');
    expect(curlStatuses(ns.client, [web('/ok/2'), web('/no'), web('/ok/3')])).toEqual(['200 1', '403 0', '200 0']);
    const seen = serverLog(webLog);
    expect(seen.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['GET /ok/1', 'GET /ok/2', 'GET /ok/3']);
    for (const l of seen) expect(l).toMatch(new RegExp(` ${escaped(client.ip)}:\\d+$`)); // the client, not host 1 (10.95.0.1)
    // The decisions were host 1's (client's egress); host 2 has no proxy on the way yet.
    expect(await eventually(() => h1().l7Events().some((e) => e['direction'] === 'egress' && e['verdict'] === 'denied' && e['path'] === '/no'), 5000, 50)).toBe(true);
    expect(h2().l7Events()).toEqual([]);
  });

  it('keep-alive across hosts: one connection, mixed verdicts, the remote server sees the client\'s address and port', async () => {
    const client = ep('client');
    writeFileSync(webLog, '');
    const c = new KeepAliveClient(ns.client, fx.client, ep('web').ip, 80);
    clients.push(c);
    const a = await c.request('/ok/ka');
    expect(a).toMatchObject({ status: 200, body: 'hello GET /ok/ka\n' });
    expect(await c.request('/no')).toMatchObject({ status: 403, localPort: a.localPort });
    expect(await c.request('/ok/ka2')).toMatchObject({ status: 200, body: 'hello GET /ok/ka2\n', localPort: a.localPort });
    c.send('END');
    expect(await c.next()).toEqual({ closed: true });
    expect(serverLog(webLog)).toEqual([`GET /ok/ka ${client.ip}:${a.localPort}`, `GET /ok/ka2 ${client.ip}:${a.localPort}`]);
  });

  it('chained across hosts: client egress proxy on host 1, web ingress proxy on host 2; both must allow', async () => {
    const [client, w] = [ep('client'), ep('web')];
    // web's ingress gets HTTP rules (proxied on host 2); the L3/L4-only rule goes, since on the
    // same port and peer it would allow every request.
    await importPolicy('web-l7', l7Policy('/ok/[0-9a-z]*'));
    await h1().wardOk(['policy', 'delete', 'web-from-client']);
    // /ok/x-y passes client's egress (/ok/.*) and is denied by web's ingress proxy on host 2.
    expect(await eventually(() => curlStatuses(ns.client, [web('/ok/x-y')])[0] === '403 1', 15_000, 100)).toBe(true);
    writeFileSync(webLog, '');
    expect(curlBody(ns.client, web('/ok/abc'))).toBe('hello GET /ok/abc\n');
    expect(curlBody(ns.client, web('/ok/x-y'))).toBe('Access denied\r\n');
    expect(curlStatuses(ns.client, [web('/ok/d'), web('/ok/x-y'), web('/no'), web('/ok/e')])).toEqual(['200 1', '403 0', '403 0', '200 0']);
    const seen = serverLog(webLog);
    expect(seen.map((l) => l.split(' ')[1])).toEqual(['/ok/abc', '/ok/d', '/ok/e']);
    for (const l of seen) expect(l).toMatch(new RegExp(` ${escaped(client.ip)}:\\d+$`));
    // Host 2's proxy judged /ok/x-y as coming from the client (its identity and address).
    const denied = (): Record<string, unknown> | undefined => h2().l7Events().find((e) => e['direction'] === 'ingress' && e['verdict'] === 'denied' && e['path'] === '/ok/x-y');
    expect(await eventually(() => denied() !== undefined, 5000, 50)).toBe(true);
    expect(denied()).toMatchObject({ endpoint: 'web', sourceIdentity: client.identity, destinationIdentity: w.identity, destination: `${w.ip}:80` });
    expect(denied()!['source']).toMatch(new RegExp(`^${escaped(client.ip)}:\\d+$`));
    // ...after host 1's proxy had allowed it; /no never left host 1.
    expect(h1().l7Events().some((e) => e['direction'] === 'egress' && e['verdict'] === 'allowed' && e['path'] === '/ok/x-y')).toBe(true);
    expect(h2().l7Events().some((e) => e['path'] === '/no')).toBe(false);

    // Keep-alive through both proxies: same connection, the server still sees the client's port.
    writeFileSync(webLog, '');
    const c = new KeepAliveClient(ns.client, fx.client, w.ip, 80);
    clients.push(c);
    const a = await c.request('/ok/k1');
    expect(a).toMatchObject({ status: 200, body: 'hello GET /ok/k1\n' });
    expect(await c.request('/ok/x-y')).toMatchObject({ status: 403, localPort: a.localPort });
    expect(await c.request('/ok/k2')).toMatchObject({ status: 200, localPort: a.localPort });
    c.send('END');
    expect(serverLog(webLog)).toEqual([`GET /ok/k1 ${client.ip}:${a.localPort}`, `GET /ok/k2 ${client.ip}:${a.localPort}`]);

    // Without policies, everything goes through again.
    await h1().wardOk(['policy', 'delete', 'web-l7']);
    await h1().wardOk(['policy', 'delete', 'client-egress-l7']);
    expect(await eventually(() => curlStatuses(ns.client, [web('/no')])[0] === '200 1' && curlStatuses(ns.client, [web('/ok/x-y')])[0] === '200 1', 15_000, 100)).toBe(true);
    expect(curlStatuses(ns.other, [web('/plain')])).toEqual(['200 1']);
  });
});
