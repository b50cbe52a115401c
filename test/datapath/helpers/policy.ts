import { Direction, Protocol, portRangeToPrefixes } from '../../../bpf/index.js';
import type { PolicyEntry, PolicyKey } from '../../../bpf/index.js';

export type Entry = readonly [PolicyKey, PolicyEntry];

const ALLOW: PolicyEntry = { deny: false, proxyPort: 0 };
const DENY: PolicyEntry = { deny: true, proxyPort: 0 };

function key(identity: number, dir: 'in' | 'out', protocol: Protocol, port = 0, portPrefixLen = protocol === 0 || port === 0 ? 0 : 16): PolicyKey {
  return { identity, direction: dir === 'in' ? Direction.ingress : Direction.egress, protocol, port, portPrefixLen };
}

export function allow(identity: number, dir: 'in' | 'out', protocol: Protocol, port = 0): Entry {
  return [key(identity, dir, protocol, port), ALLOW];
}

export function deny(identity: number, dir: 'in' | 'out', protocol: Protocol, port = 0): Entry {
  return [key(identity, dir, protocol, port), DENY];
}

export function allowRange(identity: number, dir: 'in' | 'out', protocol: Protocol, start: number, end: number): Entry[] {
  return portRangeToPrefixes(start, end).map(({ port, portPrefixLen }) => [key(identity, dir, protocol, port, portPrefixLen), ALLOW] as const);
}

export { Protocol };
