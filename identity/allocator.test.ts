import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdentityAllocator, type AllocatorBackend, type CreateOutcome, type IdentityRecord, type ReferenceOutcome } from './allocator.js';
import { IdentityRangeExhaustedError, InvalidLabelsError } from './allocator-errors.js';
import { IdentityCache } from './identity-cache.js';
import { LabelSet } from './labels.js';

/** An in-memory cluster store with the same guards as the etcd backend. */
class MemoryStore {
  rev = 0;
  readonly index = new Map<string, { id: number; token: string; createRevision: string }>();
  readonly ids = new Map<number, string>();
  readonly refs = new Map<string, Set<string>>(); // canonical -> nodes
  delete(canonical: string): void {
    const e = this.index.get(canonical);
    if (e === undefined) return;
    this.index.delete(canonical);
    this.ids.delete(e.id);
  }
}

class MemoryBackend implements AllocatorBackend {
  calls = 0;
  constructor(
    readonly store: MemoryStore,
    readonly node: string,
  ) {}
  async create(labels: LabelSet, candidate: number): Promise<CreateOutcome> {
    this.calls++;
    await Promise.resolve();
    const s = this.store;
    const cur = s.index.get(labels.canonical);
    if (cur !== undefined) return { kind: 'exists', identity: cur };
    if (s.ids.has(candidate)) return { kind: 'id-taken' };
    const rec = { id: candidate, token: `${this.node}-${candidate}`, createRevision: String(++s.rev) };
    s.index.set(labels.canonical, rec);
    s.ids.set(candidate, labels.canonical);
    this.ref(labels);
    return { kind: 'created', identity: rec };
  }
  async reference(labels: LabelSet, known: IdentityRecord): Promise<ReferenceOutcome> {
    this.calls++;
    await Promise.resolve();
    const cur = this.store.index.get(labels.canonical);
    if (cur === undefined || cur.createRevision !== known.createRevision) return { kind: 'gone', current: cur };
    this.ref(labels);
    return { kind: 'referenced' };
  }
  async release(labels: LabelSet): Promise<void> {
    this.calls++;
    this.store.refs.get(labels.canonical)?.delete(this.node);
  }
  private ref(labels: LabelSet): void {
    const set = this.store.refs.get(labels.canonical) ?? new Set();
    set.add(this.node);
    this.store.refs.set(labels.canonical, set);
  }
}

const rng = (seed: number): (() => number) => {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
};

describe('IdentityAllocator (in-memory backend)', () => {
  it('concurrent nodes agree; sets never share; each node holds its references', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 10 }), { minLength: 1, maxLength: 5 }), fc.integer(), async (plans, seed) => {
        const store = new MemoryStore();
        const nodes = plans.map((_, i) => {
          const b = new MemoryBackend(store, `n${i}`);
          return { b, a: new IdentityAllocator(b, new IdentityCache(), { random: rng(seed + i), range: { min: 256, max: 270 } }) };
        });
        const got = await Promise.all(plans.map((p, i) => Promise.all(p.map(async (k) => [k, (await nodes[i]!.a.allocate(LabelSet.parse([`k=${k}`]))).id] as const))));
        const byK = new Map<number, number>();
        for (const r of got)
          for (const [k, id] of r) {
            if (byK.has(k)) expect(byK.get(k)).toBe(id);
            byK.set(k, id);
          }
        expect(new Set(byK.values()).size).toBe(byK.size);
        plans.forEach((p, i) => {
          for (const k of new Set(p)) expect(store.refs.get(LabelSet.parse([`k=${k}`]).canonical)?.has(`n${i}`)).toBe(true);
        });
      }),
    );
  });

  it('local refcount: reuse costs nothing, release happens at zero', async () => {
    const store = new MemoryStore();
    const b = new MemoryBackend(store, 'n');
    const a = new IdentityAllocator(b, new IdentityCache(), { random: rng(1) });
    const ls = LabelSet.parse(['app=x']);
    const first = await a.allocate(ls);
    expect(first.roundTrips).toBe(1);
    expect(await a.allocate(ls)).toEqual({ id: first.id, isNew: false, roundTrips: 0 });
    expect(b.calls).toBe(1);
    expect(await a.release(ls)).toBe(false);
    expect(store.refs.get(ls.canonical)?.has('n')).toBe(true);
    expect(await a.release(ls)).toBe(true);
    expect(store.refs.get(ls.canonical)?.has('n')).toBe(false);
    expect(await a.release(ls)).toBe(false);
  });

  it('exhausted range and empty label sets are typed errors', async () => {
    const a = new IdentityAllocator(new MemoryBackend(new MemoryStore(), 'n'), new IdentityCache(), { random: rng(2), range: { min: 256, max: 257 } });
    await a.allocate(LabelSet.parse(['a=1']));
    await a.allocate(LabelSet.parse(['a=2']));
    await expect(a.allocate(LabelSet.parse(['a=3']))).rejects.toBeInstanceOf(IdentityRangeExhaustedError);
    await expect(a.allocate(LabelSet.parse([]))).rejects.toBeInstanceOf(InvalidLabelsError);
  });

  it('restore re-references, and takes the old number back after a GC', async () => {
    const store = new MemoryStore();
    const a = new IdentityAllocator(new MemoryBackend(store, 'n'), new IdentityCache(), { random: rng(3) });
    const ls = LabelSet.parse(['app=x']);
    const { id } = await a.allocate(ls);
    store.refs.clear();
    expect(await a.restore()).toEqual([]);
    expect(store.refs.get(ls.canonical)?.has('n')).toBe(true);
    store.delete(ls.canonical); // GC'd while the node was cut off
    expect(await a.restore()).toEqual([]);
    expect(store.index.get(ls.canonical)?.id).toBe(id);
    // Number taken by another set meanwhile: the label set moves.
    store.delete(ls.canonical);
    const other = new IdentityAllocator(new MemoryBackend(store, 'm'), new IdentityCache(), { random: () => 0, range: { min: id, max: id } });
    await other.allocate(LabelSet.parse(['app=thief']));
    const moves = await a.restore();
    expect(moves).toHaveLength(1);
    expect(moves[0]!.from).toBe(id);
    expect(a.lookupLocal(ls)).toBe(moves[0]!.to);
  });

  it('release racing restore never resurrects a reference (serialised per label set)', async () => {
    const store = new MemoryStore();
    const a = new IdentityAllocator(new MemoryBackend(store, 'n'), new IdentityCache(), { random: rng(4) });
    const ls = LabelSet.parse(['app=x']);
    await a.allocate(ls);
    const r = a.restore();
    const rel = a.release(ls);
    await Promise.all([r, rel]);
    expect(store.refs.get(ls.canonical)?.has('n')).toBe(false);
  });
});
