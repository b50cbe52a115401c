import { describe, expect, it } from 'vitest';
import { DesiredIpcache } from './desired-ipcache.js';
import { EndpointIps } from './endpoint-ips.js';

describe('DesiredIpcache', () => {
  it('layers sources (endpoint > node > cidr) and returns net changes only', () => {
    const c = new DesiredIpcache();
    c.set('cidr', '10.0.0.5/32', { identity: 16777217 });
    c.set('endpoint', '10.0.0.5', { identity: 300 });
    expect(c.takeChanges()).toEqual({ upserts: [{ cidr: '10.0.0.5/32', identity: 300 }], deletes: [] });
    c.delete('endpoint', '10.0.0.5/32');
    expect(c.takeChanges()).toEqual({ upserts: [{ cidr: '10.0.0.5/32', identity: 16777217 }], deletes: [] });
    c.set('endpoint', '10.0.0.5', { identity: 300 });
    c.delete('endpoint', '10.0.0.5');
    expect(c.takeChanges()).toEqual({ upserts: [], deletes: [] }); // set+delete in one round: nothing
    c.delete('cidr', '10.0.0.5/32');
    expect(c.takeChanges()).toEqual({ upserts: [], deletes: ['10.0.0.5/32'] });
    expect(c.size).toBe(0);
  });

  it('takeAll gives every effective entry and resets the baseline', () => {
    const c = new DesiredIpcache();
    c.set('node', '192.168.1.1', { identity: 1 });
    c.set('endpoint', '10.0.0.2', { identity: 400, nodeAddress: '192.168.1.2' });
    expect(c.takeAll()).toEqual([
      { cidr: '192.168.1.1/32', identity: 1 },
      { cidr: '10.0.0.2/32', identity: 400, nodeAddress: '192.168.1.2' },
    ]);
    expect(c.takeChanges()).toEqual({ upserts: [], deletes: [] });
  });
});

describe('EndpointIps', () => {
  it('holds an IP back until its identity is known', () => {
    const c = new DesiredIpcache();
    const known = new Set<number>([300]);
    const ips = new EndpointIps(c, (id) => known.has(id));
    ips.set('a', '10.0.0.2', 300);
    ips.set('b', '10.0.0.3', 301);
    expect(c.takeChanges().upserts.map((e) => e.cidr)).toEqual(['10.0.0.2/32']);
    expect(ips.waitingCount).toBe(1);
    known.add(301);
    ips.identitiesKnown([301]);
    expect(c.takeChanges().upserts).toEqual([{ cidr: '10.0.0.3/32', identity: 301 }]);
    ips.delete('b');
    ips.set('c', '10.0.0.4', 999);
    ips.delete('c'); // never published: nothing to delete
    expect(c.takeChanges()).toEqual({ upserts: [], deletes: ['10.0.0.3/32'] });
  });
});
