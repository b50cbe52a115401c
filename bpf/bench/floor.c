/* The C floor of the datapath benchmark: the same policy-map updates the Node benchmark makes
 * (LPM trie with ward's policy key/value, same keys), through libbpf with no binding in between.
 * Usage: bench-floor <entries> <batch> <rounds>; prints one JSON line with the median rates. */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/bpf.h>
#include "../include/ward_abi.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Key i: identity 256 + i / 64, ingress, TCP, port 1000 + i % 64, exact. Mirrors the Node side. */
static void make_key(struct ward_policy_key *k, unsigned i)
{
	memset(k, 0, sizeof(*k));
	k->prefixlen = WARD_POLICY_FULL_PREFIX;
	k->identity = 256 + i / 64;
	k->direction = WARD_DIR_INGRESS;
	k->protocol = 6;
	k->port = htobe16(1000 + i % 64);
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? atoi(argv[1]) : 100000;
	unsigned batch = argc > 2 ? atoi(argv[2]) : 1000;
	unsigned rounds = argc > 3 ? atoi(argv[3]) : 5;
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_NO_PREALLOC);
	int fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "ward_floor", sizeof(struct ward_policy_key),
				sizeof(struct ward_policy_value), n, &mo);
	if (fd < 0) {
		fprintf(stderr, "bpf_map_create: %s\n", strerror(errno));
		return 1;
	}
	struct ward_policy_key *keys = calloc(n, sizeof(*keys));
	struct ward_policy_value *vals = calloc(n, sizeof(*vals));
	for (unsigned i = 0; i < n; i++) {
		make_key(&keys[i], i);
		vals[i].l4_prefix_len = 24;
	}
	double *single = calloc(rounds, sizeof(double)), *batched = calloc(rounds, sizeof(double));
	for (unsigned r = 0; r < rounds; r++) {
		double t0 = now_s();
		for (unsigned i = 0; i < n; i++) {
			if (bpf_map_update_elem(fd, &keys[i], &vals[i], BPF_ANY) < 0) {
				fprintf(stderr, "update: %s\n", strerror(errno));
				return 1;
			}
		}
		single[r] = n / (now_s() - t0);
		t0 = now_s();
		LIBBPF_OPTS(bpf_map_batch_opts, bo);
		for (unsigned i = 0; i < n; i += batch) {
			__u32 c = n - i < batch ? n - i : batch;
			if (bpf_map_update_batch(fd, &keys[i], &vals[i], &c, &bo) < 0) {
				fprintf(stderr, "batch: %s\n", strerror(errno));
				return 1;
			}
		}
		batched[r] = n / (now_s() - t0);
	}
	qsort(single, rounds, sizeof(double), cmp);
	qsort(batched, rounds, sizeof(double), cmp);
	printf("{\"c_single_per_s\":%.0f,\"c_batch_per_s\":%.0f}\n", single[rounds / 2], batched[rounds / 2]);
	return 0;
}
