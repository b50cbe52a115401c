import { EventEmitter } from 'node:events';
import { createServer, Socket, type Server } from 'node:net';
import { Direction } from '../../bpf/policy-map/types.js';
import { ProxyConnection, DEFAULT_CONNECTION_LIMITS, type ConnectionLimits, type RequestDecision } from './connection.js';
import { bothDecisions, type L7Decision } from './decision.js';
import { ProxyError } from './errors.js';
import { egressUpstreamMark, MARK_FROM_PROXY_INGRESS } from './marks.js';

/** The policy view the proxy asks, per request (so rule changes apply to the next request). */
export interface L7PolicySource {
  decide(endpoint: string, direction: Direction, remoteIdentity: number, port: number): L7Decision;
  /** Security identity of an IPv4 address (the agent's ipcache; world when unknown). */
  identityOf(ip: string): number;
  /** Identity of a local endpoint (the source of its egress traffic). */
  endpointIdentity(endpoint: string): number | undefined;
  /** The local endpoint with this IPv4 address, if any (an egress proxy's destination on this host). */
  localEndpointAt?(ip: string): string | undefined;
}

/** Where an upstream connection leaves from and goes to. */
export interface UpstreamSpec {
  readonly mark: number;
  /** The proxied client's own address and port: the destination sees the client, not the host. */
  readonly source: { readonly address: string; readonly port: number };
  readonly destination: { readonly address: string; readonly port: number };
}

/** Where listeners and upstream sockets come from (the host netns in the agent; plain sockets in unit tests). */
export interface ProxySockets {
  /** A listening IP_TRANSPARENT socket fd on 127.0.0.1:port (its accepted connections carry MARK_PROXY_ANSWER). */
  listen(port: number): number;
  /** A socket fd carrying `mark`, bound to `source` (IP_TRANSPARENT), its connect to `destination` started. */
  upstream(spec: UpstreamSpec): { fd: number; transparent: boolean };
  /** A direct non-blocking send on a connected fd (see ConnectionContext.send); optional. */
  readonly send?: (fd: number, bytes: Uint8Array, start: number, end: number) => number;
}

export interface ListenerSpec {
  readonly proxyPort: number;
  readonly endpoint: string;
  readonly direction: Direction;
}

/** One request decision for `ward monitor`. */
export interface L7Event extends RequestDecision {
  readonly timeMs: number;
  readonly endpoint: string;
  readonly direction: 'ingress' | 'egress';
  readonly sourceIdentity: number;
  readonly destinationIdentity: number;
  readonly source: string;
  readonly destination: string;
}

export interface VerdictCounts {
  readonly allowed: number;
  readonly denied: number;
  readonly invalid: number;
}

export interface L7Metrics {
  readonly listeners: number;
  readonly connections: number;
  readonly activeConnections: number;
  /** Request decisions, all directions. */
  readonly requests: VerdictCounts;
  /** The same, split by the direction of the listener that judged them. */
  readonly requestsByDirection: { readonly ingress: VerdictCounts; readonly egress: VerdictCounts };
  readonly upstreamErrors: number;
  /** Upstreams that left from the host's address (the client's 4-tuple was taken here). */
  readonly upstreamsFromHost: number;
  /** Connections closed at once because their listener had maxConnectionsPerListener open. */
  readonly refusedConnections: number;
}

interface Listener {
  readonly spec: ListenerSpec;
  readonly server: Server;
  readonly conns: Set<ProxyConnection>;
}

interface Log {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  debug(o: object, msg: string): void;
}

/**
 * The in-agent HTTP proxy: one transparent listener per (endpoint, direction, port) proxy port.
 * The datapath steers new connections to it with bpf_sk_assign; the accepted socket's local
 * address is the original destination. Emits 'request' (L7Event) for every decision.
 */
export class L7Proxy extends EventEmitter<{ request: [L7Event] }> {
  private readonly servers = new Map<number, Listener>();
  private readonly counters = { connections: 0, upstreamErrors: 0, refused: 0, fromHost: 0 };
  private readonly verdicts = { ingress: { allowed: 0, denied: 0, invalid: 0 }, egress: { allowed: 0, denied: 0, invalid: 0 } };
  private closed = false;

  constructor(
    private readonly policy: L7PolicySource,
    private readonly sockets: ProxySockets,
    private readonly log: Log,
    private readonly limits: ConnectionLimits = DEFAULT_CONNECTION_LIMITS,
  ) {
    super();
  }

  /** Opens listeners for new specs and closes those no longer wanted (their connections stay). */
  setListeners(specs: Iterable<ListenerSpec>): void {
    if (this.closed) return;
    const want = new Map<number, ListenerSpec>();
    for (const s of specs) want.set(s.proxyPort, s);
    for (const [port, l] of this.servers) {
      const w = want.get(port);
      if (w === undefined || w.endpoint !== l.spec.endpoint || w.direction !== l.spec.direction) this.closeListener(port);
    }
    for (const [port, spec] of want) if (!this.servers.has(port)) this.open(spec);
  }

  hasListener(port: number): boolean {
    return this.servers.has(port);
  }

  private open(spec: ListenerSpec): void {
    let fd: number;
    try {
      fd = this.sockets.listen(spec.proxyPort);
    } catch (err) {
      throw new ProxyError(`cannot open the proxy listener on port ${spec.proxyPort} for ${spec.endpoint}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const l: Listener = { spec, server: createServer({ noDelay: true }), conns: new Set() };
    l.server.on('connection', (s) => this.accept(l, s));
    l.server.on('error', (err) => this.log.warn({ proxyPort: spec.proxyPort, err: err.message }, 'proxy listener error'));
    l.server.listen({ fd });
    this.servers.set(spec.proxyPort, l);
    this.log.info({ proxyPort: spec.proxyPort, endpoint: spec.endpoint, direction: spec.direction === Direction.ingress ? 'ingress' : 'egress' }, 'proxy listener open');
  }

  private closeListener(port: number): void {
    const l = this.servers.get(port);
    if (l === undefined) return;
    this.servers.delete(port);
    l.server.close();
    this.log.info({ proxyPort: port, endpoint: l.spec.endpoint }, 'proxy listener closed');
  }

  private accept(l: Listener, s: Socket): void {
    const { endpoint, direction, proxyPort } = l.spec;
    const dst = s.localAddress;
    const dport = s.localPort;
    const src = s.remoteAddress;
    const sport = s.remotePort ?? 0;
    if (dst === undefined || dport === undefined || src === undefined || (dport === proxyPort && dst.startsWith('127.'))) {
      // A direct connection to the listener, not a steered one: nothing to forward to.
      s.destroy();
      return;
    }
    // A flood of connections to one endpoint must not take every fd of the agent. Counted here,
    // not by server.maxConnections: direct reads re-wrap the socket, which the server stops counting.
    if (l.conns.size >= this.limits.maxConnectionsPerListener) {
      this.counters.refused++;
      s.destroy();
      return;
    }
    this.counters.connections++;
    const ingress = direction === Direction.ingress;
    const verdicts = ingress ? this.verdicts.ingress : this.verdicts.egress;
    const srcId = this.policy.identityOf(src);
    const dstId = this.policy.identityOf(dst);
    const remoteIdentity = ingress ? srcId : dstId;
    const localIdentity = this.policy.endpointIdentity(endpoint);
    const sourceIdentity = ingress ? srcId : (localIdentity ?? srcId);
    const destinationIdentity = ingress ? (localIdentity ?? dstId) : dstId;
    // An egress connection to an endpoint of this host: `theirs` = its ingress decision at the
    // last request; `judged` = the upstream skips that endpoint's ingress policy in the
    // datapath, which this proxy then applies.
    const peerEndpoint = ingress ? undefined : this.policy.localEndpointAt?.(dst);
    const peer: { readonly endpoint: string; theirs: L7Decision | undefined; judged: boolean } | undefined =
      peerEndpoint !== undefined ? { endpoint: peerEndpoint, theirs: undefined, judged: false } : undefined;
    const conn = new ProxyConnection(
      s,
      {
        decide: () => {
          const own = this.policy.decide(endpoint, direction, remoteIdentity, dport);
          if (peer === undefined) return own;
          // A local destination whose ingress has HTTP rules for the source is judged here too.
          const theirs = (peer.theirs = this.policy.decide(peer.endpoint, Direction.ingress, sourceIdentity, dport));
          return theirs.kind === 'rules' || peer.judged ? bothDecisions(own, theirs, `ingress of ${peer.endpoint}`) : own;
        },
        connectUpstream: (onread) => {
          // Whose policy the datapath applies to the upstream: the destination's ingress, unless
          // this proxy judges it (a second proxy there would need the same tuple as this one).
          // (An upstream is made to forward a request just judged: peer.theirs is current.)
          if (peer !== undefined) peer.judged = peer.theirs?.kind === 'rules';
          const mark = ingress || peer?.judged === true ? MARK_FROM_PROXY_INGRESS : egressUpstreamMark(sourceIdentity);
          const { fd, transparent } = this.sockets.upstream({ mark, source: { address: src, port: sport }, destination: { address: dst, port: dport } });
          if (!transparent) this.counters.fromHost++;
          // net.Socket's constructor takes `onread` (Node >= 12.2); @types/node lists it only for connect().
          // The fd is already connecting: Node writes once it is writable and reports a refusal as an error.
          const opts = { fd, readable: true, writable: true, onread };
          return new Socket(opts);
        },
        ...(this.sockets.send !== undefined ? { send: this.sockets.send } : {}),
        // Metrics count every decision; an event is built only while someone listens.
        watching: () => this.listenerCount('request') > 0,
        count: (verdict) => {
          verdicts[verdict]++;
        },
        onRequest: (d) => {
          verdicts[d.verdict]++;
          if (this.listenerCount('request') === 0) return;
          this.emit('request', {
            ...d,
            timeMs: Date.now(),
            endpoint,
            direction: ingress ? 'ingress' : 'egress',
            sourceIdentity,
            destinationIdentity,
            source: `${src}:${sport}`,
            destination: `${dst}:${dport}`,
          });
        },
        onError: (err) => {
          this.counters.upstreamErrors++;
          this.log.debug({ endpoint, err: err.message }, 'proxy connection error');
        },
      },
      this.limits,
    );
    l.conns.add(conn);
    conn.socket.once('close', () => l.conns.delete(conn));
  }

  metrics(): L7Metrics {
    let active = 0;
    for (const l of this.servers.values()) active += l.conns.size;
    const c = this.counters;
    const { ingress, egress } = this.verdicts;
    const requests = { allowed: ingress.allowed + egress.allowed, denied: ingress.denied + egress.denied, invalid: ingress.invalid + egress.invalid };
    return { listeners: this.servers.size, connections: c.connections, activeConnections: active, requests, requestsByDirection: { ingress: { ...ingress }, egress: { ...egress } }, upstreamErrors: c.upstreamErrors, upstreamsFromHost: c.fromHost, refusedConnections: c.refused };
  }

  /** Idempotent: closes listeners and every proxied connection. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [port, l] of this.servers) {
      this.closeListener(port);
      for (const c of l.conns) c.destroy();
    }
    this.removeAllListeners();
  }
}
