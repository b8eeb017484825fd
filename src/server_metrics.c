/*
 * The server's counters, kept by each thread and summed over them
 * (server_internal.h): for -metrics (metrics.h, metrics_http.h) and for
 * the lines logged at the stop.
 */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "addr.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "registry_redis.h"
#include "rendezvous_server.h"
#include "server_internal.h"
#include "server_tcp.h"
#include "turn_server.h"

/* Sum the counters of every thread: dst += src, both structs of uint64_t
 * alone. */
static void add_u64s(void *dst, const void *src, size_t size)
{
	uint64_t *d = dst;
	const uint64_t *from = src;

	for (size_t i = 0; i < size / sizeof(uint64_t); i++)
		d[i] += from[i];
}

_Static_assert(sizeof(struct turn_stats) % sizeof(uint64_t) == 0,
               "turn_stats holds uint64_t alone");
_Static_assert(sizeof(struct server_stats) % sizeof(uint64_t) == 0,
               "server_stats holds uint64_t alone");
_Static_assert(sizeof(struct metrics_requests) % sizeof(uint64_t) == 0,
               "metrics_requests holds uint64_t alone");

/* On thread 0 (or once the others are gone): every thread's counters,
 * and each thread's received datagrams in g->received. */
static void group_sum(struct server_group *g, struct server_stats *st,
                      struct turn_stats *ts, struct metrics_requests *rq,
                      uint64_t *allocs)
{
	memset(st, 0, sizeof(*st));
	memset(ts, 0, sizeof(*ts));
	memset(rq, 0, sizeof(*rq));
	*allocs = 0;
	for (int i = 0; i < g->n; i++) {
		struct server *w = g->w[i];

		if (!w)
			continue;
		if (i)
			uv_mutex_lock(&w->stats_lock);
		add_u64s(st, &w->stats, sizeof(*st));
		add_u64s(rq, &w->requests, sizeof(*rq));
		if (w->turn) {
			add_u64s(ts, turn_stats(w->turn), sizeof(*ts));
			*allocs += turn_alloc_count(w->turn);
		}
		g->received[i] = w->received;
		if (i)
			uv_mutex_unlock(&w->stats_lock);
	}
}

/* The stop line keeps apart what is normal (answers, the 438 challenge
 * that precedes every registration), what the server refused and why,
 * requests that were wrong (errors), and datagrams that were not STUN. */
void server_log_stop(struct server *srv)
{
	const struct rdv_stats *rs = rdv_stats(srv->rdv);
	struct server_group *g = srv->g;
	struct server_stats sum;
	uint64_t allocs;
	char why[256] = "";
	size_t off = 0;

	for (int i = 0; i < RDV_REFUSED_N && off < sizeof(why); i++)
		if (rs->refused[i])
			off += (size_t)snprintf(why + off, sizeof(why) - off,
			                        "%s%s=%llu", off ? " " : " (",
			                        rdv_refusal_name(i),
			                        (unsigned long long)rs->refused[i]);
	group_sum(g, &sum, &g->turn, &g->requests, &allocs);
	if (off && off < sizeof(why) - 1)
		snprintf(why + off, sizeof(why) - off, ")");
	log_info("stopped: answered=%llu challenges=%llu refused=%llu%s "
	         "errors=%llu malformed=%llu",
	         (unsigned long long)sum.answered,
	         (unsigned long long)rs->challenged,
	         (unsigned long long)rs->rejected, why,
	         (unsigned long long)(sum.errors + rs->bad_method),
	         (unsigned long long)sum.malformed);
	if (srv->turn) {
		const struct turn_stats *ts = &g->turn;

		log_info("relay stopped: allocated=%llu expired=%llu challenges=%llu stale=%llu quota=%llu forbidden=%llu refused=%llu relayed=%llu/%llu no_permission=%llu over_rate=%llu malformed_channel=%llu deleted=%llu closed=%llu",
		         (unsigned long long)ts->allocated,
		         (unsigned long long)ts->expired,
		         (unsigned long long)ts->challenged,
		         (unsigned long long)ts->stale,
		         (unsigned long long)ts->quota,
		         (unsigned long long)ts->forbidden,
		         (unsigned long long)ts->refused,
		         (unsigned long long)ts->relayed_out,
		         (unsigned long long)ts->relayed_in,
		         (unsigned long long)ts->no_permission,
		         (unsigned long long)ts->over_rate,
		         (unsigned long long)ts->malformed_channel,
		         (unsigned long long)ts->deleted,
		         (unsigned long long)ts->closed);
	}
	/* Only when TCP was used: UDP-only runs keep their two lines */
	if (srv->tcp && tcp_server_stats(srv->tcp)->accepted +
	                        tcp_server_stats(srv->tcp)->over_cap) {
		const struct tcp_stats *cs = tcp_server_stats(srv->tcp);

		log_info("tcp stopped: connections=%llu over_cap=%llu idle=%llu malformed=%llu answered=%llu ignored=%llu dropped=%llu write_failed=%llu",
		         (unsigned long long)cs->accepted,
		         (unsigned long long)cs->over_cap,
		         (unsigned long long)cs->idle,
		         (unsigned long long)cs->malformed,
		         (unsigned long long)cs->answered,
		         (unsigned long long)cs->ignored,
		         (unsigned long long)cs->dropped,
		         (unsigned long long)cs->write_failed);
	}
	log_debug("stopped: registered=%llu refreshed=%llu introduced=%llu "
	          "expired=%llu peer_info_acked=%llu peer_info_gave_up=%llu "
	          "ignored=%llu send_failed=%llu",
	          (unsigned long long)rs->registered,
	          (unsigned long long)rs->refreshed,
	          (unsigned long long)rs->introduced,
	          (unsigned long long)rs->expired,
	          (unsigned long long)rs->acked,
	          (unsigned long long)rs->gave_up,
	          (unsigned long long)sum.ignored,
	          (unsigned long long)sum.send_failed);
}

/* metrics_fill_fn: on the loop's thread (metrics_http.h), so the counters
 * are read where they are kept. */
static void metrics_fill(void *ctx, struct metrics_snapshot *s)
{
	struct server *srv = ctx;
	struct server_group *g = srv->g;
	struct server_stats st;
	uint64_t allocs;

	group_sum(g, &st, &g->turn, &g->requests, &allocs);
	uv_mutex_lock(&g->rdv_lock);
	g->rdv = *rdv_stats(srv->rdv);
	s->registrations = registry_count(rdv_registry(srv->rdv));
	uv_mutex_unlock(&g->rdv_lock);
	s->requests = &g->requests;
	s->rdv = &g->rdv;
	s->turn = srv->turn ? &g->turn : NULL;
	s->malformed = st.malformed;
	s->ignored = st.ignored;
	s->send_failed = st.send_failed;
	s->allocations = allocs;
	s->redis = srv->redis ? registry_redis_stats(srv->redis) : NULL;
	s->uptime_s = (uv_now(&srv->loop) - srv->started_ms) / 1000;
	s->version = PUNCH_VERSION;
	s->thread_received = g->received;
	s->n_threads = (size_t)g->n;
}

int server_metrics_open(struct server *srv, const struct server_config *cfg)
{
	char err[256], a[ADDR_STRLEN];

	srv->started_ms = uv_now(&srv->loop);
	if (!cfg->has_metrics)
		return 0;
	srv->metrics = metrics_http_start(
		&srv->loop, (const struct sockaddr *)&cfg->metrics,
		metrics_fill, srv, err, sizeof(err));
	if (!srv->metrics) {
		log_error("%s", err);
		return -1;
	}
	log_info("metrics on http://%s/metrics",
	         addr_str(metrics_http_addr(srv->metrics), a, sizeof(a)));
	return 0;
}
