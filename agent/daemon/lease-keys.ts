import { abortableSleep, Backoff, type KvClient, type LeaseManager } from '../kvstore/index.js';
import type { Logger } from './logger.js';

/**
 * The keys this node owns under its lease (node record, endpoint IPs). Remembers their values
 * so that they are put again on a new lease after a loss (LeaseManager restorer) and retried
 * in the background while etcd is unreachable.
 */
export class LeaseBoundKeys {
  private readonly desired = new Map<string, Buffer>();
  private readonly unsynced = new Set<string>();
  private readonly abort = new AbortController();
  private readonly unregister: () => void;
  private retrying: Promise<void> | undefined;

  constructor(
    private readonly client: KvClient,
    private readonly leases: LeaseManager,
    private readonly log: Logger,
  ) {
    this.unregister = leases.onRenewed((id) => this.putAll(id));
  }

  /** Records and writes the key; on failure it stays pending and is retried (returns false). */
  async put(key: string, value: Buffer): Promise<boolean> {
    this.desired.set(key, value);
    try {
      await this.client.put(key, value, await this.leases.current());
      this.unsynced.delete(key);
      return true;
    } catch (err) {
      this.markUnsynced(key, err);
      return false;
    }
  }

  async delete(key: string): Promise<boolean> {
    this.desired.delete(key);
    try {
      await this.client.delete(key);
      this.unsynced.delete(key);
      return true;
    } catch (err) {
      this.markUnsynced(key, err);
      return false;
    }
  }

  has(key: string): boolean {
    return this.desired.has(key);
  }

  get pending(): number {
    return this.unsynced.size;
  }

  private markUnsynced(key: string, err: unknown): void {
    this.unsynced.add(key);
    this.log.warn({ key, err: err instanceof Error ? err.message : String(err) }, 'etcd write failed; retrying in the background');
    this.retrying ??= this.retryLoop().finally(() => (this.retrying = undefined));
  }

  private async retryLoop(): Promise<void> {
    const backoff = new Backoff(200, 5000);
    while (this.unsynced.size > 0 && !this.abort.signal.aborted) {
      await abortableSleep(backoff.next(), this.abort.signal);
      if (this.abort.signal.aborted) return;
      for (const key of [...this.unsynced]) {
        const value = this.desired.get(key);
        try {
          if (value === undefined) await this.client.delete(key);
          else await this.client.put(key, value, await this.leases.current());
          this.unsynced.delete(key);
        } catch {
          break; // still down: wait for the next round
        }
      }
    }
  }

  private async putAll(leaseId: string): Promise<void> {
    for (const [key, value] of this.desired) await this.client.put(key, value, leaseId);
    this.unsynced.clear();
  }

  /** Idempotent. Keys stay in etcd until the lease expires (a restarting agent takes over). */
  async close(): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    this.unregister();
    await this.retrying;
  }
}
