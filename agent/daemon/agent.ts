import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Datapath, type DatapathPort } from '../../bpf/index.js';
import { isReserved, isLocalIdentity, LabelSet, ReservedIdentity, type IdentityMove } from '../../identity/index.js';
import { encodeValue, type KeySchema } from '../../kvstore-schema/index.js';
import type { ApiHandler, EndpointJson, StatusJson, ValidAddEndpoint } from '../api/index.js';
import { ApiServer, observeRoutes, socketInUse } from '../api/index.js';
import { Observer } from './observe.js';
import { AgentMetrics } from './metrics.js';
import { MetricsServer } from './metrics-server.js';
import { PolicyEngine, type TraceQuery, type TraceResult } from '../calc/index.js';
import type { AgentConfig } from '../config/index.js';
import {
  EndpointConflictError,
  EndpointError,
  EndpointInvalidError,
  EndpointNotFoundError,
  EndpointStateFile,
  EndpointUnavailableError,
  Ipam,
  type EndpointRecord,
} from '../endpoint/index.js';
import { ensureSchemaMarker, IdentityClient, KvClient, readEtcdTls, type StoreBatch } from '../kvstore/index.js';
import { createClusterWatch, type ClusterWatch, type WatchedPolicy } from './cluster-watch.js';
import { DatapathSync } from './datapath-sync.js';
import { distrustRemoteEndpoint } from './endpoint-trust.js';
import { DesiredIpcache } from './desired-ipcache.js';
import { EndpointIps } from './endpoint-ips.js';
import { AgentError } from './errors.js';
import { LeaseBoundKeys } from './lease-keys.js';
import { liveTrace } from './live-trace.js';
import { RouteSync } from './route-sync.js';
import { L7Service } from './l7.js';
import type { Logger } from './logger.js';
import { hostNetlink, type NetlinkPort } from './netlink-port.js';
import type { EndpointValue, NodeValue } from '../../kvstore-schema/index.js';

export interface AgentOptions {
  readonly config: AgentConfig;
  readonly logger: Logger;
  /** Injected datapath (tests: FakeDatapath); default: Datapath.open on config.bpfRoot. */
  readonly datapath?: DatapathPort;
  /** Injected link operations (tests); default: `ip`/`nsenter` in the host namespace. */
  readonly netlink?: NetlinkPort;
  /**
   * Network namespace (path) that plays this host: veths, routes and tc programs go there while
   * the agent itself (and its etcd connection) stays in its own namespace. Dev clusters, tests.
   */
  readonly hostNetns?: string;
  /** etcd lease TTL (seconds): a dead agent's endpoints vanish from other nodes after it. */
  readonly leaseTtlSeconds?: number;
  /** Wait this long for a new endpoint's identity to reach the watch (else 503). */
  readonly identityWaitMs?: number;
}

/** Host-side veth name: `lxc` + 11 hex digits of the endpoint name's hash (15 chars max). */
export function hostIfname(name: string): string {
  return `lxc${createHash('sha256').update(name).digest('hex').slice(0, 11)}`;
}

const errMsg = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * The node agent (composition root). Feeds cluster identities, policies and local endpoints
 * into one PolicyEngine, flushes, and writes the result into the datapath; publishes its node
 * and endpoints in etcd under its lease; serves the local API.
 *
 *   etcd: identities ─┐                      ┌─▶ policy maps (adds) ─▶ ipcache ─▶ policy maps (deletes)
 *         policies  ──┼─▶ PolicyEngine.flush ┤
 *   local endpoints ──┘   endpoints/nodes ───┴─▶ DesiredIpcache (endpoint IPs gated on known identities)
 *
 * Nothing is programmed before identities, policies, endpoints and nodes are in sync; until
 * then the pinned maps of the previous agent keep enforcing (fail-static).
 */
export class Agent implements ApiHandler {
  private readonly engine: PolicyEngine;
  /** L7 proxy: proxy ports for the engine, listeners, per-request decisions and events. */
  readonly l7: L7Service;
  private readonly ipcache = new DesiredIpcache();
  private readonly endpointIps: EndpointIps;
  private readonly sync: DatapathSync;
  private readonly local = new Map<string, EndpointRecord>();
  /** Names, IPs and ids reserved by adds in progress. */
  private readonly reserved = { names: new Set<string>(), ips: new Set<string>(), ids: new Set<number>() };
  private readonly ipam: Ipam;
  private readonly stateFile: EndpointStateFile;
  private readonly schema: KeySchema;
  private readonly api: ApiServer;
  private readonly log: Logger;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly nodeAddrs = new Map<string, readonly string[]>();
  private readonly nodeCidrs = new Map<string, readonly string[]>();
  private readonly routes: RouteSync;
  private readonly metrics: AgentMetrics;
  private metricsServer: MetricsServer | undefined;
  private programmedOnce = false;
  private syncWaiters: (() => void)[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private closing: Promise<void> | undefined;
  private restoring = true;

  private constructor(
    private readonly config: AgentConfig,
    private readonly dp: DatapathPort,
    private readonly ids: IdentityClient,
    private readonly watchClient: KvClient,
    private readonly watch: ClusterWatch,
    private readonly keys: LeaseBoundKeys,
    private readonly netlink: NetlinkPort,
    private readonly opts: AgentOptions,
  ) {
    this.log = opts.logger.child({ subsys: 'agent' });
    this.l7 = new L7Service({
      engine: () => this.engine,
      identityOf: (ip) => this.ipcache.lookup(ip)?.identity ?? ReservedIdentity.world,
      endpointIdentity: (name) => this.local.get(name)?.identity,
      // Once per egress-proxied connection; a host has few endpoints.
      localEndpointAt: (ip) => {
        for (const r of this.local.values()) if (r.ip === ip) return r.name;
        return undefined;
      },
      ...(opts.hostNetns !== undefined ? { hostNetns: opts.hostNetns } : {}),
      logger: opts.logger.child({ subsys: 'l7proxy' }),
    });
    this.engine = new PolicyEngine({ proxyPortFor: this.l7.ports.portFor });
    this.schema = ids.schema;
    this.ipam = new Ipam(config.endpointCidr);
    this.stateFile = new EndpointStateFile(config.stateDir);
    this.sync = new DatapathSync(dp, opts.logger.child({ subsys: 'datapath-sync' }));
    this.endpointIps = new EndpointIps(this.ipcache, (id) => this.identityKnown(id));
    this.api = new ApiServer(config.apiSocket, this, opts.logger.child({ subsys: 'api' }));
    this.api.addRoute(observeRoutes(new Observer({ dp, engine: this.engine, endpoints: () => this.local.values(), onL7Request: (fn) => this.l7.onRequest(fn) })));
    this.routes = new RouteSync(netlink, opts.logger.child({ subsys: 'routes' }));
    this.metrics = new AgentMetrics({
      dp,
      kvClients: [ids.client, watchClient],
      stores: { identities: ids.watcher.store, policies: watch.policies, endpoints: watch.endpoints, nodes: watch.nodes },
      identities: () => this.ids.list().length,
      endpoints: () => this.local.values(),
      ipcacheEntries: () => this.ipcache.size,
      inSync: () => this.programmedOnce,
      l7: () => this.l7.metrics(),
    });
  }

  /** Opens the datapath, connects to etcd, restores local endpoints, starts the watches and the API. */
  static async start(opts: AgentOptions): Promise<Agent> {
    const { config, logger } = opts;
    const log = logger.child({ subsys: 'agent' });
    // TLS files are read once, here; a bad file fails the start (never a plaintext fallback).
    const e = config.etcd;
    const credentials = e.caFile !== undefined ? readEtcdTls({ caFile: e.caFile, certFile: e.certFile, keyFile: e.keyFile }) : undefined;
    const tls = credentials !== undefined ? { credentials } : {};
    // Before touching etcd or the kernel: a second agent would re-bind this node's keys to its own lease.
    if (await socketInUse(config.apiSocket)) throw new AgentError(`another agent is running (it answers on ${config.apiSocket})`);
    const netlink = opts.netlink ?? hostNetlink(opts.hostNetns);
    const dp = opts.datapath ?? Datapath.open({ pinRoot: config.bpfRoot, log: logger.child({ subsys: 'datapath' }) });
    // Late-bound: the agent exists only after connect() returns.
    let onMoved: (moves: readonly IdentityMove[]) => void = () => undefined;
    let ids: IdentityClient | undefined;
    let watchClient: KvClient | undefined;
    let agent: Agent | undefined;
    try {
      await netlink.enableForwarding();
      const kvLog = logger; // the etcd layer names its own subsystems (kvclient, watchstore, lease...)
      ids = await IdentityClient.connect({
        endpoints: config.etcd.endpoints,
        root: config.etcd.root,
        node: config.nodeName,
        logger: kvLog,
        leaseTtlSeconds: opts.leaseTtlSeconds ?? 15,
        ...tls,
        connectTimeoutMs: 30_000,
        onIdentityMoved: (moves) => onMoved(moves),
      });
      // Before the first key write: a cluster on a newer kvstore schema makes this agent refuse.
      const marker = await ensureSchemaMarker(ids.client, ids.schema);
      log.info({ schemaVersion: marker.cluster, created: marker.created }, 'kvstore schema checked');
      watchClient = new KvClient({ endpoints: config.etcd.endpoints, logger: kvLog, ...tls });
      const watch = createClusterWatch(watchClient, ids.schema, kvLog);
      const keys = new LeaseBoundKeys(ids.client, ids.leases, logger.child({ subsys: 'publish' }));
      agent = new Agent(config, dp, ids, watchClient, watch, keys, netlink, opts);
      const a = agent;
      onMoved = (moves) => a.identitiesMoved(moves);
      await agent.run();
      return agent;
    } catch (err) {
      log.error({ err: errMsg(err) }, 'agent start failed');
      if (agent !== undefined) await agent.close();
      else {
        await ids?.close();
        watchClient?.close();
        dp.close();
      }
      throw new AgentError(`agent start failed: ${errMsg(err)}`, { cause: err });
    }
  }

  private async run(): Promise<void> {
    await this.l7.setupRouting().catch((err: unknown) => this.log.error({ err: errMsg(err) }, 'proxy routing setup failed; L7-redirected connections will not reach the proxy'));
    const c = this.config;
    // Identities: seed from the synced cache, then follow its deltas (no gap: same tick).
    this.engine.updateIdentities(this.ids.list().map((i) => [i.id, i.labels] as const));
    this.unsubscribe.push(
      this.ids.watcher.cache.subscribe((d) => {
        this.metrics.received('identities', d.added.size + d.deleted.size);
        this.engine.updateIdentities(d.added, d.deleted.keys());
        this.endpointIps.identitiesKnown(d.added.keys());
        // An identity our endpoints hold was deleted under us: re-create it (same number).
        const held = new Set([...this.local.values()].map((r) => r.identity));
        if ([...d.deleted.keys()].some((id) => held.has(id))) this.ids.leases.resync('identity of a local endpoint deleted');
        this.schedule();
      }),
    );
    this.unsubscribe.push(this.watch.policies.subscribe((b) => this.onPolicies(b)));
    this.unsubscribe.push(this.watch.endpoints.subscribe((b) => this.onEndpoints(b)));
    this.unsubscribe.push(this.watch.nodes.subscribe((b) => this.onNodes(b)));
    this.ipcache.set('node', c.nodeIp, { identity: ReservedIdentity.host });
    this.watch.policies.start();
    this.watch.endpoints.start();
    this.watch.nodes.start();
    await this.restoreEndpoints();
    const node: NodeValue = { v: 1, name: c.nodeName, addresses: [c.nodeIp], endpointCidrs: [c.endpointCidr], labels: {}, startedAtMs: Date.now() };
    if (!(await this.keys.put(this.schema.nodeKey(c.nodeName), encodeValue('node', node)))) this.log.warn('node registration pending (etcd write failed)');
    await this.api.listen();
    if (c.metricsAddress !== undefined) this.metricsServer = await MetricsServer.listen(this.metrics, c.metricsAddress, this.opts.logger.child({ subsys: 'metrics' }));
    this.schedule();
    this.log.info({ node: c.nodeName, nodeIp: c.nodeIp, endpointCidr: c.endpointCidr, endpoints: this.local.size }, 'agent started');
  }

  /** Endpoints of the state file whose link still exists are taken over; the others are dropped. */
  private async restoreEndpoints(): Promise<void> {
    const records = this.stateFile.load();
    for (const rec of records) {
      if (!(await this.netlink.linkExists(rec.ifname))) {
        this.log.warn({ endpoint: rec.name, ifname: rec.ifname }, 'endpoint link is gone; dropping the endpoint');
        continue;
      }
      const labels = LabelSet.parse(rec.labels);
      const alloc = await this.ids.allocate(labels);
      const r: EndpointRecord = { ...rec, identity: alloc.id };
      if (alloc.id !== rec.identity) this.log.warn({ endpoint: rec.name, from: rec.identity, to: alloc.id }, 'endpoint identity changed across restart');
      this.local.set(r.name, r);
      this.engine.upsertEndpoint(r.name, labels);
      this.endpointIps.set(`local/${r.name}`, r.ip, r.identity);
      await this.publish(r);
    }
    // Our endpoint keys in etcd that no restored endpoint owns (crash leftovers) go away.
    const mine = await this.ids.client.listPrefix(this.schema.endpointsNodePrefix(this.config.nodeName));
    const live = new Set([...this.local.values()].map((r) => this.schema.endpointKey(this.config.nodeName, r.ip)));
    for (const kv of mine.kvs) {
      const key = kv.key.toString();
      if (!live.has(key)) await this.keys.delete(key);
    }
    // References of label sets no restored endpoint holds (dropped endpoints, crash leftovers).
    try {
      const dropped = await this.ids.reconcile();
      if (dropped > 0) this.log.info({ dropped }, 'dropped identity references no endpoint holds');
    } catch (err) {
      this.log.warn({ err: errMsg(err) }, 'identity reference resync failed (stale references expire with the old lease)');
    }
    if (records.length !== this.local.size) this.persist();
    this.restoring = false;
    this.log.info({ restored: this.local.size, dropped: records.length - this.local.size }, 'local endpoints restored');
  }

  /**
   * After a lease loss, a label set this node held may have been re-allocated under another
   * number (GC ran meanwhile): its endpoints take the new number everywhere.
   */
  identitiesMoved(moves: readonly IdentityMove[]): void {
    let changed = false;
    for (const m of moves) {
      for (const r of [...this.local.values()]) {
        if (!LabelSet.parse(r.labels).equals(m.labels) || r.identity === m.to) continue;
        const moved: EndpointRecord = { ...r, identity: m.to };
        this.local.set(r.name, moved);
        this.endpointIps.set(`local/${r.name}`, r.ip, m.to);
        if (this.sync.isProgrammed(r.name)) this.dp.setEndpointIdentity(r.id, m.to);
        void this.publish(moved);
        this.log.warn({ endpoint: r.name, from: r.identity, to: m.to }, 'endpoint identity changed');
        changed = true;
      }
    }
    if (changed) {
      this.persist();
      this.schedule();
    }
  }

  /** Saves the state file; a failure is logged (the kernel and etcd are already right). */
  private persist(): void {
    try {
      this.stateFile.save(this.local.values());
    } catch (err) {
      this.log.error({ err: errMsg(err) }, 'cannot save the endpoint state file; a restart would lose endpoints');
    }
  }

  private publish(r: EndpointRecord): Promise<boolean> {
    const v: EndpointValue = { v: 1, ip: r.ip, identity: r.identity, node: this.config.nodeName, name: r.name };
    return this.keys.put(this.schema.endpointKey(this.config.nodeName, r.ip), encodeValue('endpoint', v));
  }

  private identityKnown(id: number): boolean {
    return isReserved(id) || isLocalIdentity(id) || this.ids.get(id) !== undefined;
  }

  private onPolicies(b: StoreBatch<WatchedPolicy>): void {
    this.metrics.received('policies', b.events.length);
    for (const ev of b.events) {
      const name = this.schema.parsePolicyKey(ev.key);
      if (ev.type === 'delete') {
        this.engine.deletePolicy(name);
        this.log.info({ policy: name }, 'policy deleted');
        continue;
      }
      const p = ev.value;
      const rev = this.engine.upsertPolicy(name, p.rules);
      this.log.info({ policy: name, rules: p.rules.length, etcdRevision: ev.modRevision, revision: rev }, 'policy updated');
    }
    this.schedule();
  }

  private onEndpoints(b: StoreBatch<EndpointValue>): void {
    this.metrics.received('endpoints', b.events.length);
    for (const ev of b.events) {
      if (ev.type === 'upsert') {
        let keyNode: string, keyIp: string;
        try {
          ({ node: keyNode, ip: keyIp } = this.schema.parseEndpointKey(ev.key));
        } catch (err) {
          this.log.warn({ key: ev.key, err: errMsg(err) }, 'ignoring endpoint entry with a malformed key');
          continue;
        }
        if (keyNode === this.config.nodeName) continue; // ours come from local state
        const distrust = distrustRemoteEndpoint({ keyNode, keyIp, value: ev.value }, this.config.endpointCidr);
        if (distrust !== undefined) {
          this.log.warn({ key: ev.key, reason: distrust }, 'ignoring untrusted endpoint entry');
          this.endpointIps.delete(ev.key);
          continue;
        }
        const addr = this.nodeAddrs.get(ev.value.node)?.[0];
        this.endpointIps.set(ev.key, ev.value.ip, ev.value.identity, addr);
      } else {
        this.endpointIps.delete(ev.key);
        if (this.keys.has(ev.key)) this.ids.leases.resync(`own endpoint key ${ev.key} deleted`);
      }
    }
    this.schedule();
  }

  private onNodes(b: StoreBatch<NodeValue>): void {
    this.metrics.received('nodes', b.events.length);
    for (const ev of b.events) {
      const name = this.schema.parseNodeKey(ev.key);
      if (name === this.config.nodeName) {
        // Our node key deleted while the lease lives (e.g. the prefix was wiped): re-put our keys.
        if (ev.type === 'delete' && this.keys.has(ev.key)) this.ids.leases.resync('own node key deleted');
        continue;
      }
      for (const a of this.nodeAddrs.get(name) ?? []) this.ipcache.delete('node', a);
      const oldCidrs = this.nodeCidrs.get(name) ?? [];
      this.nodeAddrs.delete(name);
      this.nodeCidrs.delete(name);
      let cidrs: string[] = [];
      if (ev.type === 'upsert') {
        const addrs = ev.value.addresses.filter((a) => !a.includes(':'));
        this.nodeAddrs.set(name, addrs);
        for (const a of addrs) this.ipcache.set('node', a, { identity: ReservedIdentity.remoteNode });
        const via = addrs[0];
        cidrs = ev.value.endpointCidrs.filter((x) => !x.includes(':') && x !== this.config.endpointCidr);
        if (via !== undefined) for (const cidr of cidrs) this.routes.set(cidr, via);
        else cidrs = [];
        this.nodeCidrs.set(name, cidrs);
      }
      for (const cidr of oldCidrs) if (!cidrs.includes(cidr)) this.routes.delete(cidr);
    }
    this.schedule();
  }

  get inSync(): boolean {
    return this.programmedOnce;
  }

  /** Resolves once the first in-sync flush programmed every endpoint (systemd readiness). */
  whenInSync(): Promise<void> {
    if (this.programmedOnce) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  private cachesInSync(): boolean {
    return !this.restoring && this.ids.watcher.cache.inSync && this.watch.policies.inSync && this.watch.endpoints.inSync && this.watch.nodes.inSync;
  }

  /** Coalesces bursts of events into one flush on the next turn of the event loop. */
  private schedule(): void {
    if (this.scheduled !== undefined || this.closing !== undefined) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      this.reconcile();
    });
  }

  /** Flushes the engine and writes the result to the kernel (synchronous). */
  private reconcile(): void {
    if (this.closing !== undefined || !this.cachesInSync()) return;
    try {
      const res = this.engine.flush();
      this.l7.update(res, !this.programmedOnce); // listeners before steering entries
      for (const e of res.ipcache.deleted) this.ipcache.delete('cidr', e.prefix);
      for (const e of res.ipcache.added) this.ipcache.set('cidr', e.prefix, { identity: e.identity });
      if (this.programmedOnce) this.sync.apply(res, this.ipcache.takeChanges());
      else this.programAll();
      this.metrics.applied();
    } catch (err) {
      this.log.error({ err: errMsg(err) }, 'reconcile failed');
    }
  }

  /**
   * First in-sync flush: every restored endpoint gets its whole policy map and its programs
   * (replaced atomically), then the ipcache its whole content (stale entries of the previous
   * run go), then the state of endpoints that vanished while no agent ran is swept.
   */
  private programAll(): void {
    for (const r of this.local.values()) this.program(r);
    try {
      this.dp.ipcache.setDesired(this.ipcache.takeAll());
    } catch (err) {
      this.log.error({ err: errMsg(err) }, 'ipcache resync failed (pending entries are retried by the repair loop)');
    }
    const swept = this.dp.sweepEndpoints(this.sync.programmedIds());
    this.dp.startRepairLoop(60_000);
    this.programmedOnce = true;
    this.log.info({ endpoints: this.local.size, swept }, 'in sync: endpoints programmed');
    for (const w of this.syncWaiters.splice(0)) w();
  }

  private program(r: EndpointRecord): void {
    try {
      this.sync.program(r.name, { endpointId: r.id, identity: r.identity, ifname: r.ifname, ...this.netnsOpt() }, this.engine.endpoint(r.name)?.entries ?? []);
    } catch (err) {
      this.log.error({ endpoint: r.name, err: errMsg(err) }, 'cannot program endpoint');
    }
  }

  private netnsOpt(): { netns?: string } {
    return this.opts.hostNetns !== undefined ? { netns: this.opts.hostNetns } : {};
  }

  private waitInSync(timeoutMs: number): Promise<void> {
    if (this.programmedOnce) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new EndpointUnavailableError(`agent not in sync with etcd after ${timeoutMs} ms`)), timeoutMs);
      this.syncWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private waitIdentity(id: number, timeoutMs: number): Promise<void> {
    if (this.identityKnown(id)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        off();
        reject(new EndpointUnavailableError(`identity ${id} did not reach this node's watch within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.ids.watcher.cache.subscribe(() => {
        if (!this.identityKnown(id)) return;
        clearTimeout(t);
        off();
        resolve();
      });
    });
  }

  // ---- ApiHandler ----

  async addEndpoint(req: ValidAddEndpoint): Promise<EndpointJson> {
    if (this.closing !== undefined) throw new EndpointUnavailableError('agent is shutting down');
    if (this.local.has(req.name) || this.reserved.names.has(req.name)) throw new EndpointConflictError(`endpoint ${JSON.stringify(req.name)} already exists`);
    if (!existsSync(req.netns)) throw new EndpointInvalidError(`netns ${req.netns} does not exist`);
    const ifname = hostIfname(req.name);
    const usedIps = new Set([...[...this.local.values()].map((r) => r.ip), ...this.reserved.ips]);
    const ip = req.ip !== undefined ? this.ipam.check(req.ip, usedIps) : this.ipam.next(usedIps);
    const id = this.nextEndpointId();
    this.reserved.names.add(req.name);
    this.reserved.ips.add(ip);
    this.reserved.ids.add(id);
    const log = this.log.child({ endpoint: req.name });
    try {
      await this.waitInSync(30_000);
      await this.netlink.createVeth({ ifname, netns: req.netns, peerName: req.ifname ?? 'eth0', ip, gateway: this.ipam.gateway });
      let identity: number;
      try {
        identity = (await this.ids.allocate(req.labels)).id;
        await this.waitIdentity(identity, this.opts.identityWaitMs ?? 10_000);
      } catch (err) {
        await this.netlink.deleteVeth(ifname);
        throw err;
      }
      const rec: EndpointRecord = { name: req.name, id, labels: req.labels.toStrings(), netns: req.netns, ifname, ip, identity, createdAtMs: Date.now() };
      this.local.set(rec.name, rec);
      this.engine.upsertEndpoint(rec.name, req.labels);
      this.endpointIps.set(`local/${rec.name}`, rec.ip, rec.identity);
      try {
        this.reconcile(); // other endpoints' maps and the ipcache first, in order
        this.sync.program(rec.name, { endpointId: id, identity, ifname, ...this.netnsOpt() }, this.engine.endpoint(rec.name)?.entries ?? []);
        this.stateFile.save(this.local.values());
      } catch (err) {
        // Never leave a veth without programs (it would be unenforced): undo everything.
        log.error({ err: errMsg(err) }, 'programming the endpoint failed; rolling back');
        await this.rollback(rec, req.labels);
        throw new EndpointError(`endpoint ${rec.name}: ${errMsg(err)}`, { cause: err });
      }
      const published = await this.publish(rec);
      log.info({ id, ip, identity, ifname, published }, 'endpoint added');
      return this.toJson(rec);
    } finally {
      this.reserved.names.delete(req.name);
      this.reserved.ips.delete(ip);
      this.reserved.ids.delete(id);
    }
  }

  private async rollback(rec: EndpointRecord, labels: LabelSet): Promise<void> {
    this.local.delete(rec.name);
    this.sync.unprogram(rec.name, rec.id, { ifname: rec.ifname, ...this.netnsOpt() });
    this.engine.deleteEndpoint(rec.name);
    this.endpointIps.delete(`local/${rec.name}`);
    this.reconcile();
    await this.ids.release(labels).catch(() => false);
    await this.netlink.deleteVeth(rec.ifname).catch(() => undefined);
  }

  async deleteEndpoint(name: string): Promise<void> {
    const rec = this.local.get(name);
    if (rec === undefined) throw new EndpointNotFoundError(`no endpoint ${JSON.stringify(name)}`);
    this.local.delete(name);
    this.sync.unprogram(name, rec.id, { ifname: rec.ifname, ...this.netnsOpt() });
    this.engine.deleteEndpoint(name);
    this.endpointIps.delete(`local/${name}`);
    this.reconcile();
    this.persist();
    await this.keys.delete(this.schema.endpointKey(this.config.nodeName, rec.ip));
    try {
      await this.ids.release(LabelSet.parse(rec.labels));
    } catch (err) {
      this.log.warn({ endpoint: name, err: errMsg(err) }, 'identity release failed (the reference expires with the lease)');
    }
    await this.netlink.deleteVeth(rec.ifname);
    this.log.info({ endpoint: name, id: rec.id, ip: rec.ip }, 'endpoint deleted');
  }

  listEndpoints(): EndpointJson[] {
    return [...this.local.values()].sort((a, b) => a.name.localeCompare(b.name)).map((r) => this.toJson(r));
  }

  getEndpoint(name: string): EndpointJson | undefined {
    const r = this.local.get(name);
    return r === undefined ? undefined : this.toJson(r);
  }

  tracePolicy(q: TraceQuery): TraceResult {
    return liveTrace(
      {
        engine: this.engine,
        local: () => this.local.values(),
        ipcacheLookup: (ip) => this.dp.ipcache.lookup(ip),
        identityLabels: (id) => this.ids.get(id)?.labels.toStrings(),
        identities: () => this.ids.list().map((i) => [i.id, i.labels] as const),
      },
      q,
    );
  }

  async status(): Promise<StatusJson> {
    const c = this.config;
    let connected = true;
    let error: string | undefined;
    try {
      await this.ids.client.call('status-probe', (e) => e.get(this.schema.nodeKey(c.nodeName)).string(), 1500);
    } catch (err) {
      connected = false;
      error = errMsg(err);
    }
    const sync = {
      identities: this.ids.watcher.cache.inSync,
      policies: this.watch.policies.inSync,
      endpoints: this.watch.endpoints.inSync,
      nodes: this.watch.nodes.inSync,
    };
    const locked = new Set(this.sync.lockedDown());
    return {
      node: c.nodeName,
      nodeIp: c.nodeIp,
      endpointCidr: c.endpointCidr,
      etcd: { endpoints: c.etcd.endpoints, connected, ...(error !== undefined ? { error } : {}) },
      sync,
      inSync: this.programmedOnce,
      degraded: !connected,
      endpoints: this.local.size,
      identities: this.ids.list().length,
      policies: this.watch.policies.size,
      policyRevision: this.engine.revision,
      ipcacheEntries: this.ipcache.size,
      lockedDownEndpoints: [...this.local.values()].filter((r) => locked.has(r.id)).map((r) => r.name),
      etcdCalls: this.ids.client.stats.calls + this.watchClient.stats.calls,
      memory: process.memoryUsage(),
      ...this.mapPressure(),
    };
  }

  private mapPressure(): Pick<StatusJson, 'policyMapPressure'> {
    let worst: StatusJson['policyMapPressure'];
    for (const r of this.local.values()) {
      const m = this.dp.policy.get(r.id);
      if (m === undefined) continue;
      const entries = m.desired().size;
      if (worst === undefined || entries / m.capacity > worst.entries / worst.capacity) worst = { endpoint: r.name, entries, capacity: m.capacity };
    }
    return worst === undefined ? {} : { policyMapPressure: worst };
  }

  private toJson(r: EndpointRecord): EndpointJson {
    const map = this.dp.policy.get(r.id);
    return {
      ...r,
      programmed: this.sync.isProgrammed(r.name),
      lockedDown: map?.lockedDown === true,
      policyEntries: this.engine.mapSize(r.name),
    };
  }

  private nextEndpointId(): number {
    const used = new Set([...[...this.local.values()].map((r) => r.id), ...this.reserved.ids]);
    for (let id = 1; id <= 0xffff; id++) if (!used.has(id)) return id;
    throw new EndpointConflictError('no free endpoint id');
  }

  /**
   * Idempotent. Stops the API and the watches and releases fds; pinned maps and attached
   * programs keep enforcing, and lease-bound keys live until the lease expires, so a restarted
   * agent takes over without a gap.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    for (const off of this.unsubscribe.splice(0)) off();
    await this.api.close();
    await this.metricsServer?.close();
    await Promise.all([this.watch.policies.close(), this.watch.endpoints.close(), this.watch.nodes.close()]);
    await this.keys.close();
    await this.routes.settled();
    await this.ids.close();
    this.watchClient.close();
    this.l7.close();
    this.dp.close();
    this.log.info('agent stopped');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
