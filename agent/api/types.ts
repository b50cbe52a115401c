/** JSON shapes of the local API (unix socket). The CLI imports only this file and client.ts. */

import type { TraceProtocol } from '../calc/index.js';
import type { EndpointRecord } from '../endpoint/index.js';

export type { TraceResult } from '../calc/index.js';

export interface AddEndpointRequest {
  readonly name: string;
  /** `k=v` or `source:k=v`. */
  readonly labels: readonly string[];
  /** Netns name (under /run/netns) or absolute path. */
  readonly netns: string;
  readonly ip?: string;
  /** Interface name inside the netns; default eth0 (CNI passes CNI_IFNAME). */
  readonly ifname?: string;
}

/** A local endpoint as the API shows it: the agent's record plus its datapath state. */
export interface EndpointJson extends EndpointRecord {
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
  /** The agent process's memory (bytes), as process.memoryUsage() reports it. */
  /** etcd round trips this agent made so far (both kvstore clients' call counters). */
  readonly etcdCalls?: number;
  readonly memory?: { readonly rss: number; readonly heapTotal: number; readonly heapUsed: number; readonly external: number; readonly arrayBuffers: number };
  /** The fullest endpoint policy map (none without endpoints). */
  readonly policyMapPressure?: { readonly endpoint: string; readonly entries: number; readonly capacity: number };
}

export interface ApiErrorJson {
  readonly error: string;
}

/** POST /v1/policy/trace: the same question as the offline `ward policy trace`, on live state. */
export interface TraceRequest {
  /** Local endpoint name, an IPv4 address (local or remote endpoint, node, CIDR), host, remote-node or world. */
  readonly from: string;
  readonly to: string;
  readonly dport: number;
  /** Default TCP. */
  readonly protocol?: TraceProtocol;
  readonly http?: { readonly method: string; readonly path: string; readonly host?: string; readonly headers: readonly (readonly [string, string])[] };
}
