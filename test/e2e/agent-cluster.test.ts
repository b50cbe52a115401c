import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateAddEndpoint } from '../../agent/api/index.js';
import { loadAgentConfig } from '../../agent/config/index.js';
import { Agent, policyValueFromText, type NetlinkPort } from '../../agent/daemon/index.js';
import { EtcdCluster } from '../../agent/dev/etcd-cluster.js';
import { KvClient, silentLogger } from '../../agent/kvstore/index.js';
import { FakeDatapath, Direction, Protocol } from '../../bpf/index.js';
import { encodeValue, KeySchema } from '../../kvstore-schema/index.js';
import { eventually } from './helpers/eventually.js';
import { DB_POLICY } from './helpers/policies.js';

/** Link operations that only remember which links exist (no root needed for this suite). */
function fakeNetlink(): NetlinkPort & { links: Set<string>; routes: Map<string, string> } {
  const links = new Set<string>();
  const routes = new Map<string, string>();
  return {
    links,
    routes,
    replaceRoute: async (cidr, via) => void routes.set(cidr, via),
    deleteRoute: async (cidr) => void routes.delete(cidr),
    createVeth: async (s) => void links.add(s.ifname),
    deleteVeth: async (ifname) => void links.delete(ifname),
    linkExists: async (ifname) => links.has(ifname),
    enableForwarding: async () => undefined,
  };
}

// Two agents in this process (fake datapath and links, real etcd): the cluster-wide wiring
// of identities, endpoints, nodes and policies between nodes.
describe('two agents sharing one etcd (fake datapath)', () => {
  let etcd: EtcdCluster | undefined;
  let dir: string;
  const agents: Agent[] = [];
  const root = `cluster-${process.pid}/`;

  beforeAll(async () => {
    etcd = await EtcdCluster.start({ members: 1 });
    dir = mkdtempSync(join(tmpdir(), 'ward-agents-'));
  });

  afterAll(async () => {
    for (const a of agents) await a.close();
    await etcd?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startAgent(name: string, n: number): Promise<{ agent: Agent; dp: FakeDatapath; nodeIp: string; netlink: ReturnType<typeof fakeNetlink> }> {
    const dp = new FakeDatapath();
    const netlink = fakeNetlink();
    const nodeIp = `10.98.${n}.1`;
    const config = loadAgentConfig({
      flags: {
        'node-name': name,
        'node-ip': nodeIp,
        'endpoint-cidr': `10.${210 + n}.0.0/24`,
        etcd: etcd!.endpoints.join(','),
        'etcd-root': root,
        'bpf-root': '/unused',
        'api-socket': join(dir, `${name}.sock`),
        'state-dir': join(dir, name),
      },
    });
    const agent = await Agent.start({ config, logger: pino({ level: 'silent' }), datapath: dp, netlink, leaseTtlSeconds: 5 });
    agents.push(agent);
    return { agent, dp, nodeIp, netlink };
  }

  it('propagates endpoints, nodes and policies between nodes, in order', async () => {
    const a = await startAgent('node-a', 1);
    const b = await startAgent('node-b', 2);
    const netns = '/proc/self/ns/net';
    const web = await a.agent.addEndpoint(validateAddEndpoint({ name: 'web', labels: ['app=web'], netns }));
    const db = await b.agent.addEndpoint(validateAddEndpoint({ name: 'db', labels: ['app=db'], netns }));
    expect(web.ip).toBe('10.211.0.2');
    expect(db.programmed).toBe(true);

    // Same labels on another node: the same identity.
    const webB = await b.agent.addEndpoint(validateAddEndpoint({ name: 'web-b', labels: ['app=web'], netns }));
    expect(webB.identity).toBe(web.identity);

    // ipcache on B: A's endpoint with A's address, A as remote-node, itself as host.
    expect(await eventually(() => b.dp.ipcache.lookup(web.ip)?.identity === web.identity, 10_000)).toBe(true);
    expect(b.dp.ipcache.lookup(web.ip)?.nodeAddress).toBe(a.nodeIp);
    expect(await eventually(() => b.dp.ipcache.lookup(a.nodeIp)?.identity === 6, 10_000)).toBe(true);
    expect(b.dp.ipcache.lookup(b.nodeIp)?.identity).toBe(1);
    expect(b.dp.ipcache.lookup(webB.ip)?.identity).toBe(web.identity);
    // A learns db through its own watch, which B's view says nothing about.
    expect(await eventually(() => a.dp.ipcache.lookup(db.ip)?.identity === db.identity, 10_000)).toBe(true);
    // Native routing: each node routes the other's endpoint CIDR via its address.
    expect(await eventually(() => a.netlink.routes.get('10.212.0.0/24') === b.nodeIp && b.netlink.routes.get('10.211.0.0/24') === a.nodeIp, 5000)).toBe(true);
    expect(a.netlink.routes.size).toBe(1);

    // No policy selects db: one wildcard allow per direction, never an enumeration.
    const dbMap = (): ReadonlyMap<string, unknown> => b.dp.policy.get(db.id)!.desired();
    expect([...dbMap().keys()].every((k) => k.startsWith('0/'))).toBe(true);

    // A policy stored in etcd reaches B's db map: an entry for web's identity on TCP 5432.
    const kv = new KvClient({ endpoints: etcd!.endpoints, logger: silentLogger() });
    const schema = new KeySchema(root);
    try {
      const value = policyValueFromText(DB_POLICY, 'db.yaml', undefined, Date.now());
      await kv.put(schema.policyKey(value.name), encodeValue('policy', value));
      const want = `${web.identity}/${Direction.ingress}/${Protocol.tcp}/5432/16`;
      expect(await eventually(() => dbMap().has(want), 10_000)).toBe(true);
      expect([...dbMap().keys()].some((k) => k.startsWith(`0/${Direction.ingress}/`))).toBe(false);
      expect((await b.agent.status()).policies).toBe(1);

      // An invalid update of the policy (not through `ward policy import`) keeps its old rules.
      await kv.put(schema.policyKey(value.name), encodeValue('policy', { ...value, rules: [{ endpointSelector: 5 }] }));
      const marker = { ...value, name: 'marker', rules: [{ endpointSelector: { matchLabels: { app: 'none' } } }] };
      await kv.put(schema.policyKey('marker'), encodeValue('policy', marker)); // written after: seen after
      expect(await eventually(async () => (await b.agent.status()).policies === 2, 10_000)).toBe(true);
      expect(dbMap().has(want)).toBe(true);
      await kv.put(schema.policyKey(value.name), encodeValue('policy', value));
      await kv.delete(schema.policyKey('marker'));

      // Endpoint delete on A: gone from B's ipcache; the identity stays (web-b holds it).
      await a.agent.deleteEndpoint('web');
      expect(await eventually(() => b.dp.ipcache.lookup(web.ip) === undefined, 10_000)).toBe(true);
      expect(dbMap().has(want)).toBe(true);

      // Policy delete: back to the wildcard.
      await kv.delete(schema.policyKey(value.name));
      expect(await eventually(() => !dbMap().has(want), 10_000)).toBe(true);
    } finally {
      kv.close();
    }
    const st = await b.agent.status();
    expect(st).toMatchObject({ node: 'node-b', inSync: true, degraded: false, endpoints: 2, policies: 0 });
  });
});
