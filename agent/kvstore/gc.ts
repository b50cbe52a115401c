import type { IKeyValue, ITxnRequest } from 'etcd3';
import { decodeValue, encodeValue, type KeySchema } from '../../kvstore-schema/index.js';
import { newToken } from './allocator-backend.js';
import { abortableSleep } from './backoff.js';
import { cmp, op, type KvClient } from './client.js';
import { KvError } from './errors.js';
import type { LeaseManager } from './lease.js';
import { childLogger, defaultLogger, type Logger } from './log.js';

export const GC_ROLE = 'identity-gc';

export interface IdentityGcOptions {
  readonly client: KvClient;
  readonly schema: KeySchema;
  readonly leases: LeaseManager;
  readonly node: string;
  /** An unreferenced identity is deleted only after staying unreferenced (and unchanged) this long. */
  readonly graceMs?: number;
  /** Time between rounds. */
  readonly intervalMs?: number;
  /** Rate limit: deletions per round (the rest waits for the next round). */
  readonly maxDeletesPerRound?: number;
  readonly clock?: () => number;
  readonly logger?: Logger;
}

/** One deletion the sweep will try, with the revisions its guard compares. */
export interface GcCandidate {
  readonly id: number | undefined;
  /** labels/L with the mod revision seen unreferenced since the mark; undefined for an orphan id key. */
  readonly index: { readonly key: string; readonly modRevision: string } | undefined;
  /** id/N with the revision the guard compares; undefined for an orphan index key. */
  readonly idKey: { readonly key: string; readonly revision: string; readonly target: 'create' | 'mod' } | undefined;
}

export interface GcPlan {
  readonly revision: string;
  readonly candidates: readonly GcCandidate[];
  readonly marked: number;
  readonly referenced: number;
}

export interface GcSweepResult {
  readonly deleted: readonly number[];
  /** Guards that failed: something changed since the scan (e.g. a new reference). */
  readonly skipped: number;
}

interface Mark {
  readonly modRevision: string;
  readonly sinceMs: number;
}

/**
 * Garbage collection of unreferenced identities, run by one elected node.
 *
 * Round k scans labels/, refs/ and id/ at one revision. An index key with no reference is
 * marked with its mod revision; in a later round, if it is still unreferenced, its mod revision
 * is unchanged and the grace period has passed, the sweep deletes index and id in one txn
 * guarded by exactly those revisions (plus the leader key's create revision as a fence).
 * Reference writes bump the index key's mod revision, so the delete can never remove an
 * identity that gained a reference after the scan (see EtcdAllocatorBackend). Leadership only
 * avoids duplicate work: safety rests on the guards, never on the election.
 */
export class IdentityGc {
  private readonly marks = new Map<string, Mark>();
  private readonly orphanMarks = new Map<string, Mark>();
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly abort = new AbortController();
  private readonly token = newToken();
  private leaderCreateRevision: string | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly o: IdentityGcOptions) {
    this.log = childLogger(o.logger ?? defaultLogger(), { subsys: 'identity-gc', node: o.node });
    this.clock = o.clock ?? Date.now;
  }

  get isLeader(): boolean {
    return this.leaderCreateRevision !== undefined;
  }

  /** Tries to become (or stay) the GC leader: a lease-bound create-if-absent of the leader key. */
  async campaign(): Promise<boolean> {
    const { client, schema, node } = this.o;
    const key = schema.leaderKey(GC_ROLE);
    const lease = await this.o.leases.current();
    const value = encodeValue('leader', { v: 1, holder: node, token: this.token, sinceMs: this.clock() });
    const res = await client.txn({ compare: [cmp.absent(key)], success: [op.put(key, value, lease)], failure: [op.get(key)] }, 'txn-campaign');
    if (res.succeeded) {
      this.leaderCreateRevision = res.header.revision;
      this.log.info('became identity GC leader');
      return true;
    }
    const kv = res.responses[0]?.response_range.kvs[0];
    let mine = false;
    if (kv !== undefined) {
      try {
        mine = decodeValue('leader', kv.value).token === this.token;
      } catch {
        mine = false;
      }
    }
    this.leaderCreateRevision = mine ? kv?.create_revision : undefined;
    return mine;
  }

  /** Lists everything at one revision and decides what to delete (updates the marks). */
  async scan(): Promise<GcPlan> {
    const { client, schema } = this.o;
    const labels = await client.listPrefix(schema.labels);
    const refs = await client.listPrefix(schema.refs, { revision: labels.revision });
    const ids = await client.listPrefix(schema.ids, { revision: labels.revision });
    const now = this.clock();
    const grace = this.o.graceMs ?? 5 * 60_000;

    const referenced = new Set<string>();
    for (const kv of refs.kvs) {
      const k = kv.key.toString();
      const rest = k.slice(schema.refs.length);
      referenced.add(rest.slice(rest.indexOf('/') + 1));
    }
    const idKvs = new Map<number, IKeyValue>();
    for (const kv of ids.kvs) {
      try {
        idKvs.set(schema.parseIdKey(kv.key.toString()), kv);
      } catch {
        // not an identity key: not ours to collect
      }
    }

    const candidates: GcCandidate[] = [];
    const indexed = new Set<number>();
    const seenIndex = new Set<string>();
    let marked = 0;
    let refCount = 0;
    for (const kv of labels.kvs) {
      const key = kv.key.toString();
      seenIndex.add(key);
      let id: number | undefined;
      try {
        id = decodeValue('identity-index', kv.value).id;
      } catch (err) {
        this.log.warn({ key, err: err instanceof Error ? err.message : String(err) }, 'skipping bad index value');
        continue;
      }
      indexed.add(id);
      if (referenced.has(key.slice(schema.labels.length))) {
        this.marks.delete(key);
        refCount += 1;
        continue;
      }
      const mark = this.marks.get(key);
      if (mark === undefined || mark.modRevision !== kv.mod_revision) {
        this.marks.set(key, { modRevision: kv.mod_revision, sinceMs: now });
        marked += 1;
        continue;
      }
      if (now - mark.sinceMs < grace) {
        marked += 1;
        continue;
      }
      const idKv = idKvs.get(id);
      candidates.push({
        id,
        index: { key, modRevision: kv.mod_revision },
        idKey: idKv === undefined ? undefined : { key: schema.idKey(id), revision: idKv.create_revision, target: 'create' },
      });
    }
    for (const key of this.marks.keys()) if (!seenIndex.has(key)) this.marks.delete(key);

    // id/N that no index points to: unreachable (create needs id/N absent), so collectable.
    const seenOrphans = new Set<string>();
    for (const [id, kv] of idKvs) {
      if (indexed.has(id)) continue;
      const key = schema.idKey(id);
      seenOrphans.add(key);
      const mark = this.orphanMarks.get(key);
      if (mark === undefined || mark.modRevision !== kv.mod_revision) {
        this.orphanMarks.set(key, { modRevision: kv.mod_revision, sinceMs: now });
        marked += 1;
      } else if (now - mark.sinceMs >= grace) {
        candidates.push({ id, index: undefined, idKey: { key, revision: kv.mod_revision, target: 'mod' } });
      } else marked += 1;
    }
    for (const key of this.orphanMarks.keys()) if (!seenOrphans.has(key)) this.orphanMarks.delete(key);
    return { revision: labels.revision, candidates, marked, referenced: refCount };
  }

  /** Deletes the plan's candidates, each in one guarded txn, at most maxDeletesPerRound. */
  async sweep(plan: GcPlan): Promise<GcSweepResult> {
    const max = this.o.maxDeletesPerRound ?? 250;
    const deleted: number[] = [];
    let skipped = 0;
    const fence = this.leaderCreateRevision === undefined ? [] : [cmp.createRev(this.o.schema.leaderKey(GC_ROLE), this.leaderCreateRevision)];
    for (const c of plan.candidates.slice(0, max)) {
      const req: ITxnRequest = { compare: [...fence], success: [], failure: [] };
      if (c.index !== undefined) {
        req.compare!.push(cmp.modRev(c.index.key, c.index.modRevision));
        req.success!.push(op.del(c.index.key));
      }
      if (c.idKey !== undefined) {
        req.compare!.push(c.idKey.target === 'create' ? cmp.createRev(c.idKey.key, c.idKey.revision) : cmp.modRev(c.idKey.key, c.idKey.revision));
        req.success!.push(op.del(c.idKey.key));
      }
      const res = await this.o.client.txn(req, 'txn-gc-delete');
      if (res.succeeded) {
        if (c.id !== undefined) deleted.push(c.id);
        if (c.index !== undefined) this.marks.delete(c.index.key);
        if (c.idKey !== undefined) this.orphanMarks.delete(c.idKey.key);
      } else skipped += 1;
    }
    if (deleted.length > 0 || skipped > 0) this.log.info({ deleted, skipped }, 'identity GC round');
    return { deleted, skipped };
  }

  async runRound(): Promise<GcSweepResult> {
    return this.sweep(await this.scan());
  }

  /** Runs campaign + round every interval until close(). */
  start(): this {
    if (this.loop !== undefined) throw new Error('IdentityGc already started');
    this.loop = (async () => {
      const interval = this.o.intervalMs ?? 60_000;
      while (!this.abort.signal.aborted) {
        try {
          if (await this.campaign()) await this.runRound();
        } catch (err) {
          this.log.warn({ err: err instanceof KvError ? err.message : String(err) }, 'identity GC round failed');
        }
        await abortableSleep(interval * (0.8 + Math.random() * 0.4), this.abort.signal);
      }
    })();
    return this;
  }

  /** Idempotent; steps down (deletes the leader key if it is still ours). */
  async close(): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    await this.loop;
    const rev = this.leaderCreateRevision;
    this.leaderCreateRevision = undefined;
    if (rev === undefined || this.o.client.isClosed) return;
    const key = this.o.schema.leaderKey(GC_ROLE);
    try {
      await this.o.client.txn({ compare: [cmp.createRev(key, rev)], success: [op.del(key)], failure: [] }, 'txn-resign');
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not resign GC leadership');
    }
  }
}
