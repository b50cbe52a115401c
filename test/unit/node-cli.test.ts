import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runWard } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'ward-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ward = runWard;

describe('ward agent/endpoint/policy/status: errors a user sees without an agent', () => {
  it('rejects bad agent settings naming their source, before touching anything', async () => {
    const bad = await ward(['agent', '--node-name', 'Bad_Name', '--node-ip', '10.0.0.1', '--endpoint-cidr', '10.1.0.0/24']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('flag --node-name');
    const missing = await ward(['agent', '--config', join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('cannot read');
    const file = join(dir, 'agent.yaml');
    writeFileSync(file, 'node-name: n1\nnode-ip: 10.0.0.1\nendpoint-cidr: 10.1.0.0/24\nbogus: 1\n');
    const unknown = await ward(['agent', '--config', file]);
    expect(unknown.err).toMatch(/agent\.yaml:4: unknown setting "bogus"/);
    expect((await ward(['agent', '--host-netns', 'relative'])).code).toBe(2);
    expect((await ward(['agent', '--help'])).out).toContain('WARD_ENDPOINT_CIDR');
  });

  it('endpoint and status commands check flags and report an unreachable agent', async () => {
    const noName = await ward(['endpoint', 'add', '--labels', 'a=b', '--netns', 'x']);
    expect(noName.code).toBe(2);
    expect(noName.err).toContain('--name is required');
    const env = { WARD_API_SOCKET: join(dir, 'none.sock') };
    const down = await ward(['endpoint', 'list'], env);
    expect(down.code).toBe(1);
    expect(down.err).toContain('cannot reach the agent');
    expect((await ward(['status'], env)).code).toBe(1);
    expect((await ward(['endpoint', 'get'], env)).code).toBe(2);
  });

  it('policy import rejects an invalid file whole before contacting etcd', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'endpointSelector:\n  matchLabels: { app: db }\ningress:\n  - toPorts: [{ ports: [{ port: "99999" }] }]\n');
    const r = await ward(['policy', 'import', '--name', 'x', file], { WARD_ETCD_ENDPOINTS: '127.0.0.1:1' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/invalid policy bad\.yaml.*nothing applied[^]*\(line 4\): port 99999 is out of range/);
    const anon = join(dir, 'anon.yaml');
    writeFileSync(anon, 'endpointSelector: {}\n');
    expect((await ward(['policy', 'import', anon])).err).toContain('--name');
  });
});
