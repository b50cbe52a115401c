import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readU16Host, readU32Host, readU64Host, writeU16Host, writeU32Host, writeU64Host } from '../../bpf/byteorder.js';
import { encodeCtKeyRaw, encodeCtValue } from '../../bpf/conntrack/layout.js';
import { encodeEndpointValue } from '../../bpf/endpoint/layout.js';
import { decodeEvent, EVENT_SIZE } from '../../bpf/events/layout.js';
import { encodeIpcacheKeyRaw, encodeIpcacheValueRaw } from '../../bpf/ipcache/layout.js';
import { encodeCounterKey } from '../../bpf/metrics/layout.js';
import { repoRoot } from '../../bpf/paths.js';
import { encodePolicyKeyRaw, encodePolicyValueRaw } from '../../bpf/policy-map/layout.js';
import { sh } from './helpers/sh.js';

// The TypeScript layouts against the C structs as the compiler laid them out (BTF of
// bpf/build/ward_abi.o): every field lands at the C member's offset, in the right byte order.
interface BtfMember {
  name: string;
  bits_offset: number;
}
interface BtfType {
  kind: string;
  name?: string;
  size?: number;
  members?: BtfMember[];
}

const btf = (): Map<string, { size: number; members: Map<string, number> }> => {
  const out = JSON.parse(sh('bpftool', ['-j', 'btf', 'dump', 'file', join(repoRoot(), 'bpf/build/ward_abi.o')])) as { types: BtfType[] };
  const m = new Map<string, { size: number; members: Map<string, number> }>();
  for (const t of out.types) {
    if (t.kind === 'STRUCT' && t.name?.startsWith('ward_')) m.set(t.name, { size: t.size!, members: new Map(t.members!.map((x) => [x.name, x.bits_offset / 8])) });
  }
  return m;
};

type Field = [member: string, width: 1 | 2 | 4 | 8, order: 'host' | 'net', value: number | bigint];

function read(buf: Buffer, off: number, width: 1 | 2 | 4 | 8, order: 'host' | 'net'): number | bigint {
  if (width === 1) return buf.readUInt8(off);
  if (width === 8) return readU64Host(buf, off);
  if (order === 'net') return width === 2 ? buf.readUInt16BE(off) : buf.readUInt32BE(off);
  return width === 2 ? readU16Host(buf, off) : readU32Host(buf, off);
}

const cases: [struct: string, size: number, encode: () => Buffer, fields: Field[]][] = [
  ['ward_policy_key', 12, () => { const b = Buffer.alloc(12); encodePolicyKeyRaw({ prefixLen: 0x11223344, identityHost: 0x55667788, direction: 0x99, protocol: 0xaa, portNetwork: 0xbbcc }, b); return b; },
    [['prefixlen', 4, 'host', 0x11223344], ['identity', 4, 'host', 0x55667788], ['direction', 1, 'host', 0x99], ['protocol', 1, 'host', 0xaa], ['port', 2, 'host', 0xbbcc]]],
  ['ward_policy_value', 8, () => { const b = Buffer.alloc(8); encodePolicyValueRaw({ proxyPortNetwork: 0x1234, flags: 0x56, l4PrefixLen: 0x17 }, b); return b; },
    [['proxy_port', 2, 'host', 0x1234], ['flags', 1, 'host', 0x56], ['l4_prefix_len', 1, 'host', 0x17]]],
  ['ward_ipcache_key', 8, () => { const b = Buffer.alloc(8); encodeIpcacheKeyRaw({ prefixLen: 24, addrNetwork: 0x0a010203 }, b); return b; },
    [['prefixlen', 4, 'host', 24], ['addr', 4, 'net', 0x0a010203]]],
  ['ward_ipcache_value', 8, () => { const b = Buffer.alloc(8); encodeIpcacheValueRaw({ identityHost: 0x01000007, nodeAddrNetwork: 0xc0a80001 }, b); return b; },
    [['identity', 4, 'host', 0x01000007], ['node_addr', 4, 'net', 0xc0a80001]]],
  ['ward_endpoint_value', 16, () => encodeEndpointValue({ endpointIdHost: 0x0102, identityHost: 0x0304, flagsHost: 0x05 }),
    [['endpoint_id', 4, 'host', 0x0102], ['identity', 4, 'host', 0x0304], ['flags', 4, 'host', 5]]],
  ['ward_ct_key', 20, () => encodeCtKeyRaw({ endpointIdHost: 9, saddrNetwork: 0x0a000001, daddrNetwork: 0x0a000002, sportNetwork: 0x1111, dportNetwork: 0x2222, protocol: 6, direction: 1 }),
    [['endpoint_id', 4, 'host', 9], ['saddr', 4, 'net', 0x0a000001], ['daddr', 4, 'net', 0x0a000002], ['sport', 2, 'host', 0x1111], ['dport', 2, 'host', 0x2222], ['protocol', 1, 'host', 6], ['direction', 1, 'host', 1]]],
  ['ward_ct_value', 40, () => encodeCtValue({ createdNs: 1n, lastSeenNs: 2n, packets: 3n, bytes: 4n, remoteIdentity: 5, proxyPort: 0x1234, flags: 1 }),
    [['created_ns', 8, 'host', 1n], ['last_seen_ns', 8, 'host', 2n], ['packets', 8, 'host', 3n], ['bytes', 8, 'host', 4n], ['remote_identity', 4, 'host', 5], ['proxy_port', 2, 'net', 0x1234], ['flags', 1, 'host', 1]]],
  ['ward_metrics_key', 8, () => encodeCounterKey({ endpointId: 0x0a0b, direction: 1, reason: 133 }),
    [['endpoint_id', 4, 'host', 0x0a0b], ['direction', 1, 'host', 1], ['reason', 1, 'host', 133]]],
];

describe('ABI: TypeScript layouts match the C structs (BTF)', () => {
  const structs = btf();
  it.each(cases)('%s', (name, size, encode, fields) => {
    const s = structs.get(name);
    expect(s, name).toBeDefined();
    expect(s!.size).toBe(size);
    const buf = encode();
    expect(buf.length).toBe(size);
    for (const [member, width, order, value] of fields) {
      const off = s!.members.get(member);
      expect(off, `${name}.${member}`).toBeDefined();
      expect(read(buf, off!, width, order), `${name}.${member}`).toBe(value);
    }
  });

  it('ward_event is decoded from the C offsets', () => {
    const s = structs.get('ward_event')!;
    expect(s.size).toBe(EVENT_SIZE);
    const b = Buffer.alloc(EVENT_SIZE);
    const at = (m: string): number => s.members.get(m)!;
    writeU64Host(b, 77n, at('ts_ns'));
    writeU32Host(b, 5, at('endpoint_id'));
    writeU32Host(b, 6, at('remote_identity'));
    b.writeUInt32BE(0x0a000001, at('saddr'));
    b.writeUInt32BE(0x0a000002, at('daddr'));
    b.writeUInt16BE(1000, at('sport'));
    b.writeUInt16BE(2000, at('dport'));
    b.writeUInt8(17, at('protocol'));
    b.writeUInt8(1, at('direction'));
    b.writeUInt8(2, at('type'));
    b.writeUInt8(1, at('reason'));
    writeU32Host(b, 9, at('ifindex'));
    b.writeUInt16BE(15001, at('proxy_port'));
    writeU32Host(b, 99, at('pkt_len'));
    writeU16Host(b, 0, at('pad'));
    expect(decodeEvent(b)).toMatchObject({ tsNs: 77n, endpointId: 5, remoteIdentity: 6, saddr: '10.0.0.1', daddr: '10.0.0.2', sport: 1000, dport: 2000, protocol: 17, direction: 'egress', type: 'policy-verdict', reason: 1, ifindex: 9, proxyPort: 15001, length: 99 });
  });
});
