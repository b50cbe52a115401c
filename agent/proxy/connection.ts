import type { Socket } from 'node:net';
import { BodyFramer } from './body-framer.js';
import { DEFAULT_CONNECTION_LIMITS, type ConnectionContext, type ConnectionLimits, type Verdict } from './connection-context.js';
import { judgeRequest, readsHeaders } from './decision.js';
import { fdOf, withDirectReads } from './direct-reads.js';
import { parseRequestHead } from './http-head.js';
import { deniedResponse, localResponse } from './local-response.js';
import { ResponseFramer } from './response-framer.js';

export * from './connection-context.js';
export { ACCESS_DENIED_BODY } from './local-response.js';

interface Pending {
  /** The proxy's own answer; undefined when the upstream answers. */
  readonly local: Buffer | undefined;
  readonly method: string;
  readonly close: boolean;
}

const EMPTY = Buffer.alloc(0);

const UPGRADE_REFUSED = localResponse(501, 'upgrade and CONNECT are not supported\r\n', true);

/**
 * One proxied client connection: parses each request (keep-alive and pipelining), asks the
 * policy, forwards allowed requests byte for byte over one upstream connection and answers
 * denied ones itself, keeping responses in request order. Upgrades/CONNECT are refused (501);
 * chunked and Content-Length bodies stream through (or are discarded for a denied request).
 * Responses are framed (status line and length only) and forwarded as they were received.
 */
export class ProxyConnection {
  /** The client socket in use (the accepted one, or a new wrapper of its handle). */
  readonly socket: Socket;
  private readonly client: Socket;
  private inReadBuf: Buffer = EMPTY;
  /** Client bytes kept for the next read; never the read buffer. */
  private inBuf: Buffer = EMPTY;
  /** Upstream bytes kept for the next read (a response head cut in two); a copy, never the read buffer. */
  private respBuf: Buffer = EMPTY;
  private reqBody: BodyFramer | undefined;
  private reqBodyForward = false;
  private readonly resp = new ResponseFramer();
  private readonly queue: Pending[] = [];
  private upstream: Socket | undefined;
  private upstreamFd = -1;
  private readonly clientFd: number;
  private upstreamUsable = false;
  private upReadBuf: Buffer = EMPTY;
  /** Upstream reads stopped until the client drains. */
  private upstreamPaused = false;
  /** No more requests are read (a close request, an error). */
  private clientDone = false;
  private closed = false;
  private headTimer: NodeJS.Timeout | undefined;
  private readonly ticker: NodeJS.Timeout;
  private clientIdleTicks = 0;
  private upstreamIdleTicks = 0;
  private paused = false;

  constructor(
    accepted: Socket,
    private readonly ctx: ConnectionContext,
    private readonly limits: ConnectionLimits = DEFAULT_CONNECTION_LIMITS,
  ) {
    this.inReadBuf = Buffer.allocUnsafe(limits.readBufferBytes);
    const direct = withDirectReads(accepted, { buffer: () => this.inReadBuf, callback: (n, b) => this.onClientRead(b as Buffer, n) });
    const client = direct ?? accepted;
    this.client = client;
    this.socket = client;
    this.clientFd = fdOf(client);
    if (direct === undefined) {
      this.inReadBuf = EMPTY;
      client.on('data', (c: Buffer) => this.onClientData(c, false));
    }
    client.setNoDelay(true);
    client.on('end', () => this.onClientEnd());
    client.on('error', (e) => this.fail(e));
    client.on('close', () => this.destroy());
    client.on('drain', () => this.onClientDrain());
    // Idle and upstream timeouts by coarse ticks: a socket timeout re-arms a timer on every read and write.
    const tickMs = Math.max(10, Math.min(limits.idleTimeoutMs, limits.upstreamTimeoutMs) / 4);
    this.ticker = setInterval(() => this.tick(tickMs), tickMs).unref();
  }

  private tick(ms: number): void {
    if (this.queue.length === 0) {
      if (++this.clientIdleTicks * ms >= this.limits.idleTimeoutMs) this.destroy();
      return;
    }
    if (this.queue[0]?.local !== undefined || ++this.upstreamIdleTicks * ms < this.limits.upstreamTimeoutMs) return;
    this.upstreamFailed(504, 'upstream timed out');
  }

  private onClientRead(buf: Buffer, n: number): boolean {
    this.onClientData(buf.subarray(0, n), true);
    if (n === buf.length) this.inReadBuf = this.biggerReadBuffer(this.inReadBuf);
    // Pausing (pipeline full, upstream full) has stopped reads itself.
    return true;
  }

  /** After a read that filled its buffer; buffers start small as most messages are. */
  private biggerReadBuffer(cur: Buffer): Buffer {
    const max = this.limits.maxReadBufferBytes;
    return cur.length >= max ? cur : Buffer.allocUnsafe(Math.min(cur.length * 4, max));
  }

  /** `borrowed`: chunk is in the read buffer, which the next read overwrites. */
  private onClientData(chunk: Buffer, borrowed: boolean): void {
    if (this.closed) return;
    this.clientIdleTicks = 0;
    if (this.inBuf.length === 0) this.processClient(chunk, borrowed);
    else this.processClient(Buffer.concat([this.inBuf, chunk]), false);
  }

  private processClient(buf: Buffer, borrowed: boolean): void {
    this.inBuf = EMPTY;
    let pos = 0;
    // Allowed requests that follow each other in buf go upstream in one write: buf[fwdFrom, fwdTo).
    let fwdFrom = 0;
    let fwdTo = 0;
    while (!this.closed) {
      if (this.reqBody !== undefined) {
        const n = this.reqBody.consume(buf, pos);
        if (this.reqBody.error !== undefined) {
          this.reject(400, `bad request body: ${this.reqBody.error}`);
          pos = buf.length;
          break;
        }
        if (this.reqBodyForward && n > 0) {
          if (fwdTo !== pos) {
            this.forward(buf, fwdFrom, fwdTo, borrowed);
            fwdFrom = pos;
          }
          fwdTo = pos + n;
        }
        pos += n;
        if (!this.reqBody.done) break;
        this.reqBody = undefined;
        continue;
      }
      if (this.clientDone) pos = buf.length;
      if (pos === buf.length) break;
      if (this.queue.length >= this.limits.maxPipeline) {
        this.pauseClient();
        break;
      }
      const decision = this.ctx.decide();
      const r = parseRequestHead(pos === 0 ? buf : buf.subarray(pos), this.limits, readsHeaders(decision));
      if (r.kind === 'incomplete') {
        this.headTimer ??= setTimeout(() => this.reject(408, 'request head not complete in time'), this.limits.headTimeoutMs);
        break;
      }
      this.clearHeadTimer();
      if (r.kind === 'error') {
        this.reject(r.status, r.reason);
        pos = buf.length;
        break;
      }
      const head = r.head;
      if (head.upgrade) {
        this.record('invalid', head.method, head.path, head.host, 501, 'upgrade and CONNECT are not supported through the L7 proxy');
        this.respondLocal(head.method, UPGRADE_REFUSED, true);
        pos = buf.length;
        break;
      }
      const v = judgeRequest(decision, head);
      const end = pos + head.headBytes;
      if (v.allowed) {
        this.record('allowed', head.method, head.path, head.host, undefined, v.reason);
        this.queue.push({ local: undefined, method: head.method, close: head.close });
        if (fwdTo !== pos) {
          this.forward(buf, fwdFrom, fwdTo, borrowed);
          fwdFrom = pos;
        }
        fwdTo = end;
      } else {
        this.record('denied', head.method, head.path, head.host, 403, v.reason);
        this.respondLocal(head.method, deniedResponse(head.close), head.close);
      }
      if (head.framing.kind !== 'none') {
        this.reqBody = new BodyFramer(head.framing);
        this.reqBodyForward = v.allowed;
      }
      pos = end;
      if (head.close) this.clientDone = true;
    }
    this.forward(buf, fwdFrom, fwdTo, borrowed);
    // Keep only a copy of a borrowed rest.
    this.inBuf = pos >= buf.length ? EMPTY : borrowed ? Buffer.from(buf.subarray(pos)) : buf.subarray(pos);
  }

  private record(verdict: Verdict, method: string, path: string, host: string | undefined, status: number | undefined, reason: string): void {
    const ctx = this.ctx;
    if (ctx.watching?.() === false) return ctx.count?.(verdict);
    ctx.onRequest({ method, path, ...(host !== undefined ? { host } : {}), verdict, ...(status !== undefined ? { status } : {}), reason });
  }

  private clearHeadTimer(): void {
    if (this.headTimer !== undefined) clearTimeout(this.headTimer);
    this.headTimer = undefined;
  }

  /** Answers a request the proxy cannot parse or judge, then stops reading (no resync possible). */
  private reject(status: number, reason: string): void {
    this.clearHeadTimer();
    if (this.clientDone && this.queue.length === 0 && status === 408) return this.destroy();
    this.record('invalid', '', '', undefined, status, reason);
    this.clientDone = true;
    this.reqBody = undefined;
    this.inBuf = EMPTY;
    this.respondLocal('', localResponse(status, `${reason}\r\n`, true), true);
  }

  private respondLocal(method: string, bytes: Buffer, close: boolean): void {
    this.queue.push({ local: bytes, method, close });
    if (close) this.clientDone = true;
    this.flushLocal();
  }

  /** Writes the local answers at the head of the queue (after every earlier upstream answer). */
  private flushLocal(): void {
    while (!this.closed && this.queue[0]?.local !== undefined) {
      const p = this.queue.shift()!;
      this.clientIdleTicks = 0;
      this.write(this.client, this.clientFd, p.local!, 0, p.local!.length);
      if (p.close) return this.finish();
    }
    if (this.queue.length === 0 && this.clientDone && this.reqBody === undefined && this.inBuf.length === 0) this.finish();
    this.resumeClient();
  }

  private ensureUpstream(): Socket {
    if (this.upstream !== undefined && this.upstreamUsable) return this.upstream;
    if (this.upReadBuf.length === 0) this.upReadBuf = Buffer.allocUnsafe(this.limits.readBufferBytes);
    const up: Socket = this.ctx.connectUpstream({
      buffer: () => this.upReadBuf,
      callback: (n, b) => this.upstream === up && this.onUpstreamRead(b as Buffer, n),
    });
    this.upstream = up;
    this.upstreamFd = fdOf(up);
    this.upstreamUsable = true;
    this.upstreamPaused = false;
    up.setNoDelay(true);
    up.on('end', () => {
      if (this.upstream === up) this.onUpstreamEnd();
    });
    up.on('error', (e) => {
      if (this.upstream === up) this.onUpstreamError(e);
    });
    up.on('drain', () => {
      if (this.upstream === up) this.resumeClient();
    });
    return up;
  }

  private forward(buf: Buffer, from: number, to: number, borrowed: boolean): void {
    if (from === to || this.closed) return;
    const up = this.ensureUpstream();
    this.upstreamIdleTicks = 0;
    if (!this.write(up, this.upstreamFd, buf, from, to)) this.pauseClient();
    // A write the kernel did not take at once still refers to the bytes: reads go to a new buffer.
    if (borrowed && up.writableLength > 0) this.inReadBuf = Buffer.allocUnsafe(this.inReadBuf.length);
  }

  /**
   * Writes buf[from, to) to s; false when s's buffer is full (as socket.write). While Node has
   * nothing queued for s, the bytes go straight to the kernel (ctx.send); what it does not take
   * (buffer full, or an error Node then reports) goes through s.write, in order.
   */
  private write(s: Socket, fd: number, buf: Buffer, from: number, to: number): boolean {
    const send = this.ctx.send;
    if (send !== undefined && fd >= 0 && s.writableLength === 0 && !s.connecting && !s.writableEnded && !s.destroyed) {
      const n = send(fd, buf, from, to);
      if (n === to - from) return true;
      if (n > 0) from += n;
    }
    return s.write(from === 0 && to === buf.length ? buf : buf.subarray(from, to));
  }

  private pauseClient(): void {
    if (!this.paused) this.client.pause();
    this.paused = true;
  }

  private resumeClient(): void {
    if (!this.paused || this.closed) return;
    if (this.queue.length >= this.limits.maxPipeline) return;
    if (this.upstream?.writableNeedDrain === true) return;
    this.paused = false;
    this.client.resume();
    if (this.inBuf.length > 0) setImmediate(() => this.processClient(this.inBuf, false));
  }

  private onClientDrain(): void {
    if (!this.upstreamPaused || this.closed) return;
    this.upstreamPaused = false;
    this.upstream?.resume();
  }

  /** One upstream read of n bytes into the connection's read buffer; false stops reading until the client drains. */
  private onUpstreamRead(readBuf: Buffer, n: number): boolean {
    if (this.closed) return false;
    this.upstreamIdleTicks = 0;
    const chunk = readBuf.subarray(0, n);
    const borrowed = this.respBuf.length === 0;
    const buf = borrowed ? chunk : Buffer.concat([this.respBuf, chunk]);
    this.respBuf = EMPTY;
    const pos = this.processUpstream(buf, borrowed);
    if (this.closed) return false;
    if (n === readBuf.length) this.upReadBuf = this.biggerReadBuffer(this.upReadBuf);
    // Keep only a copy: the read buffer is overwritten by the next read.
    if (pos < buf.length) this.respBuf = borrowed ? Buffer.from(buf.subarray(pos)) : buf.subarray(pos);
    this.upstreamPaused = this.client.writableNeedDrain;
    return !this.upstreamPaused;
  }

  /** Frames the responses in buf and forwards them to the client; returns the bytes used. */
  private processUpstream(buf: Buffer, borrowed: boolean): number {
    let pos = 0;
    // Consecutive responses go to the client in one write: buf[sent, pos).
    let sent = 0;
    while (!this.closed && pos < buf.length) {
      const front = this.queue[0];
      if (front === undefined || front.local !== undefined) return this.upstreamBroke(buf, sent, pos, borrowed, 502, 'upstream sent data nobody asked for');
      pos = this.resp.feed(buf, pos, front.method);
      if (this.resp.error !== undefined) return this.upstreamBroke(buf, sent, pos, borrowed, 502, this.resp.error);
      if (!this.resp.done) break;
      const p = this.queue.shift()!;
      if (!this.resp.close && !p.close && this.queue.length > 0 && this.queue[0]?.local === undefined) continue;
      this.toClient(buf, sent, pos, borrowed);
      sent = pos;
      this.responseDone(p);
    }
    this.toClient(buf, sent, pos, borrowed);
    return pos;
  }

  private toClient(buf: Buffer, from: number, to: number, borrowed: boolean): void {
    if (from === to || this.closed) return;
    this.clientIdleTicks = 0;
    this.write(this.client, this.clientFd, buf, from, to);
    // A write the kernel did not take at once still refers to the bytes: reads go to a new buffer.
    if (borrowed && this.client.writableLength > 0) this.upReadBuf = Buffer.allocUnsafe(this.upReadBuf.length);
  }

  /** Sends what was framed so far, then fails the upstream. */
  private upstreamBroke(buf: Buffer, sent: number, pos: number, borrowed: boolean, status: number, reason: string): number {
    this.toClient(buf, sent, pos, borrowed);
    this.upstreamFailed(status, reason);
    return pos;
  }

  private responseDone(p: Pending): void {
    if (this.resp.close) {
      this.upstreamUsable = false;
      this.upstream?.end();
      this.upstream = undefined;
      // Requests already written to that connection will not be answered by it.
      if (this.queue.some((q) => q.local === undefined)) return this.finish();
    }
    if (p.close) return this.finish();
    this.flushLocal();
  }

  private onUpstreamEnd(): void {
    if (this.resp.untilClose) {
      // Close-delimited body: the end of the connection is the end of the response.
      this.queue.shift();
      return this.finish();
    }
    this.upstreamUsable = false;
    this.upstream = undefined;
    if (this.queue.some((q) => q.local === undefined)) this.upstreamFailed(502, 'upstream closed the connection');
  }

  private onUpstreamError(err: Error): void {
    this.ctx.onError?.(err);
    this.upstreamFailed(503, `upstream: ${err.message}`);
  }

  /** The upstream broke: answer the request in front if nothing of its answer was sent, then close. */
  private upstreamFailed(status: number, reason: string): void {
    this.upstreamUsable = false;
    const up = this.upstream;
    this.upstream = undefined;
    up?.destroy();
    if (!this.resp.started && this.queue.length > 0 && this.queue[0]?.local === undefined && !this.closed) {
      this.client.write(localResponse(status, `${reason}\r\n`, true));
    }
    this.finish();
  }

  private onClientEnd(): void {
    this.clientDone = true;
    if (this.queue.length === 0) this.finish();
  }

  private stopTimers(): void {
    this.clearHeadTimer();
    clearInterval(this.ticker);
  }

  /** Ends the client connection gracefully after what was written. */
  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopTimers();
    this.upstream?.destroy();
    this.upstream = undefined;
    this.client.end();
  }

  private fail(err: Error): void {
    this.ctx.onError?.(err);
    this.destroy();
  }

  /** Idempotent: drops both sides now. */
  destroy(): void {
    this.closed = true;
    this.stopTimers();
    this.upstream?.destroy();
    this.upstream = undefined;
    this.client.destroy();
  }
}
