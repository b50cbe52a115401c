import { describe, expect, it } from 'vitest';
import { ApiValidationError, resolveNetns, validateAddEndpoint, validateTraceRequest } from './validate.js';

describe('validateAddEndpoint', () => {
  it('accepts a good request and normalises netns names to paths', () => {
    const v = validateAddEndpoint({ name: 'web-1', labels: ['app=web', 'k8s:env=prod'], netns: 'ns1', ip: '10.0.0.5' });
    expect(v.name).toBe('web-1');
    expect(v.labels.toStrings()).toEqual(['app=web', 'k8s:env=prod']);
    expect(v.netns).toBe('/run/netns/ns1');
    expect(resolveNetns('/proc/1/ns/net')).toBe('/proc/1/ns/net');
  });

  it.each([
    [[], /JSON object/],
    [{ name: 'Web', labels: ['a=b'], netns: 'x' }, /name "Web"/],
    [{ name: 'w', labels: [], netns: 'x' }, /labels must be/],
    [{ name: 'w', labels: ['a=b', 'a=c'], netns: 'x' }, /labels:.*twice/],
    [{ name: 'w', labels: ['reserved:host'], netns: 'x' }, /belong to ward/],
    [{ name: 'w', labels: ['a=b'], netns: '../x' }, /absolute/],
    [{ name: 'w', labels: ['a=b'], netns: '/run/netns/../x' }, /normalised/],
    [{ name: 'w', labels: ['a=b'], netns: 'x', ip: 5 }, /ip must be a string/],
    [{ name: 'w', labels: ['a=b'], netns: 'x', extra: 1 }, /unknown field "extra"/],
  ])('refuses %j', (body, msg) => {
    expect(() => validateAddEndpoint(body)).toThrow(ApiValidationError);
    expect(() => validateAddEndpoint(body)).toThrow(msg);
  });
});

describe('validateTraceRequest', () => {
  it('accepts a trace question and defaults the protocol', () => {
    expect(validateTraceRequest({ from: 'web', to: '10.1.0.5', dport: 80 })).toEqual({ from: 'web', to: '10.1.0.5', dport: 80, protocol: 'TCP' });
    expect(validateTraceRequest({ from: 'world', to: 'db', dport: 0, protocol: 'ANY', http: { method: 'GET', path: '/x', headers: [['A', 'b']] } }).http).toEqual({ method: 'GET', path: '/x', headers: [['A', 'b']] });
  });

  it('names the bad field', () => {
    expect(() => validateTraceRequest({ from: 'web', to: 'db', dport: 70000 })).toThrow(/dport/);
    expect(() => validateTraceRequest({ from: 'web', to: 'db', dport: 1, protocol: 'ICMP' })).toThrow(/protocol/);
    expect(() => validateTraceRequest({ from: '', to: 'db', dport: 1 })).toThrow(/from/);
    expect(() => validateTraceRequest({ from: 'a', to: 'b', dport: 1, extra: 1 })).toThrow(/unknown field "extra"/);
    expect(() => validateTraceRequest({ from: 'a', to: 'b', dport: 1, http: { headers: 'x' } })).toThrow(/http.headers/);
  });
});

describe('validateAddEndpoint ifname', () => {
  it('accepts an optional workload interface name and refuses bad ones', () => {
    expect(validateAddEndpoint({ name: 'w', labels: ['a=b'], netns: 'x' }).ifname).toBeUndefined();
    expect(validateAddEndpoint({ name: 'w', labels: ['a=b'], netns: 'x', ifname: 'net1' }).ifname).toBe('net1');
    for (const bad of ['', 'a/b', 'sixteen-chars-xx', 'a b', 7]) {
      expect(() => validateAddEndpoint({ name: 'w', labels: ['a=b'], netns: 'x', ifname: bad })).toThrow(ApiValidationError);
    }
  });
});
