import { readU32Host, writeU32Host } from '../byteorder.js';

/**
 * Kernel layout of the endpoints map (hash), mirroring `struct ward_endpoint_value`:
 *   key   (4 B):  u32 ifindexHost (host-side veth)
 *   value (16 B): u32 endpointIdHost | u32 identityHost | u32 flagsHost | u32 reserved
 */
export const ENDPOINT_KEY_SIZE = 4;
export const ENDPOINT_VALUE_SIZE = 16;
/** Fail closed: the datapath drops all of the endpoint's traffic. */
export const ENDPOINT_FLAG_LOCKDOWN = 0x1;

export interface EndpointValueRaw {
  endpointIdHost: number;
  identityHost: number;
  flagsHost: number;
}

export function encodeEndpointKey(ifindexHost: number, buf: Buffer = Buffer.alloc(ENDPOINT_KEY_SIZE), off = 0): Buffer {
  writeU32Host(buf, ifindexHost, off);
  return buf;
}
export function decodeEndpointKey(buf: Buffer, off = 0): number {
  return readU32Host(buf, off);
}

export function encodeEndpointValue(v: EndpointValueRaw, buf: Buffer = Buffer.alloc(ENDPOINT_VALUE_SIZE), off = 0): Buffer {
  writeU32Host(buf, v.endpointIdHost, off);
  writeU32Host(buf, v.identityHost, off + 4);
  writeU32Host(buf, v.flagsHost, off + 8);
  writeU32Host(buf, 0, off + 12);
  return buf;
}
export function decodeEndpointValue(buf: Buffer, off = 0): EndpointValueRaw {
  return { endpointIdHost: readU32Host(buf, off), identityHost: readU32Host(buf, off + 4), flagsHost: readU32Host(buf, off + 8) };
}
