import type { LabelSet } from './labels.js';

/** A cluster identity as etcd holds it. `createRevision` names this incarnation of it. */
export interface KnownIdentity {
  readonly id: number;
  readonly labels: LabelSet;
  /** Allocation token (the same in `id/<N>` and the label-set index). */
  readonly token: string;
  /** etcd create revision of `id/<N>` (= of the index key: both come from one txn). */
  readonly createRevision: string;
}

export type IdentityChange = { readonly type: 'upsert'; readonly identity: KnownIdentity } | { readonly type: 'delete'; readonly id: number };

/**
 * Identity deltas. `added` and `deleted` are disjoint: an identity whose labels changed (never
 * expected, logged by the edge) appears in `added` with its new labels (upsert semantics).
 */
export interface IdentityDelta {
  readonly added: ReadonlyMap<number, LabelSet>;
  readonly deleted: ReadonlyMap<number, LabelSet>;
}

/** What the allocator needs to know about the cluster's identities. */
export interface IdentityView {
  byLabels(canonical: string): KnownIdentity | undefined;
  isUsed(id: number): boolean;
}

/**
 * The node's mirror of all cluster identities (pure: fed by the etcd edge). applyBatch folds a
 * batch of changes and returns the net delta; subscribers get it after the state is updated
 * (never while it is being mutated).
 */
export class IdentityCache implements IdentityView {
  private readonly byId = new Map<number, KnownIdentity>();
  private readonly byCanonical = new Map<string, KnownIdentity>();
  private readonly subscribers = new Set<(d: IdentityDelta) => void>();
  private synced = false;

  get inSync(): boolean {
    return this.synced;
  }

  /** The edge calls this once its first list has been applied. */
  markInSync(): void {
    this.synced = true;
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: number): KnownIdentity | undefined {
    return this.byId.get(id);
  }

  byLabels(canonical: string): KnownIdentity | undefined {
    return this.byCanonical.get(canonical);
  }

  isUsed(id: number): boolean {
    return this.byId.has(id);
  }

  all(): KnownIdentity[] {
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }

  subscribe(fn: (d: IdentityDelta) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  applyBatch(changes: readonly IdentityChange[]): IdentityDelta {
    const before = new Map<number, KnownIdentity | undefined>();
    for (const c of changes) {
      const id = c.type === 'upsert' ? c.identity.id : c.id;
      if (!before.has(id)) before.set(id, this.byId.get(id));
      const old = this.byId.get(id);
      if (old !== undefined && this.byCanonical.get(old.labels.canonical) === old) this.byCanonical.delete(old.labels.canonical);
      if (c.type === 'upsert') {
        this.byId.set(id, c.identity);
        this.byCanonical.set(c.identity.labels.canonical, c.identity);
      } else this.byId.delete(id);
    }
    const added = new Map<number, LabelSet>();
    const deleted = new Map<number, LabelSet>();
    for (const [id, old] of before) {
      const now = this.byId.get(id);
      if (now === undefined) {
        if (old !== undefined) deleted.set(id, old.labels);
      } else if (old === undefined || !old.labels.equals(now.labels)) added.set(id, now.labels);
    }
    const delta: IdentityDelta = { added, deleted };
    if (added.size > 0 || deleted.size > 0) for (const fn of this.subscribers) fn(delta);
    return delta;
  }
}
