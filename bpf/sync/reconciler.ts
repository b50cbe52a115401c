import { MapFullError } from '../errors.js';
import type { PartialBatchError } from '../map.js';
import type { DatapathLogger } from '../logger.js';
import type { ApplyResult, DriftReport, MapChanges } from './types.js';

/** How one map's keys and values are written; K/V are the callers' (host-order) types. */
export interface MapCodec<K, V> {
  readonly keySize: number;
  readonly valueSize: number;
  keyString(k: K): string;
  encodeKey(k: K, buf: Buffer, off: number): void;
  decodeKey(buf: Buffer, off: number): K;
  encodeValue(v: V, k: K, buf: Buffer, off: number): void;
  decodeValue(buf: Buffer, off: number): V;
  valueEquals(a: V, b: V): boolean;
}

/** The map operations a reconciler needs (BpfMap has them; unit tests use an in-memory one). */
export interface RawMap {
  entries(): Iterable<[Buffer, Buffer]>;
  /** Throws with `applied` (entries written) when it fails part way. */
  updateBatch(keys: Buffer, values: Buffer, count: number): void;
  /** Skips absent keys; returns the number deleted. */
  deleteBatch(keys: Buffer, count: number): number;
}

/** Entries per batch syscall. */
export const RECONCILE_BATCH = 4096;
const BATCH = RECONCILE_BATCH;

/**
 * Keeps one kernel map equal to a desired state by writing only differences, in batches.
 * `realized` is what we believe the kernel holds (seeded from a dump, so a restarted agent that
 * reopens a pinned map writes nothing if nothing changed). repair() re-dumps the kernel, logs
 * any drift and converges. A failed write (e.g. map full) leaves `realized` exact: entries
 * that made it in are recorded, the rest stay pending for the next apply.
 */
export class MapReconciler<K, V> {
  private desiredMap = new Map<string, readonly [K, V]>();
  private realized = new Map<string, V>();

  constructor(
    private readonly map: RawMap,
    private readonly codec: MapCodec<K, V>,
    readonly label: string,
    private readonly log: DatapathLogger,
    private readonly capacity?: number,
  ) {
    this.realized = this.dumpStrings();
  }

  get desiredSize(): number {
    return this.desiredMap.size;
  }

  desired(): ReadonlyMap<string, readonly [K, V]> {
    return this.desiredMap;
  }

  /** Believed-kernel state equals desired (no pending writes). */
  get converged(): boolean {
    if (this.realized.size !== this.desiredMap.size) return false;
    for (const [s, [, v]] of this.desiredMap) {
      const r = this.realized.get(s);
      if (r === undefined || !this.codec.valueEquals(r, v)) return false;
    }
    return true;
  }

  setDesired(entries: Iterable<readonly [K, V]>): ApplyResult {
    const next = new Map<string, readonly [K, V]>();
    for (const e of entries) next.set(this.codec.keyString(e[0]), e);
    this.desiredMap = next;
    return this.flush();
  }

  applyChanges(changes: MapChanges<K, V>): ApplyResult {
    const touched = new Set<string>();
    for (const k of changes.deletes ?? []) {
      const s = this.codec.keyString(k);
      this.desiredMap.delete(s);
      touched.add(s);
    }
    for (const e of changes.upserts ?? []) {
      const s = this.codec.keyString(e[0]);
      this.desiredMap.set(s, e);
      touched.add(s);
    }
    return this.flush(touched);
  }

  /** Writes pending differences (all keys, or only `touched`). Deletes go first to free room. */
  flush(touched?: Iterable<string>): ApplyResult {
    if (this.capacity !== undefined && this.desiredMap.size > this.capacity) {
      throw new MapFullError(`${this.label}: ${this.desiredMap.size} desired entries exceed capacity ${this.capacity}`, 28, 'ENOSPC', 'capacity check');
    }
    const deletes: K[] = [];
    const upserts: (readonly [K, V])[] = [];
    const consider = (s: string): void => {
      const want = this.desiredMap.get(s);
      const have = this.realized.get(s);
      if (want === undefined) {
        if (have !== undefined) deletes.push(this.keyOfRealized(s));
      } else if (have === undefined || !this.codec.valueEquals(have, want[1])) {
        upserts.push(want);
      }
    };
    if (touched) for (const s of touched) consider(s);
    else {
      for (const s of this.realized.keys()) if (!this.desiredMap.has(s)) consider(s);
      for (const s of this.desiredMap.keys()) consider(s);
    }
    const deleted = this.writeDeletes(deletes);
    this.writeUpserts(upserts);
    return { upserted: upserts.length, deleted };
  }

  /** Dumps the kernel map, logs drift against the desired state and converges. */
  repair(): DriftReport {
    const kernel = this.dumpStrings();
    let missing = 0;
    let extra = 0;
    let changed = 0;
    for (const [s, [, v]] of this.desiredMap) {
      const k = kernel.get(s);
      if (k === undefined) missing++;
      else if (!this.codec.valueEquals(k, v)) changed++;
    }
    for (const s of kernel.keys()) if (!this.desiredMap.has(s)) extra++;
    const report: DriftReport = { map: this.label, missing, extra, changed };
    if (missing + extra + changed > 0) this.log.warn({ ...report }, 'datapath: kernel map drifted from desired state; repairing');
    this.realized = kernel;
    this.flush();
    return report;
  }

  /** The kernel's current content, decoded (a full dump). */
  dump(): Map<string, readonly [K, V]> {
    const out = new Map<string, readonly [K, V]>();
    for (const [kb, vb] of this.map.entries()) {
      const k = this.codec.decodeKey(kb, 0);
      out.set(this.codec.keyString(k), [k, this.codec.decodeValue(vb, 0)]);
    }
    return out;
  }

  private realizedKeys = new Map<string, K>();

  private dumpStrings(): Map<string, V> {
    const out = new Map<string, V>();
    this.realizedKeys.clear();
    for (const [s, [k, v]] of this.dump()) {
      out.set(s, v);
      this.realizedKeys.set(s, k);
    }
    return out;
  }

  private keyOfRealized(s: string): K {
    const k = this.realizedKeys.get(s);
    if (k === undefined) throw new Error(`reconciler ${this.label}: no key for ${s}`);
    return k;
  }

  private writeDeletes(keys: K[]): number {
    if (keys.length === 0) return 0;
    const ks = this.codec.keySize;
    let deleted = 0;
    for (let i = 0; i < keys.length; i += BATCH) {
      const chunk = keys.slice(i, i + BATCH);
      const buf = Buffer.alloc(chunk.length * ks);
      chunk.forEach((k, j) => this.codec.encodeKey(k, buf, j * ks));
      deleted += this.map.deleteBatch(buf, chunk.length);
      for (const k of chunk) {
        const s = this.codec.keyString(k);
        this.realized.delete(s);
        this.realizedKeys.delete(s);
      }
    }
    return deleted;
  }

  private writeUpserts(entries: (readonly [K, V])[]): void {
    const ks = this.codec.keySize;
    const vs = this.codec.valueSize;
    for (let i = 0; i < entries.length; i += BATCH) {
      const chunk = entries.slice(i, i + BATCH);
      const kb = Buffer.alloc(chunk.length * ks);
      const vb = Buffer.alloc(chunk.length * vs);
      chunk.forEach(([k, v], j) => {
        this.codec.encodeKey(k, kb, j * ks);
        this.codec.encodeValue(v, k, vb, j * vs);
      });
      try {
        this.map.updateBatch(kb, vb, chunk.length);
      } catch (e) {
        this.markRealized(chunk.slice(0, (e as PartialBatchError).applied ?? 0));
        throw e;
      }
      this.markRealized(chunk);
    }
  }

  private markRealized(entries: (readonly [K, V])[]): void {
    for (const [k, v] of entries) {
      const s = this.codec.keyString(k);
      this.realized.set(s, v);
      this.realizedKeys.set(s, k);
    }
  }
}
