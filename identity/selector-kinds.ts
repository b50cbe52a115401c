import { SOURCE_CIDR, type LabelSet } from './labels.js';
import { isLocalIdentity, isReserved, LOCAL_IDENTITY_FLAG, ReservedIdentity } from './numeric.js';
import { cidrContains, formatCidr, parseCidr, type Cidr4 } from './selector-cidr.js';
import { labelTokens, type LabelSelector } from './selector.js';

export type IdentityKind = 'reserved' | 'cluster' | 'cidr' | 'other';

/** An identity as the selector cache knows it. */
export interface IdentityInfo {
  readonly id: number;
  readonly labels: LabelSet;
  readonly kind: IdentityKind;
  /** For CIDR identities: the prefix named by their `cidr:` label. */
  readonly cidr?: Cidr4;
}

/**
 * Reserved (1-255), node-local CIDR (bit 24), else cluster-scoped: 256-65535 for this
 * cluster and, with cluster IDs in bits 16-23, the identities of other clusters too.
 */
export function identityKind(id: number): IdentityKind {
  if (isReserved(id)) return 'reserved';
  if (isLocalIdentity(id)) return 'cidr';
  if (id >= 256 && id < LOCAL_IDENTITY_FLAG) return 'cluster';
  return 'other';
}

export function makeIdentityInfo(id: number, labels: LabelSet): IdentityInfo {
  const kind = identityKind(id);
  if (kind === 'cidr') {
    const l = labels.labels.find((x) => x.source === SOURCE_CIDR);
    if (l !== undefined) return { id, labels, kind, cidr: parseCidr(l.key) };
  }
  return { id, labels, kind };
}

/**
 * Index tokens an identity carries; a selector's tokens must intersect them for a match.
 * Label values, the kind, and (reserved identities only) the number.
 */
export function identityTokens(info: IdentityInfo): string[] {
  const out = labelTokens(info.labels);
  out.push(`kind:${info.kind}`);
  if (info.kind === 'reserved') out.push(`id:${info.id}`);
  return out;
}

/**
 * Label-selector match memo (the selector cache). `info`, when given, is the identity the
 * labels belong to, so the memo can keep the results with it.
 */
export interface MatchMemo {
  labelMatch(sel: LabelSelector, labels: LabelSet, info?: IdentityInfo): boolean;
}

/**
 * Anything that selects identities. `canonical` identifies equal selectors across rules;
 * `indexTokens` (if defined) narrows which identities can match.
 */
export interface IdentitySelector {
  readonly canonical: string;
  /** Human form for traces. */
  readonly display: string;
  indexTokens(): readonly string[] | undefined;
  matches(info: IdentityInfo, memo: MatchMemo): boolean;
}

/**
 * `fromEndpoints`/`toEndpoints`: selects cluster identities by labels. Reserved identities
 * only when the selector explicitly requires a `reserved:` label (`reserved:host`); never
 * CIDR identities. So `{}` selects all cluster endpoints and not world.
 */
export class EndpointSelector implements IdentitySelector {
  readonly canonical: string;
  private readonly tokens: readonly string[];
  constructor(readonly selector: LabelSelector) {
    this.canonical = `endpoints:${selector.canonical}`;
    this.tokens = selector.indexTokens() ?? (selector.requiresReserved ? ['kind:cluster', 'kind:reserved'] : ['kind:cluster']);
  }
  get display(): string {
    return `endpoints{${this.selector.toString()}}`;
  }
  indexTokens(): readonly string[] {
    return this.tokens;
  }
  matches(info: IdentityInfo, memo: MatchMemo): boolean {
    if (info.kind !== 'cluster' && !(info.kind === 'reserved' && this.selector.requiresReserved)) return false;
    return memo.labelMatch(this.selector, info.labels, info);
  }
}

export const ENTITY_NAMES = ['world', 'host', 'remote-node', 'cluster', 'health', 'init', 'unmanaged', 'all'] as const;
export type EntityName = (typeof ENTITY_NAMES)[number];

const ENTITY_IDS: Readonly<Record<Exclude<EntityName, 'all' | 'cluster' | 'world'>, number>> = {
  host: ReservedIdentity.host,
  'remote-node': ReservedIdentity.remoteNode,
  health: ReservedIdentity.health,
  init: ReservedIdentity.init,
  unmanaged: ReservedIdentity.unmanaged,
};
const CLUSTER_RESERVED = [ReservedIdentity.host, ReservedIdentity.remoteNode, ReservedIdentity.health, ReservedIdentity.init, ReservedIdentity.unmanaged];

/**
 * An entity other than `all` (which is the wildcard, identity 0, and never a selector).
 * world = reserved world + every CIDR identity (traffic outside the cluster); cluster = all
 * cluster identities + host, remote-node, health, init, unmanaged.
 */
export class EntitySelector implements IdentitySelector {
  readonly canonical: string;
  readonly display: string;
  constructor(readonly entity: Exclude<EntityName, 'all'>) {
    this.canonical = `entity:${entity}`;
    this.display = `entity ${entity}`;
  }
  indexTokens(): readonly string[] {
    switch (this.entity) {
      case 'world':
        return [`id:${ReservedIdentity.world}`, 'kind:cidr'];
      case 'cluster':
        return ['kind:cluster', ...CLUSTER_RESERVED.map((i) => `id:${i}`)];
      case 'host':
      case 'remote-node':
      case 'health':
      case 'init':
      case 'unmanaged':
        return [`id:${ENTITY_IDS[this.entity]}`];
    }
  }
  matches(info: IdentityInfo): boolean {
    switch (this.entity) {
      case 'world':
        return info.id === ReservedIdentity.world || info.kind === 'cidr';
      case 'cluster':
        return info.kind === 'cluster' || (CLUSTER_RESERVED as number[]).includes(info.id);
      case 'host':
      case 'remote-node':
      case 'health':
      case 'init':
      case 'unmanaged':
        return info.id === ENTITY_IDS[this.entity];
    }
  }
}

/**
 * `fromCIDR` / `fromCIDRSet`: every CIDR identity whose prefix lies inside `cidr` and inside
 * none of `except`; plus world when `cidr` is /0 (addresses no prefix claims resolve to world).
 */
export class CidrSelector implements IdentitySelector {
  readonly canonical: string;
  readonly display: string;
  readonly except: readonly Cidr4[];
  constructor(
    readonly cidr: Cidr4,
    except: readonly Cidr4[],
  ) {
    const ex = [...new Map(except.map((e) => [formatCidr(e), e])).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.except = ex.map(([, e]) => e);
    const exText = ex.map(([s]) => s);
    this.canonical = `cidr:${formatCidr(cidr)}${exText.length > 0 ? ` except ${exText.join(',')}` : ''}`;
    this.display = this.canonical;
  }
  indexTokens(): readonly string[] {
    return this.cidr.len === 0 ? ['kind:cidr', `id:${ReservedIdentity.world}`] : ['kind:cidr'];
  }
  matches(info: IdentityInfo): boolean {
    if (info.id === ReservedIdentity.world) return this.cidr.len === 0;
    if (info.cidr === undefined) return false;
    return cidrContains(this.cidr, info.cidr) && !this.except.some((e) => cidrContains(e, info.cidr!));
  }
}
