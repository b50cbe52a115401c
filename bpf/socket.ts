import { native } from './errors.js';
import { ebpf, type HttpParseResult, type HttpRelayNative, type HttpRelayOptions, type HttpRequestHeadNative, type HttpResponseHeadNative, type ProxyUpstreamSpec } from './napi/index.js';

/**
 * A listening TCP socket with IP_TRANSPARENT (for the L7 proxy), returned as an fd that Node
 * adopts with `net.createServer().listen({ fd })`. `netns` creates it inside that namespace;
 * `mark` (SO_MARK) is carried by every packet of the connections it accepts.
 */
export function transparentListen(opts: { address?: string; port: number; backlog?: number; netns?: string; mark?: number }): number {
  return native(() => ebpf().transparentListen(opts));
}

/**
 * The proxy's upstream connection: a TCP socket (in `netns`) with SO_MARK `mark`, bound with
 * IP_TRANSPARENT to `source` (the proxied client's address and port, so the destination sees
 * the client), its non-blocking connect to `destination` started. When that 4-tuple is taken
 * in the namespace (an earlier upstream in TIME_WAIT), it leaves from the host's address
 * instead (`transparent: false`). The fd is for Node: `new net.Socket({ fd })`.
 */
export function proxyUpstream(opts: ProxyUpstreamSpec): { fd: number; transparent: boolean } {
  return native(() => ebpf().proxyUpstream(opts));
}

/**
 * One non-blocking send(2) of `bytes[start, end)` on a connected socket's fd: the number of bytes
 * the kernel took, or -errno (-11 = EAGAIN: its buffer is full). Not wrapped in `native()`: it is
 * on the L7 proxy's per-request path and reports socket errors by value.
 */
export function sendNow(fd: number, bytes: Uint8Array, start: number, end: number): number {
  return ebpf().sendNow(fd, bytes, start, end);
}

/**
 * The L7 proxy's native data path (bpf/napi/src/http-relay.cc): accepts on the listeners it is
 * given, frames HTTP/1.x, forwards allowed requests over upstreams it makes like
 * `proxyUpstream`, answers the others itself, and asks `decide` once per request head.
 */
export function httpRelay(opts: HttpRelayOptions): HttpRelayNative {
  return native(() => new (ebpf().HttpRelay)(opts));
}

/** The relay's HTTP/1.x request parser (strict: anything ambiguous is an error), for tests and tools. */
export function parseHttpRequest(bytes: Uint8Array, withHeaders = true): HttpParseResult<HttpRequestHeadNative> {
  return ebpf().httpParseRequest(bytes, withHeaders);
}

/** The relay's response parser; `framing` is given for a request of `requestMethod`. */
export function parseHttpResponse(bytes: Uint8Array, requestMethod = 'GET'): HttpParseResult<HttpResponseHeadNative> {
  return ebpf().httpParseResponse(bytes, requestMethod);
}

/** Feeds `chunks` in turn to the relay's body framer; one step per chunk. */
export function frameHttpBody(kind: 'length' | 'chunked', length: number, chunks: Uint8Array[]): { consumed: number; done: boolean; error?: string }[] {
  return ebpf().httpFrameBody(kind, length, chunks);
}
