import { CidrSelector, EndpointSelector, EntitySelector, formatCidr, type IdentitySelector } from '../../identity/index.js';
import { Direction, Protocol, portRangeToPrefixes } from '../../bpf/policy-map/types.js';
import type { HttpRule, PolicyRule, PortProtocol, RuleElement } from '../policy/index.js';

/** A (protocol, port prefix) block of a policy key; protocol 0 = any (then port 0/0). */
export interface PortBlock {
  readonly protocol: Protocol;
  readonly port: number;
  readonly portPrefixLen: number;
}

export const ANY_BLOCK: PortBlock = { protocol: Protocol.any, port: 0, portPrefixLen: 0 };

/**
 * The unit of policy: peers selected by `peer` (undefined = any identity, the wildcard) may
 * use `blocks` in `direction`, or are denied them. `http` (allow only) restricts requests.
 */
export interface FilterSpec {
  readonly direction: Direction;
  readonly deny: boolean;
  readonly peer: IdentitySelector | undefined;
  readonly blocks: readonly PortBlock[];
  readonly http?: readonly HttpRule[];
  /** `policy#index` of the rule this came from. */
  readonly ruleRef: string;
  readonly elementPath: string;
}

/** A rule with its filters and the CIDR prefixes it needs identities for. */
export interface CompiledRule {
  readonly ref: string;
  readonly rule: PolicyRule;
  readonly filters: readonly FilterSpec[];
  readonly cidrs: readonly string[];
}

const L4_PROTOCOLS = [Protocol.tcp, Protocol.udp, Protocol.sctp] as const;
const PROTOCOL_NUMBERS = { TCP: Protocol.tcp, UDP: Protocol.udp, SCTP: Protocol.sctp } as const;

/**
 * Port item -> key blocks. ANY with port 0 is one any-protocol key (includes ICMP, as an
 * L3-only rule); ANY with a port expands to TCP, UDP and SCTP; ranges become aligned blocks.
 */
export function portBlocks(p: PortProtocol): PortBlock[] {
  if (p.protocol === 'ANY' && p.port === 0) return [ANY_BLOCK];
  const protos = p.protocol === 'ANY' ? L4_PROTOCOLS : [PROTOCOL_NUMBERS[p.protocol]];
  const ranges = p.port === 0 ? [{ port: 0, portPrefixLen: 0 }] : portRangeToPrefixes(p.port, p.endPort);
  return protos.flatMap((protocol) => ranges.map((r) => ({ protocol, port: r.port, portPrefixLen: r.portPrefixLen })));
}

function dedupBlocks(blocks: PortBlock[]): PortBlock[] {
  const seen = new Map<string, PortBlock>();
  for (const b of blocks) seen.set(`${b.protocol}/${b.port}/${b.portPrefixLen}`, b);
  return [...seen.values()];
}

function peerSelectors(el: RuleElement): (IdentitySelector | undefined)[] {
  return el.peers.map((p) => {
    switch (p.kind) {
      case 'endpoints':
        return new EndpointSelector(p.selector);
      case 'entity':
        return p.entity === 'all' ? undefined : new EntitySelector(p.entity);
      case 'cidr':
        return new CidrSelector(p.cidr, p.except);
    }
  });
}

function elementFilters(el: RuleElement, direction: Direction, deny: boolean, ruleRef: string): FilterSpec[] {
  let peers = peerSelectors(el);
  if (peers.length === 0) {
    // No peers: with ports it means every peer; with neither, the element allows nothing.
    if (el.toPorts.length === 0) return [];
    peers = [undefined];
  }
  const portGroups: { blocks: PortBlock[]; http?: readonly HttpRule[] }[] =
    el.toPorts.length === 0
      ? [{ blocks: [ANY_BLOCK] }]
      : el.toPorts.map((pr) => ({ blocks: dedupBlocks(pr.ports.flatMap(portBlocks)), ...(pr.http !== undefined ? { http: pr.http } : {}) }));
  const out: FilterSpec[] = [];
  for (const peer of peers) {
    for (const g of portGroups) {
      out.push({ direction, deny, peer, blocks: g.blocks, ...(g.http !== undefined && !deny ? { http: g.http } : {}), ruleRef, elementPath: el.path });
    }
  }
  return out;
}

export function compileRule(rule: PolicyRule, ref: string): CompiledRule {
  const filters: FilterSpec[] = [];
  for (const el of rule.ingress) filters.push(...elementFilters(el, Direction.ingress, false, ref));
  for (const el of rule.ingressDeny) filters.push(...elementFilters(el, Direction.ingress, true, ref));
  for (const el of rule.egress) filters.push(...elementFilters(el, Direction.egress, false, ref));
  for (const el of rule.egressDeny) filters.push(...elementFilters(el, Direction.egress, true, ref));
  const cidrs = new Set<string>();
  for (const el of [...rule.ingress, ...rule.ingressDeny, ...rule.egress, ...rule.egressDeny]) {
    for (const p of el.peers) {
      if (p.kind !== 'cidr') continue;
      // 0.0.0.0/0 needs no identity: addresses no prefix claims resolve to world.
      for (const c of [p.cidr, ...p.except]) if (c.len > 0) cidrs.add(formatCidr(c));
    }
  }
  return { ref, rule, filters, cidrs: [...cidrs].sort() };
}
