/*
 * A fake struct quic for the link and app tests: every function of quic.h,
 * with no network.  Streams open with RFC 9000 2.1's ids, what the code
 * under test writes is kept per stream, and the test drives the link by
 * calling the callbacks quic_new was given (fq->cb, fq->ctx), as the real
 * quic.c would: the link comes up, the peer's stream data arrives, the
 * peer closes.
 *
 * Defining these here, in the test's own object, keeps quic.o out of the
 * link: the linker takes no member of punchcore whose symbols are already
 * defined.
 */
#ifndef PUNCH_TEST_FAKE_QUIC_H
#define PUNCH_TEST_FAKE_QUIC_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quic.h"

enum { FQ_STREAMS = 16,
       FQ_STREAM_BYTES = 8192 };

struct fq_stream {
	int64_t id;
	char buf[FQ_STREAM_BYTES];
	size_t len;
	int fin;
};

struct quic {
	int is_client;
	const struct quic_callbacks *cb;
	void *ctx;
	int ready, closed;
	uint64_t close_error;     /* what the code under test closed with */
	uint64_t peer_app_error;
	int64_t next_uni, next_bidi;
	struct fq_stream s[FQ_STREAMS];
	int n;
	size_t consumed;
};

static struct quic *fq; /* the one quic_new made last */

static struct fq_stream *fq_stream(struct quic *q, int64_t id)
{
	for (int i = 0; i < q->n; i++)
		if (q->s[i].id == id)
			return &q->s[i];
	return NULL;
}

struct quic *quic_new(int is_client, const struct identity *id,
                      const struct sockaddr *local,
                      const struct sockaddr *remote,
                      const struct quic_limits *lim,
                      const struct quic_callbacks *cb, void *ctx,
                      uint64_t now_ns, char *err, size_t errlen)
{
	struct quic *q = calloc(1, sizeof(*q));

	(void)id, (void)local, (void)remote, (void)lim, (void)now_ns;
	(void)err, (void)errlen;
	q->is_client = is_client;
	q->cb = cb;
	q->ctx = ctx;
	q->peer_app_error = QUIC_NO_APP_ERROR;
	/* RFC 9000 2.1: 0x1 server-initiated, 0x2 unidirectional. */
	q->next_uni = is_client ? 2 : 3;
	q->next_bidi = is_client ? 0 : 1;
	fq = q;
	return q;
}

void quic_free(struct quic *q)
{
	if (fq == q)
		fq = NULL;
	free(q);
}

void quic_on_datagram(struct quic *q, const struct sockaddr *from,
                      const uint8_t *buf, size_t len, uint64_t now_ns)
{
	(void)q, (void)from, (void)buf, (void)len, (void)now_ns;
}

uint64_t quic_tick(struct quic *q, uint64_t now_ns)
{
	(void)q, (void)now_ns;
	return UINT64_MAX;
}

int quic_ready(const struct quic *q)
{
	return q->ready && !q->closed;
}

uint64_t quic_dropped_offpath(const struct quic *q)
{
	(void)q;
	return 0;
}

int64_t quic_open_stream(struct quic *q, int bidi)
{
	int64_t *next = bidi ? &q->next_bidi : &q->next_uni;
	struct fq_stream *s;

	if (q->n == FQ_STREAMS)
		return -1;
	s = &q->s[q->n++];
	memset(s, 0, sizeof(*s));
	s->id = *next;
	*next += 4;
	return s->id;
}

int quic_stream_is_ours(const struct quic *q, int64_t id)
{
	return (int)(id & 1) == !q->is_client;
}

long quic_write(struct quic *q, int64_t id, const void *data, size_t len)
{
	struct fq_stream *s = fq_stream(q, id);

	if (!s || s->fin)
		return -1;
	if (len > sizeof(s->buf) - s->len)
		len = sizeof(s->buf) - s->len;
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	return (long)len;
}

int quic_write_fin(struct quic *q, int64_t id)
{
	struct fq_stream *s = fq_stream(q, id);

	if (!s)
		return -1;
	s->fin = 1;
	return 0;
}

void quic_consume(struct quic *q, int64_t id, size_t n)
{
	(void)id;
	q->consumed += n;
}

size_t quic_unacked(const struct quic *q, int64_t id)
{
	(void)q, (void)id;
	return 0;
}

uint64_t quic_peer_app_error(const struct quic *q)
{
	return q->peer_app_error;
}

void quic_close(struct quic *q, uint64_t app_error, const char *reason,
                uint64_t now_ns)
{
	(void)reason, (void)now_ns;
	if (q->closed)
		return;
	q->closed = 1;
	q->close_error = app_error;
	q->cb->on_closed(q->ctx, NULL);
}

int quic_export(struct quic *q, const char *label, uint8_t *out, size_t len)
{
	(void)q, (void)label, (void)out, (void)len;
	return -1;
}

/* ---- the test's side: what the peer does --------------------------------- */

static void fq_up(void)
{
	fq->ready = 1;
	fq->cb->on_ready(fq->ctx);
}

static void fq_peer_data(int64_t id, const char *data, size_t len, int fin)
{
	fq->cb->on_stream_data(fq->ctx, id, (const uint8_t *)data, len, fin);
}

static void fq_peer_str(int64_t id, const char *s, int fin)
{
	fq_peer_data(id, s, strlen(s), fin);
}

/* The stream is over, with the peer's error (0: none). */
static void fq_stream_closed(int64_t id, uint64_t err)
{
	fq->cb->on_stream_close(fq->ctx, id, err);
}

/* The peer closes the link: reason NULL is a clean close (error 0). */
static void fq_peer_close(const char *reason)
{
	fq->closed = 1;
	fq->cb->on_closed(fq->ctx, reason);
}

/* What the code under test wrote on stream id, NUL-terminated ("" if the
 * stream is not open). */
static const char *fq_written(int64_t id)
{
	struct fq_stream *s = fq_stream(fq, id);

	if (!s)
		return "";
	s->buf[s->len < sizeof(s->buf) ? s->len : sizeof(s->buf) - 1] = '\0';
	return s->buf;
}

#endif
