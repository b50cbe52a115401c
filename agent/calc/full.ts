import { makeIdentityInfo, RESERVED_LABEL_NAMES, reservedLabels, type IdentityInfo, type LabelSet, type MatchMemo } from '../../identity/index.js';
import { Direction, policyKeyString } from '../../bpf/policy-map/types.js';
import { cidrLabels, type IpcacheEntry } from './cidr-identities.js';
import type { CompiledRule, FilterSpec } from './filters.js';
import { EMPTY_WILDCARD, defaultAllowFilter, defaultProxyPort, resolveIdentity, summarizeWildcard, type DesiredEntry, type ProxyPortFn } from './map-state.js';

export interface FullInput {
  /** Cluster identities (reserved ones are added here). */
  readonly identities: ReadonlyMap<number, LabelSet>;
  /** CIDR identities in use (the engine's allocation, so numbers agree). */
  readonly cidrs: readonly IpcacheEntry[];
  readonly endpoints: ReadonlyMap<string, LabelSet>;
  /** All rules, in repository order. */
  readonly rules: readonly CompiledRule[];
  readonly proxyPortFor?: ProxyPortFn;
}

const direct: MatchMemo = { labelMatch: (sel, labels) => sel.matches(labels) };

/**
 * Recomputes every endpoint's map state from scratch, without the selector cache or any
 * incremental bookkeeping: the reference the property tests hold the engine to.
 */
export function computeFull(input: FullInput): Map<string, Map<string, DesiredEntry>> {
  const proxyPortFor = input.proxyPortFor ?? defaultProxyPort;
  const infos: IdentityInfo[] = [];
  for (const id of Object.keys(RESERVED_LABEL_NAMES).map(Number)) infos.push(makeIdentityInfo(id, reservedLabels(id)));
  for (const [id, labels] of input.identities) infos.push(makeIdentityInfo(id, labels));
  for (const c of input.cidrs) infos.push(makeIdentityInfo(c.identity, cidrLabels(c.prefix)));

  const out = new Map<string, Map<string, DesiredEntry>>();
  for (const [epId, labels] of input.endpoints) {
    const rules = input.rules.filter((r) => r.rule.endpointSelector.matches(labels));
    const wild: FilterSpec[] = [];
    if (!rules.some((r) => r.rule.defaultDeny.ingress)) wild.push(defaultAllowFilter(Direction.ingress));
    if (!rules.some((r) => r.rule.defaultDeny.egress)) wild.push(defaultAllowFilter(Direction.egress));
    const perId = new Map<number, FilterSpec[]>();
    for (const r of rules) {
      for (const f of r.filters) {
        if (f.peer === undefined) {
          wild.push(f);
          continue;
        }
        for (const info of infos) {
          if (!f.peer.matches(info, direct)) continue;
          let list = perId.get(info.id);
          if (list === undefined) perId.set(info.id, (list = []));
          list.push(f);
        }
      }
    }
    const state = new Map<string, DesiredEntry>();
    const wildEntries = resolveIdentity(0, epId, wild, EMPTY_WILDCARD, proxyPortFor);
    const summary = summarizeWildcard(wildEntries);
    for (const [ks, e] of wildEntries) state.set(ks, e);
    for (const [id, fs] of perId) for (const [ks, e] of resolveIdentity(id, epId, fs, summary, proxyPortFor)) state.set(ks, e);
    out.set(epId, state);
  }
  return out;
}

/** Applies a flushed delta to a mirror of the kernel map (for tests and the fake datapath). */
export function applyDelta(mirror: Map<string, DesiredEntry>, delta: { added: readonly DesiredEntry[]; deleted: readonly DesiredEntry['key'][] }): void {
  for (const k of delta.deleted) mirror.delete(policyKeyString(k));
  for (const e of delta.added) mirror.set(policyKeyString(e.key), e);
}
