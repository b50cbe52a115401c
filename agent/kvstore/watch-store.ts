import type { IKeyValue, IWatchResponse } from 'etcd3';
import { prefixRangeEnd } from '../../kvstore-schema/index.js';
import { abortableSleep, Backoff } from './backoff.js';
import type { KvClient, RawWatch } from './client.js';
import { KvError, KvPermissionError, KvTimeoutError, toKvError } from './errors.js';
import { childLogger, defaultLogger, type Logger } from './log.js';

/** One change, in etcd order. Revisions are decimal strings (etcd int64). */
export type StoreEvent<T> =
  | { readonly type: 'upsert'; readonly key: string; readonly value: T; readonly modRevision: string; readonly createRevision: string }
  | { readonly type: 'delete'; readonly key: string; readonly modRevision: string; readonly synthetic: boolean };

/** What subscribers get: the events of one etcd response (or of one re-list), in order. */
export interface StoreBatch<T> {
  readonly events: readonly StoreEvent<T>[];
  /** True for the batch that ends a (re-)list. */
  readonly listDone: boolean;
}

export interface StoreEntry<T> {
  readonly value: T;
  readonly modRevision: string;
  readonly createRevision: string;
}

export interface WatchStoreOptions<T> {
  readonly prefix: string;
  /**
   * Turns a raw value into T; throws for bad values. A bad value is logged with its key and
   * counted; the key keeps its previous value (a bad write must not act as a delete).
   */
  readonly decode: (key: string, kv: IKeyValue) => T;
  readonly logger?: Logger;
  readonly pageSize?: number;
  /** Watch creation must be confirmed within this; else the stream is retried. */
  readonly createTimeoutMs?: number;
  /** With no response for this long the watch sends a progress request... */
  readonly idleMs?: number;
  /** ...and gives up on the stream (frozen or partitioned member) after this much more. */
  readonly idleGraceMs?: number;
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
  /** After this many consecutive watch creation timeouts the client is recreated. */
  readonly recreateAfter?: number;
}

const cmpRev = (a: string, b: string): number => {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
};

/**
 * A local mirror of one etcd prefix: list at revision R (paginated, pinned), then watch from
 * R+1. It records the revision of the last event it delivered and always resumes from that + 1
 * (the etcd3 client's own resume skips events). On compaction it re-lists and emits synthetic
 * deletes for vanished keys. Retries back off with jitter. A stream that goes silent (frozen
 * member) is detected with progress requests and replaced.
 */
export class WatchStore<T> {
  private readonly entries = new Map<string, StoreEntry<T>>();
  private readonly subscribers = new Set<(b: StoreBatch<T>) => void>();
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private lastRevision: string | undefined;
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private watch: RawWatch | undefined;
  private loop: Promise<void> | undefined;
  private createTimeouts = 0;
  /** Number of (re-)lists done; tests and status read it. */
  lists = 0;
  /** Watch streams that ended or were replaced (errors, silence, cancels). */
  streamEnds = 0;
  /** Values that failed to decode (each one logged with its key; previous values kept). */
  invalidValues = 0;

  constructor(
    private readonly client: KvClient,
    private readonly opts: WatchStoreOptions<T>,
  ) {
    this.log = childLogger(opts.logger ?? defaultLogger(), { subsys: 'watchstore', prefix: opts.prefix });
    this.backoff = new Backoff(opts.backoffMinMs ?? 50, opts.backoffMaxMs ?? 10_000);
  }

  /** Starts listing and watching. A store starts once. */
  start(): this {
    if (this.loop !== undefined) throw new Error('WatchStore already started');
    this.loop = this.run();
    return this;
  }

  /** True once the first list has been delivered (and stays true across re-lists). */
  get inSync(): boolean {
    return this.synced;
  }

  /** A watch stream is established (created and not yet ended). */
  get watching(): boolean {
    return this.watch !== undefined;
  }

  /** Revision of the last event delivered (or of the last list). */
  get revision(): string | undefined {
    return this.lastRevision;
  }

  waitInSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(key: string): StoreEntry<T> | undefined {
    return this.entries.get(key);
  }

  snapshot(): ReadonlyMap<string, StoreEntry<T>> {
    return new Map(this.entries);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Subscribers are called synchronously, in order; an exception in one is logged. */
  subscribe(fn: (b: StoreBatch<T>) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  async close(): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    this.watch?.close();
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        const reason = await this.watchOnce();
        if (reason === 'closed') return;
        // Re-list after any cancel, but still through the backoff below: a watch that etcd keeps
        // cancelling must not turn into a re-list storm.
        if (reason === 'compacted') needList = true;
      } catch (err) {
        if (signal.aborted) return;
        const e = toKvError(err, 'watch');
        if (e instanceof KvTimeoutError && /not created/.test(e.message)) {
          this.createTimeouts += 1;
          if (this.createTimeouts >= (this.opts.recreateAfter ?? 2)) {
            this.createTimeouts = 0;
            this.client.recreate();
          }
        }
        // A denied prefix stays denied until an operator fixes the roles: say so loudly, back off.
        // (Each watch gets its own stream, so a rejected one cannot wedge the client's others.)
        if (e instanceof KvPermissionError) this.log.error({ err: e.message }, 'permission denied on watched prefix');
        else this.log.warn({ err: e.message }, 'watch store error, retrying');
      }
      await abortableSleep(this.backoff.next(), signal);
    }
  }

  /** Lists the prefix at one revision and reconciles the mirror, synthesising deletes. */
  private async relist(): Promise<void> {
    const list = await this.client.listPrefix(this.opts.prefix, { pageSize: this.opts.pageSize ?? 500 });
    if (this.abort.signal.aborted) return;
    const events: StoreEvent<T>[] = [];
    const seen = new Set<string>();
    for (const kv of list.kvs) {
      const key = kv.key.toString();
      seen.add(key);
      const old = this.entries.get(key);
      if (old !== undefined && old.modRevision === kv.mod_revision) continue;
      const ev = this.decodeKv(key, kv, old !== undefined);
      if (ev !== undefined) events.push(ev);
    }
    for (const key of this.entries.keys()) {
      if (!seen.has(key)) events.push({ type: 'delete', key, modRevision: list.revision, synthetic: true });
    }
    for (const ev of events) this.apply(ev);
    this.lastRevision = list.revision;
    this.lists += 1;
    this.notify(events, true);
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  /** Runs one watch stream until it ends; returns why. Throws on creation failure. */
  private async watchOnce(): Promise<'compacted' | 'closed' | 'failed'> {
    const signal = this.abort.signal;
    if (signal.aborted) return 'closed';
    const start = (BigInt(this.lastRevision ?? '0') + 1n).toString();
    let endResolve!: (r: 'compacted' | 'failed') => void;
    const ended = new Promise<'compacted' | 'failed'>((r) => (endResolve = r));
    let lastHeard = Date.now();
    const w = await this.client.openWatch(
      { key: Buffer.from(this.opts.prefix), range_end: prefixRangeEnd(this.opts.prefix), start_revision: start, progress_notify: true },
      {
        onResponse: (res) => {
          lastHeard = Date.now();
          if (res.canceled) {
            const compacted = res.compact_revision !== '0' && res.compact_revision !== '';
            this.log.warn({ compactRevision: res.compact_revision, reason: res.cancel_reason }, compacted ? 'watch revision compacted, re-listing' : 'watch canceled by etcd');
            // Any cancel: re-list at a pinned revision (the safe path, PLATFORM.md).
            endResolve('compacted');
            return;
          }
          this.onWatchResponse(res);
        },
        onEnd: (err) => {
          this.log.warn({ err: err.message }, 'watch stream ended');
          endResolve('failed');
        },
      },
      this.opts.createTimeoutMs ?? 5000,
    );
    this.watch = w;
    this.createTimeouts = 0;
    const openedAt = Date.now();
    const delivered = this.lastRevision;
    const idleMs = this.opts.idleMs ?? 5000;
    const graceMs = this.opts.idleGraceMs ?? 5000;
    const timer = setInterval(() => {
      const quiet = Date.now() - lastHeard;
      if (quiet > idleMs + graceMs) {
        this.log.warn({ quietMs: quiet }, 'watch stream silent, replacing it');
        endResolve('failed');
      } else if (quiet > idleMs) w.requestProgress();
    }, Math.max(50, Math.min(idleMs, graceMs) / 2));
    const onAbort = (): void => endResolve('failed');
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    try {
      const why = await ended;
      if (!signal.aborted) this.streamEnds += 1;
      // Only a stream that was useful resets the backoff (not one cancelled right away).
      if (this.lastRevision !== delivered || Date.now() - openedAt > idleMs) this.backoff.reset();
      return signal.aborted ? 'closed' : why;
    } finally {
      clearInterval(timer);
      signal.removeEventListener('abort', onAbort);
      w.close();
      this.watch = undefined;
    }
  }

  private onWatchResponse(res: IWatchResponse): void {
    if (res.events.length === 0) return; // created / progress notification
    const events: StoreEvent<T>[] = [];
    // etcd keeps all events of one revision (one txn) in one response, so "delivered" is tracked
    // per revision: skip revisions at or below the last response's, keep every event above it.
    const base = this.lastRevision;
    let last = base;
    for (const ev of res.events) {
      const rev = ev.kv.mod_revision;
      if (base !== undefined && cmpRev(rev, base) <= 0) continue; // duplicate from an overlapping resume
      if (last === undefined || cmpRev(rev, last) > 0) last = rev;
      const key = ev.kv.key.toString();
      let out: StoreEvent<T> | undefined;
      if (ev.type === 'Delete') {
        if (this.entries.has(key)) out = { type: 'delete', key, modRevision: rev, synthetic: false };
      } else {
        out = this.decodeKv(key, ev.kv, this.entries.has(key));
      }
      // Applied at once: a later event of the same response (several revisions arrive together
      // while catching up) must see this one.
      if (out !== undefined) {
        this.apply(out);
        events.push(out);
      }
    }
    this.lastRevision = last;
    if (events.length > 0) this.notify(events, false);
  }

  /**
   * An upsert, or undefined for an invalid value: the key then keeps its previous value (if
   * any) and subscribers see nothing, so one bad write cannot drop a policy's rules everywhere.
   */
  private decodeKv(key: string, kv: IKeyValue, existing: boolean): StoreEvent<T> | undefined {
    try {
      const value = this.opts.decode(key, kv);
      return { type: 'upsert', key, value, modRevision: kv.mod_revision, createRevision: kv.create_revision };
    } catch (err) {
      this.invalidValues += 1;
      const msg = existing ? 'skipping bad value; keeping the previous value' : 'skipping bad value';
      this.log.warn({ key, modRevision: kv.mod_revision, err: err instanceof Error ? err.message : String(err) }, msg);
      return undefined;
    }
  }

  private apply(ev: StoreEvent<T>): void {
    if (ev.type === 'upsert') this.entries.set(ev.key, { value: ev.value, modRevision: ev.modRevision, createRevision: ev.createRevision });
    else this.entries.delete(ev.key);
  }

  /** Subscribers see the mirror already updated with the whole batch. */
  private notify(events: StoreEvent<T>[], listDone: boolean): void {
    if (events.length === 0 && !listDone) return;
    const batch: StoreBatch<T> = { events, listDone };
    for (const fn of this.subscribers) {
      try {
        fn(batch);
      } catch (err) {
        this.log.error({ err }, 'watch store subscriber threw');
      }
    }
  }
}

export { KvError };
