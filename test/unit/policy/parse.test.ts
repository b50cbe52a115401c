import { describe, expect, it } from 'vitest';
import { parsePolicy, PolicyValidationError, type PolicyIssue } from '../../../agent/policy/index.js';

function issues(text: string, file = 'f.yaml'): PolicyIssue[] {
  try {
    parsePolicy(text, file);
  } catch (e) {
    if (e instanceof PolicyValidationError) return [...e.issues];
    throw e;
  }
  throw new Error('expected a validation error');
}

describe('policy file forms', () => {
  it('one rule, a list of rules, CNP spec/specs, multi-document YAML and JSON', () => {
    expect(parsePolicy('endpointSelector: {}\ningress: [{}]\n', 'a.yaml').rules).toHaveLength(1);
    expect(parsePolicy('- endpointSelector: {}\n- endpointSelector: {matchLabels: {a: b}}\n', 'a.yaml').rules).toHaveLength(2);
    const cnp = parsePolicy(
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: one, namespace: default, labels: {x: y}}
spec: {endpointSelector: {}}
---
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: two}
specs:
- endpointSelector: {}
- endpointSelector: {}
`,
      'c.yaml',
    );
    expect(cnp.rules.map((r) => [r.origin.document, r.origin.rule, r.origin.name, r.origin.path])).toEqual([
      [0, 0, 'one', 'spec'],
      [2, 0, 'two', 'specs[0]'],
      [2, 1, 'two', 'specs[1]'],
    ]);
    expect(cnp.names).toEqual(['one', 'two']);
    const json = parsePolicy(JSON.stringify([{ endpointSelector: { matchLabels: { 'k8s:app': 'x' } }, egress: [{ toPorts: [{ ports: [{ port: 53, protocol: 'udp' }] }] }] }]), 'j.json');
    expect(json.rules[0]!.egress[0]!.toPorts[0]!.ports[0]).toEqual({ port: 53, endPort: 53, protocol: 'UDP' });
  });
  it('accepts the HTTP alias of rules.http and rule labels as objects or strings', () => {
    const p = parsePolicy(
      JSON.stringify({ endpointSelector: {}, labels: [{ key: 'name', value: 'x', source: 'unspec' }, 'k8s:team=a'], ingress: [{ toPorts: [{ ports: [{ port: '80' }], rules: { HTTP: [{ method: 'GET' }] } }] }] }),
      'l.json',
    );
    expect(p.rules[0]!.ingress[0]!.toPorts[0]!.http).toEqual([{ method: 'GET', headers: [] }]);
    expect(p.rules[0]!.labels).toEqual(['unspec:name=x', 'k8s:team=a']);
  });
  it('default deny follows the presence of rules per direction', () => {
    const [a, b, c] = parsePolicy('- {endpointSelector: {}, ingress: [{}]}\n- {endpointSelector: {}, egressDeny: [{}]}\n- {endpointSelector: {}, ingress: []}\n', 'd.yaml').rules;
    expect(a!.defaultDeny).toEqual({ ingress: true, egress: false });
    expect(b!.defaultDeny).toEqual({ ingress: false, egress: true });
    expect(c!.defaultDeny).toEqual({ ingress: false, egress: false });
  });
});

describe('validation', () => {
  it('names file, document, rule, field path and line', () => {
    const text = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: x}
specs:
- endpointSelector: {}
- endpointSelector: {}
  egress:
  - toCIDRSet:
    - cidr: 10.0.0.0/8
      except: [11.0.0.0/16]
`;
    const [i] = issues(text, 'p.yaml');
    expect(i).toMatchObject({ file: 'p.yaml', document: 0, rule: 1, path: 'specs[1].egress[0].toCIDRSet[0].except[0]', line: 10 });
    expect(i!.message).toContain('not inside cidr');
  });
  it('rejects unknown and unsupported fields', () => {
    const list = issues('endpointSelector: {}\ningres: []\negress: [{toFQDNs: [{matchName: a.com}]}]\n');
    expect(list.map((i) => [i.path, i.line])).toEqual([
      ['ingres', 2],
      ['egress[0].toFQDNs', 3],
    ]);
    expect(list[0]!.message).toContain('unknown field "ingres"');
    expect(list[1]!.message).toContain('not supported');
  });
  it.each([
    ['ingress: [{fromCIDR: ["10.0.0.0/40"]}]', 'ingress[0].fromCIDR[0]', 'prefix length'],
    ['ingress: [{fromCIDR: ["fd00::/8"]}]', 'ingress[0].fromCIDR[0]', 'IPv6'],
    ['ingress: [{fromCIDR: ["10.0.300.0/24"]}]', 'ingress[0].fromCIDR[0]', 'not an IPv4'],
    ['ingress: [{toPorts: [{ports: [{port: "70000"}]}]}]', 'ingress[0].toPorts[0].ports[0].port', 'out of range'],
    ['ingress: [{toPorts: [{ports: [{port: "http"}]}]}]', 'ingress[0].toPorts[0].ports[0].port', 'named ports'],
    ['ingress: [{toPorts: [{ports: [{port: "80", protocol: ICMP}]}]}]', 'ingress[0].toPorts[0].ports[0].protocol', 'unknown protocol'],
    ['ingress: [{toPorts: [{ports: [{port: "80", endPort: 79}]}]}]', 'ingress[0].toPorts[0].ports[0].endPort', 'below port'],
    ['ingress: [{toPorts: [{ports: [{port: "0", endPort: 79}]}]}]', 'ingress[0].toPorts[0].ports[0].endPort', 'non-zero port'],
    ['ingress: [{toPorts: [{ports: []}]}]', 'ingress[0].toPorts[0].ports', 'at least one port'],
    ['ingress: [{toPorts: [{ports: [{port: "80"}], rules: {http: [{path: "(["}]}}]}]', 'ingress[0].toPorts[0].rules.http[0].path', 'invalid regular expression'],
    ['ingress: [{toPorts: [{ports: [{port: "80", endPort: 90}], rules: {http: [{}]}}]}]', 'ingress[0].toPorts[0].ports[0].port', 'port range'],
    ['ingress: [{toPorts: [{ports: [{port: "53", protocol: UDP}], rules: {http: [{}]}}]}]', 'ingress[0].toPorts[0].ports[0].port', 'needs protocol TCP'],
    ['ingress: [{toPorts: [{ports: [{port: "80"}], rules: {dns: [{}]}}]}]', 'ingress[0].toPorts[0].rules.dns', 'not supported'],
    ['ingressDeny: [{toPorts: [{ports: [{port: "80"}], rules: {http: [{}]}}]}]', 'ingressDeny[0].toPorts[0].rules', 'unknown field'],
    ['ingress: [{fromEntities: [kube-apiserver]}]', 'ingress[0].fromEntities[0]', 'unknown entity'],
    ['ingress: [{fromEndpoints: [{matchExpressions: [{key: a, operator: Equals, values: [b]}]}]}]', 'ingress[0].fromEndpoints[0].matchExpressions[0].operator', 'unknown operator'],
    ['ingress: [{fromEndpoints: [{matchExpressions: [{key: a, operator: In}]}]}]', 'ingress[0].fromEndpoints[0].matchExpressions[0].values', 'at least one value'],
    ['ingress: [{fromEndpoints: [{matchExpressions: [{key: a, operator: Exists, values: [x]}]}]}]', 'ingress[0].fromEndpoints[0].matchExpressions[0].values', 'takes no values'],
    ['egress: [{fromEndpoints: [{}]}]', 'egress[0].fromEndpoints', 'unknown field'],
    ['ingress: {fromEndpoints: []}', 'ingress', 'must be a list'],
  ])('%s', (body, path, message) => {
    const list = issues(`endpointSelector: {}\n${body}\n`);
    expect(list.map((i) => i.path)).toContain(path);
    expect(list.find((i) => i.path === path)!.message).toContain(message);
    expect(list.find((i) => i.path === path)!.line).toBe(2);
  });
  it('requires endpointSelector, rejects other kinds, empty files and syntax errors', () => {
    expect(issues('ingress: [{}]\n')[0]).toMatchObject({ path: 'endpointSelector', message: expect.stringContaining('required') });
    expect(issues('- ingress: [{}]\n')[0]).toMatchObject({ path: '[0].endpointSelector', message: expect.stringContaining('required') });
    expect(issues('apiVersion: v1\nkind: NetworkPolicy\nspec: {}\n').map((i) => i.path)).toEqual(expect.arrayContaining(['kind', 'apiVersion']));
    expect(issues('')[0]!.message).toContain('no policy rules');
    expect(issues('endpointSelector: {\n')[0]!.message).toContain('syntax error');
    expect(issues('a: 1\na: 2\n')[0]!.message).toContain('syntax error');
  });
  it('rejects the whole file when one rule of many is bad', () => {
    const err = (() => {
      try {
        parsePolicy('- endpointSelector: {}\n- endpointSelector: {}\n  egress: [{toPorts: [{ports: [{port: x}]}]}]\n', 'w.yaml');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(PolicyValidationError);
    expect((err as Error).message).toContain('w.yaml: document 0, rule 1: [1].egress[0].toPorts[0].ports[0].port (line 3)');
    expect((err as Error).message).toContain('nothing applied');
  });
});
