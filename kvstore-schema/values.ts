import type { SchemaLabel } from './labels.js';

/** Every value carries `v`, the schema version of its shape. Readers skip unknown versions. */
export const VALUE_VERSION = 1;

/** `id/<N>`: the identity's labels, written once by the allocating node. */
export interface IdentityValue {
  readonly v: 1;
  readonly id: number;
  readonly labels: readonly SchemaLabel[];
  /** Node that allocated it (informational). */
  readonly node: string;
  /** Allocation token: equals the index value's token; lets a writer recognise its own txn. */
  readonly token: string;
}

/** `labels/<labels>`: index from a label set to its identity. */
export interface IdentityIndexValue {
  readonly v: 1;
  readonly id: number;
  readonly token: string;
}

/** `refs/<node>/<labels>`: a node's reference, bound to the node's lease. */
export interface IdentityRefValue {
  readonly v: 1;
  readonly id: number;
  /** Per-write token: deletes compare it so a late delete never removes a newer reference. */
  readonly token: string;
}

/** `nodes/<node>`: a node announces itself (lease-bound). */
export interface NodeValue {
  readonly v: 1;
  readonly name: string;
  /** Addresses other nodes reach this node at. */
  readonly addresses: readonly string[];
  /** CIDRs the node assigns endpoint IPs from. */
  readonly endpointCidrs: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  /** Agent start time, ms since the epoch. */
  readonly startedAtMs: number;
}

/** `endpoints/<node>/<ip>`: an endpoint IP and its identity, owned by the node (lease-bound). */
export interface EndpointValue {
  readonly v: 1;
  readonly ip: string;
  readonly identity: number;
  readonly node: string;
  /** Endpoint name on its node (container id, netns name). */
  readonly name: string;
}

/** `policies/<name>`: one named policy document; its etcd mod revision is its revision. */
export interface PolicyValue {
  readonly v: 1;
  readonly name: string;
  /** Cilium rule objects as plain data; validated by the policy layer, not here. */
  readonly rules: readonly unknown[];
  readonly description: string;
  readonly updatedAtMs: number;
}

/** `coordination/v1/leader/<role>`: the current leader of a role (lease-bound). */
export interface LeaderValue {
  readonly v: 1;
  readonly holder: string;
  readonly token: string;
  readonly sinceMs: number;
}

export interface ValueKinds {
  identity: IdentityValue;
  'identity-index': IdentityIndexValue;
  'identity-ref': IdentityRefValue;
  node: NodeValue;
  endpoint: EndpointValue;
  policy: PolicyValue;
  leader: LeaderValue;
}
export type ValueKind = keyof ValueKinds;
