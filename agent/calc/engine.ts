import { SelectorCache, isLocalIdentity, type LabelSet } from '../../identity/index.js';
import type { PolicyRule } from '../policy/index.js';
import { CidrIdentities, cidrLabels, type IpcacheEntry } from './cidr-identities.js';
import { EndpointPolicy, type Enforcement, type MapDelta } from './endpoint-policy.js';
import type { CompiledRule } from './filters.js';
import { defaultProxyPort, type DesiredEntry, type ProxyPortFn } from './map-state.js';
import { PolicyRepository } from './repository.js';

export interface PolicyEngineOptions {
  readonly proxyPortFor?: ProxyPortFn;
  /** Bound of the selector x label-set match memo. */
  readonly memoSize?: number;
}

export interface IpcacheDelta {
  readonly added: readonly IpcacheEntry[];
  readonly deleted: readonly IpcacheEntry[];
}

/**
 * Everything that changed since the last flush. Apply in this order (DESIGN.md): every
 * endpoint's `added`, then `ipcache.added`, then `ipcache.deleted`, then every endpoint's
 * `deleted`, then drop the maps of `removedEndpoints`.
 */
export interface FlushResult {
  readonly revision: number;
  readonly endpoints: ReadonlyMap<string, MapDelta>;
  readonly removedEndpoints: readonly string[];
  readonly ipcache: IpcacheDelta;
  /** Work done by this flush (for tests and benchmarks). */
  readonly stats: FlushStats;
}

export interface FlushStats {
  /** Endpoints recomputed whole (rule, label or endpoint changes). */
  readonly fullRecomputes: number;
  /** (endpoint, identity) pairs re-resolved after selection changes. */
  readonly identityRecomputes: number;
  /** Map entries added/changed plus deleted, over all endpoints. */
  readonly entryChanges: number;
}

export interface EndpointView {
  readonly id: string;
  readonly labels: LabelSet;
  readonly enforcement: Enforcement;
  /** Rules selecting the endpoint, in repository order. */
  readonly rules: readonly CompiledRule[];
  readonly entries: readonly DesiredEntry[];
}

/**
 * The pure incremental policy core (see agent/calc/DESIGN.md). Inputs: cluster identities,
 * local endpoints and policies; each input call only records what it invalidates. `flush()`
 * does the work and returns the net policy-map and ipcache changes. Synchronous, no I/O.
 */
export class PolicyEngine {
  readonly selectorCache: SelectorCache;
  readonly repository = new PolicyRepository();
  readonly cidrs = new CidrIdentities();
  private readonly endpoints = new Map<string, EndpointPolicy>();
  private readonly dirty = new Set<EndpointPolicy>();
  private readonly removed = new Map<string, EndpointPolicy>();
  private readonly ipPending = new Map<string, IpcacheEntry | undefined>();
  private readonly proxyPortFor: ProxyPortFn;

  constructor(opts: PolicyEngineOptions = {}) {
    this.proxyPortFor = opts.proxyPortFor ?? defaultProxyPort;
    this.selectorCache = new SelectorCache(opts.memoSize !== undefined ? { memoSize: opts.memoSize } : {});
  }

  get revision(): number {
    return this.repository.revision;
  }

  /**
   * Cluster identity changes (upserts in `added`, ids in `deleted`, disjoint; as the identity
   * cache's IdentityDelta). Node-local CIDR identities are owned by the engine and ignored here.
   */
  updateIdentities(added: Iterable<readonly [number, LabelSet]>, deleted: Iterable<number> = []): void {
    const up: (readonly [number, LabelSet])[] = [];
    for (const a of added) if (!isLocalIdentity(a[0])) up.push(a);
    const del: number[] = [];
    for (const d of deleted) if (!isLocalIdentity(d)) del.push(d);
    if (up.length + del.length > 0) this.selectorCache.updateIdentities(up, del);
  }

  upsertEndpoint(id: string, labels: LabelSet): void {
    const ep = this.endpoints.get(id);
    if (ep !== undefined) {
      if (ep.labels.equals(labels)) return;
      ep.labels = labels;
      this.markFull(ep);
      return;
    }
    const prev = this.removed.get(id);
    const fresh = prev ?? new EndpointPolicy(id, labels, this.selectorCache, this.proxyPortFor, (e) => this.dirty.add(e));
    this.removed.delete(id);
    fresh.labels = labels;
    this.endpoints.set(id, fresh);
    this.markFull(fresh);
  }

  deleteEndpoint(id: string): void {
    const ep = this.endpoints.get(id);
    if (ep === undefined) return;
    this.endpoints.delete(id);
    this.dirty.delete(ep);
    ep.release();
    this.removed.set(id, ep);
  }

  /** Adds or replaces the policy `name` (all its rules at once); returns the new revision. */
  upsertPolicy(name: string, rules: readonly PolicyRule[]): number {
    const change = this.repository.upsert(name, rules);
    this.applyRuleChange(change.added, change.removed);
    return change.revision;
  }

  deletePolicy(name: string): number {
    const change = this.repository.delete(name);
    this.applyRuleChange(change.added, change.removed);
    return change.revision;
  }

  private applyRuleChange(added: readonly CompiledRule[], removed: readonly CompiledRule[]): void {
    // New CIDR identities first (so the new rules' selectors see them), old ones after.
    this.cidrIdentitiesChanged(this.cidrs.acquire(added.flatMap((r) => r.cidrs)), []);
    for (const ep of this.endpoints.values()) {
      if (ep.needsFull) continue;
      const hit = (r: CompiledRule): boolean => this.selectorCache.labelMatch(r.rule.endpointSelector, ep.labels);
      if (added.some(hit) || removed.some(hit)) this.markFull(ep);
    }
    this.cidrIdentitiesChanged([], this.cidrs.release(removed.flatMap((r) => r.cidrs)));
  }

  private cidrIdentitiesChanged(added: readonly IpcacheEntry[], deleted: readonly IpcacheEntry[]): void {
    if (added.length + deleted.length === 0) return;
    for (const e of [...added, ...deleted]) {
      if (!this.ipPending.has(e.prefix)) this.ipPending.set(e.prefix, added.includes(e) ? undefined : e);
    }
    this.selectorCache.updateIdentities(
      added.map((e) => [e.identity, cidrLabels(e.prefix)] as const),
      deleted.map((e) => e.identity),
    );
  }

  private markFull(ep: EndpointPolicy): void {
    ep.needsFull = true;
    this.dirty.add(ep);
  }

  private rulesFor(labels: LabelSet): CompiledRule[] {
    const out: CompiledRule[] = [];
    for (const r of this.repository.rules()) if (this.selectorCache.labelMatch(r.rule.endpointSelector, labels)) out.push(r);
    return out;
  }

  /** Computes everything invalidated since the last flush and returns the net changes. */
  flush(): FlushResult {
    let fullRecomputes = 0;
    let identityRecomputes = 0;
    for (const ep of this.dirty) {
      if (ep.needsFull) {
        ep.computeFull(this.rulesFor(ep.labels));
        fullRecomputes++;
      } else identityRecomputes += ep.recomputeDirty();
    }
    const endpoints = new Map<string, MapDelta>();
    let entryChanges = 0;
    for (const ep of this.dirty) {
      const d = ep.takeDelta();
      entryChanges += d.added.length + d.deleted.length;
      if (d.added.length + d.deleted.length > 0) endpoints.set(ep.id, d);
    }
    this.dirty.clear();
    const removedEndpoints: string[] = [];
    for (const [id, ep] of this.removed) {
      const d = ep.takeDelta();
      entryChanges += d.added.length + d.deleted.length;
      if (d.added.length + d.deleted.length > 0) endpoints.set(id, d);
      removedEndpoints.push(id);
    }
    this.removed.clear();
    const ipAdded: IpcacheEntry[] = [];
    const ipDeleted: IpcacheEntry[] = [];
    for (const [prefix, before] of this.ipPending) {
      const now = this.cidrs.get(prefix);
      if (before?.identity === now?.identity) continue;
      if (before !== undefined) ipDeleted.push(before);
      if (now !== undefined) ipAdded.push(now);
    }
    this.ipPending.clear();
    return {
      revision: this.revision,
      endpoints,
      removedEndpoints,
      ipcache: { added: ipAdded, deleted: ipDeleted },
      stats: { fullRecomputes, identityRecomputes, entryChanges },
    };
  }

  /** Marks every endpoint for a full recompute at the next flush (periodic resync, benchmarks). */
  recomputeAll(): void {
    for (const ep of this.endpoints.values()) this.markFull(ep);
  }

  endpointIds(): string[] {
    return [...this.endpoints.keys()];
  }

  /** The endpoint's current desired state (as of the last flush). */
  endpoint(id: string): EndpointView | undefined {
    const ep = this.endpoints.get(id);
    if (ep === undefined) return undefined;
    return { id, labels: ep.labels, enforcement: ep.enforcement, rules: ep.rules, entries: [...ep.entries()] };
  }

  /** Current map state of an endpoint, keyed by policyKeyString. */
  mapState(id: string): Map<string, DesiredEntry> {
    const ep = this.endpoints.get(id);
    const out = new Map<string, DesiredEntry>();
    if (ep === undefined) return out;
    for (const e of ep.entries()) out.set(`${e.key.identity}/${e.key.direction}/${e.key.protocol}/${e.key.port}/${e.key.portPrefixLen}`, e);
    return out;
  }

  mapSize(id: string): number {
    return this.endpoints.get(id)?.size ?? 0;
  }

  /** Every CIDR prefix the ipcache must hold, with its local identity. */
  ipcache(): IpcacheEntry[] {
    return this.cidrs.entries();
  }
}
