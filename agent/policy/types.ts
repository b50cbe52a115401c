import type { Cidr4, EntityName, LabelSelector } from '../../identity/index.js';

/** Where a rule came from, for error messages and traces. Indexes are 0-based. */
export interface RuleOrigin {
  readonly file: string;
  readonly document: number;
  readonly rule: number;
  /** Field path of the rule in its document, e.g. `specs[1]`. */
  readonly path: string;
  /** 1-based line of the rule (YAML and JSON). */
  readonly line?: number;
  /** metadata.name of the CiliumNetworkPolicy document, if any. */
  readonly name?: string;
}

export type ProtocolName = 'TCP' | 'UDP' | 'SCTP' | 'ANY';

/** One `ports` item: a single port (`endPort` = `port`), a range, or all ports (`port` 0). */
export interface PortProtocol {
  readonly port: number;
  readonly endPort: number;
  readonly protocol: ProtocolName;
}

/** An HTTP rule: every given field must match (regexes matching the whole value). */
export interface HttpRule {
  readonly method?: string;
  readonly path?: string;
  readonly host?: string;
  /** `Name` (must be present) or `Name: value` (value is a full-match regex). */
  readonly headers: readonly string[];
}

/** One `toPorts` item. `http` is undefined for an L4-only port rule. */
export interface PortRule {
  readonly ports: readonly PortProtocol[];
  readonly http?: readonly HttpRule[];
}

export type Peer =
  | { readonly kind: 'endpoints'; readonly selector: LabelSelector }
  | { readonly kind: 'entity'; readonly entity: EntityName }
  | { readonly kind: 'cidr'; readonly cidr: Cidr4; readonly except: readonly Cidr4[] };

/**
 * One element of ingress/egress/ingressDeny/egressDeny. Peers (ORed among themselves) AND
 * ports; no peers with ports = all peers; no ports = all ports and protocols; neither = nothing.
 */
export interface RuleElement {
  readonly peers: readonly Peer[];
  readonly toPorts: readonly PortRule[];
  /** Field path, e.g. `specs[0].ingress[1]`. */
  readonly path: string;
}

export type DirectionName = 'ingress' | 'egress';

export interface PolicyRule {
  readonly endpointSelector: LabelSelector;
  readonly ingress: readonly RuleElement[];
  readonly ingressDeny: readonly RuleElement[];
  readonly egress: readonly RuleElement[];
  readonly egressDeny: readonly RuleElement[];
  /** Whether this rule puts selected endpoints into default deny, per direction. */
  readonly defaultDeny: { readonly ingress: boolean; readonly egress: boolean };
  readonly description?: string;
  readonly labels: readonly string[];
  readonly origin: RuleOrigin;
}
