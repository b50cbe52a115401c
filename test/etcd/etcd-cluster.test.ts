import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EtcdCluster, EtcdStartError } from '../../agent/dev/etcd-cluster.js';
import { KvClient, silentLogger } from '../../agent/kvstore/index.js';

const alive = (pid: number | undefined): boolean => {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('EtcdCluster (the local etcd process manager)', () => {
  it('starts one member, survives kill/restart and stop/resume, and cleans up by PID', async () => {
    const c = await EtcdCluster.start({ members: 1 });
    const kv = new KvClient({ endpoints: c.endpoints, logger: silentLogger(), attemptTimeoutMs: 300, callTimeoutMs: 800 });
    const dir = c.dir;
    try {
      expect(c.endpoints[0]).toMatch(/^127\.0\.0\.1:\d+$/);
      await kv.put('k', Buffer.from('v'));
      const pid = c.member(0).pid;
      await c.kill(0);
      expect(alive(pid)).toBe(false);
      expect(c.member(0).state).toBe('killed');
      await c.restart(0);
      expect((await kv.get('k')).kv?.value.toString()).toBe('v'); // data dir kept
      c.stop(0);
      expect(c.member(0).state).toBe('stopped');
      await expect(kv.get('k')).rejects.toThrow();
      c.resume(0);
      expect((await kv.get('k')).kv?.value.toString()).toBe('v');
      expect(await c.leader()).toBe(0);
    } finally {
      kv.close();
      const pid = c.member(0).pid;
      await c.close();
      await c.close(); // idempotent
      expect(alive(pid)).toBe(false);
      expect(existsSync(dir)).toBe(false);
    }
  });

  it('a stopped member is killed on close; a bad binary is a clear start error', async () => {
    const c = await EtcdCluster.start({ members: 1 });
    c.stop(0);
    const pid = c.member(0).pid;
    await c.close();
    expect(alive(pid)).toBe(false);
    await expect(EtcdCluster.start({ binary: '/nonexistent/etcd', readyTimeoutMs: 2000 })).rejects.toBeInstanceOf(EtcdStartError);
  });
});
