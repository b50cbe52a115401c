import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planRbac, permissionRange } from '../../agent/kvstore/index.js';
import { KeySchema } from '../../kvstore-schema/index.js';
import { runWard, type CliResult } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'ward-rbac-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ward = (argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> => runWard(argv, env);

describe('RBAC plan', () => {
  it('gives each node its own prefixes plus the shared identity keys, and only the admin the whole root', () => {
    const s = new KeySchema('w/');
    const plan = planRbac(s, { nodes: ['a', 'b'] });
    const a = plan.roles.find((r) => r.name === 'ward-node-a')!;
    const writes = a.permissions.filter((p) => p.perm !== 'Read').map((p) => `${p.key}${p.prefix ? '*' : ''}`);
    expect(writes).toEqual([
      'w/state/nodes/v1/a',
      'w/state/endpoints/v1/a/*',
      'w/state/identities/v1/refs/a/*',
      'w/state/identities/v1/id/*',
      'w/state/identities/v1/labels/*',
      'w/coordination/v1/leader/*',
      'w/state/schema',
    ]);
    expect(writes.some((w) => w.includes('/b') || w.includes('policies'))).toBe(false);
    expect(plan.roles[0]).toEqual({ name: 'ward-admin', permissions: [{ perm: 'Readwrite', key: 'w/', prefix: true }] });
    expect(plan.users.map((u) => [u.name, u.role, u.password])).toEqual([
      ['root', 'root', undefined],
      ['ward-admin', 'ward-admin', undefined],
      ['a', 'ward-node-a', undefined],
      ['b', 'ward-node-b', undefined],
    ]);
    // An exact key has an empty range end; node a's prefix never covers node "ab".
    expect(permissionRange({ perm: 'Read', key: 'w/x', prefix: false }).rangeEnd.length).toBe(0);
    expect(permissionRange({ perm: 'Read', key: s.endpointsNodePrefix('a'), prefix: true }).rangeEnd.toString()).toBe('w/state/endpoints/v1/a0');
  });

  it('rejects empty, duplicate, clashing and malformed node names', () => {
    const s = new KeySchema();
    expect(() => planRbac(s, { nodes: [] })).toThrow(/at least one node/);
    expect(() => planRbac(s, { nodes: ['a', 'a'] })).toThrow(/a is listed twice/);
    expect(() => planRbac(s, { nodes: ['root'] })).toThrow(/clashes/);
    expect(() => planRbac(s, { nodes: ['bad/name'] })).toThrow(/node name/);
  });
});

describe('ward etcd setup-rbac: usage errors before touching etcd', () => {
  it('names the flag or variable at fault', async () => {
    expect(await ward(['etcd', 'setup-rbac'])).toMatchObject({ code: 2, err: expect.stringContaining('--nodes is required') as unknown });
    expect((await ward(['etcd', 'setup-rbac', '--nodes', 'a,a'])).err).toContain('--nodes/--admin-user: nodes: a is listed twice');
    expect((await ward(['etcd', 'setup-rbac', '--nodes', 'a', '--admin-password-file', join(dir, 'nope')])).err).toContain(`--admin-password-file ${join(dir, 'nope')}: cannot read`);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    expect((await ward(['etcd', 'setup-rbac', '--nodes', 'a', '--root-password-file', empty])).err).toContain('--root-password-file');
    expect((await ward(['etcd', 'setup-rbac', '--nodes', 'a', '--root', '/bad'])).err).toContain('--root:');
    expect((await ward(['etcd', 'setup-rbac', '--nodes', 'a'], { WARD_ETCD_USER: 'x' })).err).toContain('WARD_ETCD_USER and WARD_ETCD_PASSWORD_FILE go together');
  });
});
