// L7 proxy benchmark: small GET requests over keep-alive connections from one endpoint to
// another through a real agent's transparent proxy (ingress HTTP rules on the server: the
// datapath steers each connection to the proxy with bpf_sk_assign), against the same requests
// to an identical server with no policy (the floor), measured in the same run.
// Run as root: npm run bench:l7. Last stdout line: one JSON object. With `-- --relay`, the agent is
// then stopped and a C relay (bpf/bench/l7-relay.c: no HTTP, no Node) takes the proxy's port, so
// the same run also measures the floor of a proxy at that position (relay_* fields);
// `-- --relay=node` does the same with a byte relay in Node (test/bench/l7-node-relay.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EndpointJson } from '../../agent/api/index.js';
import { EtcdCluster } from '../../agent/dev/etcd-cluster.js';
import { eventually } from '../e2e/helpers/eventually.js';
import { TestHost } from '../e2e/helpers/host.js';
import { curlStatuses } from '../e2e/helpers/http-fixtures.js';
import { l7Policy } from '../e2e/helpers/policies.js';

const CONNECTIONS = 8;
const RELAY_ARG = process.argv.find((a) => a === '--relay' || a.startsWith('--relay='));
const RELAY = RELAY_ARG !== undefined;
const NODE_RELAY = RELAY_ARG === '--relay=node';
/** The relay's command line, without the port. */
const RELAY_CMD = NODE_RELAY
  ? [process.execPath, '--import', 'tsx', join(import.meta.dirname, 'l7-node-relay.ts')]
  : [join(import.meta.dirname, '..', '..', 'bpf', 'build', 'l7-relay')];
const ROUND_MS = 2000;
const ROUNDS = 5;

const SERVER = `require('node:http').createServer((req, res) => res.end('ok')).listen(80, '0.0.0.0', () => console.log('READY'));`;

/** Keep-alive load: CONNECTIONS sockets, one request in flight each, latency per request. */
const LOAD = `
const net = require('node:net');
const [host, conns, ms] = process.argv.slice(2).map((v, i) => (i === 0 ? v : Number(v)));
const lat = [];
let done = 0;
const end = Date.now() + ms;
let open = conns;
const req = Buffer.from('GET /bench HTTP/1.1\\r\\nHost: ' + host + '\\r\\n\\r\\n');
for (let c = 0; c < conns; c++) {
  const s = net.connect(80, host);
  s.setNoDelay(true);
  let buf = '';
  let t0 = 0n;
  const send = () => { t0 = process.hrtime.bigint(); s.write(req); };
  s.on('connect', send);
  s.on('data', (d) => {
    buf += d.toString('latin1');
    const i = buf.indexOf('\\r\\n\\r\\n');
    if (i < 0) return;
    const len = Number((/content-length: *(\\d+)/i.exec(buf) || [0, 0])[1]);
    if (buf.length < i + 4 + len) return;
    if (!buf.startsWith('HTTP/1.1 200')) { console.error('bad answer ' + buf.slice(0, 40)); process.exit(1); }
    buf = buf.slice(i + 4 + len);
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    done++;
    if (Date.now() < end) send(); else { s.end(); if (--open === 0) report(); }
  });
  s.on('error', (e) => { console.error(e.message); process.exit(1); });
}
const t = Date.now();
function report() {
  lat.sort((a, b) => a - b);
  const p = (q) => lat[Math.min(lat.length - 1, Math.floor(lat.length * q))];
  const cpu = process.cpuUsage();
  console.log(JSON.stringify({ rps: done / ((Date.now() - t) / 1000), p50: p(0.5), p99: p(0.99), n: done, clientUs: (cpu.user + cpu.system) / done }));
}
`;


interface Round {
  rps: number;
  p50: number;
  p99: number;
  n: number;
  /** CPU time per request of the agent (proxy) and of the server, microseconds. */
  agentUs?: number;
  serverUs?: number;
  /** CPU time per request of the load generator (whole process, startup included), microseconds. */
  clientUs?: number;
  /** The agent's user-mode share of agentUs (the rest is kernel time), microseconds. */
  agentUserUs?: number;
}

/** utime + stime of a process, microseconds (clock ticks of 10 ms); utime alone with userOnly; 0 once it is gone. */
function cpuUs(pid: number | undefined, userOnly = false): number {
  if (pid === undefined) return 0;
  let f: string[];
  try {
    f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  } catch {
    return 0;
  }
  return (Number(f[11]) + (userOnly ? 0 : Number(f[12]))) * 10_000;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const etcd = await EtcdCluster.start({ members: 1 });
  const host = new TestHost(etcd);
  const procs: ChildProcess[] = [];
  try {
    host.setup();
    // Debug logging writes a line per request: measure the proxy, not the logger.
    const cfg = join(host.dir, 'agent.yaml');
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('log-level: debug', 'log-level: info'));
    await host.startAgent();
    const add = async (name: string, labels: string): Promise<{ ip: string; ns: string }> => {
      const ns = host.addNetns(name[0]!);
      const ep = JSON.parse(await host.wardOk(['endpoint', 'add', '--name', name, '--labels', labels, '--netns', ns, '-o', 'json'])) as EndpointJson;
      return { ip: ep.ip, ns };
    };
    const client = await add('client', 'app=client');
    const web = await add('web', 'app=web');
    const direct = await add('direct', 'app=direct');
    const load = join(host.dir, 'load.cjs');
    writeFileSync(load, LOAD);
    for (const ep of [web, direct]) {
      const p = spawn('nsenter', [`--net=/run/netns/${ep.ns}`, process.execPath, '-e', SERVER], { stdio: ['ignore', 'pipe', 'ignore'] });
      procs.push(p);
      await new Promise<void>((resolve) => p.stdout.once('data', () => resolve()));
    }
    await host.importPolicy('policy', l7Policy('/(bench|health)'));
    if (!(await eventually(() => curlStatuses(client.ns, [`http://${web.ip}/denied`])[0] === '403 1', 10_000, 50))) throw new Error('the L7 policy did not take effect');
    // The process in the proxy's place: the agent, or the relay once it took over.
    let proxyPid = (): number | undefined => host.agent?.pid;
    const run = (ip: string, ms: number): Round => {
      const server = ip === web.ip ? procs[0] : procs[1];
      const a0 = cpuUs(proxyPid());
      const u0 = cpuUs(proxyPid(), true);
      const s0 = cpuUs(server?.pid);
      const r = spawnSync('nsenter', [`--net=/run/netns/${client.ns}`, process.execPath, load, ip, String(CONNECTIONS), String(ms)], { encoding: 'utf8', timeout: ms + 20_000 });
      if (r.status !== 0) throw new Error(`load generator failed: ${r.stderr}`);
      const round = JSON.parse(r.stdout.trim().split('\n').pop()!) as Round;
      return { ...round, agentUs: (cpuUs(proxyPid()) - a0) / round.n, agentUserUs: (cpuUs(proxyPid(), true) - u0) / round.n, serverUs: (cpuUs(server?.pid) - s0) / round.n };
    };
    /** ROUNDS rounds through whatever is in the proxy's place, each after a direct one. */
    const interleaved = (): { plain: Round[]; via: Round[] } => {
      const plain: Round[] = [];
      const via: Round[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        plain.push(run(direct.ip, ROUND_MS));
        via.push(run(web.ip, ROUND_MS));
      }
      return { plain, via };
    };
    run(web.ip, 500); // warm-up (JIT in proxy, server and client)
    run(direct.ip, 500);
    const { plain, via: proxied } = interleaved();
    const m = (rs: Round[], k: keyof Round): number => median(rs.map((r) => r[k] ?? 0));
    let relayed: Round[] = [];
    let plainForRelay: Round[] = [];
    if (RELAY) {
      // The steering entries are pinned: with the agent stopped (its listeners closed), the
      // relay listening on the same port gets the steered connections.
      const ss = spawnSync('nsenter', [`--net=/run/netns/${host.hostNs}`, 'ss', '-Hltn'], { encoding: 'utf8' }).stdout;
      const port = /127\.0\.0\.1:(\d+)/.exec(ss)?.[1];
      if (port === undefined) throw new Error(`no proxy listener in the host namespace:\n${ss}`);
      await host.agent?.stop(10_000);
      const relay = spawn('nsenter', [`--net=/run/netns/${host.hostNs}`, ...RELAY_CMD, port], { stdio: ['ignore', 'pipe', 'inherit'] });
      procs.push(relay);
      await new Promise<void>((resolve) => relay.stdout.once('data', () => resolve()));
      // nsenter execs the relay: same pid.
      proxyPid = () => relay.pid;
      run(web.ip, 500);
      ({ plain: plainForRelay, via: relayed } = interleaved());
    }
    const row = (label: string, rs: Round[]): string[] => [label, m(rs, 'rps').toFixed(0), m(rs, 'p50').toFixed(3), m(rs, 'p99').toFixed(3), m(rs, 'n').toFixed(0), m(rs, 'agentUs').toFixed(1), m(rs, 'agentUserUs').toFixed(1), m(rs, 'serverUs').toFixed(1), m(rs, 'clientUs').toFixed(1)];
    const rows = [
      ['path', 'rps (median)', 'p50 ms', 'p99 ms', 'requests/round', 'proxy us/req', 'proxy user us', 'server us/req', 'client us/req'],
      row('direct (no policy)', plain),
      row('through L7 proxy', proxied),
    ];
    if (RELAY) rows.push(row(NODE_RELAY ? 'Node relay (no HTTP)' : 'C relay (no HTTP)', relayed));
    console.log(`L7 proxy: ${CONNECTIONS} keep-alive connections, 1 request in flight each, ${ROUNDS} rounds of ${ROUND_MS} ms (medians)`);
    for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(20) : c.padStart(14))).join(''));
    const out = {
      bench: 'l7',
      connections: CONNECTIONS,
      proxy_rps: Math.round(m(proxied, 'rps')),
      direct_rps: Math.round(m(plain, 'rps')),
      rps_ratio: Number((m(proxied, 'rps') / m(plain, 'rps')).toFixed(3)),
      proxy_p50_ms: Number(m(proxied, 'p50').toFixed(3)),
      direct_p50_ms: Number(m(plain, 'p50').toFixed(3)),
      proxy_p99_ms: Number(m(proxied, 'p99').toFixed(3)),
      direct_p99_ms: Number(m(plain, 'p99').toFixed(3)),
      added_p99_ms: Number((m(proxied, 'p99') - m(plain, 'p99')).toFixed(3)),
      proxy_cpu_us_per_req: Number(m(proxied, 'agentUs').toFixed(1)),
      proxy_user_cpu_us_per_req: Number(m(proxied, 'agentUserUs').toFixed(1)),
      direct_server_cpu_us_per_req: Number(m(plain, 'serverUs').toFixed(1)),
      client_cpu_us_per_req: Number(m(plain, 'clientUs').toFixed(1)),
      proxied_client_cpu_us_per_req: Number(m(proxied, 'clientUs').toFixed(1)),
      server_cpu_us_per_req: Number(m(proxied, 'serverUs').toFixed(1)),
      // The relay's rounds are interleaved with direct rounds of their own (after the agent's).
      ...(RELAY
        ? {
            relay: NODE_RELAY ? 'node' : 'c',
            relay_rps: Math.round(m(relayed, 'rps')),
            relay_ratio: Number((m(relayed, 'rps') / m(plainForRelay, 'rps')).toFixed(3)),
            relay_cpu_us_per_req: Number(m(relayed, 'agentUs').toFixed(1)),
            relay_p99_ms: Number(m(relayed, 'p99').toFixed(3)),
            proxy_vs_relay: Number((m(proxied, 'rps') / m(relayed, 'rps')).toFixed(3)),
          }
        : {}),
    };
    console.log(JSON.stringify(out));
  } finally {
    for (const p of procs) if (p.exitCode === null && p.pid !== undefined) p.kill('SIGKILL');
    await host.agent?.stop(5000);
    host.destroy();
    await etcd.close();
  }
}

await main();
