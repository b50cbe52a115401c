import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LabelSet } from '../../../identity/index.js';
import { applyDelta, computeFull, PolicyEngine, type DesiredEntry } from '../../../agent/calc/index.js';
import { parsePolicy } from '../../../agent/policy/index.js';

// A small universe so that random rules and identities collide often.
const labelArb = fc
  .tuple(
    fc.constantFrom('k8s', 'container', 'unspec'),
    fc.constantFrom('a', 'b', 'c'),
    fc.option(fc.constantFrom('x', 'y'), { nil: undefined }),
  )
  .map(([src, app, env]) => LabelSet.parse([`${src === 'unspec' ? '' : `${src}:`}app=${app}`, ...(env ? [`env=${env}`] : [])]));

const selectorArb = fc.oneof(
  fc.constant({}),
  fc.record({ matchLabels: fc.constantFrom({ app: 'a' }, { 'k8s:app': 'b' }, { env: 'x' }, { 'any:app': 'c', env: 'y' }) }),
  fc.record({
    matchExpressions: fc.constantFrom(
      [{ key: 'app', operator: 'In', values: ['a', 'b'] }],
      [{ key: 'env', operator: 'NotIn', values: ['x'] }],
      [{ key: 'env', operator: 'Exists' }],
      [{ key: 'k8s:env', operator: 'DoesNotExist' }],
      [{ key: 'reserved:host', operator: 'Exists' }],
    ),
  }),
);

const cidrArb = fc.oneof(
  fc.constantFrom('10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '0.0.0.0/0', '192.168.0.1'),
  fc.constantFrom(
    { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] },
    { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] },
    { cidr: '10.1.0.0/16', except: ['10.1.2.0/24', '10.1.3.0/24'] },
  ),
);

const portsArb = fc.constantFrom(
  [{ ports: [{ port: '80', protocol: 'TCP' }] }],
  [{ ports: [{ port: '80', endPort: 83 }] }],
  [{ ports: [{ port: '0', protocol: 'UDP' }] }],
  [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } }],
  [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ path: '/x' }] } }],
);

function elementArb(dir: 'ingress' | 'egress', deny: boolean) {
  const pre = dir === 'ingress' ? 'from' : 'to';
  return fc
    .record(
      {
        [`${pre}Endpoints`]: fc.array(selectorArb, { maxLength: 2 }),
        [`${pre}Entities`]: fc.array(fc.constantFrom('world', 'host', 'cluster', 'all', 'remote-node'), { maxLength: 1 }),
        cidr: fc.array(cidrArb, { maxLength: 1 }),
        toPorts: fc.option(portsArb, { nil: undefined }),
      },
      { requiredKeys: [] },
    )
    .map((r) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(r)) {
        if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
        if (k === 'cidr') {
          const list = v as unknown[];
          const plain = list.filter((c) => typeof c === 'string');
          const sets = list.filter((c) => typeof c !== 'string');
          if (plain.length) out[`${pre}CIDR`] = plain;
          if (sets.length) out[`${pre}CIDRSet`] = sets;
          continue;
        }
        if (k === 'toPorts' && deny) {
          out[k] = (v as { ports: unknown }[]).map((p) => ({ ports: p.ports }));
          continue;
        }
        out[k] = v;
      }
      return out;
    });
}

const ruleArb = fc.record(
  {
    endpointSelector: selectorArb,
    ingress: fc.array(elementArb('ingress', false), { maxLength: 2 }),
    ingressDeny: fc.array(elementArb('ingress', true), { maxLength: 1 }),
    egress: fc.array(elementArb('egress', false), { maxLength: 2 }),
    egressDeny: fc.array(elementArb('egress', true), { maxLength: 1 }),
    enableDefaultDeny: fc.record({ ingress: fc.boolean(), egress: fc.boolean() }, { requiredKeys: [] }),
  },
  { requiredKeys: ['endpointSelector'] },
);

type Op =
  | { t: 'id'; id: number; labels: LabelSet }
  | { t: 'delId'; id: number }
  | { t: 'pol'; name: string; rules: unknown[] }
  | { t: 'delPol'; name: string }
  | { t: 'ep'; name: string; labels: LabelSet }
  | { t: 'delEp'; name: string };

const idArb = fc.integer({ min: 256, max: 263 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('id' as const), id: idArb, labels: labelArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('delId' as const), id: idArb }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('pol' as const), name: fc.constantFrom('p0', 'p1', 'p2'), rules: fc.array(ruleArb, { minLength: 1, maxLength: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('delPol' as const), name: fc.constantFrom('p0', 'p1', 'p2') }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('ep' as const), name: fc.constantFrom('e0', 'e1', 'e2'), labels: labelArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('delEp' as const), name: fc.constantFrom('e0', 'e1', 'e2') }) },
);

/** Drives the engine and a model of its inputs; checks every flush against a full recompute. */
class Harness {
  readonly engine = new PolicyEngine({ memoSize: 50 });
  readonly ids = new Map<number, LabelSet>();
  readonly eps = new Map<string, LabelSet>();
  readonly mirrors = new Map<string, Map<string, DesiredEntry>>();

  apply(op: Op): void {
    switch (op.t) {
      case 'id':
        this.ids.set(op.id, op.labels);
        this.engine.updateIdentities([[op.id, op.labels]]);
        break;
      case 'delId':
        this.ids.delete(op.id);
        this.engine.updateIdentities([], [op.id]);
        break;
      case 'pol':
        this.engine.upsertPolicy(op.name, parsePolicy(JSON.stringify(op.rules), `${op.name}.json`).rules);
        break;
      case 'delPol':
        this.engine.deletePolicy(op.name);
        break;
      case 'ep':
        this.eps.set(op.name, op.labels);
        this.engine.upsertEndpoint(op.name, op.labels);
        break;
      case 'delEp':
        this.eps.delete(op.name);
        this.engine.deleteEndpoint(op.name);
        break;
    }
  }

  flushAndCheck(): void {
    const res = this.engine.flush();
    for (const [ep, delta] of res.endpoints) {
      const keys = new Set(delta.added.map((e) => JSON.stringify(e.key)));
      for (const k of delta.deleted) expect(keys.has(JSON.stringify(k))).toBe(false);
      let m = this.mirrors.get(ep);
      if (m === undefined) this.mirrors.set(ep, (m = new Map<string, DesiredEntry>()));
      applyDelta(m, delta);
    }
    for (const ep of res.removedEndpoints) if (!this.eps.has(ep)) expect(this.mirrors.get(ep)?.size ?? 0).toBe(0);
    const full = computeFull({ identities: this.ids, cidrs: this.engine.ipcache(), endpoints: this.eps, rules: [...this.engine.repository.rules()] });
    const view = (m: ReadonlyMap<string, DesiredEntry>) => new Map([...m].map(([k, e]) => [k, { entry: e.entry, http: e.http ?? null, rules: e.rules }]));
    for (const [ep, want] of full) {
      expect(view(this.engine.mapState(ep))).toEqual(view(want));
      // The kernel mirror sees datapath changes only (provenance-only changes are not sent).
      const kernel = (m: ReadonlyMap<string, DesiredEntry>) => new Map([...m].map(([k, e]) => [k, { entry: e.entry, http: e.http ?? null }]));
      expect(kernel(this.mirrors.get(ep) ?? new Map())).toEqual(kernel(want));
    }
    expect(new Set(this.engine.endpointIds())).toEqual(new Set(this.eps.keys()));
  }

  teardown(): void {
    for (const n of this.engine.repository.names()) this.engine.deletePolicy(n);
    for (const id of [...this.ids.keys()]) this.apply({ t: 'delId', id });
    this.flushAndCheck();
    for (const ep of this.eps.keys()) {
      const m = this.engine.mapState(ep);
      // No policy left: exactly the two default-allow wildcard entries.
      expect([...m.keys()].sort()).toEqual(['0/0/0/0/0', '0/1/0/0/0']);
    }
    expect(this.engine.ipcache()).toEqual([]);
    for (const ep of [...this.eps.keys()]) this.apply({ t: 'delEp', name: ep });
    this.flushAndCheck();
    expect(this.engine.selectorCache.stats().selectors).toBe(0);
  }
}

function run(ops: readonly Op[], flushAfter: (i: number) => boolean): void {
  const h = new Harness();
  ops.forEach((op, i) => {
    h.apply(op);
    if (flushAfter(i)) h.flushAndCheck();
  });
  h.flushAndCheck();
  h.teardown();
}

const seqArb = fc.array(opArb, { minLength: 1, maxLength: 25 });
const NUM_RUNS = Number(process.env['WARD_PROPERTY_RUNS'] ?? 200);

describe('incremental map state equals a full recompute', () => {
  it('flushing after every change', () => {
    fc.assert(fc.property(seqArb, (ops) => run(ops, () => true)), { numRuns: NUM_RUNS });
  });
  it('replayed in reverse order', () => {
    fc.assert(fc.property(seqArb, (ops) => run([...ops].reverse(), () => true)), { numRuns: NUM_RUNS });
  });
  it('split into random batches', () => {
    fc.assert(fc.property(seqArb, fc.array(fc.boolean(), { minLength: 25, maxLength: 25 }), (ops, cuts) => run(ops, (i) => cuts[i] ?? false)), { numRuns: NUM_RUNS });
  });
  it('squashed into one flush', () => {
    fc.assert(fc.property(seqArb, (ops) => run(ops, () => false)), { numRuns: NUM_RUNS });
  });
  it('endpoints first, then identities and rules (asymmetric setup and teardown)', () => {
    fc.assert(
      fc.property(seqArb, (ops) => {
        const sorted = [...ops.filter((o) => o.t === 'ep'), ...ops.filter((o) => o.t !== 'ep')];
        run(sorted, (i) => i % 3 === 0);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
