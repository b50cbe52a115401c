import { describe, expect, it } from 'vitest';
import type { KvClient, LeaseManager, LeaseRestorer } from '../kvstore/index.js';
import { createAgentLogger } from './logger.js';
import { LeaseBoundKeys } from './lease-keys.js';

/** An etcd that can be "down", and a lease manager whose restorer the test runs. */
interface World {
  readonly keys: LeaseBoundKeys;
  readonly store: Map<string, { value: string; lease: string | undefined }>;
  setDown(d: boolean): void;
  /** While held, puts wait; `release` lets the waiting ones land. */
  hold(): void;
  release(): void;
  readonly heldPuts: () => number;
  restore(lease: string): Promise<void>;
}

function world(): World {
  const store = new Map<string, { value: string; lease: string | undefined }>();
  let down = false;
  let held: (() => void)[] | undefined;
  const unavailable = (): never => {
    throw new Error('etcd unavailable');
  };
  const client = {
    put: async (key: string, value: Buffer, lease?: string): Promise<string> => {
      if (down) unavailable();
      if (held !== undefined) await new Promise<void>((r) => held!.push(r));
      store.set(key, { value: value.toString(), lease });
      return '1';
    },
    delete: (key: string): Promise<number> => {
      if (down) unavailable();
      return Promise.resolve(store.delete(key) ? 1 : 0);
    },
  } as unknown as KvClient;
  let restorer: LeaseRestorer = () => Promise.resolve();
  const leases = {
    current: (): Promise<string> => Promise.resolve('L1'),
    onRenewed: (fn: LeaseRestorer) => {
      restorer = fn;
      return () => undefined;
    },
  } as unknown as LeaseManager;
  const keys = new LeaseBoundKeys(client, leases, createAgentLogger('silent'));
  return {
    keys,
    store,
    setDown: (d) => (down = d),
    hold: () => (held = []),
    release: () => {
      const waiting = held ?? [];
      held = undefined;
      for (const r of waiting) r();
    },
    heldPuts: () => held?.length ?? 0,
    restore: (lease) => restorer(lease),
  };
}

describe('LeaseBoundKeys', () => {
  it('re-puts desired keys on the new lease and still deletes what failed to delete while etcd was down', async () => {
    const w = world();
    try {
      expect(await w.keys.put('a', Buffer.from('1'))).toBe(true);
      expect(await w.keys.put('b', Buffer.from('2'))).toBe(true);
      w.setDown(true);
      expect(await w.keys.delete('b')).toBe(false); // pending, retried in the background
      expect(await w.keys.put('c', Buffer.from('3'))).toBe(false);
      w.setDown(false);
      // The lease comes back before the background retry: the restorer must settle everything.
      await w.restore('L2');
      expect(w.store.get('a')).toEqual({ value: '1', lease: 'L2' });
      expect(w.store.get('c')).toEqual({ value: '3', lease: 'L2' });
      expect(w.store.has('b')).toBe(false); // was left behind (chaos: a deleted endpoint stayed routed)
      expect(w.keys.pending).toBe(0);
    } finally {
      await w.keys.close();
    }
  });

  it('deletes again when a background re-put lands after the delete (no deleted endpoint left in etcd)', async () => {
    const w = world();
    const until = async (cond: () => boolean): Promise<void> => {
      for (let i = 0; !cond(); i++) {
        if (i > 400) throw new Error('condition not met in 4 s');
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    try {
      w.setDown(true);
      expect(await w.keys.put('ep', Buffer.from('x'))).toBe(false); // pending, retried in the background
      w.setDown(false);
      w.hold();
      await until(() => w.heldPuts() === 1); // the background re-put is in flight...
      expect(await w.keys.delete('ep')).toBe(true); // ...the endpoint goes meanwhile...
      w.release(); // ...and the re-put lands after the delete
      await until(() => w.store.get('ep') !== undefined);
      await until(() => !w.store.has('ep') && w.keys.pending === 0);
    } finally {
      await w.keys.close();
    }
  });
});
