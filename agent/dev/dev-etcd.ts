import { createServer } from 'node:net';
import { WardError } from '../../identity/index.js';
import { etcdMemberArgs, healthy } from './etcd-cluster.js';
import type { DevState } from './dev-state.js';
import { isAlive, logTail, spawnDetached, stopProc } from './procs.js';
import { DEV_ADMIN_CERT, DEV_ETCD_CERT, devTlsFiles, healthyTls } from './dev-tls.js';

/** An etcd member of a dev cluster could not be started or is unknown. */
export class DevEtcdError extends WardError {}

const ETCD = '/usr/bin/etcd';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A free loopback port, or `preferred` when it is free. */
export async function loopbackPort(preferred = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (err) => (preferred !== 0 ? resolve(loopbackPort(0)) : reject(err)));
    srv.listen(preferred, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function etcdEndpoints(s: DevState): string[] {
  return s.etcd.members.map((m) => `127.0.0.1:${m.clientPort}`);
}

function member(s: DevState, i: number): DevState['etcd']['members'][number] {
  const m = s.etcd.members[i];
  if (m === undefined || !Number.isInteger(i)) throw new DevEtcdError(`no etcd member ${i}: cluster ${s.name} has members 0..${s.etcd.members.length - 1}`);
  return m;
}

/** Spawns member i detached (new cluster or rejoining from its data dir); records its PID. */
export function spawnMember(s: DevState, i: number, mode: 'new' | 'existing'): void {
  const m = member(s, i);
  const tls = s.etcd.tlsPki !== undefined ? devTlsFiles(s.etcd.tlsPki, DEV_ETCD_CERT) : undefined;
  const args = etcdMemberArgs({ ...m, initialCluster: s.etcd.initialCluster, token: s.etcd.token, state: mode, quotaBackendBytes: s.etcd.quotaBackendBytes, tls });
  m.proc = spawnDetached(ETCD, args, `${m.logFile}.out`);
}

/** Waits for member i's /health (needs a leader); errors name the log. */
export async function waitMemberHealthy(s: DevState, i: number, timeoutMs: number): Promise<void> {
  const m = member(s, i);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(m.proc)) throw new DevEtcdError(`etcd member ${m.name} exited during startup (log ${m.logFile}):\n${logTail(m.logFile)}${logTail(`${m.logFile}.out`)}`);
    if (await memberHealthy(s, m, 1000)) return;
    if (Date.now() > deadline) throw new DevEtcdError(`etcd member ${m.name} not healthy after ${timeoutMs} ms (log ${m.logFile})`);
    await sleep(50);
  }
}

/** /health of a member (over mutual TLS with the admin certificate when the cluster has TLS). */
export function memberHealthy(s: DevState, m: DevState['etcd']['members'][number], timeoutMs: number): Promise<boolean> {
  return s.etcd.tlsPki !== undefined ? healthyTls(m.clientPort, timeoutMs, devTlsFiles(s.etcd.tlsPki, DEV_ADMIN_CERT)) : healthy(m.clientPort, timeoutMs);
}

/** SIGKILL member i by its recorded PID (PLATFORM.md: SIGTERM can take seconds). */
export async function killMember(s: DevState, i: number): Promise<boolean> {
  const m = member(s, i);
  const was = isAlive(m.proc);
  await stopProc(m.proc, { termMs: 0, group: true });
  delete m.proc;
  return was;
}

export function memberOf(s: DevState, i: number): DevState['etcd']['members'][number] {
  return member(s, i);
}
