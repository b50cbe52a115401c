import type { Framing } from './http-head.js';

/** Result of feeding bytes: how many belong to this body, and whether it ended. */
export interface FrameStep {
  readonly consumed: number;
  readonly done: boolean;
  readonly error?: string;
}

const MAX_CHUNK_LINE = 4096;

/**
 * Finds where a message body ends in a byte stream without copying it (the proxy forwards the
 * bytes as they are): Content-Length, chunked (sizes, extensions and trailers), or until close.
 */
export class BodyFramer {
  private remaining: number;
  private state: 'size' | 'data' | 'data-crlf' | 'trailer' | 'done';
  private line = '';
  /** Set when the body is malformed; nothing more is consumed. */
  error: string | undefined;

  constructor(private readonly framing: Framing) {
    this.remaining = framing.kind === 'length' ? framing.length : 0;
    this.state = framing.kind === 'none' ? 'done' : framing.kind === 'chunked' ? 'size' : 'data';
  }

  get done(): boolean {
    return this.state === 'done';
  }

  feed(buf: Buffer, offset = 0): FrameStep {
    const consumed = this.consume(buf, offset);
    return this.error !== undefined ? { consumed, done: false, error: this.error } : { consumed, done: this.done };
  }

  /** Bytes of buf[offset..] that belong to the body (no allocation: the proxy calls it per read). */
  consume(buf: Buffer, offset = 0): number {
    if (this.state === 'done' || this.error !== undefined) return 0;
    if (this.framing.kind === 'close') return buf.length - offset;
    if (this.framing.kind === 'length') {
      const n = Math.min(this.remaining, buf.length - offset);
      this.remaining -= n;
      if (this.remaining === 0) this.state = 'done';
      return n;
    }
    return this.consumeChunked(buf, offset);
  }

  private fail(reason: string, consumed: number): number {
    this.error = reason;
    return consumed;
  }

  private consumeChunked(buf: Buffer, offset: number): number {
    let i = offset;
    while (i < buf.length && this.state !== 'done') {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, buf.length - i);
        this.remaining -= n;
        i += n;
        if (this.remaining === 0) this.state = 'data-crlf';
        continue;
      }
      // Line-oriented states: size line, CRLF after data, trailer lines.
      const nl = buf.indexOf(10, i);
      const end = nl < 0 ? buf.length : nl + 1;
      this.line += buf.toString('latin1', i, end);
      i = end;
      if (this.line.length > MAX_CHUNK_LINE) return this.fail('chunk line too long', i - offset);
      if (nl < 0) break;
      if (!this.line.endsWith('\r\n')) return this.fail('bare LF in chunked body', i - offset);
      const line = this.line.slice(0, -2);
      this.line = '';
      if (this.state === 'data-crlf') {
        if (line !== '') return this.fail('missing CRLF after chunk data', i - offset);
        this.state = 'size';
      } else if (this.state === 'size') {
        const m = /^([0-9A-Fa-f]{1,12})(?:[ \t]*;.*)?$/.exec(line);
        if (m === null) return this.fail(`invalid chunk size line ${JSON.stringify(line.slice(0, 40))}`, i - offset);
        this.remaining = parseInt(m[1]!, 16);
        this.state = this.remaining === 0 ? 'trailer' : 'data';
      } else if (line === '') this.state = 'done';
    }
    return i - offset;
  }
}
