import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { transparentListen } from '../../bpf/index.js';
import { Direction } from '../../bpf/policy-map/types.js';
import { DEFAULT_CONNECTION_LIMITS, L7Proxy } from '../../agent/proxy/index.js';

const quiet = { info: () => undefined, warn: () => undefined, debug: () => undefined };

/** A loopback port for the listener; the spec's proxy port differs so connections count as steered. */
async function port(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

describe('L7 proxy connection limit (real IP_TRANSPARENT listener from the addon)', () => {
  it('closes connections past maxConnectionsPerListener at once and counts them; the others stay open', async () => {
    const listenPort = await port();
    const proxy = new L7Proxy(
      { decide: () => ({ kind: 'allow-all', reason: 'test' }), identityOf: () => 2, endpointIdentity: () => 1000 },
      { listen: () => transparentListen({ address: '127.0.0.1', port: listenPort }), upstream: () => { throw new Error('no upstream in this test'); } },
      quiet,
      { ...DEFAULT_CONNECTION_LIMITS, maxConnectionsPerListener: 2 },
    );
    const clients: Socket[] = [];
    try {
      proxy.setListeners([{ proxyPort: 1, endpoint: 'web', direction: Direction.ingress }]);
      const open = async (): Promise<{ socket: Socket; closed: Promise<void> }> => {
        const socket = connect(listenPort, '127.0.0.1');
        clients.push(socket);
        socket.on('error', () => undefined);
        const closed = new Promise<void>((r) => socket.once('close', () => r()));
        await new Promise((r) => socket.once('connect', r));
        return { socket, closed };
      };
      const a = await open();
      const b = await open();
      // The proxy has taken both (accepts run in order) before the third arrives.
      for (let i = 0; i < 400 && proxy.metrics().activeConnections < 2; i++) await new Promise((r) => setTimeout(r, 5));
      const c = await open();
      await c.closed; // closed by the proxy, without a request
      expect(proxy.metrics()).toMatchObject({ activeConnections: 2, connections: 2, refusedConnections: 1 });
      expect(a.socket.destroyed || b.socket.destroyed).toBe(false);
      a.socket.destroy();
      await a.closed;
      for (let i = 0; i < 400 && proxy.metrics().activeConnections > 1; i++) await new Promise((r) => setTimeout(r, 5));
      const d = await open(); // room again
      for (let i = 0; i < 400 && proxy.metrics().activeConnections < 2; i++) await new Promise((r) => setTimeout(r, 5));
      expect(d.socket.destroyed).toBe(false);
      expect(proxy.metrics()).toMatchObject({ activeConnections: 2, connections: 3, refusedConnections: 1 });
    } finally {
      for (const s of clients) s.destroy();
      proxy.close();
    }
  });
});
