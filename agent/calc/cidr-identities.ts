import { LabelSet, SOURCE_CIDR, localIdentity, parseCidr, type Cidr4 } from '../../identity/index.js';

/** A prefix the datapath ipcache must map to a node-local CIDR identity. */
export interface IpcacheEntry {
  readonly prefix: string;
  readonly cidr: Cidr4;
  readonly identity: number;
}

export function cidrLabels(prefix: string): LabelSet {
  return LabelSet.of([{ source: SOURCE_CIDR, key: prefix, value: '' }]);
}

/**
 * Node-local CIDR identities, reference-counted by the rules that name each prefix. A new
 * prefix takes the lowest free index (deterministic for a given history); the number is
 * freed when the last rule naming the prefix goes.
 */
export class CidrIdentities {
  private readonly byPrefix = new Map<string, { entry: IpcacheEntry; refs: number }>();
  private readonly used = new Set<number>();
  private next = 1;

  /** Returns entries newly created by this reference. */
  acquire(prefixes: Iterable<string>): IpcacheEntry[] {
    const created: IpcacheEntry[] = [];
    for (const prefix of prefixes) {
      const cur = this.byPrefix.get(prefix);
      if (cur !== undefined) {
        cur.refs++;
        continue;
      }
      while (this.used.has(this.next)) this.next++;
      const n = this.next;
      this.used.add(n);
      const entry: IpcacheEntry = { prefix, cidr: parseCidr(prefix), identity: localIdentity(n) };
      this.byPrefix.set(prefix, { entry, refs: 1 });
      created.push(entry);
    }
    return created;
  }

  /** Returns entries whose last reference went. */
  release(prefixes: Iterable<string>): IpcacheEntry[] {
    const gone: IpcacheEntry[] = [];
    for (const prefix of prefixes) {
      const cur = this.byPrefix.get(prefix);
      if (cur === undefined) continue;
      if (--cur.refs > 0) continue;
      this.byPrefix.delete(prefix);
      const n = cur.entry.identity & 0xff_ffff;
      this.used.delete(n);
      if (n < this.next) this.next = n;
      gone.push(cur.entry);
    }
    return gone;
  }

  get(prefix: string): IpcacheEntry | undefined {
    return this.byPrefix.get(prefix)?.entry;
  }

  entries(): IpcacheEntry[] {
    return [...this.byPrefix.values()].map((v) => v.entry).sort((a, b) => a.identity - b.identity);
  }
}
