// The cluster as etcd holds it, read in one range get (one revision), and the identity
// invariants checked on it: a consistent read never shows a half-done txn as a violation.
import { isLocalIdentity, type LabelSet } from '../../identity/index.js';
import { decodeValue, type EndpointValue, type KeySchema } from '../../kvstore-schema/index.js';
import { policyRulesFromValue } from '../../agent/daemon/policy-values.js';
import { decodeIdentity, type KvClient } from '../../agent/kvstore/index.js';
import type { PolicyRule } from '../../agent/policy/index.js';

export interface ClusterSnapshot {
  readonly revision: string;
  /** `id/<N>` -> labels. */
  readonly identities: ReadonlyMap<number, LabelSet>;
  /** `labels/<set>` index: key -> id. */
  readonly index: readonly { readonly key: string; readonly id: number }[];
  readonly refs: readonly { readonly key: string; readonly node: string; readonly labelsKey: string; readonly id: number }[];
  readonly endpoints: readonly EndpointValue[];
  /** Policies in key order (the order a fresh agent lists them in). */
  readonly policies: readonly { readonly name: string; readonly rules: readonly PolicyRule[] }[];
}

/** Everything under `<root>state/` at one revision (the suite writes no hostile values). */
export async function readCluster(kv: KvClient, schema: KeySchema): Promise<ClusterSnapshot> {
  const res = await kv.listPrefix(`${schema.root}state/`);
  const identities = new Map<number, LabelSet>();
  const index: { key: string; id: number }[] = [];
  const refs: { key: string; node: string; labelsKey: string; id: number }[] = [];
  const endpoints: EndpointValue[] = [];
  const policies: { name: string; rules: readonly PolicyRule[] }[] = [];
  for (const e of res.kvs) {
    const key = e.key.toString();
    const k = schema.classify(key);
    if (k === undefined) continue;
    switch (k.kind) {
      case 'identity':
        identities.set(k.id, decodeIdentity(schema, key, e.value, e.create_revision).labels);
        break;
      case 'identity-index':
        index.push({ key, id: decodeValue('identity-index', e.value).id });
        break;
      case 'identity-ref':
        refs.push({ key, node: k.node, labelsKey: schema.labelsKey(k.labels), id: decodeValue('identity-ref', e.value).id });
        break;
      case 'endpoint':
        endpoints.push(decodeValue('endpoint', e.value));
        break;
      case 'policy':
        policies.push({ name: k.name, rules: policyRulesFromValue({ ...decodeValue('policy', e.value), name: k.name }) });
        break;
      case 'node':
      case 'leader':
        break; // not needed by the checks
    }
  }
  return { revision: res.revision, identities, index, refs, endpoints, policies };
}

export interface IdentityInvariants {
  /** Label-set index entries sharing an id with another label set. */
  readonly duplicates: number;
  /** Index -> missing identity, reference -> missing label set or identity, endpoint -> missing identity. */
  readonly dangling: number;
  readonly details: readonly string[];
}

/** "No identity is deleted while referenced; no reference points to a missing identity." */
export function identityInvariants(s: ClusterSnapshot): IdentityInvariants {
  const details: string[] = [];
  let duplicates = 0;
  let dangling = 0;
  const byId = new Map<number, string[]>();
  for (const i of s.index) byId.set(i.id, [...(byId.get(i.id) ?? []), i.key]);
  for (const [id, keys] of byId) {
    if (keys.length < 2) continue;
    duplicates++;
    details.push(`identity ${id} shared by ${keys.join(' | ')}`);
  }
  const indexById = new Map(s.index.map((i) => [i.key, i.id]));
  for (const i of s.index) {
    if (s.identities.has(i.id)) continue;
    dangling++;
    details.push(`index ${i.key} -> missing identity ${i.id}`);
  }
  for (const r of s.refs) {
    const id = indexById.get(r.labelsKey);
    if (id !== undefined && s.identities.has(r.id)) continue;
    dangling++;
    details.push(id === undefined ? `reference ${r.key} -> missing label set` : `reference ${r.key} -> missing identity ${r.id}`);
  }
  for (const e of s.endpoints) {
    if (e.identity < 256 || isLocalIdentity(e.identity) || s.identities.has(e.identity)) continue;
    dangling++;
    details.push(`endpoint ${e.node}/${e.ip} -> missing identity ${e.identity}`);
  }
  return { duplicates, dangling, details };
}

