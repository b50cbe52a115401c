import { keyCovers, policyKeyString, Protocol, type Direction, type PolicyEntry, type PolicyKey } from '../../bpf/policy-map/types.js';
import type { HttpRule } from '../policy/index.js';
import type { FilterSpec } from './filters.js';

/** One desired policy-map entry of an endpoint, with what produced it. */
export interface DesiredEntry {
  readonly key: PolicyKey;
  readonly entry: PolicyEntry;
  /** HTTP rules the proxy must apply for this key's identity (only when proxyPort != 0). */
  readonly http?: readonly HttpRule[];
  /** Rules that produced the entry (`policy#index`, or `default-allow`), sorted. */
  readonly rules: readonly string[];
}

/** Per identity (0 = any): policy key string -> entry. */
export type IdentityEntries = ReadonlyMap<string, DesiredEntry>;

/** Chooses the proxy port of an L7 entry: deterministic per (endpoint, direction, protocol, port). */
export type ProxyPortFn = (endpoint: string, direction: Direction, protocol: number, port: number) => number;

/** FNV-1a over the tuple, mapped into 10000..29999 (the real proxy allocator comes later). */
export const defaultProxyPort: ProxyPortFn = (endpoint, direction, protocol, port) => {
  let h = 0x811c9dc5;
  const s = `${endpoint}|${direction}|${protocol}|${port}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 10000 + (h % 20000);
};

/** What the identity-0 (wildcard) entries imply for every other identity. */
export interface WildcardSummary {
  /** Keys (identity 0) allowed without L7. */
  readonly plainAllow: readonly PolicyKey[];
  /** Keys (identity 0) redirected to the proxy. */
  readonly l7: readonly PolicyKey[];
}

export const EMPTY_WILDCARD: WildcardSummary = { plainAllow: [], l7: [] };

export function summarizeWildcard(entries: IdentityEntries | undefined): WildcardSummary {
  if (entries === undefined) return EMPTY_WILDCARD;
  const plainAllow: PolicyKey[] = [];
  const l7: PolicyKey[] = [];
  for (const e of entries.values()) {
    if (e.entry.deny) continue;
    (e.entry.proxyPort === 0 ? plainAllow : l7).push(e.key);
  }
  return { plainAllow, l7 };
}

interface Acc {
  readonly key: PolicyKey;
  readonly ks: string;
  deny: boolean;
  plain: boolean;
  l7: boolean;
  http: HttpRule[] | undefined;
  allowRules: string[];
  denyRules: string[] | undefined;
}

function withIdentity(k: PolicyKey, identity: number): PolicyKey {
  return { identity, direction: k.direction, protocol: k.protocol, port: k.port, portPrefixLen: k.portPrefixLen };
}

/** One shared frozen array per single rule ref: most entries come from one rule. */
const singleRuleLists = new Map<string, readonly string[]>();

/** Sorted and unique (rule lists are tiny; most have one element, shared). */
function uniqueSorted(xs: string[]): readonly string[] {
  if (xs.length === 1 || (xs.length > 1 && xs.every((x) => x === xs[0]))) {
    const r = xs[0]!;
    let shared = singleRuleLists.get(r);
    if (shared === undefined) {
      if (singleRuleLists.size > 100_000) singleRuleLists.clear();
      singleRuleLists.set(r, (shared = Object.freeze([r])));
    }
    return shared;
  }
  if (xs.length === 0) return xs;
  return [...new Set(xs)].sort();
}

function anyCovers(keys: readonly PolicyKey[], k: PolicyKey): boolean {
  for (const c of keys) if (keyCovers(c, k)) return true;
  return false;
}

/**
 * Desired entries for one remote identity of one endpoint, from the filters that select it
 * (for identity 0: the wildcard filters). Deny beats allow: an allow covered by a deny of the
 * same identity is dropped (the other identity's deny is found by the datapath's second
 * lookup). An allow without HTTP rules that covers an L7 key (here or at identity 0) lets every
 * request through, so that key gets no proxy; and where identity 0 redirects a port that this
 * identity may use freely, an explicit no-proxy entry is added so the more specific lookup wins.
 * Hot path (runs per identity per endpoint): plain loops, no closures.
 */
export function resolveIdentity(
  identity: number,
  endpoint: string,
  filters: Iterable<FilterSpec>,
  wildcard: WildcardSummary,
  proxyPortFor: ProxyPortFn,
): Map<string, DesiredEntry> {
  const accs = new Map<string, Acc>();
  let anyDeny = false;
  let anyL7 = false;
  for (const f of filters) {
    for (const b of f.blocks) {
      const ks = `${identity}/${f.direction}/${b.protocol}/${b.port}/${b.portPrefixLen}`;
      let a = accs.get(ks);
      if (a === undefined) {
        const key: PolicyKey = { identity, direction: f.direction, protocol: b.protocol, port: b.port, portPrefixLen: b.portPrefixLen };
        a = { key, ks, deny: false, plain: false, l7: false, http: undefined, allowRules: [], denyRules: undefined };
        accs.set(ks, a);
      }
      if (f.deny) {
        a.deny = true;
        anyDeny = true;
        (a.denyRules ??= []).push(f.ruleRef);
      } else {
        a.allowRules.push(f.ruleRef);
        if (f.http !== undefined) {
          a.l7 = true;
          anyL7 = true;
          (a.http ??= []).push(...f.http);
        } else a.plain = true;
      }
    }
  }
  const out = new Map<string, DesiredEntry>();
  if (!anyDeny && !anyL7 && (identity === 0 || wildcard.l7.length === 0)) {
    // Common case: plain allows only.
    for (const a of accs.values()) out.set(a.ks, { key: a.key, entry: ALLOW, rules: uniqueSorted(a.allowRules) });
    return out;
  }
  const denies: PolicyKey[] = [];
  if (anyDeny) for (const a of accs.values()) if (a.deny) denies.push(a.key);
  const plainAllows: PolicyKey[] = [];
  for (const a of accs.values()) if (!a.deny && a.plain && !anyCovers(denies, a.key)) plainAllows.push(a.key);

  for (const a of accs.values()) {
    if (a.deny) {
      out.set(a.ks, { key: a.key, entry: DENY, rules: uniqueSorted(a.denyRules!) });
      continue;
    }
    if (anyCovers(denies, a.key)) continue;
    let redirect = !a.plain && a.l7 && !anyCovers(plainAllows, a.key);
    if (redirect && identity !== 0 && wildcard.plainAllow.length > 0 && anyCovers(wildcard.plainAllow, withIdentity(a.key, 0))) redirect = false;
    if (redirect) {
      const proxyPort = proxyPortFor(endpoint, a.key.direction, a.key.protocol, a.key.port);
      out.set(a.ks, { key: a.key, entry: { deny: false, proxyPort }, http: canonicalHttp(a.http!), rules: uniqueSorted(a.allowRules) });
    } else out.set(a.ks, { key: a.key, entry: ALLOW, rules: uniqueSorted(a.allowRules) });
  }
  if (identity !== 0) {
    for (const w of wildcard.l7) {
      const k = withIdentity(w, identity);
      const ks = policyKeyString(k);
      if (out.has(ks) || anyCovers(denies, k)) continue;
      const rules: string[] = [];
      for (const p of plainAllows) if (keyCovers(p, k)) rules.push(...accs.get(policyKeyString(p))!.allowRules);
      if (rules.length === 0) continue;
      out.set(ks, { key: k, entry: ALLOW, rules: uniqueSorted(rules) });
    }
  }
  return out;
}

const ALLOW: PolicyEntry = Object.freeze({ deny: false, proxyPort: 0 });
const DENY: PolicyEntry = Object.freeze({ deny: true, proxyPort: 0 });

/** HTTP rules deduplicated in a canonical order (rule order never changes a verdict). */
function canonicalHttp(rules: readonly HttpRule[]): HttpRule[] {
  const byText = new Map<string, HttpRule>();
  for (const r of rules) byText.set(JSON.stringify([r.method ?? null, r.path ?? null, r.host ?? null, [...r.headers].sort()]), r);
  return [...byText.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
}

/** Same datapath effect and same L7 rules (provenance is not compared). */
export function sameEntry(a: DesiredEntry | undefined, b: DesiredEntry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.entry.deny !== b.entry.deny || a.entry.proxyPort !== b.entry.proxyPort) return false;
  if (a.http === b.http) return true;
  return JSON.stringify(a.http ?? null) === JSON.stringify(b.http ?? null);
}

/** The default for a direction no rule enforces: allow everything (one wildcard entry). */
export function defaultAllowFilter(direction: Direction): FilterSpec {
  return { direction, deny: false, peer: undefined, blocks: [{ protocol: Protocol.any, port: 0, portPrefixLen: 0 }], ruleRef: 'default-allow', elementPath: '' };
}
