import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DevState } from '../../agent/dev/dev-state.js';
import { isAlive } from '../../agent/dev/procs.js';
import { devProcs, useDevSandbox } from './helpers/dev-sandbox.js';
import { eventually } from './helpers/eventually.js';

const CLUSTER = `name: overridden
hosts: [h1, h2]
network:
  node-cidr: 10.91.0.0/24
  endpoint-cidr: 10.210.0.0/16
policy: policy.yaml
workloads:
  - name: a
    host: h1
    labels: { app: a }
    command: socat TCP-LISTEN:7001,fork,reuseaddr SYSTEM:'echo a'
    ports: [7001]
  - name: b
    host: h2
    labels: { app: b }
    ip: 10.210.2.50
    command: socat TCP-LISTEN:7002,fork,reuseaddr SYSTEM:'echo b'
    ports: [7002]
  - name: c
    host: h2
    labels: { app: c, env: dev }
    command: socat TCP-LISTEN:7003,fork,reuseaddr SYSTEM:'echo c'
    ports: [7003]
`;

// b accepts a on 7002 only; nothing reaches a from env=dev; c is not selected (open).
const POLICY = `- endpointSelector: { matchLabels: { app: b } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: a } }]
      toPorts: [{ ports: [{ port: "7002", protocol: TCP }] }]
- endpointSelector: { matchLabels: { app: a } }
  ingressDeny:
    - fromEndpoints: [{ matchLabels: { env: dev } }]
  ingress:
    - fromEndpoints: [{}]
`;

/** The matrix table printed after `title`: row name -> column -> cell. */
function table(out: string, title: string): Map<string, Map<string, string>> {
  const at = out.indexOf(title);
  expect(at, `"${title}" in output:\n${out}`).toBeGreaterThanOrEqual(0);
  const lines = out.slice(at).split('\n').slice(1);
  const header = lines[0]!.trim().split(/\s{3,}/);
  const rows = new Map<string, Map<string, string>>();
  for (const line of lines.slice(1)) {
    if (line.trim() === '' || line.startsWith('==')) break;
    const cells = line.trim().split(/\s{3,}/);
    rows.set(cells[0]!, new Map(header.slice(1).map((h, i) => [h, cells[i + 1]!])));
  }
  return rows;
}

function netnsList(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns') : [];
}

describe('ward dev: up, exec, etcd kill/start, down', () => {
  const dev = useDevSandbox('wt', { 'cluster.yaml': CLUSTER, 'policy.yaml': POLICY });
  const { name: NAME, tmp: TMP, ward } = dev;
  let state: DevState;


  it('brings a cluster up, enforces its policy, runs commands in workloads, survives etcd loss, and goes away whole', async () => {
    const t0 = performance.now();
    const up = await ward(['dev', 'up', '-f', join(TMP, 'cluster.yaml'), '--name', NAME, '--etcd-port', '0']);
    const upMs = performance.now() - t0;
    expect(up.code, `${up.out}\n${up.err}`).toBe(0);
    console.log(`ward dev up (2 hosts, 3 workloads, both matrices): ${(upMs / 1000).toFixed(1)} s\n${up.out}`);
    state = dev.readState();
    expect(state.phase).toBe('up');
    expect(state.hosts.map((h) => h.netns)).toEqual([`${NAME}-h1`, `${NAME}-h2`]);
    expect(state.workloads.find((w) => w.name === 'b')?.ip).toBe('10.210.2.50');

    // The up process is gone; everything it started still runs.
    for (const p of devProcs(state)) expect(isAlive(p)).toBe(true);

    const before = table(up.out, '== connectivity BEFORE');
    for (const [, row] of before) for (const cell of row.values()) expect(['allow', '-']).toContain(cell);
    const after = table(up.out, '== connectivity AFTER');
    expect(Object.fromEntries(after.get('a')!)).toEqual({ 'a:7001': '-', 'b:7002': 'allow', 'c:7003': 'allow' });
    expect(Object.fromEntries(after.get('b')!)).toEqual({ 'a:7001': 'allow', 'b:7002': '-', 'c:7003': 'allow' });
    expect(Object.fromEntries(after.get('c')!)).toEqual({ 'a:7001': 'deny', 'b:7002': 'deny', 'c:7003': '-' });

    // exec: stdout passes through, the exit status too, and policy applies inside.
    const addr = await ward(['dev', 'exec', '--name', NAME, 'b', '--', 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    expect(addr.code).toBe(0);
    expect(addr.out).toContain('10.210.2.50/32');
    expect((await ward(['dev', 'exec', '--name', NAME, 'a', '--', 'sh', '-c', 'exit 3'])).code).toBe(3);
    expect((await ward(['dev', 'exec', '--name', NAME, 'a', '--', 'nc', '-z', '-w', '2', '10.210.2.50', '7002'])).code).toBe(0);
    expect((await ward(['dev', 'exec', '--name', NAME, 'c', '--', 'nc', '-z', '-w', '1', '10.210.2.50', '7002'])).code).not.toBe(0);
    const unknown = await ward(['dev', 'exec', '--name', NAME, 'zz', '--', 'true']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/no workload "zz".*workloads: a, b, c/);

    // etcd member 0 killed: agents degrade (fail-static, allowed traffic keeps flowing); back: in sync.
    const kill = await ward(['dev', 'etcd', 'kill', '0', '--name', NAME]);
    expect(kill.code, kill.err).toBe(0);
    expect(isAlive(state.etcd.members[0]!.proc)).toBe(false);
    expect(await eventually(async () => (await ward(['dev', 'status', '--name', NAME])).out.includes('degraded'), 30_000, 200)).toBe(true);
    expect((await ward(['dev', 'exec', '--name', NAME, 'a', '--', 'nc', '-z', '-w', '2', '10.210.2.50', '7002'])).code).toBe(0);
    const start = await ward(['dev', 'etcd', 'start', '0', '--name', NAME]);
    expect(start.code, start.err).toBe(0);
    expect(start.out).toMatch(/healthy/);
    expect(await eventually(async () => (await ward(['dev', 'status', '--name', NAME])).code === 0, 30_000, 200)).toBe(true);
    state = dev.readState(); // the restarted member's PID
    expect(isAlive(state.etcd.members[0]!.proc)).toBe(true);

    // down: no process, netns, pin root or dir left; a second down is a no-op.
    const down = await ward(['dev', 'down', '--name', NAME]);
    expect(down.code, down.err).toBe(0);
    for (const p of devProcs(state)) expect(isAlive(p)).toBe(false);
    const ns = netnsList();
    for (const n of state.netns) expect(ns).not.toContain(n);
    for (const p of state.pinRoots) expect(existsSync(p)).toBe(false);
    expect(existsSync(state.dir)).toBe(false);
    expect(existsSync(state.dataDir)).toBe(false);
    expect(existsSync(dirname(state.dataDir))).toBe(false); // the base dirs go with the last cluster
    expect(existsSync(dirname(state.dir))).toBe(false);
    expect(netnsList().filter((n) => n.startsWith(`${NAME}-`))).toEqual([]);
    const again = await ward(['dev', 'down', '--name', NAME]);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/nothing to do/);
  });

  it('gives clear messages for a bad cluster file, a taken name and an unknown cluster', async () => {
    writeFileSync(join(TMP, 'bad.yaml'), 'hosts: [h1]\nworkloads:\n  - name: x\n    host: h9\n    labels: { app: x }\n');
    const bad = await ward(['dev', 'up', '-f', join(TMP, 'bad.yaml'), '--name', `${NAME}b`]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(`${join(TMP, 'bad.yaml')}:4: workloads[x].host: unknown host "h9"`);

    const taken = `${NAME}t`;
    spawnSyncOk('ip', ['netns', 'add', `${taken}-fabric`]);
    try {
      const r = await ward(['dev', 'up', '-f', join(TMP, 'cluster.yaml'), '--name', taken, '--etcd-port', '0']);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(new RegExp(`name "${taken}" is taken: netns ${taken}-fabric exists`));
      expect(existsSync(join(dev.env['WARD_DEV_RUN_DIR']!, taken))).toBe(false);
    } finally {
      spawnSyncOk('ip', ['netns', 'del', `${taken}-fabric`]);
    }

    const none = await ward(['dev', 'status', '--name', `${NAME}n`]);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/no ward dev cluster named/);
  });
});

function spawnSyncOk(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed`);
}
