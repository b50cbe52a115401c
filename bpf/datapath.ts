import { mkdirSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { Counter, DatapathPort, EndpointAttachSpec } from './api.js';
import { BpffsError, ClosedError, native } from './errors.js';
import { ConntrackTable } from './conntrack/table.js';
import type { ConntrackFilter } from './conntrack/table.js';
import type { CtKey, CtValue } from './conntrack/layout.js';
import { EndpointTable } from './endpoint/table.js';
import type { EndpointRecord } from './endpoint/table.js';
import { EventHub } from './events/reader.js';
import type { EventListener, EventSubscription } from './events/reader.js';
import { KernelIpcacheManager } from './ipcache/manager.js';
import { silentLogger } from './logger.js';
import type { DatapathLogger } from './logger.js';
import { BpfMap } from './map.js';
import { decodeCounterKey, decodeCounterValue } from './metrics/layout.js';
import { ebpf } from './napi/index.js';
import type { TcTarget } from './napi/index.js';
import { endpointObjectPath } from './paths.js';
import { KernelPolicyMapManager } from './policy-map/manager.js';
import { reasonName } from './reasons.js';
import type { DriftReport } from './sync/types.js';

export interface DatapathOptions {
  /** bpffs directory holding every ward map (e.g. /sys/fs/bpf/ward); created if missing. */
  readonly pinRoot: string;
  readonly log?: DatapathLogger;
  /** Compiled programs; defaults to bpf/build/ward_endpoint.o. */
  readonly objectPath?: string;
  /** Capacity of each new per-endpoint policy map (default 16384). */
  readonly policyMapMaxEntries?: number;
  /** Capacities of the global maps, applied when they are first created. */
  readonly ipcacheMaxEntries?: number;
  readonly conntrackMaxEntries?: number;
}

const BPF_FS_MAGIC = 0xcafe4a11;

/** tc filter slot ward owns on each hook (replacement reuses it: atomic). */
const TC_HANDLE = 0x5744;
const TC_PRIORITY = 1;

interface Attachment {
  readonly ifindex: number;
  readonly netns: string | undefined;
  identity: number;
}

interface Programs {
  readonly toEndpoint: number;
  readonly fromEndpoint: number;
  readonly mapFds: Record<string, number>;
}

/**
 * ward's datapath on one host: loads the programs (maps pinned under `pinRoot`, reused if an
 * earlier agent pinned them), attaches them to endpoint veths, and exposes the map managers.
 * close() releases fds only: pinned maps and attached programs keep enforcing (fail-static).
 */
export class Datapath implements DatapathPort {
  readonly policy: KernelPolicyMapManager;
  readonly ipcache: KernelIpcacheManager;
  readonly endpoints: EndpointTable;
  readonly conntrack: ConntrackTable;
  private readonly events: EventHub;
  private readonly attachments = new Map<number, Attachment>();
  private readonly lockdowns = new Set<number>();
  private readonly metrics: BpfMap;
  private readonly ring: BpfMap;
  private readonly outer: BpfMap;
  private progs: Programs;
  private repairTimer: NodeJS.Timeout | undefined;
  private closed = false;
  readonly log: DatapathLogger;

  private constructor(private readonly opts: DatapathOptions) {
    this.log = opts.log ?? silentLogger;
    mkdirSync(opts.pinRoot, { recursive: true });
    // Pins outside bpffs would fail late and obscurely (or vanish with a private /sys mount).
    if (statfsSync(opts.pinRoot).type !== BPF_FS_MAGIC) {
      throw new BpffsError(`${opts.pinRoot} is not on a bpf filesystem (mount -t bpf bpffs /sys/fs/bpf)`);
    }
    this.progs = this.load();
    const take = (name: string): BpfMap => {
      const fd = this.progs.mapFds[name];
      if (fd === undefined) throw new Error(`program object has no map ${name}`);
      return BpfMap.fromFd(fd);
    };
    this.outer = take('ward_policy');
    this.metrics = take('ward_metrics');
    this.ring = take('ward_events');
    this.endpoints = new EndpointTable(take('ward_endpoints'));
    this.conntrack = new ConntrackTable(take('ward_ct'));
    this.ipcache = new KernelIpcacheManager(take('ward_ipcache'), this.log);
    for (const r of this.endpoints.list()) if (r.lockedDown) this.lockdowns.add(r.endpointId);
    this.policy = new KernelPolicyMapManager(
      {
        pinDir: join(opts.pinRoot, 'policy'),
        outer: this.outer,
        maxEntries: opts.policyMapMaxEntries ?? 16384,
        log: this.log,
        lockdown: (id, on) => this.setLockdown(id, on),
      },
      (id) => this.lockdowns.has(id),
    );
    this.events = new EventHub(() => this.ring.fd, this.log);
  }

  static open(opts: DatapathOptions): Datapath {
    return new Datapath(opts);
  }

  /** Removes every pin under a root (tests, uninstall). Attached programs stay until detached. */
  static removePins(pinRoot: string): void {
    rmSync(pinRoot, { recursive: true, force: true });
  }

  get pinRoot(): string {
    return this.opts.pinRoot;
  }

  /**
   * Makes the endpoint enforced: its policy map exists (empty = deny all), its record is in the
   * endpoints map, then both programs are attached (replacing any earlier ward program on the
   * same hooks atomically). Idempotent; call again after an agent restart.
   */
  attachEndpoint(spec: EndpointAttachSpec): EndpointRecord {
    this.checkOpen();
    const ifindex = native(() => ebpf().ifNameToIndex(spec.ifname, spec.netns));
    this.policy.open(spec.endpointId);
    const rec: EndpointRecord = { ifindex, endpointId: spec.endpointId, identity: spec.identity, lockedDown: this.lockdowns.has(spec.endpointId) };
    this.endpoints.put(rec);
    const att: Attachment = { ifindex, netns: spec.netns, identity: spec.identity };
    this.attach(att, this.progs);
    this.attachments.set(spec.endpointId, att);
    return rec;
  }

  /** Detaches the programs, forgets the endpoint record and its conntrack entries. Keeps its policy map. */
  detachEndpoint(endpointId: number, where?: { ifname: string; netns?: string }): void {
    this.checkOpen();
    let att = this.attachments.get(endpointId);
    if (!att && where) att = { ifindex: native(() => ebpf().ifNameToIndex(where.ifname, where.netns)), netns: where.netns, identity: 0 };
    if (att) {
      for (const t of this.targets(att)) native(() => ebpf().tcDetach(t.target));
      this.endpoints.delete(att.ifindex);
    }
    for (const r of this.endpoints.byEndpoint(endpointId)) this.endpoints.delete(r.ifindex);
    this.attachments.delete(endpointId);
    this.conntrack.flush({ endpointId });
  }

  /**
   * Mark-and-sweep after a restart's resync: every endpoint record, policy map and attachment
   * of an endpoint not in `live` is removed (with its conntrack entries). Call only once the
   * agent knows all its endpoints, or live endpoints lose their policy.
   */
  sweepEndpoints(live: Iterable<number>): { endpoints: number; policyMaps: number } {
    this.checkOpen();
    const keep = new Set(live);
    let endpoints = 0;
    let policyMaps = 0;
    for (const id of [...this.attachments.keys()]) if (!keep.has(id)) this.detachEndpoint(id);
    for (const r of this.endpoints.list()) {
      if (keep.has(r.endpointId)) continue;
      this.endpoints.delete(r.ifindex);
      this.conntrack.flush({ endpointId: r.endpointId });
      endpoints++;
    }
    for (const id of this.policy.list()) {
      if (keep.has(id)) continue;
      this.policy.remove(id);
      policyMaps++;
    }
    if (endpoints + policyMaps > 0) this.log.info({ endpoints, policyMaps }, 'datapath: swept state of endpoints that no longer exist');
    return { endpoints, policyMaps };
  }

  setEndpointIdentity(endpointId: number, identity: number): void {
    const att = this.attachments.get(endpointId);
    if (att) att.identity = identity;
    for (const r of this.endpoints.byEndpoint(endpointId)) this.endpoints.put({ ...r, identity });
  }

  /** Program id currently attached on each hook of an endpoint (0 = none). */
  attachedProgramIds(endpointId: number): { toEndpoint: number; fromEndpoint: number } {
    const att = this.attachments.get(endpointId);
    if (!att) return { toEndpoint: 0, fromEndpoint: 0 };
    const [to, from] = this.targets(att);
    return { toEndpoint: native(() => ebpf().tcQuery(to!.target)), fromEndpoint: native(() => ebpf().tcQuery(from!.target)) };
  }

  /**
   * Runs one program on a synthetic Ethernet frame (BPF_PROG_TEST_RUN) as if it crossed the
   * device `ifindex` of the agent's namespace (1 = lo); for policy tracing and tests.
   */
  testPacket(hook: 'to-endpoint' | 'from-endpoint', frame: Buffer, ifindex = 1): 'pass' | 'drop' {
    this.checkOpen();
    const fd = hook === 'to-endpoint' ? this.progs.toEndpoint : this.progs.fromEndpoint;
    const r = native(() => ebpf().progTestRun(fd, frame, { ifindex }));
    return r.retval === 2 ? 'drop' : 'pass';
  }

  /** Loads the programs again and swaps them in on every attached endpoint (atomic per hook). */
  replacePrograms(): number {
    this.checkOpen();
    const next = this.load();
    let n = 0;
    try {
      for (const att of this.attachments.values()) {
        this.attach(att, next);
        n++;
      }
    } catch (e) {
      this.closePrograms(next, true);
      throw e;
    }
    this.closePrograms(this.progs, false);
    this.progs = { ...next, mapFds: {} };
    this.closeMapFds(next.mapFds);
    return n;
  }

  flushConntrack(filter: ConntrackFilter = {}): number {
    this.checkOpen();
    return this.conntrack.flush(filter);
  }

  conntrackEntries(): [CtKey, CtValue][] {
    return this.conntrack.entries();
  }

  counters(endpointId?: number): Counter[] {
    const out: Counter[] = [];
    for (const [k, v] of this.metrics.lookupAllBatch()) {
      const key = decodeCounterKey(k);
      if (endpointId !== undefined && key.endpointId !== endpointId) continue;
      out.push({
        endpointId: key.endpointId,
        direction: key.direction === 0 ? 'ingress' : 'egress',
        reason: key.reason,
        reasonName: reasonName(key.reason),
        ...decodeCounterValue(v),
      });
    }
    return out;
  }

  /** Subscribes to drop and policy-verdict events (delivered on the event loop, in batches). */
  onEvents(listener: EventListener): EventSubscription {
    this.checkOpen();
    return this.events.subscribe(listener);
  }

  /** Drains pending events synchronously into the listeners. */
  pollEvents(): number {
    return this.events.poll();
  }

  /**
   * Dump-diff-repair of everything this agent manages: the ipcache, every open policy map,
   * the endpoint records and policy-map registrations of attached endpoints, and their
   * programs (re-attached if something removed them). Drift is logged at warn level.
   */
  repairAll(): DriftReport[] {
    this.checkOpen();
    return [this.ipcache.repair(), ...this.policy.repairAll(), this.repairEndpoints(), this.repairPrograms()];
  }

  private repairEndpoints(): DriftReport {
    let missing = 0;
    let changed = 0;
    for (const [endpointId, att] of this.attachments) {
      const want: EndpointRecord = { ifindex: att.ifindex, endpointId, identity: att.identity, lockedDown: this.lockdowns.has(endpointId) };
      const have = this.endpoints.get(att.ifindex);
      if (!have) missing++;
      else if (have.endpointId !== want.endpointId || have.identity !== want.identity || have.lockedDown !== want.lockedDown) changed++;
      else continue;
      this.endpoints.put(want);
    }
    for (const endpointId of this.attachments.keys()) {
      // Re-registers the endpoint's policy map in the hash-of-maps if it went missing.
      if (this.policy.ensureRegistered(endpointId)) missing++;
    }
    const report: DriftReport = { map: 'endpoints', missing, extra: 0, changed };
    if (missing + changed > 0) this.log.warn({ ...report }, 'datapath: endpoint records drifted; repaired');
    return report;
  }

  private repairPrograms(): DriftReport {
    let missing = 0;
    for (const att of this.attachments.values()) {
      if (this.targets(att).some((t) => native(() => ebpf().tcQuery(t.target)) === 0)) {
        missing++;
        this.attach(att, this.progs);
      }
    }
    const report: DriftReport = { map: 'programs', missing, extra: 0, changed: 0 };
    if (missing > 0) this.log.warn({ ...report }, 'datapath: endpoint programs were detached; re-attached');
    return report;
  }

  /** Runs repairAll every intervalMs (unref'd timer), logging drift; stopped by close(). */
  startRepairLoop(intervalMs: number): void {
    this.checkOpen();
    if (this.repairTimer) clearInterval(this.repairTimer);
    this.repairTimer = setInterval(() => {
      try {
        this.repairAll();
      } catch (e) {
        this.log.error({ err: e }, 'datapath: periodic repair failed');
      }
    }, intervalMs);
    this.repairTimer.unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.repairTimer) clearInterval(this.repairTimer);
    this.events.close();
    this.policy.close();
    this.ipcache.close();
    for (const m of [this.outer, this.metrics, this.ring]) m.close();
    this.endpoints.close();
    this.conntrack.close();
    this.closePrograms(this.progs, false);
  }

  private setLockdown(endpointId: number, on: boolean): void {
    if (on) this.lockdowns.add(endpointId);
    else this.lockdowns.delete(endpointId);
    for (const r of this.endpoints.byEndpoint(endpointId)) this.endpoints.put({ ...r, lockedDown: on });
    this.log.warn({ endpointId, lockdown: on }, on ? 'datapath: endpoint fails closed (policy map full)' : 'datapath: endpoint lockdown lifted');
  }

  private load(): Programs {
    const maxEntries: Record<string, number> = {};
    if (this.opts.ipcacheMaxEntries !== undefined) maxEntries.ward_ipcache = this.opts.ipcacheMaxEntries;
    if (this.opts.conntrackMaxEntries !== undefined) maxEntries.ward_ct = this.opts.conntrackMaxEntries;
    const obj = native(() => ebpf().loadObject(this.opts.objectPath ?? endpointObjectPath(), { pinRoot: this.opts.pinRoot, maxEntries }));
    const to = obj.programs.to_endpoint;
    const from = obj.programs.from_endpoint;
    if (to === undefined || from === undefined) throw new Error('program object lacks to_endpoint/from_endpoint');
    return { toEndpoint: to, fromEndpoint: from, mapFds: obj.maps };
  }

  private targets(att: Attachment): { target: TcTarget; which: 'to' | 'from' }[] {
    const base = { ifindex: att.ifindex, handle: TC_HANDLE, priority: TC_PRIORITY, ...(att.netns ? { netns: att.netns } : {}) };
    // Host-side veth egress = towards the endpoint (its ingress policy), and the reverse.
    return [
      { target: { ...base, attachPoint: 'egress' }, which: 'to' },
      { target: { ...base, attachPoint: 'ingress' }, which: 'from' },
    ];
  }

  private attach(att: Attachment, progs: Programs): void {
    for (const { target, which } of this.targets(att)) {
      native(() => ebpf().tcAttach(target, which === 'to' ? progs.toEndpoint : progs.fromEndpoint));
    }
  }

  private closePrograms(p: Programs, withMaps: boolean): void {
    ebpf().closeFd(p.toEndpoint);
    ebpf().closeFd(p.fromEndpoint);
    if (withMaps) this.closeMapFds(p.mapFds);
  }

  private closeMapFds(fds: Record<string, number>): void {
    for (const fd of Object.values(fds)) ebpf().closeFd(fd);
  }

  private checkOpen(): void {
    if (this.closed) throw new ClosedError('datapath is closed');
  }
}
