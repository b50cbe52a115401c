import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyConnection, DEFAULT_CONNECTION_LIMITS, type RequestDecision } from './connection.js';
import type { L7Decision } from './decision.js';

// Real loopback sockets: an HTTP server that logs what reaches it, a ProxyConnection per
// accepted client, raw clients that pipeline requests.
describe('ProxyConnection', () => {
  const seen: string[] = [];
  let upstream: HttpServer;
  let proxy: Server;
  let decision: L7Decision = { kind: 'rules', rules: [{ method: 'GET', path: '/ok.*', headers: [] }, { method: 'POST', path: '/upload', headers: [] }] };
  const decisions: RequestDecision[] = [];
  const conns = new Set<Socket>();

  beforeAll(async () => {
    upstream = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push(`${req.method} ${req.url}${body !== '' ? ` ${body.length}` : ''}`);
        if (req.url === '/ok-chunked') {
          res.write('part1-');
          res.end('part2');
        } else res.end(`answer ${req.url} ${body.length}`);
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upPort = (upstream.address() as AddressInfo).port;
    proxy = createServer((s) => {
      conns.add(s);
      new ProxyConnection(
        s,
        { decide: () => decision, connectUpstream: (onread) => connect({ port: upPort, host: '127.0.0.1', onread }), onRequest: (d) => decisions.push(d) },
        { ...DEFAULT_CONNECTION_LIMITS, headTimeoutMs: 300 },
      );
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  });

  afterAll(async () => {
    for (const s of conns) s.destroy();
    await new Promise((r) => proxy.close(r));
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });

  /** Sends `text` (optionally in pieces), returns everything received until the proxy closes. */
  function exchange(parts: string[], endAfter = false): Promise<string> {
    return new Promise((resolve, reject) => {
      const c = connect((proxy.address() as AddressInfo).port, '127.0.0.1');
      let got = '';
      c.on('data', (d: Buffer) => (got += d.toString('latin1')));
      c.on('error', reject);
      c.on('close', () => resolve(got));
      c.on('connect', () => {
        for (const p of parts) c.write(p);
        if (endAfter) c.end();
      });
    });
  }

  const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: web\r\n${extra}\r\n`;

  it('forwards allowed requests and answers denied ones with 403, in order, on one keep-alive connection (pipelined)', async () => {
    seen.length = 0;
    const out = await exchange([get('/ok/1') + get('/secret') + get('/ok-chunked') + get('/ok/3', 'Connection: close\r\n')]);
    const statuses = [...out.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '403', '200', '200']);
    expect(out).toContain('Access denied');
    expect(out.indexOf('answer /ok/1')).toBeLessThan(out.indexOf('Access denied'));
    expect(out.indexOf('Access denied')).toBeLessThan(out.indexOf('part2'));
    expect(out).toContain('answer /ok/3');
    expect(seen).toEqual(['GET /ok/1', 'GET /ok-chunked', 'GET /ok/3']);
    expect(decisions.slice(-4).map((d) => d.verdict)).toEqual(['allowed', 'denied', 'allowed', 'allowed']);
  });

  it('streams Content-Length and chunked request bodies, and discards the body of a denied request', async () => {
    seen.length = 0;
    const body = 'x'.repeat(100_000);
    const chunked = '4\r\nabcd\r\n0\r\n\r\n';
    const out = await exchange([
      `POST /upload HTTP/1.1\r\nHost: web\r\nContent-Length: ${body.length}\r\n\r\n`,
      body,
      `POST /denied HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\r\nhello`,
      `POST /upload HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked}`,
    ]);
    expect([...out.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1])).toEqual(['200', '403', '200']);
    expect(seen).toEqual([`POST /upload ${body.length}`, 'POST /upload 4']);
  });

  it('applies a policy change to the next request on the same connection', async () => {
    seen.length = 0;
    const c = connect((proxy.address() as AddressInfo).port, '127.0.0.1');
    let got = '';
    c.on('data', (d: Buffer) => (got += d.toString()));
    await new Promise((r) => c.on('connect', r));
    const waitFor = async (n: number) => {
      while ([...got.matchAll(/HTTP\/1\.1 \d{3}/g)].length < n) await new Promise((r) => setTimeout(r, 5));
    };
    c.write(get('/other'));
    await waitFor(1);
    const before = decision;
    decision = { kind: 'allow-all', reason: 'L4' };
    c.write(get('/other'));
    await waitFor(2);
    decision = before;
    c.end();
    expect([...got.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1])).toEqual(['403', '200']);
    expect(seen).toEqual(['GET /other']);
  });

  it('rejects unparseable requests with 400, upgrades with 501, slow heads with 408, and closes', async () => {
    seen.length = 0;
    expect(await exchange(['GARBAGE\r\n\r\n'])).toMatch(/^HTTP\/1\.1 400 /);
    expect(await exchange([get('/ok', 'Upgrade: websocket\r\nConnection: Upgrade\r\n')])).toMatch(/^HTTP\/1\.1 501 /);
    expect(await exchange(['GET /ok HTTP/1.1\r\nHost: web\r\n'])).toMatch(/^HTTP\/1\.1 408 /);
    expect(await exchange([`GET /ok HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`])).toMatch(/^HTTP\/1\.1 431 /);
    expect(seen).toEqual([]);
  });

  it('answers 503 when the upstream refuses', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise((r) => dead.close(r));
    const p = createServer((s) => new ProxyConnection(s, { decide: () => ({ kind: 'allow-all', reason: '' }), connectUpstream: (onread) => connect({ port, host: '127.0.0.1', onread }), onRequest: () => undefined }));
    await new Promise<void>((r) => p.listen(0, '127.0.0.1', r));
    const out = await new Promise<string>((resolve) => {
      const c = connect((p.address() as AddressInfo).port, '127.0.0.1', () => c.write(get('/x')));
      let got = '';
      c.on('data', (d: Buffer) => (got += d.toString()));
      c.on('close', () => resolve(got));
    });
    await new Promise((r) => p.close(r));
    expect(out).toMatch(/^HTTP\/1\.1 503 /);
  });
});
