import { rmdirSync, rmSync } from 'node:fs';
import { WardError } from '../../identity/index.js';
import { devBases, loadState, saveState, type DevBases } from './dev-state.js';
import { isAlive, stopProc } from './procs.js';
import { deleteNetns, netnsExists } from './topology.js';

/** Something recorded could not be removed. */
export class DevDownError extends WardError {}

export interface DevDownOptions {
  readonly bases?: DevBases;
  readonly out: (line: string) => void;
}

/**
 * Removes everything the state file of cluster `name` records: workload processes, agents
 * (SIGTERM, then SIGKILL), etcd members (SIGKILL), netns (with their links), pin roots, data
 * and state dirs, in that order. Idempotent; works after a crashed `up`. Returns false when
 * no such cluster is recorded.
 */
export async function devDown(name: string, o: DevDownOptions): Promise<boolean> {
  const bases = o.bases ?? devBases();
  const s = loadState(name, bases);
  if (s === undefined) return false;
  const say = o.out;
  // Processes first, so nothing holds a netns or writes into a dir being removed.
  const procs = s.workloads.filter((w) => isAlive(w.proc));
  await Promise.all(procs.map((w) => stopProc(w.proc, { termMs: 2000, group: true })));
  if (procs.length > 0) say(`stopped workload processes: ${procs.map((w) => `${w.name} (pid ${w.proc?.pid})`).join(', ')}`);
  const agents = s.hosts.filter((h) => isAlive(h.agent));
  await Promise.all(agents.map((h) => stopProc(h.agent, { termMs: 5000, group: true })));
  if (agents.length > 0) say(`stopped agents: ${agents.map((h) => `${h.name} (pid ${h.agent?.pid})`).join(', ')}`);
  const members = s.etcd.members.filter((m) => isAlive(m.proc));
  await Promise.all(members.map((m) => stopProc(m.proc, { termMs: 0, group: true })));
  if (members.length > 0) say(`killed etcd members: ${members.map((m) => `${m.name} (pid ${m.proc?.pid})`).join(', ')}`);
  for (const w of s.workloads) delete w.proc;
  for (const h of s.hosts) delete h.agent;
  for (const m of s.etcd.members) delete m.proc;
  saveState(s);

  const gone = [...s.netns].reverse().filter(netnsExists);
  for (const ns of gone) deleteNetns(ns);
  if (gone.length > 0) say(`deleted netns (and their links): ${gone.join(', ')}`);
  const left = s.netns.filter(netnsExists);
  if (left.length > 0) throw new DevDownError(`could not delete netns ${left.join(', ')} (ip netns del NAME)`);
  for (const p of s.pinRoots) rmSync(p, { recursive: true, force: true });
  if (s.pinRoots.length > 0) say(`removed BPF pin roots: ${s.pinRoots.join(', ')}`);
  rmSync(s.dataDir, { recursive: true, force: true });
  rmSync(s.dir, { recursive: true, force: true });
  say(`removed ${s.dataDir} and ${s.dir}`);
  // The base dirs go with the last cluster (other clusters' dirs keep them).
  for (const base of [bases.data, bases.run]) removeIfEmpty(base);
  return true;
}

function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'ENOENT' && code !== 'EEXIST') throw new DevDownError(`could not remove ${dir}: ${(err as Error).message}`, { cause: err });
  }
}
