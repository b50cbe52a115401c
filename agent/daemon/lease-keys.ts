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
      this.landed(key, value);
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
      this.landed(key, undefined);
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
    this.log.warn({ key, err: err instanceof Error ? err.message : String(err) }, 'etcd write failed; retrying in the background');
    this.retryLater(key);
  }

  private retryLater(key: string): void {
    this.unsynced.add(key);
    this.startRetry();
  }

  private startRetry(): void {
    if (this.retrying !== undefined || this.abort.signal.aborted) return;
    this.retrying = this.retryLoop().finally(() => {
      this.retrying = undefined;
      if (this.unsynced.size > 0) this.startRetry(); // marked while the loop was returning
    });
  }

  /**
   * A write of `written` (undefined: a delete) reached etcd. If the key was put or deleted
   * again meanwhile, that newer write may have landed first and this one undone it (chaos: a
   * background re-put of a pending endpoint key landed after the endpoint's delete, leaving a
   * deleted endpoint routed on every other node), so the key is written again.
   */
  private landed(key: string, written: Buffer | undefined): void {
    const want = this.desired.get(key);
    if (want === undefined ? written === undefined : written !== undefined && want.equals(written)) this.unsynced.delete(key);
    else this.retryLater(key);
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
          this.landed(key, value);
        } catch {
          break; // still down: wait for the next round
        }
      }
    }
  }

  /**
   * Restorer: every desired key onto `leaseId`, then the deletes that failed while etcd was away
   * (dropping them left the key in etcd until the old lease expired, or for good after a resync
   * on the same lease: a deleted endpoint other nodes kept routing to).
   */
  private async putAll(leaseId: string): Promise<void> {
    const deletes = [...this.unsynced].filter((k) => !this.desired.has(k));
    for (const [key, value] of [...this.desired]) {
      await this.client.put(key, value, leaseId);
      this.landed(key, value);
    }
    for (const key of deletes) {
      if (this.desired.has(key)) continue; // put again meanwhile
      await this.client.delete(key);
      this.landed(key, undefined);
    }
  }

  /** Idempotent. Keys stay in etcd until the lease expires (a restarting agent takes over). */
  async close(): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    this.unregister();
    await this.retrying;
  }
}
