import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { fstatSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { L7Decision } from '../../agent/proxy/index.js';
import { httpRelay, transparentListen } from '../../bpf/index.js';
import { exchange, freePort, relayProxy, type RelayProxy } from './helpers/l7-relay.js';

// The agent's L7 proxy on the native relay (bpf/napi/src/http-relay.cc) with real loopback
// sockets: an HTTP server that logs what reaches it, raw clients that pipeline requests.
const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: web\r\n${extra}\r\n`;
const statuses = (out: string) => [...out.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);

/** Sends parts; returns everything received until the proxy closes. */
const send = async (port: number, parts: string[], endAfter = false): Promise<string> => (await exchange(port, parts, { endAfter })).toString('latin1');

describe('L7 proxy on the native relay', () => {
  const seen: string[] = [];
  let upstream: HttpServer;
  let p: RelayProxy;
  let decision: L7Decision = { kind: 'rules', rules: [{ method: 'GET', path: '/ok.*', headers: [] }, { method: 'POST', path: '/upload', headers: [] }, { path: '/team', headers: ['X-Team: blue'] }] };

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
    p = await relayProxy((upstream.address() as AddressInfo).port, { limits: { headTimeoutMs: 300 }, decision: () => decision });
  });

  afterAll(async () => {
    p.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });

  it('forwards allowed requests and answers denied ones with 403, in order, on one keep-alive connection (pipelined)', async () => {
    seen.length = 0;
    const out = await send(p.port, [get('/ok/1') + get('/secret') + get('/ok-chunked') + get('/ok/3', 'Connection: close\r\n')]);
    expect(statuses(out)).toEqual(['200', '403', '200', '200']);
    expect(out).toContain('Access denied');
    expect(out.indexOf('answer /ok/1')).toBeLessThan(out.indexOf('Access denied'));
    expect(out.indexOf('Access denied')).toBeLessThan(out.indexOf('part2'));
    expect(out).toContain('answer /ok/3');
    expect(seen).toEqual(['GET /ok/1', 'GET /ok-chunked', 'GET /ok/3']);
    expect(p.events.slice(-4).map((e) => [e.verdict, e.path, e.sourceIdentity, e.destinationIdentity, e.direction])).toEqual([
      ['allowed', '/ok/1', 2, 1000, 'ingress'],
      ['denied', '/secret', 2, 1000, 'ingress'],
      ['allowed', '/ok-chunked', 2, 1000, 'ingress'],
      ['allowed', '/ok/3', 2, 1000, 'ingress'],
    ]);
  });

  it('asks for the headers only when a rule reads them', async () => {
    seen.length = 0;
    const out = await send(p.port, [get('/team', 'X-Team: red\r\n') + get('/team', 'x-team: blue\r\nConnection: close\r\n')]);
    expect(statuses(out)).toEqual(['403', '200']);
    expect(seen).toEqual(['GET /team']);
  });

  it('streams Content-Length and chunked request bodies, and discards the body of a denied request', async () => {
    seen.length = 0;
    const body = 'x'.repeat(100_000);
    const chunked = '4\r\nabcd\r\n0\r\n\r\n';
    const out = await send(p.port, [
      `POST /upload HTTP/1.1\r\nHost: web\r\nContent-Length: ${body.length}\r\n\r\n`,
      body,
      `POST /denied HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\r\nhello`,
      `POST /upload HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked}`,
    ]);
    expect(statuses(out)).toEqual(['200', '403', '200']);
    expect(seen).toEqual([`POST /upload ${body.length}`, 'POST /upload 4']);
  });

  it('applies a policy change to the next request on the same connection (cached verdicts too, after invalidate)', async () => {
    seen.length = 0;
    const c = connect(p.port, '127.0.0.1');
    let got = '';
    c.on('data', (d: Buffer) => (got += d.toString()));
    await new Promise((r) => c.on('connect', r));
    const waitFor = async (n: number) => {
      while (statuses(got).length < n) await new Promise((r) => setTimeout(r, 5));
    };
    // Nobody watches: the second /other comes from the relay's cache, and is counted.
    p.proxy.removeAllListeners('request');
    const before = p.proxy.metrics().requests;
    c.write(get('/ok/a'));
    await waitFor(1);
    c.write(get('/other'));
    await waitFor(2);
    c.write(get('/other'));
    await waitFor(3);
    expect(p.proxy.metrics().requests).toEqual({ allowed: before.allowed + 1, denied: before.denied + 2, invalid: before.invalid });
    const rules = decision;
    decision = { kind: 'allow-all', reason: 'L4' };
    p.proxy.invalidate();
    c.write(get('/other'));
    await waitFor(4);
    decision = rules;
    p.proxy.invalidate();
    c.write(get('/other'));
    await waitFor(5);
    c.end();
    p.proxy.on('request', (e) => p.events.push(e));
    expect(statuses(got)).toEqual(['200', '403', '403', '200', '403']);
    expect(seen).toEqual(['GET /ok/a', 'GET /other']);
  });

  it('rejects unparseable requests with 400, upgrades with 501, slow heads with 408, big heads with 431, and closes', async () => {
    seen.length = 0;
    const n = p.events.length;
    expect(await send(p.port, ['GARBAGE\r\n\r\n'])).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n[^]*\r\n\r\nmalformed request line\r\n$/);
    expect(await send(p.port, [get('/ok', 'Upgrade: websocket\r\nConnection: Upgrade\r\n')])).toMatch(/^HTTP\/1\.1 501 /);
    expect(await send(p.port, ['GET /ok HTTP/1.1\r\nHost: web\r\n'])).toMatch(/^HTTP\/1\.1 408 /);
    expect(await send(p.port, [`GET /ok HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`])).toMatch(/^HTTP\/1\.1 431 /);
    expect(seen).toEqual([]);
    expect(p.events.slice(n).map((e) => [e.verdict, e.status])).toEqual([
      ['invalid', 400],
      ['invalid', 501],
      ['invalid', 408],
      ['invalid', 431],
    ]);
  });

  it('answers a request whose client half-closed after sending it', async () => {
    seen.length = 0;
    const out = await send(p.port, [get('/ok/half')], true);
    expect(statuses(out)).toEqual(['200']);
    expect(out).toContain('answer /ok/half');
  });

  it('stops reading past maxPipeline requests in flight and resumes as answers go out, in order', async () => {
    const small = await relayProxy((upstream.address() as AddressInfo).port, { limits: { maxPipeline: 2 } });
    try {
      seen.length = 0;
      const paths = ['/p1', '/p2', '/p3', '/p4', '/p5', '/p6'];
      const out = await send(small.port, [paths.map((x, i) => get(x, i === paths.length - 1 ? 'Connection: close\r\n' : '')).join('')]);
      expect(statuses(out)).toEqual(paths.map(() => '200'));
      expect([...out.matchAll(/answer (\/p\d)/g)].map((m) => m[1])).toEqual(paths);
      expect(seen).toEqual(paths.map((x) => `GET ${x}`));
    } finally {
      small.close();
    }
  });

  it('answers 503 when the upstream refuses, and counts it', async () => {
    const dead = await relayProxy(await freePort());
    try {
      expect(await send(dead.port, [get('/x')])).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n[^]*upstream: connect ECONNREFUSED 127\.0\.0\.1:\d+/);
      expect(dead.proxy.metrics().upstreamErrors).toBe(1);
    } finally {
      dead.close();
    }
  });
});

describe('L7 proxy connection limit', () => {
  it('closes connections past maxConnectionsPerListener at once and counts them; the others stay open', async () => {
    const p = await relayProxy(await freePort(), { limits: { maxConnectionsPerListener: 2 } });
    const clients: Socket[] = [];
    try {
      const open = async (): Promise<{ socket: Socket; closed: Promise<void> }> => {
        const socket = connect(p.port, '127.0.0.1');
        clients.push(socket);
        socket.on('error', () => undefined);
        const closed = new Promise<void>((r) => socket.once('close', () => r()));
        await new Promise((r) => socket.once('connect', r));
        return { socket, closed };
      };
      const until = async (ok: () => boolean) => {
        for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
      };
      const a = await open();
      const b = await open();
      // The proxy has taken both (accepts run in order) before the third arrives.
      await until(() => p.proxy.metrics().activeConnections === 2);
      const c = await open();
      await c.closed; // closed by the proxy, without a request
      expect(p.proxy.metrics()).toMatchObject({ activeConnections: 2, connections: 2, refusedConnections: 1 });
      expect(a.socket.destroyed || b.socket.destroyed).toBe(false);
      a.socket.destroy();
      await a.closed;
      await until(() => p.proxy.metrics().activeConnections === 1);
      const d = await open(); // room again
      await until(() => p.proxy.metrics().activeConnections === 2);
      expect(d.socket.destroyed).toBe(false);
      expect(p.proxy.metrics()).toMatchObject({ activeConnections: 2, connections: 3, refusedConnections: 1 });
    } finally {
      for (const s of clients) s.destroy();
      p.close();
    }
  });

  it('close() from inside a decision ends every connection without using freed state', async () => {
    const p: RelayProxy = await relayProxy(await freePort(), {
      decision: () => {
        p.close();
        return { kind: 'allow-all', reason: 'L4' };
      },
    });
    expect(await send(p.port, [get('/x')])).toBe('');
    expect(p.proxy.metrics).toBeDefined();
  });

  it('listen() refuses a bad upstream with a clear error and closes the fd it was given', async () => {
    const relay = httpRelay({ onAccept: () => false, decide: () => -1, onInvalid: () => undefined, onClose: () => undefined, onError: () => undefined });
    try {
      const fd = transparentListen({ address: '127.0.0.1', port: await freePort() });
      expect(() => relay.listen(fd, 0, { address: 'not-an-ip', port: 80 })).toThrow('HttpRelay.listen: upstream must be {address: IPv4, port: 1-65535}');
      expect(() => fstatSync(fd)).toThrow(/EBADF/);
    } finally {
      relay.close();
    }
  });

  it('close() is idempotent and ends open connections', async () => {
    const srv = createServer((s) => s.on('data', () => undefined));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const p = await relayProxy((srv.address() as AddressInfo).port);
    const s = connect(p.port, '127.0.0.1');
    s.on('error', () => undefined);
    await new Promise((r) => s.once('connect', r));
    const closed = new Promise((r) => s.once('close', r));
    p.close();
    p.close();
    await closed;
    await new Promise((r) => srv.close(r));
  });
});
