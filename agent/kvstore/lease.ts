import type { Lease } from 'etcd3';
import { abortableSleep, Backoff } from './backoff.js';
import type { KvClient } from './client.js';
import { KvClosedError, toKvError } from './errors.js';
import { childLogger, defaultLogger, type Logger } from './log.js';

export interface LeaseManagerOptions {
  /** Lease TTL in seconds (keys of a dead node vanish about this long after it dies). */
  readonly ttlSeconds?: number;
  readonly logger?: Logger;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

/** Re-puts what was bound to a lost lease onto the new one. Must be idempotent. */
export type LeaseRestorer = (leaseId: string) => Promise<void>;

/**
 * Owns a node's one lease. The etcd3 client gives a lease up ('lost') after its keepalives
 * fail for about its TTL (quorum loss, partition, or a revoke); then every key bound to it is
 * gone or going. The manager grants a new lease and runs every registered restorer until all
 * succeed (with jittered backoff), so lease-bound keys come back without the owners polling.
 */
export class LeaseManager {
  private lease: Lease | undefined;
  private leaseId: Promise<string> | undefined;
  private readonly restorers = new Set<LeaseRestorer>();
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private readonly ttl: number;
  private recovery: Promise<void> | undefined;
  /** Incremented on each loss; restorers compare it to notice a newer loss. */
  generation = 0;

  constructor(
    private readonly client: KvClient,
    private readonly opts: LeaseManagerOptions = {},
  ) {
    this.ttl = opts.ttlSeconds ?? 15;
    this.log = childLogger(opts.logger ?? defaultLogger(), { subsys: 'lease' });
  }

  /** The current lease id, granting one if needed (one grant in flight at a time). */
  current(): Promise<string> {
    if (this.abort.signal.aborted) return Promise.reject(new KvClosedError('lease manager closed'));
    if (this.leaseId !== undefined) return this.leaseId;
    const lease = this.client.lease(this.ttl);
    // The grant has the client's hard deadline (the etcd3 Lease has none of its own).
    const id = this.client.call('lease-grant', () => lease.grant()).then(
      (granted) => granted,
      (err: unknown) => {
        if (this.lease === lease) {
          this.lease = undefined;
          this.leaseId = undefined;
        }
        lease.release();
        throw toKvError(err, 'lease-grant');
      },
    );
    this.lease = lease;
    this.leaseId = id;
    lease.on('lost', (err) => this.onLost(lease, err));
    return id;
  }

  /** Registers a restorer; returns its unregister function. */
  onRenewed(fn: LeaseRestorer): () => void {
    this.restorers.add(fn);
    return () => this.restorers.delete(fn);
  }

  /**
   * Re-runs every restorer on the current lease: our keys were deleted while the lease lives
   * (an operator wiped the prefix). Bumping the generation makes a running recovery redo all.
   */
  resync(reason: string): void {
    if (this.abort.signal.aborted) return;
    this.generation += 1;
    this.log.warn({ reason, generation: this.generation }, 'lease-bound keys deleted under us; restoring them');
    this.recovery ??= this.recover().finally(() => {
      this.recovery = undefined;
    });
  }

  /** Resolves when no recovery is running (tests). */
  async settled(): Promise<void> {
    while (this.recovery !== undefined) await this.recovery;
  }

  private onLost(lease: Lease, err: Error): void {
    if (this.lease !== lease || this.abort.signal.aborted) return;
    // A grant that failed also emits 'lost': current() already reported it.
    this.lease = undefined;
    this.leaseId = undefined;
    this.generation += 1;
    this.log.warn({ err: err.message, generation: this.generation }, 'lease lost; granting a new one and restoring lease-bound keys');
    if (this.recovery === undefined) {
      this.recovery = this.recover().finally(() => {
        this.recovery = undefined;
      });
    }
  }

  private async recover(): Promise<void> {
    const backoff = new Backoff(this.opts.retryMinMs ?? 100, this.opts.retryMaxMs ?? 5000);
    const pending = new Set(this.restorers);
    while (!this.abort.signal.aborted) {
      const gen = this.generation;
      try {
        const id = await this.current();
        for (const fn of [...pending]) {
          await fn(id);
          pending.delete(fn);
        }
        if (gen === this.generation) {
          this.log.info({ lease: id }, 'lease-bound keys restored');
          return;
        }
        for (const fn of this.restorers) pending.add(fn); // lost again meanwhile: restore all
      } catch (err) {
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'lease recovery failed, retrying');
        await abortableSleep(backoff.next(), this.abort.signal);
      }
    }
  }

  /** Idempotent. `revoke` deletes every key bound to the lease now (graceful node exit). */
  async close(opts: { revoke?: boolean } = {}): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    const lease = this.lease;
    const id = this.leaseId;
    this.lease = undefined;
    this.leaseId = undefined;
    await this.recovery;
    if (lease === undefined) return;
    if (opts.revoke === true && id !== undefined) {
      try {
        await this.client.revokeLease(await id);
      } catch (err) {
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'lease revoke failed');
      }
    }
    lease.release();
  }
}
