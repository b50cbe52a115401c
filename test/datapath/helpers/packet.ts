import { parseIpv4 } from '../../../bpf/byteorder.js';

export interface FrameSpec {
  saddr: string;
  daddr: string;
  protocol: number;
  sport?: number;
  dport?: number;
  /** TCP flags byte (default SYN). */
  tcpFlags?: number;
  /** ICMP type (default 8, echo request); the identifier goes in sport. */
  icmpType?: number;
  /** IPv4 fragment offset in 8-byte units (non-zero = non-first fragment). */
  fragOffset?: number;
  /** Overrides: IHL in words, and bytes to cut from the end. */
  ihl?: number;
  truncate?: number;
  etherType?: number;
}

export const TCP_SYN = 0x02;
export const TCP_ACK = 0x10;

/** A minimal Ethernet + IPv4 (+ L4) frame; checksums are not filled (the programs ignore them). */
export function frame(s: FrameSpec): Buffer {
  const l4len = s.protocol === 6 ? 20 : s.protocol === 17 ? 8 : s.protocol === 132 ? 12 : s.protocol === 1 ? 8 : 8;
  const ihl = s.ihl ?? 5;
  const buf = Buffer.alloc(14 + 20 + l4len + 4);
  buf.fill(0x02, 0, 12);
  buf.writeUInt16BE(s.etherType ?? 0x0800, 12);
  const ip = 14;
  buf.writeUInt8(0x40 | ihl, ip);
  buf.writeUInt16BE(20 + l4len + 4, ip + 2);
  buf.writeUInt16BE(s.fragOffset ?? 0, ip + 6);
  buf.writeUInt8(64, ip + 8);
  buf.writeUInt8(s.protocol, ip + 9);
  buf.writeUInt32BE(parseIpv4(s.saddr), ip + 12);
  buf.writeUInt32BE(parseIpv4(s.daddr), ip + 16);
  const l4 = ip + 20;
  if (s.protocol === 1) {
    buf.writeUInt8(s.icmpType ?? 8, l4);
    buf.writeUInt16BE(s.sport ?? 1, l4 + 4);
  } else {
    buf.writeUInt16BE(s.sport ?? 40000, l4);
    buf.writeUInt16BE(s.dport ?? 80, l4 + 2);
    if (s.protocol === 6) {
      buf.writeUInt8(0x50, l4 + 12);
      buf.writeUInt8(s.tcpFlags ?? TCP_SYN, l4 + 13);
    }
    if (s.protocol === 17) buf.writeUInt16BE(8 + 4, l4 + 4);
  }
  return s.truncate ? buf.subarray(0, buf.length - s.truncate) : buf;
}

/** An IPv6 frame (only the EtherType and version matter to the programs). */
export function ipv6Frame(): Buffer {
  const buf = Buffer.alloc(14 + 40 + 8);
  buf.writeUInt16BE(0x86dd, 12);
  buf.writeUInt8(0x60, 14);
  return buf;
}

export function arpFrame(): Buffer {
  const buf = Buffer.alloc(14 + 28);
  buf.writeUInt16BE(0x0806, 12);
  return buf;
}
