import { LRUCache } from 'lru-cache';
import type { LabelSet } from './labels.js';
import { RESERVED_LABEL_NAMES, reservedLabels } from './numeric.js';
import { makeIdentityInfo, type IdentityInfo, type IdentitySelector, type MatchMemo } from './selector-kinds.js';
import { labelToken, type LabelSelector } from './selector.js';

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

const CLUSTER_TOKEN = 'kind:cluster';

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

/** What the cache keeps per identity: the identity, its index tokens, its match results. */
interface Live {
  readonly info: IdentityInfo;
  /** Tokens it is indexed under in idsByToken (extended when a new label key gets indexed). */
  readonly tokens: string[];
  /** Selector canonical -> match result, for this identity's label set (created on first use). */
  matches: Map<string, boolean> | undefined;
  /** The first result, kept inline: most identities are evaluated by one or two selectors. */
  firstSel: string | undefined;
  firstMatch: boolean;
}

/**
 * Selector cache (Cilium's SelectorCache): maps each distinct selector to the identities it
 * selects. Both sides are indexed by tokens (label `key=value` for keys some selector indexes
 * on, identity kind, reserved identity number) so an identity change only evaluates selectors
 * that could match it and a new selector only scans identities that could match it.
 * Label-selector results are memoized per label set: a live identity keeps its results, and a
 * deleted identity's results move to an LRU bounded in label sets, so a label set seen again
 * (an identity re-created, an endpoint relabelled back) costs no matching. Pure and
 * synchronous; users are notified after the cache is fully updated, never while it mutates.
 */
export class SelectorCache implements MatchMemo {
  private readonly ids = new Map<number, Live>();
  private readonly idsByToken = new Map<string, Set<number>>();
  /** Label keys identities are indexed by (those some selector has asked for). */
  private readonly indexedKeys = new Set<string>();
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

  labelMatch(sel: LabelSelector, labels: LabelSet, info?: IdentityInfo): boolean {
    let results: Map<string, boolean> | undefined;
    const live = info === undefined ? undefined : this.ids.get(info.id);
    if (live !== undefined && live.info === info) {
      if (live.firstSel === sel.canonical) {
        this.hitCount++;
        return live.firstMatch;
      }
      if (live.firstSel === undefined && live.matches === undefined) {
        this.matchCount++;
        live.firstSel = sel.canonical;
        live.firstMatch = sel.matches(labels);
        return live.firstMatch;
      }
      results = live.matches ??= new Map();
    } else {
      results = this.memo.get(labels.canonical);
      if (results === undefined) this.memo.set(labels.canonical, (results = new Map()));
    }
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
    return this.ids.get(id)?.info;
  }

  *identities(): IterableIterator<IdentityInfo> {
    for (const l of this.ids.values()) yield l.info;
  }

  /** Every cached selector (read-only views; `ward policy selectors`). */
  *cachedSelectors(): IterableIterator<CachedSelector> {
    yield* this.selectors.values();
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
      this.ensureIndexed(tokens);
      e = { selector, canonical: selector.canonical, selections: new Set(), users: new Set(), tokens };
      for (const id of this.candidateIds(tokens)) {
        const info = this.ids.get(id)!.info;
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
    const upserts = Array.isArray(added) ? (added as readonly (readonly [number, LabelSet])[]) : [...added];
    const upserted = new Set<number>();
    for (const [id] of upserts) upserted.add(id);
    const before = new Map<Entry, { add: Set<number>; del: Set<number> }>();
    const track = (e: Entry): { add: Set<number>; del: Set<number> } => {
      let t = before.get(e);
      if (t === undefined) before.set(e, (t = { add: new Set(), del: new Set() }));
      return t;
    };
    for (const id of deleted) {
      if (upserted.has(id)) continue;
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
      if (old !== undefined && old.info.labels.equals(labels)) continue;
      const was: Entry[] = [];
      if (old !== undefined) {
        for (const e of this.candidateSelectors(old)) if (e.selections.has(id)) was.push(e);
        this.removeIdentity(old);
      }
      const live = this.insertIdentity(makeIdentityInfo(id, labels));
      const now: Entry[] = [];
      for (const e of this.candidateSelectors(live)) if (e.selector.matches(live.info, this)) now.push(e);
      for (const e of was) {
        if (now.includes(e)) continue;
        e.selections.delete(id);
        const t = track(e);
        if (!t.add.delete(id)) t.del.add(id);
      }
      for (const e of now) {
        if (was.includes(e)) continue;
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

  /**
   * Index tokens of an identity. Label tokens only for keys some selector has indexed on
   * (labels nobody selects on, such as unique ids, cost nothing); `kind:cluster` is left out
   * of idsByToken: it would hold nearly every identity, and the few selectors indexed on it
   * (`{}`, NotIn-only) scan `ids` once when they are first populated.
   */
  private tokensOf(info: IdentityInfo): string[] {
    const out: string[] = [];
    for (const l of info.labels.labels) if (this.indexedKeys.has(l.key)) out.push(labelToken(l.key, l.value));
    out.push(`kind:${info.kind}`);
    if (info.kind === 'reserved') out.push(`id:${info.id}`);
    return out;
  }

  /** Starts indexing identities by the label keys of `tokens` (one scan per new key, ever). */
  private ensureIndexed(tokens: readonly string[] | undefined): void {
    for (const t of tokens ?? []) {
      if (!t.startsWith('kv:')) continue;
      const key = t.slice(3, t.indexOf('='));
      if (this.indexedKeys.has(key)) continue;
      this.indexedKeys.add(key);
      for (const live of this.ids.values()) {
        const l = live.info.labels.get(key);
        if (l === undefined) continue;
        const tok = labelToken(key, l.value);
        live.tokens.push(tok);
        addTo(this.idsByToken, tok, live.info.id);
      }
    }
  }

  private insertIdentity(info: IdentityInfo): Live {
    // A label set seen before brings its memoized results back from the LRU.
    const live: Live = { info, tokens: this.tokensOf(info), matches: this.memo.get(info.labels.canonical), firstSel: undefined, firstMatch: false };
    this.ids.set(info.id, live);
    for (const t of live.tokens) if (t !== CLUSTER_TOKEN) addTo(this.idsByToken, t, info.id);
    return live;
  }

  private removeIdentity(live: Live): void {
    this.ids.delete(live.info.id);
    for (const t of live.tokens) if (t !== CLUSTER_TOKEN) removeFrom(this.idsByToken, t, live.info.id);
    let m = live.matches;
    if (live.firstSel !== undefined) (m ??= new Map()).set(live.firstSel, live.firstMatch);
    if (m !== undefined && m.size > 0) this.memo.set(live.info.labels.canonical, m);
  }

  private candidateIds(tokens: readonly string[] | undefined): Iterable<number> {
    if (tokens === undefined) return [...this.ids.keys()];
    if (tokens.length === 1 && tokens[0] !== CLUSTER_TOKEN) return this.idsByToken.get(tokens[0]!) ?? [];
    const out = new Set<number>();
    for (const t of tokens) {
      if (t === CLUSTER_TOKEN) {
        for (const live of this.ids.values()) if (live.info.kind === 'cluster') out.add(live.info.id);
      } else for (const id of this.idsByToken.get(t) ?? []) out.add(id);
    }
    return out;
  }

  private candidateSelectors(live: Live): Iterable<Entry> {
    let out: Set<Entry> | undefined = this.unindexed.size > 0 ? new Set(this.unindexed) : undefined;
    let single: Set<Entry> | undefined;
    for (const t of live.tokens) {
      const bucket = this.selectorsByToken.get(t);
      if (bucket === undefined) continue;
      if (out === undefined && single === undefined) {
        single = bucket;
        continue;
      }
      out ??= new Set(single);
      for (const e of bucket) out.add(e);
    }
    return out ?? single ?? [];
  }
}
