import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { WardError } from '../../identity/index.js';

/** A process could not be started. */
export class DevProcessError extends WardError {}

/**
 * A process `ward dev` started: its PID and its start time (clock ticks since boot, from
 * /proc/PID/stat), so a later `down` never signals an unrelated process that reused the PID.
 */
export interface DevProc {
  readonly pid: number;
  readonly startTime: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** State letter and start time of a PID, or undefined when there is no such process. */
function procStat(pid: number): { state: string; startTime: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', startTime: rest[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** True while the recorded process runs (a zombie or a reused PID counts as gone). */
export function isAlive(p: DevProc | undefined): boolean {
  if (p === undefined) return false;
  const s = procStat(p.pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X' && s.startTime === p.startTime;
}

/**
 * Starts a process in its own session (it outlives the caller), stdout and stderr appended to
 * `logFile`. Returns its PID and start time.
 */
export function spawnDetached(cmd: string, args: readonly string[], logFile: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): DevProc {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], cwd: opts.cwd, env: opts.env ?? process.env });
    child.on('error', () => undefined); // reported below through the missing pid
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new DevProcessError(`cannot start ${cmd}: not found or not executable`);
    const s = procStat(pid);
    return { pid, startTime: s?.startTime ?? '' };
  } finally {
    closeSync(fd);
  }
}

function signal(p: DevProc, sig: NodeJS.Signals, group: boolean): void {
  try {
    process.kill(group ? -p.pid : p.pid, sig);
  } catch {
    // gone already (or the group is): fine
  }
}

/** Waits until the process is gone; false at the deadline. */
export async function waitGone(p: DevProc, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(p)) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

/**
 * Stops a recorded process (and its process group when `group`: it was started detached, so
 * the group is its own): SIGTERM, then SIGKILL after `termMs`. `termMs` 0 kills at once.
 */
export async function stopProc(p: DevProc | undefined, opts: { termMs: number; group: boolean }): Promise<void> {
  if (p === undefined || !isAlive(p)) return;
  if (opts.termMs > 0) {
    signal(p, 'SIGTERM', opts.group);
    if (await waitGone(p, opts.termMs)) return;
  }
  signal(p, 'SIGKILL', opts.group);
  await waitGone(p, 5000);
}

/** The last lines of a log file (error messages point at why a process died). */
export function logTail(file: string, lines = 5): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
