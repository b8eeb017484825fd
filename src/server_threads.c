/*
 * The server's threads (server_internal.h): what one hands to another,
 * the timer and the signals, each thread's loop from start to close, and
 * server_run(), which runs them all.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "addr.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "registry_redis.h"
#include "rendezvous_server.h"
#include "server_internal.h"
#include "server_state.h"
#include "server_tcp.h"
#include "stun.h"
#include "turn_server.h"

/* The worker running on this thread, for rdv_send(): the rendezvous
 * answers from whichever thread called it. */
static _Thread_local struct server *current;

/* ---- between threads ----------------------------------------------------- */

/* What a thread hands to thread 0 (its inbox, drained by on_inbox()):
 * bytes for a TCP connection, all of which are thread 0's, and Redis's
 * work, whose connection lives on thread 0's loop. */
enum hop_kind {
	HOP_TCP_SEND,
	HOP_SUBMIT,
	HOP_RELEASE,
};

struct hop {
	struct hop *next;
	enum hop_kind kind;
	int sock;
	struct sockaddr_storage to;
	struct reg_job job;              /* HOP_SUBMIT; msg points at data */
	char id[PUNCH_ID_MAX + 1];       /* HOP_RELEASE */
	uint8_t fp[PUNCH_KEY_FP_LEN];
	uint64_t now_ms;
	size_t len;
	uint8_t data[];
};

static struct hop *hop_new(enum hop_kind kind, size_t len)
{
	struct hop *h = calloc(1, sizeof(*h) + len);

	if (h) {
		h->kind = kind;
		h->len = len;
	}
	return h;
}

/* Hand h to thread 0.  The list is LIFO; on_inbox() turns it round. */
static void hop_post(struct server_group *g, struct hop *h)
{
	uv_mutex_lock(&g->inbox_lock);
	h->next = g->inbox;
	g->inbox = h;
	uv_mutex_unlock(&g->inbox_lock);
	uv_async_send(&g->w[0]->wake);
}

/* Take thread 0's inbox, oldest first. */
static struct hop *hop_take(struct server_group *g)
{
	struct hop *h, *rev = NULL;

	uv_mutex_lock(&g->inbox_lock);
	h = g->inbox;
	g->inbox = NULL;
	uv_mutex_unlock(&g->inbox_lock);
	while (h) {
		struct hop *next = h->next;

		h->next = rev;
		rev = h;
		h = next;
	}
	return rev;
}

/* reg_store_ops over Redis for every thread: thread 0 calls Redis's own;
 * the others hand a copy to thread 0, which answers later (job->out
 * NULL: by rdv_send). */
static void hop_submit(void *store, struct reg_job *job)
{
	struct server *srv = current;
	struct hop *h;

	if (!srv || srv->thread == 0) {
		registry_redis_ops.submit(store, job);
		return;
	}
	/* Out of memory: no answer, and the client sends again. */
	if (!(h = hop_new(HOP_SUBMIT, job->msg_len)))
		return;
	h->job = *job;
	memcpy(h->data, job->msg, job->msg_len);
	h->job.msg = h->data;
	h->job.out = NULL;
	h->job.reply = NULL;
	hop_post(srv->g, h);
}

static void hop_release(void *store, const char *id,
                        const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t now_ms)
{
	struct server *srv = current;
	struct hop *h;

	if (!srv || srv->thread == 0) {
		registry_redis_ops.release(store, id, fp, now_ms);
		return;
	}
	if (!(h = hop_new(HOP_RELEASE, 0)))
		return;
	snprintf(h->id, sizeof(h->id), "%s", id);
	memcpy(h->fp, fp, sizeof(h->fp));
	h->now_ms = now_ms;
	hop_post(srv->g, h);
}

const struct reg_store_ops server_hop_redis_ops = {
	.name = "redis",
	.submit = hop_submit,
	.release = hop_release,
};

/* Thread 0's wake: what the others handed over. */
static void on_inbox(uv_async_t *a)
{
	struct server *srv = a->data;
	struct hop *h = hop_take(srv->g);

	while (h) {
		struct hop *next = h->next;

		if (h->kind == HOP_TCP_SEND && srv->tcp) {
			tcp_server_send_to(srv->tcp, h->sock,
			                   (const struct sockaddr *)&h->to,
			                   h->data, h->len);
		} else if (h->kind != HOP_TCP_SEND && srv->redis) {
			uv_mutex_lock(&srv->g->rdv_lock);
			if (h->kind == HOP_SUBMIT)
				registry_redis_ops.submit(srv->redis, &h->job);
			else
				registry_redis_ops.release(srv->redis, h->id,
				                           h->fp, h->now_ms);
			uv_mutex_unlock(&srv->g->rdv_lock);
		}
		free(h);
		h = next;
	}
}

/* rdv_send_fn: PEER-INFO requests go out at once, one at a time; so do
 * answers to REGISTERs that the shared registry decided later (-registry),
 * which are counted here as handle_one() counts the others.  Called with
 * the rendezvous locked, on any thread: a UDP datagram leaves from this
 * thread's socket of the same index, bound to the same address as the
 * one the client used (its answer may land on another thread, which
 * matches it under the same lock); TCP is thread 0's. */
static void rdv_send(void *ctx, int sock, const struct sockaddr *to,
                     const uint8_t *buf, size_t len)
{
	struct server *srv = current ? current : ctx;
	int type = len >= 2 ? buf[0] << 8 | buf[1] : 0;

	if (tcp_sock_is(sock) && srv->thread != 0) {
		struct hop *h = hop_new(HOP_TCP_SEND, len);

		if (h) {
			h->sock = sock;
			memcpy(&h->to, to, addr_len(to));
			memcpy(h->data, buf, len);
			hop_post(srv->g, h);
		}
		return;
	}
	if (srv->tcp && tcp_sock_is(sock)) {
		tcp_server_send_to(srv->tcp, sock, to, buf, len);
		return;
	}
	if (sock < 0 || sock >= srv->n_socks)
		return;
	if (type & 0x0100) { /* a response (RFC 8489 5: class bit C1) */
		int is_error = (type & 0x0110) == 0x0110;

		metrics_count_reply(&srv->requests, stun_peek_method(buf, len),
		                    buf, len, is_error);
		if (!is_error)
			srv->stats.answered++;
	}
	if (sendto(srv->socks[sock].fd, buf, len, 0, to, addr_len(to)) < 0) {
		log_debug("sendto: %s", strerror(errno));
		srv->stats.send_failed++;
	}
}

/* Save the id bindings if they changed, at most every
 * STATE_SAVE_EVERY_MS unless forced (at shutdown). */
static void bindings_save(struct server *srv, uint64_t now, int force)
{
	struct idbind *ids = rdv_idbind(srv->rdv);
	char err[STATE_PATH_MAX + 128];

	if (!idbind_dirty(ids) ||
	    (!force && now - srv->saved_ms < STATE_SAVE_EVERY_MS))
		return;
	srv->saved_ms = now;
	if (state_bindings_save(srv->state_dir, ids, err, sizeof(err)))
		log_warn("%s", err);
	else
		idbind_clean(ids);
}

/* Thread 0 keeps the rendezvous' deadlines (for every thread: the
 * registry is one); each thread keeps its relay's. */
static void on_timer(uv_timer_t *t)
{
	struct server *srv = t->data;
	uint64_t now = uv_now(&srv->loop);
	uint64_t next = now + TURN_TICK_MAX_MS;

	if (srv->thread == 0) {
		uv_mutex_lock(&srv->g->rdv_lock);
		next = rdv_tick(srv->rdv, now);
		bindings_save(srv, now, 0);
		uv_mutex_unlock(&srv->g->rdv_lock);
	}
	stats_hold(srv);
	if (srv->turn) {
		uint64_t relay_next = turn_tick(srv->turn, now);

		next = relay_next < next ? relay_next : next;
	}
	stats_release(srv);
	uv_timer_start(&srv->timer, on_timer, next > now ? next - now : 1, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct server *srv = h->data;

	log_debug("signal %d: stopping", signum);
	uv_stop(&srv->loop);
}

/* ---- the threads ---------------------------------------------------------- */

static void close_cb(uv_handle_t *h)
{
	(void)h;
}

static void server_close(struct server *srv)
{
	/* First: what still waits for Redis is answered, on open sockets */
	if (srv->thread == 0)
		registry_redis_free(srv->redis);
	for (int i = 0; i < srv->n_socks; i++) {
		uv_close((uv_handle_t *)&srv->socks[i].poll, close_cb);
	}
	/* Before the relay: closing a connection deletes its allocation */
	tcp_server_close(srv->tcp);
	metrics_http_close(srv->metrics);
	turn_server_free(srv->turn); /* closes the relayed sockets */
	free(srv->relays);
	uv_close((uv_handle_t *)&srv->timer, close_cb);
	uv_close((uv_handle_t *)&srv->wake, close_cb);
	if (srv->thread == 0) {
		uv_close((uv_handle_t *)&srv->sigint, close_cb);
		uv_close((uv_handle_t *)&srv->sigterm, close_cb);
	}
	uv_run(&srv->loop, UV_RUN_DEFAULT);
	for (int i = 0; i < srv->n_socks; i++)
		close(srv->socks[i].fd);
	uv_loop_close(&srv->loop);
	tcp_server_free(srv->tcp);
	uv_mutex_destroy(&srv->stats_lock);
	if (srv->thread == 0) {
		/* The other threads are gone: what they handed over last
		 * has nobody to do it. */
		for (struct hop *h = hop_take(srv->g), *next; h; h = next) {
			next = h->next;
			free(h);
		}
		rdv_server_free(srv->rdv);
	}
}

static void on_stop(uv_async_t *a)
{
	struct server *w = a->data;

	uv_stop(&w->loop);
}

/* A worker's loop and the handles every thread has. */
static void worker_init(struct server *w, struct server_group *g, int thread)
{
	uv_loop_init(&w->loop);
	uv_timer_init(&w->loop, &w->timer);
	w->timer.data = w;
	uv_async_init(&w->loop, &w->wake, thread ? on_stop : on_inbox);
	w->wake.data = w;
	uv_mutex_init(&w->stats_lock);
	w->g = g;
	w->thread = thread;
	g->w[thread] = w;
}

static void worker_main(void *arg)
{
	struct server *w = arg;

	current = w;
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* Threads 1..n-1: each opens the sockets thread 0 has, index for index
 * (a socket index names the same address on every thread: rdv_send()),
 * and a relay of its own.  0, or -1 having said why. */
static int workers_open(struct server_group *g, const struct server_config *cfg)
{
	const struct server *w0 = g->w[0];
	char line[256];

	for (int k = 1; k < g->n; k++) {
		struct server *w = calloc(1, sizeof(*w));

		if (!w) {
			log_error("out of memory for thread %d", k);
			return -1;
		}
		worker_init(w, g, k);
		w->rdv = w0->rdv;
		memcpy(w->svc, w0->svc, sizeof(w->svc));
		for (int i = 0; i < w0->n_socks; i++) {
			const struct server_socket *s0 = &w0->socks[i];

			if (server_add_socket(w, &s0->svc->local[s0->index],
			                      &w->svc[s0->svc - w0->svc], s0->index))
				return -1;
		}
		if (cfg->auth_secret && server_turn_open(w, cfg, line, sizeof(line)))
			return -1;
		uv_timer_start(&w->timer, on_timer, 1000, 0);
	}
	return 0;
}

static int workers_start(struct server_group *g)
{
	for (int k = 1; k < g->n; k++) {
		int rc = uv_thread_create(&g->w[k]->tid, worker_main, g->w[k]);

		if (rc) {
			log_error("cannot start thread %d: %s", k, uv_strerror(rc));
			return -1;
		}
		g->w[k]->running = 1;
	}
	return 0;
}

/* Stop threads 1..n-1 and close what they had; thread 0's is next. */
static void workers_stop(struct server_group *g)
{
	for (int k = 1; k < g->n; k++) {
		struct server *w = g->w[k];

		if (w && w->running) {
			uv_async_send(&w->wake);
			uv_thread_join(&w->tid);
			w->running = 0;
		}
	}
}

static void workers_close(struct server_group *g)
{
	for (int k = g->n - 1; k >= 1; k--) {
		if (!g->w[k])
			continue;
		server_close(g->w[k]);
		free(g->w[k]);
		g->w[k] = NULL;
	}
}

static struct server_group *group_new(const struct server_config *cfg)
{
	struct server_group *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->n = cfg->threads > 0 ? cfg->threads : 1;
	uv_mutex_init(&g->rdv_lock);
	uv_mutex_init(&g->inbox_lock);
	if (g->n > 1 && cfg->auth_secret && !(g->turn_group = turn_group_new())) {
		uv_mutex_destroy(&g->rdv_lock);
		uv_mutex_destroy(&g->inbox_lock);
		free(g);
		return NULL;
	}
	return g;
}

static void group_free(struct server_group *g)
{
	turn_group_free(g->turn_group);
	uv_mutex_destroy(&g->rdv_lock);
	uv_mutex_destroy(&g->inbox_lock);
	free(g);
}

int server_run(const struct server_config *cfg)
{
	struct server_group *g = group_new(cfg);
	struct server *srv = g ? calloc(1, sizeof(*srv)) : NULL;
	int rc = 1;

	if (!srv) {
		log_error("out of memory");
		if (g)
			group_free(g);
		return 1;
	}
	worker_init(srv, g, 0);
	current = srv;
	uv_signal_init(&srv->loop, &srv->sigint);
	uv_signal_init(&srv->loop, &srv->sigterm);
	srv->sigint.data = srv->sigterm.data = srv;
	uv_signal_start(&srv->sigint, on_signal, SIGINT);
	uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
	srv->rdv = rdv_server_new(cfg->max_peers ? cfg->max_peers :
	                                           REGISTRY_DEFAULT_MAX,
	                          rdv_send, srv);
	if (!srv->rdv) {
		log_error("out of memory for %zu registrations", cfg->max_peers);
		goto out;
	}
	if (server_open(srv, cfg) || workers_open(g, cfg) ||
	    workers_start(g))
		goto out;
	log_debug("%d thread%s", g->n, g->n > 1 ? "s, one socket each per address (SO_REUSEPORT)" : "");
	/* The loop's clock is milliseconds since an arbitrary start; the
	 * timer is re-armed for the next deadline at each tick. */
	uv_timer_start(&srv->timer, on_timer, 1000, 0);

	uv_run(&srv->loop, UV_RUN_DEFAULT);
	workers_stop(g);
	uv_mutex_lock(&g->rdv_lock);
	bindings_save(srv, uv_now(&srv->loop), 1);
	uv_mutex_unlock(&g->rdv_lock);

	server_log_stop(srv);
	rc = 0;
out:
	workers_stop(g);
	workers_close(g);
	server_close(srv);
	free(srv);
	group_free(g);
	return rc;
}
