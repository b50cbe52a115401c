import type { Direction } from '../../bpf/policy-map/types.js';
import type { L7Decision } from './decision.js';

/** The policy view the proxy asks, per request (so rule changes apply to the next request). */
export interface L7PolicySource {
  decide(endpoint: string, direction: Direction, remoteIdentity: number, port: number): L7Decision;
  /** Security identity of an IPv4 address (the agent's ipcache; world when unknown). */
  identityOf(ip: string): number;
  /** Identity of a local endpoint (the source of its egress traffic). */
  endpointIdentity(endpoint: string): number | undefined;
  /** The local endpoint with this IPv4 address, if any (an egress proxy's destination on this host). */
  localEndpointAt?(ip: string): string | undefined;
}

export interface ListenerSpec {
  readonly proxyPort: number;
  readonly endpoint: string;
  readonly direction: Direction;
  /** Forward to this address instead of each connection's original destination (tests). */
  readonly upstream?: { readonly address: string; readonly port: number };
}

export interface ConnectionLimits {
  /** Largest request head (request line + headers + CRLFCRLF), bytes: 431 past it. */
  readonly maxHeadBytes: number;
  /** Most header lines in a request head: 431 past it. */
  readonly maxHeaders: number;
  /** A started request head must be complete within this time (slowloris), ms. */
  readonly headTimeoutMs: number;
  /** An idle keep-alive client connection is closed after this, ms. */
  readonly idleTimeoutMs: number;
  /** The upstream must answer (or send more of an answer) within this, ms. */
  readonly upstreamTimeoutMs: number;
  /** Requests in flight (pipelined) before the proxy stops reading from the client. */
  readonly maxPipeline: number;
  /** Open connections per listener (one endpoint, direction and port); past it new ones are closed at once. */
  readonly maxConnectionsPerListener: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { maxHeadBytes: 16 * 1024, maxHeaders: 100, headTimeoutMs: 10_000, idleTimeoutMs: 120_000, upstreamTimeoutMs: 60_000, maxPipeline: 32, maxConnectionsPerListener: 4096 };

/** The body of the proxy's 403 answer. */
export const ACCESS_DENIED_BODY = 'Access denied\r\n';

/** One request decision, as reported to events and metrics. */
export interface RequestDecision {
  readonly verdict: 'allowed' | 'denied' | 'invalid';
  readonly method: string;
  readonly path: string;
  readonly host?: string;
  /** Status the proxy answered itself (403, 400...), absent when forwarded. */
  readonly status?: number;
  readonly reason: string;
}

export type Verdict = RequestDecision['verdict'];

/** One request decision for `ward monitor`. */
export interface L7Event extends RequestDecision {
  readonly timeMs: number;
  readonly endpoint: string;
  readonly direction: 'ingress' | 'egress';
  readonly sourceIdentity: number;
  readonly destinationIdentity: number;
  readonly source: string;
  readonly destination: string;
}

export interface VerdictCounts {
  readonly allowed: number;
  readonly denied: number;
  readonly invalid: number;
}

export interface L7Metrics {
  readonly listeners: number;
  readonly connections: number;
  readonly activeConnections: number;
  /** Request decisions, all directions. */
  readonly requests: VerdictCounts;
  /** The same, split by the direction of the listener that judged them. */
  readonly requestsByDirection: { readonly ingress: VerdictCounts; readonly egress: VerdictCounts };
  readonly upstreamErrors: number;
  /** Upstreams that left from the host's address (the client's 4-tuple was taken here). */
  readonly upstreamsFromHost: number;
  /** Connections closed at once because their listener had maxConnectionsPerListener open. */
  readonly refusedConnections: number;
}
