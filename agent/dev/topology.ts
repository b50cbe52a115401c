import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { WardError } from '../../identity/index.js';

/** A precondition of `ward dev` is not met (not root, a missing tool, bpffs). */
export class DevPreflightError extends WardError {}

/** A netns/link command failed. */
export class DevTopologyError extends WardError {}

function run(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new DevTopologyError(`${cmd} ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`, { cause: e });
  }
}

/** ward dev changes namespaces, BPF pins and other root-owned processes. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new DevPreflightError('ward dev must run as root (it creates network namespaces, loads BPF programs and starts agents): sudo npx ward dev ...');
}

const TOOLS: readonly { bin: string; paths: readonly string[]; pkg: string }[] = [
  { bin: 'etcd', paths: ['/usr/bin/etcd'], pkg: 'etcd-server' },
  { bin: 'ip', paths: ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'], pkg: 'iproute2' },
  { bin: 'nsenter', paths: ['/usr/bin/nsenter', '/bin/nsenter'], pkg: 'util-linux' },
];

/**
 * Root, etcd, ip, nsenter, bpffs: every failure names the fix. bpffs is mounted when missing
 * (`notes` gets a line saying so).
 */
export function preflight(notes: (line: string) => void): void {
  requireRoot();
  const missing = TOOLS.filter((t) => !t.paths.some((p) => existsSync(p) && canExec(p)));
  if (missing.length > 0) {
    throw new DevPreflightError(`missing ${missing.map((t) => t.bin).join(', ')}: apt-get install -y ${missing.map((t) => t.pkg).join(' ')} (or run scripts/setup.sh)`);
  }
  if (spawnSync('mountpoint', ['-q', '/sys/fs/bpf']).status !== 0) {
    const r = spawnSync('mount', ['-t', 'bpf', 'bpffs', '/sys/fs/bpf'], { encoding: 'utf8' });
    if (r.status !== 0) throw new DevPreflightError(`bpffs is not mounted at /sys/fs/bpf and mounting it failed (${(r.stderr || String(r.error)).trim()}): mount -t bpf bpffs /sys/fs/bpf`);
    notes('bpffs was not mounted: mounted it at /sys/fs/bpf');
  }
}

function canExec(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export const netnsPath = (name: string): string => `/run/netns/${name}`;

export function netnsExists(name: string): boolean {
  return existsSync(netnsPath(name));
}

/** Creates a netns with its loopback up. */
export function addNetns(name: string): void {
  run('ip', ['netns', 'add', name]);
  run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

/** Deletes a netns (its links go with it); no error when it does not exist. */
export function deleteNetns(name: string): void {
  if (netnsExists(name)) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
}

/** The fabric: a bridge `br0` in its own netns, so nothing touches the root namespace. */
export function addBridge(fabricNs: string): void {
  run('ip', ['-n', fabricNs, 'link', 'add', 'br0', 'type', 'bridge']);
  run('ip', ['-n', fabricNs, 'link', 'set', 'br0', 'up']);
}

/**
 * Joins a host netns to the fabric bridge: veth `eth0` (host side, node IP) <-> `hN` (bridge
 * port). Both ends are created directly in their namespaces. Returns the links made.
 */
export function joinFabric(fabricNs: string, hostNs: string, index: number, nodeIp: string, prefixLen: number): string[] {
  const port = `h${index}`;
  run('ip', ['link', 'add', 'name', port, 'netns', fabricNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', hostNs]);
  run('ip', ['-n', fabricNs, 'link', 'set', port, 'master', 'br0', 'up']);
  run('ip', ['-n', hostNs, 'addr', 'add', `${nodeIp}/${prefixLen}`, 'dev', 'eth0']);
  run('ip', ['-n', hostNs, 'link', 'set', 'eth0', 'up']);
  return [`${fabricNs}/${port}`, `${hostNs}/eth0`];
}
