import type { PolicyMapChanges } from './api.js';
import type { PolicyEntry, PolicyKey } from './types.js';

/** The policy engine's per-endpoint delta shape (agent/calc MapDelta), structurally. */
export interface PolicyDeltaLike {
  readonly added: readonly { readonly key: PolicyKey; readonly entry: PolicyEntry }[];
  readonly deleted: readonly PolicyKey[];
}

/** Engine delta -> map changes (`added` are upserts, `deleted` keys; the engine keeps them disjoint). */
export function policyChangesFromDelta(d: PolicyDeltaLike): PolicyMapChanges {
  return { deletes: d.deleted, upserts: d.added.map((a) => [a.key, a.entry] as const) };
}

/** Engine desired entries ({key, entry}) -> setDesired input. */
export function policyEntriesFrom(entries: Iterable<{ readonly key: PolicyKey; readonly entry: PolicyEntry }>): (readonly [PolicyKey, PolicyEntry])[] {
  return [...entries].map((e) => [e.key, e.entry] as const);
}
