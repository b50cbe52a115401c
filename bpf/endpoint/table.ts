import type { BpfMap } from '../map.js';
import { decodeEndpointKey, decodeEndpointValue, encodeEndpointKey, encodeEndpointValue, ENDPOINT_FLAG_LOCKDOWN } from './layout.js';

export interface EndpointRecord {
  readonly ifindex: number;
  readonly endpointId: number;
  readonly identity: number;
  readonly lockedDown: boolean;
}

/** The ward_endpoints map: host-side ifindex -> {endpoint id, identity, flags}. */
export class EndpointTable {
  constructor(private readonly map: BpfMap) {}

  put(r: EndpointRecord): void {
    this.map.update(
      encodeEndpointKey(r.ifindex),
      encodeEndpointValue({ endpointIdHost: r.endpointId, identityHost: r.identity, flagsHost: r.lockedDown ? ENDPOINT_FLAG_LOCKDOWN : 0 }),
    );
  }

  get(ifindex: number): EndpointRecord | undefined {
    const v = this.map.lookup(encodeEndpointKey(ifindex));
    if (!v) return undefined;
    const r = decodeEndpointValue(v);
    return { ifindex, endpointId: r.endpointIdHost, identity: r.identityHost, lockedDown: (r.flagsHost & ENDPOINT_FLAG_LOCKDOWN) !== 0 };
  }

  delete(ifindex: number): boolean {
    return this.map.delete(encodeEndpointKey(ifindex));
  }

  list(): EndpointRecord[] {
    const out: EndpointRecord[] = [];
    for (const [k, v] of this.map.entries()) {
      const r = decodeEndpointValue(v);
      out.push({
        ifindex: decodeEndpointKey(k),
        endpointId: r.endpointIdHost,
        identity: r.identityHost,
        lockedDown: (r.flagsHost & ENDPOINT_FLAG_LOCKDOWN) !== 0,
      });
    }
    return out;
  }

  byEndpoint(endpointId: number): EndpointRecord[] {
    return this.list().filter((r) => r.endpointId === endpointId);
  }

  close(): void {
    this.map.close();
  }
}
