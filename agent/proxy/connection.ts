import type { Socket } from 'node:net';
import type { HttpRequest } from '../policy/index.js';
import { BodyFramer } from './body-framer.js';
import type { L7Decision } from './decision.js';
import { judgeRequest } from './decision.js';
import { DEFAULT_LIMITS, parseRequestHead, parseResponseHead, responseFraming, type HeadLimits, type ResponseHead } from './http-head.js';

export interface ConnectionLimits extends HeadLimits {
  /** A started request head must be complete within this time (slowloris), ms. */
  readonly headTimeoutMs: number;
  /** An idle keep-alive client connection is closed after this, ms. */
  readonly idleTimeoutMs: number;
  /** The upstream must answer (or send more of an answer) within this, ms. */
  readonly upstreamTimeoutMs: number;
  /** Requests in flight (pipelined) before the proxy stops reading from the client. */
  readonly maxPipeline: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { ...DEFAULT_LIMITS, headTimeoutMs: 10_000, idleTimeoutMs: 120_000, upstreamTimeoutMs: 60_000, maxPipeline: 32 };

/** One request decision, as reported to events and metrics. */
export interface RequestDecision {
  readonly verdict: 'allowed' | 'denied' | 'invalid';
  readonly method: string;
  readonly path: string;
  readonly host?: string;
  /** Status the proxy answered itself (403, 400...), absent when forwarded. */
  readonly status?: number;
  readonly reason: string;
}

/** What a connection needs from its listener: the current policy and a way to the destination. */
export interface ConnectionContext {
  /** The L7 decision for this connection's (endpoint, direction, remote identity, port) now. */
  decide(): L7Decision;
  /** A socket connecting to the original destination. */
  connectUpstream(): Socket;
  onRequest(d: RequestDecision): void;
  onError?(err: Error): void;
}

interface Pending {
  readonly kind: 'upstream' | 'local';
  readonly method: string;
  readonly close: boolean;
  readonly bytes?: Buffer;
}

function localResponse(status: number, text: string, body: string, close: boolean): Buffer {
  return Buffer.from(`HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${close ? 'connection: close\r\n' : ''}\r\n${body}`, 'latin1');
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

export const ACCESS_DENIED_BODY = 'Access denied\r\n';

const EMPTY = Buffer.alloc(0);

/**
 * One proxied client connection: parses each request (keep-alive and pipelining), asks the
 * policy, forwards allowed requests byte for byte over one upstream connection and answers
 * denied ones itself, keeping responses in request order. Upgrades/CONNECT are refused (501);
 * chunked and Content-Length bodies stream through (or are discarded for a denied request).
 */
export class ProxyConnection {
  private inBuf: Buffer = EMPTY;
  private respBuf: Buffer = EMPTY;
  private reqBody: { framer: BodyFramer; forward: boolean } | undefined;
  private resp: { head: ResponseHead; framer: BodyFramer; close: boolean; untilClose: boolean } | undefined;
  private readonly queue: Pending[] = [];
  private upstream: Socket | undefined;
  private upstreamUsable = false;
  /** No more requests are read (a close request, an error). */
  private clientDone = false;
  private closed = false;
  private headTimer: NodeJS.Timeout | undefined;
  private paused = false;

  constructor(
    private readonly client: Socket,
    private readonly ctx: ConnectionContext,
    private readonly limits: ConnectionLimits = DEFAULT_CONNECTION_LIMITS,
  ) {
    client.setNoDelay(true);
    client.on('data', (c: Buffer) => this.onClientData(c));
    client.on('end', () => this.onClientEnd());
    client.on('error', (e) => this.fail(e));
    client.on('close', () => this.destroy());
    client.setTimeout(limits.idleTimeoutMs, () => {
      if (this.queue.length === 0) this.destroy();
    });
  }

  private onClientData(chunk: Buffer): void {
    if (this.closed) return;
    this.inBuf = this.inBuf.length === 0 ? chunk : Buffer.concat([this.inBuf, chunk]);
    this.processClient();
  }

  private processClient(): void {
    while (!this.closed) {
      if (this.reqBody !== undefined) {
        const step = this.reqBody.framer.feed(this.inBuf);
        if (step.error !== undefined) return this.reject(400, `bad request body: ${step.error}`, '');
        if (this.reqBody.forward && step.consumed > 0) this.writeUpstream(this.inBuf.subarray(0, step.consumed));
        this.inBuf = this.inBuf.subarray(step.consumed);
        if (!step.done) return;
        this.reqBody = undefined;
        continue;
      }
      if (this.inBuf.length === 0 || this.clientDone) {
        if (this.clientDone) this.inBuf = EMPTY;
        return;
      }
      if (this.queue.length >= this.limits.maxPipeline) return this.pauseClient();
      const r = parseRequestHead(this.inBuf, this.limits);
      if (r.kind === 'incomplete') {
        this.headTimer ??= setTimeout(() => this.reject(408, 'request head not complete in time', ''), this.limits.headTimeoutMs);
        return;
      }
      this.clearHeadTimer();
      if (r.kind === 'error') return this.reject(r.status, r.reason, '');
      const head = r.head;
      const headBytes = this.inBuf.subarray(0, head.headBytes);
      this.inBuf = this.inBuf.subarray(head.headBytes);
      const req: HttpRequest = { method: head.method, path: head.path, headers: head.headers, ...(head.host !== undefined ? { host: head.host } : {}) };
      const base = { method: head.method, path: head.path, ...(head.host !== undefined ? { host: head.host } : {}) };
      if (head.upgrade) {
        this.ctx.onRequest({ ...base, verdict: 'invalid', status: 501, reason: 'upgrade and CONNECT are not supported through the L7 proxy' });
        this.respondLocal(head.method, 501, 'upgrade and CONNECT are not supported\r\n', true);
        return;
      }
      const v = judgeRequest(this.ctx.decide(), req);
      if (v.allowed) {
        this.ctx.onRequest({ ...base, verdict: 'allowed', reason: v.reason });
        this.queue.push({ kind: 'upstream', method: head.method, close: head.close });
        this.writeUpstream(headBytes);
        if (head.framing.kind !== 'none') this.reqBody = { framer: new BodyFramer(head.framing), forward: true };
      } else {
        this.ctx.onRequest({ ...base, verdict: 'denied', status: 403, reason: v.reason });
        this.respondLocal(head.method, 403, ACCESS_DENIED_BODY, head.close);
        if (head.framing.kind !== 'none') this.reqBody = { framer: new BodyFramer(head.framing), forward: false };
      }
      if (head.close) this.clientDone = true;
    }
  }

  private clearHeadTimer(): void {
    if (this.headTimer !== undefined) clearTimeout(this.headTimer);
    this.headTimer = undefined;
  }

  /** Answers a request the proxy cannot parse or judge, then stops reading (no resync possible). */
  private reject(status: number, reason: string, method: string): void {
    this.clearHeadTimer();
    if (this.clientDone && this.queue.length === 0 && status === 408) return this.destroy();
    this.ctx.onRequest({ verdict: 'invalid', method, path: '', status, reason });
    this.clientDone = true;
    this.reqBody = undefined;
    this.inBuf = EMPTY;
    this.respondLocal(method, status, `${reason}\r\n`, true);
  }

  private respondLocal(method: string, status: number, body: string, close: boolean): void {
    this.queue.push({ kind: 'local', method, close, bytes: localResponse(status, STATUS_TEXT[status] ?? 'Error', body, close) });
    if (close) this.clientDone = true;
    this.flushLocal();
  }

  /** Writes the local answers at the head of the queue (after every earlier upstream answer). */
  private flushLocal(): void {
    while (!this.closed && this.queue[0]?.kind === 'local') {
      const p = this.queue.shift()!;
      this.client.write(p.bytes!);
      if (p.close) return this.finish();
    }
    if (this.queue.length === 0 && this.clientDone && this.reqBody === undefined && this.inBuf.length === 0) this.finish();
    this.resumeClient();
  }

  private ensureUpstream(): Socket {
    if (this.upstream !== undefined && this.upstreamUsable) return this.upstream;
    const up = this.ctx.connectUpstream();
    this.upstream = up;
    this.upstreamUsable = true;
    up.setNoDelay(true);
    up.on('data', (c: Buffer) => {
      if (this.upstream === up) this.onUpstreamData(c);
    });
    up.on('end', () => {
      if (this.upstream === up) this.onUpstreamEnd();
    });
    up.on('error', (e) => {
      if (this.upstream === up) this.onUpstreamError(e);
    });
    up.setTimeout(this.limits.upstreamTimeoutMs, () => {
      if (this.upstream === up && this.queue[0]?.kind === 'upstream') this.upstreamFailed(504, 'upstream timed out');
    });
    return up;
  }

  private writeUpstream(bytes: Buffer): void {
    const up = this.ensureUpstream();
    if (!up.write(bytes)) {
      this.pauseClient();
      up.once('drain', () => this.resumeClient());
    }
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
    if (this.inBuf.length > 0) setImmediate(() => this.processClient());
  }

  private onUpstreamData(chunk: Buffer): void {
    if (this.closed) return;
    // One write to the client per upstream chunk (head and body together).
    this.client.cork();
    try {
      this.processUpstream(chunk);
    } finally {
      this.client.uncork();
    }
  }

  private processUpstream(chunk: Buffer): void {
    this.respBuf = this.respBuf.length === 0 ? chunk : Buffer.concat([this.respBuf, chunk]);
    let headBytes = 0;
    while (!this.closed && this.respBuf.length > 0) {
      const front = this.queue[0];
      if (front?.kind !== 'upstream') return this.upstreamFailed(502, 'upstream sent data nobody asked for');
      if (this.resp === undefined) {
        const r = parseResponseHead(this.respBuf);
        if (r.kind === 'incomplete') return;
        if (r.kind === 'error') return this.upstreamFailed(502, `bad upstream response: ${r.reason}`);
        const framing = responseFraming(r.head, front.method);
        if (typeof framing === 'string') return this.upstreamFailed(502, `bad upstream response: ${framing}`);
        if (r.head.status === 101) return this.upstreamFailed(502, 'upstream switched protocols without an upgrade request');
        if (r.head.status < 200) {
          // Interim (100 Continue): the final answer follows.
          this.client.write(this.respBuf.subarray(0, r.head.headBytes));
          this.respBuf = this.respBuf.subarray(r.head.headBytes);
          continue;
        }
        this.resp = { head: r.head, framer: new BodyFramer(framing), close: r.head.close || framing.kind === 'close', untilClose: framing.kind === 'close' };
        headBytes = r.head.headBytes;
      }
      // The head (when just parsed) and the body bytes that follow it go out as one buffer.
      const step = this.resp.framer.feed(this.respBuf, headBytes);
      if (step.error !== undefined) {
        if (headBytes > 0) this.client.write(this.respBuf.subarray(0, headBytes));
        return this.upstreamFailed(502, `bad upstream body: ${step.error}`);
      }
      const out = headBytes + step.consumed;
      if (out > 0) this.client.write(this.respBuf.subarray(0, out));
      this.respBuf = this.respBuf.subarray(out);
      headBytes = 0;
      if (!step.done) return;
      this.responseDone();
    }
    if (this.respBuf.length === 0 && this.resp === undefined) this.flushLocal();
  }

  private responseDone(): void {
    const p = this.queue.shift()!;
    const close = this.resp?.close === true;
    this.resp = undefined;
    if (close) {
      this.upstreamUsable = false;
      this.upstream?.end();
      this.upstream = undefined;
      // Requests already written to that connection will not be answered by it.
      if (this.queue.some((q) => q.kind === 'upstream')) return this.finish();
    }
    if (p.close) return this.finish();
    this.flushLocal();
  }

  private onUpstreamEnd(): void {
    if (this.resp?.untilClose === true) {
      // Close-delimited body: the end of the connection is the end of the response.
      this.queue.shift();
      this.resp = undefined;
      return this.finish();
    }
    this.upstreamUsable = false;
    this.upstream = undefined;
    if (this.queue.some((q) => q.kind === 'upstream')) this.upstreamFailed(502, 'upstream closed the connection');
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
    if (this.resp === undefined && this.queue[0]?.kind === 'upstream' && !this.closed) {
      this.client.write(localResponse(status, STATUS_TEXT[status] ?? 'Error', `${reason}\r\n`, true));
    }
    this.finish();
  }

  private onClientEnd(): void {
    this.clientDone = true;
    if (this.queue.length === 0) this.finish();
  }

  /** Ends the client connection gracefully after what was written. */
  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearHeadTimer();
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
    this.clearHeadTimer();
    this.upstream?.destroy();
    this.upstream = undefined;
    this.client.destroy();
  }
}
