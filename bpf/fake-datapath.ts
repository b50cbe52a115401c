import type { Counter, DatapathPort, EndpointAttachSpec } from './api.js';
import type { ConntrackFilter } from './conntrack/table.js';
import type { EndpointRecord } from './endpoint/table.js';
import type { DatapathEvent } from './events/layout.js';
import type { EventListener, EventSubscription } from './events/reader.js';
import { FakeIpcacheManager } from './ipcache/fake.js';
import { FakePolicyMapManager } from './policy-map/fake.js';
import type { DriftReport } from './sync/types.js';

/**
 * In-memory DatapathPort for callers' unit tests: no root, no kernel. Endpoints are recorded,
 * policy maps and the ipcache are the fakes (with their capacity and lockdown semantics), and
 * tests inject events with emit() and conntrack entries with addConntrack().
 */
export class FakeDatapath implements DatapathPort {
  readonly policy: FakePolicyMapManager;
  readonly ipcache = new FakeIpcacheManager();
  readonly endpoints = new Map<number, EndpointRecord & { ifname: string; netns?: string }>();
  /** Conntrack stand-in: endpoint id and peer address of each "connection". */
  readonly conntrack: { endpointId: number; peer: string }[] = [];
  readonly counterValues: Counter[] = [];
  private readonly listeners = new Set<EventListener>();
  private nextIfindex = 100;
  private closed = false;
  repairLoopMs: number | undefined;

  constructor(opts: { policyMapMaxEntries?: number } = {}) {
    this.policy = new FakePolicyMapManager(opts.policyMapMaxEntries);
  }

  attachEndpoint(spec: EndpointAttachSpec): EndpointRecord {
    this.check();
    this.policy.open(spec.endpointId);
    const prev = this.endpoints.get(spec.endpointId);
    const rec = {
      ifindex: prev?.ifindex ?? this.nextIfindex++,
      endpointId: spec.endpointId,
      identity: spec.identity,
      lockedDown: false,
      ifname: spec.ifname,
      ...(spec.netns ? { netns: spec.netns } : {}),
    };
    this.endpoints.set(spec.endpointId, rec);
    return { ifindex: rec.ifindex, endpointId: rec.endpointId, identity: rec.identity, lockedDown: this.policy.get(spec.endpointId)?.lockedDown ?? false };
  }

  detachEndpoint(endpointId: number): void {
    this.check();
    this.endpoints.delete(endpointId);
    this.flushConntrack({ endpointId });
  }

  sweepEndpoints(live: Iterable<number>): { endpoints: number; policyMaps: number } {
    const keep = new Set(live);
    let endpoints = 0;
    let policyMaps = 0;
    for (const id of [...this.endpoints.keys()]) {
      if (keep.has(id)) continue;
      this.detachEndpoint(id);
      endpoints++;
    }
    for (const id of this.policy.list()) {
      if (keep.has(id)) continue;
      this.policy.remove(id);
      policyMaps++;
    }
    return { endpoints, policyMaps };
  }

  setEndpointIdentity(endpointId: number, identity: number): void {
    const r = this.endpoints.get(endpointId);
    if (r) this.endpoints.set(endpointId, { ...r, identity });
  }

  addConntrack(endpointId: number, peer: string): void {
    this.conntrack.push({ endpointId, peer });
  }

  flushConntrack(filter: ConntrackFilter = {}): number {
    const before = this.conntrack.length;
    const keep = this.conntrack.filter((c) => (filter.endpointId !== undefined && c.endpointId !== filter.endpointId) || (filter.peer !== undefined && c.peer !== filter.peer));
    this.conntrack.splice(0, this.conntrack.length, ...keep);
    return before - keep.length;
  }

  counters(endpointId?: number): Counter[] {
    return this.counterValues.filter((c) => endpointId === undefined || c.endpointId === endpointId);
  }

  onEvents(listener: EventListener): EventSubscription {
    this.check();
    this.listeners.add(listener);
    return { close: () => void this.listeners.delete(listener) };
  }

  /** Delivers events to subscribers (as the ring-buffer reader would). */
  emit(events: readonly DatapathEvent[]): void {
    for (const l of [...this.listeners]) l(events);
  }

  repairAll(): DriftReport[] {
    return [this.ipcache.repair(), ...this.policy.repairAll()];
  }

  startRepairLoop(intervalMs: number): void {
    this.repairLoopMs = intervalMs;
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
  }

  private check(): void {
    if (this.closed) throw new Error('fake datapath is closed');
  }
}
