import { describe, expect, it } from 'vitest';
import { Direction, Protocol } from '../../bpf/policy-map/types.js';
import { OfflineTrace } from '../calc/index.js';
import { parsePolicy } from '../policy/index.js';
import { judgeRequest, l7Decision } from './decision.js';

const POLICY = `
- endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - {method: GET, path: "/public/.*"}
        - {method: POST, path: "/api/v[0-9]+/items", headers: ["X-Team: a"]}
  - fromEndpoints: [{matchLabels: {app: admin}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
`;

describe('l7Decision agrees with ward policy trace', () => {
  const trace = new OfflineTrace(
    [
      { name: 'web', labels: ['app=web'] },
      { name: 'client', labels: ['app=client'] },
      { name: 'admin', labels: ['app=admin'] },
      { name: 'other', labels: ['app=other'] },
    ],
    [parsePolicy(POLICY, 'p.yaml')],
  );
  const entries = trace.engine.endpoint('web')!.entries;
  const id = (n: string) => (trace.resolvePeer(n) as { identity: number }).identity;
  const cases: [string, string, string, { name: string; value: string }[]][] = [
    ['client', 'GET', '/public/x', []],
    ['client', 'GET', '/private', []],
    ['client', 'PUT', '/public/x', []],
    ['client', 'POST', '/api/v2/items', [{ name: 'X-Team', value: 'a' }]],
    ['client', 'POST', '/api/v2/items', [{ name: 'X-Team', value: 'b' }]],
    ['client', 'POST', '/api/v2/items/1', [{ name: 'X-Team', value: 'a' }]],
    ['admin', 'DELETE', '/anything', []],
    ['other', 'GET', '/public/x', []],
  ];
  it.each(cases)('%s %s %s', (from, method, path, headers) => {
    const http = { method, path, headers: headers.map((h) => [h.name, h.value] as const) };
    const t = trace.trace({ from, to: 'web', dport: 80, protocol: 'TCP', http });
    const d = l7Decision(entries, Direction.ingress, id(from), Protocol.tcp, 80);
    expect(judgeRequest(d, http).allowed).toBe(t.ingress.verdict === 'allowed');
  });

  it('gives L4-only peers every request and the L7 peer only its rules', () => {
    expect(l7Decision(entries, Direction.ingress, id('admin'), Protocol.tcp, 80).kind).toBe('allow-all');
    expect(l7Decision(entries, Direction.ingress, id('client'), Protocol.tcp, 80)).toMatchObject({ kind: 'rules' });
    expect(l7Decision(entries, Direction.ingress, id('other'), Protocol.tcp, 80).kind).toBe('deny');
    expect(l7Decision(entries, Direction.ingress, id('client'), Protocol.tcp, 81).kind).toBe('deny');
  });
});
