/* The kernel ABI of ward's datapath: map key/value layouts shared by the BPF programs
 * (bpf/progs), the C benchmark floor (bpf/bench) and mirrored byte for byte by the TypeScript
 * layouts (bpf/<map>/layout.ts, checked by unit tests). Changing a struct here is a breaking
 * change of the pinned maps: bump WARD_ABI_VERSION and the map names. */
#ifndef WARD_ABI_H
#define WARD_ABI_H

#include <linux/types.h>

#define WARD_ABI_VERSION 1

/* Policy direction as seen by the endpoint (matches bpf/policy-map/types.ts). */
#define WARD_DIR_INGRESS 0
#define WARD_DIR_EGRESS 1

/* Reserved identities used by the datapath. */
#define WARD_ID_ANY 0
#define WARD_ID_WORLD 2

/* Per-endpoint policy map (LPM trie). The prefix always covers identity and direction (40 bits),
 * then protocol (8 bits), then port (up to 16 bits): prefixlen = 40 [+ 8 + portPrefixLen]. */
#define WARD_POLICY_STATIC_PREFIX 40
#define WARD_POLICY_FULL_PREFIX 64
struct ward_policy_key {
	__u32 prefixlen;
	__u32 identity;    /* host order, always fully matched */
	__u8 direction;
	__u8 protocol;     /* 0 = any */
	__be16 port;       /* network order so the prefix covers its high bits */
};                         /* 12 bytes */

#define WARD_POLICY_F_DENY 0x1
struct ward_policy_value {
	__be16 proxy_port;   /* network order; 0 = no redirect */
	__u8 flags;          /* WARD_POLICY_F_* */
	__u8 l4_prefix_len;  /* protocol+port prefix bits (0..24), to pick the more specific match */
	__u32 reserved;
};                           /* 8 bytes */

/* Global ipcache (LPM trie over IPv4). */
struct ward_ipcache_key {
	__u32 prefixlen;  /* 0..32 */
	__be32 addr;
};                        /* 8 bytes */
struct ward_ipcache_value {
	__u32 identity;   /* host order */
	__be32 node_addr; /* owning node's IPv4, 0 = unknown/local */
};                        /* 8 bytes */

/* Endpoints, keyed by the ifindex of the host-side veth (u32, host order). */
#define WARD_EP_F_LOCKDOWN 0x1 /* fail closed: policy incomplete (e.g. policy map full) */
struct ward_endpoint_value {
	__u32 endpoint_id;
	__u32 identity;
	__u32 flags;      /* WARD_EP_F_* */
	__u32 reserved;
};                        /* 16 bytes */

/* Conntrack (LRU hash). The tuple is the one of the packet that opened the connection, seen
 * by endpoint `endpoint_id` in policy direction `direction`. */
struct ward_ct_key {
	__u32 endpoint_id;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;  /* ICMP echo: identifier in both ports */
	__be16 dport;
	__u8 protocol;
	__u8 direction;
	__u16 pad;
};                     /* 20 bytes */

#define WARD_CT_F_CLOSING 0x1 /* TCP FIN or RST seen */
struct ward_ct_value {
	__u64 created_ns;   /* bpf_ktime_get_ns() */
	__u64 last_seen_ns;
	__u64 packets;
	__u64 bytes;
	__u32 remote_identity;
	__be16 proxy_port;
	__u8 flags;         /* WARD_CT_F_* */
	__u8 pad;
};                          /* 40 bytes */

/* Reasons, used in counters and events. < 128 forwarded, >= 128 dropped. */
#define WARD_REASON_POLICY_ALLOW 1
#define WARD_REASON_CT_ESTABLISHED 2
#define WARD_REASON_CT_REPLY 3
#define WARD_REASON_DROP_POLICY 130     /* no allow entry matched */
#define WARD_REASON_DROP_POLICY_DENY 131 /* a deny entry matched */
#define WARD_REASON_DROP_IPV6 132       /* IPv6 is not enforced yet: fails closed */
#define WARD_REASON_DROP_MALFORMED 133
#define WARD_REASON_DROP_UNKNOWN_ENDPOINT 134
#define WARD_REASON_DROP_NO_POLICY_MAP 135
#define WARD_REASON_DROP_LOCKDOWN 136
#define WARD_REASON_DROP_UNSUPPORTED_L3 137
#define WARD_REASON_DROP_FRAGMENT 138
#define WARD_REASON_PROXY_REDIRECT 4     /* steered to the agent's L7 proxy */
#define WARD_REASON_FROM_PROXY 5         /* the proxy's upstream, policy enforced by the proxy */
#define WARD_REASON_TO_PROXY_UPSTREAM 6  /* an answer to the proxy's upstream, delivered to it */
#define WARD_REASON_DROP_NO_PROXY 139    /* redirect wanted but no proxy listener */

/* skb marks shared with the L7 proxy (agent/proxy/marks.ts). 0x200 is the fwmark of the
 * `ip rule ... lookup 100` (local route) that delivers steered packets to the proxy; the top
 * 16 bits carry a proxy port (TO_PROXY) or the source identity (FROM_PROXY_EGRESS).
 * PROXY_ANSWER is the SO_MARK of the proxy's listeners, so of every packet the proxy sends to
 * a proxied client: the datapath tells them from the destination's answers to the proxy's
 * upstream, which have the same tuple (the upstream leaves with the client's address). */
#define WARD_MARK_MAGIC_MASK 0x0f00
#define WARD_MARK_PROXY_ANSWER 0x0100
#define WARD_MARK_TO_PROXY 0x0200
#define WARD_MARK_FROM_PROXY_INGRESS 0x0400
#define WARD_MARK_FROM_PROXY_EGRESS 0x0800

/* Counters (hash, atomically incremented). endpoint_id 0 collects events lost to a full ring. */
struct ward_metrics_key {
	__u32 endpoint_id;
	__u8 direction;
	__u8 reason;
	__u16 pad;
};                        /* 8 bytes */
struct ward_metrics_value {
	__u64 packets;
	__u64 bytes;
};                        /* 16 bytes */
#define WARD_METRICS_EVENTS_LOST_REASON 255

/* Ring-buffer events. */
#define WARD_EVENT_DROP 1
#define WARD_EVENT_POLICY_VERDICT 2
struct ward_event {
	__u64 ts_ns;
	__u32 endpoint_id;
	__u32 remote_identity;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 direction;
	__u8 type;        /* WARD_EVENT_* */
	__u8 reason;
	__u32 ifindex;
	__be16 proxy_port;
	__u16 pad;
	__u32 pkt_len;
	__u32 reserved;
};                        /* 48 bytes */

#endif
