/** JSON shapes of the observability API (`ward monitor`, `ward bpf ...`, `ward policy selectors`). */

/** Event types of /v1/monitor: datapath `drop` and `policy-verdict`, and `l7` (HTTP proxy request decisions). */
export const MONITOR_EVENT_TYPES = ['drop', 'policy-verdict', 'l7'] as const;
export type MonitorEventType = (typeof MONITOR_EVENT_TYPES)[number];
export const isMonitorType = (t: string): t is MonitorEventType => (MONITOR_EVENT_TYPES as readonly string[]).includes(t);

/** One datapath event with endpoint and identities resolved. */
export interface MonitorDatapathEventJson {
  readonly type: 'drop' | 'policy-verdict';
  readonly reason: number;
  readonly reasonName: string;
  readonly direction: 'ingress' | 'egress';
  readonly endpointId: number;
  /** Local endpoint name, when the id is one of this agent's endpoints. */
  readonly endpoint?: string;
  readonly identity?: number;
  readonly labels?: readonly string[];
  readonly remoteIdentity: number;
  /** Labels of the remote identity, when this node knows it. */
  readonly remoteLabels?: readonly string[];
  readonly protocol: string;
  readonly saddr: string;
  readonly sport: number;
  readonly daddr: string;
  readonly dport: number;
  readonly length: number;
  readonly proxyPort: number;
}

/** One request decision of the L7 (HTTP) proxy, identities resolved. */
export interface MonitorL7EventJson {
  readonly type: 'l7';
  /** Wall clock (ms since the epoch) of the decision. */
  readonly timeMs: number;
  /** The local endpoint whose policy was applied (the server for ingress, the client for egress). */
  readonly endpoint: string;
  /** Its id, identity and labels, while it is one of this agent's endpoints. */
  readonly endpointId?: number;
  readonly identity?: number;
  readonly labels?: readonly string[];
  readonly direction: 'ingress' | 'egress';
  readonly sourceIdentity: number;
  readonly sourceLabels?: readonly string[];
  readonly destinationIdentity: number;
  readonly destinationLabels?: readonly string[];
  /** `ip:port` of the client, and the original destination. */
  readonly source: string;
  readonly destination: string;
  readonly method: string;
  /** Path the rules matched (no query); empty when the request could not be parsed. */
  readonly path: string;
  readonly host?: string;
  /** invalid: refused before any policy applied (unparseable, unsupported). */
  readonly verdict: 'allowed' | 'denied' | 'invalid';
  /** Status the proxy answered itself (403, 400, 501...); absent when forwarded. */
  readonly status?: number;
  readonly reason: string;
}

/** One NDJSON line of /v1/monitor. */
export type MonitorEventJson = MonitorDatapathEventJson | MonitorL7EventJson;

export interface BpfPolicyEntryJson {
  readonly identity: number;
  readonly labels?: readonly string[];
  readonly direction: 'ingress' | 'egress';
  /** ANY, TCP, UDP, ICMP, SCTP. */
  readonly protocol: string;
  /** `ANY`, `80`, or a masked range `8000-8007`. */
  readonly ports: string;
  readonly deny: boolean;
  readonly proxyPort: number;
  /** In the kernel map now / wanted by the policy engine (both true when in sync). */
  readonly inKernel: boolean;
  readonly desired: boolean;
}

export interface BpfPolicyJson {
  readonly endpoint: string;
  readonly id: number;
  readonly capacity: number;
  readonly lockedDown: boolean;
  readonly entries: readonly BpfPolicyEntryJson[];
}

export interface IpcacheEntryJson {
  readonly cidr: string;
  readonly identity: number;
  readonly labels?: readonly string[];
  readonly nodeAddress?: string;
}

export interface CtEntryJson {
  readonly endpointId: number;
  readonly endpoint?: string;
  readonly direction: 'ingress' | 'egress';
  readonly protocol: string;
  readonly saddr: string;
  readonly sport: number;
  readonly daddr: string;
  readonly dport: number;
  readonly remoteIdentity: number;
  readonly packets: number;
  readonly bytes: number;
  /** Seconds since the last packet (monotonic clock). */
  readonly idleSeconds: number;
  readonly closing: boolean;
  readonly proxyPort: number;
}

export interface SelectorJson {
  readonly selector: string;
  readonly identities: readonly { readonly id: number; readonly labels: readonly string[] }[];
  /** Endpoints whose policy uses the selector. */
  readonly users: readonly string[];
}

export interface CounterJson {
  readonly endpointId: number;
  readonly endpoint?: string;
  readonly direction: 'ingress' | 'egress';
  readonly reason: string;
  readonly packets: number;
  readonly bytes: number;
}
