/** Verdict reasons of the datapath (WARD_REASON_* in bpf/include/ward_abi.h). < 128 = forwarded. */
export const Reason = {
  policyAllow: 1,
  ctEstablished: 2,
  ctReply: 3,
  proxyRedirect: 4,
  fromProxy: 5,
  toProxyUpstream: 6,
  dropPolicy: 130,
  dropPolicyDeny: 131,
  dropIpv6: 132,
  dropMalformed: 133,
  dropUnknownEndpoint: 134,
  dropNoPolicyMap: 135,
  dropLockdown: 136,
  dropUnsupportedL3: 137,
  dropFragment: 138,
  dropNoProxy: 139,
  eventsLost: 255,
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

const NAMES: Record<number, string> = {
  1: 'policy-allow',
  2: 'ct-established',
  3: 'ct-reply',
  4: 'proxy-redirect',
  5: 'from-proxy',
  6: 'to-proxy-upstream',
  130: 'policy-denied',
  131: 'policy-deny-rule',
  132: 'ipv6-not-enforced',
  133: 'malformed',
  134: 'unknown-endpoint',
  135: 'no-policy-map',
  136: 'endpoint-lockdown',
  137: 'unsupported-l3',
  138: 'ip-fragment',
  139: 'no-proxy-listener',
  255: 'events-lost',
};

export function reasonName(r: number): string {
  return NAMES[r] ?? `reason-${r}`;
}

export function isDropReason(r: number): boolean {
  return r >= 128 && r !== Reason.eventsLost;
}

export const EventType = { drop: 1, policyVerdict: 2 } as const;
