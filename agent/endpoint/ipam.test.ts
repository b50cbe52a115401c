import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EndpointConflictError, EndpointInvalidError, StateFileError } from './errors.js';
import { Ipam } from './ipam.js';
import { EndpointStateFile } from './state-file.js';
import type { EndpointRecord } from './types.js';

describe('Ipam', () => {
  it('hands out addresses after the gateway and checks requested ones', () => {
    const ipam = new Ipam('10.200.1.0/30');
    expect(ipam.gateway).toBe('10.200.1.1');
    expect(ipam.next(new Set())).toBe('10.200.1.2');
    expect(() => ipam.next(new Set(['10.200.1.2']))).toThrow(EndpointConflictError);
    const big = new Ipam('10.200.0.0/24');
    expect(big.check('10.200.0.077', new Set())).toBe('10.200.0.77');
    expect(() => big.check('10.200.1.5', new Set())).toThrow(/outside/);
    expect(() => big.check('10.200.0.1', new Set())).toThrow(/gateway/);
    expect(() => big.check('10.200.0.255', new Set())).toThrow(EndpointInvalidError);
    expect(() => big.check('10.200.0.9', new Set(['10.200.0.9']))).toThrow(/already used/);
    expect(() => big.check('nope', new Set())).toThrow(/not an IPv4/);
  });
});

describe('EndpointStateFile', () => {
  const rec: EndpointRecord = { name: 'web', id: 1, labels: ['app=web'], netns: '/run/netns/a', ifname: 'lxc0123456789a', ip: '10.0.0.2', identity: 300, createdAtMs: 1 };

  it('round-trips, starts empty, and refuses malformed files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ward-state-'));
    try {
      const f = new EndpointStateFile(join(dir, 'sub'));
      expect(f.load()).toEqual([]);
      f.save([rec, { ...rec, name: 'db', id: 0 }]);
      expect(f.load().map((r) => r.name)).toEqual(['db', 'web']);
      expect(JSON.parse(readFileSync(f.path, 'utf8'))).toMatchObject({ v: 1 });
      writeFileSync(f.path, '{"v":1,"endpoints":[{"name":"X"}]}');
      expect(() => f.load()).toThrow(StateFileError);
      writeFileSync(f.path, 'garbage');
      expect(() => f.load()).toThrow(/not JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
