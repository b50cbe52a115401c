import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EndpointJson } from '../../agent/api/index.js';
import { decodeValue, KeySchema } from '../../kvstore-schema/index.js';
import { Probe } from '../datapath/helpers/probe.js';
import { sh } from '../datapath/helpers/sh.js';
import { eventually } from './helpers/eventually.js';
import { useSingleHost } from './helpers/single-host.js';
import { DB_POLICY } from './helpers/policies.js';

/** Probes allowed and denied flows until stopped; counts every wrong verdict. */
function watchVerdicts(
  allowed: () => Promise<boolean>,
  denied: () => Promise<boolean>,
): { rounds(): number; waitRounds(n: number): Promise<void>; stop(): Promise<{ rounds: number; wrong: string[] }> } {
  let running = true;
  const wrong: string[] = [];
  let rounds = 0;
  const loop = (async () => {
    while (running) {
      const [a, d] = await Promise.all([allowed(), denied()]);
      if (!a) wrong.push(`round ${rounds}: allowed flow failed`);
      if (d) wrong.push(`round ${rounds}: denied flow passed`);
      rounds++;
    }
  })();
  return {
    rounds: () => rounds,
    async waitRounds(n) {
      const until = rounds + n;
      while (rounds < until && running) await new Promise((r) => setTimeout(r, 50));
    },
    async stop() {
      running = false;
      await loop;
      return { rounds, wrong };
    },
  };
}

// Restart survival (kill -9, restart from the state file and pins) and fail-static (etcd gone).
describe('single host: agent kill -9 and restart, etcd down and back', () => {
  const fx = useSingleHost({ host: { index: 1 }, kv: { attemptTimeoutMs: 1000, callTimeoutMs: 3000 } });
  const probes = fx.probes;

  it('keeps enforcing through kill -9 and restart, and while etcd is down', async () => {
    const h = fx.host;
    const schema = new KeySchema(h.root);
    const add = async (name: string, labels: string, netns: string): Promise<EndpointJson> =>
      JSON.parse(await h.wardOk(['endpoint', 'add', '--name', name, '--labels', labels, '--netns', netns, '-o', 'json'])) as EndpointJson;
    const ns = { web: h.addNetns('w'), db: h.addNetns('d'), other: h.addNetns('o'), web2: h.addNetns('x'), stale: h.addNetns('s') };
    const web = await add('web', 'app=web', ns.web);
    const db = await add('db', 'app=db', ns.db);
    await add('other', 'app=other', ns.other);
    const stale = await add('stale', 'app=stale', ns.stale);
    const policyFile = join(h.dir, 'db-policy.yaml');
    writeFileSync(policyFile, DB_POLICY);
    await h.wardOk(['policy', 'import', policyFile]);
    const [pWeb, pDb, pOther] = await Promise.all([Probe.start(ns.web), Probe.start(ns.db), Probe.start(ns.other)]);
    probes.push(pWeb, pDb, pOther);
    await pDb.listenTcp(5432);
    expect(await eventually(async () => !(await pOther.tcp(db.ip, 5432, 500)) && (await pWeb.tcp(db.ip, 5432)), 10_000)).toBe(true);
    const session = await pWeb.openSession(db.ip, 5432);

    // --- kill -9: no agent at all, the kernel keeps enforcing
    const verdicts = watchVerdicts(
      () => pWeb.tcp(db.ip, 5432, 1000),
      () => pOther.tcp(db.ip, 5432, 400),
    );
    h.agent!.kill();
    await h.agent!.exited();
    await verdicts.waitRounds(2);
    expect(await pWeb.sessionEcho(session, 'while-dead')).toBe(true);
    sh('ip', ['-n', h.hostNs, 'link', 'del', stale.ifname]); // vanishes while no agent runs

    // --- restart from the state file and the pins
    const started = Date.now();
    await h.startAgent();
    const restartMs = Date.now() - started;
    await verdicts.waitRounds(2);
    const during = await verdicts.stop();
    expect(during.wrong).toEqual([]);
    expect(await pWeb.sessionEcho(session, 'after-restart')).toBe(true);
    const list = JSON.parse(await h.wardOk(['endpoint', 'list', '-o', 'json'])) as EndpointJson[];
    expect(list.map((e) => [e.name, e.id, e.identity, e.programmed])).toEqual([
      ['db', db.id, db.identity, true],
      ['other', list[1]!.id, list[1]!.identity, true],
      ['web', web.id, web.identity, true],
    ]);
    expect(await eventually(async () => (await fx.kv.get(schema.endpointKey(h.node, web.ip))).kv !== undefined, 5000)).toBe(true);
    // The vanished endpoint was dropped: its map swept, its etcd key and identity reference gone.
    expect(existsSync(join(h.bpfRoot, 'policy', `ep_${stale.id}`))).toBe(false);
    expect((await fx.kv.get(schema.endpointKey(h.node, stale.ip))).kv).toBeUndefined();
    expect((await fx.kv.listPrefix(schema.refsNodePrefix(h.node))).kvs.map((x) => x.key.toString()).some((k) => k.includes('stale'))).toBe(false);
    expect(await pWeb.tcp(db.ip, 5432)).toBe(true);
    expect(await pOther.tcp(db.ip, 5432, 500)).toBe(false);
    console.log(`agent restart to in-sync: ${restartMs} ms; ${during.rounds} probe rounds without a wrong verdict`);

    // --- etcd down: fail-static, status degraded; a new endpoint with a known identity works
    await fx.etcd.kill(0);
    expect(await eventually(async () => (await h.status())?.degraded === true, 10_000, 200)).toBe(true);
    expect((await h.ward(['status'])).code).toBe(1);
    expect(await pWeb.sessionEcho(session, 'etcd-down')).toBe(true);
    expect(await pWeb.tcp(db.ip, 5432)).toBe(true);
    expect(await pOther.tcp(db.ip, 5432, 500)).toBe(false);
    const web2 = await add('web2', 'app=web', ns.web2);
    expect(web2.identity).toBe(web.identity);
    const pWeb2 = await Probe.start(ns.web2);
    probes.push(pWeb2);
    expect(await eventually(() => pWeb2.tcp(db.ip, 5432), 5000)).toBe(true);

    // --- etcd back: status recovers, the pending publication lands
    await fx.etcd.restart(0);
    expect(await eventually(async () => (await h.status())?.degraded === false, 20_000, 200)).toBe(true);
    expect(
      await eventually(async () => {
        const kv2 = (await fx.kv.get(schema.endpointKey(h.node, web2.ip)).catch(() => ({ kv: undefined }))).kv;
        return kv2 !== undefined && decodeValue('endpoint', kv2.value).identity === web.identity;
      }, 20_000, 200),
    ).toBe(true);
    expect(await pOther.tcp(db.ip, 5432, 500)).toBe(false);
    expect(await pWeb.sessionEcho(session, 'etcd-back')).toBe(true);
  });
});
