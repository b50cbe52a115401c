import { IpcacheFullError } from '../errors.js';
import { BpfMap, isMapFull } from '../map.js';
import type { DatapathLogger } from '../logger.js';
import { MapReconciler } from '../sync/reconciler.js';
import type { ApplyResult, DriftReport } from '../sync/types.js';
import type { IpcacheChanges, IpcacheManager, IpcacheValue } from './api.js';
import { ipcacheCodec } from './codec.js';
import { canonicalCidr, encodeIpcacheKeyRaw, IPCACHE_KEY_SIZE, ipcacheKeyFromCidr } from './layout.js';
import type { IpcacheEntry } from './layout.js';

function toPair(e: IpcacheEntry): readonly [string, IpcacheValue] | undefined {
  const cidr = canonicalCidr(e.cidr);
  if (cidr === undefined) return undefined; // IPv6: not enforced, see api.ts
  return [cidr, e.nodeAddress === undefined ? { identity: e.identity } : { identity: e.identity, nodeAddress: e.nodeAddress }];
}

function pairs(entries: Iterable<IpcacheEntry>): (readonly [string, IpcacheValue])[] {
  const out: (readonly [string, IpcacheValue])[] = [];
  for (const e of entries) {
    const p = toPair(e);
    if (p) out.push(p);
  }
  return out;
}

/** The ipcache LPM trie (ward_ipcache), kept equal to the desired entries. */
export class KernelIpcacheManager implements IpcacheManager {
  private readonly rec: MapReconciler<string, IpcacheValue>;

  constructor(
    private readonly map: BpfMap,
    log: DatapathLogger,
  ) {
    this.rec = new MapReconciler(map, ipcacheCodec, 'ipcache', log, map.info.maxEntries);
  }

  setDesired(entries: Iterable<IpcacheEntry>): ApplyResult {
    return this.guard(() => this.rec.setDesired(pairs(entries)));
  }

  applyChanges(changes: IpcacheChanges): ApplyResult {
    const deletes: string[] = [];
    for (const c of changes.deletes ?? []) {
      const k = canonicalCidr(c);
      if (k !== undefined) deletes.push(k);
    }
    return this.guard(() => this.rec.applyChanges({ deletes, upserts: pairs(changes.upserts ?? []) }));
  }

  lookup(address: string): IpcacheValue | undefined {
    const raw = ipcacheKeyFromCidr(`${address}/32`);
    if (!raw) return undefined;
    const kb = Buffer.alloc(IPCACHE_KEY_SIZE);
    encodeIpcacheKeyRaw(raw, kb, 0);
    const v = this.map.lookup(kb);
    return v && ipcacheCodec.decodeValue(v, 0);
  }

  dump(): Map<string, IpcacheValue> {
    const out = new Map<string, IpcacheValue>();
    for (const [s, [, v]] of this.rec.dump()) out.set(s, v);
    return out;
  }

  repair(): DriftReport {
    return this.guard(() => this.rec.repair());
  }

  close(): void {
    this.map.close();
  }

  private guard<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (isMapFull(e)) throw new IpcacheFullError(this.rec.desiredSize, { cause: e });
      throw e;
    }
  }
}
