import { describe, expect, it } from 'vitest';
import { AgentConfigError, loadAgentConfig } from './agent-config.js';

const FILE = `# ward agent
node-name: host-a
node-ip: 192.0.2.10
endpoint-cidr: 10.200.1.7/24
etcd:
  endpoints: [127.0.0.1:2379, 127.0.0.1:22379]
  root: ward/
log-level: debug
`;

function err(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AgentConfigError);
    return (e as Error).message;
  }
  throw new Error('expected an AgentConfigError');
}

describe('agent config', () => {
  it('reads the file, fills defaults and normalises the CIDR', () => {
    const c = loadAgentConfig({ file: { name: 'agent.yaml', text: FILE } });
    expect(c).toMatchObject({
      nodeName: 'host-a',
      nodeIp: '192.0.2.10',
      endpointCidr: '10.200.1.0/24',
      etcd: { endpoints: ['127.0.0.1:2379', '127.0.0.1:22379'], root: 'ward/' },
      bpfRoot: '/sys/fs/bpf/ward',
      logLevel: 'debug',
    });
    expect(Object.isFrozen(c)).toBe(true);
  });
  it('lets the environment override the file and flags override both', () => {
    const c = loadAgentConfig({
      file: { name: 'agent.yaml', text: FILE },
      env: { WARD_NODE_NAME: 'host-b', WARD_ETCD_ENDPOINTS: '10.0.0.1:2379,10.0.0.2:2379', WARD_LOG_LEVEL: 'warn' },
      flags: { 'log-level': 'error' },
    });
    expect(c.nodeName).toBe('host-b');
    expect(c.etcd.endpoints).toEqual(['10.0.0.1:2379', '10.0.0.2:2379']);
    expect(c.logLevel).toBe('error');
  });
  it('works from flags alone', () => {
    const c = loadAgentConfig({ flags: { 'node-name': 'n1', 'node-ip': '10.0.0.1', 'endpoint-cidr': '10.1.0.0/16' } });
    expect(c.etcd.endpoints).toEqual(['127.0.0.1:2379']);
  });
  it('names file and line for unknown keys, bad values and YAML errors', () => {
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: 'node-name: a\nnode-ipp: 1.2.3.4\n' } }))).toMatch(/^a\.yaml:2: unknown setting "node-ipp"/);
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: FILE.replace('192.0.2.10', '192.0.2') } }))).toMatch(/^a\.yaml:3 \(node-ip\): "192\.0\.2" is not an IPv4 address/);
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: 'etcd:\n  endpointz: []\n' } }))).toMatch(/^a\.yaml:2: unknown setting "etcd\.endpointz"/);
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: 'node-name: [a\n' } }))).toMatch(/^a\.yaml:\d+: /);
  });
  it('takes an optional metrics address from file, WARD_METRICS_ADDRESS or --metrics-address', () => {
    expect(loadAgentConfig({ file: { name: 'a.yaml', text: FILE } }).metricsAddress).toBeUndefined();
    expect(loadAgentConfig({ file: { name: 'a.yaml', text: `${FILE}metrics-address: 127.0.0.1:9962\n` } }).metricsAddress).toEqual({ host: '127.0.0.1', port: 9962 });
    expect(loadAgentConfig({ file: { name: 'a.yaml', text: FILE }, env: { WARD_METRICS_ADDRESS: '0.0.0.0:9100' } }).metricsAddress).toEqual({ host: '0.0.0.0', port: 9100 });
    expect(loadAgentConfig({ file: { name: 'a.yaml', text: FILE }, env: { WARD_METRICS_ADDRESS: '0.0.0.0:9100' }, flags: { 'metrics-address': '[::1]:9962' } }).metricsAddress).toEqual({ host: '::1', port: 9962 });
    expect(loadAgentConfig({ file: { name: 'a.yaml', text: `${FILE}metrics-address: 127.0.0.1:9962\n` }, flags: { 'metrics-address': 'off' } }).metricsAddress).toBeUndefined();
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: FILE }, flags: { 'metrics-address': '9962' } }))).toMatch(/^flag --metrics-address: metrics address "9962" must be host:port/);
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: FILE }, env: { WARD_METRICS_ADDRESS: 'localhost:70000' } }))).toMatch(/^environment WARD_METRICS_ADDRESS: /);
  });
  it('takes the lease TTL from file, WARD_LEASE_TTL or --lease-ttl (default 15 s)', () => {
    expect(loadAgentConfig({ file: { name: 'a.yaml', text: FILE } }).leaseTtlSeconds).toBe(15);
    expect(loadAgentConfig({ file: { name: 'a.yaml', text: `${FILE}lease-ttl: 30\n` } }).leaseTtlSeconds).toBe(30);
    expect(loadAgentConfig({ file: { name: 'a.yaml', text: `${FILE}lease-ttl: "60"\n` } }).leaseTtlSeconds).toBe(60);
    expect(loadAgentConfig({ file: { name: 'a.yaml', text: `${FILE}lease-ttl: 30\n` }, env: { WARD_LEASE_TTL: '5' } }).leaseTtlSeconds).toBe(5);
    expect(loadAgentConfig({ file: { name: 'a.yaml', text: FILE }, env: { WARD_LEASE_TTL: '5' }, flags: { 'lease-ttl': '3600' } }).leaseTtlSeconds).toBe(3600);
  });
  it('rejects a lease TTL that is not a whole number of seconds in 5..3600, naming the source', () => {
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: `${FILE}lease-ttl: 4\n` } }))).toMatch(/^a\.yaml:9 \(lease-ttl\): lease TTL "4" must be a whole number of seconds from 5 to 3600/);
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: `${FILE}lease-ttl: 7.5\n` } }))).toMatch(/^a\.yaml:9 \(lease-ttl\): lease TTL "7\.5"/);
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: `${FILE}lease-ttl: [5]\n` } }))).toMatch(/^a\.yaml:9: lease-ttl must be a string/);
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: FILE }, env: { WARD_LEASE_TTL: '3601' } }))).toMatch(/^environment WARD_LEASE_TTL: lease TTL "3601"/);
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: FILE }, flags: { 'lease-ttl': '15s' } }))).toMatch(/^flag --lease-ttl: lease TTL "15s"/);
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: FILE }, flags: { 'lease-ttl': '-5' } }))).toMatch(/^flag --lease-ttl: /);
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: FILE }, flags: { 'lease-ttl': '' } }))).toMatch(/^flag --lease-ttl: /);
  });
  it('names the variable or flag for bad values and the three sources for missing ones', () => {
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: FILE }, env: { WARD_ENDPOINT_CIDR: '10.0.0.0/33' } }))).toMatch(/^environment WARD_ENDPOINT_CIDR: invalid CIDR/);
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: FILE }, flags: { 'log-level': 'loud' } }))).toMatch(/^flag --log-level: log level "loud"/);
    expect(err(() => loadAgentConfig({ flags: { 'node-name': 'n1' } }))).toMatch(/missing setting node-ip \(config file\), WARD_NODE_IP or --node-ip/);
    expect(err(() => loadAgentConfig({ file: { name: 'a.yaml', text: FILE }, env: { WARD_ETCD_CERT_FILE: '/etc/ward/c.pem' } }))).toMatch(/etcd TLS needs ca-file/);
  });
});
