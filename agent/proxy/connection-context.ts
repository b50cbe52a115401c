import type { OnReadOpts, Socket } from 'node:net';
import type { L7Decision } from './decision.js';
import { DEFAULT_LIMITS, type HeadLimits } from './http-head.js';

export interface ConnectionLimits extends HeadLimits {
  /** A started request head must be complete within this time (slowloris), ms. */
  readonly headTimeoutMs: number;
  /** An idle keep-alive client connection is closed after this, ms. */
  readonly idleTimeoutMs: number;
  /** The upstream must answer (or send more of an answer) within this, ms. */
  readonly upstreamTimeoutMs: number;
  /** Requests in flight (pipelined) before the proxy stops reading from the client. */
  readonly maxPipeline: number;
  /** Each side's reads land in a buffer of the connection's own, of this size (no allocation per read). */
  readonly readBufferBytes: number;
  /** A read that fills its buffer makes the next one 4x bigger, up to this. */
  readonly maxReadBufferBytes: number;
  /** Open connections per listener (one endpoint, direction and port); past it new ones are closed at once. */
  readonly maxConnectionsPerListener: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { ...DEFAULT_LIMITS, headTimeoutMs: 10_000, idleTimeoutMs: 120_000, upstreamTimeoutMs: 60_000, maxPipeline: 32, readBufferBytes: 4 * 1024, maxReadBufferBytes: 64 * 1024, maxConnectionsPerListener: 4096 };

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

/** What a connection needs from its listener: the current policy and a way to the destination. */
export interface ConnectionContext {
  /** The L7 decision for this connection's (endpoint, direction, remote identity, port) now. */
  decide(): L7Decision;
  /**
   * A socket connecting to the original destination, made with net.Socket's `onread` option:
   * its reads go straight to the proxy, without stream buffering.
   */
  connectUpstream(onread: OnReadOpts): Socket;
  onRequest(d: RequestDecision): void;
  /**
   * One non-blocking send of bytes[start, end) on a connected socket's fd (bytes taken, or
   * -errno). When given, writes go straight to the kernel while Node has nothing queued for that
   * socket, skipping the stream machinery; any rest goes through socket.write.
   */
  readonly send?: (fd: number, bytes: Uint8Array, start: number, end: number) => number;
  /**
   * When given and false, a decision is only counted (`count`): its details are built per
   * request, which matters only while someone watches.
   */
  watching?(): boolean;
  count?(verdict: Verdict): void;
  onError?(err: Error): void;
}
