import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import type { EndpointJson } from '../../agent/api/index.js';
import { encodeValue, KeySchema, VALUE_VERSION } from '../../kvstore-schema/index.js';
import { Probe } from '../datapath/helpers/probe.js';
import { sh } from '../datapath/helpers/sh.js';
import { eventually } from './helpers/eventually.js';
import { useSingleHost } from './helpers/single-host.js';
import { DB_POLICY } from './helpers/policies.js';

/** Raw POST to the agent API over its unix socket (bodies the CLI would never send). */
function post(socket: string, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function listTree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

const GARBAGE = Buffer.from([0xc1, 0xff, 0x00, 0x13, 0x37]); // 0xc1 is never valid msgpack
const HUGE = Buffer.alloc(1024 * 1024, 0x61); // 1 MiB of 'a' (a positive fixint, then trailing bytes)

// One host with web, db and other endpoints and "db accepts only web on 5432" in force. Hostile
// writes under every ward prefix must be logged and skipped while real TCP keeps the verdicts.
describe('hostile etcd contents: agent skips bad keys and values, keeps enforcing, recovers', () => {
  const fx = useSingleHost();
  const probes = fx.probes;

  it('garbage, wrong-version, huge values and malformed keys under every prefix', async () => {
    const h = fx.host;
    const k = fx.kv;
    const s = new KeySchema(h.root);
    const add = async (name: string, labels: string, netns: string): Promise<EndpointJson> =>
      JSON.parse(await h.wardOk(['endpoint', 'add', '--name', name, '--labels', labels, '--netns', netns, '-o', 'json'])) as EndpointJson;
    const nsWeb = h.addNetns('w');
    const nsDb = h.addNetns('d');
    const nsOther = h.addNetns('o');
    const db = await add('db', 'app=db', nsDb);
    await add('web', 'app=web', nsWeb);
    await add('other', 'app=other', nsOther);
    const [pWeb, pDb, pOther] = await Promise.all([Probe.start(nsWeb), Probe.start(nsDb), Probe.start(nsOther)]);
    probes.push(pWeb, pDb, pOther);
    await pDb.listenTcp(5432);
    const policyFile = join(h.dir, 'db.yaml');
    writeFileSync(policyFile, DB_POLICY);
    await h.wardOk(['policy', 'import', policyFile]);
    expect(await eventually(async () => !(await pOther.tcp(db.ip, 5432, 700)), 10_000)).toBe(true);
    const before = (await h.status())!;

    const enforcing = async (): Promise<void> => {
      expect(await pWeb.tcp(db.ip, 5432)).toBe(true);
      expect(await pOther.tcp(db.ip, 5432, 700)).toBe(false);
    };

    // Wrong-version and wrong-shape msgpack for each kind.
    const v2 = (o: Record<string, unknown>): Buffer => pack({ ...o, v: VALUE_VERSION + 1 });
    const policyKey = s.policyKey('db-from-web');
    const hostile: [string, Buffer][] = [
      [`${s.ids}70000`, GARBAGE],
      [`${s.ids}70001`, v2({ id: 70001, labels: [{ source: 'k8s', key: 'app', value: 'web' }], node: 'x', token: 't' })],
      [`${s.ids}70002`, HUGE],
      [`${s.ids}not-a-number`, pack({ v: 1, id: 1, labels: [], node: 'x', token: 't' })],
      [`${s.ids}007`, GARBAGE],
      [`${s.labels}%zz`, GARBAGE],
      [`${s.labels}k8s:app=evil`, v2({ id: 70003, token: 't' })],
      [`${s.refs}bad node/k8s:app=x`, GARBAGE],
      [`${s.refs}${h.node}/k8s:app=db`, HUGE], // a ref under our own node prefix
      [`${s.nodes}evil-node`, GARBAGE],
      [`${s.nodes}huge-node`, HUGE],
      [`${s.nodes}v2-node`, v2({ name: 'v2-node', addresses: ['10.97.0.9'], endpointCidrs: ['10.201.0.0/24'], labels: {}, startedAtMs: 1 })],
      [`${s.nodes}bad/name`, GARBAGE],
      [`${s.endpoints}evil-node/not-an-ip`, pack({ v: 1, ip: 'x', identity: 1, node: 'evil-node', name: 'x' })],
      [`${s.endpoints}evil-node/10.201.0.250`, GARBAGE],
      [`${s.endpoints}evil-node/10.201.0.251`, v2({ ip: '10.201.0.251', identity: 1, node: 'evil-node', name: 'x' })],
      [`${s.endpoints}evil-node/10.201.0.252`, HUGE],
      // Well-formed but untrusted: a reserved identity (host), another node's name.
      [`${s.endpoints}evil-node/10.201.0.254`, encodeValue('endpoint', { v: 1, ip: '10.201.0.254', identity: 1, node: 'evil-node', name: 'x' })],
      [`${s.endpoints}evil-node/10.201.0.249`, encodeValue('endpoint', { v: 1, ip: '10.201.0.249', identity: 4242, node: 'other-node', name: 'x' })],
      [`${s.endpoints}${h.node}/10.201.0.253`, GARBAGE], // a bad endpoint under our own node prefix
      [`${s.endpoints}missing-slash`, GARBAGE],
      [`${s.policies}bad name!`, GARBAGE],
      [`${s.policies}huge-policy`, HUGE],
      [`${s.policies}v2-policy`, v2({ name: 'v2-policy', rules: [{ endpointSelector: {} }], description: '', updatedAtMs: 1 })],
      [`${s.policies}bad-rules`, encodeValue('policy', { v: 1, name: 'bad-rules', rules: [{ endpointSelector: 3, ingress: 'x' }], description: '', updatedAtMs: 1 })],
      [policyKey, GARBAGE], // the policy in force, overwritten: its previous value stays
      [`${s.leaders}identity-gc`, GARBAGE],
      [`${h.root}state/unknown/v9/x`, GARBAGE],
    ];
    for (const [key, value] of hostile) await k.put(key, value);

    // The watchers saw every write: a marker key written last shows up as a policy change.
    await k.put(`${s.policies}zz-marker`, GARBAGE);
    expect(await eventually(() => readFileSync(h.logFile, 'utf8').includes('zz-marker'), 10_000)).toBe(true);

    expect(h.agent!.running).toBe(true);
    const st = (await h.status())!;
    expect(st).toMatchObject({ inSync: true, degraded: false, endpoints: 3, policies: before.policies });
    expect(st.identities).toBe(before.identities);
    expect(readFileSync(h.logFile, 'utf8')).toContain('skipping bad value');
    await enforcing();
    expect(h.ipcacheIdentity('10.201.0.250')).toBeUndefined();
    expect(h.ipcacheIdentity('10.201.0.251')).toBeUndefined();
    expect(h.ipcacheIdentity('10.201.0.254')).toBeUndefined();
    expect(h.ipcacheIdentity('10.201.0.249')).toBeUndefined();
    expect(readFileSync(h.logFile, 'utf8')).toContain('ignoring untrusted endpoint entry');

    // Recovery: a valid policy written over the garbage takes effect (now other may reach db too).
    writeFileSync(policyFile, DB_POLICY.replace('matchLabels: { app: web }', 'matchExpressions: [{ key: app, operator: In, values: [web, other] }]'));
    await h.wardOk(['policy', 'import', policyFile]);
    expect(await eventually(() => pOther.tcp(db.ip, 5432, 700), 10_000)).toBe(true);
    expect(await pWeb.tcp(db.ip, 5432)).toBe(true);

    // Cleaning up the hostile keys changes nothing that was valid.
    for (const [key] of hostile) if (key !== policyKey) await k.delete(key);
    await k.delete(`${s.policies}zz-marker`);
    expect(h.agent!.running).toBe(true);
    expect(await eventually(async () => (await h.status())?.inSync === true, 10_000)).toBe(true);
    expect(await pWeb.tcp(db.ip, 5432)).toBe(true);
    expect(await pOther.tcp(db.ip, 5432)).toBe(true);
  });

  it('API and CLI refuse invalid labels, IPs, namespaces and conflicting endpoints, leaving no partial state', async () => {
    const h = fx.host;
    const k = fx.kv;
    const nsWeb = `we${h.tag}w`; // made by the first test; holds endpoint web (eth0)
    const nsFresh = h.addNetns('f');
    const notNetns = join(h.dir, 'not-a-netns');
    writeFileSync(notNetns, 'x');
    // Everything an endpoint add touches: etcd keys, state file, pins, ipcache, host links, the netns.
    const snapshot = async (): Promise<unknown> => ({
      keys: (await k.listPrefix(h.root)).kvs.map((e) => e.key.toString()).sort(),
      state: listTree(join(h.dir, 'state')).map((f) => [f, readFileSync(join(h.dir, 'state', f), 'utf8')]),
      pins: listTree(h.bpfRoot),
      ipcache: (JSON.parse(sh('bpftool', ['-j', 'map', 'dump', 'pinned', join(h.bpfRoot, 'ward_ipcache')])) as unknown[]).length,
      hostLinks: sh('ip', ['-n', h.hostNs, '-o', 'link', 'show']).split('\n').map((l) => l.split(':')[1]?.trim()),
      freshLinks: sh('ip', ['-n', nsFresh, '-o', 'link', 'show']).split('\n').length,
      endpoints: await h.wardOk(['endpoint', 'list', '-o', 'json']),
    });
    const before = await snapshot();
    const add = (...args: string[]): Promise<{ code: number; out: string; err: string }> => h.ward(['endpoint', 'add', ...args]);
    const cases: [string[], RegExp][] = [
      [['--name', 'x1', '--labels', 'reserved:host', '--netns', nsFresh], /reserved/],
      [['--name', 'x2', '--labels', 'app=a,app=b', '--netns', nsFresh], /appears twice/],
      [['--name', 'x3', '--labels', 'a b=c', '--netns', nsFresh], /whitespace/],
      [['--name', 'x4', '--labels', 'bad source:k=v', '--netns', nsFresh], /source/],
      [['--name', 'Bad_Name!', '--labels', 'app=x', '--netns', nsFresh], /name/],
      [['--name', 'x5', '--labels', 'app=x', '--netns', nsFresh, '--ip', 'not-an-ip'], /ip|IP/],
      [['--name', 'x6', '--labels', 'app=x', '--netns', nsFresh, '--ip', '10.9.9.9'], /outside/],
      [['--name', 'x7', '--labels', 'app=x', '--netns', nsFresh, '--ip', '10.201.0.2'], /already used/],
      [['--name', 'x8', '--labels', 'app=x', '--netns', nsFresh, '--ip', '10.201.0.255'], /ip|broadcast|address/],
      [['--name', 'x9', '--labels', 'app=x', '--netns', 'no-such-ns'], /does not exist/],
      [['--name', 'x10', '--labels', 'app=x', '--netns', '/run/netns/../x'], /netns/],
      [['--name', 'web', '--labels', 'app=x', '--netns', nsFresh], /already exists/],
      [['--name', 'x11', '--labels', 'app=x', '--netns', nsWeb], /File exists/], // the netns already holds an endpoint's eth0
      [['--name', 'x12', '--labels', 'app=x', '--netns', notNetns], /Invalid argument/], // a file that is not a netns
    ];
    for (const [args, msg] of cases) {
      const r = await add(...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.err, args.join(' ')).toMatch(msg);
      expect(await snapshot(), args.join(' ')).toEqual(before);
    }
    for (const body of ['not json', '[]', '{"name":"y1","labels":[],"netns":"x"}', '{"name":"y2","labels":["app=x"],"netns":"x","extra":1}', `{"name":"y3","labels":["${'a'.repeat(300)}"],"netns":"x"}`]) {
      const r = await post(h.socket, '/v1/endpoints', body);
      expect(r.status, body).toBe(400);
      expect((JSON.parse(r.body) as { error: string }).error, body).not.toBe('');
    }
    expect(await snapshot()).toEqual(before);

    // Concurrent conflicting adds (same name, then same IP): exactly one wins; deleting it restores everything.
    const nsFresh2 = h.addNetns('g');
    for (const [a1, a2] of [
      [['--name', 'dup', '--netns', nsFresh], ['--name', 'dup', '--netns', nsFresh2]],
      [['--name', 'dup1', '--netns', nsFresh, '--ip', '10.201.0.77'], ['--name', 'dup2', '--netns', nsFresh2, '--ip', '10.201.0.77']],
    ]) {
      const rs = await Promise.all([add(...a1!, '--labels', 'app=web'), add(...a2!, '--labels', 'app=web')]);
      expect(rs.map((r) => r.code).sort()).toEqual([0, 1]);
      expect(rs.find((r) => r.code === 1)!.err).toMatch(/already (exists|used)/);
      const winner = rs[0].code === 0 ? a1! : a2!;
      await h.wardOk(['endpoint', 'delete', winner[1]!]);
      expect(await snapshot()).toEqual(before);
    }
    expect(h.agent!.running).toBe(true);
    expect((await h.status())?.inSync).toBe(true);
  });

  it('etcd wiped under the ward root: the agent re-creates its node, endpoint and identity keys and converges', async () => {
    const h = fx.host;
    const k = fx.kv;
    const s = new KeySchema(h.root);
    const eps = JSON.parse(await h.wardOk(['endpoint', 'list', '-o', 'json'])) as EndpointJson[];
    expect(eps.map((e) => e.name).sort()).toEqual(['db', 'other', 'web']);
    expect(await k.deletePrefix(h.root)).toBeGreaterThan(0);

    const restored = async (): Promise<boolean> => {
      if ((await k.get(s.nodeKey(h.node))).kv === undefined) return false;
      for (const e of eps) {
        if ((await k.get(s.endpointKey(h.node, e.ip))).kv === undefined) return false;
        if ((await k.get(s.idKey(e.identity))).kv === undefined) return false;
      }
      return (await k.listPrefix(s.refsNodePrefix(h.node))).kvs.length >= eps.length;
    };
    expect(await eventually(restored, 20_000, 200)).toBe(true);
    expect(h.agent!.running).toBe(true);
    expect(await eventually(async () => (await h.status())?.inSync === true, 10_000)).toBe(true);
    const after = JSON.parse(await h.wardOk(['endpoint', 'list', '-o', 'json'])) as EndpointJson[];
    expect(after.map((e) => [e.name, e.identity])).toEqual(eps.map((e) => [e.name, e.identity]));

    // The policies were wiped too (allow-all now); a re-import is enforced on the restored identities.
    const db = eps.find((e) => e.name === 'db')!;
    const [pWeb, , pOther] = probes;
    expect(await eventually(async () => (await h.status())?.policies === 0, 10_000)).toBe(true);
    expect(await pOther!.tcp(db.ip, 5432)).toBe(true);
    const policyFile = join(h.dir, 'db.yaml');
    writeFileSync(policyFile, DB_POLICY);
    await h.wardOk(['policy', 'import', policyFile]);
    expect(await eventually(async () => !(await pOther!.tcp(db.ip, 5432, 700)), 10_000)).toBe(true);
    expect(await pWeb!.tcp(db.ip, 5432)).toBe(true);
  });
});
