import { execFile } from 'node:child_process';

/** What the container side of an endpoint looks like inside its netns. */
export interface ContainerLink {
  readonly mac: string;
  readonly ipv4: readonly string[];
}

/**
 * The interface's MAC and IPv4 addresses inside `netns` (undefined if it has no such link).
 * nsenter, never `ip netns exec` (it remounts /sys, PLATFORM.md).
 */
export function readContainerLink(netns: string, ifname: string): Promise<ContainerLink | undefined> {
  return new Promise((resolve) => {
    execFile('nsenter', [`--net=${netns}`, 'ip', '-j', 'addr', 'show', 'dev', ifname], { encoding: 'utf8', timeout: 10_000 }, (err, stdout) => {
      if (err !== null) return resolve(undefined);
      try {
        const [link] = JSON.parse(stdout) as { address?: string; addr_info?: { family?: string; local?: string }[] }[];
        if (link === undefined) return resolve(undefined);
        const ipv4 = (link.addr_info ?? []).filter((a) => a.family === 'inet' && a.local !== undefined).map((a) => a.local!);
        resolve({ mac: link.address ?? '', ipv4 });
      } catch {
        resolve(undefined);
      }
    });
  });
}
