import { randomBytes } from 'node:crypto';
import type { IKeyValue } from 'etcd3';
import type { AllocatorBackend, CreateOutcome, IdentityRecord, LabelSet, ReferenceOutcome } from '../../identity/index.js';
import { decodeValue, encodeValue, type KeySchema } from '../../kvstore-schema/index.js';
import { cmp, op, type KvClient } from './client.js';
import { KvError, KvUnavailableError } from './errors.js';
import type { LeaseManager } from './lease.js';
import { childLogger, defaultLogger, type Logger } from './log.js';

export const newToken = (): string => randomBytes(8).toString('hex');

export interface EtcdAllocatorBackendOptions {
  readonly client: KvClient;
  readonly schema: KeySchema;
  readonly leases: LeaseManager;
  /** This node's name (its reference keys live under refs/<node>/). */
  readonly node: string;
  readonly logger?: Logger;
}

/**
 * The allocator's etcd storage. Each method is one guarded transaction:
 *
 * create:    if version(labels/L)=0 and version(id/N)=0
 *            then put labels/L, id/N, refs/<node>/L (lease)   else get labels/L
 * reference: if create_revision(labels/L)=C                  (the same incarnation)
 *            then put labels/L (same value: bumps its mod revision), put refs/<node>/L (lease)
 *            else get labels/L
 * release:   if value(refs/<node>/L)=what we wrote then delete it
 *
 * The GC deletes an identity only if mod_revision(labels/L) is unchanged since it saw no
 * reference; every reference write bumps that mod revision, so a reference attached after the
 * GC's check makes the delete fail, and a reference attempted after the delete fails its
 * create_revision guard. The etcd3 client may re-send a txn after an error, and a call that
 * timed out may still apply: ambiguous failures are resolved by reading back our token.
 */
export class EtcdAllocatorBackend implements AllocatorBackend {
  private readonly mine = new Map<string, Buffer>();
  private readonly log: Logger;

  constructor(private readonly o: EtcdAllocatorBackendOptions) {
    this.log = childLogger(o.logger ?? defaultLogger(), { subsys: 'allocator', node: o.node });
  }

  async create(labels: LabelSet, candidate: number): Promise<CreateOutcome> {
    const { schema, node } = this.o;
    const L = schema.labelsKey(labels.labels);
    const I = schema.idKey(candidate);
    const R = schema.refKey(node, labels.labels);
    const token = newToken();
    const lease = await this.o.leases.current();
    const ref = encodeValue('identity-ref', { v: 1, id: candidate, token: newToken() });
    try {
      const res = await this.o.client.txn(
        {
          compare: [cmp.absent(L), cmp.absent(I)],
          success: [
            op.put(L, encodeValue('identity-index', { v: 1, id: candidate, token })),
            op.put(I, encodeValue('identity', { v: 1, id: candidate, labels: labels.labels, node, token })),
            op.put(R, ref, lease),
          ],
          failure: [op.get(L)],
        },
        'txn-create',
      );
      if (res.succeeded) {
        this.mine.set(labels.canonical, ref);
        return { kind: 'created', identity: { id: candidate, token, createRevision: res.header.revision } };
      }
      const kv = res.responses[0]?.response_range.kvs[0];
      return kv === undefined ? { kind: 'id-taken' } : { kind: 'exists', identity: this.indexRecord(L, kv) };
    } catch (err) {
      if (!(err instanceof KvError) || !err.ambiguous) throw err;
      // Did our txn apply? Our token in the index says so (and then our reference exists too).
      const back = await this.o.client.get(L);
      if (back.kv === undefined) throw err;
      const rec = this.indexRecord(L, back.kv);
      if (rec.token === token) {
        this.log.info({ id: candidate }, 'ambiguous create resolved: it applied');
        this.mine.set(labels.canonical, ref);
        return { kind: 'created', identity: rec };
      }
      return { kind: 'exists', identity: rec };
    }
  }

  async reference(labels: LabelSet, known: IdentityRecord): Promise<ReferenceOutcome> {
    const { schema, node } = this.o;
    const L = schema.labelsKey(labels.labels);
    const R = schema.refKey(node, labels.labels);
    const lease = await this.o.leases.current();
    const ref = encodeValue('identity-ref', { v: 1, id: known.id, token: newToken() });
    try {
      const res = await this.o.client.txn(
        {
          compare: [cmp.createRev(L, known.createRevision)],
          success: [op.put(L, encodeValue('identity-index', { v: 1, id: known.id, token: known.token })), op.put(R, ref, lease)],
          failure: [op.get(L)],
        },
        'txn-reference',
      );
      if (res.succeeded) {
        this.mine.set(labels.canonical, ref);
        return { kind: 'referenced' };
      }
      const kv = res.responses[0]?.response_range.kvs[0];
      return { kind: 'gone', current: kv === undefined ? undefined : this.indexRecord(L, kv) };
    } catch (err) {
      if (!(err instanceof KvError) || !err.ambiguous) throw err;
      const back = await this.o.client.get(R);
      if (back.kv !== undefined && back.kv.value.equals(ref)) {
        this.mine.set(labels.canonical, ref);
        return { kind: 'referenced' };
      }
      throw err;
    }
  }

  async release(labels: LabelSet): Promise<void> {
    const R = this.o.schema.refKey(this.o.node, labels.labels);
    const ref = this.mine.get(labels.canonical);
    if (ref === undefined) return;
    this.mine.delete(labels.canonical);
    for (let attempt = 0; ; attempt++) {
      try {
        // Guarded: a late delete never removes a newer reference of ours.
        await this.o.client.txn({ compare: [cmp.value(R, ref)], success: [op.del(R)], failure: [] }, 'txn-release');
        return;
      } catch (err) {
        if (!(err instanceof KvUnavailableError) || attempt >= 2) throw err;
      }
    }
  }

  private indexRecord(key: string, kv: IKeyValue): IdentityRecord {
    const v = decodeValue('identity-index', kv.value);
    if (!Number.isInteger(v.id)) throw new KvError(`bad index value at ${key}`);
    return { id: v.id, token: v.token, createRevision: kv.create_revision };
  }
}
