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
