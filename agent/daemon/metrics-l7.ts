import { Counter, Gauge, type Registry } from 'prom-client';
import type { L7Metrics } from '../proxy/index.js';

const VERDICTS = ['allowed', 'denied', 'invalid'] as const;
const DIRECTIONS = ['ingress', 'egress'] as const;

/**
 * The L7 proxy's series, read from its own counters at scrape time: the proxy counts anyway,
 * and a per-request hook here would make it build an event for every request.
 */
export function registerL7Metrics(r: Registry, read: () => L7Metrics): void {
  new Counter({
    name: 'ward_l7_requests_total',
    help: 'HTTP requests judged by the L7 proxy, by direction of the proxied endpoint and verdict (invalid: refused before any policy: unparseable, unsupported)',
    labelNames: ['direction', 'verdict'],
    registers: [r],
    collect: function (this: Counter<'direction' | 'verdict'>) {
      this.reset();
      const m = read().requestsByDirection;
      for (const direction of DIRECTIONS) for (const verdict of VERDICTS) this.inc({ direction, verdict }, m[direction][verdict]);
    },
  });
  const counter = (name: string, help: string, value: (m: L7Metrics) => number): void => {
    new Counter({
      name,
      help,
      registers: [r],
      collect: function (this: Counter) {
        this.reset();
        this.inc(value(read()));
      },
    });
  };
  const gauge = (name: string, help: string, value: (m: L7Metrics) => number): void => {
    new Gauge({ name, help, registers: [r], collect: function (this: Gauge) { this.set(value(read())); } });
  };
  counter('ward_l7_proxy_connections_total', 'connections steered to the L7 proxy and accepted', (m) => m.connections);
  counter('ward_l7_proxy_connections_refused_total', 'connections closed at once because their listener was at its connection limit (4096)', (m) => m.refusedConnections);
  counter('ward_l7_upstream_from_host_total', "upstream connections that left from the host's address: the client's own address and port were taken in the host namespace (e.g. TIME_WAIT)", (m) => m.upstreamsFromHost);
  counter('ward_l7_upstream_errors_total', 'proxied connections ended by a socket error (mostly the upstream: refused, reset)', (m) => m.upstreamErrors);
  gauge('ward_l7_proxy_connections_active', 'open proxied connections (those of closed listeners included)', (m) => m.activeConnections);
  gauge('ward_l7_proxy_listeners', 'proxy listeners (one per endpoint, direction and port with HTTP rules)', (m) => m.listeners);
}
