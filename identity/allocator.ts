import { AllocationConflictError, IdentityRangeExhaustedError, InvalidLabelsError } from './allocator-errors.js';
import type { IdentityView, KnownIdentity } from './identity-cache.js';
import type { LabelSet } from './labels.js';
import { DEFAULT_CLUSTER_RANGE, type IdentityRange } from './numeric.js';

/** The identity a node now references (a subset of KnownIdentity: labels are the caller's). */
export type IdentityRecord = Omit<KnownIdentity, 'labels'>;

export type CreateOutcome =
  | { readonly kind: 'created'; readonly identity: IdentityRecord }
  /** The label set already has an identity (someone won the race): reference that one. */
  | { readonly kind: 'exists'; readonly identity: IdentityRecord }
  /** The candidate number belongs to another label set: pick another. */
  | { readonly kind: 'id-taken' };

export type ReferenceOutcome = { readonly kind: 'referenced' } | { readonly kind: 'gone'; readonly current: IdentityRecord | undefined };

/**
 * Storage for the allocator (agent/kvstore implements it on etcd; each call is one guarded
 * transaction). Calls for one label set are never concurrent (the allocator serialises them).
 */
export interface AllocatorBackend {
  /** Creates index + identity + this node's reference together, only if neither exists. */
  create(labels: LabelSet, candidate: number): Promise<CreateOutcome>;
  /** Adds this node's reference, only if `known` is still the identity of `labels`. */
  reference(labels: LabelSet, known: IdentityRecord): Promise<ReferenceOutcome>;
  /** Deletes this node's reference (only the one this node wrote last). */
  release(labels: LabelSet): Promise<void>;
}

export interface AllocatorOptions {
  readonly range?: IdentityRange;
  /** Uniform in [0, 1): where the candidate search starts (spreads concurrent allocators). */
  readonly random: () => number;
  /** Guarded transactions per allocation before AllocationConflictError. */
  readonly maxAttempts?: number;
}

export interface Allocation {
  readonly id: number;
  /** This call created the identity in the cluster. */
  readonly isNew: boolean;
  /** Backend transactions this call needed (0 for a label set this node already references). */
  readonly roundTrips: number;
}

/** Reported by restore() when a label set had to get another number (it was GC'd meanwhile). */
export interface IdentityMove {
  readonly labels: LabelSet;
  readonly from: number;
  readonly to: number;
}

interface LocalRef {
  readonly labels: LabelSet;
  identity: IdentityRecord;
  count: number;
}

/**
 * Cluster identity allocation for one node, without a lock (DESIGN.md):
 * - a label set this node already references costs nothing (local refcount);
 * - a label set known from the identity cache costs one guarded txn (add our reference);
 * - a new label set costs one guarded txn (create index + id + reference together), two when
 *   another node wins the race (then reference the winner's number);
 * - release deletes this node's reference when the local refcount drops to 0.
 * Operations on one label set are serialised, so restore() never races release() (Cilium #35451).
 */
export class IdentityAllocator {
  private readonly local = new Map<string, LocalRef>();
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Numbers the backend reported taken that the view may not show yet. */
  private readonly taken = new Set<number>();
  private readonly range: IdentityRange;
  private readonly maxAttempts: number;

  constructor(
    private readonly backend: AllocatorBackend,
    private readonly view: IdentityView,
    private readonly opts: AllocatorOptions,
  ) {
    this.range = opts.range ?? DEFAULT_CLUSTER_RANGE;
    if (!(Number.isInteger(this.range.min) && Number.isInteger(this.range.max) && this.range.min >= 1 && this.range.max >= this.range.min)) {
      throw new RangeError(`bad identity range ${this.range.min}-${this.range.max}`);
    }
    this.maxAttempts = opts.maxAttempts ?? 16;
  }

  /** Local references: label set canonical -> id and count. */
  references(): { labels: LabelSet; id: number; count: number }[] {
    return [...this.local.values()].map((r) => ({ labels: r.labels, id: r.identity.id, count: r.count }));
  }

  lookupLocal(labels: LabelSet): number | undefined {
    return this.local.get(labels.canonical)?.identity.id;
  }

  async allocate(labels: LabelSet): Promise<Allocation> {
    if (labels.size === 0) throw new InvalidLabelsError('an empty label set cannot be a cluster identity');
    const hit = this.local.get(labels.canonical);
    if (hit !== undefined) {
      hit.count += 1;
      return { id: hit.identity.id, isNew: false, roundTrips: 0 };
    }
    return this.serialize(labels.canonical, async () => {
      const again = this.local.get(labels.canonical);
      if (again !== undefined) {
        again.count += 1;
        return { id: again.identity.id, isNew: false, roundTrips: 0 };
      }
      const r = await this.acquire(labels, undefined);
      this.local.set(labels.canonical, { labels, identity: r.identity, count: 1 });
      return { id: r.identity.id, isNew: r.isNew, roundTrips: r.roundTrips };
    });
  }

  /** Drops one local use; at zero deletes this node's reference. Returns true if it was the last. */
  async release(labels: LabelSet): Promise<boolean> {
    return this.serialize(labels.canonical, async () => {
      const ref = this.local.get(labels.canonical);
      if (ref === undefined) return false;
      ref.count -= 1;
      if (ref.count > 0) return false;
      this.local.delete(labels.canonical);
      await this.backend.release(labels);
      return true;
    });
  }

  /**
   * Re-adds this node's reference for every label set still held locally (after a lease
   * loss). A label set whose identity vanished meanwhile gets its old number back if free.
   */
  async restore(): Promise<IdentityMove[]> {
    const moves: IdentityMove[] = [];
    await Promise.all(
      [...this.local.keys()].map((canonical) =>
        this.serialize(canonical, async () => {
          const ref = this.local.get(canonical);
          if (ref === undefined) return; // released meanwhile: nothing to restore
          const r = await this.acquire(ref.labels, ref.identity);
          if (r.identity.id !== ref.identity.id) moves.push({ labels: ref.labels, from: ref.identity.id, to: r.identity.id });
          ref.identity = r.identity;
        }),
      ),
    );
    return moves;
  }

  private async acquire(labels: LabelSet, previous: IdentityRecord | undefined): Promise<{ identity: IdentityRecord; isNew: boolean; roundTrips: number }> {
    let known: IdentityRecord | undefined = previous ?? this.view.byLabels(labels.canonical);
    const preferred = previous?.id;
    const tried = new Set<number>();
    let roundTrips = 0;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      if (known !== undefined) {
        roundTrips += 1;
        const r = await this.backend.reference(labels, known);
        if (r.kind === 'referenced') return { identity: known, isNew: false, roundTrips };
        known = r.current;
        continue;
      }
      const candidate = preferred !== undefined && !tried.has(preferred) ? preferred : this.pickCandidate(tried);
      tried.add(candidate);
      roundTrips += 1;
      const r = await this.backend.create(labels, candidate);
      if (r.kind === 'created') {
        this.taken.delete(candidate);
        return { identity: r.identity, isNew: true, roundTrips };
      }
      if (r.kind === 'exists') known = r.identity;
      else this.taken.add(candidate);
    }
    throw new AllocationConflictError(`could not allocate an identity for ${labels.toString()} in ${this.maxAttempts} attempts`);
  }

  /** A free number, searching from a random start and wrapping; throws when the range is full. */
  private pickCandidate(tried: ReadonlySet<number>): number {
    const { min, max } = this.range;
    const size = max - min + 1;
    const start = Math.min(size - 1, Math.floor(this.opts.random() * size));
    for (let i = 0; i < size; i++) {
      const id = min + ((start + i) % size);
      if (!tried.has(id) && !this.taken.has(id) && !this.view.isUsed(id)) return id;
    }
    throw new IdentityRangeExhaustedError(this.range);
  }

  /**
   * Drops references found in the store that this node does not hold (e.g. a write that was
   * applied after its call timed out). Each check runs under the label set's serialisation, so
   * an allocation in flight is never undone. Returns how many were dropped.
   */
  async sweepUnheld(found: readonly LabelSet[], drop: (labels: LabelSet) => Promise<void>): Promise<number> {
    let dropped = 0;
    for (const labels of found) {
      await this.serialize(labels.canonical, async () => {
        if (this.local.has(labels.canonical)) return;
        await drop(labels);
        dropped += 1;
      });
    }
    return dropped;
  }

  /** Forget numbers reported taken (the view has caught up); cheap to call after cache syncs. */
  clearTaken(): void {
    this.taken.clear();
  }

  private serialize<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return next;
  }
}
