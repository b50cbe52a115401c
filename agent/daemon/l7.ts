import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { httpRelay, transparentListen } from '../../bpf/index.js';
import { Direction, Protocol } from '../../bpf/policy-map/types.js';
import type { DesiredEntry, FlushResult, PolicyEngine } from '../calc/index.js';
import { l7Decision, L7Proxy, MARK_PROXY_ANSWER, MARK_TO_PROXY, ProxyPortAllocator, type L7Decision, type L7Event, type L7Metrics, type ListenerSpec, type ProxySockets } from '../proxy/index.js';
import type { Logger } from './logger.js';

const run = promisify(execFile);

/** Routing table of the local route that delivers steered (fwmark 0x200) packets to the proxy. */
export const PROXY_ROUTE_TABLE = 100;

interface EndpointL7 {
  entries: readonly DesiredEntry[] | undefined;
  readonly decisions: Map<string, L7Decision>;
  listeners: ListenerSpec[];
}

export interface L7Deps {
  readonly engine: () => PolicyEngine;
  readonly identityOf: (ip: string) => number;
  readonly endpointIdentity: (endpoint: string) => number | undefined;
  /** The local endpoint with this address (an egress proxy's destination on this host). */
  readonly localEndpointAt?: (ip: string) => string | undefined;
  readonly hostNetns?: string;
  readonly logger: Logger;
  /** Injected sockets (tests); default: transparent listeners and marked sockets in hostNetns. */
  readonly sockets?: ProxySockets;
}

/**
 * The agent's L7 part: allocates proxy ports for the policy engine, keeps one proxy listener per
 * (endpoint, direction, port) with HTTP rules, and answers the proxy's per-request questions
 * from the engine's current desired entries (cached per endpoint until a flush touches it).
 * `update(flush)` must run before the flush is written to the kernel, so a steering entry never
 * points at a port without a listener.
 */
export class L7Service {
  readonly ports = new ProxyPortAllocator();
  readonly proxy: L7Proxy;
  private readonly endpoints = new Map<string, EndpointL7>();
  private readonly log: Logger;

  constructor(private readonly deps: L7Deps) {
    this.log = deps.logger;
    const netns = deps.hostNetns;
    const inNetns = netns !== undefined ? { netns } : {};
    const sockets: ProxySockets = deps.sockets ?? {
      listen: (port) => transparentListen({ address: '127.0.0.1', port, mark: MARK_PROXY_ANSWER, ...inNetns }),
      relay: (opts) => httpRelay({ ...opts, ...inNetns }),
    };
    this.proxy = new L7Proxy(
      {
        decide: (ep, dir, remote, port) => this.decide(ep, dir, remote, port),
        identityOf: deps.identityOf,
        endpointIdentity: deps.endpointIdentity,
        localEndpointAt: (ip) => deps.localEndpointAt?.(ip),
      },
      sockets,
      this.log,
    );
    if (this.log.isLevelEnabled('debug')) this.proxy.on('request', (e) => this.log.debug({ ...e }, 'l7 request'));
  }

  /** The fwmark rule and local route that deliver steered packets to the listeners (idempotent). */
  async setupRouting(): Promise<void> {
    const ip = (args: string[]): Promise<{ stdout: string }> => (this.deps.hostNetns === undefined ? run('ip', args) : run('nsenter', [`--net=${this.deps.hostNetns}`, 'ip', ...args]));
    const mark = `0x${MARK_TO_PROXY.toString(16)}/0x${MARK_TO_PROXY.toString(16)}`;
    const rules = (await ip(['rule', 'show'])).stdout;
    if (!rules.includes(`fwmark ${mark} lookup ${PROXY_ROUTE_TABLE}`)) await ip(['rule', 'add', 'fwmark', mark, 'lookup', String(PROXY_ROUTE_TABLE), 'pref', '90']);
    await ip(['route', 'replace', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', String(PROXY_ROUTE_TABLE)]);
    await ip(['link', 'set', 'lo', 'up']);
    // The proxy's sockets own the original 4-tuples of ingress-proxied flows in this namespace:
    // with early demux, a packet of such a flow still on its way (client -> host -> server veth,
    // where it is hairpinned) would pick up that socket and ip_forward would drop it.
    const sysctl = ['sysctl', '-q', '-w', 'net.ipv4.ip_early_demux=0'];
    await (this.deps.hostNetns === undefined ? run(sysctl[0]!, sysctl.slice(1)) : run('nsenter', [`--net=${this.deps.hostNetns}`, ...sysctl]));
  }

  /** Takes a flush's changed endpoints: drops their cached decisions, syncs listeners and ports. */
  update(res: Pick<FlushResult, 'endpoints' | 'removedEndpoints'>, all = false): void {
    const engine = this.deps.engine();
    const touched = all ? engine.endpointIds() : [...res.endpoints.keys()];
    for (const name of touched) {
      const view = engine.endpoint(name);
      if (view === undefined) {
        this.endpoints.delete(name);
        continue;
      }
      const listeners = new Map<number, ListenerSpec>();
      for (const e of view.entries) if (!e.entry.deny && e.entry.proxyPort !== 0) listeners.set(e.entry.proxyPort, { proxyPort: e.entry.proxyPort, endpoint: name, direction: e.key.direction });
      const cur = this.endpoints.get(name);
      if (listeners.size === 0 && cur === undefined) continue;
      this.endpoints.set(name, { entries: undefined, decisions: new Map(), listeners: [...listeners.values()] });
    }
    for (const name of res.removedEndpoints) this.endpoints.delete(name);
    if (touched.length > 0 || res.removedEndpoints.length > 0) this.proxy.invalidate();
    for (const [name, ep] of this.endpoints) if (ep.listeners.length === 0 && engine.endpoint(name) === undefined) this.endpoints.delete(name);
    const specs = [...this.endpoints.values()].flatMap((e) => e.listeners);
    try {
      this.proxy.setListeners(specs);
    } catch (err) {
      this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'proxy listener failed; steered connections to it are dropped');
    }
    this.ports.retain(new Set(specs.map((s) => s.proxyPort)));
  }

  private decide(endpoint: string, direction: Direction, remoteIdentity: number, port: number): L7Decision {
    let ep = this.endpoints.get(endpoint);
    if (ep === undefined) {
      ep = { entries: undefined, decisions: new Map(), listeners: [] };
      this.endpoints.set(endpoint, ep);
    }
    const key = `${direction}/${remoteIdentity}/${port}`;
    let d = ep.decisions.get(key);
    if (d === undefined) {
      ep.entries ??= this.deps.engine().endpoint(endpoint)?.entries ?? [];
      d = l7Decision(ep.entries, direction, remoteIdentity, Protocol.tcp, port);
      if (ep.decisions.size > 10_000) ep.decisions.clear();
      ep.decisions.set(key, d);
    }
    return d;
  }

  onRequest(fn: (e: L7Event) => void): () => void {
    this.proxy.on('request', fn);
    return () => this.proxy.off('request', fn);
  }

  metrics(): L7Metrics {
    return this.proxy.metrics();
  }

  close(): void {
    this.proxy.close();
  }
}

