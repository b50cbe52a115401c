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

  constructor(private readonly framing: Framing) {
    this.remaining = framing.kind === 'length' ? framing.length : 0;
    this.state = framing.kind === 'none' ? 'done' : framing.kind === 'chunked' ? 'size' : 'data';
  }

  get done(): boolean {
    return this.state === 'done';
  }

  feed(buf: Buffer, offset = 0): FrameStep {
    if (this.state === 'done') return { consumed: 0, done: true };
    if (this.framing.kind === 'close') return { consumed: buf.length - offset, done: false };
    if (this.framing.kind === 'length') {
      const n = Math.min(this.remaining, buf.length - offset);
      this.remaining -= n;
      if (this.remaining === 0) this.state = 'done';
      return { consumed: n, done: this.state === 'done' };
    }
    return this.feedChunked(buf, offset);
  }

  private feedChunked(buf: Buffer, offset: number): FrameStep {
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
      if (this.line.length > MAX_CHUNK_LINE) return { consumed: i - offset, done: false, error: 'chunk line too long' };
      if (nl < 0) break;
      if (!this.line.endsWith('\r\n')) return { consumed: i - offset, done: false, error: 'bare LF in chunked body' };
      const line = this.line.slice(0, -2);
      this.line = '';
      if (this.state === 'data-crlf') {
        if (line !== '') return { consumed: i - offset, done: false, error: 'missing CRLF after chunk data' };
        this.state = 'size';
      } else if (this.state === 'size') {
        const m = /^([0-9A-Fa-f]{1,12})(?:[ \t]*;.*)?$/.exec(line);
        if (m === null) return { consumed: i - offset, done: false, error: `invalid chunk size line ${JSON.stringify(line.slice(0, 40))}` };
        this.remaining = parseInt(m[1]!, 16);
        this.state = this.remaining === 0 ? 'trailer' : 'data';
      } else if (line === '') this.state = 'done';
    }
    return { consumed: i - offset, done: this.state === 'done' };
  }
}
