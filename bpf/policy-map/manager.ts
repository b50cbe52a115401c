import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ClosedError, PolicyMapFullError } from '../errors.js';
import { BpfMap, isMapFull } from '../map.js';
import type { DatapathLogger } from '../logger.js';
import { MapFlags, MapType } from '../napi/index.js';
import { MapReconciler } from '../sync/reconciler.js';
import type { ApplyResult, DriftReport } from '../sync/types.js';
import type { EndpointPolicyMap, PolicyMapChanges, PolicyMapManager } from './api.js';
import { policyCodec } from './codec.js';
import { POLICY_KEY_SIZE, POLICY_VALUE_SIZE } from './layout.js';
import type { PolicyEntry, PolicyKey } from './types.js';

/** Called when an endpoint must fail closed (true) or may be released (false). */
export type LockdownHook = (endpointId: number, locked: boolean) => void;

export interface PolicyMapManagerOptions {
  /** Directory in bpffs for per-endpoint maps (`<pinRoot>/policy`). */
  readonly pinDir: string;
  /** The hash-of-maps the programs look endpoint policy maps up in (ward_policy). */
  readonly outer: BpfMap;
  readonly maxEntries: number;
  readonly log: DatapathLogger;
  readonly lockdown: LockdownHook;
}

function pinName(endpointId: number): string {
  return `ep_${endpointId}`;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

class KernelEndpointPolicyMap implements EndpointPolicyMap {
  private locked = false;
  private readonly rec: MapReconciler<PolicyKey, PolicyEntry>;

  constructor(
    readonly endpointId: number,
    private readonly map: BpfMap,
    private readonly opts: PolicyMapManagerOptions,
    lockedAtOpen: boolean,
  ) {
    // The capacity check makes an oversized policy fail before any write (never partial).
    this.rec = new MapReconciler(map, policyCodec, `policy/${pinName(endpointId)}`, opts.log, map.info.maxEntries);
    this.locked = lockedAtOpen;
  }

  get capacity(): number {
    return this.map.info.maxEntries;
  }

  get mapId(): number {
    return this.map.info.id;
  }

  get mapFd(): number {
    return this.map.fd;
  }

  get lockedDown(): boolean {
    return this.locked;
  }

  setDesired(entries: Iterable<readonly [PolicyKey, PolicyEntry]>): ApplyResult {
    return this.guard(() => this.rec.setDesired(denyFirst(entries)));
  }

  applyChanges(changes: PolicyMapChanges): ApplyResult {
    return this.guard(() =>
      this.rec.applyChanges({ ...(changes.deletes ? { deletes: changes.deletes } : {}), upserts: denyFirst(changes.upserts ?? []) }),
    );
  }

  desired(): ReadonlyMap<string, PolicyEntry> {
    const out = new Map<string, PolicyEntry>();
    for (const [s, [, v]] of this.rec.desired()) out.set(s, v);
    return out;
  }

  dump(): Map<string, PolicyEntry> {
    const out = new Map<string, PolicyEntry>();
    for (const [s, [, v]] of this.rec.dump()) out.set(s, v);
    return out;
  }

  repair(): DriftReport {
    return this.guard(() => this.rec.repair());
  }

  close(): void {
    this.map.close();
  }

  /** Map full: lock the endpoint down first, then report; a later fitting apply unlocks it. */
  private guard<T>(f: () => T): T {
    let result: T;
    try {
      result = f();
    } catch (e) {
      if (isMapFull(e)) return this.fail(e);
      throw e;
    }
    if (this.locked && this.rec.converged) {
      this.opts.lockdown(this.endpointId, false);
      this.locked = false;
      this.opts.log.info({ endpointId: this.endpointId }, 'datapath: policy map fits again; endpoint lockdown lifted');
    }
    return result;
  }

  private fail(cause?: unknown): never {
    if (!this.locked) {
      this.opts.lockdown(this.endpointId, true);
      this.locked = true;
    }
    const err = new PolicyMapFullError(this.endpointId, this.rec.desiredSize, this.capacity, { cause });
    this.opts.log.error({ endpointId: this.endpointId, desired: this.rec.desiredSize, capacity: this.capacity }, err.message);
    throw err;
  }
}

/** Deny entries are written before allows, so a partial write never lacks a deny. */
function denyFirst(entries: Iterable<readonly [PolicyKey, PolicyEntry]>): (readonly [PolicyKey, PolicyEntry])[] {
  const arr = [...entries];
  return [...arr.filter(([, e]) => e.deny), ...arr.filter(([, e]) => !e.deny)];
}

/**
 * Per-endpoint policy maps (LPM tries) pinned at `<pinDir>/ep_<id>` and registered in the
 * programs' hash-of-maps under the endpoint id.
 */
export class KernelPolicyMapManager implements PolicyMapManager {
  private readonly maps = new Map<number, KernelEndpointPolicyMap>();
  private closed = false;

  constructor(
    private readonly opts: PolicyMapManagerOptions,
    private readonly isLockedDown: (endpointId: number) => boolean = () => false,
  ) {
    mkdirSync(opts.pinDir, { recursive: true });
  }

  open(endpointId: number): EndpointPolicyMap {
    this.checkOpen();
    if (!Number.isInteger(endpointId) || endpointId < 1 || endpointId > 0xffff_ffff) throw new RangeError(`endpoint id ${endpointId}`);
    const have = this.maps.get(endpointId);
    if (have) return have;
    const path = join(this.opts.pinDir, pinName(endpointId));
    let map: BpfMap;
    if (existsSync(path)) {
      map = BpfMap.openPinned(path);
      const i = map.info;
      if (i.type !== MapType.lpmTrie || i.keySize !== POLICY_KEY_SIZE || i.valueSize !== POLICY_VALUE_SIZE) {
        map.close();
        throw new Error(`pinned map ${path} has an unexpected layout (type ${i.type}, key ${i.keySize}, value ${i.valueSize})`);
      }
    } else {
      map = BpfMap.create({
        type: MapType.lpmTrie,
        name: `ward_pol_${endpointId}`.slice(0, 15),
        keySize: POLICY_KEY_SIZE,
        valueSize: POLICY_VALUE_SIZE,
        maxEntries: this.opts.maxEntries,
        flags: MapFlags.noPrealloc,
      });
      try {
        map.pin(path);
      } catch (e) {
        map.close();
        throw e;
      }
    }
    try {
      this.opts.outer.update(u32(endpointId), u32(map.fd));
    } catch (e) {
      map.close();
      throw e;
    }
    const m = new KernelEndpointPolicyMap(endpointId, map, this.opts, this.isLockedDown(endpointId));
    this.maps.set(endpointId, m);
    return m;
  }

  get(endpointId: number): EndpointPolicyMap | undefined {
    return this.maps.get(endpointId);
  }

  /** Puts the endpoint's map back into the hash-of-maps if it is missing; true if it was. */
  ensureRegistered(endpointId: number): boolean {
    const m = this.maps.get(endpointId);
    if (!m) return false;
    const v = this.opts.outer.lookup(u32(endpointId));
    if (v && v.readUInt32LE(0) === m.mapId) return false;
    this.opts.outer.update(u32(endpointId), u32(m.mapFd));
    return true;
  }

  list(): number[] {
    const ids = new Set(this.maps.keys());
    for (const f of readdirSync(this.opts.pinDir)) {
      const m = /^ep_(\d+)$/.exec(f);
      if (m) ids.add(Number(m[1]));
    }
    return [...ids].sort((a, b) => a - b);
  }

  remove(endpointId: number): void {
    this.checkOpen();
    this.opts.outer.delete(u32(endpointId));
    this.maps.get(endpointId)?.close();
    this.maps.delete(endpointId);
    rmSync(join(this.opts.pinDir, pinName(endpointId)), { force: true });
  }

  repairAll(): DriftReport[] {
    this.checkOpen();
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
    if (this.closed) return;
    this.closed = true;
    for (const m of this.maps.values()) m.close();
    this.maps.clear();
  }

  private checkOpen(): void {
    if (this.closed) throw new ClosedError('policy map manager is closed');
  }
}
