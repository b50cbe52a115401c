/** JSON shapes of the local API (unix socket). The CLI imports only this file and client.ts. */

export interface AddEndpointRequest {
  readonly name: string;
  /** `k=v` or `source:k=v`. */
  readonly labels: readonly string[];
  /** Netns name (under /run/netns) or absolute path. */
  readonly netns: string;
  readonly ip?: string;
}

export interface EndpointJson {
  readonly name: string;
  readonly id: number;
  readonly labels: readonly string[];
  readonly netns: string;
  readonly ifname: string;
  readonly ip: string;
  readonly identity: number;
  readonly createdAtMs: number;
  /** Policy map written and programs attached. */
  readonly programmed: boolean;
  /** Policy did not fit the map: all traffic of the endpoint is dropped. */
  readonly lockedDown: boolean;
  readonly policyEntries: number;
}

export interface SyncJson {
  readonly identities: boolean;
  readonly policies: boolean;
  readonly endpoints: boolean;
  readonly nodes: boolean;
}

export interface StatusJson {
  readonly node: string;
  readonly nodeIp: string;
  readonly endpointCidr: string;
  readonly etcd: { readonly endpoints: readonly string[]; readonly connected: boolean; readonly error?: string };
  readonly sync: SyncJson;
  /** Every cache synced once and the first flush programmed the local endpoints. */
  readonly inSync: boolean;
  /** etcd unreachable: enforcing the last known state (fail-static). */
  readonly degraded: boolean;
  readonly endpoints: number;
  readonly identities: number;
  readonly policies: number;
  readonly policyRevision: number;
  readonly ipcacheEntries: number;
  readonly lockedDownEndpoints: readonly string[];
  /** The fullest endpoint policy map (none without endpoints). */
  readonly policyMapPressure?: { readonly endpoint: string; readonly entries: number; readonly capacity: number };
}

export interface ApiErrorJson {
  readonly error: string;
}
