import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EndpointJson } from '../../agent/api/index.js';
import { EtcdCluster } from '../../agent/dev/etcd-cluster.js';
import { eventually } from './helpers/eventually.js';
import { TestHost } from './helpers/host.js';
import { DB_POLICY } from './helpers/policies.js';
import { Podman } from './helpers/podman.js';

// A real container runtime: podman 4.3 (Debian) with its CNI backend runs ward-cni for each
// container; labels come through CNI_ARGS; traffic between containers is allowed, then
// denied by an imported policy; removing the containers removes their endpoints.
describe('ward-cni under podman', () => {
  let etcd: EtcdCluster | undefined;
  let host: TestHost | undefined;
  let podman: Podman | undefined;

  beforeAll(async () => {
    etcd = await EtcdCluster.start({ members: 1 });
    host = new TestHost(etcd);
    host.setup();
    await host.startAgent();
    podman = new Podman(host.tag, `ward-${host.tag}`);
    podman.setup(host.socket, { env: 'podman' });
  });

  afterAll(async () => {
    podman?.destroy(); // DEL through the agent while it still runs
    await host?.agent?.stop(5000);
    host?.destroy();
    await etcd?.close();
  });

  it('two labelled containers: TCP allowed, denied by policy, endpoints gone on rm', async () => {
    const h = host!;
    const p = podman!;
    const start = (name: string, app: string, cmd: readonly string[]): void => p.start(`${name}-${h.tag}`, `WARD_LABELS=app:${app}`, cmd);
    start('db', 'db', ['nc', '-ll', '-p', '5432', '-e', '/bin/echo', 'ok']);
    start('other', 'other', ['sleep', '3600']);
    start('web', 'web', ['sleep', '3600']);
    const dbIp = p.ip(`db-${h.tag}`);
    expect(dbIp).toMatch(/^10\.201\.0\.\d+$/);

    const eps = JSON.parse(await h.wardOk(['endpoint', 'list', '-o', 'json'])) as EndpointJson[];
    expect(eps.length).toBe(3);
    const db = eps.find((e) => e.ip === dbIp)!;
    expect(db.labels.join(',')).toMatch(/app=db/);
    expect(db.labels.join(',')).toMatch(/env=podman/);
    expect(db).toMatchObject({ programmed: true });
    expect(db.netns).toMatch(/^\/run\/netns\/netns-/);

    // A TCP connect from inside a container: the server answers "ok"; a dropped SYN times out.
    const connects = (from: string): boolean => p.run(['exec', `${from}-${h.tag}`, 'nc', '-w', '2', dbIp, '5432']).out.includes('ok');
    expect(await eventually(() => connects('other'), 10_000)).toBe(true);
    expect(connects('web')).toBe(true);

    const policyFile = join(h.dir, 'db-policy.yaml');
    writeFileSync(policyFile, DB_POLICY);
    await h.wardOk(['policy', 'import', policyFile]);
    expect(await eventually(() => !connects('other'), 10_000)).toBe(true);
    expect(connects('web')).toBe(true);

    // A plugin error fails `podman run` with the plugin's message; no endpoint is left.
    const bad = p.run(['run', '-d', '--name', `bad-${h.tag}`, '--cgroup-parent', p.cgroupParent, '--network', p.network, p.image, 'sleep', '3600'], { CNI_ARGS: 'WARD_LABELS=nocolon' });
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('WARD_LABELS');
    expect((JSON.parse(await h.wardOk(['endpoint', 'list', '-o', 'json'])) as EndpointJson[]).length).toBe(3);

    // podman rm runs the plugin's DEL: the agent drops the endpoints.
    p.runOk(['rm', '-f', '-t', '0', `db-${h.tag}`, `other-${h.tag}`, `web-${h.tag}`, `bad-${h.tag}`]);
    expect(JSON.parse(await h.wardOk(['endpoint', 'list', '-o', 'json']))).toEqual([]);
  });
});
