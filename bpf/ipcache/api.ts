import type { ApplyResult, DriftReport } from '../sync/types.js';
import type { IpcacheEntry } from './layout.js';

export interface IpcacheValue {
  readonly identity: number;
  readonly nodeAddress?: string;
}

export interface IpcacheChanges {
  readonly upserts?: Iterable<IpcacheEntry>;
  /** CIDRs to remove. */
  readonly deletes?: Iterable<string>;
}

/**
 * The global ipcache: IPv4 prefix -> identity (+ owning node). Addresses no prefix covers are
 * `world` (2) to the datapath. IPv6 prefixes are accepted and ignored (IPv6 traffic of
 * endpoints is dropped anyway: it fails closed). A full map throws IpcacheFullError; the
 * entries that did not fit stay pending and are retried on the next apply or repair.
 */
export interface IpcacheManager {
  setDesired(entries: Iterable<IpcacheEntry>): ApplyResult;
  applyChanges(changes: IpcacheChanges): ApplyResult;
  /** Longest-prefix match, as the datapath sees it (kernel for the real map). */
  lookup(address: string): IpcacheValue | undefined;
  /** Kernel content by canonical CIDR. */
  dump(): Map<string, IpcacheValue>;
  repair(): DriftReport;
  close(): void;
}
