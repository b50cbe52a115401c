import { describe, expect, it } from 'vitest';
import { BodyFramer } from './body-framer.js';
import { DEFAULT_LIMITS, parseRequestHead, parseResponseHead, responseFraming } from './http-head.js';

const req = (s: string) => parseRequestHead(Buffer.from(s, 'latin1'));

describe('parseRequestHead', () => {
  it('parses a GET with query, host and headers', () => {
    const r = req('GET /public/a?x=1 HTTP/1.1\r\nHost: web:80\r\nX-Team: a\r\n\r\nGET /next');
    expect(r.kind).toBe('ok');
    if (r.kind !== 'ok') return;
    expect(r.head).toMatchObject({ method: 'GET', path: '/public/a', target: '/public/a?x=1', version: '1.1', host: 'web:80', close: false, upgrade: false, framing: { kind: 'none' } });
    expect(r.head.headers).toContainEqual(['X-Team', 'a']);
    expect(r.head.headBytes).toBe('GET /public/a?x=1 HTTP/1.1\r\nHost: web:80\r\nX-Team: a\r\n\r\n'.length);
  });

  it('reports incomplete heads, and 431 past the size limit', () => {
    expect(req('GET / HTTP/1.1\r\nHost: a\r\n').kind).toBe('incomplete');
    const big = parseRequestHead(Buffer.from(`GET / HTTP/1.1\r\nX: ${'a'.repeat(20000)}`));
    expect(big).toMatchObject({ kind: 'error', status: 431 });
    const many = req(`GET / HTTP/1.1\r\nHost: a\r\n${'X: 1\r\n'.repeat(101)}\r\n`);
    expect(many).toMatchObject({ kind: 'error', status: 431 });
  });

  it('rejects malformed and ambiguous requests with 400 (never passes them through)', () => {
    for (const bad of [
      'GET /\r\n\r\n',
      'GET / HTTP/1.1\r\n\r\n', // no Host
      'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n',
      'GET / HTTP/1.1\nHost: a\r\n\r\n',
      'G(T / HTTP/1.1\r\nHost: a\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
      'GET relative HTTP/1.1\r\nHost: a\r\n\r\n',
      'GET / HTTP/1.1\r\nBad Name: a\r\nHost: a\r\n\r\n',
    ]) {
      expect(req(bad), JSON.stringify(bad)).toMatchObject({ kind: 'error', status: 400 });
    }
    expect(req('GET / HTTP/2.0\r\nHost: a\r\n\r\n')).toMatchObject({ kind: 'error', status: 505 });
  });

  it('knows framing, close and upgrade', () => {
    const post = req('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nConnection: close\r\n\r\n');
    expect(post).toMatchObject({ kind: 'ok', head: { framing: { kind: 'length', length: 12 }, close: true } });
    expect(req('POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n')).toMatchObject({ kind: 'ok', head: { framing: { kind: 'chunked' } } });
    expect(req('GET /x HTTP/1.0\r\n\r\n')).toMatchObject({ kind: 'ok', head: { close: true, version: '1.0' } });
    expect(req('GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')).toMatchObject({ kind: 'ok', head: { close: false } });
    expect(req('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')).toMatchObject({ kind: 'ok', head: { upgrade: true } });
    expect(req('CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n')).toMatchObject({ kind: 'ok', head: { upgrade: true } });
    expect(req('GET http://a.example/p/q?z HTTP/1.1\r\nHost: a.example\r\n\r\n')).toMatchObject({ kind: 'ok', head: { path: '/p/q' } });
  });
});

describe('parsing without the header list', () => {
  it('still reads Host, framing, Connection and Upgrade, and still rejects what it would reject', () => {
    const r = parseRequestHead(Buffer.from('POST /a?b HTTP/1.1\r\nhOST: h\r\nX: 1\r\nconnection: Keep-Alive, CLOSE\r\ncontent-length: 7\r\n\r\n'), DEFAULT_LIMITS, false);
    expect(r).toMatchObject({ kind: 'ok', head: { method: 'POST', path: '/a', target: '/a?b', host: 'h', headers: [], close: true, framing: { kind: 'length', length: 7 } } });
    expect(parseRequestHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nBad Name: a\r\n\r\n'), DEFAULT_LIMITS, false)).toMatchObject({ kind: 'error', status: 400 });
    // A Transfer-Encoding header without a coding is ambiguous too.
    expect(req('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\nContent-Length: 3\r\n\r\n')).toMatchObject({ kind: 'error', status: 400 });
    const resp = parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok'), undefined, false);
    expect(resp).toMatchObject({ kind: 'ok', head: { status: 200, close: true, headers: [], headBytes: 80 } });
  });
});

describe('responses', () => {
  it('parses status and framing (HEAD, 204, 304, 1xx carry no body; no length = until close)', () => {
    const r = parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc'));
    expect(r).toMatchObject({ kind: 'ok', head: { status: 200, close: false } });
    if (r.kind !== 'ok') return;
    expect(responseFraming(r.head, 'GET')).toEqual({ kind: 'length', length: 3 });
    expect(responseFraming(r.head, 'HEAD')).toEqual({ kind: 'none' });
    const nolen = parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'));
    if (nolen.kind === 'ok') expect(responseFraming(nolen.head, 'GET')).toEqual({ kind: 'close' });
    const empty = parseResponseHead(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'));
    if (empty.kind === 'ok') expect(responseFraming(empty.head, 'GET')).toEqual({ kind: 'none' });
    expect(parseResponseHead(Buffer.from('HTP/1.1 200 OK\r\n\r\n'))).toMatchObject({ kind: 'error', status: 502 });
  });
});

describe('BodyFramer', () => {
  it('counts Content-Length bodies across chunks', () => {
    const f = new BodyFramer({ kind: 'length', length: 5 });
    expect(f.feed(Buffer.from('abc'))).toEqual({ consumed: 3, done: false });
    expect(f.feed(Buffer.from('deXYZ'))).toEqual({ consumed: 2, done: true });
  });

  it('follows chunked framing byte by byte, with extensions and trailers', () => {
    const body = '5;ext=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n';
    const whole = new BodyFramer({ kind: 'chunked' });
    expect(whole.feed(Buffer.from(`${body}GET /`))).toEqual({ consumed: body.length, done: true });
    const slow = new BodyFramer({ kind: 'chunked' });
    let consumed = 0;
    for (let i = 0; i < body.length; i++) {
      const s = slow.feed(Buffer.from(body[i]!));
      consumed += s.consumed;
      expect(s.done).toBe(i === body.length - 1);
    }
    expect(consumed).toBe(body.length);
    expect(new BodyFramer({ kind: 'chunked' }).feed(Buffer.from('zz\r\n')).error).toMatch(/chunk size/);
    expect(new BodyFramer({ kind: 'chunked' }).feed(Buffer.from('2\r\nabX\r\n')).error).toMatch(/CRLF/);
  });
});
