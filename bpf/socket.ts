import { native } from './errors.js';
import { ebpf } from './napi/index.js';

/**
 * A listening TCP socket with IP_TRANSPARENT (for the L7 proxy), returned as an fd that Node
 * adopts with `net.createServer().listen({ fd })`. `netns` creates it inside that namespace.
 */
export function transparentListen(opts: { address?: string; port: number; backlog?: number; netns?: string }): number {
  return native(() => ebpf().transparentListen(opts));
}

/**
 * An unconnected TCP socket with SO_MARK `mark` (created in `netns`), as an fd that Node adopts
 * with `new net.Socket({ fd })` and then connects: the proxy's upstream connections.
 */
export function markedSocket(opts: { mark: number; netns?: string }): number {
  return native(() => ebpf().markedSocket(opts));
}

/**
 * One non-blocking send(2) of `bytes[start, end)` on a connected socket's fd: the number of bytes
 * the kernel took, or -errno (-11 = EAGAIN: its buffer is full). Not wrapped in `native()`: it is
 * on the L7 proxy's per-request path and reports socket errors by value.
 */
export function sendNow(fd: number, bytes: Uint8Array, start: number, end: number): number {
  return ebpf().sendNow(fd, bytes, start, end);
}
