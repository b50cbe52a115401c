import { readU32Host, readU64Host, writeU32Host } from '../byteorder.js';

/**
 * Counters map (hash), mirroring `struct ward_metrics_key` / `struct ward_metrics_value`:
 *   key   (8 B):  u32 endpointIdHost | u8 direction | u8 reason | u16 pad
 *   value (16 B): u64 packets | u64 bytes
 */
export const METRICS_KEY_SIZE = 8;
export const METRICS_VALUE_SIZE = 16;

export interface CounterKey {
  endpointId: number;
  direction: number;
  reason: number;
}

export function encodeCounterKey(k: CounterKey, buf: Buffer = Buffer.alloc(METRICS_KEY_SIZE), off = 0): Buffer {
  writeU32Host(buf, k.endpointId, off);
  buf.writeUInt8(k.direction, off + 4);
  buf.writeUInt8(k.reason, off + 5);
  buf.writeUInt16LE(0, off + 6);
  return buf;
}

export function decodeCounterKey(buf: Buffer, off = 0): CounterKey {
  return { endpointId: readU32Host(buf, off), direction: buf.readUInt8(off + 4), reason: buf.readUInt8(off + 5) };
}

export function decodeCounterValue(buf: Buffer, off = 0): { packets: number; bytes: number } {
  return { packets: Number(readU64Host(buf, off)), bytes: Number(readU64Host(buf, off + 8)) };
}
