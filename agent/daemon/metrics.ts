import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { isDropReason, type DatapathPort } from '../../bpf/index.js';
import type { EndpointRecord } from '../endpoint/index.js';
import type { KvClient } from '../kvstore/index.js';
import type { L7Metrics } from '../proxy/index.js';
import { registerL7Metrics } from './metrics-l7.js';

/** The counters a WatchStore keeps (structural: any store's value type). */
export interface StoreCounters {
  readonly lists: number;
  readonly streamEnds: number;
  readonly invalidValues: number;
  readonly size: number;
}

/** What the agent's metrics read at scrape time. */
export interface MetricsView {
  readonly dp: DatapathPort;
  readonly kvClients: readonly Pick<KvClient, 'stats'>[];
  /** Watch stores by kind: identities, policies, endpoints, nodes. */
  readonly stores: Readonly<Record<string, StoreCounters>>;
  identities(): number;
  endpoints(): Iterable<EndpointRecord>;
  ipcacheEntries(): number;
  inSync(): boolean;
  /** The L7 proxy's own counters (absent: no L7 metrics). */
  readonly l7?: () => L7Metrics;
}

/** Most batches waiting for their first kernel write (older ones are dropped, not measured). */
const MAX_PENDING = 10_000;

/**
 * The agent's Prometheus metrics (own registry, prom-client). Gauges are read from the agent
 * at scrape time; the event counter and the latency histogram are fed as events arrive and
 * as flushes reach the kernel (`received` then `applied`).
 */
export class AgentMetrics {
  readonly registry = new Registry();
  private readonly events: Counter<'kind'>;
  private readonly latency: Histogram<'kind'>;
  private pending: { kind: string; at: bigint }[] = [];

  constructor(private readonly view: MetricsView) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'ward_' });
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({ name, help, registers: [r], collect: function (this: Gauge) { this.set(read()); } });
    };
    gauge('ward_identities', 'security identities known to this node (cluster-wide, from etcd)', () => view.identities());
    gauge('ward_endpoints', 'local endpoints of this node', () => [...view.endpoints()].length);
    gauge('ward_ipcache_entries', 'desired ipcache entries (prefix -> identity)', () => view.ipcacheEntries());
    gauge('ward_in_sync', '1 once every cache synced and every endpoint was programmed', () => (view.inSync() ? 1 : 0));
    new Gauge({
      name: 'ward_kvstore_entries',
      help: 'entries of each watched etcd prefix (identities, policies, endpoints, nodes)',
      labelNames: ['kind'],
      registers: [r],
      collect: function (this: Gauge<'kind'>) {
        for (const [kind, s] of Object.entries(view.stores)) this.set({ kind }, s.size);
      },
    });
    new Gauge({
      name: 'ward_policy_map_entries',
      help: "entries of each endpoint's policy map",
      labelNames: ['endpoint'],
      registers: [r],
      collect: function (this: Gauge<'endpoint'>) {
        this.reset();
        for (const { name, map } of maps()) this.set({ endpoint: name }, map.desired().size);
      },
    });
    new Gauge({
      name: 'ward_policy_map_pressure_ratio',
      help: "fill of each endpoint's policy map (entries / capacity; 1 or more: locked down)",
      labelNames: ['endpoint'],
      registers: [r],
      collect: function (this: Gauge<'endpoint'>) {
        this.reset();
        for (const { name, map } of maps()) this.set({ endpoint: name }, map.desired().size / map.capacity);
      },
    });
    new Gauge({
      name: 'ward_policy_map_locked_down',
      help: '1 for an endpoint whose policy does not fit its map (all its traffic dropped)',
      labelNames: ['endpoint'],
      registers: [r],
      collect: function (this: Gauge<'endpoint'>) {
        this.reset();
        for (const { name, map } of maps()) this.set({ endpoint: name }, map.lockedDown ? 1 : 0);
      },
    });
    const maps = function* (): Generator<{ name: string; map: NonNullable<ReturnType<DatapathPort['policy']['get']>> }> {
      for (const e of view.endpoints()) {
        const map = view.dp.policy.get(e.id);
        if (map !== undefined) yield { name: e.name, map };
      }
    };
    this.events = new Counter({ name: 'ward_kvstore_events_total', help: 'etcd watch events processed, by watched prefix', labelNames: ['kind'], registers: [r] });
    this.latency = new Histogram({
      name: 'ward_event_to_datapath_seconds',
      help: 'time from an etcd watch batch reaching the agent to the kernel maps being written',
      labelNames: ['kind'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [r],
    });
    new Counter({
      name: 'ward_etcd_errors_total',
      help: 'etcd calls that failed (timeouts, unavailable members, denials)',
      registers: [r],
      collect: function (this: Counter) {
        this.reset();
        this.inc(view.kvClients.reduce((n, c) => n + c.stats.errors, 0));
      },
    });
    const perStore = (name: string, help: string, read: (s: StoreCounters) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['kind'],
        registers: [r],
        collect: function (this: Counter<'kind'>) {
          this.reset();
          for (const [kind, s] of Object.entries(view.stores)) this.inc({ kind }, read(s));
        },
      });
    };
    perStore('ward_kvstore_resyncs_total', 'full re-lists of a watched prefix after the first (compaction, errors)', (s) => Math.max(0, s.lists - 1));
    perStore('ward_kvstore_watch_restarts_total', 'watch streams that ended or were replaced', (s) => s.streamEnds);
    perStore('ward_kvstore_invalid_values_total', 'etcd values that failed to decode (skipped)', (s) => s.invalidValues);
    const names = (): Map<number, string> => new Map([...view.endpoints()].map((e) => [e.id, e.name]));
    new Counter({
      name: 'ward_datapath_packets_total',
      help: 'packets seen by the endpoint programs, by endpoint, direction and verdict reason',
      labelNames: ['endpoint', 'direction', 'reason'],
      registers: [r],
      collect: function (this: Counter<'endpoint' | 'direction' | 'reason'>) {
        this.reset();
        const n = names();
        for (const c of view.dp.counters()) this.inc({ endpoint: n.get(c.endpointId) ?? String(c.endpointId), direction: c.direction, reason: c.reasonName }, c.packets);
      },
    });
    new Counter({
      name: 'ward_drops_total',
      help: 'packets dropped by the datapath on this node, by reason',
      labelNames: ['reason', 'direction'],
      registers: [r],
      collect: function (this: Counter<'reason' | 'direction'>) {
        this.reset();
        for (const c of view.dp.counters()) if (isDropReason(c.reason)) this.inc({ reason: c.reasonName, direction: c.direction }, c.packets);
      },
    });
    if (view.l7 !== undefined) registerL7Metrics(r, view.l7);
  }

  /** A watch batch of `count` events arrived (its latency runs until the next kernel write). */
  received(kind: string, count: number): void {
    if (count <= 0) return;
    this.events.inc({ kind }, count);
    if (this.pending.length >= MAX_PENDING) this.pending.shift();
    this.pending.push({ kind, at: process.hrtime.bigint() });
  }

  /** The flush that includes every batch received so far has been written to the kernel. */
  applied(): void {
    if (this.pending.length === 0) return;
    const now = process.hrtime.bigint();
    for (const p of this.pending) this.latency.observe({ kind: p.kind }, Number(now - p.at) / 1e9);
    this.pending = [];
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
