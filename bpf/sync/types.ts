/** What one apply wrote to the kernel. */
export interface ApplyResult {
  readonly upserted: number;
  readonly deleted: number;
}

/** Differences a dump-diff-repair found between the kernel map and the desired state. */
export interface DriftReport {
  readonly map: string;
  /** Desired entries absent from the kernel. */
  readonly missing: number;
  /** Kernel entries that are not desired. */
  readonly extra: number;
  /** Entries present in both with different values. */
  readonly changed: number;
}

export function hasDrift(r: DriftReport): boolean {
  return r.missing + r.extra + r.changed > 0;
}

/** Incremental changes: `deletes` are applied before `upserts`. */
export interface MapChanges<K, V> {
  readonly upserts?: Iterable<readonly [K, V]>;
  readonly deletes?: Iterable<K>;
}
