import { Socket, type OnReadOpts } from 'node:net';

interface StreamHandle {
  readonly useUserBuffer?: unknown;
  readonly fd?: unknown;
}

/** The fd under a connected net.Socket, or -1 (Node keeps it in `_handle.fd`). */
export function fdOf(s: Socket): number {
  const fd = (s as unknown as { _handle?: StreamHandle | null })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

/**
 * Re-wraps an accepted socket's handle in a Socket made with `onread`, so that its reads skip
 * the stream machinery (a server's sockets cannot be given `onread` otherwise). Uses what
 * net.Server itself uses: the `handle` constructor option and the `_handle` field. Returns
 * undefined, and the caller keeps the accepted socket and its 'data' events, when those are not
 * there or the socket has already read.
 */
export function withDirectReads(accepted: Socket, onread: OnReadOpts): Socket | undefined {
  const inner = accepted as unknown as { _handle?: StreamHandle | null };
  const handle = inner._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return undefined;
  if (accepted.destroyed || accepted.bytesRead !== 0 || accepted.readableLength !== 0) return undefined;
  // @types/node lists neither `handle` nor `onread` for the constructor; Node takes both.
  const opts = { handle, onread, readable: true, writable: true };
  const socket = new Socket(opts);
  // The old wrapper lets go of the handle; destroying it then only settles the server's connection count.
  inner._handle = null;
  accepted.destroy();
  return socket;
}
