import { LabelSet, SOURCE_RESERVED } from './labels.js';

declare const numericIdentityBrand: unique symbol;
/** A security identity as the datapath sees it (uint32). */
export type NumericIdentity = number & { readonly [numericIdentityBrand]: true };

export function asNumericIdentity(n: number): NumericIdentity {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw new RangeError(`identity ${n} is not a uint32`);
  return n as NumericIdentity;
}

/** Reserved identities, with Cilium's numbers. 0 also means "any" in policy-map keys. */
export const ReservedIdentity = {
  unknown: 0,
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  remoteNode: 6,
} as const;
export type ReservedIdentityName = keyof typeof ReservedIdentity;

/** Names used in labels (`reserved:remote-node`) and policy entities. */
export const RESERVED_LABEL_NAMES: Readonly<Record<number, string>> = {
  1: 'host',
  2: 'world',
  3: 'unmanaged',
  4: 'health',
  5: 'init',
  6: 'remote-node',
};

export function isReserved(id: number): boolean {
  return id > 0 && id < 256;
}

/** Label set of a reserved identity, e.g. `reserved:world`. */
export function reservedLabels(id: number): LabelSet {
  const name = RESERVED_LABEL_NAMES[id];
  if (name === undefined) throw new RangeError(`${id} is not a reserved identity`);
  return LabelSet.of([{ source: SOURCE_RESERVED, key: name, value: '' }]);
}

/** Cluster-scoped identities are allocated through etcd in this range (inclusive). */
export interface IdentityRange {
  readonly min: number;
  readonly max: number;
}
export const DEFAULT_CLUSTER_RANGE: IdentityRange = { min: 256, max: 65535 };

/** Node-local identities (CIDR): bit 24 set, never written to etcd. */
export const LOCAL_IDENTITY_FLAG = 1 << 24;

export function localIdentity(n: number): NumericIdentity {
  if (!Number.isInteger(n) || n < 1 || n >= LOCAL_IDENTITY_FLAG) throw new RangeError(`local identity index ${n} out of range`);
  return (LOCAL_IDENTITY_FLAG | n) as NumericIdentity;
}

export function isLocalIdentity(id: number): boolean {
  return (id & LOCAL_IDENTITY_FLAG) !== 0 && id < LOCAL_IDENTITY_FLAG * 2;
}

export function isClusterIdentity(id: number, range: IdentityRange = DEFAULT_CLUSTER_RANGE): boolean {
  return id >= range.min && id <= range.max;
}
