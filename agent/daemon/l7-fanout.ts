import type { L7Event } from '../proxy/index.js';

/** Subscribes to the proxy's request events; returns the unsubscribe. */
export type L7RequestSource = (fn: (e: L7Event) => void) => () => void;

/**
 * Shares one subscription to the proxy's request events among monitor clients. The proxy builds
 * no event while nobody listens, so it is subscribed only while at least one client is.
 */
export class L7Fanout {
  private readonly subs = new Set<(e: L7Event) => void>();
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly source: L7RequestSource) {}

  /** True while subscribed to the proxy. */
  get active(): boolean {
    return this.unsubscribe !== undefined;
  }

  /** `close()` is idempotent; the last close unsubscribes from the proxy. */
  subscribe(fn: (e: L7Event) => void): { close(): void } {
    const entry = (e: L7Event): void => fn(e); // one entry per subscription, even for the same fn
    this.subs.add(entry);
    this.unsubscribe ??= this.source((e) => this.deliver(e));
    let open = true;
    return {
      close: () => {
        if (!open) return;
        open = false;
        this.remove(entry);
      },
    };
  }

  private remove(fn: (e: L7Event) => void): void {
    this.subs.delete(fn);
    if (this.subs.size > 0 || this.unsubscribe === undefined) return;
    const off = this.unsubscribe;
    this.unsubscribe = undefined;
    off();
  }

  private deliver(e: L7Event): void {
    for (const fn of this.subs) {
      try {
        fn(e);
      } catch {
        // Runs inside the proxy's request handling: a broken monitor client must not break the
        // proxied connection or the other clients, so it loses its subscription instead.
        this.remove(fn);
      }
    }
  }
}
