import type { ApplyResult, DriftReport, MapChanges } from '../sync/types.js';
import type { PolicyEntry, PolicyKey } from './types.js';

export type PolicyMapChanges = MapChanges<PolicyKey, PolicyEntry>;

/**
 * One endpoint's policy map. Writes are synchronous and only touch differences. A change
 * whose result does not fit throws PolicyMapFullError after putting the endpoint in lockdown
 * (the datapath drops all of its traffic); the next apply that fits lifts the lockdown.
 */
export interface EndpointPolicyMap {
  readonly endpointId: number;
  readonly capacity: number;
  /** True while the desired state does not fit (the endpoint fails closed). */
  readonly lockedDown: boolean;
  /** Replaces the desired state. */
  setDesired(entries: Iterable<readonly [PolicyKey, PolicyEntry]>): ApplyResult;
  /** Incremental change (deletes first). */
  applyChanges(changes: PolicyMapChanges): ApplyResult;
  /** Desired entries by policyKeyString. */
  desired(): ReadonlyMap<string, PolicyEntry>;
  /** What the map holds now, by policyKeyString. */
  dump(): Map<string, PolicyEntry>;
  /** Dump, diff against desired, log drift, repair. */
  repair(): DriftReport;
}

export interface PolicyMapManager {
  /** Creates the endpoint's map, or reopens it from its pin after a restart (keeping content). */
  open(endpointId: number): EndpointPolicyMap;
  get(endpointId: number): EndpointPolicyMap | undefined;
  /** Endpoint ids with a map (including maps found pinned from a previous run). */
  list(): number[];
  /** Unregisters and unpins the endpoint's map. Idempotent. */
  remove(endpointId: number): void;
  repairAll(): DriftReport[];
  close(): void;
}
