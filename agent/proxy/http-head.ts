/*
 * HTTP/1.1 message heads, parsed strictly from a byte buffer (the proxy forwards the original
 * bytes, so parsing only has to decide, never to re-serialise). Anything ambiguous is an error:
 * a request the proxy cannot judge must never be passed through.
 */

export interface HeadLimits {
  /** Largest head (request/status line + headers + CRLFCRLF), bytes. */
  readonly maxHeadBytes: number;
  readonly maxHeaders: number;
}

export const DEFAULT_LIMITS: HeadLimits = { maxHeadBytes: 16 * 1024, maxHeaders: 100 };

export type Framing = { readonly kind: 'none' } | { readonly kind: 'length'; readonly length: number } | { readonly kind: 'chunked' } | { readonly kind: 'close' };

export interface RequestHead {
  readonly method: string;
  /** Path without the query string (what policy matches). */
  readonly path: string;
  readonly target: string;
  readonly version: '1.0' | '1.1';
  readonly host?: string;
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
  readonly headers: readonly (readonly [string, string])[];
  readonly close: boolean;
  readonly headBytes: number;
}

export type ParseResult<T> = { readonly kind: 'incomplete' } | { readonly kind: 'error'; readonly status: number; readonly reason: string } | { readonly kind: 'ok'; readonly head: T };

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** A CR or LF that is not part of a CRLF line ending (a bare line ending), a NUL or a DEL. */
const BAD_IN_HEAD = /[\0\x7f]|\r(?!\n)|(?<!\r)\n/;
const INCOMPLETE = { kind: 'incomplete' } as const;

function err(status: number, reason: string): { kind: 'error'; status: number; reason: string } {
  return { kind: 'error', status, reason };
}

interface RawHead {
  readonly startLine: string;
  readonly headers: [string, string][];
  readonly headBytes: number;
}

/** Splits the head off the buffer; validates header syntax (no obs-fold, no bare LF, no NUL). */
function splitHead(buf: Buffer, limits: HeadLimits): ParseResult<RawHead> {
  // Tolerate (only) empty lines before a message, as RFC 9112 2.2 allows.
  let start = 0;
  while (start + 1 < buf.length && buf[start] === 13 && buf[start + 1] === 10) start += 2;
  const end = buf.indexOf(CRLFCRLF, start);
  if (end < 0) return buf.length > limits.maxHeadBytes ? err(431, `head larger than ${limits.maxHeadBytes} bytes`) : INCOMPLETE;
  if (end + 4 > limits.maxHeadBytes) return err(431, `head larger than ${limits.maxHeadBytes} bytes`);
  const text = buf.toString('latin1', start, end);
  // Checked once over the head: after splitting on CRLF no line may hold a CR, LF, NUL or DEL.
  if (BAD_IN_HEAD.test(text)) return err(400, 'invalid characters or line endings in head');
  const lines = text.split('\r\n');
  const headers: [string, string][] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith(' ') || line.startsWith('\t')) return err(400, 'obsolete header line folding');
    const colon = line.indexOf(':');
    if (colon <= 0) return err(400, 'header line without a name');
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return err(400, `invalid header name ${JSON.stringify(name)}`);
    headers.push([name, line.slice(colon + 1).trim()]);
    if (headers.length > limits.maxHeaders) return err(431, `more than ${limits.maxHeaders} headers`);
  }
  return { kind: 'ok', head: { startLine: lines[0]!, headers, headBytes: end + 4 } };
}

function values(headers: readonly (readonly [string, string])[], name: string): string[] {
  const out: string[] = [];
  // Length first: most names differ in length, which spares lower-casing them.
  for (const [n, v] of headers) if (n.length === name.length && n.toLowerCase() === name) out.push(v);
  return out;
}

function tokens(headers: readonly (readonly [string, string])[], name: string): string[] {
  return values(headers, name).flatMap((v) => v.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t !== ''));
}

/** Body framing from Transfer-Encoding / Content-Length (RFC 9112 6.3); smuggling shapes are errors. */
function bodyFraming(headers: readonly (readonly [string, string])[]): Framing | string {
  const te = tokens(headers, 'transfer-encoding');
  const cl = values(headers, 'content-length');
  if (te.length > 0) {
    if (cl.length > 0) return 'both Transfer-Encoding and Content-Length';
    if (te.length !== 1 || te[0] !== 'chunked') return `unsupported Transfer-Encoding ${JSON.stringify(te.join(', '))}`;
    return { kind: 'chunked' };
  }
  if (cl.length === 0) return { kind: 'none' };
  const v0 = cl[0]!;
  if (cl.length === 1 && /^[0-9]{1,15}$/.test(v0)) {
    // The common shape (one plain value) needs no splitting; same result as below.
    const length = Number(v0);
    return length === 0 ? { kind: 'none' } : { kind: 'length', length };
  }
  const distinct = new Set(cl.flatMap((v) => v.split(',').map((s) => s.trim())));
  if (distinct.size !== 1) return 'conflicting Content-Length values';
  const v = [...distinct][0]!;
  if (!/^[0-9]{1,15}$/.test(v)) return `invalid Content-Length ${JSON.stringify(v)}`;
  const length = Number(v);
  return length === 0 ? { kind: 'none' } : { kind: 'length', length };
}

function wantsClose(version: '1.0' | '1.1', headers: readonly (readonly [string, string])[]): boolean {
  const conn = tokens(headers, 'connection');
  return version === '1.0' ? !conn.includes('keep-alive') : conn.includes('close');
}

export function parseRequestHead(buf: Buffer, limits: HeadLimits = DEFAULT_LIMITS): ParseResult<RequestHead> {
  const raw = splitHead(buf, limits);
  if (raw.kind !== 'ok') return raw;
  const { startLine, headers, headBytes } = raw.head;
  const m = /^([^ ]+) ([^ ]+) HTTP\/(1\.[01])$/.exec(startLine);
  if (m === null) return /^[^ ]+ [^ ]+ HTTP\/\d/.test(startLine) ? err(505, 'only HTTP/1.0 and HTTP/1.1 are supported') : err(400, 'malformed request line');
  const [, method, target, version] = m as unknown as [string, string, string, '1.0' | '1.1'];
  if (!TOKEN.test(method)) return err(400, `invalid method ${JSON.stringify(method)}`);
  const hosts = values(headers, 'host');
  if (hosts.length > 1) return err(400, 'more than one Host header');
  if (version === '1.1' && hosts.length === 0) return err(400, 'HTTP/1.1 request without Host');
  let path: string;
  if (target.startsWith('/')) path = target;
  else if (/^https?:\/\//i.test(target)) {
    // Absolute form: policy still matches the path (and the authority stands for Host).
    const rest = target.replace(/^https?:\/\/[^/?#]*/i, '');
    path = rest === '' || rest.startsWith('?') ? `/${rest}` : rest;
  } else if (target === '*' && method === 'OPTIONS') path = '*';
  else if (method === 'CONNECT') path = target;
  else return err(400, `invalid request target ${JSON.stringify(target)}`);
  const q = path.search(/[?#]/);
  if (q >= 0) path = path.slice(0, q);
  const framing = bodyFraming(headers);
  if (typeof framing === 'string') return err(400, framing);
  const upgrade = method === 'CONNECT' || values(headers, 'upgrade').length > 0;
  const host = hosts[0];
  return {
    kind: 'ok',
    head: { method, path, target, version, ...(host !== undefined ? { host } : {}), headers, framing, close: wantsClose(version, headers), upgrade, headBytes },
  };
}

/** Response framing depends on the request: HEAD, 1xx, 204 and 304 carry no body (RFC 9112 6.3). */
export function responseFraming(head: ResponseHead, requestMethod: string): Framing | string {
  if (requestMethod === 'HEAD' || (head.status >= 100 && head.status < 200) || head.status === 204 || head.status === 304) return { kind: 'none' };
  const f = bodyFraming(head.headers);
  if (typeof f === 'string') return f;
  if (f.kind === 'none' && values(head.headers, 'content-length').length === 0) return { kind: 'close' };
  return f;
}

export function parseResponseHead(buf: Buffer, limits: HeadLimits = { maxHeadBytes: 64 * 1024, maxHeaders: 200 }): ParseResult<ResponseHead> {
  const raw = splitHead(buf, limits);
  if (raw.kind !== 'ok') return raw.kind === 'error' ? err(502, raw.reason) : raw;
  const { startLine, headers, headBytes } = raw.head;
  const m = /^HTTP\/(1\.[01]) ([0-9]{3})(?: .*)?$/.exec(startLine);
  if (m === null) return err(502, 'malformed status line');
  const version = m[1] as '1.0' | '1.1';
  return { kind: 'ok', head: { status: Number(m[2]), version, headers, close: wantsClose(version, headers), headBytes } };
}
