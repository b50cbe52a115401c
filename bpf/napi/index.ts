import { createRequire } from 'node:module';
import { AddonLoadError } from '../errors.js';
import { addonPath } from '../paths.js';

/**
 * Typed surface of the ebpf-napi addon (bpf/napi/src/*.cc). All calls are synchronous and
 * throw an Error with `errno`, `code` and `syscall` (convert with `toBpfError`). fds are plain
 * numbers owned by the caller: close them with `closeFd`.
 */
export interface MapCreateSpec {
  type: number;
  name?: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  innerMapFd?: number;
}

export interface NativeMapInfo {
  id: number;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

export interface TcTarget {
  /** Path of the network namespace (e.g. /run/netns/x); omitted = the caller's namespace. */
  netns?: string;
  ifindex: number;
  attachPoint: 'ingress' | 'egress';
  handle?: number;
  priority?: number;
}

export interface LoadedObject {
  programs: Record<string, number>;
  maps: Record<string, number>;
}

export interface RingBufferReaderNative {
  close(): void;
  /** Drains synchronously (delivering to the callback); returns the number of events. */
  consume(): number;
}

export interface SocketAddress {
  address: string;
  port: number;
}

export interface ProxyUpstreamSpec {
  mark: number;
  netns?: string;
  /** Bound with IP_TRANSPARENT; when that 4-tuple is taken, the host's own address is used. */
  source: SocketAddress;
  destination: SocketAddress;
}

/** Limits of the native L7 data path (see ConnectionLimits in agent/proxy/types.ts for their meaning). */
export interface HttpRelayLimits {
  maxHeadBytes?: number;
  maxHeaders?: number;
  headTimeoutMs?: number;
  idleTimeoutMs?: number;
  upstreamTimeoutMs?: number;
  maxPipeline?: number;
  maxConnectionsPerListener?: number;
}

export interface HttpRelayOptions {
  /** Where upstream sockets are made (default: the agent's namespace). */
  netns?: string;
  limits?: HttpRelayLimits;
  /** A connection accepted on `listener`; false closes it at once. */
  onAccept(listener: number, conn: number, srcAddress: string, srcPort: number, dstAddress: string, dstPort: number): boolean;
  /**
   * One request head: the upstream mark (>= 0) when allowed, -1 when denied, -2 to be asked
   * again with `headers` (name, value, name, value...). The callee records the decision.
   * `needsUpstream`: a new upstream will be made for it with the returned mark. 2^32 added to
   * an allowed answer, or -3 for a denial: the verdict holds for every request of the
   * connection with the same method, path and host until invalidate() (the relay then counts
   * them in stats().cachedVerdicts without asking).
   */
  decide(conn: number, method: string, path: string, host: string | undefined, headers: string[] | null, needsUpstream: boolean): number;
  /** A request the relay answered itself (400, 408, 431, 501, 505). */
  onInvalid(conn: number, status: number, reason: string, method: string, path: string, host: string | undefined): void;
  onClose(conn: number): void;
  onError(conn: number, message: string): void;
}

export interface HttpRelayStats {
  connections: number;
  activeConnections: number;
  refusedConnections: number;
  upstreamErrors: number;
  upstreamsFromHost: number;
  /** Decisions taken from the relay's cache: ingress allowed, ingress denied, egress allowed, egress denied. */
  cachedVerdicts: [number, number, number, number];
}

export interface HttpRelayNative {
  /**
   * Accepts on a listening socket (the relay owns the fd from now on); `tag` 0 = ingress, 1 =
   * egress (cached verdict counters). With `upstream`, connections go there instead of to their
   * original destination (a listener that is not transparent: tests).
   */
  listen(fd: number, tag: number, upstream?: SocketAddress): number;
  /** Closes that listener; its open connections stay. */
  unlisten(listener: number): void;
  stats(): HttpRelayStats;
  /** The policy changed: no verdict cached before is used again. */
  invalidate(): void;
  /** While on, every request goes to decide() (its event is wanted); none is served from the cache. */
  watch(on: boolean): void;
  /** Idempotent: closes every connection and listener; no callback after it. */
  close(): void;
}

export type HttpFraming = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

export type HttpParseResult<T> = { kind: 'incomplete' } | { kind: 'error'; status: number; reason: string } | { kind: 'ok'; head: T };

export interface HttpRequestHeadNative {
  method: string;
  /** Without query or fragment (what policy matches). */
  path: string;
  target: string;
  version: '1.0' | '1.1';
  host?: string;
  headers: [string, string][];
  framing: HttpFraming;
  close: boolean;
  upgrade: boolean;
  headBytes: number;
}

export interface HttpResponseHeadNative {
  status: number;
  close: boolean;
  headBytes: number;
  /** Given the request method; absent when ambiguous (framingError says why). */
  framing?: HttpFraming;
  framingError?: string;
}

export interface EbpfNapi {
  loadObject(path: string, opts: { pinRoot: string; maxEntries?: Record<string, number> }): LoadedObject;
  mapCreate(spec: MapCreateSpec): number;
  mapInfo(fd: number): NativeMapInfo;
  progInfo(fd: number): { id: number; type: number; name: string };
  objPin(fd: number, path: string): void;
  objGet(path: string): number;
  closeFd(fd: number): void;
  mapLookup(fd: number, key: Uint8Array, valueOut: Uint8Array): boolean;
  mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags?: number): void;
  mapDelete(fd: number, key: Uint8Array): boolean;
  mapGetNextKey(fd: number, key: Uint8Array | null, nextOut: Uint8Array): boolean;
  /** Throws with `.count` = elements done when it fails part way. */
  mapUpdateBatch(fd: number, keys: Uint8Array, values: Uint8Array, count: number, elemFlags?: number): number;
  mapDeleteBatch(fd: number, keys: Uint8Array, count: number): number;
  mapLookupBatch(
    fd: number,
    inBatch: Uint8Array | null,
    outBatch: Uint8Array,
    keys: Uint8Array,
    values: Uint8Array,
    count: number,
  ): { count: number; done: boolean };
  numPossibleCpus(): number;
  /** BPF_PROG_TEST_RUN on a synthetic frame; ifindex = device the skb claims (1 = lo). */
  progTestRun(progFd: number, packet: Uint8Array, opts?: { ifindex?: number; repeat?: number }): { retval: number; durationNs: number };
  tcAttach(target: TcTarget, progFd: number): void;
  tcDetach(target: TcTarget): boolean;
  tcQuery(target: TcTarget): number;
  ifNameToIndex(name: string, netns?: string): number;
  transparentListen(opts: { address?: string; port: number; backlog?: number; netns?: string; mark?: number }): number;
  /** `transparent` false: the source was taken, the socket leaves from the host's address. */
  proxyUpstream(opts: ProxyUpstreamSpec): { fd: number; transparent: boolean };
  /** One non-blocking send(2) of bytes[start, end) on fd: bytes written, or -errno (never throws on a socket error). */
  sendNow(fd: number, bytes: Uint8Array, start: number, end: number): number;
  HttpRelay: new (opts: HttpRelayOptions) => HttpRelayNative;
  /** The relay's own parser, for its tests. */
  httpParseRequest(bytes: Uint8Array, withHeaders: boolean): HttpParseResult<HttpRequestHeadNative>;
  httpParseResponse(bytes: Uint8Array, requestMethod: string): HttpParseResult<HttpResponseHeadNative>;
  httpFrameBody(kind: 'length' | 'chunked', length: number, chunks: Uint8Array[]): { consumed: number; done: boolean; error?: string }[];
  RingBufferReader: new (mapFd: number, callback: (events: Buffer[]) => void) => RingBufferReaderNative;
}

let cached: EbpfNapi | undefined;

/** Loads the addon once (from bpf/napi/build/Release, found from the repo root). */
export function ebpf(): EbpfNapi {
  if (cached) return cached;
  const path = addonPath();
  try {
    cached = createRequire(import.meta.url)(path) as EbpfNapi;
  } catch (e) {
    throw new AddonLoadError(`cannot load ebpf-napi from ${path} (run npm run build:bpf)`, { cause: e });
  }
  return cached;
}

/** BPF map types and flags ward uses (uapi values). */
export const MapType = { hash: 1, array: 2, lruHash: 9, lpmTrie: 11, hashOfMaps: 13, ringbuf: 27 } as const;
export const MapFlags = { noPrealloc: 1 } as const;
export const UpdateFlags = { any: 0, noExist: 1, exist: 2 } as const;
