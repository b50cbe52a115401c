import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WardError } from '../../identity/index.js';
import type { DevProc } from './procs.js';
import type { EtcdMemberLayout } from './etcd-cluster.js';

/** The state file of a dev cluster is missing, unreadable or from another version. */
export class DevStateError extends WardError {}

/** Where dev clusters keep their state (PIDs, logs, sockets) and their etcd data (tmpfs). */
export interface DevBases {
  readonly run: string;
  readonly data: string;
}

export function devBases(env: NodeJS.ProcessEnv = process.env): DevBases {
  return { run: env['WARD_DEV_RUN_DIR'] ?? '/run/ward-dev', data: env['WARD_DEV_DATA_DIR'] ?? '/dev/shm/ward-dev' };
}

export interface DevEtcdMemberState extends EtcdMemberLayout {
  proc?: DevProc;
}

export interface DevHostState {
  readonly name: string;
  readonly netns: string;
  readonly nodeIp: string;
  readonly endpointCidr: string;
  readonly bpfRoot: string;
  readonly apiSocket: string;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  agent?: DevProc;
}

export interface DevWorkloadState {
  readonly name: string;
  readonly host: string;
  readonly netns: string;
  readonly labels: readonly string[];
  readonly ports: readonly number[];
  readonly command?: string;
  readonly logFile: string;
  ip?: string;
  identity?: number;
  proc?: DevProc;
}

/**
 * Everything one `ward dev up` made, written before each thing is made, so `down` (from any
 * process, after a crash too) removes exactly that.
 */
export interface DevState {
  readonly version: 1;
  readonly name: string;
  /** State dir: this file, logs, agent configs, sockets, agent state. */
  readonly dir: string;
  /** etcd data (tmpfs). */
  readonly dataDir: string;
  readonly createdAtMs: number;
  phase: 'starting' | 'up';
  readonly etcd: {
    readonly token: string;
    readonly initialCluster: string;
    readonly quotaBackendBytes: number;
    readonly members: DevEtcdMemberState[];
    /** `ward dev up --tls`: certificates (dev-tls.ts names) in this dir; clients need them. */
    readonly tlsPki?: string;
  };
  /** Every netns created, in creation order (deleted in reverse). */
  readonly netns: string[];
  /** Links created (`netns/ifname`), for the record: they go with their netns. */
  readonly links: string[];
  readonly pinRoots: string[];
  readonly hosts: DevHostState[];
  readonly workloads: DevWorkloadState[];
  policy?: { readonly file: string; readonly name: string };
}

export const stateFile = (dir: string): string => join(dir, 'state.json');

/** Writes the state atomically (temp file + rename): a crash never leaves half a file. */
export function saveState(s: DevState): void {
  mkdirSync(s.dir, { recursive: true });
  const tmp = `${stateFile(s.dir)}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(tmp, stateFile(s.dir));
}

/** The recorded state of cluster `name`, or undefined when none is recorded. */
export function loadState(name: string, bases: DevBases = devBases()): DevState | undefined {
  const file = stateFile(join(bases.run, name));
  if (!existsSync(file)) return undefined;
  let s: unknown;
  try {
    s = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new DevStateError(`${file}: unreadable state file (${cause instanceof Error ? cause.message : String(cause)}); remove what it lists by hand, then the file`, { cause });
  }
  if (typeof s !== 'object' || s === null || (s as { version?: unknown }).version !== 1) throw new DevStateError(`${file}: not a ward dev state file of version 1`);
  return s as DevState;
}

/** Names of the clusters with a state file. */
export function listClusters(bases: DevBases = devBases()): string[] {
  try {
    return readdirSync(bases.run).filter((n) => existsSync(stateFile(join(bases.run, n)))).sort();
  } catch {
    return [];
  }
}
