import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LabelSet } from './labels.js';
import { LabelSelector } from './selector.js';
import { SelectorCache, type CachedSelector, type SelectionUser } from './selector-cache.js';
import { CidrSelector, EndpointSelector, EntitySelector, makeIdentityInfo } from './selector-kinds.js';
import { parseCidr } from './selector-cidr.js';

const ls = (...l: string[]) => LabelSet.parse(l);
const ep = (raw: Parameters<typeof LabelSelector.parse>[0]) => new EndpointSelector(LabelSelector.parse(raw));

class Recorder implements SelectionUser {
  calls: { sel: string; added: number[]; deleted: number[] }[] = [];
  identitySelectionUpdated(s: CachedSelector, added: readonly number[], deleted: readonly number[]): void {
    this.calls.push({ sel: s.canonical, added: [...added], deleted: [...deleted] });
  }
}

describe('SelectorCache', () => {
  it('one entry per distinct selector, populated once, dropped with its last user', () => {
    const c = new SelectorCache();
    c.updateIdentities([[300, ls('app=a')], [301, ls('app=b')]]);
    const u1 = new Recorder();
    const u2 = new Recorder();
    const a = c.addUser(ep({ matchLabels: { app: 'a' } }), u1);
    const matches = c.stats().labelMatches;
    const b = c.addUser(ep({ matchExpressions: [{ key: 'any:app', operator: 'In', values: ['a'] }] }), u2);
    expect(b).toBe(a);
    expect(c.stats().labelMatches).toBe(matches);
    expect([...a.selections]).toEqual([300]);
    expect(c.stats().selectors).toBe(1);
    c.removeUser(a, u1);
    expect(c.stats().selectors).toBe(1);
    c.removeUser(a, u2);
    expect(c.stats().selectors).toBe(0);
  });
  it('an identity change touches only selectors whose selection changes, with disjoint deltas', () => {
    const c = new SelectorCache();
    const u = new Recorder();
    c.addUser(ep({ matchLabels: { app: 'a' } }), u);
    c.addUser(ep({ matchLabels: { app: 'b' } }), u);
    c.addUser(new EntitySelector('cluster'), u);
    c.updateIdentities([[300, ls('app=a')]]);
    expect(u.calls).toEqual([
      { sel: 'endpoints:sel:[["any","app","In",["a"]]]', added: [300], deleted: [] },
      { sel: 'entity:cluster', added: [300], deleted: [] },
    ]);
    u.calls = [];
    c.updateIdentities([[300, ls('app=b')]]);
    expect(u.calls).toEqual([
      { sel: 'endpoints:sel:[["any","app","In",["a"]]]', added: [], deleted: [300] },
      { sel: 'endpoints:sel:[["any","app","In",["b"]]]', added: [300], deleted: [] },
    ]);
    u.calls = [];
    c.updateIdentities([[300, ls('app=b')]]);
    c.updateIdentities([], [999]);
    expect(u.calls).toEqual([]);
    c.updateIdentities([], [300]);
    expect(u.calls.map((x) => [x.sel, x.deleted])).toEqual([
      ['endpoints:sel:[["any","app","In",["b"]]]', [300]],
      ['entity:cluster', [300]],
    ]);
  });
  it('indexes: an identity no selector can match costs no label matching', () => {
    const c = new SelectorCache();
    const u = new Recorder();
    for (let i = 0; i < 100; i++) c.addUser(ep({ matchLabels: { app: `svc-${i}` } }), u);
    const before = c.stats().labelMatches;
    c.updateIdentities([[300, ls('app=unrelated')]]);
    expect(c.stats().labelMatches - before).toBe(0);
    c.updateIdentities([[301, ls('app=svc-7')]]);
    expect(c.stats().labelMatches - before).toBe(1);
  });
  it('memoizes selector x label-set results in a bounded LRU', () => {
    const c = new SelectorCache({ memoSize: 10 });
    const u = new Recorder();
    c.addUser(ep({ matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['x'] }] }), u);
    c.updateIdentities([[300, ls('app=a')]]);
    const m = c.stats().labelMatches;
    c.updateIdentities([], [300]);
    c.updateIdentities([[301, ls('app=a')]]);
    expect(c.stats().labelMatches).toBe(m);
    expect(c.stats().memoHits).toBeGreaterThan(0);
    for (let i = 0; i < 50; i++) c.updateIdentities([[400 + i, ls(`app=n${i}`)]]);
    expect(c.stats().memoSize).toBeLessThanOrEqual(10);
  });
  it('endpoint selectors see cluster identities; reserved only when required explicitly; CIDR selectors', () => {
    const c = new SelectorCache();
    const u = new Recorder();
    const all = c.addUser(ep({}), u);
    const host = c.addUser(ep({ matchLabels: { 'reserved:host': '' } }), u);
    const world = c.addUser(new EntitySelector('world'), u);
    const ten = c.addUser(new CidrSelector(parseCidr('10.0.0.0/8'), [parseCidr('10.1.0.0/16')]), u);
    const any = c.addUser(new CidrSelector(parseCidr('0.0.0.0/0'), []), u);
    c.updateIdentities([
      [300, ls('app=a')],
      [(1 << 24) | 1, ls('cidr:10.0.0.0/8')],
      [(1 << 24) | 2, ls('cidr:10.1.0.0/16')],
      [(1 << 24) | 3, ls('cidr:10.1.2.0/24')],
      [(1 << 24) | 4, ls('cidr:10.2.0.0/16')],
    ]);
    expect([...all.selections]).toEqual([300]);
    expect([...host.selections]).toEqual([1]);
    expect([...world.selections].sort((a, b) => a - b)).toEqual([2, (1 << 24) | 1, (1 << 24) | 2, (1 << 24) | 3, (1 << 24) | 4]);
    expect([...ten.selections].sort((a, b) => a - b)).toEqual([(1 << 24) | 1, (1 << 24) | 4]);
    expect([...any.selections].sort((a, b) => a - b)).toEqual([2, (1 << 24) | 1, (1 << 24) | 2, (1 << 24) | 3, (1 << 24) | 4]);
  });
  it('selections always equal a direct scan (random identity churn)', () => {
    const labels = fc.tuple(fc.constantFrom('k8s', 'container'), fc.constantFrom('a', 'b', 'c'), fc.constantFrom('x', 'y', '')).map(([s, a, e]) => ls(`${s}:app=${a}`, ...(e ? [`env=${e}`] : [])));
    const op = fc.oneof(fc.tuple(fc.constant('add' as const), fc.integer({ min: 256, max: 270 }), labels), fc.tuple(fc.constant('del' as const), fc.integer({ min: 256, max: 270 })));
    const sels = [ep({}), ep({ matchLabels: { app: 'a' } }), ep({ matchLabels: { 'k8s:app': 'b', env: 'x' } }), ep({ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['x'] }] }), ep({ matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] }), new EntitySelector('cluster')];
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.integer({ min: 0, max: 40 }), (ops, addAt) => {
        const c = new SelectorCache({ memoSize: 8 });
        const u = new Recorder();
        const model = new Map<number, LabelSet>();
        const cached: CachedSelector[] = [];
        const mirror = new Map<string, Set<number>>();
        ops.forEach((o, i) => {
          if (i === addAt) for (const s of sels) cached.push(c.addUser(s, u));
          if (i === addAt) for (const cs of cached) mirror.set(cs.canonical, new Set(cs.selections));
          if (o[0] === 'add') {
            model.set(o[1], o[2]);
            c.updateIdentities([[o[1], o[2]]]);
          } else {
            model.delete(o[1]);
            c.updateIdentities([], [o[1]]);
          }
        });
        for (const call of u.calls) {
          const m = mirror.get(call.sel)!;
          for (const d of call.deleted) expect(m.delete(d)).toBe(true);
          for (const a of call.added) {
            expect(m.has(a)).toBe(false);
            m.add(a);
          }
        }
        for (const cs of cached) {
          const want = [...model].filter(([id, l]) => cs.selector.matches(makeIdentityInfo(id, l), { labelMatch: (s, x) => s.matches(x) })).map(([id]) => id);
          if (cs.selector.canonical === 'entity:cluster') want.push(1, 3, 4, 5, 6);
          expect([...cs.selections].sort((a, b) => a - b)).toEqual(want.sort((a, b) => a - b));
          expect([...mirror.get(cs.canonical)!].sort((a, b) => a - b)).toEqual(want.sort((a, b) => a - b));
        }
      }),
      { numRuns: 200 },
    );
  });
});
