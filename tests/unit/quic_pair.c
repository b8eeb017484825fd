/*
 * quic_pair: the fake network and the recording ends (quic_pair.h).
 */
#define _XOPEN_SOURCE 700
#include "quic_pair.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	CHUNK = 65536,             /* a source's quic_write size */
	MS_NS = 1000000,
	SAME_TIME_MAX = 64,        /* steps at one instant before a nudge */
};

/* ---- the network -------------------------------------------------------- */

static uint32_t qp_rnd(struct qp *p)
{
	/* xorshift32: the same seed, the same losses */
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 17;
	p->rng ^= p->rng << 5;
	return p->rng;
}

static int qp_roll(struct qp *p, unsigned pct)
{
	return pct && qp_rnd(p) % 100 < pct;
}

static void qp_enqueue(struct qp *p, int to, const uint8_t *buf, size_t len)
{
	struct qp_dgram *d;
	uint64_t delay = p->net.delay_ns;

	if (p->nq == QP_QUEUE_MAX || len > QP_DGRAM_MAX) {
		p->overflowed++;
		return;
	}
	d = &p->queue[p->nq++];
	d->at = p->now + delay;
	if (qp_roll(p, p->net.reorder_pct)) {
		d->at += 1 + qp_rnd(p) % (3 * delay);
		p->reordered++;
	}
	d->seq = p->seq++;
	d->to = to;
	d->len = len;
	memcpy(d->data, buf, len);
}

static void qp_on_send(void *ctx, const struct sockaddr *to,
                       const uint8_t *buf, size_t len)
{
	struct qp_end *e = ctx;
	struct qp *p = e->pair;

	(void)to;
	p->sent++;
	if (p->cut || qp_roll(p, p->net.loss_pct)) {
		p->lost++;
		return;
	}
	qp_enqueue(p, !e->index, buf, len);
	if (qp_roll(p, p->net.dup_pct)) {
		p->duplicated++;
		qp_enqueue(p, !e->index, buf, len);
	}
}

/* ---- what each end sees ------------------------------------------------- */

uint8_t qp_pattern(int64_t id, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ull ^ (uint64_t)id << 56;

	return (uint8_t)(x >> 29);
}

struct qp_stream *qp_stream(struct qp_end *e, int64_t id)
{
	struct qp_stream *free_slot = NULL;

	for (size_t i = 0; i < QP_STREAMS_MAX; i++) {
		struct qp_stream *s = &e->streams[i];

		if (s->used && s->id == id)
			return s;
		if (!s->used && !free_slot)
			free_slot = s;
	}
	if (!free_slot) {
		e->stream_overflow++;
		return NULL;
	}
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->used = 1;
	free_slot->id = id;
	return free_slot;
}

static int qp_on_verify(void *ctx, const uint8_t fp[IDENTITY_FP_LEN])
{
	struct qp_end *e = ctx;

	e->verify_calls++;
	if (e->pinned && memcmp(fp, e->pin, IDENTITY_FP_LEN)) {
		e->verify_refused++;
		return -1;
	}
	return 0;
}

static void qp_on_ready(void *ctx)
{
	struct qp_end *e = ctx;

	e->ready = 1;
	e->ready_at = e->pair->now;
}

static void qp_on_data(void *ctx, int64_t id, const uint8_t *data, size_t len,
                       int fin)
{
	struct qp_end *e = ctx;
	struct qp_stream *s = qp_stream(e, id);

	if (!s)
		return;
	for (size_t i = 0; i < len; i++)
		s->bad += data[i] != qp_pattern(id, s->rx + i);
	s->rx += len;
	s->fin |= fin;
	if (e->defer_credit)
		s->unconsumed += len;
	else
		quic_consume(e->q, id, len);
}

static void qp_on_writable(void *ctx, int64_t id)
{
	struct qp_stream *s = qp_stream(ctx, id);

	if (s)
		s->writable++;
}

static void qp_on_stream_close(void *ctx, int64_t id, uint64_t app_error)
{
	struct qp_stream *s = qp_stream(ctx, id);

	if (!s)
		return;
	s->closed = 1;
	s->close_code = app_error;
}

static void qp_on_stream_reset(void *ctx, int64_t id, uint64_t app_error)
{
	struct qp_stream *s = qp_stream(ctx, id);

	if (!s)
		return;
	s->reset++;
	s->reset_code = app_error;
}

static void qp_on_stop_sending(void *ctx, int64_t id, uint64_t app_error)
{
	struct qp_stream *s = qp_stream(ctx, id);

	if (!s)
		return;
	s->stopped++;
	s->stop_code = app_error;
}

static void qp_on_closed(void *ctx, const char *reason)
{
	struct qp_end *e = ctx;

	e->closed++;
	e->closed_at = e->pair->now;
	snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
}

static const struct quic_callbacks qp_cbs = {
	.send = qp_on_send,
	.verify_peer = qp_on_verify,
	.on_ready = qp_on_ready,
	.on_stream_data = qp_on_data,
	.on_writable = qp_on_writable,
	.on_stream_close = qp_on_stream_close,
	.on_stream_reset = qp_on_stream_reset,
	.on_stop_sending = qp_on_stop_sending,
	.on_closed = qp_on_closed,
};

/* ---- sources ------------------------------------------------------------- */

static void qp_pump(struct qp_end *e, struct qp_stream *s)
{
	static uint8_t buf[CHUNK];

	while (s->written < s->total) {
		uint64_t left = s->total - s->written;
		size_t n = left < CHUNK ? (size_t)left : CHUNK;
		long took;

		for (size_t i = 0; i < n; i++)
			buf[i] = qp_pattern(s->id, s->written + i);
		took = quic_write(e->q, s->id, buf, n);
		if (took < 0) {
			s->sending = 0;  /* the stream is gone */
			return;
		}
		s->written += (uint64_t)took;
		if ((size_t)took < n)
			return;
	}
	if (s->sending == 2 && !s->fin_done && !quic_write_fin(e->q, s->id))
		s->fin_done = 1;
}

void qp_send(struct qp_end *e, int64_t id, uint64_t total, int fin)
{
	struct qp_stream *s = qp_stream(e, id);

	if (!s)
		return;
	s->total = total;
	s->sending = fin ? 2 : 1;
	qp_pump(e, s);
}

int64_t qp_open(struct qp_end *e, int bidi, uint64_t total, int fin)
{
	int64_t id = quic_open_stream(e->q, bidi);

	if (id >= 0)
		qp_send(e, id, total, fin);
	return id;
}

void qp_consume(struct qp_end *e, int64_t id, uint64_t n)
{
	struct qp_stream *s = qp_stream(e, id);

	if (s && n > s->unconsumed)
		n = s->unconsumed;
	if (s)
		s->unconsumed -= n;
	quic_consume(e->q, s && s->closed ? -1 : id, (size_t)n);
}

/* ---- set-up ------------------------------------------------------------- */

static int qp_end_init(struct qp *p, int i, const char *ip)
{
	struct qp_end *e = &p->e[i];
	char err[256];

	e->pair = p;
	e->index = i;
	e->addr = (struct sockaddr_storage){ 0 };
	((struct sockaddr_in *)&e->addr)->sin_family = AF_INET;
	((struct sockaddr_in *)&e->addr)->sin_port = htons(4000);
	inet_pton(AF_INET, ip, &((struct sockaddr_in *)&e->addr)->sin_addr);
	snprintf(e->dir, sizeof(e->dir), "/tmp/punch-qp.XXXXXX");
	if (!mkdtemp(e->dir)) {
		e->dir[0] = 0;
		return -1;
	}
	/* identity_load() finds its folder through the environment. */
	setenv("XDG_CONFIG_HOME", e->dir, 1);
	if (identity_load(&e->id, err, sizeof(err))) {
		fprintf(stderr, "quic_pair: identity: %s\n", err);
		return -1;
	}
	return 0;
}

static int qp_quic_new(struct qp *p, int i, const struct quic_limits *lim)
{
	struct qp_end *e = &p->e[i];
	char err[256];

	e->q = quic_new(i == QP_CLIENT, &e->id, (struct sockaddr *)&e->addr,
	                (struct sockaddr *)&p->e[!i].addr, lim, &qp_cbs, e,
	                p->now, err, sizeof(err));
	if (!e->q)
		fprintf(stderr, "quic_pair: quic_new: %s\n", err);
	return e->q ? 0 : -1;
}

/* The network, and an identity for each end. */
static int qp_net_init(struct qp *p, const struct qp_net *net)
{
	memset(p, 0, sizeof(*p));
	if (net)
		p->net = *net;
	if (!p->net.delay_ns)
		p->net.delay_ns = MS_NS;
	p->rng = p->net.seed ? p->net.seed : 1;
	p->now = 1000ull * MS_NS;
	p->deadline[0] = p->deadline[1] = UINT64_MAX;
	p->queue = calloc(QP_QUEUE_MAX, sizeof(*p->queue));
	if (!p->queue || qp_end_init(p, QP_CLIENT, "192.0.2.1") ||
	    qp_end_init(p, QP_SERVER, "192.0.2.2"))
		return -1;
	return 0;
}

int qp_init(struct qp *p, const struct qp_net *net,
            const struct quic_limits *client_lim,
            const struct quic_limits *server_lim)
{
	if (qp_net_init(p, net) || qp_quic_new(p, QP_SERVER, server_lim) ||
	    qp_quic_new(p, QP_CLIENT, client_lim)) {
		qp_free(p);
		return -1;
	}
	return 0;
}

static void qp_link_finish(void *ctx, int exit_code)
{
	struct qp_end *e = ctx;

	e->finished++;
	e->finish_code = exit_code;
}

static void qp_link_kick(void *ctx)
{
	(void)ctx;  /* both ends are ticked at every step */
}

static int qp_link_new(struct qp *p, int i, const struct app_ops *ops)
{
	static const char *const names[2] = { "alice", "bob" };
	struct qp_end *e = &p->e[i];
	struct app_args args = { .argc = 0 };
	struct link_env env = {
		.id = &e->id,
		.peer_id = names[!i],
		.pinned = p->e[!i].id.fp,
		.is_client = i == QP_CLIENT,
		.local = e->addr,
		.remote = p->e[!i].addr,
		.send = qp_on_send,
		.finish = qp_link_finish,
		.kick = qp_link_kick,
		.ctx = e,
	};
	char err[256];

	e->l = link_new(&env, ops, &args, p->now, err, sizeof(err));
	if (!e->l)
		fprintf(stderr, "quic_pair: link_new: %s\n", err);
	return e->l ? 0 : -1;
}

int qp_init_links(struct qp *p, const struct qp_net *net,
                  const struct app_ops *ops[2])
{
	if (qp_net_init(p, net) || qp_link_new(p, QP_SERVER, ops[QP_SERVER]) ||
	    qp_link_new(p, QP_CLIENT, ops[QP_CLIENT])) {
		qp_free(p);
		return -1;
	}
	return 0;
}

static int qp_rm(const char *path, const struct stat *sb, int flag,
                 struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

void qp_free(struct qp *p)
{
	for (int i = 0; i < 2; i++) {
		struct qp_end *e = &p->e[i];

		if (e->l)
			link_free(e->l);
		else
			quic_free(e->q);
		e->q = NULL;
		e->l = NULL;
		if (e->id.key || e->id.crt)
			identity_free(&e->id);
		if (e->dir[0])
			nftw(e->dir, qp_rm, 8, FTW_DEPTH | FTW_PHYS);
		e->dir[0] = 0;
	}
	free(p->queue);
	p->queue = NULL;
}

/* ---- the clock ---------------------------------------------------------- */

static int qp_by_time(const void *a, const void *b)
{
	const struct qp_dgram *x = a, *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Deliver every datagram due by now, in the order they fall due. */
static void qp_deliver(struct qp *p)
{
	static struct qp_dgram due[QP_QUEUE_MAX];
	size_t n = 0;

	for (size_t i = 0; i < p->nq;) {
		if (p->queue[i].at > p->now) {
			i++;
			continue;
		}
		due[n++] = p->queue[i];
		p->queue[i] = p->queue[--p->nq];
	}
	qsort(due, n, sizeof(due[0]), qp_by_time);
	for (size_t i = 0; i < n; i++) {
		struct qp_end *e = &p->e[due[i].to];
		const struct sockaddr *from =
			(const struct sockaddr *)&p->e[!e->index].addr;

		p->delivered++;
		if (e->l)
			link_on_datagram(e->l, from, due[i].data, due[i].len,
			                 p->now);
		else if (e->q)
			quic_on_datagram(e->q, from, due[i].data, due[i].len,
			                 p->now);
	}
}

static uint64_t qp_next_event(const struct qp *p)
{
	uint64_t next = p->deadline[0] < p->deadline[1] ? p->deadline[0] :
	                                                  p->deadline[1];

	for (size_t i = 0; i < p->nq; i++)
		if (p->queue[i].at < next)
			next = p->queue[i].at;
	return next;
}

int qp_step(struct qp *p)
{
	static int same_time;
	uint64_t next = qp_next_event(p);

	if (next == UINT64_MAX)
		return -1;
	if (next > p->now) {
		p->now = next;
		same_time = 0;
	} else if (++same_time > SAME_TIME_MAX) {
		/* A deadline that stays in the past would spin: nudge the
		 * clock rather than loop at one instant. */
		p->now += 1000;
		same_time = 0;
	}
	qp_deliver(p);
	for (int i = 0; i < 2; i++) {
		struct qp_end *e = &p->e[i];

		for (size_t k = 0; k < QP_STREAMS_MAX && e->q; k++)
			if (e->streams[k].used && e->streams[k].sending)
				qp_pump(e, &e->streams[k]);
		p->deadline[i] = e->l ? link_tick(e->l, p->now) :
		                 e->q ? quic_tick(e->q, p->now) :
		                        UINT64_MAX;
	}
	return 0;
}

int qp_run(struct qp *p, int (*done)(struct qp *p, void *arg), void *arg,
           uint64_t max_ns)
{
	uint64_t end = p->now + max_ns;

	for (long steps = 0; steps < QP_STEPS_MAX; steps++) {
		if (done && done(p, arg))
			return 1;
		/* Tick once at once, so that what the test just queued goes. */
		if (steps == 0) {
			p->deadline[0] = p->deadline[1] = p->now;
		}
		if (qp_next_event(p) > end) {
			p->now = end;
			break;
		}
		if (qp_step(p))
			break;
	}
	return done && done(p, arg);
}

int qp_both_ready(struct qp *p, void *arg)
{
	(void)arg;
	return p->e[0].ready && p->e[1].ready;
}

int qp_both_closed(struct qp *p, void *arg)
{
	(void)arg;
	return p->e[0].closed && p->e[1].closed;
}
