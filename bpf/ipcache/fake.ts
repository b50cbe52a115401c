import { IpcacheFullError } from '../errors.js';
import type { ApplyResult, DriftReport } from '../sync/types.js';
import type { IpcacheChanges, IpcacheManager, IpcacheValue } from './api.js';
import { canonicalCidr, ipcacheKeyFromCidr } from './layout.js';
import type { IpcacheEntry } from './layout.js';

const same = (a: IpcacheValue, b: IpcacheValue): boolean => a.identity === b.identity && a.nodeAddress === b.nodeAddress;

/** In-memory IpcacheManager with the real one's semantics (LPM lookup, IPv6 ignored, capacity). */
export class FakeIpcacheManager implements IpcacheManager {
  private want = new Map<string, IpcacheValue>();
  /** What the "kernel" holds; tests may edit it to simulate drift. */
  readonly kernel = new Map<string, IpcacheValue>();

  constructor(readonly capacity = 512000) {}

  setDesired(entries: Iterable<IpcacheEntry>): ApplyResult {
    this.want = new Map();
    for (const e of entries) this.put(e);
    return this.flush();
  }

  applyChanges(changes: IpcacheChanges): ApplyResult {
    for (const c of changes.deletes ?? []) {
      const k = canonicalCidr(c);
      if (k !== undefined) this.want.delete(k);
    }
    for (const e of changes.upserts ?? []) this.put(e);
    return this.flush();
  }

  lookup(address: string): IpcacheValue | undefined {
    const a = ipcacheKeyFromCidr(`${address}/32`);
    if (!a) return undefined;
    let best: [number, IpcacheValue] | undefined;
    for (const [cidr, v] of this.kernel) {
      const k = ipcacheKeyFromCidr(cidr)!;
      const mask = k.prefixLen === 0 ? 0 : (0xffff_ffff << (32 - k.prefixLen)) >>> 0;
      if (((a.addrNetwork & mask) >>> 0) === k.addrNetwork && (!best || k.prefixLen > best[0])) best = [k.prefixLen, v];
    }
    return best?.[1];
  }

  dump(): Map<string, IpcacheValue> {
    return new Map(this.kernel);
  }

  repair(): DriftReport {
    let missing = 0;
    let extra = 0;
    let changed = 0;
    for (const [s, v] of this.want) {
      const k = this.kernel.get(s);
      if (!k) missing++;
      else if (!same(k, v)) changed++;
    }
    for (const s of this.kernel.keys()) if (!this.want.has(s)) extra++;
    this.flush();
    return { map: 'ipcache', missing, extra, changed };
  }

  close(): void {}

  private put(e: IpcacheEntry): void {
    const k = canonicalCidr(e.cidr);
    if (k === undefined) return;
    this.want.set(k, e.nodeAddress === undefined ? { identity: e.identity } : { identity: e.identity, nodeAddress: e.nodeAddress });
  }

  private flush(): ApplyResult {
    let upserted = 0;
    let deleted = 0;
    for (const s of [...this.kernel.keys()]) {
      if (!this.want.has(s)) {
        this.kernel.delete(s);
        deleted++;
      }
    }
    for (const [s, v] of this.want) {
      const k = this.kernel.get(s);
      if (!k || !same(k, v)) {
        if (!k && this.kernel.size >= this.capacity) throw new IpcacheFullError(this.want.size);
        this.kernel.set(s, v);
        upserted++;
      }
    }
    return { upserted, deleted };
  }
}
