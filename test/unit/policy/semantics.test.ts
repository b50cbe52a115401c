import { describe, expect, it } from 'vitest';
import { verdict, world } from './helpers.js';

const backendFromFrontend = `
endpointSelector: {matchLabels: {app: backend}}
ingress:
- fromEndpoints: [{matchLabels: {app: frontend, env: prod}}]
`;

describe('default allow and enabling default deny', () => {
  it('allows everything without policy', () => {
    const w = world();
    expect(verdict(w, 'frontend', 'backend', 80)).toBe('allowed');
    expect(verdict(w, 'world', 'db', 5432)).toBe('allowed');
    expect(verdict(w, 'db', '8.8.8.8', 53, 'UDP')).toBe('allowed');
  });
  it('an L3 ingress rule puts the endpoint in ingress default deny only', () => {
    const w = world(backendFromFrontend);
    expect(verdict(w, 'frontend', 'backend', 80)).toBe('allowed');
    expect(verdict(w, 'frontend', 'backend', 9999, 'UDP')).toBe('allowed');
    expect(verdict(w, 'dev', 'backend', 80)).toBe('denied');
    expect(verdict(w, 'db', 'backend', 80)).toBe('denied');
    expect(verdict(w, 'world', 'backend', 80)).toBe('denied');
    // egress of backend is untouched
    expect(verdict(w, 'backend', 'db', 5432)).toBe('allowed');
    expect(verdict(w, 'backend', '1.2.3.4', 443)).toBe('allowed');
  });
  it('ingress: [{}] denies all ingress; ingress: [] does not enforce', () => {
    const denyAll = world(`endpointSelector: {matchLabels: {app: db}}\ningress: [{}]\n`);
    expect(verdict(denyAll, 'backend', 'db', 5432)).toBe('denied');
    expect(verdict(denyAll, 'host', 'db', 5432)).toBe('denied');
    expect(verdict(denyAll, 'db', 'backend', 80)).toBe('allowed');
    const empty = world(`endpointSelector: {matchLabels: {app: db}}\ningress: []\n`);
    expect(verdict(empty, 'backend', 'db', 5432)).toBe('allowed');
  });
  it('egress: [{}] denies all egress of the selected endpoints', () => {
    const w = world(`endpointSelector: {}\negress: [{}]\n`);
    expect(verdict(w, 'frontend', 'backend', 80)).toBe('denied');
    expect(verdict(w, 'world', 'backend', 80)).toBe('allowed');
  });
  it('enableDefaultDeny false keeps the direction open but deny rules still apply', () => {
    const w = world(`
endpointSelector: {matchLabels: {app: db}}
enableDefaultDeny: {ingress: false}
ingressDeny:
- fromEndpoints: [{matchLabels: {env: dev}}]
`);
    expect(verdict(w, 'backend', 'db', 5432)).toBe('allowed');
    expect(verdict(w, 'dev', 'db', 5432)).toBe('denied');
  });
  it('an ingressDeny-only rule enables ingress default deny (as in Cilium)', () => {
    const w = world(`endpointSelector: {matchLabels: {app: db}}\ningressDeny: [{fromEndpoints: [{matchLabels: {env: dev}}]}]\n`);
    expect(verdict(w, 'backend', 'db', 5432)).toBe('denied');
  });
});

describe('peers and ports', () => {
  it('L4-only rule allows all peers, including world, on that port and protocol only', () => {
    const w = world(`
endpointSelector: {matchLabels: {app: backend}}
ingress:
- toPorts: [{ports: [{port: "80", protocol: TCP}]}]
`);
    expect(verdict(w, 'world', 'backend', 80)).toBe('allowed');
    expect(verdict(w, 'frontend', 'backend', 80)).toBe('allowed');
    expect(verdict(w, 'frontend', 'backend', 81)).toBe('denied');
    expect(verdict(w, 'frontend', 'backend', 80, 'UDP')).toBe('denied');
  });
  it('peers and ports in one element are ANDed; elements are ORed', () => {
    const w = world(`
endpointSelector: {matchLabels: {app: backend}}
ingress:
- fromEndpoints: [{matchLabels: {app: frontend}}]
  toPorts: [{ports: [{port: 80, protocol: TCP}]}]
- fromEndpoints: [{matchLabels: {app: db}}]
`);
    expect(verdict(w, 'frontend', 'backend', 80)).toBe('allowed');
    expect(verdict(w, 'dev', 'backend', 80)).toBe('allowed');
    expect(verdict(w, 'frontend', 'backend', 443)).toBe('denied');
    expect(verdict(w, 'db', 'backend', 443)).toBe('allowed');
    expect(verdict(w, 'world', 'backend', 80)).toBe('denied');
  });
  it('rules selecting the same endpoint are ORed', () => {
    const w = world(backendFromFrontend, `endpointSelector: {matchLabels: {app: backend}}\ningress: [{fromEndpoints: [{matchLabels: {app: db}}]}]\n`);
    expect(verdict(w, 'frontend', 'backend', 80)).toBe('allowed');
    expect(verdict(w, 'db', 'backend', 80)).toBe('allowed');
    expect(verdict(w, 'dev', 'backend', 80)).toBe('denied');
  });
  it('port ranges, ANY protocol and port 0', () => {
    const w = world(`
endpointSelector: {matchLabels: {app: db}}
ingress:
- toPorts: [{ports: [{port: "8000", endPort: 8010}]}]
- fromEndpoints: [{matchLabels: {app: backend}}]
  toPorts: [{ports: [{port: "0", protocol: UDP}]}]
`);
    for (const p of [8000, 8005, 8010]) expect(verdict(w, 'frontend', 'db', p)).toBe('allowed');
    expect(verdict(w, 'frontend', 'db', 8010, 'UDP')).toBe('allowed');
    expect(verdict(w, 'frontend', 'db', 8010, 'SCTP')).toBe('allowed');
    expect(verdict(w, 'frontend', 'db', 8010, 'ANY')).toBe('allowed');
    expect(verdict(w, 'frontend', 'db', 7999)).toBe('denied');
    expect(verdict(w, 'frontend', 'db', 8011)).toBe('denied');
    expect(verdict(w, 'backend', 'db', 53, 'UDP')).toBe('allowed');
    expect(verdict(w, 'backend', 'db', 12345, 'UDP')).toBe('allowed');
    expect(verdict(w, 'backend', 'db', 53, 'TCP')).toBe('denied');
    expect(verdict(w, 'backend', 'db', 53, 'ANY')).toBe('denied');
  });
  it('fromEndpoints: [{}] selects all endpoints but not world or host', () => {
    const w = world(`endpointSelector: {matchLabels: {app: db}}\ningress: [{fromEndpoints: [{}]}]\n`);
    expect(verdict(w, 'frontend', 'db', 1)).toBe('allowed');
    expect(verdict(w, 'other', 'db', 1)).toBe('allowed');
    expect(verdict(w, 'world', 'db', 1)).toBe('denied');
    expect(verdict(w, '8.8.8.8', 'db', 1)).toBe('denied');
    expect(verdict(w, 'host', 'db', 1)).toBe('denied');
  });
  it('reserved labels select reserved identities explicitly', () => {
    const w = world(`endpointSelector: {matchLabels: {app: db}}\ningress: [{fromEndpoints: [{matchLabels: {"reserved:host": ""}}]}]\n`);
    expect(verdict(w, 'host', 'db', 1)).toBe('allowed');
    expect(verdict(w, 'remote-node', 'db', 1)).toBe('denied');
    expect(verdict(w, 'backend', 'db', 1)).toBe('denied');
  });
});

describe('label sources and expressions', () => {
  it('k8s:app matches only source k8s; app and any:app match any source', () => {
    const k8s = world(`endpointSelector: {matchLabels: {app: db}}\ningress: [{fromEndpoints: [{matchLabels: {"k8s:app": backend}}]}]\n`);
    expect(verdict(k8s, 'backend', 'db', 1)).toBe('allowed');
    expect(verdict(k8s, 'other', 'db', 1)).toBe('denied');
    for (const key of ['app', 'any:app']) {
      const anyw = world(`endpointSelector: {matchLabels: {app: db}}\ningress: [{fromEndpoints: [{matchLabels: {"${key}": backend}}]}]\n`);
      expect(verdict(anyw, 'backend', 'db', 1)).toBe('allowed');
      expect(verdict(anyw, 'other', 'db', 1)).toBe('allowed');
    }
  });
  it('matchExpressions In, NotIn, Exists, DoesNotExist', () => {
    const w = world(`
endpointSelector: {matchLabels: {app: db}}
ingress:
- fromEndpoints:
  - matchExpressions:
    - {key: app, operator: In, values: [frontend, backend]}
    - {key: env, operator: NotIn, values: [dev]}
`);
    expect(verdict(w, 'frontend', 'db', 1)).toBe('allowed');
    expect(verdict(w, 'backend', 'db', 1)).toBe('allowed');
    expect(verdict(w, 'dev', 'db', 1)).toBe('denied');
    expect(verdict(w, 'other', 'db', 1)).toBe('allowed');
    const e = world(`
endpointSelector: {matchLabels: {app: db}}
ingress:
- fromEndpoints: [{matchExpressions: [{key: env, operator: Exists}]}]
- fromEndpoints: [{matchExpressions: [{key: "k8s:app", operator: DoesNotExist}]}]
`);
    expect(verdict(e, 'frontend', 'db', 1)).toBe('allowed');
    expect(verdict(e, 'other', 'db', 1)).toBe('allowed');
    expect(verdict(e, 'world', 'db', 1)).toBe('denied');
  });
  it('the endpointSelector decides which endpoints a rule applies to', () => {
    const w = world(`endpointSelector: {matchExpressions: [{key: env, operator: In, values: [prod]}]}\ningress: [{}]\n`);
    expect(verdict(w, 'dev', 'db', 1)).toBe('denied');
    expect(verdict(w, 'db', 'dev', 1)).toBe('allowed');
    expect(verdict(w, 'db', 'other', 1)).toBe('allowed');
  });
});

describe('deny beats allow', () => {
  // Cilium's deny policy table: allow L7 + L4 80 + L4 81 + L3 client; deny L4 80 and/or L3 client.
  const allows = `
endpointSelector: {matchLabels: {app: backend}}
ingress:
- fromEndpoints: [{matchLabels: {app: frontend}}]
  toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{method: GET, path: "/"}]}}]
- toPorts: [{ports: [{port: "80", protocol: TCP}]}]
- toPorts: [{ports: [{port: "81", protocol: TCP}]}]
- fromEndpoints: [{matchLabels: {app: frontend}}]
`;
  it('allow only: everything from the client passes', () => {
    const w = world(allows);
    expect(verdict(w, 'frontend', 'backend', 81)).toBe('allowed');
    expect(verdict(w, 'frontend', 'backend', 80)).toBe('allowed');
    expect(verdict(w, 'frontend', 'backend', 0, 'ANY')).toBe('allowed');
  });
  it('deny on port 80 blocks 80, keeps 81 and ping', () => {
    const w = world(allows, `endpointSelector: {matchLabels: {app: backend}}\ningressDeny: [{toPorts: [{ports: [{port: "80", protocol: TCP}]}]}]\n`);
    expect(verdict(w, 'frontend', 'backend', 81)).toBe('allowed');
    expect(verdict(w, 'frontend', 'backend', 80)).toBe('denied');
    expect(verdict(w, 'world', 'backend', 80)).toBe('denied');
  });
  it('L3 deny of the client blocks everything from it', () => {
    const w = world(allows, `endpointSelector: {matchLabels: {app: backend}}\ningressDeny: [{fromEndpoints: [{matchLabels: {app: frontend}}]}]\n`);
    expect(verdict(w, 'frontend', 'backend', 81)).toBe('denied');
    expect(verdict(w, 'frontend', 'backend', 80)).toBe('denied');
    expect(verdict(w, 'dev', 'backend', 80, 'UDP')).toBe('denied');
    expect(verdict(w, 'db', 'backend', 81)).toBe('allowed');
  });
  it('a deny on all entities overrides any allow', () => {
    const w = world(`endpointSelector: {}\negress: [{toEntities: [all]}]\negressDeny: [{toEntities: [world]}]\n`);
    expect(verdict(w, 'frontend', 'backend', 81)).toBe('allowed');
    expect(verdict(w, 'frontend', '8.8.8.8', 53, 'UDP')).toBe('denied');
    expect(verdict(w, 'frontend', 'world', 53, 'UDP')).toBe('denied');
    expect(verdict(w, 'frontend', 'host', 22)).toBe('allowed');
  });
  it('egress deny to a port range beats a broader allow', () => {
    const w = world(`
endpointSelector: {matchLabels: {app: frontend}}
egress: [{toEndpoints: [{}]}]
egressDeny: [{toEndpoints: [{matchLabels: {app: db}}], toPorts: [{ports: [{port: "5000", endPort: 5999, protocol: ANY}]}]}]
`);
    expect(verdict(w, 'frontend', 'db', 5432)).toBe('denied');
    expect(verdict(w, 'frontend', 'db', 6000)).toBe('allowed');
    expect(verdict(w, 'frontend', 'backend', 5432)).toBe('allowed');
  });
});

describe('entities', () => {
  it('world, host, remote-node, cluster, all', () => {
    const mk = (e: string) => world(`endpointSelector: {matchLabels: {app: db}}\ningress: [{fromEntities: [${e}]}]\n`);
    const wWorld = mk('world');
    expect(verdict(wWorld, 'world', 'db', 1)).toBe('allowed');
    expect(verdict(wWorld, '8.8.8.8', 'db', 1)).toBe('allowed');
    expect(verdict(wWorld, 'frontend', 'db', 1)).toBe('denied');
    expect(verdict(wWorld, 'host', 'db', 1)).toBe('denied');
    const wHost = mk('host');
    expect(verdict(wHost, 'host', 'db', 1)).toBe('allowed');
    expect(verdict(wHost, 'remote-node', 'db', 1)).toBe('denied');
    const wRemote = mk('remote-node');
    expect(verdict(wRemote, 'remote-node', 'db', 1)).toBe('allowed');
    expect(verdict(wRemote, 'host', 'db', 1)).toBe('denied');
    const wCluster = mk('cluster');
    for (const p of ['frontend', 'other', 'host', 'remote-node']) expect(verdict(wCluster, p, 'db', 1)).toBe('allowed');
    expect(verdict(wCluster, 'world', 'db', 1)).toBe('denied');
    const wAll = mk('all');
    for (const p of ['frontend', 'host', 'world', '1.2.3.4']) expect(verdict(wAll, p, 'db', 1)).toBe('allowed');
  });
  it('entity all is one wildcard entry', () => {
    const w = world(`endpointSelector: {matchLabels: {app: db}}\ningress: [{fromEntities: [all]}]\n`);
    const entries = w.engine.endpoint('db')!.entries;
    expect(entries.map((e) => e.key)).toEqual(
      expect.arrayContaining([
        { identity: 0, direction: 0, protocol: 0, port: 0, portPrefixLen: 0 },
        { identity: 0, direction: 1, protocol: 0, port: 0, portPrefixLen: 0 },
      ]),
    );
    expect(entries).toHaveLength(2);
  });
});

describe('CIDR', () => {
  const egressCidr = `
endpointSelector: {matchLabels: {app: frontend}}
egress:
- toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.96.0.0/12]}]
- toCIDR: [192.168.1.1]
`;
  it('CIDR sets with except', () => {
    const w = world(egressCidr);
    expect(verdict(w, 'frontend', '10.1.2.3', 443)).toBe('allowed');
    expect(verdict(w, 'frontend', '10.96.0.10', 443)).toBe('denied');
    expect(verdict(w, 'frontend', '10.111.255.255', 443)).toBe('denied');
    expect(verdict(w, 'frontend', '10.112.0.0', 443)).toBe('allowed');
    expect(verdict(w, 'frontend', '192.168.1.1', 443)).toBe('allowed');
    expect(verdict(w, 'frontend', '192.168.1.2', 443)).toBe('denied');
    expect(verdict(w, 'frontend', '8.8.8.8', 53, 'UDP')).toBe('denied');
    expect(verdict(w, 'frontend', 'world', 53, 'UDP')).toBe('denied');
  });
  it('CIDR rules do not select cluster endpoints whose IP is inside the range', () => {
    const w = world(egressCidr);
    expect(verdict(w, 'frontend', '10.0.1.11', 80)).toBe('denied');
    expect(verdict(w, 'frontend', 'backend', 80)).toBe('denied');
  });
  it('a more specific prefix from another rule still matches the broader rule', () => {
    const w = world(egressCidr, `endpointSelector: {matchLabels: {app: db}}\negress: [{toCIDR: [10.1.0.0/16]}]\n`);
    const ip = w.resolvePeer('10.1.2.3');
    expect(ip).toMatchObject({ kind: 'address', prefix: '10.1.0.0/16' });
    expect(verdict(w, 'frontend', '10.1.2.3', 443)).toBe('allowed');
    expect(verdict(w, 'db', '10.1.2.3', 443)).toBe('allowed');
    expect(verdict(w, 'db', '10.2.0.1', 443)).toBe('denied');
  });
  it('0.0.0.0/0 selects world; world entity selects CIDR identities', () => {
    const w = world(
      `endpointSelector: {matchLabels: {app: db}}\negress: [{toCIDR: [0.0.0.0/0]}]\n`,
      `endpointSelector: {matchLabels: {app: backend}}\negress: [{toEntities: [world]}]\n`,
      `endpointSelector: {matchLabels: {app: dev}}\negress: [{toCIDR: [10.9.0.0/16]}]\n`,
    );
    expect(verdict(w, 'db', '8.8.8.8', 53, 'UDP')).toBe('allowed');
    expect(verdict(w, 'db', '10.9.1.1', 53, 'UDP')).toBe('allowed');
    expect(verdict(w, 'db', 'frontend', 80)).toBe('denied');
    expect(verdict(w, 'backend', '10.9.1.1', 80)).toBe('allowed');
    expect(verdict(w, 'backend', '8.8.8.8', 80)).toBe('allowed');
    expect(verdict(w, 'backend', 'frontend', 80)).toBe('denied');
  });
  it('ipcache output: one local identity per prefix, excepts included', () => {
    const w = world(egressCidr);
    const entries = w.engine.ipcache().map((e) => [e.prefix, e.identity]);
    expect(entries).toEqual([
      ['10.0.0.0/8', (1 << 24) | 1],
      ['10.96.0.0/12', (1 << 24) | 2],
      ['192.168.1.1/32', (1 << 24) | 3],
    ]);
  });
});

describe('L7 HTTP', () => {
  const l7 = `
endpointSelector: {matchLabels: {app: backend}}
ingress:
- fromEndpoints: [{matchLabels: {app: frontend}}]
  toPorts:
  - ports: [{port: "80", protocol: TCP}]
    rules:
      http:
      - {method: GET, path: "/public.*"}
      - {method: "PUT|POST", path: "/api/v[0-9]+/items", headers: ["X-Token: abc.*"]}
`;
  it('evaluates HTTP requests with full-match regexes', () => {
    const w = world(l7);
    expect(verdict(w, 'frontend', 'backend', 80, 'TCP', { method: 'GET', path: '/public/x' })).toBe('allowed');
    expect(verdict(w, 'frontend', 'backend', 80, 'TCP', { method: 'GET', path: '/private' })).toBe('denied');
    expect(verdict(w, 'frontend', 'backend', 80, 'TCP', { method: 'GETX', path: '/public' })).toBe('denied');
    expect(verdict(w, 'frontend', 'backend', 80, 'TCP', { method: 'POST', path: '/api/v1/items', headers: [['x-token', 'abcdef']] })).toBe('allowed');
    expect(verdict(w, 'frontend', 'backend', 80, 'TCP', { method: 'POST', path: '/api/v1/items' })).toBe('denied');
    expect(verdict(w, 'frontend', 'backend', 80, 'TCP', { method: 'POST', path: '/api/v1/items/2', headers: [['X-Token', 'abc']] })).toBe('denied');
    expect(verdict(w, 'frontend', 'backend', 81)).toBe('denied');
    expect(verdict(w, 'db', 'backend', 80, 'TCP', { method: 'GET', path: '/public' })).toBe('denied');
  });
  it('the map entry redirects to a proxy port', () => {
    const w = world(l7);
    const t = w.trace({ from: 'frontend', to: 'backend', dport: 80, protocol: 'TCP' });
    expect(t.verdict).toBe('allowed');
    expect(t.ingress.proxyPort).toBeGreaterThan(0);
  });
  it('an L4-only allow on the same port lets every request through', () => {
    const w = world(l7, `endpointSelector: {matchLabels: {app: backend}}\ningress: [{toPorts: [{ports: [{port: "80", protocol: TCP}]}]}]\n`);
    expect(verdict(w, 'frontend', 'backend', 80, 'TCP', { method: 'DELETE', path: '/x' })).toBe('allowed');
    expect(w.trace({ from: 'frontend', to: 'backend', dport: 80, protocol: 'TCP' }).ingress.proxyPort).toBe(0);
  });
  it('an L3-only allow of the same peer lets every request through', () => {
    const w = world(l7, backendFromFrontend);
    expect(verdict(w, 'frontend', 'backend', 80, 'TCP', { method: 'DELETE', path: '/x' })).toBe('allowed');
  });
  it('an L3-only allow of a peer is not restricted by a wildcard L7 rule on the port', () => {
    const w = world(
      `endpointSelector: {matchLabels: {app: backend}}\ningress: [{toPorts: [{ports: [{port: "80"}], rules: {http: [{method: GET}]}}]}]\n`,
      backendFromFrontend,
    );
    expect(verdict(w, 'frontend', 'backend', 80, 'TCP', { method: 'DELETE', path: '/x' })).toBe('allowed');
    expect(verdict(w, 'db', 'backend', 80, 'TCP', { method: 'DELETE', path: '/x' })).toBe('denied');
    expect(verdict(w, 'db', 'backend', 80, 'TCP', { method: 'GET', path: '/x' })).toBe('allowed');
  });
  it('host regexes and HTTP rules from two rules on one port are ORed', () => {
    const w = world(
      `endpointSelector: {matchLabels: {app: backend}}\ningress: [{toPorts: [{ports: [{port: "80"}], rules: {http: [{host: "api\\\\.example\\\\.com"}]}}]}]\n`,
      `endpointSelector: {matchLabels: {app: backend}}\ningress: [{fromEndpoints: [{matchLabels: {app: frontend}}], toPorts: [{ports: [{port: "80"}], rules: {http: [{path: "/frontend"}]}}]}]\n`,
    );
    expect(verdict(w, 'db', 'backend', 80, 'TCP', { host: 'api.example.com' })).toBe('allowed');
    expect(verdict(w, 'db', 'backend', 80, 'TCP', { host: 'apixexample.com' })).toBe('denied');
    expect(verdict(w, 'frontend', 'backend', 80, 'TCP', { path: '/frontend' })).toBe('allowed');
    expect(verdict(w, 'frontend', 'backend', 80, 'TCP', { host: 'api.example.com' })).toBe('allowed');
    expect(verdict(w, 'db', 'backend', 80, 'TCP', { path: '/frontend' })).toBe('denied');
  });
});

describe('verdict needs both sides', () => {
  it('source egress AND destination ingress', () => {
    const w = world(
      `endpointSelector: {matchLabels: {app: frontend}}\negress: [{toEndpoints: [{matchLabels: {app: backend}}]}]\n`,
      `endpointSelector: {matchLabels: {app: backend}}\ningress: [{fromEndpoints: [{matchLabels: {app: db}}]}]\n`,
    );
    const t = w.trace({ from: 'frontend', to: 'backend', dport: 80, protocol: 'TCP' });
    expect(t.egress.verdict).toBe('allowed');
    expect(t.ingress.verdict).toBe('denied');
    expect(t.verdict).toBe('denied');
    expect(verdict(w, 'frontend', 'db', 80)).toBe('denied');
    expect(verdict(w, 'db', 'backend', 80)).toBe('allowed');
  });
});
