import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { WardError } from '../../identity/index.js';
import { DEFAULT_ROOT, KeySchema, encodeValue } from '../../kvstore-schema/index.js';
import { ApiClient } from '../api/client.js';
import type { EndpointJson } from '../api/types.js';
import { renderTable } from '../cli/output.js';
import { policyValueFromText } from '../daemon/policy-values.js';
import { KvClient, readEtcdTls, silentLogger } from '../kvstore/index.js';
import { parsePolicy, type ParsedPolicy } from '../policy/index.js';
import { ClusterFileError, clusterNameProblem, parseClusterFile, type DevClusterSpec } from './cluster-file.js';
import { etcdEndpoints, loopbackPort, spawnMember, waitMemberHealthy } from './dev-etcd.js';
import { devDown } from './dev-down.js';
import { DEV_ADMIN_CERT, devTlsFiles, makeDevCerts } from './dev-tls.js';
import { devBases, loadState, saveState, type DevBases, type DevState } from './dev-state.js';
import { expectedMatrix, probeFrom, renderMatrix, waitForMatrix, type MatrixSource, type MatrixTarget } from './matrix.js';
import { isAlive, logTail, spawnDetached } from './procs.js';
import { addBridge, addNetns, joinFabric, netnsExists, netnsPath, preflight } from './topology.js';

/** `ward dev up` failed; the message says what to look at and how to clean up. */
export class DevUpError extends WardError {}

/** How to run `ward` itself (agents are `<cmd> <args> agent --config ...`). */
export interface WardCommand {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly cwd: string;
}

export interface DevUpOptions {
  /** Path of the cluster file. */
  readonly file: string;
  /** Overrides the file's `name`. */
  readonly name?: string;
  /** Overrides the file's `etcd.members`. */
  readonly etcdMembers?: number;
  /** Client port of member 0 (member i: + i*10000) when free; 0: free ports. Default 2379. */
  readonly etcdPort?: number;
  readonly ward: WardCommand;
  readonly out: (line: string) => void;
  readonly bases?: DevBases;
  readonly agentLogLevel?: string;
  /** Connect timeout of one matrix probe (a dropped SYN shows as deny after it). */
  readonly probeTimeoutMs?: number;
  /** etcd speaks mutual TLS only; certificates (deploy/make-certs.sh) in the state dir. */
  readonly tls?: boolean;
}

export interface DevUpResult {
  readonly state: DevState;
  /** Whether the matrix before / after the policy matched what the policy says. */
  readonly beforeMatches: boolean;
  readonly afterMatches: boolean | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function readSpec(o: DevUpOptions): { spec: DevClusterSpec; policy?: { file: string; text: string; parsed: ParsedPolicy; name: string } } {
  let text: string;
  try {
    text = readFileSync(o.file, 'utf8');
  } catch (cause) {
    throw new ClusterFileError(`-f ${o.file}: cannot read the cluster file (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
  }
  let spec = parseClusterFile(text, o.file);
  if (o.name !== undefined) {
    const p = clusterNameProblem(o.name);
    if (p !== undefined) throw new ClusterFileError(`--name: ${p}`);
    spec = { ...spec, name: o.name };
  }
  if (o.etcdMembers !== undefined) spec = { ...spec, etcdMembers: o.etcdMembers };
  if (spec.policy === undefined) return { spec };
  const file = resolve(dirname(o.file), spec.policy);
  let ptext: string;
  try {
    ptext = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new ClusterFileError(`${o.file}: policy ${spec.policy}: cannot read ${file} (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
  }
  // Validate now: a bad policy must fail before anything is started.
  const parsed = parsePolicy(ptext, file);
  // One metadata.name names the policy; several (or none): the file's stem.
  const name = parsed.names.length === 1 ? parsed.names[0]! : basename(file).replace(/\.(ya?ml|json)$/, '');
  policyValueFromText(ptext, basename(file), name, Date.now());
  return { spec, policy: { file, text: ptext, parsed, name } };
}

/**
 * Brings up a local cluster: etcd members, a fabric bridge, a netns + agent per host, the
 * workloads (endpoint via the agent API, command in their netns), then prints the connectivity
 * matrix before and after the cluster file's policy. Everything is started detached and
 * recorded in the state file before it is made; the cluster outlives this call.
 */
export async function devUp(o: DevUpOptions): Promise<DevUpResult> {
  const say = o.out;
  const { spec, policy } = readSpec(o);
  preflight((n) => say(`   ${n}`));
  const bases = o.bases ?? devBases();
  const name = spec.name;

  if (loadState(name, bases) !== undefined) {
    say(`== cluster "${name}" is already up: tearing it down first`);
    await devDown(name, { bases, out: (l) => say(`   ${l}`) });
  }
  const prefix = `${name}-`;
  const fabricNs = `${prefix}fabric`;
  const hostNs = (h: string): string => `${prefix}${h}`;
  const wantNetns = [fabricNs, ...spec.hosts.map((h) => hostNs(h.name)), ...spec.workloads.map((w) => `${prefix}${w.name}`)];
  const takenNs = wantNetns.filter(netnsExists);
  if (takenNs.length > 0) throw new DevUpError(`name "${name}" is taken: netns ${takenNs.join(', ')} exist${takenNs.length === 1 ? 's' : ''} but no ward dev cluster "${name}" is recorded; pick another name (--name) or remove them (ip netns del NAME)`);
  const pinRoot = (h: string): string => `/sys/fs/bpf/ward-dev-${name}-${h}`;
  const takenPins = spec.hosts.map((h) => pinRoot(h.name)).filter((p) => existsSync(p));
  if (takenPins.length > 0) throw new DevUpError(`name "${name}" is taken: BPF pin root ${takenPins.join(', ')} exists but no ward dev cluster "${name}" is recorded; pick another name (--name) or remove it (rm -r)`);

  const dir = join(bases.run, name);
  const dataDir = join(bases.data, name);
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  mkdirSync(dataDir, { recursive: true });
  // Certificates before anything runs: CA, the members' server cert, one client cert per host + admin.
  const pki = o.tls === true ? join(dir, 'pki') : undefined;
  if (pki !== undefined) makeDevCerts(pki, [DEV_ADMIN_CERT, ...spec.hosts.map((h) => h.name)]);
  const adminTls = pki !== undefined ? devTlsFiles(pki, DEV_ADMIN_CERT) : undefined;

  // etcd members: preferred ports when free (so `npx ward ...` finds 2379), else free ports.
  const members: DevState['etcd']['members'] = [];
  const preferred = o.etcdPort ?? 2379;
  for (let i = 0; i < spec.etcdMembers; i++) {
    const clientPort = await loopbackPort(preferred === 0 ? 0 : preferred + i * 10_000);
    members.push({ index: i, name: `m${i}`, clientPort, peerPort: await loopbackPort(0), dataDir: join(dataDir, `m${i}`), logFile: join(dir, `etcd-m${i}.log`) });
  }
  const state: DevState = {
    version: 1,
    name,
    dir,
    dataDir,
    createdAtMs: Date.now(),
    phase: 'starting',
    etcd: {
      token: `ward-dev-${name}-${randomBytes(4).toString('hex')}`,
      initialCluster: members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(','),
      quotaBackendBytes: 512 * 1024 * 1024,
      members,
      ...(pki !== undefined ? { tlsPki: pki } : {}),
    },
    netns: [],
    links: [],
    pinRoots: [],
    hosts: [],
    workloads: [],
  };
  saveState(state);
  const fail = (err: unknown): never => {
    saveState(state);
    const msg = err instanceof Error ? err.message : String(err);
    throw new DevUpError(`${msg}\nWhat was started stays for inspection (logs in ${dir}); remove it with: ward dev down --name ${name}`, { cause: err });
  };

  try {
    const t0 = Date.now();
    say(`== ward dev up: cluster "${name}" (${spec.hosts.length} hosts, ${spec.workloads.length} workloads, ${spec.etcdMembers} etcd member${spec.etcdMembers === 1 ? '' : 's'}); state in ${dir}`);
    for (let i = 0; i < members.length; i++) spawnMember(state, i, 'new');
    saveState(state);

    // Topology while etcd elects a leader.
    const mkNetns = (ns: string): void => {
      state.netns.push(ns);
      saveState(state);
      addNetns(ns);
    };
    mkNetns(fabricNs);
    addBridge(fabricNs);
    state.links.push(`${fabricNs}/br0`);
    spec.hosts.forEach((h, i) => {
      const ns = hostNs(h.name);
      const hdir = join(dir, h.name);
      mkdirSync(hdir, { recursive: true });
      state.hosts.push({
        name: h.name,
        netns: ns,
        nodeIp: h.nodeIp,
        endpointCidr: h.endpointCidr,
        bpfRoot: pinRoot(h.name),
        apiSocket: join(hdir, 'agent.sock'),
        dir: hdir,
        configFile: join(hdir, 'agent.yaml'),
        logFile: join(hdir, 'agent.log'),
      });
      state.pinRoots.push(pinRoot(h.name));
      mkNetns(ns);
      state.links.push(...joinFabric(fabricNs, ns, i, h.nodeIp, h.nodePrefixLen));
    });
    for (const w of spec.workloads) {
      const ns = `${prefix}${w.name}`;
      state.workloads.push({ name: w.name, host: w.host, netns: ns, labels: w.labels, ports: w.ports, ...(w.command !== undefined ? { command: w.command } : {}), ...(w.ip !== undefined ? { ip: w.ip } : {}), logFile: join(dir, `workload-${w.name}.log`) });
      mkNetns(ns);
    }
    saveState(state);

    await Promise.all(members.map((_, i) => waitMemberHealthy(state, i, 30_000)));
    const endpoints = etcdEndpoints(state);
    if (pki !== undefined) say(`   etcd speaks mutual TLS only; certificates in ${pki} (client CN = host name, ${DEV_ADMIN_CERT} for the CLI)`);
    say(`   etcd ${members.map((m) => `${m.name} 127.0.0.1:${m.clientPort} (pid ${m.proc?.pid})`).join(', ')}`);

    // Agents, all at once; each waits for its own in-sync.
    for (const h of state.hosts) {
      writeFileSync(
        h.configFile,
        [
          `# ward dev cluster ${name}, host ${h.name}`,
          `node-name: ${h.name}`,
          `node-ip: ${h.nodeIp}`,
          `endpoint-cidr: ${h.endpointCidr}`,
          'etcd:',
          `  endpoints: [${endpoints.join(', ')}]`,
          `  root: ${DEFAULT_ROOT}`,
          ...(pki !== undefined ? Object.entries(devTlsFiles(pki, h.name)).map(([k, v]) => `  ${k.replace('File', '-file')}: ${v}`) : []),
          `bpf-root: ${h.bpfRoot}`,
          `api-socket: ${h.apiSocket}`,
          `state-dir: ${join(h.dir, 'state')}`,
          `log-level: ${o.agentLogLevel ?? 'info'}`,
          '',
        ].join('\n'),
      );
      h.agent = spawnDetached(o.ward.cmd, [...o.ward.args, 'agent', '--config', h.configFile, `--host-netns=${netnsPath(h.netns)}`], h.logFile, { cwd: o.ward.cwd });
      saveState(state);
    }
    await Promise.all(state.hosts.map((h) => waitAgent(h, 60_000)));
    for (const h of state.hosts) say(`   ${h.name}: netns ${h.netns}, node IP ${h.nodeIp}, endpoints ${h.endpointCidr}, agent pid ${h.agent?.pid} (log ${h.logFile})`);

    // Workloads: endpoint through the host's agent, then the command in the netns.
    const added = await Promise.all(
      state.workloads.map(async (w) => {
        const h = state.hosts.find((x) => x.name === w.host)!;
        const ep: EndpointJson = await new ApiClient(h.apiSocket, 30_000).addEndpoint({ name: w.name, labels: w.labels, netns: netnsPath(w.netns), ...(w.ip !== undefined ? { ip: w.ip } : {}) });
        return ep;
      }),
    );
    added.forEach((ep, i) => {
      const w = state.workloads[i]!;
      w.ip = ep.ip;
      w.identity = ep.identity;
      state.links.push(`${w.netns}/eth0`);
    });
    saveState(state);
    for (const w of state.workloads) {
      if (w.command === undefined) continue;
      w.proc = spawnDetached('nsenter', [`--net=${netnsPath(w.netns)}`, '--', 'sh', '-c', w.command], w.logFile, { cwd: dir });
      saveState(state);
    }
    await waitListening(state, say);
    state.phase = 'up';
    saveState(state);
    say(`   up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    say('\n== workloads');
    say(renderTable(['NAME', 'HOST', 'IP', 'IDENTITY', 'LABELS', 'PORTS', 'COMMAND'], state.workloads.map((w) => [w.name, w.host, w.ip ?? '', String(w.identity ?? ''), w.labels.join(','), w.ports.join(','), w.command ?? ''])).trimEnd());

    const probeTimeoutMs = o.probeTimeoutMs ?? 600;
    const sources: MatrixSource[] = state.workloads.map((w) => ({ name: w.name, netns: w.netns }));
    const targets: MatrixTarget[] = state.workloads.flatMap((w) => w.ports.map((port) => ({ name: w.name, ip: w.ip!, port })));
    const specs = state.workloads.map((w) => ({ name: w.name, labels: w.labels, ip: w.ip! }));
    const legend = `TCP connects from each workload's netns, ${probeTimeoutMs} ms timeout; '!' = differs from what the policy says`;

    const expectBefore = expectedMatrix(specs, [], sources, targets);
    const before = await waitForMatrix(sources, targets, expectBefore, { timeoutMs: 20_000, probeTimeoutMs });
    say(`\n== connectivity BEFORE any policy (${legend})`);
    say(renderMatrix(sources, targets, before.matrix, expectBefore).trimEnd());
    if (!before.matches) say('   WARNING: not every pair is reachable without policy; see the agent logs');

    let afterMatches: boolean | undefined;
    if (policy !== undefined) {
      const value = policyValueFromText(policy.text, basename(policy.file), policy.name, Date.now());
      const kv = new KvClient({ endpoints, logger: silentLogger(), attemptTimeoutMs: 1500, callTimeoutMs: 5000, ...(adminTls !== undefined ? { credentials: readEtcdTls(adminTls) } : {}) });
      let rev: string;
      try {
        rev = await kv.put(new KeySchema(DEFAULT_ROOT).policyKey(value.name), encodeValue('policy', value));
      } finally {
        kv.close();
      }
      state.policy = { file: policy.file, name: value.name };
      saveState(state);
      say(`\n== imported policy ${value.name} from ${policy.file}: ${value.rules.length} rule(s), revision ${rev}`);
      const expectAfter = expectedMatrix(specs, [policy.parsed], sources, targets);
      const t1 = Date.now();
      const after = await waitForMatrix(sources, targets, expectAfter, { timeoutMs: 20_000, probeTimeoutMs });
      say(`\n== connectivity AFTER the policy (matches the policy ${after.matches ? `after ${Date.now() - t1} ms` : 'NOT'}; ${legend})`);
      say(renderMatrix(sources, targets, after.matrix, expectAfter).trimEnd());
      afterMatches = after.matches;
    }

    const first = state.workloads[0];
    const firstTarget = targets.find((t) => t.name !== first?.name);
    const n = name === 'ward' ? '' : ` --name ${name}`;
    say(`\n== cluster "${name}" is up and stays up. Try:`);
    if (first !== undefined) {
      const probe = firstTarget !== undefined ? `nc -zv -w 1 ${firstTarget.ip} ${firstTarget.port}` : 'ip addr';
      say(`   npx ward dev exec${n} ${first.name} -- ${probe}   # a command inside workload ${first.name}`);
    }
    say(`   npx ward dev status${n}                  # etcd members, agents, workloads`);
    say(`   npx ward dev etcd kill 0${n}; npx ward dev etcd start 0${n}`);
    const tlsEnv = adminTls !== undefined ? `WARD_ETCD_CA_FILE=${adminTls.caFile} WARD_ETCD_CERT_FILE=${adminTls.certFile} WARD_ETCD_KEY_FILE=${adminTls.keyFile} ` : '';
    say(`   ${tlsEnv}WARD_ETCD_ENDPOINTS=${endpoints.join(',')} npx ward policy list`);
    say(`   WARD_API_SOCKET=${state.hosts[0]?.apiSocket ?? ''} npx ward endpoint list`);
    say(`   npx ward dev down${n}                    # remove everything`);
    return { state, beforeMatches: before.matches, afterMatches };
  } catch (err) {
    return fail(err);
  }
}

async function waitAgent(h: DevState['hosts'][number], timeoutMs: number): Promise<void> {
  const api = new ApiClient(h.apiSocket, 2000);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(h.agent)) throw new DevUpError(`agent of ${h.name} exited during startup (log ${h.logFile}):\n${logTail(h.logFile)}`);
    try {
      if ((await api.status()).inSync) return;
    } catch {
      // socket not there yet
    }
    if (Date.now() > deadline) throw new DevUpError(`agent of ${h.name} not in sync after ${timeoutMs} ms (log ${h.logFile})`);
    await sleep(100);
  }
}

/** Waits until every workload's ports accept connections inside its own netns. */
async function waitListening(state: DevState, say: (l: string) => void): Promise<void> {
  const deadline = Date.now() + 15_000;
  await Promise.all(
    state.workloads
      .filter((w) => w.ports.length > 0 && w.command !== undefined)
      .map(async (w) => {
        for (;;) {
          const ok = await probeFrom(w.netns, w.ports.map((port) => ({ ip: w.ip!, port })), 500);
          if (ok.every(Boolean)) return;
          if (!isAlive(w.proc) || Date.now() > deadline) {
            say(`   WARNING: workload ${w.name} does not listen on ${w.ports.join(',')} (${isAlive(w.proc) ? 'still starting' : 'its command exited'}; log ${w.logFile}): ${logTail(w.logFile, 2)}`);
            return;
          }
          await sleep(100);
        }
      }),
  );
}
