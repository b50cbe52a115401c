import {
  IdentityAllocator,
  LabelSet,
  type Allocation,
  type IdentityMove,
  type IdentityRange,
  type KnownIdentity,
} from '../../identity/index.js';
import { DEFAULT_ROOT, KeySchema } from '../../kvstore-schema/index.js';
import { EtcdAllocatorBackend } from './allocator-backend.js';
import { cmp, KvClient, op, type KvClientOptions } from './client.js';
import { KvUnavailableError } from './errors.js';
import { IdentityGc } from './gc.js';
import { decodeIdentity, IdentityWatcher } from './identity-watcher.js';
import { LeaseManager } from './lease.js';
import { readEtcdTls, type EtcdTlsFiles } from './tls.js';
import { childLogger, defaultLogger, type Logger } from './log.js';

export interface IdentityClientOptions {
  readonly endpoints: readonly string[];
  /** This node's name (refs/<node>/...). */
  readonly node: string;
  readonly root?: string;
  readonly leaseTtlSeconds?: number;
  readonly range?: IdentityRange;
  readonly logger?: Logger;
  readonly attemptTimeoutMs?: number;
  readonly callTimeoutMs?: number;
  /** etcd authentication (RBAC users) and TLS, passed to both clients. */
  readonly auth?: KvClientOptions['auth'];
  readonly credentials?: KvClientOptions['credentials'];
  /** TLS files (PEM), read here; an alternative to `credentials`. */
  readonly tls?: EtcdTlsFiles;
  /** Run the GC loop (it elects one leader among all nodes that enable it). */
  readonly gc?: { readonly graceMs?: number; readonly intervalMs?: number; readonly maxDeletesPerRound?: number };
  /** Watch liveness (see WatchStoreOptions). */
  readonly watchIdleMs?: number;
  /** connect() fails (KvUnavailableError) if the lease and the first list take longer. */
  readonly connectTimeoutMs?: number;
  /** Called when a lease loss made a locally held label set change number. */
  readonly onIdentityMoved?: (moves: readonly IdentityMove[]) => void;
}

/**
 * The identity subsystem of one node, ready to use: an etcd client for writes, a separate one
 * for the watch (so a wedged watch can be recreated alone), the node lease, the identity cache
 * (list + watch), the allocator, and optionally the GC loop.
 *
 *   const ids = await IdentityClient.connect({ endpoints: ['127.0.0.1:2379'], node: 'node-1' });
 *   const { id } = await ids.allocate(LabelSet.parseCsv('app=web,env=prod'));
 *   ids.list();  await ids.close();
 */
export class IdentityClient {
  private closed = false;

  private constructor(
    readonly node: string,
    readonly schema: KeySchema,
    readonly client: KvClient,
    private readonly watchClient: KvClient,
    readonly leases: LeaseManager,
    readonly watcher: IdentityWatcher,
    readonly allocator: IdentityAllocator,
    readonly gc: IdentityGc | undefined,
  ) {}

  static async connect(o: IdentityClientOptions): Promise<IdentityClient> {
    const logger = childLogger(o.logger ?? defaultLogger(), { node: o.node });
    const schema = new KeySchema(o.root ?? DEFAULT_ROOT);
    const timeouts = {
      ...(o.attemptTimeoutMs !== undefined ? { attemptTimeoutMs: o.attemptTimeoutMs } : {}),
      ...(o.callTimeoutMs !== undefined ? { callTimeoutMs: o.callTimeoutMs } : {}),
      ...(o.auth !== undefined ? { auth: o.auth } : {}),
      ...(o.credentials !== undefined ? { credentials: o.credentials } : o.tls !== undefined ? { credentials: readEtcdTls(o.tls) } : {}),
    };
    const client = new KvClient({ endpoints: o.endpoints, logger, ...timeouts });
    const watchClient = new KvClient({ endpoints: o.endpoints, logger, ...timeouts });
    const leases = new LeaseManager(client, { ttlSeconds: o.leaseTtlSeconds ?? 15, logger });
    const watcher = new IdentityWatcher(watchClient, { schema, logger, ...(o.watchIdleMs !== undefined ? { idleMs: o.watchIdleMs, idleGraceMs: o.watchIdleMs } : {}) });
    const backend = new EtcdAllocatorBackend({ client, schema, leases, node: o.node, logger });
    const allocator = new IdentityAllocator(backend, watcher.cache, { random: Math.random, ...(o.range !== undefined ? { range: o.range } : {}) });
    const gc = o.gc === undefined ? undefined : new IdentityGc({ client, schema, leases, node: o.node, logger, ...o.gc });
    const self = new IdentityClient(o.node, schema, client, watchClient, leases, watcher, allocator, gc);
    leases.onRenewed(async () => {
      const moves = await allocator.restore();
      if (moves.length > 0) {
        logger.warn({ moves: moves.map((m) => ({ labels: m.labels.toString(), from: m.from, to: m.to })) }, 'identities changed number after lease loss');
        o.onIdentityMoved?.(moves);
      }
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      watcher.start();
      const limit = o.connectTimeoutMs ?? 60_000;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new KvUnavailableError(`etcd at ${o.endpoints.join(',')}: no lease and identity list within ${limit} ms`)), limit);
      });
      await Promise.race([Promise.all([leases.current(), watcher.waitInSync()]), timeout]);
      gc?.start();
    } catch (err) {
      await self.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return self;
  }

  /** Allocates (or references) the identity of a label set for this node. */
  allocate(labels: LabelSet | readonly string[]): Promise<Allocation> {
    return this.allocator.allocate(labels instanceof LabelSet ? labels : LabelSet.parse(labels));
  }

  release(labels: LabelSet | readonly string[]): Promise<boolean> {
    return this.allocator.release(labels instanceof LabelSet ? labels : LabelSet.parse(labels));
  }

  /**
   * Deletes this node's references that it does not hold locally (resync after a restart or
   * an ambiguous write). Returns how many it removed.
   */
  async reconcile(): Promise<number> {
    const list = await this.client.listPrefix(this.schema.refsNodePrefix(this.node));
    const byCanonical = new Map<string, { labels: LabelSet; key: string; modRevision: string }>();
    for (const kv of list.kvs) {
      const key = kv.key.toString();
      try {
        const labels = LabelSet.of(this.schema.parseRefKey(key).labels);
        byCanonical.set(labels.canonical, { labels, key, modRevision: kv.mod_revision });
      } catch {
        // not a reference key of this layout
      }
    }
    return this.allocator.sweepUnheld(
      [...byCanonical.values()].map((e) => e.labels),
      async (labels) => {
        const e = byCanonical.get(labels.canonical)!;
        await this.client.txn({ compare: [cmp.modRev(e.key, e.modRevision)], success: [op.del(e.key)], failure: [] }, 'txn-drop-stale-ref');
      },
    );
  }

  /** All cluster identities this node knows (from its watch), sorted by number. */
  list(): KnownIdentity[] {
    return this.watcher.cache.all();
  }

  get(id: number): KnownIdentity | undefined {
    return this.watcher.cache.get(id);
  }

  lookup(labels: LabelSet): KnownIdentity | undefined {
    return this.watcher.cache.byLabels(labels.canonical);
  }

  /** Idempotent. `revoke` drops this node's references at once (else they expire with the lease). */
  async close(opts: { revoke?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.gc?.close();
    await this.watcher.close();
    await this.leases.close(opts);
    this.client.close();
    this.watchClient.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export const connectIdentities = (o: IdentityClientOptions): Promise<IdentityClient> => IdentityClient.connect(o);

/** One identity as read directly from etcd (CLI), or the reason its key was skipped. */
export type IdentityRow = { readonly ok: true; readonly identity: KnownIdentity } | { readonly ok: false; readonly key: string; readonly error: string };

/** Reads every `id/<N>` key once (no watch), decoding each; bad values are reported, not thrown. */
export async function readIdentities(client: KvClient, schema: KeySchema): Promise<IdentityRow[]> {
  const list = await client.listPrefix(schema.ids);
  return list.kvs.map((kv) => {
    const key = kv.key.toString();
    try {
      return { ok: true, identity: decodeIdentity(schema, key, kv.value, kv.create_revision) };
    } catch (err) {
      return { ok: false, key, error: err instanceof Error ? err.message : String(err) };
    }
  });
}
