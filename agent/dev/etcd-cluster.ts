import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { freeLoopbackPort } from './free-port.js';
import { join } from 'node:path';
import { WardError } from '../../identity/index.js';

/** etcd could not be started or did not become healthy in time. */
export class EtcdStartError extends WardError {}

export interface EtcdClusterOptions {
  /** 1 or 3 members (any count >= 1 works). */
  readonly members?: number;
  /** Directory that holds the cluster's data dirs; default /dev/shm (tmpfs: 3.4 has no unsafe-no-fsync). */
  readonly baseDir?: string;
  readonly binary?: string;
  /** Readiness timeout for start/restart. */
  readonly readyTimeoutMs?: number;
  readonly quotaBackendBytes?: number;
  /** Keep the data dir on close (ward dev). Default: remove it. */
  readonly keepData?: boolean;
  /** Fixed client ports per member (e.g. [2379] for `ward dev`); default: free ports. */
  readonly clientPorts?: readonly number[];
  /** Extra etcd flags for every member. */
  readonly extraArgs?: readonly string[];
}

export type MemberState = 'running' | 'stopped' | 'killed';

/** Where a member lives: name, ports and files (also what `ward dev` records of it). */
export interface EtcdMemberLayout {
  readonly index: number;
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly logFile: string;
}

export interface EtcdMember extends EtcdMemberLayout {
  readonly pid: number | undefined;
  readonly state: MemberState;
}

interface MemberSlot {
  index: number;
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  logFile: string;
  proc: ChildProcess | undefined;
  exited: Promise<void> | undefined;
  state: MemberState;
  spawnError?: Error;
}

// Every cluster of this process, so a crash of the test runner still kills its etcd children.
const live = new Set<EtcdCluster>();
process.once('exit', () => {
  for (const c of live) c.killAllSync();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * kill(SIGSTOP) returns before the process's threads have stopped: a request sent right after
 * could still be answered. Waits (up to 2 s) until every thread of `pid` shows state T.
 */
function waitAllThreadsStopped(pid: number): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 2000; i++) {
    try {
      const tasks = readdirSync(`/proc/${pid}/task`);
      if (tasks.every((t) => /^\d+ \(.*\) [tT] /s.test(readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8')))) return;
    } catch {
      return; // gone: nothing left to answer
    }
    Atomics.wait(pause, 0, 0, 1);
  }
}

/** True when the member on this loopback port answers /health with a leader. */
export async function healthy(port: number, timeoutMs: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as { health?: unknown };
    return body.health === 'true' || body.health === true;
  } catch {
    return false;
  }
}

/** What one member's command line needs (`ward dev` spawns members itself, detached). */
export interface EtcdMemberArgsSpec {
  readonly name: string;
  readonly dataDir: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly logFile: string;
  /** `m0=http://127.0.0.1:PEER,...` */
  readonly initialCluster: string;
  readonly token: string;
  readonly state: 'new' | 'existing';
  readonly quotaBackendBytes: number;
  readonly extraArgs?: readonly string[];
  /** Client side over mutual TLS (peers stay plaintext on loopback). */
  readonly tls?: { readonly caFile: string; readonly certFile: string; readonly keyFile: string } | undefined;
}

/** The etcd flags of one loopback member, tuned for fast elections (PLATFORM.md). */
export function etcdMemberArgs(m: EtcdMemberArgsSpec): string[] {
  return [
    '--name', m.name,
    '--data-dir', m.dataDir,
    '--listen-client-urls', `${m.tls !== undefined ? 'https' : 'http'}://127.0.0.1:${m.clientPort}`,
    '--advertise-client-urls', `${m.tls !== undefined ? 'https' : 'http'}://127.0.0.1:${m.clientPort}`,
    '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
    '--initial-cluster', m.initialCluster,
    '--initial-cluster-token', m.token,
    '--initial-cluster-state', m.state,
    '--heartbeat-interval', '25',
    '--election-timeout', '250',
    '--quota-backend-bytes', String(m.quotaBackendBytes),
    '--experimental-watch-progress-notify-interval', '1s',
    '--logger', 'zap',
    '--log-level', 'warn',
    '--log-outputs', m.logFile,
    ...(m.tls !== undefined ? ['--cert-file', m.tls.certFile, '--key-file', m.tls.keyFile, '--client-cert-auth', '--trusted-ca-file', m.tls.caFile] : []),
    ...(m.extraArgs ?? []),
  ];
}

/**
 * A local etcd cluster of Debian's /usr/bin/etcd on loopback with free ports and tmpfs data
 * dirs, tuned for fast elections. Members are addressed by index: kill (SIGKILL), stop
 * (SIGSTOP), resume (SIGCONT), restart. close() kills every member by PID and removes the dirs.
 */
export class EtcdCluster {
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly slots: MemberSlot[],
    private readonly opts: Required<Omit<EtcdClusterOptions, 'baseDir' | 'members' | 'clientPorts'>>,
    private readonly token: string,
  ) {}

  static async start(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    let lastErr: unknown;
    // A free port can be taken between probing and etcd's bind: retry with new ports.
    for (let attempt = 0; attempt < 3; attempt++) {
      const cluster = await EtcdCluster.create(options);
      try {
        await cluster.bootstrap();
        return cluster;
      } catch (err) {
        lastErr = err;
        await cluster.close();
      }
    }
    throw new EtcdStartError(`etcd cluster did not start: ${String(lastErr)}`, { cause: lastErr });
  }

  private static async create(options: EtcdClusterOptions): Promise<EtcdCluster> {
    const n = options.members ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new EtcdStartError(`members must be a positive integer, got ${n}`);
    const baseDir = options.baseDir ?? '/dev/shm';
    mkdirSync(baseDir, { recursive: true });
    const dir = mkdtempSync(join(baseDir, 'ward-etcd-'));
    const slots: MemberSlot[] = [];
    for (let i = 0; i < n; i++) {
      const dataDir = join(dir, `m${i}`);
      slots.push({
        index: i,
        name: `m${i}`,
        clientPort: options.clientPorts?.[i] ?? (await freeLoopbackPort()),
        peerPort: await freeLoopbackPort(),
        dataDir,
        logFile: join(dir, `m${i}.log`),
        proc: undefined,
        exited: undefined,
        state: 'killed',
      });
    }
    const opts = {
      binary: options.binary ?? '/usr/bin/etcd',
      readyTimeoutMs: options.readyTimeoutMs ?? 20_000,
      quotaBackendBytes: options.quotaBackendBytes ?? 512 * 1024 * 1024,
      keepData: options.keepData ?? false,
      extraArgs: options.extraArgs ?? [],
    };
    const c = new EtcdCluster(dir, slots, opts, `ward-${randomBytes(4).toString('hex')}`);
    live.add(c);
    return c;
  }

  /** Client endpoints as `127.0.0.1:port`, in member order. */
  get endpoints(): string[] {
    return this.slots.map((s) => `127.0.0.1:${s.clientPort}`);
  }

  get size(): number {
    return this.slots.length;
  }

  member(i: number): EtcdMember {
    const s = this.slot(i);
    return { index: s.index, name: s.name, clientPort: s.clientPort, peerPort: s.peerPort, dataDir: s.dataDir, logFile: s.logFile, pid: s.proc?.pid, state: s.state };
  }

  private slot(i: number): MemberSlot {
    const s = this.slots[i];
    if (s === undefined) throw new RangeError(`no etcd member ${i} (cluster has ${this.slots.length})`);
    return s;
  }

  private async bootstrap(): Promise<void> {
    for (const s of this.slots) this.spawnMember(s, 'new');
    await this.waitHealthy();
  }

  private spawnMember(s: MemberSlot, state: 'new' | 'existing'): void {
    const initialCluster = this.slots.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
    const args = etcdMemberArgs({ ...s, initialCluster, token: this.token, state, quotaBackendBytes: this.opts.quotaBackendBytes, extraArgs: this.opts.extraArgs });
    const proc = spawn(this.opts.binary, args, { stdio: 'ignore' });
    s.proc = proc;
    s.state = 'running';
    s.exited = new Promise((resolve) => {
      proc.once('exit', () => {
        if (s.proc === proc) s.state = 'killed';
        resolve();
      });
      proc.once('error', (err) => {
        if (s.proc === proc) s.state = 'killed';
        s.spawnError = err;
        resolve();
      });
    });
  }

  /** Waits until every running member answers /health (which needs a leader). */
  async waitHealthy(timeoutMs = this.opts.readyTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const s of this.slots) {
      if (s.state !== 'running') continue;
      await this.waitMember(s, deadline);
    }
  }

  private async waitMember(s: MemberSlot, deadline: number): Promise<void> {
    for (;;) {
      if (s.state !== 'running') {
        const why = s.spawnError !== undefined ? `could not run ${this.opts.binary}: ${s.spawnError.message}` : `exited during startup (log: ${s.logFile})`;
        throw new EtcdStartError(`etcd member ${s.name} ${why}`, { cause: s.spawnError });
      }
      if (await healthy(s.clientPort, 1000)) return;
      if (Date.now() > deadline) throw new EtcdStartError(`etcd member ${s.name} not healthy in time (log: ${s.logFile})`);
      await sleep(50);
    }
  }

  /** Index of the current leader as the running members report it (undefined: none). */
  async leader(): Promise<number | undefined> {
    for (const s of this.slots) {
      if (s.state !== 'running') continue;
      try {
        const res = await fetch(`http://127.0.0.1:${s.clientPort}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
        const body = (await res.json()) as { header?: { member_id?: string }; leader?: string };
        if (body.leader === undefined || body.leader === '0') continue;
        if (body.leader === body.header?.member_id) return s.index;
      } catch {
        // not answering: try the next
      }
    }
    return undefined;
  }

  /** SIGKILL a member and wait for it to exit. */
  async kill(i: number): Promise<void> {
    const s = this.slot(i);
    if (s.proc === undefined || s.state === 'killed') return;
    if (s.state === 'stopped') process.kill(s.proc.pid!, 'SIGCONT');
    s.proc.kill('SIGKILL');
    await s.exited;
    s.state = 'killed';
  }

  /** SIGSTOP: the member keeps its sockets open but never answers (a frozen host). */
  stop(i: number): void {
    const s = this.slot(i);
    if (s.state !== 'running' || s.proc?.pid === undefined) return;
    process.kill(s.proc.pid, 'SIGSTOP');
    waitAllThreadsStopped(s.proc.pid);
    s.state = 'stopped';
  }

  /** SIGCONT a stopped member. */
  resume(i: number): void {
    const s = this.slot(i);
    if (s.state !== 'stopped' || s.proc?.pid === undefined) return;
    process.kill(s.proc.pid, 'SIGCONT');
    s.state = 'running';
  }

  /**
   * Starts a killed member again from its data dir (kills it first if it runs). Waits for its
   * /health unless `wait` is false (a member alone without quorum never becomes healthy).
   */
  async restart(i: number, wait = true): Promise<void> {
    const s = this.slot(i);
    await this.kill(i);
    this.spawnMember(s, 'existing');
    if (wait) await this.waitMember(s, Date.now() + this.opts.readyTimeoutMs);
  }

  /** Kills every member (synchronously, by PID): the exit-handler path. */
  killAllSync(): void {
    for (const s of this.slots) {
      const pid = s.proc?.pid;
      if (pid === undefined || s.state === 'killed') continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** Idempotent: SIGKILL every member by PID, wait for the exits, remove the data dirs. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.killAllSync();
    for (const s of this.slots) if (s.exited !== undefined) await s.exited;
    live.delete(this);
    if (!this.opts.keepData) rmSync(this.dir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
