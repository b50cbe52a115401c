import { EventEmitter } from 'node:events';
import type { HttpRelayNative, HttpRelayOptions } from '../../bpf/index.js';
import { Direction } from '../../bpf/policy-map/types.js';
import { ConnectionPolicy } from './connection-policy.js';
import { judgeRequest, readsHeaders } from './decision.js';
import { ProxyError } from './errors.js';
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits, type L7Event, type L7Metrics, type L7PolicySource, type ListenerSpec, type Verdict } from './types.js';

/** Where the proxy's listeners and its data path come from (the addon in the agent). */
export interface ProxySockets {
  /** A listening IP_TRANSPARENT socket fd on 127.0.0.1:port (its accepted connections carry MARK_PROXY_ANSWER). */
  listen(port: number): number;
  /** The native data path (bpf/napi/src/http-relay.cc). */
  relay(opts: HttpRelayOptions): HttpRelayNative;
}

interface Log {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  debug(o: object, msg: string): void;
}

interface Listener {
  readonly spec: ListenerSpec;
  readonly id: number;
}

// decide()'s answers to the relay (bpf/napi/src/http-relay.h).
const DENY = -1;
const NEED_HEADERS = -2;
const DENY_CACHEABLE = -3;
/** Added to an allowed answer whose verdict holds for the same method, path and host until invalidate(). */
const CACHEABLE = 2 ** 32;
const NO_HEADERS: readonly (readonly [string, string])[] = [];

function headerPairs(flat: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

/**
 * The in-agent HTTP proxy: one transparent listener per (endpoint, direction, port) proxy port.
 * The datapath steers new connections to it with bpf_sk_assign; the accepted socket's local
 * address is the original destination. The relay (bpf/napi/src/http-relay.cc) does the sockets
 * and the HTTP framing natively; this class answers its one question per request head from the
 * current policy, and keeps listeners, events and metrics. Emits 'request' (L7Event) for every
 * decision while someone listens.
 */
export class L7Proxy extends EventEmitter<{ request: [L7Event] }> {
  private readonly relay: HttpRelayNative;
  private readonly ports = new Map<number, Listener>();
  private readonly byId = new Map<number, Listener>();
  private readonly conns = new Map<number, ConnectionPolicy>();
  private readonly verdicts = { ingress: { allowed: 0, denied: 0, invalid: 0 }, egress: { allowed: 0, denied: 0, invalid: 0 } };
  private closed = false;

  constructor(
    private readonly policy: L7PolicySource,
    private readonly sockets: ProxySockets,
    private readonly log: Log,
    limits: ConnectionLimits = DEFAULT_CONNECTION_LIMITS,
  ) {
    super();
    const { maxHeadBytes, maxHeaders, headTimeoutMs, idleTimeoutMs, upstreamTimeoutMs, maxPipeline, maxConnectionsPerListener } = limits;
    this.relay = sockets.relay({
      limits: { maxHeadBytes, maxHeaders, headTimeoutMs, idleTimeoutMs, upstreamTimeoutMs, maxPipeline, maxConnectionsPerListener },
      onAccept: (listener, conn, src, sport, dst, dport) => {
        try {
          return this.accept(listener, conn, { src, sport, dst, dport });
        } catch (err) {
          // A connection whose policy cannot be set up is refused (closed at once).
          this.log.warn({ err: err instanceof Error ? err.message : String(err), src, dst }, 'L7 connection refused');
          return false;
        }
      },
      decide: (conn, method, path, host, headers, needsUpstream) => {
        try {
          return this.decide(conn, method, path, host, headers, needsUpstream);
        } catch (err) {
          // Fail closed: a request that could not be judged never passes.
          this.log.warn({ err: err instanceof Error ? err.message : String(err), method, path }, 'L7 decision failed; request denied');
          return DENY;
        }
      },
      onInvalid: (conn, status, reason, method, path, host) => this.record(conn, 'invalid', method, path, host, status, reason),
      onClose: (conn) => this.conns.delete(conn),
      onError: (conn, message) => this.log.debug({ endpoint: this.conns.get(conn)?.addresses.dst, err: message }, 'proxy connection error'),
    });
    // Decisions come from the relay's cache only while no one wants their events.
    const untyped = this as EventEmitter;
    untyped.on('newListener', (event: string | symbol) => {
      if (event === 'request') this.relay.watch(true);
    });
    untyped.on('removeListener', (event: string | symbol) => {
      if (event === 'request') this.relay.watch(this.listenerCount('request') > 0);
    });
  }

  /** Opens listeners for new specs and closes those no longer wanted (their connections stay). */
  setListeners(specs: Iterable<ListenerSpec>): void {
    if (this.closed) return;
    const want = new Map<number, ListenerSpec>();
    for (const s of specs) want.set(s.proxyPort, s);
    for (const [port, l] of this.ports) {
      const w = want.get(port);
      if (w === undefined || w.endpoint !== l.spec.endpoint || w.direction !== l.spec.direction) this.closeListener(port);
    }
    for (const [port, spec] of want) if (!this.ports.has(port)) this.open(spec);
  }

  hasListener(port: number): boolean {
    return this.ports.has(port);
  }

  private open(spec: ListenerSpec): void {
    let id: number;
    try {
      id = this.relay.listen(this.sockets.listen(spec.proxyPort), spec.direction === Direction.ingress ? 0 : 1, spec.upstream);
    } catch (err) {
      throw new ProxyError(`cannot open the proxy listener on port ${spec.proxyPort} for ${spec.endpoint}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const l = { spec, id };
    this.ports.set(spec.proxyPort, l);
    this.byId.set(id, l);
    this.log.info({ proxyPort: spec.proxyPort, endpoint: spec.endpoint, direction: spec.direction === Direction.ingress ? 'ingress' : 'egress' }, 'proxy listener open');
  }

  private closeListener(port: number): void {
    const l = this.ports.get(port);
    if (l === undefined) return;
    this.ports.delete(port);
    this.byId.delete(l.id);
    this.relay.unlisten(l.id);
    this.log.info({ proxyPort: port, endpoint: l.spec.endpoint }, 'proxy listener closed');
  }

  private accept(listener: number, conn: number, a: { src: string; sport: number; dst: string; dport: number }): boolean {
    const l = this.byId.get(listener);
    // A direct connection to the listener, not a steered one: nothing to forward to.
    if (l === undefined || (l.spec.upstream === undefined && a.dport === l.spec.proxyPort && a.dst.startsWith('127.'))) return false;
    this.conns.set(conn, new ConnectionPolicy(this.policy, l.spec, a));
    return true;
  }

  private decide(conn: number, method: string, path: string, host: string | undefined, headers: string[] | null, needsUpstream: boolean): number {
    const c = this.conns.get(conn);
    if (c === undefined) return DENY;
    const decision = c.decide();
    // A verdict that reads no header holds for every request with this method, path and host.
    const cacheable = !readsHeaders(decision);
    if (headers === null && !cacheable) return NEED_HEADERS;
    const pairs = headers === null ? NO_HEADERS : headerPairs(headers);
    const v = judgeRequest(decision, host !== undefined ? { method, path, host, headers: pairs } : { method, path, headers: pairs });
    if (!v.allowed) {
      this.record(conn, 'denied', method, path, host, 403, v.reason);
      return cacheable ? DENY_CACHEABLE : DENY;
    }
    this.record(conn, 'allowed', method, path, host, undefined, v.reason);
    return (needsUpstream ? c.upstreamMark() : 0) + (cacheable ? CACHEABLE : 0);
  }

  private record(conn: number, verdict: Verdict, method: string, path: string, host: string | undefined, status: number | undefined, reason: string): void {
    const c = this.conns.get(conn);
    if (c === undefined) return;
    (c.ingress ? this.verdicts.ingress : this.verdicts.egress)[verdict]++;
    // An event is built only while someone listens.
    if (this.listenerCount('request') === 0) return;
    try {
      this.emit('request', c.event({ method, path, ...(host !== undefined ? { host } : {}), verdict, ...(status !== undefined ? { status } : {}), reason }));
    } catch (err) {
      // A failing watcher must not change what the proxy does.
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'L7 event listener failed');
    }
  }

  metrics(): L7Metrics {
    const s = this.relay.stats();
    // Decisions the relay took from its cache count as well.
    const [inAllowed, inDenied, outAllowed, outDenied] = s.cachedVerdicts;
    const ingress = { ...this.verdicts.ingress, allowed: this.verdicts.ingress.allowed + inAllowed, denied: this.verdicts.ingress.denied + inDenied };
    const egress = { ...this.verdicts.egress, allowed: this.verdicts.egress.allowed + outAllowed, denied: this.verdicts.egress.denied + outDenied };
    const requests = { allowed: ingress.allowed + egress.allowed, denied: ingress.denied + egress.denied, invalid: ingress.invalid + egress.invalid };
    return {
      listeners: this.ports.size,
      connections: s.connections,
      activeConnections: s.activeConnections,
      requests,
      requestsByDirection: { ingress, egress },
      upstreamErrors: s.upstreamErrors,
      upstreamsFromHost: s.upstreamsFromHost,
      refusedConnections: s.refusedConnections,
    };
  }

  /** The policy changed: the relay's cached verdicts no longer hold. */
  invalidate(): void {
    if (!this.closed) this.relay.invalidate();
  }

  /** Idempotent: closes listeners and every proxied connection. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.relay.close();
    this.ports.clear();
    this.byId.clear();
    this.conns.clear();
    this.removeAllListeners();
  }
}
