// A byte relay in Node in the L7 proxy's place, for `npm run bench:l7 -- --relay=node`: the same
// sockets as the agent's proxy (transparent listener with SO_MARK 0x100, upstream from the
// client's own address and port with SO_MARK 0x400, direct sends) and no HTTP work at all, so
// the bench shows what Node itself costs at that position. Usage: l7-node-relay.ts PORT (in
// the agent's network namespace); prints READY when listening.
import { createServer, Socket } from 'node:net';
import { proxyUpstream, sendNow, transparentListen } from '../../bpf/index.js';

const port = Number(process.argv[2]);

/** The fd under a connected net.Socket (Node internals: its handle). */
function fdOf(s: Socket): number {
  const fd = (s as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

const server = createServer({ noDelay: true }, (client) => {
  const source = { address: client.remoteAddress!, port: client.remotePort! };
  const destination = { address: client.localAddress!, port: client.localPort! };
  const { fd } = proxyUpstream({ mark: 0x400, source, destination });
  const clientFd = fdOf(client);
  const buffer = Buffer.allocUnsafe(64 * 1024);
  const onread = {
    buffer,
    callback: (n: number, b: Uint8Array): boolean => {
      const sent = client.writableLength === 0 ? sendNow(clientFd, b, 0, n) : 0;
      if (sent !== n) client.write(Buffer.from(b.subarray(Math.max(sent, 0), n)));
      return true;
    },
  };
  const upstream = new Socket({ fd, readable: true, writable: true, onread } as unknown as ConstructorParameters<typeof Socket>[0]);
  client.on('data', (d: Buffer) => {
    const sent = !upstream.connecting && upstream.writableLength === 0 ? sendNow(fd, d, 0, d.length) : 0;
    if (sent !== d.length) upstream.write(d.subarray(Math.max(sent, 0)));
  });
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('end', () => upstream.end());
  upstream.on('end', () => client.end());
});
server.listen({ fd: transparentListen({ address: '127.0.0.1', port, mark: 0x100 }) }, () => console.log('READY'));
