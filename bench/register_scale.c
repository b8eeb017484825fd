/*
 * register_scale: what one REGISTER costs the rendezvous registry as it
 * fills, and what a registration weighs.
 *
 *   register_scale [N[:FILL[:NEW]]]...      (default 4096 1000000)
 *
 * For each N: a registry for N + NEW registrations is filled with FILL
 * (default N) registrations, 16 to a /24 so that the per-prefix cap never
 * refuses one.  Then it times, in process CPU time:
 *   new      NEW registrations of new ids (the table grows by NEW);
 *   refresh  NEW refreshes of registered ids, in a scattered order;
 *   admit    NEW registry_admit() calls from registered prefixes.
 * Each registration looks like a real client's: ids of 50 bytes (the form
 * `punch id` prints), an 8-byte ufrag, a 24-byte password, 4 candidates
 * (2 IPv4, 2 IPv6).
 *
 * Each is timed over ROUNDS windows of NEW in a row (new ids: NEW more
 * each time); the least is printed, and the median beside it, since this
 * machine is shared and the rest is other people's noise.  The heap is
 * touched beforehand, as a server's is after its first hours, so that
 * the kernel's first-touch page faults are not counted as REGISTER work.
 *
 * Memory is the heap in use (mallinfo2: arena plus mmapped blocks) after
 * the fill, less before registry_new(), per registration; the registry's
 * own count of what it asked for is printed beside it.
 *
 * Built with -DREGISTRY_OLD against the registry before these limits
 * (bench/register_scale.sh does it), for comparison: that one has no
 * admit step and no counters of its own.
 */
#include <arpa/inet.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry.h"

#ifdef REGISTRY_OLD
#define PER_PREFIX REGISTRY_PER_IP_MAX
#else
#define PER_PREFIX REGISTRY_PER_PREFIX_MAX
#endif

enum {
	PER_24 = 16,      /* registrations per /24 in the fill */
	DEFAULT_NEW = 10000,
	SIZES_MAX = 8,
	ROUNDS = 5,
	WARM_BLOCK = 512, /* bytes, about one registration's block */
};

struct size_spec {
	size_t n, fill, fresh;
};

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static void sa4(struct sockaddr_storage *ss, uint32_t ip, uint16_t port)
{
	struct sockaddr_in *s = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	s->sin_addr.s_addr = htonl(ip);
}

static void sa6(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	if (inet_pton(AF_INET6, ip, &s->sin6_addr) != 1)
		abort();
}

/* Registration i: its id, and its source, PER_24 to a /24 from 1.0.0.0. */
static void peer_of(struct punch_peer *p, struct sockaddr_storage *from,
                    size_t i)
{
	static const struct punch_peer proto;

	*p = proto;
	snprintf(p->id, sizeof(p->id), "SHA256:%043zu", i);
	snprintf(p->peer_id, sizeof(p->peer_id), "SHA256:%043zu", i ^ 1u << 30);
	memcpy(p->ufrag, "abcdefgh", 9);
	memcpy(p->pwd, "abcdefghijklmnopqrstuvwx", 25);
	p->session = i;
	p->has_key_fp = 1;
	memset(p->key_fp, (int)(i & 255), sizeof(p->key_fp));
	p->n_cand = 4;
	for (int k = 0; k < 4; k++) {
		p->cand[k].type = (uint8_t)(k % 2 ? CAND_SRFLX : CAND_HOST);
		p->cand[k].priority = (uint32_t)(1000 - k);
	}
	sa4(&p->cand[0].addr, 0x0A000001u, 5000);
	sa4(&p->cand[1].addr, 0xCB007101u, 5000);
	sa6(&p->cand[2].addr, "2001:db8:a::1", 5000);
	sa6(&p->cand[3].addr, "2001:db8:b::1", 5000);
	sa4(from, 0x01000000u + (uint32_t)(i / PER_24 << 8) +
	          (uint32_t)(1 + i % PER_24), 40000);
}

static int reg(struct registry *r, size_t i, uint64_t now)
{
	struct punch_peer p;
	struct sockaddr_storage from;
	const struct reg_entry *a, *b;

	peer_of(&p, &from, i);
	return registry_register(r, &p, (struct sockaddr *)&from, 0, now, &a,
	                         &b);
}

/* Time `count` calls of step(i) for i from `first`; microseconds each. */
static double time_us(struct registry *r, size_t first, size_t count,
                      size_t mod, int (*step)(struct registry *, size_t))
{
	double t0 = cpu_s();

	for (size_t k = 0; k < count; k++)
		if (step(r, mod ? (first + k * 7919) % mod : first + k) < 0) {
			fprintf(stderr, "register_scale: step %zu refused\n", k);
			exit(1);
		}
	return (cpu_s() - t0) * 1e6 / (double)count;
}

static int step_register(struct registry *r, size_t i)
{
	return reg(r, i, 1000);
}

/* What building a request costs the benchmark itself, in every step. */
static int step_nothing(struct registry *r, size_t i)
{
	struct punch_peer p;
	struct sockaddr_storage from;

	(void)r;
	peer_of(&p, &from, i);
	__asm__ volatile("" : : "r"(&p), "r"(&from) : "memory");
	return 0;
}

#ifndef REGISTRY_OLD
static int step_admit(struct registry *r, size_t i)
{
	struct punch_peer p;
	struct sockaddr_storage from;

	peer_of(&p, &from, i);
	registry_admit(r, (struct sockaddr *)&from, 1000 + i);
	return 0;
}
#endif

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* ROUNDS windows of `count` steps, the i-th from first + i * stride
 * (stride 0: the same steps again); the least and the median. */
static void time_rounds(struct registry *r, size_t first, size_t stride,
                        size_t count, size_t mod,
                        int (*step)(struct registry *, size_t),
                        double *least, double *median)
{
	double t[ROUNDS];

	for (int i = 0; i < ROUNDS; i++)
		t[i] = time_us(r, first + (size_t)i * stride, count, mod, step);
	qsort(t, ROUNDS, sizeof(t[0]), cmp_double);
	*least = t[0];
	*median = t[ROUNDS / 2];
}

/* Touch `bytes` of heap in registration-sized blocks and free them: glibc
 * keeps it (the trim threshold is raised), mapped and faulted in. */
static void heap_warm(size_t bytes)
{
	size_t n = bytes / WARM_BLOCK;
	void **v = malloc(n * sizeof(*v));

	mallopt(M_TRIM_THRESHOLD, 1 << 30);
	for (size_t i = 0; v && i < n; i++)
		if ((v[i] = malloc(WARM_BLOCK)))
			memset(v[i], 1, WARM_BLOCK);
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void run(const struct size_spec *s)
{
	size_t cap = s->n + ROUNDS * s->fresh, before, filled;
	struct registry *r;
	double fill_us, new_us, new_med, refresh_us, refresh_med, prep_us;

	heap_warm(cap * WARM_BLOCK);
	before = heap_bytes();
	r = registry_new(cap, PER_PREFIX);
	if (!r) {
		fprintf(stderr, "register_scale: out of memory for %zu\n", s->n);
		exit(1);
	}
	fill_us = time_us(r, 0, s->fill, 0, step_register);
	filled = heap_bytes() - before;
	time_rounds(r, s->fill, s->fresh, s->fresh, 0, step_register, &new_us,
	            &new_med);
	time_rounds(r, 0, 0, s->fresh, s->fill, step_register, &refresh_us,
	            &refresh_med);
	prep_us = time_us(r, 0, s->fresh, s->fill, step_nothing);
	printf("held %7zu (capacity %7zu): new id %9.3f us (median %.3f), "
	       "refresh %7.3f us (median %.3f); fill %.3f us each; %.3f us "
	       "of each is the benchmark's own\n"
	       "    heap %.1f bytes per registration held, %.1f per slot of "
	       "capacity\n",
	       s->fill, cap, new_us, new_med, refresh_us, refresh_med, fill_us,
	       prep_us, (double)filled / (double)s->fill,
	       (double)filled / (double)cap);
#ifndef REGISTRY_OLD
	{
		struct registry_info info;
		double admit_us;

		registry_info(r, &info);
		time_rounds(r, 0, 0, s->fresh, s->fill, step_admit, &admit_us,
		            &refresh_med);
		printf("    admit %.3f us; registry's own count %.1f bytes per "
		       "registration (%zu entries, %zu prefixes, %zu + %zu "
		       "buckets, longest chain %zu)\n",
		       admit_us, (double)info.bytes / (double)info.entries,
		       info.entries, info.prefixes, info.id_buckets,
		       info.prefix_buckets, info.longest_chain);
		registry_expire(r, UINT64_MAX / 2);
		registry_info(r, &info);
		printf("    after expiry: %zu entries, %zu blocks, %zu bytes\n",
		       info.entries, info.allocs, info.bytes);
	}
#endif
	fflush(stdout);
	registry_free(r);
}

static int parse(const char *arg, struct size_spec *s)
{
	char *end;

	s->n = strtoul(arg, &end, 10);
	s->fill = s->n;
	s->fresh = DEFAULT_NEW;
	if (*end == ':')
		s->fill = strtoul(end + 1, &end, 10);
	if (*end == ':')
		s->fresh = strtoul(end + 1, &end, 10);
	return *end || !s->n || !s->fill || s->fill > s->n || !s->fresh ||
	       s->n > 1u << 24 ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct size_spec sizes[SIZES_MAX] = {
		{ 4096, 4096, DEFAULT_NEW }, { 1000000, 1000000, DEFAULT_NEW },
	};
	int n = 2;

	if (argc > 1) {
		n = 0;
		for (int i = 1; i < argc && n < SIZES_MAX; i++) {
			if (parse(argv[i], &sizes[n++])) {
				fprintf(stderr, "usage: register_scale "
				                "[N[:FILL[:NEW]]]...\n");
				return 2;
			}
		}
	}
	for (int i = 0; i < n; i++)
		run(&sizes[i]);
	return 0;
}
