import { native } from './errors.js';
import { ebpf, type ProxyUpstreamSpec } from './napi/index.js';

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
