// Chaos suite (issue 7): a `ward dev` cluster (3 etcd members, N hosts, long-lived workloads)
// under a seeded fault schedule (etcd member kill -9 incl. the leader, quorum loss longer than the
// agents' lease TTL, agent kill -9, compaction + defrag) while endpoints churn and policies change;
// a prober checks real TCP between the long-lived workloads against the expected matrix.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_ROOT, KeySchema, decodeValue, encodeValue } from '../../kvstore-schema/index.js';
import { ApiClient } from '../../agent/api/client.js';
import type { StatusJson } from '../../agent/api/types.js';
import { renderTable } from '../../agent/cli/output.js';
import { policyValueFromText } from '../../agent/daemon/policy-values.js';
import { etcdEndpoints, killMember, spawnMember, waitMemberHealthy } from '../../agent/dev/dev-etcd.js';
import { loadState, saveState, type DevBases, type DevState } from '../../agent/dev/dev-state.js';
import { expectedMatrix, probeMatrix, type Matrix, type MatrixSource, type MatrixTarget } from '../../agent/dev/matrix.js';
import { isAlive, spawnDetached, stopProc } from '../../agent/dev/procs.js';
import { netnsPath } from '../../agent/dev/topology.js';
import { KvClient, silentLogger } from '../../agent/kvstore/index.js';
import { parsePolicy } from '../../agent/policy/index.js';

const REPO = join(import.meta.dirname, '..', '..');
const ENTRY = join(REPO, 'test', 'e2e', 'helpers', 'ward-main.ts');
/** The dev agents' identity lease TTL (agent/daemon/agent.ts default, not configurable in the agent file). */
export const AGENT_LEASE_TTL_S = 15;

export type FaultKind = 'etcd-kill' | 'etcd-kill-leader' | 'quorum-loss' | 'agent-kill' | 'compact-defrag';

export interface ChaosOptions {
  readonly seed: number;
  readonly durationS: number;
  readonly hosts: number;
  /** Fault kinds to draw from (default: all). Each appears once before any repeats. */
  readonly faults?: readonly FaultKind[];
  readonly log?: (line: string) => void;
}

export interface ChaosResult {
  readonly chaos: true;
  readonly seed: number;
  readonly duration_s: number;
  readonly faults: number;
  readonly faults_by_kind: Record<string, number>;
  readonly probes: number;
  readonly violations: number;
  readonly denied_passed: number;
  readonly allowed_failed: number;
  readonly churn_adds: number;
  readonly churn_deletes: number;
  readonly churn_errors: number;
  readonly policy_changes: number;
  readonly duplicate_identities: number;
  readonly dangling_references: number;
  readonly agent_crashes: number;
  readonly converge_failures: number;
  readonly converge_p50_ms: number;
  readonly converge_p99_ms: number;
  /** null when no quorum loss ran. */
  readonly etcd_req_per_s_per_agent_while_down: number | null;
  readonly agent_rss_mb_max: number;
}

/** mulberry32: small, seedable, reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function clusterFile(hosts: number): string {
  const hs = Array.from({ length: hosts }, (_, i) => `h${i + 1}`);
  const h = (i: number): string => hs[i % hs.length]!;
  return `name: chaos
hosts: [${hs.join(', ')}]
network:
  node-cidr: 10.93.0.0/24
  endpoint-cidr: 10.230.0.0/16
policy: policy.yaml
workloads:
  - { name: front, host: ${h(0)}, labels: { app: web, tier: front }, command: "socat TCP-LISTEN:7001,fork,reuseaddr SYSTEM:'echo f'", ports: [7001] }
  - { name: db, host: ${h(1)}, labels: { app: db, tier: back }, command: "socat TCP-LISTEN:7002,fork,reuseaddr SYSTEM:'echo d'", ports: [7002] }
  - { name: dev, host: ${h(2)}, labels: { app: web, env: dev }, command: "socat TCP-LISTEN:7003,fork,reuseaddr SYSTEM:'echo v'", ports: [7003] }
  - { name: db2, host: ${h(2)}, labels: { app: db, tier: back }, command: "socat TCP-LISTEN:7002,fork,reuseaddr SYSTEM:'echo e'", ports: [7002] }
`;
}

// db (both replicas, one identity) accepts front on 7002 only; nothing from env=dev reaches front.
const POLICY = `- endpointSelector: { matchLabels: { app: db } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: web, tier: front } }]
      toPorts: [{ ports: [{ port: "7002", protocol: TCP }] }]
- endpointSelector: { matchLabels: { tier: front } }
  ingressDeny:
    - fromEndpoints: [{ matchLabels: { env: dev } }]
  ingress:
    - fromEndpoints: [{}]
`;

// Changed during the run; selects only churn endpoints, so the long-lived matrix stays fixed.
const churnPolicy = (n: number): string => `- endpointSelector: { matchLabels: { churn: pool${n % 3} } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: web } }]
      toPorts: [{ ports: [{ port: "${8000 + n}", protocol: TCP }] }]
`;

interface Run {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

function ward(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('close', (code) => resolve({ code, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString() }));
  });
}

function etcdctl(s: DevState, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('etcdctl', [`--endpoints=${etcdEndpoints(s).join(',')}`, '--command-timeout=3s', ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 15_000 }, (err, stdout) => {
      if (err !== null) reject(new Error(`etcdctl ${args.join(' ')}: ${err.message}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

/** Index of the leader member, or undefined (no quorum, or unreadable). */
async function leaderIndex(s: DevState): Promise<number | undefined> {
  try {
    const st = JSON.parse(await etcdctl(s, ['endpoint', 'status', '-w', 'json'])) as { Endpoint: string; Status: { header: { member_id: number }; leader: number } }[];
    const lead = st.find((e) => e.Status.header.member_id === e.Status.leader);
    if (lead === undefined) return undefined;
    const i = etcdEndpoints(s).findIndex((ep) => lead.Endpoint.endsWith(ep));
    return i >= 0 ? i : undefined;
  } catch {
    return undefined;
  }
}

function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
}

/** Identity invariants read straight from etcd with the schema. */
export async function checkIdentities(kv: KvClient, schema: KeySchema): Promise<{ duplicates: number; dangling: number; details: string[] }> {
  const ids = new Map<number, string>();
  for (const e of (await kv.listPrefix(schema.ids)).kvs) {
    const v = decodeValue('identity', e.value);
    ids.set(v.id, JSON.stringify(v.labels));
  }
  const idx = (await kv.listPrefix(schema.labels)).kvs.map((e) => ({ key: e.key.toString(), id: decodeValue('identity-index', e.value).id }));
  const refs = (await kv.listPrefix(schema.refs)).kvs.map((e) => e.key.toString());
  const eps = (await kv.listPrefix(schema.endpoints)).kvs.map((e) => decodeValue('endpoint', e.value));
  const details: string[] = [];
  let duplicates = 0;
  let dangling = 0;
  const byId = new Map<number, string[]>();
  for (const i of idx) byId.set(i.id, [...(byId.get(i.id) ?? []), i.key]);
  for (const [id, keys] of byId) if (keys.length > 1) {
    duplicates++;
    details.push(`identity ${id} shared by ${keys.join(' | ')}`);
  }
  const labelKeys = new Set(idx.map((i) => i.key));
  for (const i of idx) if (!ids.has(i.id)) {
    dangling++;
    details.push(`index ${i.key} -> missing identity ${i.id}`);
  }
  for (const r of refs) {
    const { labels } = schema.parseRefKey(r);
    if (!labelKeys.has(schema.labelsKey(labels))) {
      dangling++;
      details.push(`reference ${r} -> missing label set`);
    }
  }
  for (const e of eps) if (e.identity >= 256 && !ids.has(e.identity)) {
    dangling++;
    details.push(`endpoint ${e.node}/${e.ip} -> missing identity ${e.identity}`);
  }
  return { duplicates, dangling, details };
}

interface IpcacheEntry {
  readonly cidr: string;
  readonly identity: number;
}

/** The chaos run. Always removes the cluster (and the churn netns) before it returns or throws. */
export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? ((l: string): void => void process.stderr.write(`${l}\n`));
  // Two generators: the fault schedule stays the same for a seed whatever the churn timing does.
  const rand = rng(o.seed);
  const churnRand = rng(o.seed ^ 0x9e3779b9);
  const pick = <T>(xs: readonly T[], r: () => number = rand): T => xs[Math.floor(r() * xs.length)]!;
  const tag = `${process.pid.toString(36)}${(o.seed % 1296).toString(36)}`;
  const name = `wc${tag}`.slice(0, 10);
  const tmp = `/tmp/ward-chaos-${tag}`;
  const bases: DevBases = { run: join(tmp, 'run'), data: `/dev/shm/ward-chaos-${tag}` };
  const env = { ...process.env, WARD_DEV_RUN_DIR: bases.run, WARD_DEV_DATA_DIR: bases.data };
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, 'cluster.yaml'), clusterFile(o.hosts));
  writeFileSync(join(tmp, 'policy.yaml'), POLICY);

  const churnNs = new Map<string, { host: string; ns: string }>();
  let state: DevState | undefined;
  const cleanup = async (): Promise<void> => {
    const down = await ward(['dev', 'down', '--name', name], env);
    if (down.code !== 0 && state !== undefined) {
      for (const p of [...state.workloads.map((w) => w.proc), ...state.hosts.map((h) => h.agent), ...state.etcd.members.map((m) => m.proc)]) await stopProc(p, { termMs: 0, group: true });
      for (const ns of [...state.netns].reverse()) if (existsSync(`/run/netns/${ns}`)) spawnSync('ip', ['netns', 'del', ns]);
      for (const p of state.pinRoots) rmSync(p, { recursive: true, force: true });
    }
    for (const { ns } of churnNs.values()) if (existsSync(`/run/netns/${ns}`)) spawnSync('ip', ['netns', 'del', ns]);
    rmSync(tmp, { recursive: true, force: true });
    rmSync(bases.data, { recursive: true, force: true });
  };
  let aborted = false;
  const onSignal = (): void => {
    aborted = true; // the prober stops counting: teardown is not a fault
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let kv: KvClient | undefined;
  try {
    log(`chaos: bringing up cluster ${name} (${o.hosts} hosts, 3 etcd members)`);
    const up = await ward(['dev', 'up', '-f', join(tmp, 'cluster.yaml'), '--name', name, '--etcd-members', '3', '--etcd-port', '0'], env);
    state = loadState(name, bases);
    if (up.code !== 0 || state === undefined) throw new Error(`ward dev up failed:\n${up.out}\n${up.err}`);
    const s = state;
    const schema = new KeySchema(DEFAULT_ROOT);
    kv = new KvClient({ endpoints: etcdEndpoints(s), logger: silentLogger(), attemptTimeoutMs: 1500, callTimeoutMs: 5000 });
    const api = new Map(s.hosts.map((h) => [h.name, new ApiClient(h.apiSocket, 5000)]));

    // The long-lived matrix and what the policy says about it.
    const sources: MatrixSource[] = s.workloads.map((w) => ({ name: w.name, netns: w.netns }));
    const targets: MatrixTarget[] = s.workloads.flatMap((w) => w.ports.map((port) => ({ name: w.name, ip: w.ip!, port })));
    const expected: Matrix = expectedMatrix(s.workloads.map((w) => ({ name: w.name, labels: w.labels, ip: w.ip! })), [parsePolicy(POLICY, 'policy.yaml')], sources, targets);

    let probes = 0;
    let deniedPassed = 0;
    let allowedFailed = 0;
    let churnAdds = 0;
    let churnDeletes = 0;
    let churnErrors = 0;
    let policyChanges = 0;
    let agentCrashes = 0;
    let rssMax = 0;
    const killedBySuite = new Set<string>();
    const faultsByKind: Record<string, number> = {};
    const converge: number[] = [];
    let convergeFailures = 0;
    const downRates: number[] = [];
    let stop = false;
    let churnPaused = false;

    const prober = (async (): Promise<void> => {
      while (!stop) {
        let m: Matrix;
        try {
          m = await probeMatrix(sources, targets, 1500);
        } catch (err) {
          log(`probe error: ${err instanceof Error ? err.message : String(err)}`);
          await sleep(200);
          continue;
        }
        if (aborted) return;
        m.forEach((row, i) =>
          row.forEach((v, j) => {
            const want = expected[i]?.[j];
            if (v === undefined || want === undefined) return;
            probes++;
            if (v && !want) {
              deniedPassed++;
              log(`VIOLATION: ${sources[i]!.name} -> ${targets[j]!.name}:${targets[j]!.port} passed, policy denies`);
            }
            if (!v && want) {
              allowedFailed++;
              log(`VIOLATION: ${sources[i]!.name} -> ${targets[j]!.name}:${targets[j]!.port} failed, policy allows (fail-static)`);
            }
          }),
        );
        await sleep(150);
      }
    })();

    let seq = 0;
    const busy = new Set<string>();
    const churnWorker = async (): Promise<void> => {
      const pools = [['app=web', 'tier=front'], ['app=db', 'tier=back'], ['app=web', 'env=dev'], ['churn=pool0'], ['churn=pool1', 'app=web'], ['churn=pool2']];
      while (!stop) {
        await sleep(250);
        if (churnPaused) continue;
        const live = [...churnNs.keys()].filter((k) => !busy.has(k));
        if (live.length < 4 || (live.length < 12 && churnRand() < 0.55)) {
          const k = seq++;
          const epName = `x${k}`;
          const ns = `${name}-x${k}`;
          const host = pick(s.hosts, churnRand).name;
          const labels = k % 4 === 3 ? [`churn=u${k}`, 'app=web'] : pick(pools, churnRand);
          if (spawnSync('ip', ['netns', 'add', ns]).status !== 0) continue;
          churnNs.set(epName, { host, ns });
          busy.add(epName);
          try {
            await api.get(host)!.addEndpoint({ name: epName, labels, netns: netnsPath(ns) });
            churnAdds++;
          } catch {
            churnErrors++;
            churnNs.delete(epName);
            spawnSync('ip', ['netns', 'del', ns]);
          } finally {
            busy.delete(epName);
          }
        } else {
          const epName = pick(live, churnRand);
          const e = churnNs.get(epName)!;
          busy.add(epName);
          try {
            await api.get(e.host)!.deleteEndpoint(epName);
            churnDeletes++;
            churnNs.delete(epName);
            spawnSync('ip', ['netns', 'del', e.ns]);
          } catch {
            churnErrors++;
          } finally {
            busy.delete(epName);
          }
        }
      }
    };
    // Three workers: several adds/deletes per second between faults.
    const churn = Promise.all([churnWorker(), churnWorker(), churnWorker()]);

    const statusOf = async (h: DevState['hosts'][number]): Promise<StatusJson | undefined> => {
      try {
        return await api.get(h.name)!.status();
      } catch {
        return undefined;
      }
    };
    const restartAgent = (h: DevState['hosts'][number]): void => {
      // Same command line as `ward dev up` (agent/dev/dev-up.ts) with the host's recorded config.
      h.agent = spawnDetached(process.execPath, ['--import', 'tsx', ENTRY, 'agent', '--config', h.configFile, `--host-netns=${netnsPath(h.netns)}`], h.logFile, { cwd: REPO });
      saveState(s);
    };
    const checkCrashes = (): void => {
      for (const h of s.hosts) {
        if (killedBySuite.has(h.name) || isAlive(h.agent)) continue;
        agentCrashes++;
        log(`AGENT CRASH: ${h.name} (log ${h.logFile}); restarting it`);
        restartAgent(h);
      }
    };

    /** Every agent in sync and its kernel ipcache holds exactly the endpoints etcd lists. */
    const converged = async (): Promise<boolean> => {
      const want = new Map<string, number>();
      for (const e of (await kv!.listPrefix(schema.endpoints)).kvs) {
        const v = decodeValue('endpoint', e.value);
        want.set(`${v.ip}/32`, v.identity);
      }
      for (const h of s.hosts) {
        const st = await statusOf(h);
        if (st === undefined || !st.inSync || st.degraded) return false;
        rssMax = Math.max(rssMax, (st.memory?.rss ?? 0) / 1048576);
        const got = await api.get(h.name)!.getJson<IpcacheEntry[]>('/v1/bpf/ipcache');
        const mine = got.filter((e) => e.cidr.startsWith('10.230.') && e.cidr.endsWith('/32'));
        if (mine.length !== want.size || mine.some((e) => want.get(e.cidr) !== e.identity)) return false;
      }
      return true;
    };
    const measureConverge = async (what: string): Promise<void> => {
      churnPaused = true;
      const t0 = Date.now();
      try {
        for (;;) {
          checkCrashes();
          let ok = false;
          try {
            ok = await converged();
          } catch {
            ok = false;
          }
          if (ok) {
            converge.push(Date.now() - t0);
            log(`  ${what}: converged in ${Date.now() - t0} ms`);
            return;
          }
          if (Date.now() - t0 > 60_000) {
            convergeFailures++;
            log(`CONVERGE FAILURE after ${what}`);
            return;
          }
          await sleep(100);
        }
      } finally {
        churnPaused = false;
      }
    };
    const etcdCalls = async (): Promise<number[]> => Promise.all(s.hosts.map(async (h) => (await statusOf(h))?.etcdCalls ?? Number.NaN));

    const kinds: readonly FaultKind[] = o.faults ?? ['etcd-kill', 'etcd-kill-leader', 'quorum-loss', 'agent-kill', 'compact-defrag'];
    const order = [...kinds].sort(() => rand() - 0.5);
    const t0 = Date.now();
    let n = 0;
    await sleep(1000);
    while (Date.now() - t0 < o.durationS * 1000) {
      const kind = n < order.length ? order[n]! : pick(kinds);
      n++;
      faultsByKind[kind] = (faultsByKind[kind] ?? 0) + 1;
      log(`fault ${n} (${((Date.now() - t0) / 1000).toFixed(1)} s): ${kind}`);
      if (kind === 'etcd-kill' || kind === 'etcd-kill-leader') {
        const lead = kind === 'etcd-kill-leader' ? await leaderIndex(s) : undefined;
        const drawn = Math.floor(rand() * s.etcd.members.length); // drawn always: the schedule stays aligned
        const i = lead ?? drawn;
        await killMember(s, i);
        saveState(s);
        log(`  killed etcd m${i}${lead !== undefined ? ' (leader)' : ''}`);
        await sleep(1000 + Math.floor(rand() * 2000));
        spawnMember(s, i, 'existing');
        saveState(s);
        await waitMemberHealthy(s, i, 20_000);
      } else if (kind === 'quorum-loss') {
        const a = Math.floor(rand() * 3);
        const b = (a + 1 + Math.floor(rand() * 2)) % 3;
        await killMember(s, a);
        await killMember(s, b);
        saveState(s);
        log(`  killed etcd m${a} and m${b}; down for ${AGENT_LEASE_TTL_S + 3} s (lease TTL ${AGENT_LEASE_TTL_S} s)`);
        await sleep(2000); // let the agents notice
        const c0 = await etcdCalls();
        const tDown = Date.now();
        await sleep((AGENT_LEASE_TTL_S + 1) * 1000);
        const c1 = await etcdCalls();
        const secs = (Date.now() - tDown) / 1000;
        const per = c1.map((c, i) => (c - c0[i]!) / secs).filter((x) => Number.isFinite(x));
        if (per.length > 0) downRates.push(Math.max(...per));
        log(`  etcd requests/s per agent while quorum was lost: ${per.map((x) => x.toFixed(1)).join(', ')}`);
        spawnMember(s, a, 'existing');
        spawnMember(s, b, 'existing');
        saveState(s);
        await Promise.all([waitMemberHealthy(s, a, 30_000), waitMemberHealthy(s, b, 30_000)]);
      } else if (kind === 'agent-kill') {
        const h = pick(s.hosts);
        killedBySuite.add(h.name);
        await stopProc(h.agent, { termMs: 0, group: true });
        log(`  killed agent ${h.name} (pid ${h.agent?.pid})`);
        await sleep(500 + Math.floor(rand() * 1500));
        restartAgent(h);
        killedBySuite.delete(h.name);
      } else {
        const st = JSON.parse(await etcdctl(s, ['endpoint', 'status', '-w', 'json'])) as { Status: { header: { revision: number } } }[];
        const rev = Math.max(...st.map((e) => e.Status.header.revision));
        await etcdctl(s, ['compaction', String(rev)]);
        await etcdctl(s, ['defrag']);
        log(`  compacted at revision ${rev}, defragmented every member`);
      }
      // A policy change now and then (only churn endpoints are selected).
      if (rand() < 0.4) {
        const value = policyValueFromText(churnPolicy(policyChanges), 'chaos-extra.yaml', 'chaos-extra', Date.now());
        try {
          await kv.put(schema.policyKey(value.name), encodeValue('policy', value));
          policyChanges++;
        } catch (err) {
          log(`policy change failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      await measureConverge(kind);
      await sleep(500 + Math.floor(rand() * 1500));
    }
    stop = true;
    await Promise.all([prober, churn]);
    checkCrashes();
    await measureConverge('end of run');
    const inv = await checkIdentities(kv, schema);
    for (const d of inv.details) log(`INVARIANT: ${d}`);
    const faults = Object.values(faultsByKind).reduce((a, b) => a + b, 0);
    return {
      chaos: true,
      seed: o.seed,
      duration_s: Math.round((Date.now() - t0) / 1000),
      faults,
      faults_by_kind: faultsByKind,
      probes,
      violations: deniedPassed + allowedFailed,
      denied_passed: deniedPassed,
      allowed_failed: allowedFailed,
      churn_adds: churnAdds,
      churn_deletes: churnDeletes,
      churn_errors: churnErrors,
      policy_changes: policyChanges,
      duplicate_identities: inv.duplicates,
      dangling_references: inv.dangling,
      agent_crashes: agentCrashes,
      converge_failures: convergeFailures,
      converge_p50_ms: quantile(converge, 0.5),
      converge_p99_ms: quantile(converge, 0.99),
      etcd_req_per_s_per_agent_while_down: downRates.length > 0 ? Math.round(Math.max(...downRates) * 10) / 10 : null,
      agent_rss_mb_max: Math.round(rssMax),
    };
  } finally {
    kv?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

/** Hard invariants that failed (empty: the run passed). */
export function failures(r: ChaosResult): string[] {
  const f: string[] = [];
  if (r.violations > 0) f.push(`${r.violations} probe violations (${r.denied_passed} denied passed, ${r.allowed_failed} allowed failed)`);
  if (r.duplicate_identities > 0) f.push(`${r.duplicate_identities} duplicate identities`);
  if (r.dangling_references > 0) f.push(`${r.dangling_references} dangling references`);
  if (r.agent_crashes > 0) f.push(`${r.agent_crashes} agent crashes`);
  if (r.converge_failures > 0) f.push(`${r.converge_failures} faults after which the agents did not converge within 60 s`);
  return f;
}

export function renderResult(r: ChaosResult): string {
  const rows = Object.entries(r).filter(([k]) => k !== 'chaos').map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]);
  return renderTable(['FIGURE', 'VALUE'], rows);
}
