import { LRUCache } from 'lru-cache';
import type { LabelSet } from './labels.js';
import { RESERVED_LABEL_NAMES, reservedLabels } from './numeric.js';
import { identityTokens, makeIdentityInfo, type IdentityInfo, type IdentitySelector, type MatchMemo } from './selector-kinds.js';
import type { LabelSelector } from './selector.js';

/** Told when a cached selector's selection changes. `added` and `deleted` are disjoint. */
export interface SelectionUser {
  identitySelectionUpdated(selector: CachedSelector, added: readonly number[], deleted: readonly number[]): void;
}

/** One entry per distinct selector (by canonical form), shared by all its users. */
export interface CachedSelector {
  readonly selector: IdentitySelector;
  readonly canonical: string;
  /** The identities it selects now. Read-only for users. */
  readonly selections: ReadonlySet<number>;
  readonly users: ReadonlySet<SelectionUser>;
}

interface Entry extends CachedSelector {
  readonly selections: Set<number>;
  readonly users: Set<SelectionUser>;
  readonly tokens: readonly string[] | undefined;
}

export interface SelectionChange {
  readonly selector: CachedSelector;
  readonly added: readonly number[];
  readonly deleted: readonly number[];
}

export interface SelectorCacheOptions {
  /** Bound of the match memo, in label sets (default 65,536); each keeps its results per selector. */
  readonly memoSize?: number;
  /** Preload the reserved identities (default true). */
  readonly reserved?: boolean;
}

export interface SelectorCacheStats {
  selectors: number;
  identities: number;
  labelMatches: number;
  memoHits: number;
  memoSize: number;
}

function addTo<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  let s = m.get(k);
  if (s === undefined) m.set(k, (s = new Set()));
  s.add(v);
}
function removeFrom<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const s = m.get(k);
  if (s === undefined) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}

/**
 * Selector cache (Cilium's SelectorCache): maps each distinct selector to the identities it
 * selects. Both sides are indexed by tokens (label key=value, key presence, identity kind,
 * identity number) so an identity change only evaluates selectors that could match it and a
 * new selector only scans identities that could match it. Label-selector results are memoized
 * per (label set, selector) in an LRU bounded in label sets, so a label set seen again (an
 * identity re-created, an endpoint relabelled back) costs no matching. Pure and synchronous; users are notified after
 * the cache is fully updated, never while it is being mutated.
 */
export class SelectorCache implements MatchMemo {
  private readonly ids = new Map<number, IdentityInfo>();
  private readonly idsByToken = new Map<string, Set<number>>();
  private readonly selectors = new Map<string, Entry>();
  private readonly selectorsByToken = new Map<string, Set<Entry>>();
  /** Selectors without index tokens: evaluated for every identity. */
  private readonly unindexed = new Set<Entry>();
  /** Label set (canonical) -> selector (canonical) -> match result; LRU over label sets. */
  private readonly memo: LRUCache<string, Map<string, boolean>>;
  private matchCount = 0;
  private hitCount = 0;
  private notifying = false;

  constructor(opts: SelectorCacheOptions = {}) {
    this.memo = new LRUCache<string, Map<string, boolean>>({ max: opts.memoSize ?? 65_536 });
    if (opts.reserved ?? true) {
      for (const id of Object.keys(RESERVED_LABEL_NAMES).map(Number)) this.insertIdentity(makeIdentityInfo(id, reservedLabels(id)));
    }
  }

  labelMatch(sel: LabelSelector, labels: LabelSet): boolean {
    let results = this.memo.get(labels.canonical);
    if (results === undefined) this.memo.set(labels.canonical, (results = new Map()));
    const hit = results.get(sel.canonical);
    if (hit !== undefined) {
      this.hitCount++;
      return hit;
    }
    this.matchCount++;
    const r = sel.matches(labels);
    results.set(sel.canonical, r);
    return r;
  }

  identity(id: number): IdentityInfo | undefined {
    return this.ids.get(id);
  }

  identities(): IterableIterator<IdentityInfo> {
    return this.ids.values();
  }

  get(canonical: string): CachedSelector | undefined {
    return this.selectors.get(canonical);
  }

  stats(): SelectorCacheStats {
    return { selectors: this.selectors.size, identities: this.ids.size, labelMatches: this.matchCount, memoHits: this.hitCount, memoSize: this.memo.size };
  }

  /**
   * Registers `user` on `selector`, creating and populating the entry on first use (the only
   * full scan a selector ever costs). No notification for the initial selection: read
   * `selections`.
   */
  addUser(selector: IdentitySelector, user: SelectionUser): CachedSelector {
    let e = this.selectors.get(selector.canonical);
    if (e === undefined) {
      const tokens = selector.indexTokens();
      e = { selector, canonical: selector.canonical, selections: new Set(), users: new Set(), tokens };
      for (const id of this.candidateIds(tokens)) {
        const info = this.ids.get(id)!;
        if (selector.matches(info, this)) e.selections.add(id);
      }
      this.selectors.set(e.canonical, e);
      if (tokens === undefined) this.unindexed.add(e);
      else for (const t of tokens) addTo(this.selectorsByToken, t, e);
    }
    e.users.add(user);
    return e;
  }

  /** Drops `user`; the entry goes when its last user goes. */
  removeUser(cached: CachedSelector, user: SelectionUser): void {
    const e = this.selectors.get(cached.canonical);
    if (e === undefined) return;
    e.users.delete(user);
    if (e.users.size > 0) return;
    this.selectors.delete(e.canonical);
    if (e.tokens === undefined) this.unindexed.delete(e);
    else for (const t of e.tokens) removeFrom(this.selectorsByToken, t, e);
  }

  /**
   * Applies identity changes (upserts in `added`, ids in `deleted`; an id in both is an
   * upsert) and returns, per selector whose selection changed, the disjoint delta. Users are
   * notified after every selector is updated.
   */
  updateIdentities(added: Iterable<readonly [number, LabelSet]>, deleted: Iterable<number> = []): SelectionChange[] {
    if (this.notifying) throw new Error('SelectorCache.updateIdentities called from a selection notification');
    const upserts = new Map<number, LabelSet>(added);
    const before = new Map<Entry, { add: Set<number>; del: Set<number> }>();
    const track = (e: Entry): { add: Set<number>; del: Set<number> } => {
      let t = before.get(e);
      if (t === undefined) before.set(e, (t = { add: new Set(), del: new Set() }));
      return t;
    };
    for (const id of deleted) {
      if (upserts.has(id)) continue;
      const old = this.ids.get(id);
      if (old === undefined) continue;
      for (const e of this.candidateSelectors(old)) {
        if (e.selections.delete(id)) {
          const t = track(e);
          if (!t.add.delete(id)) t.del.add(id);
        }
      }
      this.removeIdentity(old);
    }
    for (const [id, labels] of upserts) {
      const old = this.ids.get(id);
      if (old !== undefined && old.labels.equals(labels)) continue;
      const info = makeIdentityInfo(id, labels);
      const was = new Set<Entry>();
      if (old !== undefined) {
        for (const e of this.candidateSelectors(old)) if (e.selections.has(id)) was.add(e);
        this.removeIdentity(old);
      }
      this.insertIdentity(info);
      const now = new Set<Entry>();
      for (const e of this.candidateSelectors(info)) if (e.selector.matches(info, this)) now.add(e);
      for (const e of was) {
        if (now.has(e)) continue;
        e.selections.delete(id);
        const t = track(e);
        if (!t.add.delete(id)) t.del.add(id);
      }
      for (const e of now) {
        if (was.has(e)) continue;
        e.selections.add(id);
        const t = track(e);
        if (!t.del.delete(id)) t.add.add(id);
      }
    }
    const changes: SelectionChange[] = [];
    for (const [e, t] of before) {
      if (t.add.size === 0 && t.del.size === 0) continue;
      changes.push({ selector: e, added: [...t.add].sort((a, b) => a - b), deleted: [...t.del].sort((a, b) => a - b) });
    }
    this.notifying = true;
    try {
      for (const c of changes) for (const u of [...c.selector.users]) u.identitySelectionUpdated(c.selector, c.added, c.deleted);
    } finally {
      this.notifying = false;
    }
    return changes;
  }

  private insertIdentity(info: IdentityInfo): void {
    this.ids.set(info.id, info);
    for (const t of identityTokens(info)) addTo(this.idsByToken, t, info.id);
  }

  private removeIdentity(info: IdentityInfo): void {
    this.ids.delete(info.id);
    for (const t of identityTokens(info)) removeFrom(this.idsByToken, t, info.id);
  }

  private candidateIds(tokens: readonly string[] | undefined): Iterable<number> {
    if (tokens === undefined) return [...this.ids.keys()];
    if (tokens.length === 1) return this.idsByToken.get(tokens[0]!) ?? [];
    const out = new Set<number>();
    for (const t of tokens) for (const id of this.idsByToken.get(t) ?? []) out.add(id);
    return out;
  }

  private candidateSelectors(info: IdentityInfo): Set<Entry> {
    const out = new Set<Entry>(this.unindexed);
    for (const t of identityTokens(info)) for (const e of this.selectorsByToken.get(t) ?? []) out.add(e);
    return out;
  }
}
