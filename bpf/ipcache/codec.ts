import { formatIpv4 } from '../byteorder.js';
import type { MapCodec } from '../sync/reconciler.js';
import type { IpcacheValue } from './api.js';
import {
  cidrFromIpcacheKey,
  decodeIpcacheKeyRaw,
  decodeIpcacheValueRaw,
  encodeIpcacheKeyRaw,
  encodeIpcacheValueRaw,
  IPCACHE_KEY_SIZE,
  IPCACHE_VALUE_SIZE,
  ipcacheKeyFromCidr,
  ipcacheValueToRaw,
} from './layout.js';

/** Keys are canonical IPv4 CIDR strings ("10.0.0.0/8"). */
export const ipcacheCodec: MapCodec<string, IpcacheValue> = {
  keySize: IPCACHE_KEY_SIZE,
  valueSize: IPCACHE_VALUE_SIZE,
  keyString: (k) => k,
  encodeKey: (k, buf, off) => {
    const raw = ipcacheKeyFromCidr(k);
    if (!raw) throw new RangeError(`not an IPv4 CIDR: ${k}`);
    encodeIpcacheKeyRaw(raw, buf, off);
  },
  decodeKey: (buf, off) => cidrFromIpcacheKey(decodeIpcacheKeyRaw(buf, off)),
  encodeValue: (v, _k, buf, off) => encodeIpcacheValueRaw(ipcacheValueToRaw(v.identity, v.nodeAddress), buf, off),
  decodeValue: (buf, off) => {
    const r = decodeIpcacheValueRaw(buf, off);
    return r.nodeAddrNetwork === 0 ? { identity: r.identityHost } : { identity: r.identityHost, nodeAddress: formatIpv4(r.nodeAddrNetwork) };
  },
  valueEquals: (a, b) => a.identity === b.identity && a.nodeAddress === b.nodeAddress,
};
