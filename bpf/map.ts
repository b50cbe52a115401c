import { ClosedError, MapFullError, native, toBpfError } from './errors.js';
import { ebpf } from './napi/index.js';
import type { MapCreateSpec, NativeMapInfo } from './napi/index.js';

/**
 * A BPF map behind an owned fd: raw kernel-layout Buffers in and out. Layout codecs live in
 * bpf/<map>/layout.ts; managers build on this. close() is idempotent and leaves pins alone.
 */
export class BpfMap {
  private closed = false;

  private constructor(
    private readonly fdValue: number,
    readonly info: NativeMapInfo,
  ) {}

  /** Adopts an fd (ownership passes to the map). */
  static fromFd(fd: number): BpfMap {
    try {
      return new BpfMap(fd, native(() => ebpf().mapInfo(fd)));
    } catch (e) {
      ebpf().closeFd(fd);
      throw e;
    }
  }

  static openPinned(path: string): BpfMap {
    return BpfMap.fromFd(native(() => ebpf().objGet(path)));
  }

  static create(spec: MapCreateSpec): BpfMap {
    return BpfMap.fromFd(native(() => ebpf().mapCreate(spec)));
  }

  get fd(): number {
    if (this.closed) throw new ClosedError(`map ${this.info.name} is closed`);
    return this.fdValue;
  }

  get keySize(): number {
    return this.info.keySize;
  }

  get valueSize(): number {
    return this.info.valueSize;
  }

  pin(path: string): void {
    native(() => ebpf().objPin(this.fd, path));
  }

  /** Returns the value, or undefined if absent. */
  lookup(key: Buffer): Buffer | undefined {
    const out = Buffer.alloc(this.valueSize);
    return native(() => ebpf().mapLookup(this.fd, key, out)) ? out : undefined;
  }

  update(key: Buffer, value: Buffer, flags = 0): void {
    native(() => ebpf().mapUpdate(this.fd, key, value, flags));
  }

  /** true if the key existed. */
  delete(key: Buffer): boolean {
    return native(() => ebpf().mapDelete(this.fd, key));
  }

  /**
   * Writes `count` entries packed in keys/values; returns on success. A failure part way
   * throws (MapFullError when full) with `applied` = entries written before it.
   */
  updateBatch(keys: Buffer, values: Buffer, count: number, flags = 0): void {
    try {
      ebpf().mapUpdateBatch(this.fd, keys, values, count, flags);
    } catch (e) {
      throw withApplied(e);
    }
  }

  /** Deletes packed keys; keys already absent are skipped. Returns the number deleted. */
  deleteBatch(keys: Buffer, count: number): number {
    let deleted = 0;
    let off = 0;
    const ks = this.keySize;
    while (off < count) {
      const slice = keys.subarray(off * ks, count * ks);
      try {
        deleted += ebpf().mapDeleteBatch(this.fd, slice, count - off);
        return deleted;
      } catch (e) {
        const done = (e as { count?: number }).count ?? 0;
        const code = (e as { code?: string }).code;
        if (code !== 'ENOENT') throw toBpfError(e);
        // The batch stops at the first absent key: skip it and continue after it.
        deleted += done;
        off += done + 1;
      }
    }
    return deleted;
  }

  /** Iterates keys (copies) with get_next_key. Safe against concurrent deletes of the current key. */
  *keys(): Generator<Buffer> {
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      if (!native(() => ebpf().mapGetNextKey(this.fd, prev, next))) return;
      yield next;
      prev = next;
    }
  }

  /**
   * Reads the whole map with BPF_MAP_LOOKUP_BATCH, `chunk` entries per syscall (hash-type maps;
   * maps without batch support throw EINVAL/ENOTSUPP: use entries()).
   */
  lookupAllBatch(chunk = 1024): [Buffer, Buffer][] {
    const ks = this.keySize;
    const vs = this.valueSize;
    const out: [Buffer, Buffer][] = [];
    let inBatch: Buffer | null = null;
    for (;;) {
      const keys = Buffer.alloc(chunk * ks);
      const values = Buffer.alloc(chunk * vs);
      const outBatch = Buffer.alloc(Math.max(ks, 8));
      let r: { count: number; done: boolean };
      try {
        r = ebpf().mapLookupBatch(this.fd, inBatch, outBatch, keys, values, chunk);
      } catch (e) {
        // A hash bucket holds more entries than `chunk`: retry the same position with more room.
        if ((e as { code?: string }).code === 'ENOSPC' && chunk < this.info.maxEntries) {
          chunk *= 2;
          continue;
        }
        throw toBpfError(e);
      }
      for (let i = 0; i < r.count; i++) {
        out.push([Buffer.from(keys.subarray(i * ks, (i + 1) * ks)), Buffer.from(values.subarray(i * vs, (i + 1) * vs))]);
      }
      if (r.done) return out;
      inBatch = outBatch;
    }
  }

  /** Iterates [key, value] pairs (entries deleted during iteration are skipped). */
  *entries(): Generator<[Buffer, Buffer]> {
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v) yield [k, v];
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    ebpf().closeFd(this.fdValue);
  }
}

/** The error of a partial batch, typed, with how many entries made it. */
export interface PartialBatchError extends Error {
  applied: number;
}

function withApplied(e: unknown): PartialBatchError {
  const applied = (e as { count?: number }).count ?? 0;
  const err = toBpfError(e) as PartialBatchError;
  err.applied = applied;
  return err;
}

export function isMapFull(e: unknown): e is MapFullError {
  return e instanceof MapFullError;
}
