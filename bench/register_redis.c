/*
 * register_redis: the shared registry in Redis (registry_redis.h), timed
 * in process, on one libuv loop, against a running redis-server.
 *
 *   register_redis redis://HOST:PORT N WINDOW TRIALS
 *
 * rate     N registrations (N/2 pairs, each its own /24, so that no limit
 *          refuses one) submitted to one server's store with WINDOW
 *          awaiting Redis at a time: registrations/s, and this process's
 *          CPU per registration (Redis's own CPU is the script's to read).
 *          The same through the in-memory store, for comparison.
 * cross    TRIALS pairs across two servers (two stores with their own
 *          tables and connections, on the same loop): A registers at the
 *          first; the time from B's submission at the second to B's answer
 *          there (PEER-INFO to B can go out), and to the first server's
 *          PEER-INFO to A (after the script, PUBLISH and the first
 *          server's checks).  The same pair at one in-memory server takes
 *          the time of a function call: these are what Redis adds.
 *
 * The REGISTERs are signed as a client signs them (one key for all), so
 * that the first server checks the second's values as it would in
 * service.  Signing is done before the clock starts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "punch_attr.h"
#include "registry_redis.h"
#include "registry_url.h"
#include "rendezvous_server.h"
#include "sign.h"
#include "stun.h"

struct msg {
	uint8_t b[PUNCH_MSG_MAX];
	size_t len;
	struct punch_peer p;
	struct sockaddr_storage from;
};

static uv_loop_t loop;
static size_t n_done, n_intro;
static uint64_t t_b_done, t_a_info;
static int want_info;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* rdv_send_fn: the first server's PEER-INFO to A. */
static void on_send(void *ctx, int sock, const struct sockaddr *to,
                    const uint8_t *buf, size_t len)
{
	(void)ctx, (void)sock, (void)to, (void)buf, (void)len;
	if (want_info && !t_a_info)
		t_a_info = now_ns();
}

static void on_done(struct reg_job *job, const struct reg_outcome *o)
{
	(void)job;
	n_done++;
	if (o->result == REG_INTRODUCE)
		n_intro++;
	if (!t_b_done)
		t_b_done = now_ns();
}

static void make(struct msg *m, const struct sign_key *k, const char *id,
                 const char *peer, uint32_t i)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&m->from;
	uint8_t txid[STUN_TXID_LEN] = { 0 };
	struct stun_writer w;
	int n;

	memset(m, 0, sizeof(*m));
	snprintf(m->p.id, sizeof(m->p.id), "%s", id);
	snprintf(m->p.peer_id, sizeof(m->p.peer_id), "%s", peer);
	snprintf(m->p.ufrag, sizeof(m->p.ufrag), "uf%08x", i);
	snprintf(m->p.pwd, sizeof(m->p.pwd), "pw-%08x-0123456789abcdef", i);
	m->p.session = 1000 + i;
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)(1024 + (i & 0x7fff)));
	sin->sin_addr.s_addr = htonl(0x01000001u + (i << 8)); /* a /24 each */
	m->p.cand[0].type = CAND_HOST;
	m->p.cand[0].priority = punch_cand_priority(CAND_HOST, 65535);
	m->p.cand[0].addr = m->from;
	m->p.n_cand = 1;
	memcpy(txid, &i, sizeof(i));
	stun_writer_init(&w, m->b, sizeof(m->b), PUNCH_REGISTER, STUN_REQUEST,
	                 txid);
	punch_peer_put(&w, &m->p, 1);
	stun_put_bytes(&w, STUN_ATTR_NONCE, "00000000000000000000000000000000",
	               32);
	sign_put(&w, PUNCH_ATTR_PUBKEY, k);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	if (n < 0)
		abort();
	m->len = (size_t)n;
	sign_fp(k->pk, m->p.key_fp);
	m->p.has_key_fp = 1;
}

static void submit(const struct reg_store_ops *ops, void *store,
                   const struct msg *m)
{
	struct reg_job job;

	memset(&job, 0, sizeof(job));
	job.p = m->p;
	job.from = m->from;
	job.now_ms = uv_now(&loop);
	job.msg = m->b;
	job.msg_len = m->len;
	job.done = on_done;
	ops->submit(store, &job);
}

static struct registry_redis *store_new(const struct registry_url *u,
                                        struct rdv_server **rs, size_t n)
{
	struct registry_redis *rr;
	char err[256];

	*rs = rdv_server_new(n, on_send, NULL);
	rr = *rs ? registry_redis_new(&loop, u, *rs, 86400, err, sizeof(err)) :
	           NULL;
	if (!rr) {
		fprintf(stderr, "register_redis: %s\n", *rs ? err : "out of memory");
		exit(2);
	}
	rdv_server_set_store(*rs, &registry_redis_ops, rr);
	for (int i = 0; i < 5000 && !registry_redis_stats(rr)->up; i++)
		uv_run(&loop, UV_RUN_ONCE);
	if (!registry_redis_stats(rr)->up) {
		fprintf(stderr, "register_redis: Redis is not up\n");
		exit(2);
	}
	return rr;
}

static void rate(const struct reg_store_ops *ops, void *store,
                 const struct msg *m, size_t n, size_t window,
                 const char *what)
{
	double c0 = cpu_s();
	uint64_t t0 = now_ns(), t;
	size_t sent = 0;

	n_done = n_intro = 0;
	while (n_done < n) {
		while (sent < n && sent - n_done < window)
			submit(ops, store, &m[sent++]);
		if (n_done < n)
			uv_run(&loop, UV_RUN_ONCE);
	}
	t = now_ns() - t0;
	printf("rate %-7s registrations=%zu introduced=%zu window=%zu time=%.3fs rate=%.0f/s cpu_per_registration=%.1fus\n",
	       what, n, n_intro, window, (double)t / 1e9,
	       (double)n / ((double)t / 1e9), (cpu_s() - c0) / (double)n * 1e6);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void cross(struct registry_redis *r1, struct registry_redis *r2,
                  const struct sign_key *k, size_t trials)
{
	uint64_t *b = calloc(trials, sizeof(*b)), *a = calloc(trials, sizeof(*a));
	static struct msg ma, mb;
	char ia[32], ib[32];

	for (size_t i = 0; i < trials; i++) {
		snprintf(ia, sizeof(ia), "lat%zu-a", i);
		snprintf(ib, sizeof(ib), "lat%zu-b", i);
		make(&ma, k, ia, ib, (uint32_t)(2000000 + 2 * i));
		make(&mb, k, ib, ia, (uint32_t)(2000001 + 2 * i));
		n_done = 0;
		submit(&registry_redis_ops, r1, &ma);
		while (n_done < 1)
			uv_run(&loop, UV_RUN_ONCE);
		t_b_done = t_a_info = 0;
		want_info = 1;
		uint64_t t0 = now_ns();
		submit(&registry_redis_ops, r2, &mb);
		for (int j = 0; j < 100000 && (!t_a_info || n_done < 2); j++)
			uv_run(&loop, UV_RUN_ONCE);
		want_info = 0;
		if (!t_a_info) {
			fprintf(stderr, "register_redis: trial %zu: no PEER-INFO to A\n", i);
			exit(1);
		}
		b[i] = t_b_done - t0;
		a[i] = t_a_info - t0;
	}
	qsort(a, trials, sizeof(*a), cmp_u64);
	qsort(b, trials, sizeof(*b), cmp_u64);
	printf("cross trials=%zu answer_at_B_server_p50=%.0fus p99=%.0fus peer_info_to_A_p50=%.0fus p99=%.0fus\n",
	       trials, (double)b[trials / 2] / 1e3,
	       (double)b[trials * 99 / 100] / 1e3, (double)a[trials / 2] / 1e3,
	       (double)a[trials * 99 / 100] / 1e3);
	free(a);
	free(b);
}

int main(int argc, char **argv)
{
	struct registry_url u;
	struct rdv_server *rs1, *rs2, *rsm;
	struct registry_redis *r1, *r2;
	struct sign_key k;
	struct msg *m;
	char err[300];
	size_t n, window, trials;

	if (argc != 5 || registry_url_parse(argv[1], NULL, &u, err, sizeof(err)) ||
	    (n = strtoul(argv[2], NULL, 10)) < 2 ||
	    !(window = strtoul(argv[3], NULL, 10)) ||
	    window > REGISTRY_REDIS_INFLIGHT_MAX ||
	    !(trials = strtoul(argv[4], NULL, 10))) {
		fprintf(stderr, "usage: register_redis redis://HOST:PORT N WINDOW(1-%d) TRIALS\n",
		        REGISTRY_REDIS_INFLIGHT_MAX);
		return 2;
	}
	uv_loop_init(&loop);
	sign_key_from_seed(&k, NULL);
	m = calloc(n, sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		char id[32], peer[32];

		snprintf(id, sizeof(id), "reg%07zu", i);
		snprintf(peer, sizeof(peer), "reg%07zu", i ^ 1);
		make(&m[i], &k, id, peer, (uint32_t)i);
	}
	r1 = store_new(&u, &rs1, n + trials * 2 + 16);
	r2 = store_new(&u, &rs2, trials * 2 + 16);
	rate(&registry_redis_ops, r1, m, n, window, "redis");
	rsm = rdv_server_new(n + 16, on_send, NULL);
	rate(&registry_mem_ops, rdv_registry(rsm), m, n, window, "memory");
	printf("redis_errors=%llu from_memory=%llu\n",
	       (unsigned long long)registry_redis_stats(r1)->errors,
	       (unsigned long long)registry_redis_stats(r1)->from_memory);
	cross(r1, r2, &k, trials);
	registry_redis_free(r1);
	registry_redis_free(r2);
	uv_run(&loop, UV_RUN_DEFAULT);
	rdv_server_free(rs1);
	rdv_server_free(rs2);
	rdv_server_free(rsm);
	free(m);
	return 0;
}
