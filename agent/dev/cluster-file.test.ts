import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClusterFileError, parseClusterFile } from './cluster-file.js';

function err(text: string): string {
  try {
    parseClusterFile(text, 'c.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ClusterFileError);
    return (e as Error).message;
  }
  throw new Error('expected a ClusterFileError');
}

const BASE = `hosts: [a, b]
workloads:
  - name: web
    host: a
    labels: { app: web }
`;

describe('ward dev cluster file', () => {
  it('reads the sample file', () => {
    const file = join(import.meta.dirname, '..', '..', 'examples', 'cluster.yaml');
    const c = parseClusterFile(readFileSync(file, 'utf8'), file);
    expect(c.name).toBe('ward');
    expect(c.etcdMembers).toBe(1);
    expect(c.policy).toBe('cluster-policy.yaml');
    expect(c.hosts).toEqual([
      { name: 'host1', nodeIp: '10.90.0.1', nodePrefixLen: 24, endpointCidr: '10.200.1.0/24' },
      { name: 'host2', nodeIp: '10.90.0.2', nodePrefixLen: 24, endpointCidr: '10.200.2.0/24' },
    ]);
    expect(c.workloads.map((w) => [w.name, w.host, w.ip, w.ports])).toEqual([
      ['web', 'host1', '10.200.1.10', [80]],
      ['api', 'host1', '10.200.1.20', [8080]],
      ['db', 'host2', '10.200.2.10', [5432]],
      ['debug', 'host2', '10.200.2.20', [9000]],
    ]);
    expect(c.workloads[3]!.labels).toEqual(['app=debug', 'env=dev']);
  });

  it('fills defaults: two hosts, labels as a list, hosts as a count', () => {
    const c = parseClusterFile('workloads:\n  - {name: x, labels: [app=x]}\n  - {name: y, labels: [app=y]}\n', 'c.yaml');
    expect(c.hosts.map((h) => h.name)).toEqual(['host1', 'host2']);
    expect(c.workloads.map((w) => w.host)).toEqual(['host1', 'host2']);
    expect(parseClusterFile('hosts: 3\n', 'c.yaml').hosts.map((h) => h.endpointCidr)).toEqual(['10.200.1.0/24', '10.200.2.0/24', '10.200.3.0/24']);
  });

  it('names file:line and the field for every mistake', () => {
    expect(err('hosts: [a\n')).toMatch(/^c\.yaml:\d+: /);
    expect(err('nme: x\n')).toMatch(/^c\.yaml:1: unknown field "nme"/);
    expect(err('name: Bad_Name\n')).toMatch(/^c\.yaml:1: name: cluster name "Bad_Name"/);
    expect(err('etcd: { members: 7 }\n')).toMatch(/^c\.yaml:1: etcd\.members must be an integer 1\.\.5/);
    expect(err(`${BASE}    hots: a\n`)).toMatch(/^c\.yaml:6: unknown field "workloads\[\]\.hots"/);
    expect(err(BASE.replace('host: a', 'host: c'))).toMatch(/^c\.yaml:4: workloads\[web\]\.host: unknown host "c" \(hosts: a, b\)/);
    expect(err(BASE.replace('{ app: web }', '["=x"]'))).toMatch(/^c\.yaml:5: workloads\[web\]\.labels: /);
    expect(err(BASE.replace('    labels: { app: web }\n', ''))).toMatch(/^c\.yaml:3: workloads\[web\]\.labels is required/);
    expect(err(`${BASE}    ip: 10.200.2.5\n`)).toMatch(/^c\.yaml:6: workloads\[web\]\.ip: 10\.200\.2\.5 is outside host a's endpoint CIDR 10\.200\.1\.0\/24/);
    expect(err(`${BASE}    ip: 10.200.1.1\n`)).toMatch(/gateway/);
    expect(err(`${BASE}    ports: [80, 70000]\n`)).toMatch(/^c\.yaml:6: workloads\[web\]\.ports: 70000 is not a port/);
    expect(err(`${BASE}  - name: a\n    labels: { app: x }\n`)).toMatch(/^c\.yaml:6: workload name "a" is already used by a host/);
    expect(err('hosts: [fabric]\n')).toMatch(/^c\.yaml:1: host name "fabric" is reserved/);
    expect(err('network: { endpoint-cidr: 10.1.0.0/24 }\n')).toMatch(/must be \/23 or larger/);
    expect(err('network: { node-cidr: 10.200.0.0/24 }\n')).toMatch(/overlap/);
  });
});
