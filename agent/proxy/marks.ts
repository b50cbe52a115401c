/*
 * skb marks shared with bpf/progs/ward_endpoint.c (WARD_MARK_*). Bit 0x200 is the fwmark of
 * the `ip rule` that delivers steered packets locally, so proxy marks never set it.
 */
export const MARK_TO_PROXY = 0x200;
/** Upstream of an ingress proxy: the destination's ingress policy was enforced by the proxy. */
export const MARK_FROM_PROXY_INGRESS = 0x400;
/** Upstream of an egress proxy: the source identity rides in the top 16 bits. */
export const MARK_FROM_PROXY_EGRESS = 0x800;

/**
 * SO_MARK of the proxy's listeners, so of every packet the proxy sends to a proxied client: the
 * datapath tells them from the destination's answers to the proxy's upstream (same tuple).
 */
export const MARK_PROXY_ANSWER = 0x100;

export function egressUpstreamMark(sourceIdentity: number): number {
  if (!Number.isInteger(sourceIdentity) || sourceIdentity < 0 || sourceIdentity > 0xffff) throw new RangeError(`source identity ${sourceIdentity} does not fit a mark (16 bits)`);
  return (MARK_FROM_PROXY_EGRESS | (sourceIdentity << 16)) >>> 0;
}
