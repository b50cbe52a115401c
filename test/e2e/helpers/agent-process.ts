import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';

const REPO = join(import.meta.dirname, '..', '..', '..');
const ENTRY = join(import.meta.dirname, 'ward-main.ts');

/** A `ward agent` child process (from the sources), its logs going to a file. */
export class AgentProcess {
  private exit: Promise<number | null>;
  private log: WriteStream;

  private constructor(
    private readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' });
    child.stdout?.pipe(this.log, { end: false });
    child.stderr?.pipe(this.log, { end: false });
    // 'close' (not 'exit'): the output is fully in the log file by then.
    this.exit = new Promise((resolve) => child.once('close', (code) => resolve(code)));
  }

  static start(args: readonly string[], logFile: string, env: NodeJS.ProcessEnv = {}): AgentProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'agent', ...args], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new AgentProcess(child, logFile);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, then the exit code (null if it had to be killed after `timeoutMs`). */
  async stop(timeoutMs = 15_000): Promise<number | null> {
    if (!this.running || this.child.pid === undefined) return this.child.exitCode;
    process.kill(this.child.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const r = await Promise.race([this.exit, killed]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.kill();
      await this.exit;
      return null;
    }
    return r;
  }

  /** SIGKILL by PID (cleanup, crash tests). */
  kill(): void {
    if (this.running && this.child.pid !== undefined) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  async exited(): Promise<number | null> {
    return this.exit;
  }

  close(): void {
    this.kill();
    this.log.end();
  }
}
