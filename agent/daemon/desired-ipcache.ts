import type { IpcacheChanges, IpcacheEntry } from '../../bpf/index.js';
import { formatCidr, parseCidr } from '../../identity/index.js';

/** Where an ipcache prefix comes from; earlier sources win when two name the same prefix. */
export const IPCACHE_SOURCES = ['endpoint', 'node', 'cidr'] as const;
export type IpcacheSource = (typeof IPCACHE_SOURCES)[number];

export interface IpcacheValue {
  readonly identity: number;
  readonly nodeAddress?: string;
}

export function canonicalPrefix(cidrOrIp: string): string {
  return formatCidr(parseCidr(cidrOrIp));
}

function same(a: IpcacheValue | undefined, b: IpcacheValue | undefined): boolean {
  return a?.identity === b?.identity && a?.nodeAddress === b?.nodeAddress;
}

/**
 * The ipcache the agent wants, layered by source (endpoint IPs beat node addresses beat CIDR
 * identities of policy). Pure and incremental: set/delete only mark the prefix dirty;
 * takeChanges() returns the net difference since the last call.
 */
export class DesiredIpcache {
  private readonly layers = new Map<string, Map<IpcacheSource, IpcacheValue>>();
  private readonly applied = new Map<string, IpcacheValue>();
  private readonly dirty = new Set<string>();

  set(source: IpcacheSource, prefix: string, value: IpcacheValue): void {
    const p = canonicalPrefix(prefix);
    let l = this.layers.get(p);
    if (l === undefined) this.layers.set(p, (l = new Map<IpcacheSource, IpcacheValue>()));
    l.set(source, value);
    this.dirty.add(p);
  }

  delete(source: IpcacheSource, prefix: string): void {
    const p = canonicalPrefix(prefix);
    const l = this.layers.get(p);
    if (l === undefined || !l.delete(source)) return;
    if (l.size === 0) this.layers.delete(p);
    this.dirty.add(p);
  }

  private effective(prefix: string): IpcacheValue | undefined {
    const l = this.layers.get(prefix);
    if (l === undefined) return undefined;
    for (const s of IPCACHE_SOURCES) {
      const v = l.get(s);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  get size(): number {
    return this.layers.size;
  }

  /** Longest-prefix match of an IPv4 address (the L7 proxy's identity lookup). */
  lookup(ip: string): IpcacheValue | undefined {
    const c = parseCidr(ip);
    for (let len = 32; len >= 0; len--) {
      const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
      const v = this.effective(formatCidr({ ...c, addr: (c.addr & mask) >>> 0, len }));
      if (v !== undefined) return v;
    }
    return undefined;
  }

  get pending(): boolean {
    return this.dirty.size > 0;
  }

  /** Every effective entry (a full setDesired after a restart sweeps stale kernel entries). */
  takeAll(): IpcacheEntry[] {
    this.dirty.clear();
    this.applied.clear();
    const out: IpcacheEntry[] = [];
    for (const p of this.layers.keys()) {
      const v = this.effective(p);
      if (v === undefined) continue;
      this.applied.set(p, v);
      out.push({ cidr: p, identity: v.identity, ...(v.nodeAddress !== undefined ? { nodeAddress: v.nodeAddress } : {}) });
    }
    return out;
  }

  takeChanges(): { readonly upserts: IpcacheEntry[]; readonly deletes: string[] } & IpcacheChanges {
    const upserts: IpcacheEntry[] = [];
    const deletes: string[] = [];
    for (const p of this.dirty) {
      const now = this.effective(p);
      const before = this.applied.get(p);
      if (same(now, before)) continue;
      if (now === undefined) {
        deletes.push(p);
        this.applied.delete(p);
      } else {
        upserts.push({ cidr: p, identity: now.identity, ...(now.nodeAddress !== undefined ? { nodeAddress: now.nodeAddress } : {}) });
        this.applied.set(p, now);
      }
    }
    this.dirty.clear();
    return { upserts, deletes };
  }
}
