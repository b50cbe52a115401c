import { connect, createServer, type AddressInfo } from 'node:net';
import { httpRelay, transparentListen } from '../../../bpf/index.js';
import { Direction } from '../../../bpf/policy-map/types.js';
import { DEFAULT_CONNECTION_LIMITS, L7Proxy, type ConnectionLimits, type L7Decision, type L7Event } from '../../../agent/proxy/index.js';

const quiet = { info: () => undefined, warn: () => undefined, debug: () => undefined };

/** A free loopback port (for a listener made by the addon). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

export interface RelayProxy {
  /** Where clients connect. */
  readonly port: number;
  readonly proxy: L7Proxy;
  /** Every decision's event (only while `watch` was true). */
  readonly events: L7Event[];
  close(): void;
}

/**
 * The agent's L7Proxy on the native relay, on a real loopback listener from the addon whose
 * connections all go to 127.0.0.1:upstreamPort (a fixed upstream: no datapath steering here),
 * judged as ingress of endpoint `web` from identity 2 under `decision()`.
 */
export async function relayProxy(upstreamPort: number, opts: { limits?: Partial<ConnectionLimits>; decision?: () => L7Decision; watch?: boolean } = {}): Promise<RelayProxy> {
  const port = await freePort();
  const decision = opts.decision ?? ((): L7Decision => ({ kind: 'allow-all', reason: 'L4' }));
  const proxy = new L7Proxy(
    { decide: () => decision(), identityOf: () => 2, endpointIdentity: () => 1000 },
    { listen: () => transparentListen({ address: '127.0.0.1', port }), relay: httpRelay },
    quiet,
    { ...DEFAULT_CONNECTION_LIMITS, ...opts.limits },
  );
  const events: L7Event[] = [];
  if (opts.watch !== false) proxy.on('request', (e) => events.push(e));
  proxy.setListeners([{ proxyPort: 1, endpoint: 'web', direction: Direction.ingress, upstream: { address: '127.0.0.1', port: upstreamPort } }]);
  return { port, proxy, events, close: () => proxy.close() };
}

/**
 * Sends parts to 127.0.0.1:port (a pause of gapMs after each, when given; half-closes after the
 * last with endAfter) and collects everything until the connection closes. stallMs: stop reading
 * after the first bytes for that long, so the proxy's writes stay pending.
 */
export function exchange(port: number, parts: (string | Buffer)[], opts: { gapMs?: number; stallMs?: number; endAfter?: boolean } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    c.on('data', (d: Buffer) => {
      got.push(d);
      if (opts.stallMs !== undefined && got.length === 1) {
        c.pause();
        setTimeout(() => c.resume(), opts.stallMs);
      }
    });
    c.on('error', reject);
    c.on('close', () => resolve(Buffer.concat(got)));
    c.on('connect', () => {
      void (async () => {
        for (const p of parts) {
          c.write(p);
          if (opts.gapMs !== undefined) await new Promise((r) => setTimeout(r, opts.gapMs));
        }
        if (opts.endAfter === true) c.end();
      })();
    });
  });
}
