import { Datapath, parsePolicyKeyString, type DatapathEvent, type DatapathPort, type EventSubscription } from '../../bpf/index.js';
import type { BpfPolicyEntryJson, BpfPolicyJson, CounterJson, CtEntryJson, IpcacheEntryJson, MonitorDatapathEventJson, MonitorEventJson, MonitorL7EventJson, SelectorJson } from '../api/observe-types.js';
import type { PolicyEngine } from '../calc/index.js';
import { EndpointNotFoundError, type EndpointRecord } from '../endpoint/index.js';
import type { MonitorQuery, ObserveHandler } from '../api/observe-routes.js';
import type { L7Event } from '../proxy/index.js';
import { L7Fanout, type L7RequestSource } from './l7-fanout.js';

const PROTOCOLS: Readonly<Record<number, string>> = { 0: 'ANY', 1: 'ICMP', 6: 'TCP', 17: 'UDP', 132: 'SCTP' };
const protoName = (p: number): string => PROTOCOLS[p] ?? String(p);

/** `ANY`, `80`, or the range a port prefix covers (`8000-8007`). */
function portsText(protocol: number, port: number, prefixLen: number): string {
  if (protocol === 0 || prefixLen === 0) return 'ANY';
  if (prefixLen >= 16) return String(port);
  const size = 2 ** (16 - prefixLen);
  return `${port}-${port + size - 1}`;
}

export interface ObserveSources {
  readonly dp: DatapathPort;
  readonly engine: PolicyEngine;
  /** This agent's local endpoints. */
  endpoints(): Iterable<EndpointRecord>;
  /** The L7 proxy's request decisions (subscribed only while a monitor wants them); absent: no L7 events. */
  readonly onL7Request?: L7RequestSource;
}

/**
 * Read-only views of the datapath and the policy engine for the observability API: kernel maps
 * with identities and endpoint names resolved, the selector cache, and the event stream
 * (datapath events and the L7 proxy's request decisions).
 */
export class Observer implements ObserveHandler {
  private readonly l7: L7Fanout | undefined;

  constructor(private readonly src: ObserveSources) {
    this.l7 = src.onL7Request === undefined ? undefined : new L7Fanout(src.onL7Request);
  }

  /** True while subscribed to the proxy's request events (some monitor wants L7 events). */
  get l7Subscribed(): boolean {
    return this.l7?.active === true;
  }

  private labelsOf(id: number): readonly string[] | undefined {
    return this.src.engine.selectorCache.identity(id)?.labels.toStrings();
  }

  private byId(): Map<number, EndpointRecord> {
    return new Map([...this.src.endpoints()].map((r) => [r.id, r]));
  }

  /** Local endpoint by name or numeric id (EndpointNotFoundError: 404). */
  private endpoint(ref: string): EndpointRecord {
    for (const r of this.src.endpoints()) if (r.name === ref || String(r.id) === ref) return r;
    throw new EndpointNotFoundError(`no endpoint ${JSON.stringify(ref)} on this node`);
  }

  bpfPolicy(ref: string): BpfPolicyJson {
    const r = this.endpoint(ref);
    const m = this.src.dp.policy.get(r.id);
    if (m === undefined) throw new EndpointNotFoundError(`endpoint ${r.name} has no policy map (not programmed)`);
    const kernel = m.dump();
    const desired = m.desired();
    const entries: BpfPolicyEntryJson[] = [];
    for (const key of new Set([...kernel.keys(), ...desired.keys()])) {
      const k = parsePolicyKeyString(key);
      const v = kernel.get(key) ?? desired.get(key)!;
      const labels = k.identity === 0 ? ['(any)'] : this.labelsOf(k.identity);
      entries.push({
        identity: k.identity,
        ...(labels !== undefined ? { labels } : {}),
        direction: k.direction === 0 ? 'ingress' : 'egress',
        protocol: protoName(k.protocol),
        ports: portsText(k.protocol, k.port, k.portPrefixLen),
        deny: v.deny,
        proxyPort: v.proxyPort,
        inKernel: kernel.has(key),
        desired: desired.has(key),
      });
    }
    entries.sort((a, b) => a.direction.localeCompare(b.direction) || a.identity - b.identity || a.protocol.localeCompare(b.protocol) || a.ports.localeCompare(b.ports));
    return { endpoint: r.name, id: r.id, capacity: m.capacity, lockedDown: m.lockedDown, entries };
  }

  ipcache(): IpcacheEntryJson[] {
    const out: IpcacheEntryJson[] = [];
    for (const [cidr, v] of this.src.dp.ipcache.dump()) {
      const labels = this.labelsOf(v.identity);
      out.push({ cidr, identity: v.identity, ...(labels !== undefined ? { labels } : {}), ...(v.nodeAddress !== undefined ? { nodeAddress: v.nodeAddress } : {}) });
    }
    return out.sort((a, b) => a.cidr.localeCompare(b.cidr, undefined, { numeric: true }));
  }

  /** Conntrack entries (only the kernel datapath has a table). */
  conntrack(ref?: string): CtEntryJson[] {
    const endpointId = ref === undefined ? undefined : this.endpoint(ref).id;
    const dp = this.src.dp;
    if (!(dp instanceof Datapath)) return [];
    const names = this.byId();
    const now = process.hrtime.bigint(); // CLOCK_MONOTONIC, like bpf_ktime_get_ns
    const out: CtEntryJson[] = [];
    for (const [k, v] of dp.conntrack.entries()) {
      if (endpointId !== undefined && k.endpointId !== endpointId) continue;
      const name = names.get(k.endpointId)?.name;
      out.push({
        endpointId: k.endpointId,
        ...(name !== undefined ? { endpoint: name } : {}),
        direction: k.direction === 0 ? 'ingress' : 'egress',
        protocol: protoName(k.protocol),
        saddr: k.saddr,
        sport: k.sport,
        daddr: k.daddr,
        dport: k.dport,
        remoteIdentity: v.remoteIdentity,
        packets: Number(v.packets),
        bytes: Number(v.bytes),
        idleSeconds: now > v.lastSeenNs ? Math.round(Number(now - v.lastSeenNs) / 1e6) / 1e3 : 0,
        closing: (v.flags & 1) !== 0,
        proxyPort: v.proxyPort,
      });
    }
    return out.sort((a, b) => a.endpointId - b.endpointId || a.saddr.localeCompare(b.saddr) || a.sport - b.sport);
  }

  selectors(): SelectorJson[] {
    const out: SelectorJson[] = [];
    for (const cs of this.src.engine.selectorCache.cachedSelectors()) {
      const identities = [...cs.selections].sort((a, b) => a - b).map((id) => ({ id, labels: this.labelsOf(id) ?? [] }));
      const users = [...cs.users].map((u) => ('id' in u && typeof u.id === 'string' ? u.id : '?')).sort();
      out.push({ selector: cs.canonical, identities, users });
    }
    return out.sort((a, b) => a.selector.localeCompare(b.selector));
  }

  counters(): CounterJson[] {
    const names = this.byId();
    return this.src.dp.counters().map((c) => {
      const name = names.get(c.endpointId)?.name;
      return { endpointId: c.endpointId, ...(name !== undefined ? { endpoint: name } : {}), direction: c.direction, reason: c.reasonName, packets: c.packets, bytes: c.bytes };
    });
  }

  resolveEvent(e: DatapathEvent, names: Map<number, EndpointRecord>): MonitorDatapathEventJson {
    const ep = names.get(e.endpointId);
    const remoteLabels = this.labelsOf(e.remoteIdentity);
    return {
      type: e.type,
      reason: e.reason,
      reasonName: e.reasonName,
      direction: e.direction,
      endpointId: e.endpointId,
      ...(ep !== undefined ? { endpoint: ep.name, identity: ep.identity, labels: ep.labels } : {}),
      remoteIdentity: e.remoteIdentity,
      ...(remoteLabels !== undefined ? { remoteLabels } : {}),
      protocol: protoName(e.protocol),
      saddr: e.saddr,
      sport: e.sport,
      daddr: e.daddr,
      dport: e.dport,
      length: e.length,
      proxyPort: e.proxyPort,
    };
  }

  resolveL7Event(e: L7Event): MonitorL7EventJson {
    let ep: EndpointRecord | undefined;
    for (const r of this.src.endpoints()) {
      if (r.name !== e.endpoint) continue;
      ep = r;
      break;
    }
    const sourceLabels = this.labelsOf(e.sourceIdentity);
    const destinationLabels = this.labelsOf(e.destinationIdentity);
    return {
      type: 'l7',
      timeMs: e.timeMs,
      endpoint: e.endpoint,
      ...(ep !== undefined ? { endpointId: ep.id, identity: ep.identity, labels: ep.labels } : {}),
      direction: e.direction,
      sourceIdentity: e.sourceIdentity,
      ...(sourceLabels !== undefined ? { sourceLabels } : {}),
      destinationIdentity: e.destinationIdentity,
      ...(destinationLabels !== undefined ? { destinationLabels } : {}),
      source: e.source,
      destination: e.destination,
      method: e.method,
      path: e.path,
      ...(e.host !== undefined ? { host: e.host } : {}),
      verdict: e.verdict,
      ...(e.status !== undefined ? { status: e.status } : {}),
      reason: e.reason,
    };
  }

  /**
   * Subscribes to datapath and L7 events matching `q`, resolved (no type: both). The datapath's
   * ring and the proxy's events are only subscribed while some monitor wants them. Close the
   * subscription to stop (idempotent).
   */
  monitor(q: MonitorQuery, cb: (e: MonitorEventJson) => void): EventSubscription {
    const ep = q.endpoint === undefined ? undefined : this.endpoint(q.endpoint);
    const subs: EventSubscription[] = [];
    if (q.type !== 'l7') {
      subs.push(
        this.src.dp.onEvents((events) => {
          const names = this.byId();
          for (const e of events) {
            if (q.type !== undefined && e.type !== q.type) continue;
            if (ep !== undefined && e.endpointId !== ep.id) continue;
            cb(this.resolveEvent(e, names));
          }
        }),
      );
    }
    if ((q.type === undefined || q.type === 'l7') && this.l7 !== undefined) {
      subs.push(
        this.l7.subscribe((e) => {
          if (ep === undefined || e.endpoint === ep.name) cb(this.resolveL7Event(e));
        }),
      );
    }
    return { close: () => subs.splice(0).forEach((s) => s.close()) };
  }
}
