/** One local endpoint as the agent keeps it (state file, API). */
export interface EndpointRecord {
  readonly name: string;
  /** Datapath endpoint id (policy map ep_<id>), unique on this node. */
  readonly id: number;
  /** Labels as `source:key=value` strings (canonical order). */
  readonly labels: readonly string[];
  /** Network namespace path holding the workload side (`/run/netns/NAME` or any nsfs path). */
  readonly netns: string;
  /** Host-side veth. */
  readonly ifname: string;
  readonly ip: string;
  readonly identity: number;
  readonly createdAtMs: number;
}

/** Name of an endpoint: DNS-like, short, no `/` (it appears in etcd values and file names). */
export const ENDPOINT_NAME_RE = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;
