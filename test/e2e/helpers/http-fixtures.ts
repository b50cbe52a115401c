import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A plain-Node HTTP server run inside a netns that appends "METHOD URL remoteAddress:remotePort" per request to a log. */
const SERVER = `
const http = require('node:http');
const fs = require('node:fs');
const [log, port] = process.argv.slice(2);
http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    fs.appendFileSync(log, req.method + ' ' + req.url + ' ' + req.socket.remoteAddress + ':' + req.socket.remotePort + '\\n');
    res.end('hello ' + req.method + ' ' + req.url + '\\n');
  });
}).listen(Number(port), '0.0.0.0', () => fs.appendFileSync(log, 'READY\\n'));
`;

/**
 * A keep-alive client in a netns: one connection, one request per line read from stdin, one JSON
 * line per answer on stdout {status, body, localPort} (localPort shows the connection is reused).
 */
const CLIENT = `
const net = require('node:net');
const [host, port] = process.argv.slice(2);
const s = net.connect(Number(port), host);
let buf = '';
const waiting = [];
s.on('data', (d) => {
  buf += d.toString('latin1');
  for (;;) {
    const end = buf.indexOf('\\r\\n\\r\\n');
    if (end < 0) return;
    const head = buf.slice(0, end);
    const len = Number((/content-length: *(\\d+)/i.exec(head) || [0, 0])[1]);
    if (buf.length < end + 4 + len) return;
    const body = buf.slice(end + 4, end + 4 + len);
    buf = buf.slice(end + 4 + len);
    process.stdout.write(JSON.stringify({ status: Number(head.split(' ')[1]), body, localPort: s.localPort }) + '\\n');
  }
});
s.on('close', () => process.stdout.write(JSON.stringify({ closed: true }) + '\\n'));
let line = '';
process.stdin.on('data', (d) => {
  line += d.toString();
  let i;
  while ((i = line.indexOf('\\n')) >= 0) {
    const path = line.slice(0, i);
    line = line.slice(i + 1);
    if (path === 'END') { s.end(); continue; }
    s.write('GET ' + path + ' HTTP/1.1\\r\\nHost: ' + host + '\\r\\n\\r\\n');
  }
});
`;

export function writeFixtures(dir: string): { server: string; client: string } {
  const server = join(dir, 'http-server.cjs');
  const client = join(dir, 'http-client.cjs');
  writeFileSync(server, SERVER);
  writeFileSync(client, CLIENT);
  return { server, client };
}

/** A command in a netns; its stdout ('' when it fails: curl shows a failed transfer as status 000). */
function inNetns(netns: string, args: readonly string[]): string {
  return spawnSync('nsenter', [`--net=/run/netns/${netns}`, ...args], { encoding: 'utf8', timeout: 8000 }).stdout ?? '';
}

/** curl from a netns, all urls over one connection when it can: "STATUS NUM_CONNECTS" per url. */
export function curlStatuses(netns: string, urls: readonly string[], extra: readonly string[] = []): string[] {
  return inNetns(netns, ['curl', '-s', '-m', '3', '-w', '%{http_code} %{num_connects}\\n', ...extra, ...urls.flatMap((u) => [u, '-o', '/dev/null'])]).trim().split('\n');
}

/** curl from a netns: the body. */
export function curlBody(netns: string, url: string, extra: readonly string[] = []): string {
  return inNetns(netns, ['curl', '-s', '-m', '3', ...extra, url]);
}

export function startServer(netns: string, script: string, log: string, port: number): ChildProcess {
  writeFileSync(log, '');
  return spawn('nsenter', [`--net=/run/netns/${netns}`, process.execPath, script, log, String(port)], { stdio: 'ignore' });
}

export function serverLog(log: string): string[] {
  return readFileSync(log, 'utf8').split('\n').filter((l) => l !== '' && l !== 'READY');
}

export interface KeepAliveAnswer {
  readonly status?: number;
  readonly body?: string;
  readonly localPort?: number;
  readonly closed?: boolean;
}

/** The keep-alive client process: send(path) writes a request, next() waits for the next answer. */
export class KeepAliveClient {
  private readonly child: ChildProcess;
  private readonly answers: KeepAliveAnswer[] = [];
  private waiters: (() => void)[] = [];
  private rest = '';

  constructor(netns: string, script: string, host: string, port: number) {
    this.child = spawn('nsenter', [`--net=/run/netns/${netns}`, process.execPath, script, host, String(port)], { stdio: ['pipe', 'pipe', 'ignore'] });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.rest += d.toString();
      let i;
      while ((i = this.rest.indexOf('\n')) >= 0) {
        this.answers.push(JSON.parse(this.rest.slice(0, i)) as KeepAliveAnswer);
        this.rest = this.rest.slice(i + 1);
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  send(path: string): void {
    this.child.stdin!.write(`${path}\n`);
  }

  /** One request on the connection and its answer. */
  request(path: string): Promise<KeepAliveAnswer> {
    this.send(path);
    return this.next();
  }

  async next(timeoutMs = 10_000): Promise<KeepAliveAnswer> {
    const deadline = Date.now() + timeoutMs;
    while (this.answers.length === 0) {
      if (Date.now() > deadline) throw new Error('no answer from the keep-alive client');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
    return this.answers.shift()!;
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.pid !== undefined) this.child.kill('SIGKILL');
  }
}
