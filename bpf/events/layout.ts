import { formatIpv4, ntohs, readIpv4Network, readU16Host, readU32Host, readU64Host } from '../byteorder.js';
import { EventType, isDropReason, reasonName } from '../reasons.js';

/**
 * Ring-buffer event, mirroring `struct ward_event` (48 B):
 *   u64 tsNsHost | u32 endpointIdHost | u32 remoteIdentityHost | be32 saddr | be32 daddr
 *   | be16 sportNetwork | be16 dportNetwork | u8 protocol | u8 direction | u8 type | u8 reason
 *   | u32 ifindexHost | be16 proxyPortNetwork | u16 pad | u32 pktLenHost | u32 reserved
 */
export const EVENT_SIZE = 48;

export interface DatapathEvent {
  readonly type: 'drop' | 'policy-verdict';
  /** Numeric reason (see Reason) and its name. */
  readonly reason: number;
  readonly reasonName: string;
  /** bpf_ktime_get_ns() (CLOCK_MONOTONIC) of the packet. */
  readonly tsNs: bigint;
  readonly endpointId: number;
  readonly remoteIdentity: number;
  readonly saddr: string;
  readonly daddr: string;
  readonly sport: number;
  readonly dport: number;
  readonly protocol: number;
  /** Policy direction of the endpoint. */
  readonly direction: 'ingress' | 'egress';
  readonly ifindex: number;
  readonly proxyPort: number;
  readonly length: number;
}

export function decodeEvent(buf: Buffer, off = 0): DatapathEvent {
  if (buf.length - off < EVENT_SIZE) throw new RangeError(`event of ${buf.length - off} bytes, want ${EVENT_SIZE}`);
  const reason = buf.readUInt8(off + 31);
  const type = buf.readUInt8(off + 30);
  return {
    type: type === EventType.drop || (type !== EventType.policyVerdict && isDropReason(reason)) ? 'drop' : 'policy-verdict',
    reason,
    reasonName: reasonName(reason),
    tsNs: readU64Host(buf, off),
    endpointId: readU32Host(buf, off + 8),
    remoteIdentity: readU32Host(buf, off + 12),
    saddr: formatIpv4(readIpv4Network(buf, off + 16)),
    daddr: formatIpv4(readIpv4Network(buf, off + 20)),
    sport: ntohs(readU16Host(buf, off + 24)),
    dport: ntohs(readU16Host(buf, off + 26)),
    protocol: buf.readUInt8(off + 28),
    direction: buf.readUInt8(off + 29) === 0 ? 'ingress' : 'egress',
    ifindex: readU32Host(buf, off + 32),
    proxyPort: ntohs(readU16Host(buf, off + 36)),
    length: readU32Host(buf, off + 40),
  };
}
