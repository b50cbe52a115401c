import { createRequire } from 'node:module';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient, silentLogger, WatchStore, type StoreEvent } from '../../agent/kvstore/index.js';
import { useEtcdCluster, uniqueRoot } from '../helpers/etcd.js';

const { ConnectionPool } = createRequire(import.meta.url)('etcd3/lib/connection-pool.js') as { ConnectionPool: { deterministicOrder: boolean } };
// With a deterministic host order a client tries its LAST endpoint first: tests choose the member.
beforeAll(() => {
  ConnectionPool.deterministicOrder = true;
});
afterAll(() => {
  ConnectionPool.deterministicOrder = false;
});

const etcd = useEtcdCluster({ members: 3 });
const log = process.env['WARD_TEST_LOG'] === '1' ? pino({ level: 'debug' }) : silentLogger();
const text = (kvValue: Buffer): string => kvValue.toString();

function store(client: KvClient, prefix: string, opts: Partial<ConstructorParameters<typeof WatchStore<string>>[1]> = {}): WatchStore<string> {
  return new WatchStore<string>(client, {
    prefix,
    logger: log,
    decode: (_k, kv) => {
      const v = text(kv.value);
      if (v.startsWith('bad')) throw new Error('bad value');
      return v;
    },
    backoffMinMs: 20,
    backoffMaxMs: 200,
    createTimeoutMs: 1000,
    ...opts,
  });
}

async function waitFor(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function runPool<T>(items: readonly T[], concurrency: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

describe('watch store on a 3-member cluster', () => {
  it('compaction while its stream is gone: re-lists and synthesises deletes', async () => {
    const c = etcd.get();
    const prefix = uniqueRoot('compact');
    const writer = new KvClient({ endpoints: [c.endpoints[0]!, c.endpoints[1]!], logger: log });
    const reader = new KvClient({ endpoints: [c.endpoints[2]!], logger: log, attemptTimeoutMs: 300, callTimeoutMs: 800 });
    const s = store(reader, prefix, { idleMs: 150, idleGraceMs: 150 });
    try {
      for (let i = 0; i < 10; i++) await writer.put(`${prefix}k${i}`, Buffer.from(`v${i}`));
      s.start();
      await s.waitInSync();
      expect(s.size).toBe(10);
      const seen: StoreEvent<string>[] = [];
      s.subscribe((b) => seen.push(...b.events));

      await waitFor(() => s.watching);
      // The store's only member dies; it comes back only after the compaction, and a restarted
      // member serves clients only once it has applied the log up to its rejoin (compaction included).
      await c.kill(2);
      await waitFor(() => !s.watching);
      for (let i = 0; i < 5; i++) await writer.delete(`${prefix}k${i}`);
      await writer.put(`${prefix}k9`, Buffer.from('v9-new'));
      const rev = await writer.put(`${prefix}k10`, Buffer.from('v10'));
      await writer.compact(rev);
      await c.restart(2);

      await waitFor(() => s.get(`${prefix}k10`) !== undefined && s.size === 6);
      expect(s.lists).toBeGreaterThanOrEqual(2);
      const deletes = seen.filter((e) => e.type === 'delete').map((e) => e.key).sort();
      expect(deletes).toEqual([0, 1, 2, 3, 4].map((i) => `${prefix}k${i}`));
      expect(seen.filter((e) => e.type === 'delete').every((e) => e.type === 'delete' && e.synthetic)).toBe(true);
      expect(s.get(`${prefix}k9`)?.value).toBe('v9-new');
    } finally {
      if (c.member(2).state !== 'running') await c.restart(2);
      await s.close();
      writer.close();
      reader.close();
    }
  });

  it('a far-behind watcher that loses its member mid catch-up delivers every event exactly once, in order', async () => {
    const c = etcd.get();
    const prefix = uniqueRoot('behind');
    const writer = new KvClient({ endpoints: [c.endpoints[0]!, c.endpoints[1]!], logger: log });
    // Tries member 2 first (last endpoint), then member 1.
    const reader = new KvClient({ endpoints: [c.endpoints[1]!, c.endpoints[2]!], logger: log, attemptTimeoutMs: 500, callTimeoutMs: 1500, halfOpenAfterMs: 60_000, breakerFailures: 1 });
    const s = store(reader, prefix, { idleMs: 60_000, idleGraceMs: 60_000 });
    try {
      s.start();
      await s.waitInSync();
      const delivered: string[] = [];
      let killedAt: string | undefined;
      s.subscribe((b) => {
        for (const e of b.events) delivered.push(`${e.modRevision} ${e.type} ${e.key}`);
        if (killedAt === undefined && delivered.length > 0) {
          killedAt = s.revision;
          const pid = c.member(2).pid;
          if (pid !== undefined) process.kill(pid, 'SIGKILL'); // mid catch-up
        }
      });

      await waitFor(() => s.watching);
      c.stop(2); // the watcher's member freezes: the watcher falls far behind
      const expected: string[] = [];
      const ops = Array.from({ length: 3000 }, (_, i) => i);
      await runPool(ops, 32, async (i) => {
        const key = `${prefix}k${i % 400}`;
        if (i % 10 === 9) {
          const res = await writer.txn({ compare: [], success: [{ request_delete_range: { key: Buffer.from(key) } }], failure: [] });
          if (Number(res.responses[0]!.response_delete_range.deleted) > 0) expected.push(`${res.header.revision} delete ${key}`);
        } else {
          const rev = await writer.put(key, Buffer.from(`v${i}`));
          expected.push(`${rev} upsert ${key}`);
        }
      });
      expected.sort((a, b) => Number(a.split(' ')[0]) - Number(b.split(' ')[0]));
      const finalRev = expected[expected.length - 1]!.split(' ')[0]!;
      c.resume(2);

      await waitFor(() => s.revision === finalRev, 60_000);
      expect(killedAt).toBeDefined();
      expect(BigInt(killedAt!)).toBeLessThan(BigInt(finalRev)); // the member died mid catch-up
      expect(delivered).toEqual(expected);
    } finally {
      c.resume(2);
      await s.close();
      writer.close();
      reader.close();
      await c.restart(2);
    }
  });

  it('delivers every event of a multi-key transaction (one revision, several events)', async () => {
    const c = etcd.get();
    const prefix = uniqueRoot('txn');
    const client = new KvClient({ endpoints: c.endpoints, logger: log });
    const s = store(client, prefix);
    try {
      s.start();
      await s.waitInSync();
      const seen: string[] = [];
      s.subscribe((b) => seen.push(...b.events.map((e) => `${e.type} ${e.key.slice(prefix.length)}`)));
      const put = (k: string): { request_put: { key: Buffer; value: Buffer } } => ({ request_put: { key: Buffer.from(prefix + k), value: Buffer.from(k) } });
      await client.txn({ compare: [], success: [put('a'), put('b'), put('c')], failure: [] });
      const del = (k: string): { request_delete_range: { key: Buffer } } => ({ request_delete_range: { key: Buffer.from(prefix + k) } });
      await client.txn({ compare: [], success: [del('a'), del('b'), put('d')], failure: [] });
      await waitFor(() => s.get(`${prefix}d`) !== undefined);
      expect(seen).toEqual(['upsert a', 'upsert b', 'upsert c', 'delete a', 'delete b', 'upsert d']);
    } finally {
      await s.close();
      client.close();
    }
  });

  it('a bad value for an existing key keeps the previous value (never a delete), in the watch and on re-list', async () => {
    const c = etcd.get();
    const prefix = uniqueRoot('badkeep');
    const client = new KvClient({ endpoints: c.endpoints, logger: log });
    const s = store(client, prefix);
    const seen: string[] = [];
    s.subscribe((b) => seen.push(...b.events.map((e) => `${e.type} ${e.key.slice(prefix.length)}`)));
    try {
      await client.put(`${prefix}p`, Buffer.from('v1'));
      s.start();
      await s.waitInSync();
      await client.put(`${prefix}p`, Buffer.from('bad write'));
      await client.put(`${prefix}marker`, Buffer.from('m'));
      await waitFor(() => s.get(`${prefix}marker`) !== undefined);
      expect(s.get(`${prefix}p`)?.value).toBe('v1');
      expect(s.invalidValues).toBe(1);
      // A re-list (as after compaction) must not turn the still-bad key into a delete either.
      await (s as unknown as { relist(): Promise<void> }).relist();
      expect(s.get(`${prefix}p`)?.value).toBe('v1');
      expect(s.invalidValues).toBe(2);
      await client.put(`${prefix}p`, Buffer.from('v2'));
      await waitFor(() => s.get(`${prefix}p`)?.value === 'v2');
      expect(seen).toEqual(['upsert p', 'upsert marker', 'upsert p']);
    } finally {
      await s.close();
      client.close();
    }
  });

  it('logs a bad value with its key and skips it', async () => {
    const c = etcd.get();
    const prefix = uniqueRoot('bad');
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
    const client = new KvClient({ endpoints: c.endpoints, logger });
    const s = store(client, prefix, { logger });
    try {
      await client.put(`${prefix}good`, Buffer.from('ok'));
      await client.put(`${prefix}evil`, Buffer.from('bad!'));
      s.start();
      await s.waitInSync();
      await client.put(`${prefix}evil2`, Buffer.from('bad again'));
      await client.put(`${prefix}good2`, Buffer.from('ok2'));
      await waitFor(() => s.get(`${prefix}good2`) !== undefined);
      expect([...s.snapshot().keys()].sort()).toEqual([`${prefix}good`, `${prefix}good2`]);
      expect(lines.some((l) => l.includes(`${prefix}evil"`) && l.includes('skipping bad value'))).toBe(true);
      expect(lines.some((l) => l.includes(`${prefix}evil2"`))).toBe(true);
    } finally {
      await s.close();
      client.close();
    }
  });
});
