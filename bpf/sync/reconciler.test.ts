import { describe, expect, it } from 'vitest';
import { MapFullError } from '../errors.js';
import { silentLogger } from '../logger.js';
import type { DatapathLogger } from '../logger.js';
import { policyCodec } from '../policy-map/codec.js';
import type { PolicyEntry, PolicyKey } from '../policy-map/types.js';
import { MapReconciler, RECONCILE_BATCH } from './reconciler.js';
import type { RawMap } from './reconciler.js';

/** An in-memory RawMap that counts syscall-equivalents and can be full. */
class MemMap implements RawMap {
  readonly data = new Map<string, Buffer>();
  updateCalls = 0;
  deleteCalls = 0;
  written = 0;

  constructor(
    private readonly keySize: number,
    private readonly capacity = Infinity,
  ) {}

  *entries(): Iterable<[Buffer, Buffer]> {
    for (const [k, v] of this.data) yield [Buffer.from(k, 'hex'), Buffer.from(v)];
  }

  updateBatch(keys: Buffer, values: Buffer, count: number): void {
    this.updateCalls++;
    const vs = values.length / count;
    for (let i = 0; i < count; i++) {
      const k = keys.subarray(i * this.keySize, (i + 1) * this.keySize).toString('hex');
      if (!this.data.has(k) && this.data.size >= this.capacity) {
        throw Object.assign(new MapFullError('full', 28, 'ENOSPC', 'bpf_map_update_batch'), { applied: i });
      }
      this.data.set(k, Buffer.from(values.subarray(i * vs, (i + 1) * vs)));
      this.written++;
    }
  }

  deleteBatch(keys: Buffer, count: number): number {
    this.deleteCalls++;
    let n = 0;
    for (let i = 0; i < count; i++) if (this.data.delete(keys.subarray(i * this.keySize, (i + 1) * this.keySize).toString('hex'))) n++;
    return n;
  }
}

const ALLOW: PolicyEntry = { deny: false, proxyPort: 0 };
const key = (identity: number, port = 80): PolicyKey => ({ identity, direction: 0, protocol: 6, port, portPrefixLen: 16 });
const entries = (n: number, from = 256): (readonly [PolicyKey, PolicyEntry])[] => Array.from({ length: n }, (_, i) => [key(from + i), ALLOW] as const);

function setup(capacity?: number, log: DatapathLogger = silentLogger): { m: MemMap; r: MapReconciler<PolicyKey, PolicyEntry> } {
  const m = new MemMap(policyCodec.keySize, capacity);
  return { m, r: new MapReconciler(m, policyCodec, 'test', log, capacity) };
}

describe('MapReconciler', () => {
  it('writes only differences, in batches', () => {
    const { m, r } = setup();
    expect(r.setDesired(entries(10_000))).toEqual({ upserted: 10_000, deleted: 0 });
    expect(m.updateCalls).toBe(Math.ceil(10_000 / RECONCILE_BATCH));
    m.updateCalls = 0;
    expect(r.setDesired(entries(10_000))).toEqual({ upserted: 0, deleted: 0 });
    expect(m.updateCalls + m.deleteCalls).toBe(0);
    // One changed value, one removed, one added: one batch each way.
    const next = entries(10_000).slice(1);
    next[0] = [next[0]![0], { deny: true, proxyPort: 0 }];
    next.push([key(99_999), ALLOW]);
    expect(r.setDesired(next)).toEqual({ upserted: 2, deleted: 1 });
    expect(m.updateCalls).toBe(1);
    expect(m.deleteCalls).toBe(1);
    expect(r.converged).toBe(true);
  });

  it('applies incremental changes, deletes first', () => {
    const { m, r } = setup();
    r.setDesired(entries(3));
    expect(r.applyChanges({ deletes: [key(256)], upserts: [[key(256, 443), ALLOW]] })).toEqual({ upserted: 1, deleted: 1 });
    expect(r.applyChanges({ deletes: [key(12345)] })).toEqual({ upserted: 0, deleted: 0 });
    expect(m.data.size).toBe(3);
  });

  it('seeds what the kernel holds from a dump, so a restart writes nothing new', () => {
    const { m, r } = setup();
    r.setDesired(entries(50));
    const again = new MapReconciler(m, policyCodec, 'test', silentLogger);
    m.updateCalls = 0;
    expect(again.setDesired(entries(50))).toEqual({ upserted: 0, deleted: 0 });
    expect(m.updateCalls).toBe(0);
  });

  it('refuses a desired state above capacity before writing anything', () => {
    const { m, r } = setup(10);
    r.setDesired(entries(5));
    m.updateCalls = 0;
    expect(() => r.setDesired(entries(11))).toThrow(MapFullError);
    expect(m.updateCalls).toBe(0);
    expect(m.data.size).toBe(5);
  });

  it('records the entries a failed batch did write', () => {
    const m = new MemMap(policyCodec.keySize, 7);
    const r = new MapReconciler(m, policyCodec, 'test', silentLogger); // no capacity hint: the map fails
    expect(() => r.setDesired(entries(10))).toThrow(MapFullError);
    expect(m.data.size).toBe(7);
    expect(r.converged).toBe(false);
    expect(r.setDesired(entries(7))).toEqual({ upserted: 0, deleted: 0 });
    expect(r.converged).toBe(true);
  });

  it('repairs drift and logs it', () => {
    const warnings: object[] = [];
    const { m, r } = setup(undefined, { ...silentLogger, warn: (o) => void warnings.push(o) });
    r.setDesired(entries(4));
    const [first] = [...m.data.keys()];
    m.data.delete(first!); // missing
    const extra = Buffer.alloc(12);
    policyCodec.encodeKey(key(7777), extra, 0);
    m.data.set(extra.toString('hex'), Buffer.alloc(8)); // extra
    const [, second] = [...m.data.keys()];
    m.data.set(second!, Buffer.from([0, 0, 1, 24, 0, 0, 0, 0])); // changed (deny)
    expect(r.repair()).toEqual({ map: 'test', missing: 1, extra: 1, changed: 1 });
    expect(warnings).toHaveLength(1);
    expect(r.repair()).toEqual({ map: 'test', missing: 0, extra: 0, changed: 0 });
    expect(warnings).toHaveLength(1);
    expect(r.dump().size).toBe(4);
  });
});
