import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointNotFoundError } from '../endpoint/index.js';
import { ApiClient, ApiClientError } from './client.js';
import { followMonitor } from './monitor-client.js';
import { observeRoutes, type MonitorQuery, type ObserveHandler } from './observe-routes.js';
import type { MonitorEventJson } from './observe-types.js';
import { ApiServer, type ApiHandler } from './server.js';

const L7_EVENT = {
  type: 'l7',
  timeMs: 1,
  endpoint: 'web',
  direction: 'ingress',
  sourceIdentity: 300,
  destinationIdentity: 400,
  source: '10.0.0.2:40000',
  destination: '10.0.0.3:80',
  method: 'GET',
  path: '/private',
  verdict: 'denied',
  status: 403,
  reason: 'no HTTP rule matches',
} as const satisfies MonitorEventJson;
const EVENT = { type: 'drop', reason: 130, reasonName: 'policy-denied', direction: 'ingress', endpointId: 1, remoteIdentity: 2, protocol: 'TCP', saddr: '1.1.1.1', sport: 1, daddr: '2.2.2.2', dport: 2, length: 60, proxyPort: 0 } as const satisfies MonitorEventJson;

/** Fake observer: records monitor queries, emits to subscribers on demand. */
class Fake implements ObserveHandler {
  readonly subs = new Set<(e: MonitorEventJson) => void>();
  readonly queries: MonitorQuery[] = [];
  bpfPolicy(ep: string): never {
    throw new EndpointNotFoundError(`no endpoint ${JSON.stringify(ep)} on this node`);
  }
  ipcache(): [] {
    return [];
  }
  conntrack(): [] {
    return [];
  }
  counters(): [] {
    return [];
  }
  selectors(): [] {
    return [];
  }
  monitor(q: MonitorQuery, cb: (e: MonitorEventJson) => void): { close(): void } {
    if (q.endpoint === 'nope') throw new EndpointNotFoundError('no endpoint "nope" on this node');
    this.queries.push(q);
    this.subs.add(cb);
    return { close: () => void this.subs.delete(cb) };
  }
}

describe('observability routes over a real unix socket', () => {
  let dir: string;
  let server: ApiServer;
  let client: ApiClient;
  const fake = new Fake();
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ward-obs-'));
    const sock = join(dir, 'api.sock');
    server = new ApiServer(sock, {} as ApiHandler, pino({ level: 'silent' }));
    server.addRoute(observeRoutes(fake));
    await server.listen();
    client = new ApiClient(sock, 5000);
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const status = (p: Promise<unknown>): Promise<number> => p.then(() => 200, (e: unknown) => (e instanceof ApiClientError ? e.status : -1));

  it('answers JSON routes and refuses bad input with 400/404', async () => {
    expect(await client.getJson('/v1/bpf/ipcache')).toEqual([]);
    expect(await status(client.getJson('/v1/bpf/ipcache?x=1'))).toBe(400);
    expect(await status(client.getJson('/v1/bpf/policy/db'))).toBe(404);
    expect(await status(client.getJson('/v1/monitor?type=bogus'))).toBe(400);
    await expect(client.getJson('/v1/monitor?type=http')).rejects.toThrow(/type must be one of drop, policy-verdict, l7; got "http"/);
    expect(await status(client.getJson('/v1/nothing'))).toBe(404);
  });

  it('streams NDJSON to followMonitor and unsubscribes when the client stops', async () => {
    const ac = new AbortController();
    const got: MonitorEventJson[] = [];
    const done = followMonitor(client.socketPath, { type: 'drop', endpoint: 'db' }, (e) => {
      got.push(e);
      if (got.length === 2) ac.abort();
    }, ac.signal);
    // The subscription exists once the server has handled the request.
    for (let i = 0; i < 2000 && fake.subs.size === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(fake.queries.at(-1)).toEqual({ type: 'drop', endpoint: 'db' });
    for (const s of fake.subs) {
      s(EVENT);
      s({ ...EVENT, dport: 3 });
    }
    await done;
    expect(got.map((e) => (e.type === 'l7' ? e.path : e.dport))).toEqual([2, 3]);
    for (let i = 0; i < 2000 && fake.subs.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(fake.subs.size).toBe(0);
    await expect(followMonitor(client.socketPath, { endpoint: 'nope' }, () => undefined, new AbortController().signal)).rejects.toMatchObject({ status: 404 });
  });

  it('passes type=l7 through and streams L7 events as they are', async () => {
    const ac = new AbortController();
    const got: MonitorEventJson[] = [];
    const done = followMonitor(client.socketPath, { type: 'l7', endpoint: 'web' }, (e) => {
      got.push(e);
      ac.abort();
    }, ac.signal);
    for (let i = 0; i < 2000 && fake.subs.size === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(fake.queries.at(-1)).toEqual({ type: 'l7', endpoint: 'web' });
    for (const s of fake.subs) s(L7_EVENT);
    await done;
    expect(got).toEqual([L7_EVENT]);
    for (let i = 0; i < 2000 && fake.subs.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(fake.subs.size).toBe(0);
  });
});
