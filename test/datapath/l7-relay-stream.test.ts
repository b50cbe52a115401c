import { createHash } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConnectionLimits, L7Decision } from '../../agent/proxy/index.js';
import { exchange, relayProxy, type RelayProxy } from './helpers/l7-relay.js';

// The byte paths of the native relay against raw upstreams: nothing forwarded is lost or
// reordered when either side reads slowly (pending writes wait for EPOLLOUT), heads split across
// reads are joined, interim and close-delimited answers pass, and the coarse timeouts fire.
describe('L7 relay streaming', () => {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  const proxies: RelayProxy[] = [];

  afterEach(async () => {
    for (const p of proxies.splice(0)) p.close();
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  async function listen(onConn: (s: Socket) => void): Promise<number> {
    const srv = createServer((s) => {
      sockets.push(s);
      onConn(s);
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return (srv.address() as AddressInfo).port;
  }

  async function proxyTo(upPort: number, limits: Partial<ConnectionLimits> = {}, decision: L7Decision = { kind: 'allow-all', reason: 'L4' }, watch = true): Promise<RelayProxy> {
    const p = await relayProxy(upPort, { limits, decision: () => decision, watch });
    proxies.push(p);
    return p;
  }

  const pattern = (n: number): Buffer => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 10)) & 0xff;
    return b;
  };
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

  it('forwards a large response intact to a stalled reader, then serves the next request', async () => {
    const body = pattern(8_000_000);
    const up = await listen((s) => {
      let n = 0;
      s.on('data', (d: Buffer) => {
        for (const line of d.toString('latin1').split('\r\n\r\n').slice(0, -1)) {
          if (line === '') continue;
          if (++n === 1) s.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
          else s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext');
        }
      });
    });
    const p = await proxyTo(up);
    const out = await exchange(p.port, ['GET /big HTTP/1.1\r\nHost: a\r\n\r\nGET /n HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'], { stallMs: 300 });
    const head = out.indexOf('\r\n\r\n') + 4;
    expect(sha(out.subarray(head, head + body.length))).toBe(sha(body));
    expect(out.subarray(head + body.length).toString()).toBe('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext');
  });

  it('forwards a large request body intact to a slow upstream', async () => {
    const body = pattern(2_000_000);
    let received: Buffer[] = [];
    const up = await listen((s) => {
      received = [];
      s.on('data', (d: Buffer) => {
        received.push(d);
        s.pause();
        setTimeout(() => s.resume(), 2);
        const all = Buffer.concat(received);
        const head = all.indexOf('\r\n\r\n');
        if (head >= 0 && all.length - head - 4 >= body.length) s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
      });
    });
    const p = await proxyTo(up);
    const out = await exchange(p.port, [`POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`, body]);
    expect(out.toString()).toMatch(/^HTTP\/1\.1 200 OK/);
    const all = Buffer.concat(received);
    const head = all.indexOf('\r\n\r\n') + 4;
    expect(sha(all.subarray(head))).toBe(sha(body));
  });

  it('joins heads split across reads on both sides; forwards 100 Continue, chunked and close-delimited answers', async () => {
    const up = await listen((s) => {
      let seen = '';
      let answered = 0;
      // Answers go out one after the other, each in pieces.
      let writing = Promise.resolve();
      s.on('data', (d: Buffer) => {
        seen += d.toString('latin1');
        const n = seen.split('\r\n\r\n').length - 1;
        for (; answered < n; answered++) {
          const last = answered === 1;
          const parts = last
            ? ['HTTP/1.1 200 OK\r\nConnection: close\r\n', '\r\nuntil-', 'close']
            : ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-', 'Encoding: chunked\r\n\r\n3\r\nab', 'c\r\n0\r\n\r\n'];
          writing = writing.then(async () => {
            for (const part of parts) {
              s.write(part);
              await new Promise((r) => setTimeout(r, 5));
            }
            if (last) s.end();
          });
        }
      });
    });
    const p = await proxyTo(up);
    const out = await exchange(p.port, ['GET /a HT', 'TP/1.1\r\nHost: a\r', '\n\r\nGET /b HTTP/1.1\r\nHo', 'st: a\r\n\r\n'], { gapMs: 5 });
    expect(out.toString()).toBe('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close');
  });

  it('answers 504 when the upstream does not answer in time, and closes idle client connections', async () => {
    const up = await listen(() => undefined);
    const p = await proxyTo(up, { upstreamTimeoutMs: 100, idleTimeoutMs: 150 });
    const t0 = Date.now();
    expect((await exchange(p.port, ['GET /x HTTP/1.1\r\nHost: a\r\n\r\n'])).toString()).toMatch(/^HTTP\/1\.1 504 /);
    expect(Date.now() - t0).toBeLessThan(1000);
    const t1 = Date.now();
    expect((await exchange(p.port, [])).length).toBe(0);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(140);
  });

  it('drops the rest of a body whose upstream answered early and closed; the next request gets a new upstream', async () => {
    const firstBytes: string[] = [];
    const up = await listen((s) => {
      let first = true;
      s.on('data', (d: Buffer) => {
        if (first) firstBytes.push(d.toString('latin1', 0, 12));
        first = false;
        const text = d.toString('latin1');
        if (text.startsWith('POST')) s.end('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        else if (text.startsWith('GET')) s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
      });
    });
    const p = await proxyTo(up);
    const body = 'b'.repeat(300_000);
    const out = await exchange(p.port, [`POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n`, body.slice(0, 1000), body.slice(1000), 'GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'], { gapMs: 30 });
    expect([...out.toString().matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1])).toEqual(['413', '200']);
    // Two upstream connections, each starting with a request head: no body bytes were taken for one.
    expect(firstBytes).toEqual(['POST /up HTT', 'GET /after H']);
  });

  it('ends the client connection when the upstream closes with requests still unanswered; 502 for a garbled answer', async () => {
    const closing = await listen((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\none')));
    const p = await proxyTo(closing);
    const out = (await exchange(p.port, ['GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n'])).toString();
    expect(out).toBe('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\none');
    const garbled = await listen((s) => s.once('data', () => s.write('HTTP/1.1 2x0 What\r\n\r\n')));
    const q = await proxyTo(garbled);
    expect((await exchange(q.port, ['GET /g HTTP/1.1\r\nHost: a\r\n\r\n'])).toString()).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n[^]*bad upstream response: malformed status line\r\n$/);
    const headOnly = await listen((s) => s.once('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')));
    const h = await proxyTo(headOnly);
    // The answer to HEAD has no body whatever its Content-Length says.
    const both = (await exchange(h.port, ['HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /g HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'])).toString();
    expect(both).toBe('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
  });

  it('only counts decisions while nobody watches', async () => {
    const up = await listen((s) => s.on('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')));
    const p = await proxyTo(up, {}, { kind: 'rules', rules: [{ method: 'GET', path: '/ok', headers: [] }] }, false);
    await exchange(p.port, ['GET /no HTTP/1.1\r\nHost: a\r\n\r\nGET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n']);
    expect(p.proxy.metrics().requests).toEqual({ allowed: 1, denied: 1, invalid: 0 });
    expect(p.events).toEqual([]);
  });
});
