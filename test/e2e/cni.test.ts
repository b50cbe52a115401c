import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EndpointJson } from '../../agent/api/index.js';
import { Probe } from '../datapath/helpers/probe.js';
import { sh } from '../datapath/helpers/sh.js';
import { eventually } from './helpers/eventually.js';
import { DB_POLICY } from './helpers/policies.js';
import { useSingleHost } from './helpers/single-host.js';

const PLUGIN = join(import.meta.dirname, '..', '..', 'bin', 'ward-cni.js');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
}

/** Invokes the plugin exactly as a runtime does: CNI_* environment, config on stdin. */
function cni(env: Record<string, string>, stdin: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PLUGIN], { env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_PATH: '/opt/cni/bin', ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8') }));
    child.stdin.end(stdin);
  });
}

const json = (r: Run): Record<string, unknown> => JSON.parse(r.stdout) as Record<string, unknown>;

// A real agent process in a host netns, a real etcd, the plugin spawned per call as podman
// would; real TCP between the CNI-added endpoints, then a policy that denies one of them.
describe('ward-cni: the CNI plugin against a real agent', () => {
  const fx = useSingleHost();

  it('ADD (idempotent), CHECK, enforced TCP, DEL (idempotent), VERSION and errors', async () => {
    const h = fx.host;
    const conf = (extra: Record<string, unknown> = {}): string =>
      JSON.stringify({ cniVersion: '1.0.0', name: 'wardnet', type: 'ward-cni', apiSocket: h.socket, labels: { env: 'test' }, ...extra });
    const nsDb = `/run/netns/${h.addNetns('d')}`;
    const nsWeb = `/run/netns/${h.addNetns('w')}`;
    const nsOther = `/run/netns/${h.addNetns('o')}`;
    const envFor = (command: string, id: string, netns: string, args: string, ifname = 'eth0'): Record<string, string> => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: netns,
      CNI_IFNAME: ifname,
      CNI_ARGS: args,
    });
    const dbEnv = envFor('ADD', `${h.tag}db0123456789`, nsDb, 'IgnoreUnknown=1;K8S_POD_NAME=db;WARD_LABELS=app:db+tier:data', 'net1');
    const webEnv = envFor('ADD', `${h.tag}web0123456789`, nsWeb, 'IgnoreUnknown=1;ward.label.app=web');
    const otherEnv = envFor('ADD', `${h.tag}oth0123456789`, nsOther, 'WARD_LABELS=app:other');

    // --- ADD, and ADD again: the same result, one endpoint
    const db1 = await cni(dbEnv, conf());
    expect(db1.code, db1.stdout).toBe(0);
    const dbResult = json(db1) as { interfaces: { name: string; sandbox: string; mac: string }[]; ips: { address: string; gateway: string; interface: number }[]; routes: unknown[] };
    expect(dbResult.interfaces).toEqual([{ name: 'net1', sandbox: nsDb, mac: expect.stringMatching(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/) as unknown }]);
    expect(dbResult.ips).toEqual([{ address: expect.stringMatching(/^10\.201\.0\.\d+\/32$/) as unknown, gateway: '10.201.0.1', interface: 0 }]);
    expect(dbResult.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.201.0.1' }]);
    const db2 = await cni(dbEnv, conf());
    expect(db2).toEqual(db1);
    const dbIp = dbResult.ips[0]!.address.split('/')[0]!;
    // The container side carries CNI_IFNAME and the endpoint IP.
    expect(sh('nsenter', [`--net=${nsDb}`, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'net1'])).toContain(`${dbIp}/32`);

    const web = await cni(webEnv, conf());
    const other = await cni(otherEnv, conf());
    expect([web.code, other.code]).toEqual([0, 0]);
    const ipOf = (r: Run): string => (json(r) as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!;
    const eps = JSON.parse(await h.wardOk(['endpoint', 'list', '-o', 'json'])) as EndpointJson[];
    expect(eps.length).toBe(3);
    const dbEp = eps.find((e) => e.ip === dbIp)!;
    expect(dbEp).toMatchObject({ netns: nsDb, programmed: true });
    expect(dbEp.name).toMatch(/^cni-[a-z0-9]{1,12}-[0-9a-f]{10}$/);
    expect(dbEp.labels.join(',')).toMatch(/app=db/);
    expect(dbEp.labels.join(',')).toMatch(/env=test/);
    expect(dbEp.labels.join(',')).toMatch(/tier=data/);
    expect(eps.find((e) => e.ip === ipOf(web))!.labels.join(',')).toMatch(/app=web/);

    // --- CHECK: passes with the prevResult; fails for another netns or an unknown container
    const check = await cni({ ...dbEnv, CNI_COMMAND: 'CHECK' }, conf({ prevResult: dbResult }));
    expect(check).toEqual({ code: 0, stdout: '' });
    const wrongNs = await cni({ ...dbEnv, CNI_COMMAND: 'CHECK', CNI_NETNS: nsWeb }, conf({ prevResult: dbResult }));
    expect(wrongNs.code).toBe(1);
    expect(json(wrongNs)).toMatchObject({ code: 101 });
    expect(json(await cni({ ...dbEnv, CNI_COMMAND: 'CHECK', CNI_CONTAINERID: 'unknown' }, conf()))).toMatchObject({ code: 101 });

    // --- real TCP between CNI-added endpoints: allowed, then db accepts only web on 5432
    const [pDb, pWeb, pOther] = await Promise.all([Probe.start(nsDb.slice('/run/netns/'.length)), Probe.start(nsWeb.slice('/run/netns/'.length)), Probe.start(nsOther.slice('/run/netns/'.length))]);
    fx.probes.push(pDb, pWeb, pOther);
    await pDb.listenTcp(5432);
    expect(await eventually(() => pOther.tcp(dbIp, 5432), 5000)).toBe(true);
    expect(await pWeb.tcp(dbIp, 5432)).toBe(true);
    const policyFile = join(h.dir, 'db-policy.yaml');
    writeFileSync(policyFile, DB_POLICY);
    await h.wardOk(['policy', 'import', policyFile]);
    expect(await eventually(async () => !(await pOther.tcp(dbIp, 5432, 700)), 10_000)).toBe(true);
    expect(await pWeb.tcp(dbIp, 5432)).toBe(true);

    // --- DEL, and DEL again: both succeed; the endpoint and its veth are gone
    const hostIfname = dbEp.ifname;
    expect(await cni({ ...dbEnv, CNI_COMMAND: 'DEL' }, conf())).toEqual({ code: 0, stdout: '' });
    expect(await cni({ ...dbEnv, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, conf())).toEqual({ code: 0, stdout: '' });
    const left = JSON.parse(await h.wardOk(['endpoint', 'list', '-o', 'json'])) as EndpointJson[];
    expect(left.map((e) => e.ip).sort()).toEqual([ipOf(web), ipOf(other)].sort());
    expect(() => sh('ip', ['-n', h.hostNs, 'link', 'show', hostIfname])).toThrow();

    // --- VERSION
    const v = await cni({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
    expect(v.code).toBe(0);
    expect(json(v)).toEqual({ cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] });

    // --- errors: CNI error JSON on stdout with the spec's codes, exit 1
    const fails: [Record<string, string>, string, number][] = [
      [webEnv, '{not json', 6],
      [webEnv, conf({ type: 'bridge' }), 7],
      [webEnv, conf({ cniVersion: '9.0.0' }), 1],
      [{ ...webEnv, CNI_CONTAINERID: '' }, conf(), 4],
      [{ ...webEnv, CNI_COMMAND: 'NOPE' }, conf(), 4],
      [{ ...webEnv, CNI_ARGS: 'WARD_LABELS=nocolon' }, conf(), 7],
      [{ ...webEnv, CNI_CONTAINERID: `${h.tag}new`, CNI_NETNS: '/run/netns/no-such-ns-ward' }, conf(), 7],
      [webEnv, conf({ apiSocket: join(h.dir, 'no-agent.sock') }), 11],
    ];
    for (const [env, stdin, code] of fails) {
      const r = await cni(env, stdin);
      expect(r.code, `${JSON.stringify(env)} ${stdin}`).toBe(1);
      expect(json(r), r.stdout).toMatchObject({ code, msg: expect.any(String) as unknown });
    }
  });
});
