import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdentityCache, type IdentityChange } from './identity-cache.js';
import { LabelSet } from './labels.js';

const change = fc.oneof(
  fc.record({ type: fc.constant('upsert' as const), id: fc.integer({ min: 256, max: 264 }), l: fc.integer({ min: 0, max: 4 }) }),
  fc.record({ type: fc.constant('delete' as const), id: fc.integer({ min: 256, max: 264 }) }),
);
const toChange = (c: { type: 'upsert' | 'delete'; id: number; l?: number }): IdentityChange =>
  c.type === 'delete' ? { type: 'delete', id: c.id } : { type: 'upsert', identity: { id: c.id, labels: LabelSet.parse([`app=${c.l}`]), token: 't', createRevision: '1' } };

describe('IdentityCache', () => {
  it('deltas are disjoint and replaying them reproduces the state', () => {
    fc.assert(
      fc.property(fc.array(fc.array(change, { maxLength: 8 }), { maxLength: 10 }), (batches) => {
        const cache = new IdentityCache();
        const mirror = new Map<number, string>();
        for (const b of batches) {
          const d = cache.applyBatch(b.map(toChange));
          for (const id of d.added.keys()) expect(d.deleted.has(id)).toBe(false);
          for (const id of d.deleted.keys()) mirror.delete(id);
          for (const [id, l] of d.added) mirror.set(id, l.canonical);
          expect(new Map(cache.all().map((k) => [k.id, k.labels.canonical]))).toEqual(mirror);
        }
        for (const k of cache.all()) expect(cache.isUsed(k.id)).toBe(true);
      }),
    );
  });
  it('byLabels follows moves of a label set to another number', () => {
    const cache = new IdentityCache();
    const ls = LabelSet.parse(['app=x']);
    cache.applyBatch([{ type: 'upsert', identity: { id: 300, labels: ls, token: 'a', createRevision: '5' } }]);
    const d = cache.applyBatch([
      { type: 'upsert', identity: { id: 301, labels: ls, token: 'b', createRevision: '9' } },
      { type: 'delete', id: 300 },
    ]);
    expect([...d.added.keys()]).toEqual([301]);
    expect([...d.deleted.keys()]).toEqual([300]);
    expect(cache.byLabels(ls.canonical)?.id).toBe(301);
  });
  it('notifies subscribers after the state changed, and only for real changes', () => {
    const cache = new IdentityCache();
    const seen: number[] = [];
    cache.subscribe((d) => seen.push(...d.added.keys(), ...[...d.deleted.keys()].map((x) => -x)));
    const up = toChange({ type: 'upsert', id: 400, l: 1 });
    cache.applyBatch([up]);
    cache.applyBatch([up]); // same labels: no delta
    cache.applyBatch([{ type: 'delete', id: 400 }, up, { type: 'delete', id: 400 }]);
    expect(seen).toEqual([400, -400]);
  });
});
