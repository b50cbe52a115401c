import { KeyError } from './errors.js';
import { decodeLabelSegment, encodeLabelSegment, type SchemaLabel } from './labels.js';

/*
 * The etcd key layout (STABLE API: changing a key shape needs a new `vN` segment).
 *
 *   <root>state/identities/v1/id/<N>                      identity N -> its labels (no lease)
 *   <root>state/identities/v1/labels/<labels>             label-set index -> N (no lease)
 *   <root>state/identities/v1/refs/<node>/<labels>        node's reference (node lease)
 *   <root>state/nodes/v1/<node>                           node record (node lease)
 *   <root>state/endpoints/v1/<node>/<ip>                  endpoint ip -> identity (node lease)
 *   <root>state/policies/v1/<name>                        policy document (no lease)
 *   <root>coordination/v1/leader/<role>                   elected leader, e.g. role `identity-gc`
 *   <root>state/schema                                    highest schema version in use (no lease)
 *
 * <labels> is encodeLabelSegment (percent-encoded `source:key=value;...`, never contains `/`).
 * Node, policy and role names are restricted to NAME_RE so they need no escaping. Putting the
 * node before the labels in refs/ and endpoints/ lets etcd RBAC limit a node to its own prefix.
 */

export const DEFAULT_ROOT = 'ward/';

/** Names of nodes, policies and leader roles: DNS-like, no `/`. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_RE = /^[0-9a-f:]*:[0-9a-f:.]*$/;
const ID_RE = /^(0|[1-9]\d{0,9})$/;

export function checkName(what: string, name: string): string {
  if (!NAME_RE.test(name)) throw new KeyError(name, `${what} name must match ${NAME_RE.source}`);
  return name;
}

/** Endpoint IPs in keys are lower-case dotted IPv4 or IPv6 text without a prefix length. */
export function checkIp(ip: string): string {
  if (!IPV4_RE.test(ip) && !IPV6_RE.test(ip)) throw new KeyError(ip, 'not an IPv4 or lower-case IPv6 address');
  return ip;
}

function checkId(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw new KeyError(String(n), 'identity is not a uint32');
  return n;
}

/** A key parsed back into its kind (see KeySchema.classify). */
export type ParsedKey =
  | { readonly kind: 'identity'; readonly id: number }
  | { readonly kind: 'identity-index'; readonly labels: SchemaLabel[] }
  | { readonly kind: 'identity-ref'; readonly node: string; readonly labels: SchemaLabel[] }
  | { readonly kind: 'node'; readonly node: string }
  | { readonly kind: 'endpoint'; readonly node: string; readonly ip: string }
  | { readonly kind: 'policy'; readonly name: string }
  | { readonly kind: 'leader'; readonly role: string };

/** Builders and parsers for every key under one root. Parsers throw KeyError. */
export class KeySchema {
  readonly root: string;
  readonly identities: string;
  readonly ids: string;
  readonly labels: string;
  readonly refs: string;
  readonly nodes: string;
  readonly endpoints: string;
  readonly policies: string;
  readonly leaders: string;
  /** Cluster-wide schema marker: agents that know an older version refuse to write. */
  readonly schemaMarkerKey: string;

  constructor(root: string = DEFAULT_ROOT) {
    if (root === '' || !root.endsWith('/') || root.startsWith('/') || root.includes('//')) {
      throw new KeyError(root, 'root must be non-empty, end with "/" and not start with "/"');
    }
    this.root = root;
    this.identities = `${root}state/identities/v1/`;
    this.ids = `${this.identities}id/`;
    this.labels = `${this.identities}labels/`;
    this.refs = `${this.identities}refs/`;
    this.nodes = `${root}state/nodes/v1/`;
    this.endpoints = `${root}state/endpoints/v1/`;
    this.policies = `${root}state/policies/v1/`;
    this.leaders = `${root}coordination/v1/leader/`;
    this.schemaMarkerKey = `${root}state/schema`;
  }

  idKey(id: number): string {
    return `${this.ids}${checkId(id)}`;
  }
  labelsKey(labels: readonly SchemaLabel[]): string {
    return `${this.labels}${encodeLabelSegment(labels)}`;
  }
  refsNodePrefix(node: string): string {
    return `${this.refs}${checkName('node', node)}/`;
  }
  refKey(node: string, labels: readonly SchemaLabel[]): string {
    return `${this.refsNodePrefix(node)}${encodeLabelSegment(labels)}`;
  }
  nodeKey(node: string): string {
    return `${this.nodes}${checkName('node', node)}`;
  }
  endpointsNodePrefix(node: string): string {
    return `${this.endpoints}${checkName('node', node)}/`;
  }
  endpointKey(node: string, ip: string): string {
    return `${this.endpointsNodePrefix(node)}${checkIp(ip)}`;
  }
  policyKey(name: string): string {
    return `${this.policies}${checkName('policy', name)}`;
  }
  leaderKey(role: string): string {
    return `${this.leaders}${checkName('role', role)}`;
  }

  parseIdKey(key: string): number {
    const rest = this.after(key, this.ids);
    if (!ID_RE.test(rest)) throw new KeyError(key, 'identity part is not a decimal uint32');
    return checkId(Number(rest));
  }
  parseLabelsKey(key: string): SchemaLabel[] {
    return decodeLabelSegment(this.after(key, this.labels));
  }
  parseRefKey(key: string): { node: string; labels: SchemaLabel[] } {
    const [node, seg] = this.split2(key, this.refs);
    return { node: checkName('node', node), labels: decodeLabelSegment(seg) };
  }
  parseNodeKey(key: string): string {
    return checkName('node', this.after(key, this.nodes));
  }
  parseEndpointKey(key: string): { node: string; ip: string } {
    const [node, ip] = this.split2(key, this.endpoints);
    return { node: checkName('node', node), ip: checkIp(ip) };
  }
  parsePolicyKey(key: string): string {
    return checkName('policy', this.after(key, this.policies));
  }
  parseLeaderKey(key: string): string {
    return checkName('role', this.after(key, this.leaders));
  }

  /** Parses any key of the layout; undefined for keys outside it (they are not ours). */
  classify(key: string): ParsedKey | undefined {
    try {
      if (key.startsWith(this.ids)) return { kind: 'identity', id: this.parseIdKey(key) };
      if (key.startsWith(this.labels)) return { kind: 'identity-index', labels: this.parseLabelsKey(key) };
      if (key.startsWith(this.refs)) return { kind: 'identity-ref', ...this.parseRefKey(key) };
      if (key.startsWith(this.nodes)) return { kind: 'node', node: this.parseNodeKey(key) };
      if (key.startsWith(this.endpoints)) return { kind: 'endpoint', ...this.parseEndpointKey(key) };
      if (key.startsWith(this.policies)) return { kind: 'policy', name: this.parsePolicyKey(key) };
      if (key.startsWith(this.leaders)) return { kind: 'leader', role: this.parseLeaderKey(key) };
    } catch {
      return undefined;
    }
    return undefined;
  }

  private after(key: string, prefix: string): string {
    if (!key.startsWith(prefix)) throw new KeyError(key, `not under ${prefix}`);
    return key.slice(prefix.length);
  }
  private split2(key: string, prefix: string): [string, string] {
    const rest = this.after(key, prefix);
    const slash = rest.indexOf('/');
    if (slash < 0) throw new KeyError(key, 'missing "/" between the two parts');
    return [rest.slice(0, slash), rest.slice(slash + 1)];
  }
}

/** The smallest key greater than every key with this prefix (etcd range_end for a prefix). */
export function prefixRangeEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const end = Buffer.from(b.subarray(0, i + 1));
      end[i] = b[i]! + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}
