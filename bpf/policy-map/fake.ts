import { PolicyMapFullError } from '../errors.js';
import type { ApplyResult, DriftReport } from '../sync/types.js';
import type { EndpointPolicyMap, PolicyMapChanges, PolicyMapManager } from './api.js';
import { evaluatePolicy } from './verdict.js';
import type { PacketPolicyQuery, PolicyVerdict } from './verdict.js';
import { policyKeyString, validatePolicyKey } from './types.js';
import type { PolicyEntry, PolicyKey } from './types.js';

const same = (a: PolicyEntry, b: PolicyEntry): boolean => a.deny === b.deny && a.proxyPort === b.proxyPort;

/** In-memory stand-in for one endpoint's policy map, with the real map's semantics. */
export class FakeEndpointPolicyMap implements EndpointPolicyMap {
  private want = new Map<string, readonly [PolicyKey, PolicyEntry]>();
  /** What the "kernel" holds; tests may edit it to simulate drift. */
  readonly kernel = new Map<string, readonly [PolicyKey, PolicyEntry]>();
  private locked = false;
  /** Number of apply calls that wrote something (to assert "only deltas"). */
  writes = 0;

  constructor(
    readonly endpointId: number,
    readonly capacity: number,
  ) {}

  get lockedDown(): boolean {
    return this.locked;
  }

  setDesired(entries: Iterable<readonly [PolicyKey, PolicyEntry]>): ApplyResult {
    const next = new Map<string, readonly [PolicyKey, PolicyEntry]>();
    for (const e of entries) next.set(policyKeyString(validatePolicyKey(e[0])), e);
    this.want = next;
    return this.flush();
  }

  applyChanges(changes: PolicyMapChanges): ApplyResult {
    for (const k of changes.deletes ?? []) this.want.delete(policyKeyString(k));
    for (const e of changes.upserts ?? []) this.want.set(policyKeyString(validatePolicyKey(e[0])), e);
    return this.flush();
  }

  desired(): ReadonlyMap<string, PolicyEntry> {
    return new Map([...this.want].map(([s, [, v]]) => [s, v]));
  }

  dump(): Map<string, PolicyEntry> {
    return new Map([...this.kernel].map(([s, [, v]]) => [s, v]));
  }

  repair(): DriftReport {
    let missing = 0;
    let extra = 0;
    let changed = 0;
    for (const [s, [, v]] of this.want) {
      const k = this.kernel.get(s);
      if (!k) missing++;
      else if (!same(k[1], v)) changed++;
    }
    for (const s of this.kernel.keys()) if (!this.want.has(s)) extra++;
    this.flush();
    return { map: `policy/ep_${this.endpointId}`, missing, extra, changed };
  }

  /** The verdict the datapath would give with the current kernel content. */
  verdict(q: PacketPolicyQuery): PolicyVerdict {
    if (this.locked) return { allowed: false, reason: 'deny' };
    return evaluatePolicy(this.kernel, q);
  }

  private flush(): ApplyResult {
    if (this.want.size > this.capacity) {
      this.locked = true;
      throw new PolicyMapFullError(this.endpointId, this.want.size, this.capacity);
    }
    let upserted = 0;
    let deleted = 0;
    for (const s of [...this.kernel.keys()]) {
      if (!this.want.has(s)) {
        this.kernel.delete(s);
        deleted++;
      }
    }
    for (const [s, e] of this.want) {
      const k = this.kernel.get(s);
      if (!k || !same(k[1], e[1])) {
        this.kernel.set(s, e);
        upserted++;
      }
    }
    if (upserted + deleted > 0) this.writes++;
    this.locked = false;
    return { upserted, deleted };
  }
}

/** In-memory PolicyMapManager for callers' unit tests (no root, no kernel). */
export class FakePolicyMapManager implements PolicyMapManager {
  readonly maps = new Map<number, FakeEndpointPolicyMap>();
  private closed = false;

  constructor(readonly capacity = 16384) {}

  open(endpointId: number): FakeEndpointPolicyMap {
    if (this.closed) throw new Error('fake policy map manager is closed');
    let m = this.maps.get(endpointId);
    if (!m) {
      m = new FakeEndpointPolicyMap(endpointId, this.capacity);
      this.maps.set(endpointId, m);
    }
    return m;
  }

  get(endpointId: number): FakeEndpointPolicyMap | undefined {
    return this.maps.get(endpointId);
  }

  list(): number[] {
    return [...this.maps.keys()].sort((a, b) => a - b);
  }

  remove(endpointId: number): void {
    this.maps.delete(endpointId);
  }

  repairAll(): DriftReport[] {
    const out: DriftReport[] = [];
    for (const m of this.maps.values()) {
      try {
        out.push(m.repair());
      } catch (e) {
        if (!(e instanceof PolicyMapFullError)) throw e;
      }
    }
    return out;
  }

  close(): void {
    this.closed = true;
  }
}
