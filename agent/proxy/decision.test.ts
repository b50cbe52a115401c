import { describe, expect, it } from 'vitest';
import { Direction, Protocol } from '../../bpf/policy-map/types.js';
import { OfflineTrace } from '../calc/index.js';
import { parsePolicy } from '../policy/index.js';
import { bothDecisions, judgeRequest, l7Decision } from './decision.js';

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

// An egress proxy towards a local endpoint with ingress rules judges both sides: it must agree
// with the trace, which needs the source's egress AND the destination's ingress.
describe('bothDecisions agrees with the trace of egress and ingress together', () => {
  const EGRESS = `
- endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEndpoints: [{matchLabels: {app: web}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - {method: GET}
        - {method: POST, path: "/api/v2/items"}
`;
  const trace = new OfflineTrace(
    [
      { name: 'web', labels: ['app=web'] },
      { name: 'client', labels: ['app=client'] },
    ],
    [parsePolicy(POLICY, 'p.yaml'), parsePolicy(EGRESS, 'e.yaml')],
  );
  const id = (n: string) => (trace.resolvePeer(n) as { identity: number }).identity;
  const egress = l7Decision(trace.engine.endpoint('client')!.entries, Direction.egress, id('web'), Protocol.tcp, 80);
  const ingress = l7Decision(trace.engine.endpoint('web')!.entries, Direction.ingress, id('client'), Protocol.tcp, 80);
  const both = bothDecisions(egress, ingress, 'ingress of web');

  it.each([
    ['GET', '/public/x', 'X-Team', 'a'],
    ['GET', '/private', 'X-Team', 'a'],
    ['POST', '/api/v2/items', 'X-Team', 'a'],
    ['POST', '/api/v2/items', 'X-Team', 'b'],
    ['POST', '/api/v3/items', 'X-Team', 'a'],
    ['DELETE', '/public/x', 'X-Team', 'a'],
  ])('%s %s (%s: %s)', (method, path, name, value) => {
    const http = { method, path, headers: [[name, value] as const] };
    const t = trace.trace({ from: 'client', to: 'web', dport: 80, protocol: 'TCP', http });
    expect(judgeRequest(both, http).allowed).toBe(t.verdict === 'allowed');
  });

  it('names the destination when its ingress denies, and is the same object for the same pair', () => {
    expect(judgeRequest(both, { method: 'GET', path: '/private', headers: [] }).reason).toBe('ingress of web: no HTTP rule matches');
    expect(judgeRequest(both, { method: 'DELETE', path: '/public/x', headers: [] }).reason).toBe('no HTTP rule matches');
    expect(bothDecisions(egress, ingress, 'ingress of web')).toBe(both);
  });
});
