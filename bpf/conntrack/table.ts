import type { BpfMap } from '../map.js';
import { CT_KEY_SIZE, ctKeyFromRaw, decodeCtKeyRaw, decodeCtValue } from './layout.js';
import type { CtKey, CtValue } from './layout.js';

export interface ConntrackFilter {
  /** Only entries of this endpoint. */
  readonly endpointId?: number;
  /** Only entries whose other address is this IPv4 address. */
  readonly peer?: string;
}

/** The ward_ct LRU map: dump and targeted flushes (batched reads: stable while the datapath writes). */
export class ConntrackTable {
  constructor(private readonly map: BpfMap) {}

  entries(): [CtKey, CtValue][] {
    const out: [CtKey, CtValue][] = [];
    for (const [k, v] of this.map.lookupAllBatch()) out.push([ctKeyFromRaw(decodeCtKeyRaw(k)), decodeCtValue(v)]);
    return out;
  }

  /** Deletes matching entries (all with an empty filter); returns how many. */
  flush(filter: ConntrackFilter = {}): number {
    const doomed: Buffer[] = [];
    for (const [kb] of this.map.lookupAllBatch()) {
      const k = ctKeyFromRaw(decodeCtKeyRaw(kb));
      if (filter.endpointId !== undefined && k.endpointId !== filter.endpointId) continue;
      if (filter.peer !== undefined && k.saddr !== filter.peer && k.daddr !== filter.peer) continue;
      doomed.push(kb);
    }
    if (doomed.length === 0) return 0;
    return this.map.deleteBatch(Buffer.concat(doomed, doomed.length * CT_KEY_SIZE), doomed.length);
  }

  close(): void {
    this.map.close();
  }
}
