import { describe, expect, it } from 'vitest';
import { frameHttpBody, parseHttpRequest, parseHttpResponse } from '../../bpf/index.js';

// The native L7 data path's HTTP/1.x parser (bpf/napi/src/http-parse.cc) through its test hooks:
// strict heads (anything ambiguous is an error: a request the proxy cannot judge never passes),
// response framing, and body framing across reads.
const req = (s: string, withHeaders = true) => parseHttpRequest(Buffer.from(s, 'latin1'), withHeaders);
const resp = (s: string, method = 'GET') => parseHttpResponse(Buffer.from(s, 'latin1'), method);
const bufs = (...parts: string[]) => parts.map((p) => Buffer.from(p, 'latin1'));

describe('request heads', () => {
  it('parses a GET with query, host and headers', () => {
    const r = req('GET /public/a?x=1 HTTP/1.1\r\nHost: web:80\r\nX-Team: a\r\n\r\nGET /next');
    expect(r.kind).toBe('ok');
    if (r.kind !== 'ok') return;
    expect(r.head).toMatchObject({ method: 'GET', path: '/public/a', target: '/public/a?x=1', version: '1.1', host: 'web:80', close: false, upgrade: false, framing: { kind: 'none' } });
    expect(r.head.headers).toContainEqual(['X-Team', 'a']);
    expect(r.head.headBytes).toBe('GET /public/a?x=1 HTTP/1.1\r\nHost: web:80\r\nX-Team: a\r\n\r\n'.length);
  });

  it('reports incomplete heads, and 431 past the size and count limits', () => {
    expect(req('GET / HTTP/1.1\r\nHost: a\r\n').kind).toBe('incomplete');
    expect(req('GET / HTTP/1.1\r\nHost: a\r\n\r').kind).toBe('incomplete');
    expect(req(`GET / HTTP/1.1\r\nX: ${'a'.repeat(20000)}`)).toMatchObject({ kind: 'error', status: 431, reason: 'head larger than 16384 bytes' });
    expect(req(`GET / HTTP/1.1\r\nHost: a\r\n${'X: 1\r\n'.repeat(101)}\r\n`)).toMatchObject({ kind: 'error', status: 431, reason: 'more than 100 headers' });
  });

  it('rejects malformed and ambiguous requests with 400, naming why', () => {
    const cases: [string, string][] = [
      ['GET /\r\n\r\n', 'malformed request line'],
      ['GET / HTTP/1.1\r\n\r\n', 'HTTP/1.1 request without Host'],
      ['GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'more than one Host header'],
      ['GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n', 'obsolete header line folding'],
      ['GET / HTTP/1.1\nHost: a\r\n\r\n', 'invalid characters or line endings in head'],
      ['GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n', 'invalid characters or line endings in head'],
      ['G(T / HTTP/1.1\r\nHost: a\r\n\r\n', 'invalid method "G(T"'],
      ['GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', 'both Transfer-Encoding and Content-Length'],
      ['GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', 'conflicting Content-Length values'],
      ['GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 'invalid Content-Length "-1"'],
      ['GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 'unsupported Transfer-Encoding "gzip, chunked"'],
      ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n', 'unsupported Transfer-Encoding ""'],
      ['GET relative HTTP/1.1\r\nHost: a\r\n\r\n', 'invalid request target "relative"'],
      ['GET / HTTP/1.1\r\nBad Name: a\r\nHost: a\r\n\r\n', 'invalid header name "Bad Name"'],
      ['GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n', 'header line without a name'],
    ];
    for (const [bad, reason] of cases) expect(req(bad), JSON.stringify(bad)).toEqual({ kind: 'error', status: 400, reason });
    expect(req('GET / HTTP/2.0\r\nHost: a\r\n\r\n')).toMatchObject({ kind: 'error', status: 505 });
    // Without the header list, the same requests are still rejected.
    expect(req('GET / HTTP/1.1\r\nHost: a\r\nBad Name: a\r\n\r\n', false)).toMatchObject({ kind: 'error', status: 400 });
  });

  it('knows framing, close and upgrade', () => {
    expect(req('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nConnection: close\r\n\r\n')).toMatchObject({ kind: 'ok', head: { framing: { kind: 'length', length: 12 }, close: true } });
    expect(req('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n')).toMatchObject({ kind: 'ok', head: { framing: { kind: 'none' } } });
    expect(req('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\n\r\n')).toMatchObject({ kind: 'ok', head: { framing: { kind: 'length', length: 7 } } });
    expect(req('POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n')).toMatchObject({ kind: 'ok', head: { framing: { kind: 'chunked' } } });
    expect(req('GET /x HTTP/1.0\r\n\r\n')).toMatchObject({ kind: 'ok', head: { close: true, version: '1.0' } });
    expect(req('GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')).toMatchObject({ kind: 'ok', head: { close: false } });
    expect(req('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')).toMatchObject({ kind: 'ok', head: { upgrade: true } });
    expect(req('CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n')).toMatchObject({ kind: 'ok', head: { upgrade: true, path: 'a:443' } });
    expect(req('GET http://a.example/p/q?z HTTP/1.1\r\nHost: a.example\r\n\r\n')).toMatchObject({ kind: 'ok', head: { path: '/p/q' } });
    expect(req('GET HTTP://a.example?z HTTP/1.1\r\nHost: a.example\r\n\r\n')).toMatchObject({ kind: 'ok', head: { path: '/' } });
    expect(req('OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n')).toMatchObject({ kind: 'ok', head: { path: '*' } });
    expect(req('\r\n\r\nGET /after-empty-lines HTTP/1.1\r\nHost: a\r\n\r\n')).toMatchObject({ kind: 'ok', head: { path: '/after-empty-lines' } });
  });

  it('reads Host, framing, Connection and Upgrade without the header list', () => {
    const r = req('POST /a?b HTTP/1.1\r\nhOST: h\r\nX: 1\r\nconnection: Keep-Alive, CLOSE\r\ncontent-length: 7\r\n\r\n', false);
    expect(r).toMatchObject({ kind: 'ok', head: { method: 'POST', path: '/a', target: '/a?b', host: 'h', headers: [], close: true, framing: { kind: 'length', length: 7 } } });
  });
});

describe('response heads', () => {
  it('parses status and framing (HEAD, 204, 304, 1xx carry no body; no length = until close)', () => {
    expect(resp('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc')).toMatchObject({ kind: 'ok', head: { status: 200, close: false, framing: { kind: 'length', length: 3 } } });
    expect(resp('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n', 'HEAD')).toMatchObject({ kind: 'ok', head: { framing: { kind: 'none' } } });
    expect(resp('HTTP/1.1 200 OK\r\n\r\n')).toMatchObject({ kind: 'ok', head: { framing: { kind: 'close' } } });
    expect(resp('HTTP/1.1 204 No Content\r\n\r\n')).toMatchObject({ kind: 'ok', head: { framing: { kind: 'none' } } });
    expect(resp('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')).toMatchObject({ kind: 'ok', head: { framing: { kind: 'chunked' } } });
    expect(resp('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok')).toMatchObject({ kind: 'ok', head: { status: 200, close: true, headBytes: 80 } });
    expect(resp('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n')).toMatchObject({ kind: 'ok', head: { framingError: 'conflicting Content-Length values' } });
    expect(resp('HTP/1.1 200 OK\r\n\r\n')).toEqual({ kind: 'error', status: 502, reason: 'malformed status line' });
    expect(resp('HTTP/1.1 20 OK\r\n\r\n')).toMatchObject({ kind: 'error', status: 502 });
  });
});

describe('body framing', () => {
  it('counts Content-Length bodies across reads', () => {
    expect(frameHttpBody('length', 5, bufs('abc', 'deXYZ'))).toEqual([
      { consumed: 3, done: false },
      { consumed: 2, done: true },
    ]);
  });

  it('follows chunked framing byte by byte, with extensions and trailers', () => {
    const body = '5;ext=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n';
    expect(frameHttpBody('chunked', 0, bufs(`${body}GET /`))).toEqual([{ consumed: body.length, done: true }]);
    const steps = frameHttpBody('chunked', 0, bufs(...body.split('')));
    expect(steps.reduce((n, s) => n + s.consumed, 0)).toBe(body.length);
    expect(steps.map((s) => s.done)).toEqual(body.split('').map((_, i) => i === body.length - 1));
    expect(frameHttpBody('chunked', 0, bufs('zz\r\n'))[0]?.error).toBe('invalid chunk size line "zz"');
    expect(frameHttpBody('chunked', 0, bufs('5 \r\n'))[0]?.error).toMatch(/chunk size/);
    expect(frameHttpBody('chunked', 0, bufs('2\r\nabX\r\n'))[0]?.error).toBe('missing CRLF after chunk data');
    expect(frameHttpBody('chunked', 0, bufs('2\nab'))[0]?.error).toBe('bare LF in chunked body');
    expect(frameHttpBody('chunked', 0, bufs('1'.repeat(5000)))[0]?.error).toBe('chunk line too long');
  });
});
