import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LabelSet } from './labels.js';
import { LabelSelector, SelectorParseError } from './selector.js';

const ls = (...l: string[]) => LabelSet.parse(l);

describe('LabelSelector', () => {
  it('source prefixes: k8s:app only matches source k8s, app and any:app match any source', () => {
    const k8s = LabelSelector.parse({ matchLabels: { 'k8s:app': 'web' } });
    const plain = LabelSelector.parse({ matchLabels: { app: 'web' } });
    const anyS = LabelSelector.parse({ matchLabels: { 'any:app': 'web' } });
    expect(k8s.matches(ls('k8s:app=web'))).toBe(true);
    expect(k8s.matches(ls('container:app=web'))).toBe(false);
    expect(k8s.matches(ls('app=web'))).toBe(false);
    for (const s of [plain, anyS]) {
      expect(s.matches(ls('k8s:app=web'))).toBe(true);
      expect(s.matches(ls('container:app=web'))).toBe(true);
      expect(s.matches(ls('app=web'))).toBe(true);
      expect(s.matches(ls('app=db'))).toBe(false);
    }
    expect(plain.canonical).toBe(anyS.canonical);
  });
  it('operators', () => {
    const sel = (key: string, operator: string, values?: string[]) => LabelSelector.parse({ matchExpressions: [values ? { key, operator, values } : { key, operator }] });
    expect(sel('app', 'In', ['a', 'b']).matches(ls('app=b'))).toBe(true);
    expect(sel('app', 'In', ['a', 'b']).matches(ls('x=b'))).toBe(false);
    expect(sel('app', 'NotIn', ['a']).matches(ls('app=b'))).toBe(true);
    expect(sel('app', 'NotIn', ['a']).matches(ls('x=a'))).toBe(true);
    expect(sel('app', 'NotIn', ['a']).matches(ls('app=a'))).toBe(false);
    expect(sel('k8s:app', 'NotIn', ['a']).matches(ls('container:app=a'))).toBe(true);
    expect(sel('app', 'Exists').matches(ls('app'))).toBe(true);
    expect(sel('app', 'Exists').matches(ls('x'))).toBe(false);
    expect(sel('k8s:app', 'DoesNotExist').matches(ls('container:app=a'))).toBe(true);
    expect(sel('app', 'DoesNotExist').matches(ls('container:app=a'))).toBe(false);
    expect(LabelSelector.parse({}).matches(ls('a=b'))).toBe(true);
  });
  it('canonical form ignores order and matchLabels vs single-value In', () => {
    const a = LabelSelector.parse({ matchLabels: { app: 'a', env: 'x' } });
    const b = LabelSelector.parse({ matchExpressions: [{ key: 'env', operator: 'In', values: ['x'] }, { key: 'any:app', operator: 'In', values: ['a'] }] });
    expect(a.canonical).toBe(b.canonical);
    expect(LabelSelector.parse({ matchExpressions: [{ key: 'a', operator: 'In', values: ['2', '1', '1'] }] }).canonical).toBe(
      LabelSelector.parse({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1', '2'] }] }).canonical,
    );
    expect(a.canonical).not.toBe(LabelSelector.parse({ matchLabels: { 'k8s:app': 'a', env: 'x' } }).canonical);
  });
  it('round-trips through its policy form', () => {
    const req = fc.record({
      key: fc.constantFrom('app', 'k8s:app', 'env', 'reserved:host'),
      operator: fc.constantFrom('In', 'NotIn', 'Exists', 'DoesNotExist'),
      values: fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 2 }),
    });
    fc.assert(
      fc.property(fc.array(req, { maxLength: 4 }), (reqs) => {
        const exprs = reqs.map((r) => (r.operator === 'In' || r.operator === 'NotIn' ? r : { key: r.key, operator: r.operator }));
        const s = LabelSelector.parse({ matchExpressions: exprs });
        expect(LabelSelector.parse(s.toRaw()).canonical).toBe(s.canonical);
      }),
    );
  });
  it('rejects bad operators and values with the field named', () => {
    expect(() => LabelSelector.parse({ matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] })).toThrow(SelectorParseError);
    expect(() => LabelSelector.parse({ matchExpressions: [{ key: 'a', operator: 'In' }] })).toThrow(/matchExpressions\[0\]\.values/);
    expect(() => LabelSelector.parse({ matchExpressions: [{ key: '', operator: 'Exists' }] })).toThrow(/empty label key/);
  });
});
