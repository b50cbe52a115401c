import { spawnSync } from 'node:child_process';
import { sh, shQuiet } from './sh.js';

let counter = 0;

/** A short name unique to this process and call (netns and bpffs names). */
export function uniqueName(prefix: string): string {
  counter++;
  return `${prefix}${process.pid.toString(36)}${counter.toString(36)}`;
}

export interface EndpointNs {
  /** Netns name (under /run/netns). */
  readonly netns: string;
  /** Host-side veth name (inside the host netns). */
  readonly hostIf: string;
  readonly ip: string;
  readonly gateway: string;
}

/**
 * A "host" netns routing between endpoint netns, each joined by a veth pair:
 * endpoint i gets 10.77.i.2/24 on eth0, the host side 10.77.i.1/24, default route via it.
 * destroy() deletes every namespace (which removes the veths) and is safe to call twice.
 */
export class Topology {
  readonly host: string;
  readonly endpoints: EndpointNs[] = [];
  private destroyed = false;

  private constructor(prefix: string) {
    this.host = uniqueName(`${prefix}h`);
  }

  static create(prefix: string, endpointCount: number): Topology {
    const t = new Topology(prefix);
    try {
      sh('ip', ['netns', 'add', t.host]);
      t.inHost('ip', ['link', 'set', 'lo', 'up']);
      t.inHost('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
      for (let i = 1; i <= endpointCount; i++) t.addEndpoint(i);
    } catch (e) {
      t.destroy();
      throw e;
    }
    return t;
  }

  get hostPath(): string {
    return `/run/netns/${this.host}`;
  }

  /** Runs a command inside the host netns (nsenter: never remounts /sys). */
  inHost(cmd: string, args: string[]): string {
    return sh('nsenter', [`--net=${this.hostPath}`, cmd, ...args]);
  }

  /** Runs a command inside an endpoint netns; returns its exit status. */
  runIn(netns: string, cmd: string, args: string[]): number {
    return spawnSync('nsenter', [`--net=/run/netns/${netns}`, cmd, ...args], { stdio: 'ignore' }).status ?? -1;
  }

  /** One ICMP echo; true if answered. */
  ping(from: EndpointNs, to: string, timeoutS = 1): boolean {
    return this.runIn(from.netns, 'ping', ['-c', '1', '-W', String(timeoutS), '-q', to]) === 0;
  }

  private addEndpoint(i: number): void {
    const netns = uniqueName('wde');
    const hostIf = `ep${i}h`;
    sh('ip', ['netns', 'add', netns]);
    const ep: EndpointNs = { netns, hostIf, ip: `10.77.${i}.2`, gateway: `10.77.${i}.1` };
    this.endpoints.push(ep);
    sh('ip', ['-n', this.host, 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    this.inHost('ip', ['addr', 'add', `${ep.gateway}/24`, 'dev', hostIf]);
    this.inHost('ip', ['link', 'set', hostIf, 'up']);
    const inEp = (args: string[]): string => sh('nsenter', [`--net=/run/netns/${netns}`, 'ip', ...args]);
    inEp(['link', 'set', 'lo', 'up']);
    inEp(['addr', 'add', `${ep.ip}/24`, 'dev', 'eth0']);
    inEp(['link', 'set', 'eth0', 'up']);
    inEp(['route', 'add', 'default', 'via', ep.gateway]);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const e of this.endpoints) shQuiet('ip', ['netns', 'del', e.netns]);
    shQuiet('ip', ['netns', 'del', this.host]);
  }
}
