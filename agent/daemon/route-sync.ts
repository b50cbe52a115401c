import type { Logger } from './logger.js';
import type { NetlinkPort } from './netlink-port.js';

/**
 * Routes to other nodes' endpoint CIDRs (native routing), kept as the node list changes.
 * Changes are applied one at a time in order (a later change of the same CIDR never overtakes
 * an earlier one); failures are logged and the next change of that CIDR retries.
 */
export class RouteSync {
  private readonly want = new Map<string, string>();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly netlink: NetlinkPort,
    private readonly log: Logger,
  ) {}

  set(cidr: string, via: string): void {
    if (this.want.get(cidr) === via) return;
    this.want.set(cidr, via);
    this.enqueue(cidr, () => this.netlink.replaceRoute(cidr, via), { via }, 'route to node set');
  }

  delete(cidr: string): void {
    if (!this.want.delete(cidr)) return;
    this.enqueue(cidr, () => this.netlink.deleteRoute(cidr), {}, 'route to node removed');
  }

  routes(): ReadonlyMap<string, string> {
    return this.want;
  }

  /** Resolves when every queued change has been tried (tests, shutdown). */
  settled(): Promise<void> {
    return this.chain;
  }

  private enqueue(cidr: string, fn: () => Promise<void>, fields: object, done: string): void {
    this.chain = this.chain
      .then(fn)
      .then(() => this.log.info({ cidr, ...fields }, done))
      .catch((err: unknown) => this.log.error({ cidr, err: err instanceof Error ? err.message : String(err) }, 'route change failed'));
  }
}
