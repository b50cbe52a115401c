import type { ConntrackFilter } from './conntrack/table.js';
import type { EndpointRecord } from './endpoint/table.js';
import type { EventListener, EventSubscription } from './events/reader.js';
import type { IpcacheManager } from './ipcache/api.js';
import type { PolicyMapManager } from './policy-map/api.js';
import type { DriftReport } from './sync/types.js';

export interface EndpointAttachSpec {
  readonly endpointId: number;
  /** The endpoint's own security identity. */
  readonly identity: number;
  /** Host-side veth name. */
  readonly ifname: string;
  /** Network namespace (path) holding the host-side veth; default: the agent's own. */
  readonly netns?: string;
}

export interface Counter {
  readonly endpointId: number;
  readonly direction: 'ingress' | 'egress';
  readonly reason: number;
  readonly reasonName: string;
  readonly packets: number;
  readonly bytes: number;
}

/**
 * What the agent needs from the datapath. `Datapath` implements it on the kernel;
 * `FakeDatapath` in memory, for callers' unit tests.
 */
export interface DatapathPort {
  readonly policy: PolicyMapManager;
  readonly ipcache: IpcacheManager;
  /** Policy map (empty = deny all), endpoint record, then both programs. Idempotent. */
  attachEndpoint(spec: EndpointAttachSpec): EndpointRecord;
  /** Programs off, record and conntrack entries gone; the policy map stays (policy.remove drops it). */
  detachEndpoint(endpointId: number, where?: { ifname: string; netns?: string }): void;
  setEndpointIdentity(endpointId: number, identity: number): void;
  /** After a restart's resync: removes records and policy maps of endpoints not in `live`. */
  sweepEndpoints(live: Iterable<number>): { endpoints: number; policyMaps: number };
  flushConntrack(filter?: ConntrackFilter): number;
  counters(endpointId?: number): Counter[];
  onEvents(listener: EventListener): EventSubscription;
  repairAll(): DriftReport[];
  startRepairLoop(intervalMs: number): void;
  close(): void;
}
