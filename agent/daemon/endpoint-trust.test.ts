import { describe, expect, it } from 'vitest';
import { distrustRemoteEndpoint } from './endpoint-trust.js';

const ok = { keyNode: 'n2', keyIp: '10.200.2.5', value: { node: 'n2', ip: '10.200.2.5', identity: 4242 } };

describe('remote endpoint entries from etcd', () => {
  it('accept a cluster identity for an address outside this node range, under the right node', () => {
    expect(distrustRemoteEndpoint(ok, '10.200.1.0/24')).toBeUndefined();
  });
  it('refuse reserved, CIDR and zero identities', () => {
    for (const identity of [0, 1, 2, 6, (1 << 24) | 3]) {
      expect(distrustRemoteEndpoint({ ...ok, value: { ...ok.value, identity } }, '10.200.1.0/24')).toMatch(/not a cluster identity/);
    }
  });
  it("refuse another node's name, a mismatched ip, and this node's own addresses", () => {
    expect(distrustRemoteEndpoint({ ...ok, value: { ...ok.value, node: 'n3' } }, '10.200.1.0/24')).toMatch(/names node "n3"/);
    expect(distrustRemoteEndpoint({ ...ok, value: { ...ok.value, ip: '10.200.2.6' } }, '10.200.1.0/24')).toMatch(/differs/);
    const mine = { keyNode: 'n2', keyIp: '10.200.1.7', value: { node: 'n2', ip: '10.200.1.7', identity: 4242 } };
    expect(distrustRemoteEndpoint(mine, '10.200.1.0/24')).toMatch(/inside this node's endpoint range/);
  });
});
