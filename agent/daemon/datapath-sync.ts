import { policyChangesFromDelta, policyEntriesFrom, type DatapathPort, type EndpointAttachSpec, type IpcacheEntry } from '../../bpf/index.js';
import type { DesiredEntry, FlushResult, MapDelta } from '../calc/index.js';
import type { Logger } from './logger.js';

/** The ipcache part of one apply (deletes by prefix). */
export interface IpcacheApply {
  readonly upserts: readonly IpcacheEntry[];
  readonly deletes: readonly string[];
}

function errMsg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Writes the engine's flushes into the kernel in DESIGN.md's order: every programmed
 * endpoint's policy-map additions, then the ipcache (so no packet is classified as a new
 * identity before the maps know it), then the policy-map deletions. Endpoints not programmed
 * yet are skipped: they get their whole desired state when they are programmed.
 * A full map is logged and reported by the datapath (lockdown): it never stops the others.
 */
export class DatapathSync {
  /** Engine endpoint name -> datapath endpoint id, for endpoints whose maps we own. */
  private readonly programmed = new Map<string, number>();

  constructor(
    private readonly dp: DatapathPort,
    private readonly log: Logger,
  ) {}

  isProgrammed(name: string): boolean {
    return this.programmed.has(name);
  }

  programmedIds(): number[] {
    return [...this.programmed.values()];
  }

  apply(res: FlushResult, ipcache: IpcacheApply): void {
    for (const [name, delta] of res.endpoints) {
      if (delta.added.length > 0) this.write(name, { added: delta.added, deleted: [] });
    }
    if (ipcache.upserts.length + ipcache.deletes.length > 0) {
      try {
        this.dp.ipcache.applyChanges({ upserts: ipcache.upserts, deletes: ipcache.deletes });
      } catch (err) {
        this.log.error({ err: errMsg(err) }, 'ipcache update failed (pending entries are retried by the repair loop)');
      }
    }
    for (const [name, delta] of res.endpoints) {
      if (delta.deleted.length > 0) this.write(name, { added: [], deleted: delta.deleted });
    }
  }

  private write(name: string, delta: MapDelta): void {
    const id = this.programmed.get(name);
    if (id === undefined) return;
    const map = this.dp.policy.get(id);
    if (map === undefined) return;
    try {
      map.applyChanges(policyChangesFromDelta(delta));
    } catch (err) {
      this.log.error({ endpoint: name, endpointId: id, err: errMsg(err) }, 'policy map update failed; endpoint fails closed');
    }
  }

  /**
   * Writes the endpoint's whole policy map, THEN attaches the programs (an attached endpoint
   * with a missing map would drop everything; with a partial one it would be wrong).
   */
  program(name: string, spec: EndpointAttachSpec, entries: Iterable<DesiredEntry>): void {
    const map = this.dp.policy.open(spec.endpointId);
    try {
      map.setDesired(policyEntriesFrom(entries));
    } catch (err) {
      // Full map: the endpoint is locked down (drops all); attaching is still right.
      this.log.error({ endpoint: name, endpointId: spec.endpointId, err: errMsg(err) }, 'policy map does not fit; endpoint locked down');
    }
    this.dp.attachEndpoint(spec);
    this.programmed.set(name, spec.endpointId);
  }

  /** Detaches the programs, then drops the policy map. */
  unprogram(name: string, endpointId: number, where?: { ifname: string; netns?: string }): void {
    this.programmed.delete(name);
    try {
      this.dp.detachEndpoint(endpointId, where);
    } catch (err) {
      this.log.warn({ endpoint: name, endpointId, err: errMsg(err) }, 'detach failed (link gone?)');
    }
    this.dp.policy.remove(endpointId);
  }

  lockedDown(): number[] {
    return [...this.programmed.values()].filter((id) => this.dp.policy.get(id)?.lockedDown === true);
  }
}
