import type { CachedSelector, LabelSet, SelectionUser, SelectorCache } from '../../identity/index.js';
import { Direction, type PolicyKey } from '../../bpf/policy-map/types.js';
import type { CompiledRule, FilterSpec } from './filters.js';
import {
  EMPTY_WILDCARD,
  defaultAllowFilter,
  resolveIdentity,
  sameEntry,
  summarizeWildcard,
  type DesiredEntry,
  type ProxyPortFn,
  type WildcardSummary,
} from './map-state.js';

/** Map-entry changes of one endpoint: `added` are upserts, `deleted` keys; disjoint. */
export interface MapDelta {
  readonly added: readonly DesiredEntry[];
  readonly deleted: readonly PolicyKey[];
}

export interface Enforcement {
  readonly ingress: boolean;
  readonly egress: boolean;
}

function sameRules(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The policy of one local endpoint, kept current incrementally. It is a user of the selectors
 * its rules reference: a selection change marks only the affected identities dirty, and
 * `recompute` re-resolves just those. A rule or label change recomputes the whole endpoint.
 * Entries are kept per remote identity; changes accumulate in `pending` (first-touch value
 * kept) so `takeDelta` reports the net change since the last flush.
 */
export class EndpointPolicy implements SelectionUser {
  labels: LabelSet;
  rules: readonly CompiledRule[] = [];
  enforcement: Enforcement = { ingress: false, egress: false };
  private filtersBySelector = new Map<CachedSelector, FilterSpec[]>();
  private wildcardFilters: FilterSpec[] = [];
  private wildcard: WildcardSummary = EMPTY_WILDCARD;
  /** Every entry by key string, and the key strings of each identity (one string when single). */
  private readonly state = new Map<string, DesiredEntry>();
  private readonly keysById = new Map<number, string | string[]>();
  /** Key string -> the entry as last flushed (null = absent then). */
  private readonly pending = new Map<string, DesiredEntry | null>();
  private readonly dirtyIds = new Set<number>();
  /** True until the first full computation, and after rule / label changes. */
  needsFull = true;

  constructor(
    readonly id: string,
    labels: LabelSet,
    private readonly cache: SelectorCache,
    private readonly proxyPortFor: ProxyPortFn,
    private readonly onDirty: (ep: EndpointPolicy) => void,
  ) {
    this.labels = labels;
  }

  identitySelectionUpdated(selector: CachedSelector, added: readonly number[], deleted: readonly number[]): void {
    if (this.needsFull || !this.filtersBySelector.has(selector)) return;
    for (const id of added) this.dirtyIds.add(id);
    for (const id of deleted) this.dirtyIds.add(id);
    this.onDirty(this);
  }

  get isDirty(): boolean {
    return this.needsFull || this.dirtyIds.size > 0;
  }

  /** Rebuilds filters from `rules` (the rules selecting this endpoint) and every entry. */
  computeFull(rules: readonly CompiledRule[]): void {
    this.rules = rules;
    const ingress = rules.some((r) => r.rule.defaultDeny.ingress);
    const egress = rules.some((r) => r.rule.defaultDeny.egress);
    this.enforcement = { ingress, egress };
    const old = this.filtersBySelector;
    const bySel = new Map<CachedSelector, FilterSpec[]>();
    const wild: FilterSpec[] = [];
    if (!ingress) wild.push(defaultAllowFilter(Direction.ingress));
    if (!egress) wild.push(defaultAllowFilter(Direction.egress));
    for (const r of rules) {
      for (const f of r.filters) {
        if (f.peer === undefined) {
          wild.push(f);
          continue;
        }
        const cs = this.cache.addUser(f.peer, this);
        let list = bySel.get(cs);
        if (list === undefined) bySel.set(cs, (list = []));
        list.push(f);
      }
    }
    // Register new selectors before releasing old ones so shared ones are never repopulated.
    for (const cs of old.keys()) if (!bySel.has(cs)) this.cache.removeUser(cs, this);
    this.filtersBySelector = bySel;
    this.wildcardFilters = wild;

    const wildEntries = resolveIdentity(0, this.id, wild, EMPTY_WILDCARD, this.proxyPortFor);
    this.wildcard = summarizeWildcard(wildEntries);
    const perId = new Map<number, FilterSpec[]>();
    for (const [cs, fs] of bySel) {
      for (const id of cs.selections) {
        let list = perId.get(id);
        if (list === undefined) perId.set(id, (list = []));
        for (const f of fs) list.push(f);
      }
    }
    this.setIdentity(0, wildEntries);
    for (const [id, fs] of perId) this.setIdentity(id, resolveIdentity(id, this.id, fs, this.wildcard, this.proxyPortFor));
    for (const id of [...this.keysById.keys()]) if (id !== 0 && !perId.has(id)) this.setIdentity(id, new Map());
    this.dirtyIds.clear();
    this.needsFull = false;
  }

  /** Re-resolves the identities whose selections changed since the last call. */
  recomputeDirty(): number {
    const n = this.dirtyIds.size;
    for (const id of this.dirtyIds) this.setIdentity(id, resolveIdentity(id, this.id, this.filtersFor(id), this.wildcard, this.proxyPortFor));
    this.dirtyIds.clear();
    return n;
  }

  /** Drops every entry and selector registration (endpoint removed). */
  release(): void {
    for (const cs of this.filtersBySelector.keys()) this.cache.removeUser(cs, this);
    this.filtersBySelector = new Map();
    this.wildcardFilters = [];
    for (const id of [...this.keysById.keys()]) this.setIdentity(id, new Map());
    this.dirtyIds.clear();
  }

  private filtersFor(id: number): FilterSpec[] {
    const out: FilterSpec[] = [];
    for (const [cs, fs] of this.filtersBySelector) if (cs.selections.has(id)) for (const f of fs) out.push(f);
    return out;
  }

  private setIdentity(id: number, next: Map<string, DesiredEntry>): void {
    const prevKeys = this.keysById.get(id);
    if (prevKeys !== undefined) {
      for (const ks of typeof prevKeys === 'string' ? [prevKeys] : prevKeys) {
        if (next.has(ks)) continue;
        this.touch(ks, this.state.get(ks));
        this.state.delete(ks);
      }
    }
    for (const [ks, e] of next) {
      const p = this.state.get(ks);
      if (p === undefined || !sameEntry(p, e) || !sameRules(p.rules, e.rules)) {
        this.touch(ks, p);
        this.state.set(ks, e);
      }
    }
    if (next.size === 0) this.keysById.delete(id);
    else if (next.size === 1) this.keysById.set(id, next.keys().next().value!);
    else this.keysById.set(id, [...next.keys()]);
  }

  private touch(ks: string, before: DesiredEntry | undefined): void {
    if (!this.pending.has(ks)) this.pending.set(ks, before ?? null);
  }

  /** Net map changes since the last call. */
  takeDelta(): MapDelta {
    const added: DesiredEntry[] = [];
    const deleted: PolicyKey[] = [];
    for (const [ks, p] of this.pending) {
      const before = p ?? undefined;
      const now = this.state.get(ks);
      if (sameEntry(before, now)) continue;
      if (now !== undefined) added.push(now);
      else deleted.push(before!.key);
    }
    this.pending.clear();
    return { added, deleted };
  }

  get hasPending(): boolean {
    return this.pending.size > 0;
  }

  /** Every current entry. */
  *entries(): IterableIterator<DesiredEntry> {
    yield* this.state.values();
  }

  get size(): number {
    return this.state.size;
  }

  entriesFor(identity: number): ReadonlyMap<string, DesiredEntry> | undefined {
    const keys = this.keysById.get(identity);
    if (keys === undefined) return undefined;
    return new Map((typeof keys === 'string' ? [keys] : keys).map((ks) => [ks, this.state.get(ks)!]));
  }

  wildcardFilterList(): readonly FilterSpec[] {
    return this.wildcardFilters;
  }
}
