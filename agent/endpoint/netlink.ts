import { execFile } from 'node:child_process';
import { NetlinkError } from './errors.js';

/** What one endpoint's wiring needs. */
export interface VethSpec {
  /** Host-side name (in the agent's namespace). */
  readonly ifname: string;
  /** Path of the workload's network namespace. */
  readonly netns: string;
  /** Interface name inside the workload namespace. */
  readonly peerName: string;
  readonly ip: string;
  /** The host's gateway address for endpoints (a /32 on every host-side veth). */
  readonly gateway: string;
}

function run(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, [...args], { encoding: 'utf8', timeout: 10_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new NetlinkError(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

/** A command in the host namespace: the agent's own, or `hostNetns` (dev clusters, tests). */
function inHost(hostNetns: string | undefined, cmd: string, args: readonly string[]): Promise<string> {
  return hostNetns === undefined ? run(cmd, args) : run('nsenter', [`--net=${hostNetns}`, cmd, ...args]);
}
/** `ip` inside another namespace: nsenter, never `ip netns exec` (it remounts /sys, PLATFORM.md). */
const ipIn = (netns: string, args: readonly string[]): Promise<string> => run('nsenter', [`--net=${netns}`, 'ip', ...args]);

/**
 * Creates the veth pair with its peer directly in the workload namespace, gives the workload
 * its /32 and a default route via the gateway, and routes the /32 to the host side. On failure
 * the pair is removed again (deleting the host side deletes the peer).
 */
export async function createVeth(s: VethSpec, hostNetns?: string): Promise<void> {
  const ip = (args: readonly string[]): Promise<string> => inHost(hostNetns, 'ip', args);
  await ip(['link', 'add', s.ifname, 'type', 'veth', 'peer', 'name', s.peerName, 'netns', s.netns]);
  try {
    await ipIn(s.netns, ['link', 'set', 'lo', 'up']);
    await ipIn(s.netns, ['addr', 'add', `${s.ip}/32`, 'dev', s.peerName]);
    await ipIn(s.netns, ['link', 'set', s.peerName, 'up']);
    await ipIn(s.netns, ['route', 'add', s.gateway, 'dev', s.peerName, 'scope', 'link']);
    await ipIn(s.netns, ['route', 'add', 'default', 'via', s.gateway, 'dev', s.peerName]);
    await ip(['addr', 'add', `${s.gateway}/32`, 'dev', s.ifname]);
    await ip(['link', 'set', s.ifname, 'up']);
    await ip(['route', 'replace', `${s.ip}/32`, 'dev', s.ifname, 'scope', 'link']);
  } catch (err) {
    await deleteVeth(s.ifname, hostNetns);
    throw err;
  }
}

/** Removes the pair (and with it the host route). Missing links are fine: idempotent. */
export async function deleteVeth(ifname: string, hostNetns?: string): Promise<void> {
  try {
    await inHost(hostNetns, 'ip', ['link', 'del', ifname]);
  } catch (err) {
    if (err instanceof NetlinkError && /Cannot find device|does not exist/.test(err.message)) return;
    throw err;
  }
}

export async function linkExists(ifname: string, hostNetns?: string): Promise<boolean> {
  try {
    await inHost(hostNetns, 'ip', ['link', 'show', 'dev', ifname]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Endpoints reach each other through this host: forwarding must be on in its namespace. The L7
 * steering sends packets back in through the veth they left (and answers to the proxy's
 * upstream in through the client's veth), which strict reverse-path filtering drops: strict (1)
 * becomes loose (2) for `all` (the effective value is the larger of `all` and the device's) and
 * for `default` (the endpoint veths made from now on). 0 and 2 are left as they are.
 */
export async function enableForwarding(hostNetns?: string): Promise<void> {
  await inHost(hostNetns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  const keys = ['net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.default.rp_filter'];
  const values = (await inHost(hostNetns, 'sysctl', ['-n', ...keys])).trim().split('\n');
  const strict = keys.filter((_, i) => values[i]?.trim() === '1');
  if (strict.length > 0) await inHost(hostNetns, 'sysctl', ['-q', '-w', ...strict.map((k) => `${k}=2`)]);
}

/** Native routing: another node's endpoint CIDR via that node's address. Idempotent. */
export async function replaceRoute(cidr: string, via: string, hostNetns?: string): Promise<void> {
  await inHost(hostNetns, 'ip', ['route', 'replace', cidr, 'via', via]);
}

export async function deleteRoute(cidr: string, hostNetns?: string): Promise<void> {
  try {
    await inHost(hostNetns, 'ip', ['route', 'del', cidr]);
  } catch (err) {
    if (err instanceof NetlinkError && /No such process|not found/i.test(err.message)) return;
    throw err;
  }
}
