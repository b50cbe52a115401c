import { describe, expect, it } from 'vitest';
import { LabelSet } from '../../../identity/index.js';
import { PolicyEngine, type DesiredEntry } from '../../../agent/calc/index.js';
import { parsePolicy } from '../../../agent/policy/index.js';

const ls = (...l: string[]) => LabelSet.parse(l);
const rules = (yaml: string) => parsePolicy(yaml, 'test.yaml').rules;
const keys = (es: readonly DesiredEntry[]) =>
  es.map((e) => `${e.key.identity}/${e.key.direction === 0 ? 'in' : 'eg'}/${e.key.protocol}/${e.key.port}/${e.key.portPrefixLen}${e.entry.deny ? ' deny' : ''}${e.entry.proxyPort ? ' l7' : ''}`).sort();

function setup(): PolicyEngine {
  const e = new PolicyEngine({ proxyPortFor: (_ep, dir, _proto, port) => 20000 + dir * 1000 + (port % 1000) });
  for (let i = 0; i < 10; i++) e.upsertEndpoint(`ep${i}`, ls(`app=svc${i}`));
  e.updateIdentities([
    [300, ls('app=client', 'team=a')],
    [301, ls('app=client', 'team=b')],
  ]);
  return e;
}

describe('PolicyEngine incrementality', () => {
  it('without policy every endpoint has one wildcard allow per direction', () => {
    const e = setup();
    e.flush();
    expect(keys(e.endpoint('ep0')!.entries)).toEqual(['0/eg/0/0/0', '0/in/0/0/0']);
  });
  it('a rule change recomputes only the endpoints it selects', () => {
    const e = setup();
    e.flush();
    e.upsertPolicy('p', rules('endpointSelector: {matchLabels: {app: svc3}}\ningress: [{fromEndpoints: [{matchLabels: {app: client}}], toPorts: [{ports: [{port: "80", protocol: TCP}]}]}]\n'));
    const r = e.flush();
    expect(r.stats.fullRecomputes).toBe(1);
    expect([...r.endpoints.keys()]).toEqual(['ep3']);
    expect(keys(r.endpoints.get('ep3')!.added)).toEqual(['300/in/6/80/16', '301/in/6/80/16']);
    expect(r.endpoints.get('ep3')!.deleted).toEqual([{ identity: 0, direction: 0, protocol: 0, port: 0, portPrefixLen: 0 }]);
    expect(r.revision).toBe(1);
  });
  it('an identity add touches only endpoints whose selectors select it', () => {
    const e = setup();
    e.upsertPolicy('p', rules('- endpointSelector: {matchLabels: {app: svc3}}\n  ingress: [{fromEndpoints: [{matchLabels: {team: a}}]}]\n- endpointSelector: {matchLabels: {app: svc4}}\n  ingress: [{fromEndpoints: [{matchLabels: {team: b}}]}]\n'));
    e.flush();
    e.updateIdentities([[302, ls('app=client', 'team=b')]]);
    const r = e.flush();
    expect(r.stats.fullRecomputes).toBe(0);
    expect(r.stats.identityRecomputes).toBe(1);
    expect([...r.endpoints.keys()]).toEqual(['ep4']);
    expect(keys(r.endpoints.get('ep4')!.added)).toEqual(['302/in/0/0/0']);
    e.updateIdentities([[303, ls('app=nobody')]]);
    const quiet = e.flush();
    expect(quiet.endpoints.size).toBe(0);
    expect(quiet.stats.identityRecomputes).toBe(0);
    e.updateIdentities([], [302]);
    const del = e.flush();
    expect(del.endpoints.get('ep4')).toEqual({ added: [], deleted: [{ identity: 302, direction: 0, protocol: 0, port: 0, portPrefixLen: 0 }] });
  });
  it('allow-all from all entities or an L4-only rule is one wildcard entry however many identities exist', () => {
    const e = setup();
    for (let i = 0; i < 500; i++) e.updateIdentities([[1000 + i, ls(`app=x${i}`)]]);
    e.upsertPolicy('p', rules('endpointSelector: {matchLabels: {app: svc1}}\ningress: [{fromEntities: [all]}, {toPorts: [{ports: [{port: "443"}]}]}]\n'));
    e.flush();
    expect(keys(e.endpoint('ep1')!.entries)).toEqual(['0/eg/0/0/0', '0/in/0/0/0', '0/in/132/443/16', '0/in/17/443/16', '0/in/6/443/16']);
  });
  it('deny removes covered allow entries of the same identity', () => {
    const e = setup();
    e.upsertPolicy(
      'p',
      rules(`endpointSelector: {matchLabels: {app: svc0}}
ingress:
- fromEndpoints: [{matchLabels: {team: a}}]
  toPorts: [{ports: [{port: "80", protocol: TCP}, {port: "8000", endPort: 8003, protocol: TCP}]}]
ingressDeny:
- fromEndpoints: [{matchLabels: {team: a}}]
  toPorts: [{ports: [{port: "0", protocol: TCP}]}]
`),
    );
    e.flush();
    expect(keys(e.endpoint('ep0')!.entries)).toEqual(['0/eg/0/0/0', '300/in/6/0/0 deny']);
  });
  it('L7 entries carry a proxy port and the HTTP rules; an endpoint relabel recomputes it', () => {
    const e = setup();
    e.upsertPolicy('p', rules('endpointSelector: {matchLabels: {app: svc0}}\ningress: [{fromEndpoints: [{matchLabels: {team: a}}], toPorts: [{ports: [{port: "80"}], rules: {http: [{method: GET}]}}]}]\n'));
    e.flush();
    const [l7] = e.endpoint('ep0')!.entries.filter((x) => x.key.identity === 300);
    expect(l7!.entry).toEqual({ deny: false, proxyPort: 20080 });
    expect(l7!.http).toEqual([{ method: 'GET', headers: [] }]);
    e.upsertEndpoint('ep0', ls('app=svc9'));
    const r = e.flush();
    expect(r.stats.fullRecomputes).toBe(1);
    expect(keys(e.endpoint('ep0')!.entries)).toEqual(['0/eg/0/0/0', '0/in/0/0/0']);
  });
  it('CIDR identities: allocated for every prefix, in the ipcache output, freed with the rule', () => {
    const e = setup();
    e.flush();
    e.upsertPolicy('p', rules('endpointSelector: {matchLabels: {app: svc0}}\negress: [{toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]}, {toEntities: [world]}]\n'));
    const r = e.flush();
    expect(r.ipcache.added.map((x) => [x.prefix, x.identity])).toEqual([
      ['10.0.0.0/8', 16777217],
      ['10.1.0.0/16', 16777218],
    ]);
    expect(keys(e.endpoint('ep0')!.entries)).toEqual(['0/in/0/0/0', '16777217/eg/0/0/0', '16777218/eg/0/0/0', '2/eg/0/0/0']);
    e.deletePolicy('p');
    const r2 = e.flush();
    expect(r2.ipcache.deleted.map((x) => x.prefix)).toEqual(['10.0.0.0/8', '10.1.0.0/16']);
    expect(e.ipcache()).toEqual([]);
    expect(r2.revision).toBe(2);
  });
  it('an empty flush reports nothing; a change undone before the flush reports nothing', () => {
    const e = setup();
    e.upsertPolicy('p', rules('endpointSelector: {matchLabels: {app: svc0}}\ningress: [{fromEndpoints: [{matchLabels: {team: a}}]}]\n'));
    e.flush();
    const empty = e.flush();
    expect(empty.endpoints.size + empty.ipcache.added.length + empty.ipcache.deleted.length).toBe(0);
    e.updateIdentities([[302, ls('team=a')]]);
    e.updateIdentities([], [302]);
    e.upsertPolicy('q', rules('endpointSelector: {matchLabels: {app: svc0}}\negress: [{toCIDR: [10.0.0.0/8]}]\n'));
    e.deletePolicy('q');
    const undone = e.flush();
    expect(undone.endpoints.size).toBe(0);
    expect(undone.ipcache).toEqual({ added: [], deleted: [] });
    expect(undone.revision).toBe(3);
  });
  it('endpoint removal deletes all its entries and reports it', () => {
    const e = setup();
    e.flush();
    e.deleteEndpoint('ep2');
    const r = e.flush();
    expect(r.removedEndpoints).toEqual(['ep2']);
    expect(r.endpoints.get('ep2')!.deleted).toHaveLength(2);
    expect(e.endpoint('ep2')).toBeUndefined();
  });
});
