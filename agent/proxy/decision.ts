import { Direction } from '../../bpf/policy-map/types.js';
import { lpmLookup, policyKeyLength, policyKeyMatches, type DesiredEntry } from '../calc/index.js';
import { describeHttpRule, httpRuleMatches, type HttpRequest, type HttpRule } from '../policy/index.js';

/**
 * What the proxy applies to the requests of one (endpoint, direction, remote identity, port),
 * computed from the endpoint's desired policy entries exactly as the datapath and
 * `ward policy trace` read them: deny in either lookup wins; else the longer of the
 * remote-identity and identity-0 matches decides; a plain (no proxy) allow lets every request
 * through (Cilium's L4-only allow); else the union of the L7 rules of both identities applies.
 */
export type L7Decision =
  | { readonly kind: 'deny'; readonly reason: string }
  | { readonly kind: 'allow-all'; readonly reason: string }
  | { readonly kind: 'rules'; readonly rules: readonly HttpRule[] }
  /** Both must allow: an egress proxy that also applies a local destination's ingress rules. */
  | { readonly kind: 'both'; readonly first: L7Decision; readonly second: L7Decision; readonly secondLabel: string };

const pairs = new WeakMap<L7Decision, WeakMap<L7Decision, L7Decision>>();

/** `first` and then `second` (named `secondLabel` in reasons); the same object for the same pair. */
export function bothDecisions(first: L7Decision, second: L7Decision, secondLabel: string): L7Decision {
  let m = pairs.get(first);
  if (m === undefined) pairs.set(first, (m = new WeakMap()));
  let d = m.get(second);
  if (d === undefined || (d.kind === 'both' && d.secondLabel !== secondLabel)) m.set(second, (d = { kind: 'both', first, second, secondLabel }));
  return d;
}

export function l7Decision(entries: readonly DesiredEntry[], direction: Direction, remoteIdentity: number, protocol: number, port: number): L7Decision {
  const specific = lpmLookup(entries, remoteIdentity, direction, protocol, port);
  const wildcard = lpmLookup(entries, 0, direction, protocol, port);
  if (specific?.entry.deny === true || wildcard?.entry.deny === true) return { kind: 'deny', reason: `deny rule for identity ${remoteIdentity}` };
  let pick = specific;
  if (pick === undefined || (wildcard !== undefined && policyKeyLength(wildcard.key) > policyKeyLength(pick.key))) pick = wildcard;
  if (pick === undefined) return { kind: 'deny', reason: `no entry allows identity ${remoteIdentity}` };
  if (pick.entry.proxyPort === 0) return { kind: 'allow-all', reason: 'L4 allow without HTTP rules' };
  const rules: HttpRule[] = [];
  for (const e of entries) {
    if ((e.key.identity === remoteIdentity || e.key.identity === 0) && e.entry.proxyPort !== 0 && e.http !== undefined && policyKeyMatches(e.key, direction, protocol, port)) rules.push(...e.http);
  }
  return { kind: 'rules', rules };
}

export interface RequestVerdict {
  readonly allowed: boolean;
  /** The matching rule, or why the request was denied/allowed without rules. */
  readonly reason: string;
}

// Verdicts are the same object for every request a rule (or decision) judges: nothing is built per request.
const ruleVerdicts = new WeakMap<HttpRule, RequestVerdict>();
const plainVerdicts = new WeakMap<L7Decision, RequestVerdict>();
const headerRules = new WeakMap<L7Decision, boolean>();
const NO_MATCH: RequestVerdict = { allowed: false, reason: 'no HTTP rule matches' };

/** Whether judging under `d` reads request headers (else the proxy skips collecting them). */
export function readsHeaders(d: L7Decision): boolean {
  if (d.kind === 'both') return readsHeaders(d.first) || readsHeaders(d.second);
  if (d.kind !== 'rules') return false;
  let r = headerRules.get(d);
  if (r === undefined) {
    r = d.rules.some((rule) => rule.headers.length > 0);
    headerRules.set(d, r);
  }
  return r;
}

// The second decision's denials, named, per combined decision.
const secondDenials = new WeakMap<L7Decision, WeakMap<RequestVerdict, RequestVerdict>>();

export function judgeRequest(d: L7Decision, req: HttpRequest): RequestVerdict {
  if (d.kind === 'both') {
    const v = judgeRequest(d.first, req);
    if (!v.allowed) return v;
    const w = judgeRequest(d.second, req);
    if (w.allowed) return v;
    let names = secondDenials.get(d);
    if (names === undefined) secondDenials.set(d, (names = new WeakMap()));
    let named = names.get(w);
    if (named === undefined) names.set(w, (named = { allowed: false, reason: `${d.secondLabel}: ${w.reason}` }));
    return named;
  }
  if (d.kind !== 'rules') {
    let v = plainVerdicts.get(d);
    if (v === undefined) {
      v = { allowed: d.kind === 'allow-all', reason: d.reason };
      plainVerdicts.set(d, v);
    }
    return v;
  }
  for (const rule of d.rules) {
    if (!httpRuleMatches(rule, req)) continue;
    let v = ruleVerdicts.get(rule);
    if (v === undefined) {
      v = { allowed: true, reason: `HTTP rule ${describeHttpRule(rule)}` };
      ruleVerdicts.set(rule, v);
    }
    return v;
  }
  return NO_MATCH;
}
