import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parsePolicy, PolicyValidationError } from '../../../agent/policy/index.js';
import { fuzzRuns, fuzzTimeout, thrown } from './runs.js';

/** parsePolicy either returns rules or throws PolicyValidationError with at least one issue. */
function checkParse(text: string): void {
  const err = thrown(() => {
    const p = parsePolicy(text, 'fuzz.yaml');
    expect(p.rules.length).toBeGreaterThan(0);
  });
  if (err === undefined) return;
  if (!(err instanceof PolicyValidationError)) throw err;
  expect(err.issues.length).toBeGreaterThan(0);
  expect(err.message).toContain('fuzz.yaml');
}

// Words of the rule schema, so random structures reach the deep validators.
const FIELDS = [
  'apiVersion', 'kind', 'metadata', 'name', 'spec', 'specs', 'endpointSelector', 'matchLabels', 'matchExpressions',
  'key', 'operator', 'values', 'ingress', 'egress', 'ingressDeny', 'egressDeny', 'fromEndpoints', 'toEndpoints',
  'fromEntities', 'toEntities', 'fromCIDR', 'toCIDR', 'fromCIDRSet', 'toCIDRSet', 'cidr', 'except', 'toPorts', 'ports',
  'port', 'endPort', 'protocol', 'rules', 'http', 'HTTP', 'method', 'path', 'headers', 'labels', 'description',
  'enableDefaultDeny', 'source', 'value', '__proto__', 'constructor', 'toString',
];
const WORDS = [
  'CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'cilium.io/v2', 'In', 'NotIn', 'Exists', 'DoesNotExist',
  'TCP', 'UDP', 'SCTP', 'ANY', 'tcp', 'world', 'host', 'all', 'cluster', '10.0.0.0/8', '10.1.2.3/33', '::/0', '80',
  '0', '65535', '65536', '-1', 'GET', '/api/.*', '(', 'k8s:app', 'app=web', 'reserved:host', '', ' ', 'x',
];
const scalar = fc.oneof(
  fc.constantFrom(...WORDS),
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -70000, max: 70000 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
);
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('arr'), tie('obj')),
  arr: fc.array(tie('tree'), { maxLength: 4 }),
  obj: fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 8 })), tie('tree'), { maxKeys: 6 }),
}));

const VALID = [
  { endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] },
  {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name: 'p' },
    spec: {
      endpointSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['a', 'b'] }] },
      egress: [{ toCIDRSet: [{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }], toPorts: [{ ports: [{ port: '443' }], rules: { http: [{ method: 'GET', path: '/x' }] } }] }],
      egressDeny: [{ toEntities: ['world'] }],
    },
  },
];

type Json = unknown;
/** Replaces one randomly chosen node of a valid document (path picked by the index stream). */
function mutate(doc: Json, picks: number[], replacement: Json): Json {
  if (picks.length === 0 || doc === null || typeof doc !== 'object') return replacement;
  const [pick, ...rest] = picks as [number, ...number[]];
  if (Array.isArray(doc)) {
    const arr = doc as Json[];
    if (arr.length === 0) return replacement;
    const i = pick % arr.length;
    return arr.map((x, j) => (j === i ? mutate(x, rest, replacement) : x));
  }
  const keys = Object.keys(doc);
  if (keys.length === 0) return replacement;
  const k = keys[pick % keys.length]!;
  return { ...(doc as Record<string, Json>), [k]: mutate((doc as Record<string, Json>)[k], rest, replacement) };
}

describe('policy parser fuzzing', () => {
  const runs = fuzzRuns(1000);

  it('random text: a result or a PolicyValidationError, never a crash', () => {
    const text = fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 }), fc.stringMatching(/^[-:{}[\]\n "'&*!|>#%@`,?a-z0-9]{0,120}$/));
    fc.assert(fc.property(text, checkParse), { numRuns: runs });
  }, fuzzTimeout(runs));

  it('random structures biased towards the rule schema, as JSON and YAML', () => {
    fc.assert(
      fc.property(tree, fc.boolean(), (doc, asJson) => {
        checkParse(asJson ? JSON.stringify(doc) ?? 'null' : stringify(doc));
      }),
      { numRuns: runs },
    );
  }, fuzzTimeout(runs));

  it('mutated valid policies', () => {
    for (const v of VALID) checkParse(JSON.stringify(v));
    fc.assert(
      fc.property(fc.constantFrom(...VALID), fc.array(fc.nat(), { maxLength: 8 }), tree, (doc, picks, repl) => {
        checkParse(JSON.stringify(mutate(doc, picks, repl)));
        checkParse(stringify([mutate(doc, picks, repl), doc]));
      }),
      { numRuns: runs },
    );
  }, fuzzTimeout(runs));

  it('mutated valid YAML text (byte flips, truncation, insertion)', () => {
    const base = VALID.map((v) => stringify(v));
    fc.assert(
      fc.property(fc.constantFrom(...base), fc.nat(), fc.string({ maxLength: 6 }), fc.nat(), (text, at, ins, cut) => {
        const i = at % (text.length + 1);
        checkParse(text.slice(0, i) + ins + text.slice(i));
        checkParse(text.slice(0, cut % (text.length + 1)));
      }),
      { numRuns: runs },
    );
  }, fuzzTimeout(runs));

  it('hostile YAML: alias bombs, deep nesting, huge numbers stay typed errors', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`)].join('\n');
    checkParse(bomb);
    checkParse('['.repeat(5000) + ']'.repeat(5000));
    checkParse('endpointSelector: {}\ningress: [{toPorts: [{ports: [{port: 1e400}]}]}]\n');
    checkParse('!!binary AAAA\n');
    checkParse('endpointSelector: !!js/function "x"\n');
  }, fuzzTimeout(runs));
});
