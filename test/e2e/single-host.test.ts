import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EndpointJson } from '../../agent/api/index.js';
import { decodeValue, KeySchema } from '../../kvstore-schema/index.js';
import { Probe } from '../datapath/helpers/probe.js';
import { sh } from '../datapath/helpers/sh.js';
import { AgentProcess } from './helpers/agent-process.js';
import { eventually } from './helpers/eventually.js';
import { useSingleHost } from './helpers/single-host.js';
import { DB_POLICY } from './helpers/policies.js';


function linkGone(netns: string, ifname: string): boolean {
  try {
    sh('ip', ['-n', netns, 'link', 'show', ifname]);
    return false;
  } catch {
    return true;
  }
}

// One host (a netns made here) with its agent as a separate process, a real etcd, three
// endpoints added through the CLI, a policy imported through the CLI, real TCP between them.
describe('single host: agent process, CLI endpoints and policy, real TCP', () => {
  const fx = useSingleHost();
  const probes = fx.probes;

  it('adds endpoints, enforces an imported policy, deletes policy and endpoint, stops on SIGTERM', async () => {
    const h = fx.host;
    const schema = new KeySchema(h.root);
    expect(statSync(h.socket).mode & 0o777).toBe(0o600); // root-only API

    // --- endpoints through the CLI
    const add = async (name: string, labels: string, netns: string): Promise<EndpointJson> =>
      JSON.parse(await h.wardOk(['endpoint', 'add', '--name', name, '--labels', labels, '--netns', netns, '-o', 'json'])) as EndpointJson;
    const nsWeb = h.addNetns('w');
    const nsDb = h.addNetns('d');
    const nsOther = h.addNetns('o');
    const web = await add('web', 'app=web', nsWeb);
    const db = await add('db', 'app=db,env=prod', `/run/netns/${nsDb}`);
    const other = await add('other', 'app=other', nsOther);
    expect(web).toMatchObject({ name: 'web', ip: '10.201.0.2', programmed: true, lockedDown: false });
    expect(db.ip).toBe('10.201.0.3');
    expect(new Set([web.identity, db.identity, other.identity]).size).toBe(3);
    expect(web.identity).toBeGreaterThanOrEqual(256);

    // Bad input is refused with a clear message.
    const dup = await h.ward(['endpoint', 'add', '--name', 'web', '--labels', 'app=x', '--netns', nsWeb]);
    expect(dup.code).toBe(1);
    expect(dup.err).toContain('already exists');
    const badIp = await h.ward(['endpoint', 'add', '--name', 'x', '--labels', 'app=x', '--netns', nsWeb, '--ip', '10.9.9.9']);
    expect(badIp.err).toContain('outside');
    const noNs = await h.ward(['endpoint', 'add', '--name', 'x', '--labels', 'app=x', '--netns', 'no-such-ns']);
    expect(noNs.err).toContain('does not exist');

    const table = await h.wardOk(['endpoint', 'list']);
    expect(table).toMatch(/^NAME\s+ID\s+IP/);
    expect(table).toMatch(/db\s+\d+\s+10\.201\.0\.3\s+\d+\s+lxc[0-9a-f]{11}\s+ready/);
    expect((JSON.parse(await h.wardOk(['endpoint', 'get', 'db', '-o', 'json'])) as EndpointJson).identity).toBe(db.identity);

    // IP -> identity published in etcd under the node's lease; the node is registered.
    const epKey = schema.endpointKey(h.node, other.ip);
    const got = await fx.kv.get(epKey);
    expect(got.kv).toBeDefined();
    expect(decodeValue('endpoint', got.kv!.value)).toMatchObject({ ip: other.ip, identity: other.identity, node: h.node, name: 'other' });
    expect(got.kv!.lease).not.toBe('0');
    expect(decodeValue('node', (await fx.kv.get(schema.nodeKey(h.node))).kv!.value)).toMatchObject({ addresses: [h.nodeIp], endpointCidrs: [h.endpointCidr] });

    // --- real TCP: no policy selects db, so everything reaches it
    const [pWeb, pDb, pOther] = await Promise.all([Probe.start(nsWeb), Probe.start(nsDb), Probe.start(nsOther)]);
    probes.push(pWeb, pDb, pOther);
    await pDb.listenTcp(5432);
    await pDb.listenTcp(8080);
    expect(await eventually(() => pWeb.tcp(db.ip, 5432), 5000)).toBe(true);
    expect(await pOther.tcp(db.ip, 5432)).toBe(true);

    // --- import a policy: db accepts only web, only on 5432
    const policyFile = join(h.dir, 'db-policy.yaml');
    writeFileSync(policyFile, DB_POLICY);
    expect(await h.wardOk(['policy', 'import', policyFile])).toMatch(/policy db-from-web imported: 1 rule\(s\), revision \d+/);
    expect(await eventually(async () => !(await pOther.tcp(db.ip, 5432, 700)), 10_000)).toBe(true);
    expect(await pWeb.tcp(db.ip, 5432)).toBe(true);
    expect(await pWeb.tcp(db.ip, 8080, 700)).toBe(false);
    expect(await h.wardOk(['policy', 'list'])).toMatch(/db-from-web\s+\d+\s+1/);
    expect(await h.wardOk(['policy', 'get', 'db-from-web'])).toContain('app: web');
    expect((JSON.parse(await h.wardOk(['endpoint', 'get', 'db', '-o', 'json'])) as EndpointJson).policyEntries).toBeGreaterThan(0);

    // An invalid file is rejected whole, with the parser's message; nothing is stored.
    const badFile = join(h.dir, 'bad.yaml');
    writeFileSync(badFile, 'endpointSelector: { matchLabels: { app: db } }\ningress:\n  - fromEndpoints: 3\n');
    const bad = await h.ward(['policy', 'import', '--name', 'bad', badFile]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/bad\.yaml/);
    expect((await fx.kv.get(schema.policyKey('bad'))).kv).toBeUndefined();

    // A second agent with the same settings refuses to start and changes nothing.
    const second = AgentProcess.start(['--config', join(h.dir, 'agent.yaml'), `--host-netns=/run/netns/${h.hostNs}`], join(h.dir, 'agent2.log'));
    try {
      expect(await second.exited()).toBe(1);
    } finally {
      second.close();
    }
    expect(readFileSync(join(h.dir, 'agent2.log'), 'utf8')).toContain('another agent is running');

    // --- status
    const st = await h.status();
    expect(st).toMatchObject({ node: h.node, inSync: true, degraded: false, endpoints: 3, policies: 1 });
    expect(st!.etcd.connected).toBe(true);
    expect(st!.identities).toBeGreaterThanOrEqual(3);
    expect(st!.policyMapPressure).toMatchObject({ capacity: 16384 });
    expect(await h.wardOk(['status'])).toMatch(/state:\s+in sync/);

    // --- policy delete: back to allow-all for db
    expect(await h.wardOk(['policy', 'delete', 'db-from-web'])).toContain('deleted');
    expect(await eventually(() => pOther.tcp(db.ip, 5432, 700), 10_000)).toBe(true);
    expect(await pWeb.tcp(db.ip, 8080)).toBe(true);
    expect((await h.ward(['policy', 'delete', 'db-from-web'])).code).toBe(1);

    // --- endpoint delete: etcd entry, policy map pin, veth and state entry are gone
    const mapPin = join(h.bpfRoot, 'policy', `ep_${other.id}`);
    expect(existsSync(mapPin)).toBe(true);
    expect(await h.wardOk(['endpoint', 'delete', 'other'])).toContain('deleted');
    expect((await fx.kv.get(epKey)).kv).toBeUndefined();
    expect(existsSync(mapPin)).toBe(false);
    expect(linkGone(h.hostNs, other.ifname)).toBe(true);
    const missing = await h.ward(['endpoint', 'get', 'other']);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('no endpoint');
    expect((JSON.parse(await h.wardOk(['endpoint', 'list', '-o', 'json'])) as EndpointJson[]).map((e) => e.name)).toEqual(['db', 'web']);
    expect(await pWeb.tcp(db.ip, 5432)).toBe(true);

    // --- SIGTERM stops the agent cleanly; programs and maps keep enforcing (fail-static)
    expect(await h.agent!.stop(10_000)).toBe(0);
    expect(existsSync(h.socket)).toBe(false);
    expect(await pWeb.tcp(db.ip, 5432)).toBe(true);
  });
});
