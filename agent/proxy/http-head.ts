/*
 * HTTP/1.1 message heads, parsed strictly from a byte buffer (the proxy forwards the original
 * bytes, so parsing only has to decide, never to re-serialise). Anything ambiguous is an error:
 * a request the proxy cannot judge must never be passed through.
 */
import { err, INCOMPLETE, scanHead, TOKEN_BYTE, type HeadLimits, type ScannedHead } from './head-scan.js';

export type { HeadLimits } from './head-scan.js';

export const DEFAULT_LIMITS: HeadLimits = { maxHeadBytes: 16 * 1024, maxHeaders: 100 };

export type Framing = { readonly kind: 'none' } | { readonly kind: 'length'; readonly length: number } | { readonly kind: 'chunked' } | { readonly kind: 'close' };

export interface RequestHead {
  readonly method: string;
  /** Path without the query string (what policy matches). */
  readonly path: string;
  readonly target: string;
  readonly version: '1.0' | '1.1';
  readonly host?: string;
  /** Every header; empty when the parse was asked to skip them (no rule reads headers). */
  readonly headers: readonly (readonly [string, string])[];
  readonly framing: Framing;
  /** The client wants the connection closed after this exchange. */
  readonly close: boolean;
  /** Upgrade or CONNECT: a stream the proxy does not inspect. */
  readonly upgrade: boolean;
  /** Bytes of the head in the buffer. */
  readonly headBytes: number;
}

export interface ResponseHead {
  readonly status: number;
  readonly version: '1.0' | '1.1';
  /** Every header; empty when the parse was asked to skip them. */
  readonly headers: readonly (readonly [string, string])[];
  readonly close: boolean;
  readonly headBytes: number;
  /** Framing from Content-Length / Transfer-Encoding alone (an error text when ambiguous). */
  readonly bodyFraming: Framing | string;
  readonly hasContentLength: boolean;
}

export type ParseResult<T> = { readonly kind: 'incomplete' } | { readonly kind: 'error'; readonly status: number; readonly reason: string } | { readonly kind: 'ok'; readonly head: T };

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const NONE: Framing = { kind: 'none' };
const CHUNKED: Framing = { kind: 'chunked' };
const CLOSE: Framing = { kind: 'close' };
const NO_HEADERS: readonly (readonly [string, string])[] = [];

/** Body framing from Transfer-Encoding / Content-Length (RFC 9112 6.3); smuggling shapes are errors. */
function bodyFraming(h: ScannedHead): Framing | string {
  const cl = h.contentLength;
  if (h.transferEncoding !== undefined) {
    if (cl !== undefined) return 'both Transfer-Encoding and Content-Length';
    const te = h.transferEncoding.flatMap((v) => v.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t !== ''));
    if (te.length !== 1 || te[0] !== 'chunked') return `unsupported Transfer-Encoding ${JSON.stringify(te.join(', '))}`;
    return CHUNKED;
  }
  if (cl === undefined) return NONE;
  const v0 = cl[0]!;
  if (cl.length === 1 && /^[0-9]{1,15}$/.test(v0)) {
    // The common shape (one plain value) needs no splitting; same result as below.
    const length = Number(v0);
    return length === 0 ? NONE : { kind: 'length', length };
  }
  const distinct = new Set(cl.flatMap((v) => v.split(',').map((s) => s.trim())));
  if (distinct.size !== 1) return 'conflicting Content-Length values';
  const v = [...distinct][0]!;
  if (!/^[0-9]{1,15}$/.test(v)) return `invalid Content-Length ${JSON.stringify(v)}`;
  const length = Number(v);
  return length === 0 ? NONE : { kind: 'length', length };
}

function wantsClose(version: '1.0' | '1.1', h: ScannedHead): boolean {
  return version === '1.0' ? !h.connectionKeepAlive : h.connectionClose;
}

/** "HTTP/1.0" or "HTTP/1.1" at buf[i, i+8). */
function httpVersionAt(buf: Buffer, i: number): '1.0' | '1.1' | undefined {
  if (buf[i] !== 72 || buf[i + 1] !== 84 || buf[i + 2] !== 84 || buf[i + 3] !== 80 || buf[i + 4] !== 47 || buf[i + 5] !== 49 || buf[i + 6] !== 46) return undefined;
  const minor = buf[i + 7];
  return minor === 48 ? '1.0' : minor === 49 ? '1.1' : undefined;
}

interface RequestLine {
  readonly method: string;
  readonly target: string;
  readonly version: '1.0' | '1.1';
}

const COMMON_METHODS = ['GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'PATCH', 'OPTIONS'];

/** The method as a string: the common ones without making a new string per request. */
function methodAt(buf: Buffer, s: number, e: number): string {
  for (const m of COMMON_METHODS) {
    if (m.length !== e - s) continue;
    let i = 0;
    while (i < m.length && buf[s + i] === m.charCodeAt(i)) i++;
    if (i === m.length) return m;
  }
  return buf.toString('latin1', s, e);
}

/** The request line on bytes: "<token> <target without spaces> HTTP/1.x"; undefined otherwise. */
function requestLineFast(buf: Buffer, s: number, e: number): RequestLine | undefined {
  let sp1 = s;
  while (sp1 < e && TOKEN_BYTE[buf[sp1]!] === 1) sp1++;
  if (sp1 === s || buf[sp1] !== 32) return undefined;
  let sp2 = sp1 + 1;
  while (sp2 < e && buf[sp2] !== 32) sp2++;
  if (sp2 === sp1 + 1 || e - sp2 !== 9) return undefined;
  const version = httpVersionAt(buf, sp2 + 1);
  if (version === undefined) return undefined;
  return { method: methodAt(buf, s, sp1), target: buf.toString('latin1', sp1 + 1, sp2), version };
}

/** The request line as text, for every shape the fast path does not take (mostly errors). */
function requestLineSlow(line: string): RequestLine | { kind: 'error'; status: number; reason: string } {
  const m = /^([^ ]+) ([^ ]+) HTTP\/(1\.[01])$/.exec(line);
  if (m === null) return /^[^ ]+ [^ ]+ HTTP\/\d/.test(line) ? err(505, 'only HTTP/1.0 and HTTP/1.1 are supported') : err(400, 'malformed request line');
  const [, method, target, version] = m as unknown as [string, string, string, '1.0' | '1.1'];
  if (!TOKEN.test(method)) return err(400, `invalid method ${JSON.stringify(method)}`);
  return { method, target, version };
}

/** The path policy matches: origin form as is, absolute form's path; without query or fragment. */
function targetPath(method: string, target: string): string | undefined {
  let path: string;
  if (target.charCodeAt(0) === 47) path = target;
  else if (/^https?:\/\//i.test(target)) {
    // Absolute form: policy still matches the path (and the authority stands for Host).
    const rest = target.replace(/^https?:\/\/[^/?#]*/i, '');
    path = rest === '' || rest.startsWith('?') ? `/${rest}` : rest;
  } else if (target === '*' && method === 'OPTIONS') path = '*';
  else if (method === 'CONNECT') path = target;
  else return undefined;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 63 || c === 35) return path.slice(0, i);
  }
  return path;
}

/** `withHeaders` false skips building the header list (the proxy's rules need it only for header matches). */
export function parseRequestHead(buf: Buffer, limits: HeadLimits = DEFAULT_LIMITS, withHeaders = true): ParseResult<RequestHead> {
  const h = scanHead(buf, limits, withHeaders);
  if (h.kind !== 'ok') return h;
  let line = requestLineFast(buf, h.start, h.startEnd);
  if (line === undefined) {
    const slow = requestLineSlow(buf.toString('latin1', h.start, h.startEnd));
    if ('kind' in slow) return slow;
    line = slow;
  }
  const { method, target, version } = line;
  if (h.hostCount > 1) return err(400, 'more than one Host header');
  if (version === '1.1' && h.hostCount === 0) return err(400, 'HTTP/1.1 request without Host');
  const path = targetPath(method, target);
  if (path === undefined) return err(400, `invalid request target ${JSON.stringify(target)}`);
  const framing = bodyFraming(h);
  if (typeof framing === 'string') return err(400, framing);
  const upgrade = method === 'CONNECT' || h.upgrade;
  const headers = h.headers ?? NO_HEADERS;
  const close = wantsClose(version, h);
  const headBytes = h.headBytes;
  // Two literal shapes rather than a spread: this runs per request.
  const host = h.host;
  const head: RequestHead =
    host !== undefined ? { method, path, target, version, host, headers, framing, close, upgrade, headBytes } : { method, path, target, version, headers, framing, close, upgrade, headBytes };
  return { kind: 'ok', head };
}

/** Response framing depends on the request: HEAD, 1xx, 204 and 304 carry no body (RFC 9112 6.3). */
export function responseFraming(head: ResponseHead, requestMethod: string): Framing | string {
  if (requestMethod === 'HEAD' || (head.status >= 100 && head.status < 200) || head.status === 204 || head.status === 304) return NONE;
  const f = head.bodyFraming;
  if (typeof f === 'string') return f;
  if (f.kind === 'none' && !head.hasContentLength) return CLOSE;
  return f;
}

const RESPONSE_LIMITS: HeadLimits = { maxHeadBytes: 64 * 1024, maxHeaders: 200 };

export function parseResponseHead(buf: Buffer, limits: HeadLimits = RESPONSE_LIMITS, withHeaders = true): ParseResult<ResponseHead> {
  const h = scanHead(buf, limits, withHeaders);
  if (h.kind !== 'ok') return h.kind === 'error' ? err(502, h.reason) : INCOMPLETE;
  // "HTTP/1.x NNN" and then nothing or a space and a reason phrase.
  const s = h.start;
  const version = h.startEnd - s >= 12 ? httpVersionAt(buf, s) : undefined;
  const d0 = buf[s + 9]! - 48;
  const d1 = buf[s + 10]! - 48;
  const d2 = buf[s + 11]! - 48;
  if (version === undefined || buf[s + 8] !== 32 || d0 < 0 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9 || (h.startEnd > s + 12 && buf[s + 12] !== 32)) return err(502, 'malformed status line');
  return {
    kind: 'ok',
    head: { status: d0 * 100 + d1 * 10 + d2, version, headers: h.headers ?? NO_HEADERS, close: wantsClose(version, h), headBytes: h.headBytes, bodyFraming: bodyFraming(h), hasContentLength: h.contentLength !== undefined },
  };
}
