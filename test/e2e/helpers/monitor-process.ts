import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { MonitorEventJson } from '../../../agent/api/index.js';

const REPO = join(import.meta.dirname, '..', '..', '..');
const WARD_MAIN = join(import.meta.dirname, 'ward-main.ts');

export interface MonitorProcess<E extends MonitorEventJson> {
  /** The NDJSON events printed so far. */
  readonly events: E[];
  /** What it wrote to stderr so far. */
  err(): string;
  running(): boolean;
  /** SIGINT, like an operator's Ctrl-C; resolves with the exit code. */
  interrupt(): Promise<number | null>;
  /** SIGKILL if still running (for `finally`). */
  kill(): void;
}

/** A real `ward monitor ARGS -o json` process against the agent at `socket`. */
export function startMonitor<E extends MonitorEventJson = MonitorEventJson>(socket: string, args: readonly string[]): MonitorProcess<E> {
  const child = spawn(process.execPath, ['--import', 'tsx', WARD_MAIN, 'monitor', ...args, '-o', 'json'], {
    cwd: REPO,
    env: { ...process.env, WARD_API_SOCKET: socket },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const events: E[] = [];
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  createInterface({ input: child.stdout }).on('line', (l) => events.push(JSON.parse(l) as E));
  return {
    events,
    err: () => err,
    running: () => child.exitCode === null,
    interrupt: () => {
      process.kill(child.pid!, 'SIGINT');
      return exited;
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
