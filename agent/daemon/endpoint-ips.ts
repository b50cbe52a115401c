import type { DesiredIpcache } from './desired-ipcache.js';

interface Held {
  readonly prefix: string;
  readonly identity: number;
  readonly nodeAddress?: string;
}

/**
 * Endpoint IP -> identity entries (local and remote) on their way into the desired ipcache.
 * An entry whose identity the node does not know yet is held back: the ipcache must not
 * classify packets as an identity before the policy maps have their entries for it
 * (DESIGN.md ordering; else a deny for that identity could be missed under a wildcard allow).
 */
export class EndpointIps {
  private readonly byKey = new Map<string, Held>();
  private readonly waiting = new Map<number, Set<string>>();

  constructor(
    private readonly ipcache: DesiredIpcache,
    private readonly known: (identity: number) => boolean,
  ) {}

  set(key: string, ip: string, identity: number, nodeAddress?: string): void {
    this.delete(key);
    const held: Held = { prefix: `${ip}/32`, identity, ...(nodeAddress !== undefined ? { nodeAddress } : {}) };
    this.byKey.set(key, held);
    if (this.known(identity)) this.publish(held);
    else {
      let w = this.waiting.get(identity);
      if (w === undefined) this.waiting.set(identity, (w = new Set()));
      w.add(key);
    }
  }

  delete(key: string): void {
    const held = this.byKey.get(key);
    if (held === undefined) return;
    this.byKey.delete(key);
    const w = this.waiting.get(held.identity);
    if (w?.delete(key) === true) {
      if (w.size === 0) this.waiting.delete(held.identity);
      return;
    }
    this.ipcache.delete('endpoint', held.prefix);
  }

  /** The node learned identities: release the entries that waited for them. */
  identitiesKnown(ids: Iterable<number>): void {
    for (const id of ids) {
      const w = this.waiting.get(id);
      if (w === undefined) continue;
      this.waiting.delete(id);
      for (const key of w) {
        const held = this.byKey.get(key);
        if (held !== undefined) this.publish(held);
      }
    }
  }

  get waitingCount(): number {
    let n = 0;
    for (const w of this.waiting.values()) n += w.size;
    return n;
  }

  private publish(h: Held): void {
    this.ipcache.set('endpoint', h.prefix, { identity: h.identity, ...(h.nodeAddress !== undefined ? { nodeAddress: h.nodeAddress } : {}) });
  }
}
