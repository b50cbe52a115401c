// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* ward's per-endpoint policy programs, attached with tc (clsact) on the host side of each
 * endpoint's veth:
 *   to_endpoint   on the veth's egress  = the endpoint's INGRESS policy
 *   from_endpoint on the veth's ingress = the endpoint's EGRESS policy
 * One loaded program serves every endpoint: it finds the endpoint by ifindex in ward_endpoints
 * and the endpoint's policy map (LPM trie) in the hash-of-maps ward_policy. All maps are pinned
 * by name under the pin root, so an agent restart or a program replacement keeps state. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "../include/ward_abi.h"

/* <linux/icmp.h> pulls in libc headers that do not build for -target bpf. */
struct ward_icmphdr {
	__u8 type;
	__u8 code;
	__be16 checksum;
	__be16 id;
	__be16 sequence;
};
#define ICMP_ECHOREPLY_ 0
#define ICMP_ECHO_ 8
#define IP_OFFSET_MASK 0x1fff

#define CT_TCP_LIFETIME_NS (21600ULL * 1000000000ULL)
#define CT_TCP_CLOSING_NS (10ULL * 1000000000ULL)
#define CT_OTHER_LIFETIME_NS (60ULL * 1000000000ULL)

struct policy_inner {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(key_size, sizeof(struct ward_policy_key));
	__uint(value_size, sizeof(struct ward_policy_value));
	__uint(max_entries, 16384);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 65536);
	__type(key, __u32); /* endpoint id */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct policy_inner);
} ward_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 512000);
	__type(key, struct ward_ipcache_key);
	__type(value, struct ward_ipcache_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ward_ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32); /* host-side ifindex */
	__type(value, struct ward_endpoint_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ward_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct ward_ct_key);
	__type(value, struct ward_ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ward_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ward_metrics_key);
	__type(value, struct ward_metrics_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ward_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ward_events SEC(".maps");

struct flow {
	__u32 endpoint_id;
	__u32 ifindex;
	__u32 remote_identity;
	__u32 len;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 direction;
	__u8 tcp_flags;
	__u8 ct_able;      /* has a tuple conntrack can follow */
	__u8 always_new;   /* TCP SYN / ICMP echo request: always evaluated by policy */
};

static __always_inline void count(__u32 endpoint_id, __u8 direction, __u8 reason, __u32 len)
{
	struct ward_metrics_key k = { .endpoint_id = endpoint_id, .direction = direction, .reason = reason };
	struct ward_metrics_value *v = bpf_map_lookup_elem(&ward_metrics, &k);
	if (!v) {
		struct ward_metrics_value zero = {};
		bpf_map_update_elem(&ward_metrics, &k, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&ward_metrics, &k);
		if (!v)
			return;
	}
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, len);
}

static __always_inline void emit(const struct flow *f, __u8 type, __u8 reason, __be16 proxy_port)
{
	struct ward_event *e = bpf_ringbuf_reserve(&ward_events, sizeof(*e), 0);
	if (!e) {
		count(0, f->direction, WARD_METRICS_EVENTS_LOST_REASON, 0);
		return;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->endpoint_id = f->endpoint_id;
	e->remote_identity = f->remote_identity;
	e->saddr = f->saddr;
	e->daddr = f->daddr;
	e->sport = f->sport;
	e->dport = f->dport;
	e->protocol = f->protocol;
	e->direction = f->direction;
	e->type = type;
	e->reason = reason;
	e->ifindex = f->ifindex;
	e->proxy_port = proxy_port;
	e->pad = 0;
	e->pkt_len = f->len;
	e->reserved = 0;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int drop(const struct flow *f, __u8 reason)
{
	count(f->endpoint_id, f->direction, reason, f->len);
	emit(f, WARD_EVENT_DROP, reason, 0);
	return TC_ACT_SHOT;
}

static __always_inline int forward(const struct flow *f, __u8 reason)
{
	count(f->endpoint_id, f->direction, reason, f->len);
	return TC_ACT_OK;
}

/* Parses IPv4 + L4 into f. Returns 0 or a drop reason. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, struct flow *f)
{
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return WARD_REASON_DROP_MALFORMED;
	f->saddr = ip.saddr;
	f->daddr = ip.daddr;
	f->protocol = ip.protocol;
	if (ip.version != 4 || ip.ihl < 5)
		return WARD_REASON_DROP_MALFORMED;
	__u32 hlen = ip.ihl * 4;
	__u32 tot = bpf_ntohs(ip.tot_len);
	if (tot < hlen || tot > skb->len - ETH_HLEN)
		return WARD_REASON_DROP_MALFORMED;
	/* Non-first fragments carry no ports: fail closed rather than guess. */
	if (bpf_ntohs(ip.frag_off) & IP_OFFSET_MASK)
		return WARD_REASON_DROP_FRAGMENT;
	__u32 l4 = ETH_HLEN + hlen;
	__u32 l4len = tot - hlen;

	switch (ip.protocol) {
	case IPPROTO_TCP: {
		struct tcphdr th;
		if (l4len < sizeof(th) || bpf_skb_load_bytes(skb, l4, &th, sizeof(th)) < 0 || th.doff < 5)
			return WARD_REASON_DROP_MALFORMED;
		f->sport = th.source;
		f->dport = th.dest;
		f->tcp_flags = ((__u8 *)&th)[13];
		f->ct_able = 1;
		/* A SYN without ACK always opens a new connection: never trust conntrack for it. */
		f->always_new = (th.syn && !th.ack) ? 1 : 0;
		break;
	}
	case IPPROTO_UDP:
	case IPPROTO_SCTP: {
		__be16 ports[2];
		__u32 need = ip.protocol == IPPROTO_UDP ? 8 : 12;
		if (l4len < need || bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)) < 0)
			return WARD_REASON_DROP_MALFORMED;
		f->sport = ports[0];
		f->dport = ports[1];
		f->ct_able = 1;
		break;
	}
	case IPPROTO_ICMP: {
		struct ward_icmphdr ic;
		if (l4len < sizeof(ic) || bpf_skb_load_bytes(skb, l4, &ic, sizeof(ic)) < 0)
			return WARD_REASON_DROP_MALFORMED;
		if (ic.type == ICMP_ECHO_ || ic.type == ICMP_ECHOREPLY_) {
			/* The identifier in both ports makes the reply's reversed tuple match. */
			f->sport = ic.id;
			f->dport = ic.id;
			f->ct_able = 1;
			f->always_new = ic.type == ICMP_ECHO_;
		}
		break;
	}
	default:
		break;
	}
	return 0;
}

static __always_inline __u32 lookup_identity(__be32 addr)
{
	struct ward_ipcache_key k = { .prefixlen = 32, .addr = addr };
	struct ward_ipcache_value *v = bpf_map_lookup_elem(&ward_ipcache, &k);
	return v ? v->identity : WARD_ID_WORLD;
}

static __always_inline __u64 ct_lifetime(const struct ward_ct_key *k, const struct ward_ct_value *v)
{
	if (k->protocol != IPPROTO_TCP)
		return CT_OTHER_LIFETIME_NS;
	return (v->flags & WARD_CT_F_CLOSING) ? CT_TCP_CLOSING_NS : CT_TCP_LIFETIME_NS;
}

/* Looks up k; refreshes and returns a live entry, deletes an expired one. */
static __always_inline struct ward_ct_value *ct_hit(struct ward_ct_key *k, const struct flow *f, __u64 now)
{
	struct ward_ct_value *v = bpf_map_lookup_elem(&ward_ct, k);
	if (!v)
		return 0;
	if (now - v->last_seen_ns > ct_lifetime(k, v)) {
		bpf_map_delete_elem(&ward_ct, k);
		return 0;
	}
	v->last_seen_ns = now;
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, f->len);
	if (f->tcp_flags & 0x05) /* FIN | RST */
		v->flags |= WARD_CT_F_CLOSING;
	return v;
}

/* Delivers the packet (at tc ingress) to the proxy in this namespace: a new connection is
 * assigned to the listener on 127.0.0.1:proxy_port (IP_TRANSPARENT, so the accepted socket
 * keeps the original destination as its local address); every packet gets the fwmark whose
 * ip rule routes it locally, where the established socket is found by its 4-tuple. */
static __always_inline int to_proxy(struct __sk_buff *skb, const struct flow *f, __be16 proxy_port)
{
	if (f->always_new) {
		struct bpf_sock_tuple t = {};
		t.ipv4.saddr = f->saddr;
		t.ipv4.sport = f->sport;
		t.ipv4.daddr = bpf_htonl(0x7f000001);
		t.ipv4.dport = proxy_port;
		struct bpf_sock *sk = bpf_skc_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
		if (!sk)
			return drop(f, WARD_REASON_DROP_NO_PROXY);
		if (sk->state != BPF_TCP_LISTEN) {
			bpf_sk_release(sk);
			return drop(f, WARD_REASON_DROP_NO_PROXY);
		}
		long r = bpf_sk_assign(skb, sk, 0);
		bpf_sk_release(sk);
		if (r)
			return drop(f, WARD_REASON_DROP_NO_PROXY);
	}
	skb->mark = WARD_MARK_TO_PROXY;
	return forward(f, WARD_REASON_PROXY_REDIRECT);
}

/* At tc egress (towards the endpoint) sk_assign is not available: send the packet back in
 * through this interface's ingress, marked with the proxy port, where to_proxy() runs. The MAC
 * swap makes it addressed to this (host-side) interface. */
static __always_inline int hairpin_to_proxy(struct __sk_buff *skb, const struct flow *f, __be16 proxy_port)
{
	__u8 macs[12];
	if (bpf_skb_load_bytes(skb, 0, macs, sizeof(macs)) < 0)
		return drop(f, WARD_REASON_DROP_MALFORMED);
	__u8 swapped[12];
	__builtin_memcpy(swapped, macs + 6, 6);
	__builtin_memcpy(swapped + 6, macs, 6);
	if (bpf_skb_store_bytes(skb, 0, swapped, sizeof(swapped), 0) < 0)
		return drop(f, WARD_REASON_DROP_MALFORMED);
	skb->mark = WARD_MARK_TO_PROXY | ((__u32)bpf_ntohs(proxy_port) << 16);
	count(f->endpoint_id, f->direction, WARD_REASON_PROXY_REDIRECT, f->len);
	return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
}

static __always_inline int steer(struct __sk_buff *skb, const struct flow *f, __be16 proxy_port)
{
	return f->direction == WARD_DIR_EGRESS ? to_proxy(skb, f, proxy_port) : hairpin_to_proxy(skb, f, proxy_port);
}

static __always_inline int handle(struct __sk_buff *skb, __u8 direction)
{
	struct flow f = {};
	f.ifindex = skb->ifindex;
	f.direction = direction;
	f.len = skb->len;

	if (skb->protocol == bpf_htons(ETH_P_ARP))
		return TC_ACT_OK;

	struct ward_endpoint_value *ep = bpf_map_lookup_elem(&ward_endpoints, &f.ifindex);
	if (!ep)
		return drop(&f, WARD_REASON_DROP_UNKNOWN_ENDPOINT);
	f.endpoint_id = ep->endpoint_id;

	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return drop(&f, WARD_REASON_DROP_IPV6);
	/* Anything but untagged IPv4 (VLAN tags included) fails closed. */
	if (skb->protocol != bpf_htons(ETH_P_IP) || skb->vlan_present)
		return drop(&f, WARD_REASON_DROP_UNSUPPORTED_L3);

	int bad = parse_ipv4(skb, &f);
	if (bad)
		return drop(&f, bad);
	f.remote_identity = lookup_identity(direction == WARD_DIR_INGRESS ? f.saddr : f.daddr);
	/* Marks only come from this host: the veth crossing from an endpoint clears them. */
	__u32 mark_kind = skb->mark & WARD_MARK_MAGIC_MASK;
	if (direction == WARD_DIR_EGRESS && mark_kind == WARD_MARK_TO_PROXY && f.protocol == IPPROTO_TCP)
		/* Hairpinned by this endpoint's to_endpoint: judged there already. */
		return to_proxy(skb, &f, bpf_htons(skb->mark >> 16));
	if (direction == WARD_DIR_INGRESS && mark_kind == WARD_MARK_FROM_PROXY_EGRESS)
		/* An egress proxy's upstream: the source is the proxied endpoint, not the host. */
		f.remote_identity = skb->mark >> 16;
	if (ep->flags & WARD_EP_F_LOCKDOWN)
		return drop(&f, WARD_REASON_DROP_LOCKDOWN);

	__u64 now = bpf_ktime_get_ns();
	struct ward_ct_key ck = {
		.endpoint_id = f.endpoint_id,
		.saddr = f.saddr,
		.daddr = f.daddr,
		.sport = f.sport,
		.dport = f.dport,
		.protocol = f.protocol,
		.direction = direction,
	};
	if (direction == WARD_DIR_INGRESS && mark_kind == WARD_MARK_FROM_PROXY_INGRESS && f.protocol == IPPROTO_TCP) {
		/* This endpoint's ingress proxy forwarding an allowed request: remember the
		 * connection so the endpoint's replies pass, judge nothing again. */
		if (!ct_hit(&ck, &f, now) && !(f.tcp_flags & 0x04)) {
			struct ward_ct_value cv = { .created_ns = now, .last_seen_ns = now, .packets = 1, .bytes = f.len, .remote_identity = f.remote_identity };
			bpf_map_update_elem(&ward_ct, &ck, &cv, BPF_ANY);
		}
		return forward(&f, WARD_REASON_FROM_PROXY);
	}
	if (f.ct_able) {
		struct ward_ct_value *est = f.always_new ? 0 : ct_hit(&ck, &f, now);
		if (est) {
			if (est->proxy_port && f.protocol == IPPROTO_TCP)
				return steer(skb, &f, est->proxy_port);
			return forward(&f, WARD_REASON_CT_ESTABLISHED);
		}
		struct ward_ct_key rk = {
			.endpoint_id = f.endpoint_id,
			.saddr = f.daddr,
			.daddr = f.saddr,
			.sport = f.dport,
			.dport = f.sport,
			.protocol = f.protocol,
			.direction = direction ^ 1,
		};
		struct ward_ct_value *rv = ct_hit(&rk, &f, now);
		if (rv) {
			/* A reply on a proxied connection. The proxy's upstream leaves with the
			 * client's address and port, so the destination's answers to it have the
			 * tuple of the client's own connection: deliver them to the proxy. */
			if (rv->proxy_port && f.protocol == IPPROTO_TCP) {
				if (direction == WARD_DIR_EGRESS) {
					/* This endpoint's ingress is proxied: its client talks to the proxy
					 * only, so what it sends back answers the upstream. */
					skb->mark = WARD_MARK_TO_PROXY;
					return forward(&f, WARD_REASON_TO_PROXY_UPSTREAM);
				}
				/* This endpoint's egress is proxied: the proxy's own answers carry its
				 * listener's mark; anything else answers the upstream. */
				if (mark_kind != WARD_MARK_PROXY_ANSWER)
					return hairpin_to_proxy(skb, &f, 0);
			}
			return forward(&f, WARD_REASON_CT_REPLY);
		}
	}

	__u32 epid = f.endpoint_id;
	void *pmap = bpf_map_lookup_elem(&ward_policy, &epid);
	if (!pmap)
		return drop(&f, WARD_REASON_DROP_NO_POLICY_MAP);
	struct ward_policy_key pk = {
		.prefixlen = WARD_POLICY_FULL_PREFIX,
		.identity = f.remote_identity,
		.direction = direction,
		.protocol = f.protocol,
		/* ICMP types are not matched: port 0 (see bpf/policy-map/types.ts). */
		.port = f.protocol == IPPROTO_ICMP ? 0 : f.dport,
	};
	struct ward_policy_value *l3 = bpf_map_lookup_elem(pmap, &pk);
	pk.identity = WARD_ID_ANY;
	struct ward_policy_value *any = bpf_map_lookup_elem(pmap, &pk);
	if ((l3 && (l3->flags & WARD_POLICY_F_DENY)) || (any && (any->flags & WARD_POLICY_F_DENY)))
		return drop(&f, WARD_REASON_DROP_POLICY_DENY);
	struct ward_policy_value *pick = l3;
	if (!pick || (any && any->l4_prefix_len > pick->l4_prefix_len))
		pick = any;
	if (!pick)
		return drop(&f, WARD_REASON_DROP_POLICY);
	__be16 proxy_port = pick->proxy_port;

	/* Allowed: remember the connection (not for a bare RST). */
	if (f.ct_able && !(f.tcp_flags & 0x04)) {
		struct ward_ct_value cv = {
			.created_ns = now,
			.last_seen_ns = now,
			.packets = 1,
			.bytes = f.len,
			.remote_identity = f.remote_identity,
			.proxy_port = proxy_port,
		};
		bpf_map_update_elem(&ward_ct, &ck, &cv, BPF_ANY);
	}
	emit(&f, WARD_EVENT_POLICY_VERDICT, WARD_REASON_POLICY_ALLOW, proxy_port);
	if (proxy_port && f.protocol == IPPROTO_TCP)
		return steer(skb, &f, proxy_port);
	return forward(&f, WARD_REASON_POLICY_ALLOW);
}

SEC("tc")
int to_endpoint(struct __sk_buff *skb)
{
	return handle(skb, WARD_DIR_INGRESS);
}

SEC("tc")
int from_endpoint(struct __sk_buff *skb)
{
	return handle(skb, WARD_DIR_EGRESS);
}

char _license[] SEC("license") = "Dual BSD/GPL";
