import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

interface Reply {
  id: number;
  ok: boolean;
  error?: string;
  sid?: number;
  data?: string;
  ready?: boolean;
}

const DAEMON = join(import.meta.dirname, 'probe-daemon.mjs');

/** A probe-daemon.mjs process inside a netns; commands are answered in JSON over stdio. */
export class Probe {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private ready: Promise<void>;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    let resolveReady!: () => void;
    this.ready = new Promise((r) => (resolveReady = r));
    createInterface({ input: child.stdout }).on('line', (line) => {
      let r: Reply;
      try {
        r = JSON.parse(line) as Reply;
      } catch {
        return;
      }
      if (r.ready) return resolveReady();
      const w = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      w?.(r);
    });
    child.stderr.resume();
  }

  static async start(netns: string): Promise<Probe> {
    const child = spawn('nsenter', [`--net=/run/netns/${netns}`, process.execPath, DAEMON], { stdio: ['pipe', 'pipe', 'pipe'] });
    const p = new Probe(child);
    await p.ready;
    return p;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private call(cmd: Record<string, unknown>): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.stdin.write(JSON.stringify({ id, ...cmd }) + '\n');
    });
  }

  async listenTcp(port: number): Promise<void> {
    const r = await this.call({ op: 'listen-tcp', port });
    if (!r.ok) throw new Error(`listen-tcp ${port}: ${r.error}`);
  }

  async listenUdp(port: number): Promise<void> {
    const r = await this.call({ op: 'listen-udp', port });
    if (!r.ok) throw new Error(`listen-udp ${port}: ${r.error}`);
  }

  /** A full TCP connect + echo; false if it did not complete within timeoutMs. */
  async tcp(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
    return (await this.call({ op: 'tcp', host, port, timeoutMs })).ok;
  }

  async udp(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
    return (await this.call({ op: 'udp', host, port, timeoutMs })).ok;
  }

  async openSession(host: string, port: number, timeoutMs = 3000): Promise<number> {
    const r = await this.call({ op: 'session-open', host, port, timeoutMs });
    if (!r.ok || r.sid === undefined) throw new Error(`session-open ${host}:${port}: ${r.error}`);
    return r.sid;
  }

  /** Sends data on an open session and waits for the echo. */
  async sessionEcho(sid: number, data: string, timeoutMs = 3000): Promise<boolean> {
    return (await this.call({ op: 'session-send', sid, data, timeoutMs })).ok;
  }

  async closeSession(sid: number): Promise<void> {
    await this.call({ op: 'session-close', sid });
  }

  /** Ends the process by its PID. */
  stop(): void {
    if (this.child.exitCode === null && this.child.pid !== undefined) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
