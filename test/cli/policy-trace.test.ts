import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runWard, type CliResult } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'ward-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const endpoints = file(
  'endpoints.json',
  JSON.stringify([
    { name: 'web', labels: ['k8s:app=web', 'env=prod'], ip: '10.0.1.10' },
    { name: 'api', labels: ['k8s:app=api', 'env=prod'], ip: '10.0.1.11' },
    { name: 'db', labels: ['k8s:app=db'], ip: '10.0.1.12' },
  ]),
);

const policy = file(
  'policy.yaml',
  `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: api-ingress
spec:
  description: web may GET /public on api
  endpointSelector:
    matchLabels: {app: api}
  ingress:
  - fromEndpoints:
    - matchLabels: {app: web}
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - {method: GET, path: "/public.*"}
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: web-egress
specs:
- endpointSelector: {matchLabels: {app: web}}
  egress:
  - toEndpoints: [{matchLabels: {app: api}}]
  - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.96.0.0/12]}]
`,
);

const dbPolicy = file('db.json', JSON.stringify([{ endpointSelector: { matchLabels: { app: 'db' } }, ingressDeny: [{ fromEntities: ['world'] }], ingress: [{ fromEntities: ['all'] }] }]));

const ward = (argv: string[]): Promise<CliResult> => runWard(argv, {});

const base = ['policy', 'trace', '--endpoints', endpoints, '--policy', policy];

describe('ward policy trace (offline)', () => {
  it('explains an allowed HTTP request', async () => {
    const r = await ward([...base, '--from', 'web', '--to', 'api', '--dport', '80', '--proto', 'TCP', '--http-method', 'GET', '--http-path', '/public/index.html']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('Egress policy of web');
    expect(r.out).toContain('Ingress policy of api');
    expect(r.out).toContain('api-ingress');
    expect(r.out).toContain('method=GET path=/public.*');
    expect(r.out.trimEnd().split('\n').at(-1)).toBe('Final verdict: ALLOWED');
  });
  it('denies a request no HTTP rule matches, exit status still 0', async () => {
    const r = await ward([...base, '--from', 'web', '--to', 'api', '--dport', '80', '--proto', 'TCP', '--http-method', 'POST', '--http-path', '/public']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('Final verdict: DENIED');
  });
  it('JSON output: verdict and per-direction details', async () => {
    const r = await ward([...base, '--from', 'web', '--to', 'db', '--dport', '5432', '--proto', 'TCP', '-o', 'json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.verdict).toBe('denied');
    expect(j.egress.verdict).toBe('denied');
    expect(j.ingress.verdict).toBe('allowed');
    expect(j.ingress.enforced).toBe(false);
  });
  it('IP specs: endpoint IPs are endpoints, CIDR excepts get their own identity, misses are world', async () => {
    type J = { verdict: string; to: Record<string, unknown> };
    const one = async (to: string): Promise<J> => <J>JSON.parse((await ward([...base, '--from', 'web', '--to', to, '--dport', '443', '--proto', 'TCP', '-o', 'json'])).out);
    expect((await one('10.1.2.3')).verdict).toBe('allowed');
    expect((await one('10.96.0.1')).verdict).toBe('denied');
    expect((await one('10.96.0.1')).to.prefix).toBe('10.96.0.0/12');
    expect((await one('8.8.8.8')).to.identity).toBe(2);
    expect((await one('10.0.1.11')).to).toMatchObject({ kind: 'endpoint', name: 'api' });
    expect((await one('10.0.1.12')).verdict).toBe('denied');
  });
  it('several policy files, entities and UDP', async () => {
    const args = ['policy', 'trace', '--endpoints', endpoints, '--policy', policy, '--policy', dbPolicy];
    const fromWorld = JSON.parse((await ward([...args, '--from', 'world', '--to', 'db', '--dport', '53', '--proto', 'UDP', '-o', 'json'])).out);
    expect(fromWorld.verdict).toBe('denied');
    expect(fromWorld.egress.endpoint).toBeNull();
    const fromHost = JSON.parse((await ward([...args, '--from', 'host', '--to', 'db', '--dport', '53', '--proto', 'UDP', '-o', 'json'])).out);
    expect(fromHost.verdict).toBe('allowed');
    const fromApi = JSON.parse((await ward([...args, '--from', 'api', '--to', 'db', '--dport', '5432', '--proto', 'ANY', '-o', 'json'])).out);
    expect(fromApi.verdict).toBe('allowed');
  });
  it('rejects a bad policy whole, naming file, document, rule, field and line', async () => {
    const bad = file(
      'bad.yaml',
      `endpointSelector: {matchLabels: {app: api}}
ingress:
- fromEndpoints: [{matchLabels: {app: web}}]
  toPorts:
  - ports: [{port: http, protocol: TCP}]
- fromCIDR: [10.0.0.0/33]
  fromEntitiez: [world]
`,
    );
    const r = await ward(['policy', 'trace', '--endpoints', endpoints, '--policy', bad, '--from', 'web', '--to', 'api', '--dport', '80']);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain(`${bad}: document 0, rule 0: ingress[0].toPorts[0].ports[0].port (line 5): named ports are not supported`);
    expect(r.err).toContain('ingress[1].fromCIDR[0] (line 6)');
    expect(r.err).toContain('ingress[1].fromEntitiez (line 7): unknown field');
  });
  it('bad flags and inputs give a clear message and a non-zero status', async () => {
    expect((await ward([...base, '--from', 'web', '--to', 'api'])).err).toContain('--dport is required');
    expect((await ward([...base, '--from', 'web', '--to', 'api', '--dport', '80', '--proto', 'ICMP'])).code).toBe(2);
    const unknown = await ward([...base, '--from', 'nosuch', '--to', 'api', '--dport', '80']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('unknown peer "nosuch"');
    const missing = await ward(['policy', 'trace', '--endpoints', join(dir, 'nope.json'), '--policy', policy, '--from', 'web', '--to', 'api', '--dport', '80']);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('cannot read endpoints file');
    const badEps = file('bad-eps.json', JSON.stringify([{ name: 'x', labels: 'app=x' }]));
    const be = await ward(['policy', 'trace', '--endpoints', badEps, '--policy', policy, '--from', 'x', '--to', 'api', '--dport', '80']);
    expect(be.err).toContain('[0].labels: must be a list of strings');
  });
  it('runs as a real process', () => {
    const script = file('run.mjs', `import { main } from ${JSON.stringify(join(process.cwd(), 'agent/cli/main.ts'))};\nawait main();\n`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...base, '--from', 'web', '--to', 'api', '--dport', '80', '--proto', 'TCP', '-o', 'json'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).verdict).toBe('allowed');
  });
});
