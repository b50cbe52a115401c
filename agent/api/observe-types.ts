/** JSON shapes of the observability API (`ward monitor`, `ward bpf ...`, `ward policy selectors`). */

/** One datapath event with endpoint and identities resolved (one NDJSON line of /v1/monitor). */
export interface MonitorEventJson {
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
