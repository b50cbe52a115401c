import { describe, expect, it } from 'vitest';
import { FakeDatapath, Reason } from '../../bpf/index.js';
import type { EndpointRecord } from '../endpoint/index.js';
import type { L7Metrics, VerdictCounts } from '../proxy/index.js';
import { AgentMetrics, type StoreCounters } from './metrics.js';

const ep: EndpointRecord = { name: 'db', id: 7, labels: ['app=db'], netns: '/run/netns/d', ifname: 'lxc0', ip: '10.200.0.3', identity: 400, createdAtMs: 0 };

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('AgentMetrics', () => {
  it('reads gauges and counters from the agent at scrape time', async () => {
    const dp = new FakeDatapath({ policyMapMaxEntries: 4 });
    dp.policy.open(ep.id).setDesired([[{ identity: 300, direction: 0, protocol: 6, port: 80, portPrefixLen: 16 }, { deny: false, proxyPort: 0 }]]);
    dp.counterValues.push(
      { endpointId: 7, direction: 'ingress', reason: Reason.dropPolicy, reasonName: 'policy-denied', packets: 5, bytes: 300 },
      { endpointId: 7, direction: 'ingress', reason: Reason.policyAllow, reasonName: 'policy-allow', packets: 2, bytes: 120 },
    );
    const policies: StoreCounters = { lists: 3, streamEnds: 2, invalidValues: 1, size: 4 };
    const kv = { stats: { calls: 10, errors: 2, byOp: {} } };
    const m = new AgentMetrics({
      dp,
      kvClients: [kv, { stats: { calls: 1, errors: 1, byOp: {} } }],
      stores: { policies },
      identities: () => 12,
      endpoints: () => [ep],
      ipcacheEntries: () => 5,
      inSync: () => true,
    });
    const text = await m.text();
    expect(sample(text, 'ward_identities')).toBe(12);
    expect(sample(text, 'ward_endpoints')).toBe(1);
    expect(sample(text, 'ward_ipcache_entries')).toBe(5);
    expect(sample(text, 'ward_in_sync')).toBe(1);
    expect(sample(text, 'ward_kvstore_entries{kind="policies"}')).toBe(4);
    expect(sample(text, 'ward_policy_map_entries{endpoint="db"}')).toBe(1);
    expect(sample(text, 'ward_policy_map_pressure_ratio{endpoint="db"}')).toBe(0.25);
    expect(sample(text, 'ward_policy_map_locked_down{endpoint="db"}')).toBe(0);
    expect(sample(text, 'ward_etcd_errors_total')).toBe(3);
    expect(sample(text, 'ward_kvstore_resyncs_total{kind="policies"}')).toBe(2);
    expect(sample(text, 'ward_kvstore_watch_restarts_total{kind="policies"}')).toBe(2);
    expect(sample(text, 'ward_kvstore_invalid_values_total{kind="policies"}')).toBe(1);
    expect(sample(text, 'ward_drops_total{reason="policy-denied",direction="ingress"}')).toBe(5);
    expect(text).not.toContain('ward_drops_total{reason="policy-allow"');
    expect(sample(text, 'ward_datapath_packets_total{endpoint="db",direction="ingress",reason="policy-allow"}')).toBe(2);
    // Scrapes do not accumulate: the values are the agent's, not sums of scrapes.
    kv.stats.errors = 4;
    expect(sample(await m.text(), 'ward_etcd_errors_total')).toBe(5);
    expect(sample(await m.text(), 'ward_drops_total{reason="policy-denied",direction="ingress"}')).toBe(5);
  });

  it('measures events from arrival to the next kernel write', async () => {
    const m = new AgentMetrics({ dp: new FakeDatapath(), kvClients: [], stores: {}, identities: () => 0, endpoints: () => [], ipcacheEntries: () => 0, inSync: () => false });
    m.received('policies', 2);
    m.received('nodes', 1);
    m.received('nodes', 0); // empty batch: nothing to measure
    m.applied();
    m.applied(); // nothing pending: no observation
    const text = await m.text();
    expect(sample(text, 'ward_kvstore_events_total{kind="policies"}')).toBe(2);
    expect(sample(text, 'ward_event_to_datapath_seconds_count{kind="policies"}')).toBe(1);
    expect(sample(text, 'ward_event_to_datapath_seconds_count{kind="nodes"}')).toBe(1);
    expect(sample(text, 'ward_event_to_datapath_seconds_bucket{le="+Inf",kind="nodes"}')).toBe(1);
  });

  it("reads the L7 proxy's counters at scrape time", async () => {
    const counts = (ingress: VerdictCounts, egress: VerdictCounts) => ({ requests: { allowed: ingress.allowed + egress.allowed, denied: ingress.denied + egress.denied, invalid: ingress.invalid + egress.invalid }, requestsByDirection: { ingress, egress } });
    let l7: L7Metrics = { listeners: 2, connections: 5, activeConnections: 1, ...counts({ allowed: 7, denied: 3, invalid: 0 }, { allowed: 0, denied: 2, invalid: 0 }), upstreamErrors: 1, upstreamsFromHost: 6, refusedConnections: 4 };
    const m = new AgentMetrics({ dp: new FakeDatapath(), kvClients: [], stores: {}, identities: () => 0, endpoints: () => [], ipcacheEntries: () => 0, inSync: () => true, l7: () => l7 });
    let text = await m.text();
    expect(sample(text, 'ward_l7_requests_total{direction="ingress",verdict="allowed"}')).toBe(7);
    expect(sample(text, 'ward_l7_requests_total{direction="ingress",verdict="denied"}')).toBe(3);
    expect(sample(text, 'ward_l7_requests_total{direction="egress",verdict="denied"}')).toBe(2);
    expect(sample(text, 'ward_l7_requests_total{direction="ingress",verdict="invalid"}')).toBe(0); // present before the first one
    expect(sample(text, 'ward_l7_proxy_connections_total')).toBe(5);
    expect(sample(text, 'ward_l7_proxy_connections_active')).toBe(1);
    expect(sample(text, 'ward_l7_proxy_listeners')).toBe(2);
    expect(sample(text, 'ward_l7_upstream_errors_total')).toBe(1);
    expect(sample(text, 'ward_l7_proxy_connections_refused_total')).toBe(4);
    expect(sample(text, 'ward_l7_upstream_from_host_total')).toBe(6);
    expect(text).toContain('# TYPE ward_l7_requests_total counter');
    l7 = { ...l7, activeConnections: 0, ...counts({ allowed: 8, denied: 3, invalid: 1 }, { allowed: 0, denied: 2, invalid: 0 }) };
    text = await m.text();
    expect(sample(text, 'ward_l7_requests_total{direction="ingress",verdict="allowed"}')).toBe(8); // the proxy's count, not a sum of scrapes
    expect(sample(text, 'ward_l7_requests_total{direction="ingress",verdict="invalid"}')).toBe(1);
    expect(sample(text, 'ward_l7_proxy_connections_active')).toBe(0);
    // Without an L7 source there are no L7 series.
    const none = new AgentMetrics({ dp: new FakeDatapath(), kvClients: [], stores: {}, identities: () => 0, endpoints: () => [], ipcacheEntries: () => 0, inSync: () => true });
    expect(await none.text()).not.toContain('ward_l7_');
  });
});
