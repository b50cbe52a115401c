import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { WardError } from '../../identity/index.js';
import { ApiClient } from '../api/client.js';
import { renderTable } from '../cli/output.js';
import { killMember, memberHealthy, memberOf, spawnMember, waitMemberHealthy } from './dev-etcd.js';
import { devBases, listClusters, loadState, saveState, type DevBases, type DevState } from './dev-state.js';
import { isAlive } from './procs.js';
import { netnsPath } from './topology.js';

/** No such cluster or workload, or a bad argument. */
export class DevOpError extends WardError {}

/** The cluster `name` (given, else the only one recorded, else `ward`), or a clear error. */
export function resolveCluster(name: string | undefined, bases: DevBases = devBases()): DevState {
  const all = listClusters(bases);
  const pick = name ?? (all.length === 1 ? all[0]! : 'ward');
  const s = loadState(pick, bases);
  if (s === undefined) {
    const known = all.length > 0 ? `clusters up: ${all.join(', ')} (--name NAME)` : 'no cluster is up: ward dev up -f examples/cluster.yaml';
    throw new DevOpError(`no ward dev cluster named "${pick}" (state ${bases.run}/${pick}/state.json): ${known}`);
  }
  return s;
}

/** Runs argv inside the workload's netns with stdio inherited; resolves to its exit status. */
export async function devExec(s: DevState, workload: string, argv: readonly string[]): Promise<number> {
  const w = s.workloads.find((x) => x.name === workload);
  if (w === undefined) throw new DevOpError(`no workload "${workload}" in cluster ${s.name} (workloads: ${s.workloads.map((x) => x.name).join(', ') || 'none'})`);
  if (argv.length === 0) throw new DevOpError('give a command after --, e.g. ward dev exec web -- ip addr');
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${netnsPath(w.netns)}`, '--', ...argv], { stdio: 'inherit' });
    child.once('error', (err) => reject(new DevOpError(`cannot run nsenter: ${err.message}`, { cause: err })));
    child.once('exit', (code, sig) => resolve(code ?? 128 + (sig !== null ? constants.signals[sig] : 0)));
  });
}

/** `ward dev etcd kill N`: SIGKILL by recorded PID. */
export async function devEtcdKill(s: DevState, i: number, say: (l: string) => void): Promise<void> {
  const m = memberOf(s, i);
  const pid = m.proc?.pid;
  const was = await killMember(s, i);
  saveState(s);
  say(was ? `etcd member ${m.name} (pid ${pid}) killed` : `etcd member ${m.name} was not running`);
}

/** `ward dev etcd start N`: restarts the member from its data dir (same ports). */
export async function devEtcdStart(s: DevState, i: number, say: (l: string) => void): Promise<void> {
  const m = memberOf(s, i);
  if (isAlive(m.proc)) {
    say(`etcd member ${m.name} already runs (pid ${m.proc?.pid})`);
    return;
  }
  spawnMember(s, i, 'existing');
  saveState(s);
  try {
    await waitMemberHealthy(s, i, s.etcd.members.length === 1 ? 20_000 : 5000);
    say(`etcd member ${m.name} started (pid ${m.proc?.pid}) at 127.0.0.1:${m.clientPort}, healthy`);
  } catch (err) {
    if (!isAlive(m.proc)) throw err;
    say(`etcd member ${m.name} started (pid ${m.proc?.pid}) but not healthy yet (no quorum?): ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** `ward dev status`: etcd members, agents, workloads. Returns 0 when everything runs. */
export async function devStatus(s: DevState, out: (text: string) => void): Promise<number> {
  let ok = s.phase === 'up';
  out(`cluster ${s.name}: ${s.phase}, state ${s.dir}\n\n`);
  const etcdRows = await Promise.all(
    s.etcd.members.map(async (m) => {
      const alive = isAlive(m.proc);
      const h = alive && (await memberHealthy(s, m, 1000));
      if (!h) ok = false;
      return [m.name, `127.0.0.1:${m.clientPort}`, alive ? String(m.proc?.pid) : '-', alive ? (h ? 'healthy' : 'unhealthy') : 'stopped'];
    }),
  );
  out(renderTable(['ETCD', 'ENDPOINT', 'PID', 'STATE'], etcdRows));
  const hostRows = await Promise.all(
    s.hosts.map(async (h) => {
      const alive = isAlive(h.agent);
      let state = 'stopped';
      let eps = '';
      if (alive) {
        try {
          const st = await new ApiClient(h.apiSocket, 2000).status();
          state = st.degraded ? 'degraded' : st.inSync ? 'in sync' : 'syncing';
          eps = String(st.endpoints);
          if (st.degraded || !st.inSync) ok = false;
        } catch {
          state = 'no answer';
          ok = false;
        }
      } else ok = false;
      return [h.name, h.netns, h.nodeIp, h.endpointCidr, alive ? String(h.agent?.pid) : '-', state, eps];
    }),
  );
  out(`\n${renderTable(['HOST', 'NETNS', 'NODE IP', 'ENDPOINTS', 'AGENT PID', 'AGENT', 'EPS'], hostRows)}`);
  const wlRows = s.workloads.map((w) => {
    const alive = w.command === undefined || isAlive(w.proc);
    if (!alive) ok = false;
    return [w.name, w.host, w.ip ?? '', String(w.identity ?? ''), w.labels.join(','), w.command === undefined ? '-' : alive ? String(w.proc?.pid) : 'exited'];
  });
  out(`\n${renderTable(['WORKLOAD', 'HOST', 'IP', 'IDENTITY', 'LABELS', 'PID'], wlRows)}`);
  if (s.policy !== undefined) out(`\npolicy ${s.policy.name} (from ${s.policy.file})\n`);
  return ok ? 0 : 1;
}
