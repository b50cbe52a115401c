// Chaos suite (issue 7): a `ward dev` cluster (3 etcd members, N hosts, long-lived workloads)
// under a seeded fault schedule (etcd member kill -9 incl. the leader, quorum loss longer than the
// agents' lease TTL, agent kill -9, compaction + defrag) while endpoints churn and policies change;
// a prober checks real TCP between the long-lived workloads against the expected matrix, and
// after each fault every agent's kernel maps are compared with what etcd says they must hold.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_ROOT, KeySchema, encodeValue } from '../../kvstore-schema/index.js';
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
import { identityInvariants, readCluster, type ClusterSnapshot } from './cluster-state.js';
import { checkConverged, type ConvergeCheck } from './converge.js';
import { RSS_GROWTH_BOUND, RssSamples } from './rss.js';

const REPO = join(import.meta.dirname, '..', '..');
const ENTRY = join(REPO, 'test', 'e2e', 'helpers', 'ward-main.ts');
/** The agents' lease TTL in chaos runs (`lease-ttl`, via WARD_LEASE_TTL): short, so quorum loss outlasts it quickly. */
export const CHAOS_LEASE_TTL_S = 5;
/**
 * Quorum loss lasts twice the lease TTL plus this. etcd renews every lease when a leader is
 * elected, so the server never expires them across the loss; the etcd3 client gives its lease up
 * ('lost') once no keepalive was answered for 2 x TTL, checked when its keepalive stream times
 * out (every TTL): only a loss this long makes every agent lose, re-grant and restore its lease.
 */
const QUORUM_LOSS_MARGIN_S = 3;
export const quorumLossSeconds = (ttl: number): number => 2 * ttl + QUORUM_LOSS_MARGIN_S;
/** A fault after which the maps do not match etcd within this is a converge failure. */
const CONVERGE_BOUND_MS = 60_000;
/** Period of the identity-invariant and RSS samples. */
const SAMPLE_EVERY_MS = 1500;

export type FaultKind = 'etcd-kill' | 'etcd-kill-leader' | 'quorum-loss' | 'agent-kill' | 'compact-defrag';

export interface ChaosOptions {
  readonly seed: number;
  readonly durationS: number;
  readonly hosts: number;
  /** Fault kinds to draw from (default: all). Each runs once (even past the duration) before any repeats. */
  readonly faults?: readonly FaultKind[];
  /** Random pause between a fault's convergence and the next fault, [min, max) ms (default [500, 2000]). */
  readonly gapMs?: readonly [number, number];
  /** The agents' lease TTL in seconds (default CHAOS_LEASE_TTL_S). */
  readonly leaseTtlS?: number;
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
  /** Max over the identity samples (one consistent read each) and the final read. */
  readonly duplicate_identities: number;
  readonly dangling_references: number;
  readonly identity_samples: number;
  /** Samples with any duplicate or dangling reference. */
  readonly identity_violation_samples: number;
  readonly agent_crashes: number;
  readonly converge_failures: number;
  /** Until every agent's kernel ipcache and policy maps equal what etcd computes to. */
  readonly converge_p50_ms: number;
  readonly converge_p99_ms: number;
  /** Kernel policy-map entries (and maps) compared equal at the converge points. */
  readonly policy_entries_checked: number;
  readonly policy_maps_checked: number;
  readonly lease_ttl_s: number;
  /** Shortest quorum loss (null when none ran); always > lease_ttl_s. */
  readonly quorum_loss_min_s: number | null;
  /** Lease recoveries completed in the agents' logs (lease lost, new lease granted, keys re-put). */
  readonly agent_lease_restores: number;
  /** null when no quorum loss ran. */
  readonly etcd_req_per_s_per_agent_while_down: number | null;
  readonly agent_rss_mb_max: number;
  /** Worst last-third / first-third median RSS of one agent process after warm-up (null: too short). */
  readonly agent_rss_growth_ratio: number | null;
  /** Whether some agent process ran long enough (>= 60 s after warm-up) to judge the growth. */
  readonly agent_rss_growth_judged: boolean;
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

/** The cluster's endpoint range (10.230.0.0/16), as an address prefix. */
const ENDPOINT_NET = '10.230.';

function clusterFile(hosts: number): string {
  const hs = Array.from({ length: hosts }, (_, i) => `h${i + 1}`);
  const h = (i: number): string => hs[i % hs.length]!;
  return `name: chaos
hosts: [${hs.join(', ')}]
network:
  node-cidr: 10.93.0.0/24
  endpoint-cidr: ${ENDPOINT_NET}0.0/16
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

/** Lines of a log file containing `needle` (0 when unreadable). */
function countLines(file: string, needle: string): number {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.includes(needle)).length;
  } catch {
    return 0;
  }
}

function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
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
  const ttl = o.leaseTtlS ?? CHAOS_LEASE_TTL_S;
  // The agents (started by `ward dev up` and by restartAgent) inherit WARD_LEASE_TTL.
  const env = { ...process.env, WARD_DEV_RUN_DIR: bases.run, WARD_DEV_DATA_DIR: bases.data, WARD_LEASE_TTL: String(ttl) };
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, 'cluster.yaml'), clusterFile(o.hosts));
  writeFileSync(join(tmp, 'policy.yaml'), POLICY);

  const churnNs = new Map<string, { host: string; ns: string }>();
  let state: DevState | undefined;
  // A failed run keeps the agents' logs (the cluster itself always goes).
  let keepLogs = false;
  const alarm = (line: string): void => {
    keepLogs = true;
    log(line);
  };
  const cleanup = async (): Promise<void> => {
    if (keepLogs && state !== undefined) {
      const dir = `/tmp/ward-chaos-logs-${tag}`;
      mkdirSync(dir, { recursive: true });
      for (const h of state.hosts) if (existsSync(h.logFile)) copyFileSync(h.logFile, join(dir, `${h.name}.log`));
      log(`agent logs kept in ${dir}`);
    }
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
  let stop = false; // ends the prober, churn and sampler loops (also when a fault throws)
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
    const rss = new RssSamples();
    let policyEntries = 0;
    let policyMaps = 0;
    const quorumDown: number[] = [];
    const ids = { samples: 0, violationSamples: 0, duplicates: 0, dangling: 0, seen: new Set<string>() };
    const killedBySuite = new Set<string>();
    const faultsByKind: Record<string, number> = {};
    const converge: number[] = [];
    let convergeFailures = 0;
    const downRates: number[] = [];
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
              alarm(`VIOLATION: ${sources[i]!.name} -> ${targets[j]!.name}:${targets[j]!.port} passed, policy denies`);
            }
            if (!v && want) {
              allowedFailed++;
              alarm(`VIOLATION: ${sources[i]!.name} -> ${targets[j]!.name}:${targets[j]!.port} failed, policy allows (fail-static)`);
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
      h.agent = spawnDetached(process.execPath, ['--import', 'tsx', ENTRY, 'agent', '--config', h.configFile, `--host-netns=${netnsPath(h.netns)}`], h.logFile, { cwd: REPO, env });
      saveState(s);
    };
    const checkCrashes = (): void => {
      for (const h of s.hosts) {
        if (killedBySuite.has(h.name) || isAlive(h.agent)) continue;
        agentCrashes++;
        alarm(`AGENT CRASH: ${h.name} (log ${h.logFile}); restarting it`);
        restartAgent(h);
      }
    };

    const noteIdentities = (snap: ClusterSnapshot): void => {
      const inv = identityInvariants(snap);
      ids.samples++;
      if (inv.duplicates + inv.dangling > 0) ids.violationSamples++;
      ids.duplicates = Math.max(ids.duplicates, inv.duplicates);
      ids.dangling = Math.max(ids.dangling, inv.dangling);
      for (const d of inv.details) if (!ids.seen.has(d)) alarm(`INVARIANT (etcd revision ${snap.revision}): ${d}`);
      for (const d of inv.details) ids.seen.add(d);
    };
    // Identity invariants and agent RSS all along the run, faults included.
    const sampler = (async (): Promise<void> => {
      while (!stop) {
        for (const h of s.hosts) if (h.agent !== undefined) rss.add(h.name, h.agent.pid, Date.now());
        try {
          noteIdentities(await readCluster(kv, schema));
        } catch {
          // no quorum (or a member restarting): this sample is skipped
        }
        await sleep(SAMPLE_EVERY_MS);
      }
    })();

    const measureConverge = async (what: string): Promise<void> => {
      churnPaused = true;
      const t0 = Date.now();
      let why = '';
      try {
        for (;;) {
          checkCrashes();
          let c: ConvergeCheck;
          try {
            c = await checkConverged(await readCluster(kv!, schema), s.hosts, api, ENDPOINT_NET);
          } catch (err) {
            c = { ok: false, why: err instanceof Error ? err.message : String(err) };
          }
          if (c.ok) {
            converge.push(Date.now() - t0);
            policyEntries += c.entries;
            policyMaps += c.maps;
            const slow = Date.now() - t0 > 1000 ? `; last difference: ${why.split('\n')[0]}` : '';
            log(`  ${what}: converged in ${Date.now() - t0} ms (${c.maps} policy maps, ${c.entries} entries equal${slow})`);
            return;
          }
          why = c.why;
          if (Date.now() - t0 > CONVERGE_BOUND_MS) {
            convergeFailures++;
            alarm(`CONVERGE FAILURE after ${what}: ${why}`);
            for (const h of s.hosts) log(`  ${h.name} status: ${JSON.stringify(await statusOf(h))}`);
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
    while (Date.now() - t0 < o.durationS * 1000 || n < order.length) {
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
        const downS = quorumLossSeconds(ttl);
        await killMember(s, a);
        await killMember(s, b);
        const tLost = Date.now();
        saveState(s);
        log(`  killed etcd m${a} and m${b}; quorum lost for ${downS} s (lease TTL ${ttl} s)`);
        await sleep(2000); // let the agents notice
        const c0 = await etcdCalls();
        const tDown = Date.now();
        // The second counter read ends before the deadline: reading it (up to ~2 s) must not lengthen the loss.
        await sleep(Math.max(0, tLost + (downS - 2) * 1000 - Date.now()));
        const c1 = await etcdCalls();
        const secs = (Date.now() - tDown) / 1000;
        const per = c1.map((c, i) => (c - c0[i]!) / secs).filter((x) => Number.isFinite(x));
        if (per.length > 0) downRates.push(Math.max(...per));
        log(`  etcd requests/s per agent while quorum was lost: ${per.map((x) => x.toFixed(1)).join(', ')}`);
        await sleep(Math.max(0, tLost + downS * 1000 - Date.now()));
        spawnMember(s, a, 'existing');
        spawnMember(s, b, 'existing');
        quorumDown.push((Date.now() - tLost) / 1000);
        log(`  quorum back after ${((Date.now() - tLost) / 1000).toFixed(1)} s`);
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
      const gap = o.gapMs ?? [500, 2000];
      await sleep(gap[0] + Math.floor(rand() * (gap[1] - gap[0])));
    }
    stop = true;
    await Promise.all([prober, churn, sampler]);
    checkCrashes();
    await measureConverge('end of run');
    noteIdentities(await readCluster(kv, schema));
    const growth = rss.growth();
    log(`agent RSS: max ${(rss.maxBytes / 1048576).toFixed(0)} MB, growth ${growth.ratio ?? '-'}${growth.judged ? '' : ' (not judged: no agent process ran 60 s after warm-up)'}${growth.worst !== undefined ? ` (worst ${growth.worst})` : ''}`);
    const leaseRestores = s.hosts.reduce((n, h) => n + countLines(h.logFile, 'lease-bound keys restored'), 0);
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
      duplicate_identities: ids.duplicates,
      dangling_references: ids.dangling,
      identity_samples: ids.samples,
      identity_violation_samples: ids.violationSamples,
      agent_crashes: agentCrashes,
      converge_failures: convergeFailures,
      converge_p50_ms: quantile(converge, 0.5),
      converge_p99_ms: quantile(converge, 0.99),
      policy_entries_checked: policyEntries,
      policy_maps_checked: policyMaps,
      lease_ttl_s: ttl,
      quorum_loss_min_s: quorumDown.length > 0 ? Math.round(Math.min(...quorumDown) * 10) / 10 : null,
      agent_lease_restores: leaseRestores,
      etcd_req_per_s_per_agent_while_down: downRates.length > 0 ? Math.round(Math.max(...downRates) * 10) / 10 : null,
      agent_rss_mb_max: Math.round(rss.maxBytes / 1048576),
      agent_rss_growth_ratio: growth.ratio,
      agent_rss_growth_judged: growth.judged,
    };
  } catch (err) {
    keepLogs = true;
    throw err;
  } finally {
    stop = true;
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
  if (r.converge_failures > 0) f.push(`${r.converge_failures} faults after which the agents' kernel maps did not match etcd within ${CONVERGE_BOUND_MS / 1000} s`);
  if (r.agent_rss_growth_judged && r.agent_rss_growth_ratio !== null && r.agent_rss_growth_ratio > RSS_GROWTH_BOUND) f.push(`agent RSS grew x${r.agent_rss_growth_ratio} (bound x${RSS_GROWTH_BOUND})`);
  if (r.quorum_loss_min_s !== null && r.quorum_loss_min_s <= r.lease_ttl_s) f.push(`quorum loss of ${r.quorum_loss_min_s} s did not outlast the ${r.lease_ttl_s} s lease TTL`);
  return f;
}

export function renderResult(r: ChaosResult): string {
  const rows = Object.entries(r).filter(([k]) => k !== 'chaos').map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]);
  return renderTable(['FIGURE', 'VALUE'], rows);
}
