/*
 * Byte-level scan of an HTTP/1.x head: validates its syntax in one pass over the bytes and makes
 * strings only for the few fields the proxy decides on (the bytes themselves are forwarded).
 */

export interface HeadLimits {
  /** Largest head (request/status line + headers + CRLFCRLF), bytes. */
  readonly maxHeadBytes: number;
  readonly maxHeaders: number;
}

export type ScanError = { readonly kind: 'error'; readonly status: number; readonly reason: string };

/** What the proxy needs from the header lines; the start line is left to the caller. */
export interface ScannedHead {
  readonly kind: 'ok';
  /** First byte of the start line, and the CR ending it. */
  readonly start: number;
  readonly startEnd: number;
  readonly headBytes: number;
  hostCount: number;
  host: string | undefined;
  /** Trimmed values of every Content-Length / Transfer-Encoding header, when any. */
  contentLength: string[] | undefined;
  transferEncoding: string[] | undefined;
  /** Connection header tokens the proxy acts on. */
  connectionClose: boolean;
  connectionKeepAlive: boolean;
  upgrade: boolean;
  /** Every header (name as sent, trimmed value), only when asked for. */
  headers: [string, string][] | undefined;
}

export const INCOMPLETE = { kind: 'incomplete' } as const;

export function err(status: number, reason: string): ScanError {
  return { kind: 'error', status, reason };
}

/** tchar of RFC 9110 5.6.2. */
export const TOKEN_BYTE = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN_BYTE[c.charCodeAt(0)] = 1;

/** What String.prototype.trim removes, among latin1 bytes (CR and LF cannot occur in a line). */
function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 11 || c === 12 || c === 160;
}

/** Case-insensitive compare of token bytes with a lower-case ASCII word ('-' and letters only). */
function nameIs(buf: Buffer, from: number, to: number, word: string): boolean {
  if (to - from !== word.length) return false;
  for (let i = 0; i < word.length; i++) if ((buf[from + i]! | 0x20) !== word.charCodeAt(i)) return false;
  return true;
}

/** Notes `close` and `keep-alive` among the comma-separated tokens of buf[from, to) (any case). */
function connectionTokens(h: ScannedHead, buf: Buffer, from: number, to: number): void {
  let i = from;
  while (i <= to) {
    let e = i;
    while (e < to && buf[e] !== 44) e++;
    let a = i;
    let b = e;
    while (a < b && isSpace(buf[a]!)) a++;
    while (b > a && isSpace(buf[b - 1]!)) b--;
    if (nameIs(buf, a, b, 'close')) h.connectionClose = true;
    else if (nameIs(buf, a, b, 'keep-alive')) h.connectionKeepAlive = true;
    i = e + 1;
  }
}

let lineEnds = new Int32Array(256);

/**
 * Finds the head, rejects anything ambiguous (bare CR/LF, NUL, DEL, obs-fold, bad names: 400;
 * size and count limits: 431) and collects the framing, Host, Connection and Upgrade fields.
 */
export function scanHead(buf: Buffer, limits: HeadLimits, withHeaders: boolean): ScannedHead | ScanError | typeof INCOMPLETE {
  // Tolerate (only) empty lines before a message, as RFC 9112 2.2 allows.
  let start = 0;
  while (start + 1 < buf.length && buf[start] === 13 && buf[start + 1] === 10) start += 2;
  // One pass up to the empty line that ends the head (`end`: where its CRLFCRLF starts): a CR
  // must start a CRLF, no bare LF, NUL or DEL (an error once the head is complete); notes line
  // ends, enough of them to reach the header-count limit. Nothing past maxHeadBytes is read.
  const maxLines = limits.maxHeaders + 2;
  if (lineEnds.length < maxLines) lineEnds = new Int32Array(maxLines);
  const max = limits.maxHeadBytes;
  const n = Math.min(buf.length, max);
  let lines = 0;
  let lineStart = start;
  let bad = false;
  let end = -1;
  for (let i = start; i < n; i++) {
    const c = buf[i]!;
    if (c > 13 && c !== 127) continue;
    if (c === 13) {
      if (buf[i + 1] !== 10) {
        bad = true;
        continue;
      }
      if (i === lineStart) {
        end = i - 2;
        break;
      }
      if (lines < maxLines) lineEnds[lines++] = i;
      lineStart = i + 2;
      i++;
    } else if (c === 10 || c === 0 || c === 127) bad = true;
  }
  if (end < 0) return buf.length > max ? err(431, `head larger than ${max} bytes`) : INCOMPLETE;
  if (end + 4 > max) return err(431, `head larger than ${max} bytes`);
  if (bad) return err(400, 'invalid characters or line endings in head');
  const h: ScannedHead = {
    kind: 'ok',
    start,
    startEnd: lineEnds[0]!,
    headBytes: end + 4,
    hostCount: 0,
    host: undefined,
    contentLength: undefined,
    transferEncoding: undefined,
    connectionClose: false,
    connectionKeepAlive: false,
    upgrade: false,
    headers: withHeaders ? [] : undefined,
  };
  let count = 0;
  for (let l = 1; l < lines; l++) {
    const ls = lineEnds[l - 1]! + 2;
    const le = lineEnds[l]!;
    const first = buf[ls];
    if (first === 32 || first === 9) return err(400, 'obsolete header line folding');
    let colon = ls;
    let token = true;
    while (colon < le && buf[colon] !== 58) {
      if (TOKEN_BYTE[buf[colon]!] === 0) token = false;
      colon++;
    }
    if (colon === le || colon === ls) return err(400, 'header line without a name');
    if (!token) return err(400, `invalid header name ${JSON.stringify(buf.toString('latin1', ls, colon))}`);
    let a = colon + 1;
    let b = le;
    while (a < b && isSpace(buf[a]!)) a++;
    while (b > a && isSpace(buf[b - 1]!)) b--;
    noteHeader(h, buf, ls, colon, a, b);
    if (++count > limits.maxHeaders) return err(431, `more than ${limits.maxHeaders} headers`);
  }
  return h;
}

function noteHeader(h: ScannedHead, buf: Buffer, ls: number, colon: number, a: number, b: number): void {
  h.headers?.push([buf.toString('latin1', ls, colon), buf.toString('latin1', a, b)]);
  // Length first: most names differ in length from the few the proxy reads.
  switch (colon - ls) {
    case 4:
      if (nameIs(buf, ls, colon, 'host')) {
        h.hostCount++;
        h.host ??= buf.toString('latin1', a, b);
      }
      return;
    case 7:
      if (nameIs(buf, ls, colon, 'upgrade')) h.upgrade = true;
      return;
    case 10:
      if (nameIs(buf, ls, colon, 'connection')) connectionTokens(h, buf, a, b);
      return;
    case 14:
      if (nameIs(buf, ls, colon, 'content-length')) (h.contentLength ??= []).push(buf.toString('latin1', a, b));
      return;
    case 17:
      if (nameIs(buf, ls, colon, 'transfer-encoding')) (h.transferEncoding ??= []).push(buf.toString('latin1', a, b));
      return;
    default:
  }
}
