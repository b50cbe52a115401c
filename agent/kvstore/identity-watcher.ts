import { IdentityCache, LabelSet, type IdentityChange, type KnownIdentity } from '../../identity/index.js';
import { decodeValue, KeyError, type KeySchema } from '../../kvstore-schema/index.js';
import type { KvClient } from './client.js';
import { defaultLogger, type Logger } from './log.js';
import { WatchStore, type StoreBatch, type WatchStoreOptions } from './watch-store.js';

export interface IdentityWatcherOptions extends Partial<Omit<WatchStoreOptions<KnownIdentity>, 'prefix' | 'decode'>> {
  readonly schema: KeySchema;
  readonly logger?: Logger;
}

/** Decodes an `id/<N>` key-value into a KnownIdentity; throws on anything malformed. */
export function decodeIdentity(schema: KeySchema, key: string, value: Uint8Array, createRevision: string): KnownIdentity {
  const id = schema.parseIdKey(key);
  const v = decodeValue('identity', value);
  if (v.id !== id) throw new KeyError(key, `value says identity ${v.id}`);
  return { id, labels: LabelSet.of(v.labels), token: v.token, createRevision };
}

/**
 * Feeds the pure IdentityCache from a WatchStore on `identities/v1/id/`. The cache is in sync
 * after the first list; deltas reach cache subscribers as disjoint {added, deleted}.
 */
export class IdentityWatcher {
  readonly cache = new IdentityCache();
  readonly store: WatchStore<KnownIdentity>;

  constructor(client: KvClient, opts: IdentityWatcherOptions) {
    const { schema, logger, ...rest } = opts;
    const log = logger ?? defaultLogger();
    this.store = new WatchStore<KnownIdentity>(client, {
      ...rest,
      logger: log,
      prefix: schema.ids,
      decode: (key, kv) => decodeIdentity(schema, key, kv.value, kv.create_revision),
    });
    this.store.subscribe((b) => this.onBatch(b));
  }

  start(): this {
    this.store.start();
    return this;
  }

  async waitInSync(): Promise<void> {
    await this.store.waitInSync();
  }

  private onBatch(b: StoreBatch<KnownIdentity>): void {
    const changes: IdentityChange[] = b.events.map((ev) => {
      if (ev.type === 'upsert') return { type: 'upsert', identity: ev.value };
      const old = ev.key.slice(ev.key.lastIndexOf('/') + 1);
      return { type: 'delete', id: Number(old) };
    });
    if (changes.length > 0) this.cache.applyBatch(changes);
    if (b.listDone && !this.cache.inSync) this.cache.markInSync();
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
