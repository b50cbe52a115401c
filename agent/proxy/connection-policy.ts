import { Direction } from '../../bpf/policy-map/types.js';
import { bothDecisions, type L7Decision } from './decision.js';
import { egressUpstreamMark, MARK_FROM_PROXY_INGRESS } from './marks.js';
import type { L7Event, L7PolicySource, ListenerSpec, RequestDecision } from './types.js';

/** One proxied connection's addresses: the client's, and the original destination's. */
export interface ConnectionAddresses {
  readonly src: string;
  readonly sport: number;
  readonly dst: string;
  readonly dport: number;
}

/**
 * What one proxied connection asks the policy: the decision for its next request, the mark of
 * a new upstream, and the event of a decision. Identities are fixed at accept (as in Cilium).
 */
export class ConnectionPolicy {
  readonly sourceIdentity: number;
  readonly destinationIdentity: number;
  readonly ingress: boolean;
  private readonly remoteIdentity: number;
  // An egress connection to an endpoint of this host: `theirs` = its ingress decision at the
  // last request; `judged` = the current upstream skips that endpoint's ingress policy in the
  // datapath, which this proxy then applies.
  private readonly peer: { readonly endpoint: string; theirs: L7Decision | undefined; judged: boolean } | undefined;

  constructor(
    private readonly policy: L7PolicySource,
    private readonly spec: ListenerSpec,
    readonly addresses: ConnectionAddresses,
  ) {
    const { src, dst } = addresses;
    this.ingress = spec.direction === Direction.ingress;
    const srcId = policy.identityOf(src);
    const dstId = policy.identityOf(dst);
    this.remoteIdentity = this.ingress ? srcId : dstId;
    const localIdentity = policy.endpointIdentity(spec.endpoint);
    this.sourceIdentity = this.ingress ? srcId : (localIdentity ?? srcId);
    this.destinationIdentity = this.ingress ? (localIdentity ?? dstId) : dstId;
    const peerEndpoint = this.ingress ? undefined : policy.localEndpointAt?.(dst);
    this.peer = peerEndpoint !== undefined ? { endpoint: peerEndpoint, theirs: undefined, judged: false } : undefined;
  }

  /** The decision for the next request (so rule changes apply to it). */
  decide(): L7Decision {
    const own = this.policy.decide(this.spec.endpoint, this.spec.direction, this.remoteIdentity, this.addresses.dport);
    const peer = this.peer;
    if (peer === undefined) return own;
    // A local destination whose ingress has HTTP rules for the source is judged here too.
    const theirs = (peer.theirs = this.policy.decide(peer.endpoint, Direction.ingress, this.sourceIdentity, this.addresses.dport));
    return theirs.kind === 'rules' || peer.judged ? bothDecisions(own, theirs, `ingress of ${peer.endpoint}`) : own;
  }

  /**
   * The SO_MARK of a new upstream, made to forward the request just decided: whose policy the
   * datapath applies to it is the destination's ingress, unless this proxy judges it (a second
   * proxy there would need the same tuple as this one).
   */
  upstreamMark(): number {
    const peer = this.peer;
    if (peer !== undefined) peer.judged = peer.theirs?.kind === 'rules';
    return this.ingress || peer?.judged === true ? MARK_FROM_PROXY_INGRESS : egressUpstreamMark(this.sourceIdentity);
  }

  event(d: RequestDecision): L7Event {
    const { src, sport, dst, dport } = this.addresses;
    return {
      ...d,
      timeMs: Date.now(),
      endpoint: this.spec.endpoint,
      direction: this.ingress ? 'ingress' : 'egress',
      sourceIdentity: this.sourceIdentity,
      destinationIdentity: this.destinationIdentity,
      source: `${src}:${sport}`,
      destination: `${dst}:${dport}`,
    };
  }
}
