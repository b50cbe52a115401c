import { describe, expect, it } from 'vitest';
import { ApiClientError, type ApiClient } from '../api/client.js';
import type { AddEndpointRequest, EndpointJson } from '../api/types.js';
import { decodeLabelsArg, decodeStdin, mergeLabels, parseNetConf } from './config.js';
import { parseCniArgs, parseCniEnv } from './env.js';
import { CniError } from './errors.js';
import { runCni, type CniDeps } from './plugin.js';
import { buildResult, endpointName, gatewayOf } from './result.js';

const code = (f: () => unknown): number => {
  try {
    f();
  } catch (err) {
    if (err instanceof CniError) return err.code;
    throw err;
  }
  throw new Error('no error');
};
const ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc123', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin:/usr/lib/cni' };
const CONF = { cniVersion: '1.0.0', name: 'ward', type: 'ward-cni' };

describe('CNI env', () => {
  it('reads the CNI_* variables', () => {
    const e = parseCniEnv({ ...ENV, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web;WARD_LABELS=app:web' });
    expect(e).toMatchObject({ command: 'ADD', containerId: 'abc123', netns: '/run/netns/x', ifname: 'eth0', path: ['/opt/cni/bin', '/usr/lib/cni'] });
    expect(e.args.get('K8S_POD_NAME')).toBe('web');
    expect(parseCniEnv({ CNI_COMMAND: 'VERSION' }).command).toBe('VERSION');
    expect(parseCniEnv({ ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns).toBeUndefined();
  });
  it('refuses bad variables with code 4, naming them', () => {
    for (const bad of [{ CNI_COMMAND: 'UP' }, { CNI_CONTAINERID: '' }, { CNI_CONTAINERID: 'a/b' }, { CNI_IFNAME: 'x'.repeat(16) }, { CNI_NETNS: '' }, { CNI_NETNS: 'rel' }, { CNI_ARGS: 'novalue' }]) {
      expect(code(() => parseCniEnv({ ...ENV, ...bad }))).toBe(4);
    }
    expect(() => parseCniEnv({ ...ENV, CNI_IFNAME: '' })).toThrow(/CNI_IFNAME/);
    expect(parseCniArgs('a=1;;b=x=y').get('b')).toBe('x=y');
  });
});

describe('CNI network config and labels', () => {
  it('parses the config with defaults', () => {
    expect(parseNetConf({ ...CONF, labels: ['env=prod'], extra: 1 })).toEqual({ cniVersion: '1.0.0', name: 'ward', apiSocket: '/run/ward/agent.sock', labels: ['env=prod'] });
    expect(parseNetConf({ ...CONF, labels: { env: 'prod' }, apiSocket: '/tmp/a.sock' }).labels).toEqual(['env=prod']);
  });
  it('refuses bad configs with the spec codes', () => {
    expect(code(() => decodeStdin('{'))).toBe(6);
    expect(code(() => decodeStdin('[]'))).toBe(7);
    expect(code(() => parseNetConf({ ...CONF, cniVersion: '9.9.9' }))).toBe(1);
    expect(code(() => parseNetConf({ ...CONF, type: 'bridge' }))).toBe(7);
    expect(code(() => parseNetConf({ ...CONF, name: '' }))).toBe(7);
    expect(code(() => parseNetConf({ ...CONF, apiSocket: 'rel.sock' }))).toBe(7);
    expect(code(() => parseNetConf({ ...CONF, labels: [1] }))).toBe(7);
  });
  it('merges config labels, ward.label.* args and WARD_LABELS (later wins per key)', () => {
    const conf = parseNetConf({ ...CONF, labels: ['env=dev', 'team=a'] });
    const args = parseCniArgs('IgnoreUnknown=1;ward.label.env=prod;WARD_LABELS=app:web+container:tier:front');
    expect(mergeLabels(conf, args)).toEqual(['app=web', 'container:tier=front', 'env=prod', 'team=a']);
    expect(decodeLabelsArg('a:b+c:d')).toEqual(['a=b', 'c=d']);
    expect(code(() => decodeLabelsArg('nocolon'))).toBe(7);
    expect(code(() => mergeLabels(parseNetConf(CONF), new Map()))).toBe(7);
    expect(code(() => mergeLabels(parseNetConf(CONF), parseCniArgs('WARD_LABELS=reserved:host:x')))).toBe(7);
  });
});

describe('CNI result', () => {
  it('names endpoints per attachment and builds the result', () => {
    const n = endpointName('ABCDEF0123456789ff', 'ward', 'eth0');
    expect(n).toMatch(/^cni-abcdef012345-[0-9a-f]{10}$/);
    expect(endpointName('ABCDEF0123456789ff', 'ward', 'eth1')).not.toBe(n);
    expect(endpointName('x'.repeat(200), 'n', 'eth0').length).toBeLessThanOrEqual(63);
    expect(gatewayOf('10.201.0.0/24')).toBe('10.201.0.1');
    expect(gatewayOf('10.201.3.7/16')).toBe('10.201.0.1');
    expect(() => gatewayOf('nope')).toThrow(RangeError);
    const r = buildResult({ cniVersion: '1.0.0', ifname: 'eth0', netns: '/run/netns/x', ip: '10.201.0.2', gateway: '10.201.0.1', mac: 'aa:bb:cc:dd:ee:ff' });
    expect(r).toEqual({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', mac: 'aa:bb:cc:dd:ee:ff', sandbox: '/run/netns/x' }],
      ips: [{ address: '10.201.0.2/32', gateway: '10.201.0.1', interface: 0 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.201.0.1' }],
      dns: {},
    });
    const chained = buildResult({ cniVersion: '0.3.1', ifname: 'eth0', netns: '/n', ip: '10.0.0.2', gateway: '10.0.0.1', prevResult: { interfaces: [{ name: 'lo' }], ips: [], routes: [] } });
    expect(chained.interfaces.length).toBe(2);
    expect(chained.ips[0]).toMatchObject({ version: '4', interface: 1 });
  });
});

/** An in-memory agent API behind the plugin (the e2e test uses the real one). */
function fakeDeps(): { deps: CniDeps; eps: Map<string, EndpointJson>; adds: AddEndpointRequest[] } {
  const eps = new Map<string, EndpointJson>();
  const adds: AddEndpointRequest[] = [];
  const notFound = (): ApiClientError => new ApiClientError(404, 'not found');
  const client = {
    status: () => Promise.resolve({ endpointCidr: '10.9.0.0/24' }),
    getEndpoint: (n: string) => (eps.has(n) ? Promise.resolve(eps.get(n)!) : Promise.reject(notFound())),
    addEndpoint: (req: AddEndpointRequest) => {
      adds.push(req);
      const ep = { name: req.name, netns: req.netns, ip: `10.9.0.${eps.size + 2}`, labels: req.labels, programmed: true } as EndpointJson;
      eps.set(req.name, ep);
      return Promise.resolve(ep);
    },
    deleteEndpoint: (n: string) => (eps.delete(n) ? Promise.resolve() : Promise.reject(notFound())),
  } as unknown as ApiClient;
  return { deps: { client: () => client, link: (_ns, _if) => Promise.resolve({ mac: '02:00:00:00:00:01', ipv4: [...eps.values()].map((e) => e.ip) }) }, eps, adds };
}

describe('runCni', () => {
  it('ADD is idempotent, CHECK passes, DEL twice succeeds', async () => {
    const { deps, eps, adds } = fakeDeps();
    const stdin = JSON.stringify({ ...CONF, labels: ['env=prod'] });
    const env = { ...ENV, CNI_ARGS: 'WARD_LABELS=app:web', CNI_IFNAME: 'net0' };
    const a = await runCni(env, stdin, deps);
    expect(a.code).toBe(0);
    expect(await runCni(env, stdin, deps)).toEqual(a);
    expect(adds).toEqual([{ name: [...eps.keys()][0], labels: ['app=web', 'env=prod'], netns: '/run/netns/x', ifname: 'net0' }]);
    const result = JSON.parse(a.stdout) as Record<string, unknown>;
    expect(await runCni({ ...env, CNI_COMMAND: 'CHECK' }, JSON.stringify({ ...CONF, prevResult: result }), deps)).toEqual({ stdout: '', code: 0 });
    expect(JSON.parse((await runCni({ ...env, CNI_COMMAND: 'CHECK', CNI_NETNS: '/run/netns/y' }, stdin, deps)).stdout)).toMatchObject({ code: 101 });
    expect(await runCni({ ...env, CNI_COMMAND: 'DEL' }, stdin, deps)).toEqual({ stdout: '', code: 0 });
    expect(await runCni({ ...env, CNI_COMMAND: 'DEL' }, stdin, deps)).toEqual({ stdout: '', code: 0 });
    expect(eps.size).toBe(0);
  });
  it('answers VERSION and reports errors as CNI error JSON', async () => {
    const { deps } = fakeDeps();
    expect(JSON.parse((await runCni({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}', deps)).stdout)).toEqual({ cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] });
    const bad = await runCni({ ...ENV }, JSON.stringify({ ...CONF, cniVersion: '0.4.0', labels: 3 }), deps);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ cniVersion: '0.4.0', code: 7 });
    const down = await runCni(ENV, JSON.stringify({ ...CONF, labels: ['a=b'] }), { ...deps, client: () => ({ status: () => Promise.reject(new ApiClientError(0, 'cannot reach')) }) as unknown as ApiClient });
    expect(JSON.parse(down.stdout)).toMatchObject({ code: 11 });
  });
});
