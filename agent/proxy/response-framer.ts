import { BodyFramer } from './body-framer.js';
import { parseResponseHead, responseFraming, type HeadLimits } from './http-head.js';

const RESPONSE_LIMITS: HeadLimits = { maxHeadBytes: 64 * 1024, maxHeaders: 200 };

/**
 * Finds where each response ends in the upstream byte stream: only the status line and the
 * framing headers are read, the bytes themselves are forwarded as they came. One response at a
 * time, in request order (the caller gives the request method: HEAD answers have no body).
 */
export class ResponseFramer {
  /** Part of a final response has been framed (its head at least). */
  started = false;
  /** `feed` stopped at the end of a final response. */
  done = false;
  /** The last final response asked for the upstream connection to close after it. */
  close = false;
  /** Set by `feed` when the response is malformed: the stream cannot be followed further. */
  error: string | undefined;
  private untilEnd = false;
  private remaining = 0;
  private chunked: BodyFramer | undefined;

  /** A started response whose body ends with the connection. */
  get untilClose(): boolean {
    return this.started && this.untilEnd;
  }

  /**
   * Frames buf from pos for a request of `method`; returns where it stopped: the end of a final
   * response (`done`), the end of buf, or the start of malformed bytes (`error`). Interim (1xx)
   * answers are passed over: they are forwarded, and the final answer follows.
   */
  feed(buf: Buffer, pos: number, method: string): number {
    this.done = false;
    while (!this.started) {
      if (pos >= buf.length) return pos;
      const r = parseResponseHead(pos === 0 ? buf : buf.subarray(pos), RESPONSE_LIMITS, false);
      if (r.kind === 'incomplete') return pos;
      if (r.kind === 'error') return this.fail(`bad upstream response: ${r.reason}`, pos);
      const framing = responseFraming(r.head, method);
      if (typeof framing === 'string') return this.fail(`bad upstream response: ${framing}`, pos);
      if (r.head.status === 101) return this.fail('upstream switched protocols without an upgrade request', pos);
      pos += r.head.headBytes;
      if (r.head.status < 200) continue;
      this.started = true;
      this.close = r.head.close || framing.kind === 'close';
      this.untilEnd = framing.kind === 'close';
      this.remaining = framing.kind === 'length' ? framing.length : 0;
      this.chunked = framing.kind === 'chunked' ? new BodyFramer(framing) : undefined;
    }
    if (this.chunked !== undefined) {
      const n = this.chunked.consume(buf, pos);
      if (this.chunked.error !== undefined) return this.fail(`bad upstream body: ${this.chunked.error}`, pos);
      pos += n;
      if (!this.chunked.done) return pos;
    } else if (this.untilEnd) {
      return buf.length;
    } else {
      const n = Math.min(this.remaining, buf.length - pos);
      this.remaining -= n;
      pos += n;
      if (this.remaining > 0) return pos;
    }
    this.started = false;
    this.chunked = undefined;
    this.done = true;
    return pos;
  }

  private fail(reason: string, pos: number): number {
    this.error = reason;
    return pos;
  }
}
