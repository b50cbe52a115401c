import { describe, expect, it } from 'vitest';
import { Direction } from '../../bpf/policy-map/types.js';
import { ProxyPortAllocator } from './port-allocator.js';

describe('ProxyPortAllocator', () => {
  it('is stable per tuple, distinct across tuples, frees unused ports and reports exhaustion', () => {
    const a = new ProxyPortAllocator(20000, 20002);
    const web = a.portFor('web', Direction.ingress, 6, 80);
    expect(a.portFor('web', Direction.ingress, 6, 80)).toBe(web);
    const eg = a.portFor('web', Direction.egress, 6, 80);
    const api = a.portFor('api', Direction.ingress, 6, 80);
    expect(new Set([web, eg, api]).size).toBe(3);
    expect(() => a.portFor('db', Direction.ingress, 6, 5432)).toThrow(/no free proxy port/);
    a.retain(new Set([web, api]));
    expect(a.portFor('db', Direction.ingress, 6, 5432)).toBe(eg);
    expect(a.portFor('web', Direction.ingress, 6, 80)).toBe(web);
    expect(() => new ProxyPortAllocator(80, 90)).toThrow(/invalid/);
  });
});
