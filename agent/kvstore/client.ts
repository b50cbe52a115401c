import { circuitBreaker, ConsecutiveBreaker, ConstantBackoff, handleWhen, retry } from 'cockatiel';
import {
  Etcd3,
  isRecoverableError,
  type IKeyValue,
  type IRangeResponse,
  type IRequestOp,
  type ITxnRequest,
  type ITxnResponse,
  type IWatchCreateRequest,
  type IWatchResponse,
  type Lease,
} from 'etcd3';
import { prefixRangeEnd } from '../../kvstore-schema/index.js';
import { KvClosedError, KvTimeoutError, toKvError, type KvError } from './errors.js';
import { childLogger, defaultLogger, type Logger } from './log.js';

export interface KvClientOptions {
  /** `host:port` (or `http://host:port`) of every member. */
  readonly endpoints: readonly string[];
  /** gRPC deadline of one attempt against one member. */
  readonly attemptTimeoutMs?: number;
  /** Hard bound on a whole call, retries included. */
  readonly callTimeoutMs?: number;
  /** Attempts per call (recoverable errors only, each maybe on another member). */
  readonly maxAttempts?: number;
  /** A member's circuit opens after this many consecutive failures... */
  readonly breakerFailures?: number;
  /** ...and is tried again after this long. */
  readonly halfOpenAfterMs?: number;
  readonly logger?: Logger;
  /** TLS (mTLS with privateKey + certChain); endpoints then use https://. */
  readonly credentials?: { readonly rootCertificate: Buffer; readonly privateKey?: Buffer; readonly certChain?: Buffer };
  /** etcd user/password authentication. */
  readonly auth?: { readonly username: string; readonly password: string };
}

/** Round trips issued, by operation (one per logical call; internal retries not counted). */
export interface KvStats {
  calls: number;
  /** Logical calls that failed (timeouts, unavailable members, denials...): a metric. */
  errors: number;
  readonly byOp: Record<string, number>;
}

export interface RawWatchHandlers {
  onResponse(res: IWatchResponse): void;
  /** The stream ended or failed; called at most once, never after close(). */
  onEnd(err: KvError): void;
}

export interface RawWatch {
  requestProgress(): void;
  close(): void;
}

export interface ListResult {
  readonly kvs: IKeyValue[];
  /** Revision the whole list was read at. */
  readonly revision: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function normalizeHost(e: string): string {
  return /^https?:\/\//.test(e) ? e : `http://${e}`;
}

/**
 * The etcd3 client with what it lacks (PLATFORM.md): a gRPC deadline per attempt, a hard
 * deadline per call, bounded retries, a circuit breaker per member, typed errors, a watch
 * stream we drive ourselves (the client's own watcher loses events on resume), and
 * `recreate()` for when the client wedges. Every call counts as one round trip in `stats`.
 */
export class KvClient {
  readonly stats: KvStats = { calls: 0, errors: 0, byOp: {} };
  readonly endpoints: readonly string[];
  private etcd: Etcd3;
  private closed = false;
  private readonly attemptTimeoutMs: number;
  private readonly callTimeoutMs: number;
  private readonly log: Logger;

  constructor(private readonly options: KvClientOptions) {
    if (options.endpoints.length === 0) throw new RangeError('no etcd endpoints given');
    this.endpoints = options.endpoints;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 1500;
    this.callTimeoutMs = options.callTimeoutMs ?? Math.max(this.attemptTimeoutMs * 2 + 500, 2000);
    this.log = childLogger(options.logger ?? defaultLogger(), { subsys: 'kvclient' });
    this.etcd = this.build();
  }

  private build(): Etcd3 {
    const o = this.options;
    const tls = o.credentials !== undefined;
    return new Etcd3({
      hosts: o.endpoints.map((e) => (tls ? normalizeHost(e).replace(/^http:/, 'https:') : normalizeHost(e))),
      ...(o.credentials !== undefined ? { credentials: { ...o.credentials } } : {}),
      ...(o.auth !== undefined ? { auth: { ...o.auth } } : {}),
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + this.attemptTimeoutMs }),
      faultHandling: {
        host: () =>
          circuitBreaker(handleWhen((e) => isRecoverableError(e)), {
            halfOpenAfter: o.halfOpenAfterMs ?? 500,
            breaker: new ConsecutiveBreaker(o.breakerFailures ?? 5),
          }),
        global: retry(handleWhen((e) => isRecoverableError(e)), { maxAttempts: (o.maxAttempts ?? 3) - 1, backoff: new ConstantBackoff(20) }),
      },
    });
  }

  /** Throws the old connection away and dials again (watch creation wedged, etc.). */
  recreate(): void {
    if (this.closed) return;
    this.log.warn('recreating etcd client');
    const old = this.etcd;
    this.etcd = this.build();
    old.close();
  }

  /** Runs one logical call with the hard deadline; maps errors to KvError. */
  async call<T>(op: string, fn: (etcd: Etcd3) => Promise<T>, timeoutMs = this.callTimeoutMs): Promise<T> {
    if (this.closed) throw new KvClosedError(`etcd ${op}: client closed`);
    this.stats.calls += 1;
    this.stats.byOp[op] = (this.stats.byOp[op] ?? 0) + 1;
    const p = fn(this.etcd);
    p.catch(() => undefined); // a late rejection after the deadline must not go unhandled
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KvTimeoutError(`etcd ${op}: no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([p, deadline]);
    } catch (err) {
      this.stats.errors += 1;
      throw toKvError(err, op);
    } finally {
      clearTimeout(timer);
    }
  }

  async get(key: string): Promise<{ kv: IKeyValue | undefined; revision: string }> {
    const res = await this.call('get', (e) => e.kv.range({ key: Buffer.from(key) }));
    return { kv: res.kvs[0], revision: res.header.revision };
  }

  async range(key: Buffer, rangeEnd: Buffer, opts: { revision?: string; limit?: number; keysOnly?: boolean } = {}): Promise<IRangeResponse> {
    return this.call('range', (e) =>
      e.kv.range({
        key,
        range_end: rangeEnd,
        ...(opts.revision !== undefined ? { revision: opts.revision } : {}),
        ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
        ...(opts.keysOnly === true ? { keys_only: true } : {}),
      }),
    );
  }

  /**
   * Lists every key under a prefix, page by page, all pages at the revision of the first
   * (a consistent snapshot, and no response over gRPC's 4 MB limit).
   */
  async listPrefix(prefix: string, opts: { pageSize?: number; revision?: string } = {}): Promise<ListResult> {
    const end = prefixRangeEnd(prefix);
    const pageSize = opts.pageSize ?? 1000;
    const kvs: IKeyValue[] = [];
    let from = Buffer.from(prefix);
    let revision = opts.revision;
    for (;;) {
      const res = await this.range(from, end, { limit: pageSize, ...(revision !== undefined ? { revision } : {}) });
      revision ??= res.header.revision;
      kvs.push(...res.kvs);
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || last === undefined) break;
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
    return { kvs, revision: revision ?? '0' };
  }

  async put(key: string, value: Buffer, lease?: string): Promise<string> {
    const res = await this.call('put', (e) => e.kv.put({ key: Buffer.from(key), value, ...(lease !== undefined ? { lease } : {}) }));
    return res.header.revision;
  }

  async delete(key: string): Promise<number> {
    const res = await this.call('delete', (e) => e.kv.deleteRange({ key: Buffer.from(key) }));
    return Number(res.deleted);
  }

  async deletePrefix(prefix: string): Promise<number> {
    const res = await this.call('delete', (e) => e.kv.deleteRange({ key: Buffer.from(prefix), range_end: prefixRangeEnd(prefix) }));
    return Number(res.deleted);
  }

  async txn(req: ITxnRequest, op = 'txn'): Promise<ITxnResponse> {
    return this.call(op, (e) => e.kv.txn(req));
  }

  async compact(revision: string): Promise<void> {
    await this.call('compact', (e) => e.kv.compact({ revision, physical: true }));
  }

  /** A new etcd3 Lease (granted immediately, kept alive by the library until 'lost'). */
  lease(ttlSeconds: number): Lease {
    if (this.closed) throw new KvClosedError('lease: client closed');
    return this.etcd.lease(ttlSeconds, { autoKeepAlive: true });
  }

  async revokeLease(id: string): Promise<void> {
    await this.call('lease-revoke', (e) => e.leaseClient.leaseRevoke({ ID: id }));
  }

  /**
   * Opens a watch stream and waits for etcd to confirm creation within `createTimeoutMs`
   * (a wedged client never confirms: then KvTimeoutError and the caller may recreate()).
   */
  async openWatch(create: IWatchCreateRequest, handlers: RawWatchHandlers, createTimeoutMs: number): Promise<RawWatch> {
    if (this.closed) throw new KvClosedError('watch: client closed');
    this.stats.calls += 1;
    this.stats.byOp['watch'] = (this.stats.byOp['watch'] ?? 0) + 1;
    const etcd = this.etcd;
    type Stream = Awaited<ReturnType<typeof etcd.watchClient.watch>> & { cancel?: () => void };
    let stream: Stream | undefined;
    let closed = false;
    let created = false;
    const cleanup = (): void => {
      closed = true;
      try {
        stream?.cancel?.();
        stream?.end();
      } catch {
        // already torn down
      }
    };
    return new Promise<RawWatch>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (created) return;
        cleanup();
        reject(new KvTimeoutError(`etcd watch: not created within ${createTimeoutMs} ms`));
      }, createTimeoutMs);
      const fail = (err: unknown): void => {
        if (closed) return;
        cleanup();
        const e = toKvError(err, 'watch');
        if (!created) {
          clearTimeout(timer);
          reject(e);
        } else handlers.onEnd(e);
      };
      etcd.watchClient.watch().then(
        (s) => {
          stream = s;
          if (closed) {
            cleanup();
            return;
          }
          s.on('error', (err: unknown) => fail(err));
          s.on('end', () => fail(new Error('watch stream ended')));
          s.on('data', (res: IWatchResponse) => {
            if (closed) return;
            if (!created && res.created) {
              created = true;
              clearTimeout(timer);
              resolve({
                requestProgress: () => {
                  if (!closed) s.write({ progress_request: {} });
                },
                close: cleanup,
              });
            }
            handlers.onResponse(res);
          });
          s.write({ create_request: create });
        },
        (err: unknown) => fail(err),
      );
    });
  }

  /** Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.etcd.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

/** txn helpers: keep call sites readable. */
export const op = {
  put(key: string, value: Buffer, lease?: string): IRequestOp {
    return { request_put: { key: Buffer.from(key), value, ...(lease !== undefined ? { lease } : {}) } };
  },
  get(key: string): IRequestOp {
    return { request_range: { key: Buffer.from(key) } };
  },
  del(key: string): IRequestOp {
    return { request_delete_range: { key: Buffer.from(key) } };
  },
};

export const cmp = {
  absent(key: string) {
    return { key: Buffer.from(key), target: 'Version' as const, result: 'Equal' as const, version: 0 };
  },
  createRev(key: string, rev: string) {
    return { key: Buffer.from(key), target: 'Create' as const, result: 'Equal' as const, create_revision: rev };
  },
  modRev(key: string, rev: string) {
    return { key: Buffer.from(key), target: 'Mod' as const, result: 'Equal' as const, mod_revision: rev };
  },
  value(key: string, value: Buffer) {
    return { key: Buffer.from(key), target: 'Value' as const, result: 'Equal' as const, value };
  },
};

export { sleep };
