import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { L7Decision } from '../../agent/proxy/index.js';
import { rng } from '../chaos/chaos.js';
import { exchange, relayProxy, type RelayProxy } from './helpers/l7-relay.js';

// Property: the relay's answers to a stream of pipelined requests (allowed, denied, bodies by
// length and chunked) do not depend on how the stream is cut into reads. Each seed's stream is
// sent whole, then cut at random points with pauses between the pieces; the status and body
// sequences must be equal, and equal to what the policy says.
const decision: L7Decision = { kind: 'rules', rules: [{ method: 'GET', path: '/ok/.*', headers: [] }, { method: 'POST', path: '/upload', headers: [] }] };

interface Case {
  readonly bytes: string;
  /** What each request must get: the server's answer or the proxy's 403. */
  readonly expected: string[];
}

function chunked(body: string, next: () => number): string {
  let out = '';
  for (let i = 0; i < body.length; ) {
    const n = 1 + Math.floor(next() * 700);
    const part = body.slice(i, i + n);
    out += `${part.length.toString(16)}${next() < 0.3 ? ';ext=1' : ''}\r\n${part}\r\n`;
    i += n;
  }
  return `${out}0\r\n\r\n`;
}

function makeCase(seed: number): Case {
  const next = rng(seed);
  const n = 3 + Math.floor(next() * 8);
  let bytes = '';
  const expected: string[] = [];
  for (let i = 0; i < n; i++) {
    const last = i === n - 1 ? 'Connection: close\r\n' : '';
    const body = 'x'.repeat(Math.floor(next() * 3000));
    const kind = Math.floor(next() * 5);
    if (kind === 0) {
      bytes += `GET /ok/${i}?q=${i} HTTP/1.1\r\nHost: web\r\n${last}\r\n`;
      expected.push(`answer /ok/${i}?q=${i} 0`);
    } else if (kind === 1) {
      bytes += `GET /no/${i} HTTP/1.1\r\nHost: web\r\n${last}\r\n`;
      expected.push('403');
    } else if (kind === 2) {
      bytes += `POST /upload HTTP/1.1\r\nHost: web\r\nContent-Length: ${body.length}\r\n${last}\r\n${body}`;
      expected.push(`answer /upload ${body.length}`);
    } else if (kind === 3) {
      bytes += `POST /upload HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n${last}\r\n${chunked(body, next)}`;
      expected.push(`answer /upload ${body.length}`);
    } else {
      bytes += `POST /denied HTTP/1.1\r\nHost: web\r\nContent-Length: ${body.length}\r\n${last}\r\n${body}`;
      expected.push('403');
    }
  }
  return { bytes, expected };
}

/** The answers in order: the server's body line, or the proxy's status. */
function answers(out: string): string[] {
  return [...out.matchAll(/HTTP\/1\.1 (\d{3})[^]*?\r\n\r\n(answer \S+ \d+|Access denied)/g)].map((m) => (m[1] === '200' ? m[2]! : m[1]!));
}

/** A pause after each piece when there are several: the relay reads each on its own. */
const send = async (port: number, parts: string[]): Promise<string> => (await exchange(port, parts, parts.length > 1 ? { gapMs: 1 } : {})).toString('latin1');

describe('L7 relay: answers do not depend on how requests are cut into reads', () => {
  let upstream: HttpServer;
  let p: RelayProxy;

  beforeAll(async () => {
    upstream = createHttpServer((req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(`answer ${req.url} ${n}`));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    p = await relayProxy((upstream.address() as AddressInfo).port, { decision: () => decision, watch: false });
  });

  afterAll(async () => {
    p.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });

  it.each(Array.from({ length: 24 }, (_, i) => i + 1))('seed %i', async (seed) => {
    const c = makeCase(seed);
    const next = rng(seed * 7919);
    const cuts = [...new Set(Array.from({ length: 1 + Math.floor(next() * 12) }, () => Math.floor(next() * c.bytes.length)))].sort((a, b) => a - b);
    const parts: string[] = [];
    let from = 0;
    for (const cut of [...cuts, c.bytes.length]) {
      if (cut > from) parts.push(c.bytes.slice(from, cut));
      from = cut;
    }
    const whole = answers(await send(p.port, [c.bytes]));
    const split = answers(await send(p.port, parts));
    expect(whole).toEqual(c.expected);
    expect(split).toEqual(c.expected);
  });
});
