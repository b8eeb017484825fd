/*
 * punch pipe: standard input goes to the peer's standard output, both ways.
 *
 * Each side writes its input on a unidirectional stream of its own, after
 * the header "punch/1 pipe", and ends it with FIN at the end of input.  A
 * side is done when the peer has acknowledged all of its stream, FIN
 * included (on_stream_close), and the peer's stream has ended and every
 * byte of it is on standard output.  Then it closes the link with no error
 * and exits 0; a link that ends any other way exits 1, so the exit status
 * says whether everything arrived, both ways.
 *
 * The stream is the link's hello stream (app.h): input starts once both
 * sides know that the other runs pipe.  A peer that closes the link before
 * its stream has ended left in the middle: exit 1, saying so.
 *
 * Back-pressure: when quic_write takes less than a chunk (the stream's
 * buffer is full), input pauses and keeps the rest until on_writable.
 * Toward standard output, the peer gets credit back (quic_consume) only
 * for bytes written there; a pipe or terminal is written through libuv,
 * which queues what its reader has not taken yet, so that a stalled reader
 * stops the peer (QUIC flow control, at most QUIC_RX_STREAM_WINDOW_MAX
 * waiting here) without stopping the loop: acknowledgements and
 * keep-alives go on, and the link outlives the stall.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "log.h"
#include "term.h"

enum {
	PIPE_CHUNK = sizeof(((struct app_input *)0)->buf),
};

struct pipe_app {
	struct app_env env;
	struct app_input in;
	int input_open;
	int64_t out;              /* our stream, -1 until the link is up */
	uint8_t pend[PIPE_CHUNK]; /* input quic_write did not take yet */
	size_t pend_len;
	int in_eof, fin_queued;
	int out_acked;            /* the peer acknowledged all of it, FIN too */
	int64_t peer;             /* the peer's stream, -1 until the link is up */
	int peer_done;            /* its FIN came and all of it is written */
	int done;
	uint64_t sent, received;
	uv_timer_t end;           /* finish outside ngtcp2's callbacks */
	int end_code;
	/* standard output */
	union {
		uv_pipe_t pipe;
		uv_tty_t tty;
	} oh;
	uv_stream_t *os;          /* &oh, or NULL: plain blocking writes */
	int out_fl;               /* its file status flags, to put back */
	size_t out_queued;        /* bytes in uv_write, not yet written */
	int link_closed;          /* by the peer, cleanly: flush, then end */
};

/* A write to standard output that libuv queued. */
struct pipe_write {
	uv_write_t req;
	struct pipe_app *p;
	int64_t id;
	size_t len;
	uint8_t data[];
};

static void on_end(uv_timer_t *t)
{
	struct pipe_app *p = t->data;

	p->env.finish(p->env.ctx, p->end_code);
}

/* Finish once, from the loop rather than from inside a QUIC callback, and
 * after a kick so that what is queued (acknowledgements) goes out first. */
static void pipe_end(struct pipe_app *p, int code)
{
	if (p->done)
		return;
	p->done = 1;
	p->end_code = code;
	if (p->input_open)
		app_input_pause(&p->in);
	p->env.kick(p->env.ctx);
	uv_timer_start(&p->end, on_end, 0, 0);
}

static void maybe_done(struct pipe_app *p)
{
	if (p->out_acked && p->peer_done && !p->out_queued) {
		log_debug("pipe: sent %llu bytes, received %llu; both acknowledged",
		          (unsigned long long)p->sent,
		          (unsigned long long)p->received);
		pipe_end(p, 0);
	}
}

/* ---- our input to our stream ------------------------------------------- */

static void queue_fin(struct pipe_app *p)
{
	if (p->fin_queued || p->pend_len || !p->in_eof || p->out < 0)
		return;
	p->fin_queued = 1;
	quic_write_fin(p->env.quic, p->out);
	p->env.kick(p->env.ctx);
}

static void send_chunk(struct pipe_app *p, const uint8_t *data, size_t len)
{
	long n = quic_write(p->env.quic, p->out, data, len);

	if (n < 0) {
		log_error("pipe: our stream to %s is gone", p->env.peer_id);
		pipe_end(p, 1);
		return;
	}
	p->sent += (uint64_t)n;
	if ((size_t)n < len) {
		/* The stream's buffer is full: keep the rest, stop reading. */
		memmove(p->pend, data + n, len - (size_t)n);
		p->pend_len = len - (size_t)n;
		app_input_pause(&p->in);
	}
	p->env.kick(p->env.ctx);
}

static void on_input(void *ctx, const uint8_t *data, size_t len)
{
	struct pipe_app *p = ctx;

	if (p->done)
		return;
	if (!len) {
		p->in_eof = 1;
		queue_fin(p);
		return;
	}
	send_chunk(p, data, len);
}

static void pipe_writable(struct app *a, int64_t id)
{
	struct pipe_app *p = (struct pipe_app *)a;
	size_t len = p->pend_len;

	if (id != p->out || !len || p->done)
		return;
	p->pend_len = 0;
	send_chunk(p, p->pend, len);  /* memmove copes with the overlap */
	if (!p->pend_len) {
		if (p->in_eof)
			queue_fin(p);
		else
			app_input_resume(&p->in);
	}
}

/* Start sending input. */
static void pipe_start_input(struct pipe_app *p)
{
	int rc;

	if (p->input_open || p->done)
		return;
	if ((rc = app_input_open(&p->in, p->env.loop, 0, on_input, p))) {
		log_error("pipe: cannot read standard input: %s", uv_strerror(rc));
		pipe_end(p, 1);
		return;
	}
	p->input_open = 1;
}

/* ---- the peer's stream to our output -------------------------------- */

/* Blocking writes, for a regular file (or what libuv cannot take): standard
 * output may be a pipe that someone set non-blocking, so wait for it rather
 * than drop data. */
static int write_all(int fd, const uint8_t *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			poll(&pfd, 1, -1);
			continue;
		}
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A pipe or a terminal on standard output goes through libuv. */
static void out_open(struct pipe_app *p)
{
	uv_handle_type t = uv_guess_handle(1);

	p->out_fl = fcntl(1, F_GETFL);
	if (t == UV_NAMED_PIPE &&
	    uv_pipe_init(p->env.loop, &p->oh.pipe, 0) == 0) {
		if (uv_pipe_open(&p->oh.pipe, 1) == 0)
			p->os = (uv_stream_t *)&p->oh.pipe;
		else
			uv_close((uv_handle_t *)&p->oh.pipe, NULL);
	} else if (t == UV_TTY && uv_tty_init(p->env.loop, &p->oh.tty, 1, 0) == 0) {
		p->os = (uv_stream_t *)&p->oh.tty;
	}
}

static void out_failed(struct pipe_app *p, int err)
{
	if (p->done)
		return;
	log_error("pipe: cannot write to standard output: %s", uv_strerror(err));
	pipe_end(p, 1);
}

static void on_out_write(uv_write_t *req, int status)
{
	struct pipe_write *w = (struct pipe_write *)req;
	struct pipe_app *p = w->p;

	p->out_queued -= w->len;
	quic_consume(p->env.quic, w->id, w->len);
	p->env.kick(p->env.ctx);
	free(w);
	if (status < 0 && status != UV_ECANCELED)
		out_failed(p, status);
	else if (status == 0 && !p->done && p->link_closed && !p->out_queued)
		pipe_end(p, 0);
	else if (status == 0 && !p->done)
		maybe_done(p);
}

/* The peer's bytes to standard output; credit back as they are written. */
static void out_write(struct pipe_app *p, int64_t id, const uint8_t *data,
                      size_t len)
{
	struct pipe_write *w;
	uv_buf_t b;
	int n = 0;

	if (!p->os) {
		if (write_all(1, data, len))
			out_failed(p, -errno);
		quic_consume(p->env.quic, id, len);
		return;
	}
	if (!p->out_queued) {
		b = uv_buf_init((char *)data, (unsigned)len);
		n = uv_try_write(p->os, &b, 1);
		if (n == UV_EAGAIN)
			n = 0;
		if (n < 0) {
			quic_consume(p->env.quic, id, len);
			out_failed(p, n);
			return;
		}
		quic_consume(p->env.quic, id, (size_t)n);
	}
	if ((size_t)n == len)
		return;
	len -= (size_t)n;
	if (!(w = malloc(sizeof(*w) + len))) {
		quic_consume(p->env.quic, id, len);
		out_failed(p, UV_ENOMEM);
		return;
	}
	w->p = p;
	w->id = id;
	w->len = len;
	memcpy(w->data, data + n, len);
	b = uv_buf_init((char *)w->data, (unsigned)len);
	if ((n = uv_write(&w->req, p->os, &b, 1, on_out_write))) {
		free(w);
		quic_consume(p->env.quic, id, len);
		out_failed(p, n);
		return;
	}
	p->out_queued += len;
}

static void pipe_data(struct app *a, int64_t id, const uint8_t *data,
                      size_t len, int fin)
{
	struct pipe_app *p = (struct pipe_app *)a;

	if (p->done || id != p->peer) {
		if (!p->done)
			log_debug("pipe: data on unexpected stream %lld dropped", (long long)id);
		quic_consume(p->env.quic, id, len);
		return;
	}
	if (len)
		out_write(p, id, data, len);
	if (p->done)
		return;
	p->received += len;
	if (fin) {
		p->peer_done = 1;
		maybe_done(p);
	}
}

static void pipe_stream_close(struct app *a, int64_t id, uint64_t err)
{
	struct pipe_app *p = (struct pipe_app *)a;

	if (id != p->out || p->done)
		return;
	if (err) {
		log_error("%s stopped our stream (error %llu)", p->env.peer_id,
		          (unsigned long long)err);
		pipe_end(p, 1);
		return;
	}
	p->out_acked = 1;
	maybe_done(p);
}

/* ---- life cycle ----------------------------------------------------------- */

static struct app *pipe_create(const struct app_env *env,
                               const struct app_args *args)
{
	struct pipe_app *p = calloc(1, sizeof(*p));

	(void)args;
	if (!p)
		return NULL;
	/* A reader that goes away is an error we report, not a signal that
	 * kills us without a word. */
	signal(SIGPIPE, SIG_IGN);
	p->env = *env;
	p->out = p->peer = -1;
	uv_timer_init(env->loop, &p->end);
	p->end.data = p;
	out_open(p);
	return (struct app *)p;
}

static void pipe_ready(struct app *a, const struct app_hello *h)
{
	struct pipe_app *p = (struct pipe_app *)a;

	p->out = h->out;
	p->peer = h->in;
	pipe_start_input(p);
}

/* The peer closed the link.  Done with its stream: an acknowledgement
 * means only that its bytes reached us, so write out what waits before
 * ending.  Not done: it left in the middle. */
static void pipe_closed(struct app *a)
{
	struct pipe_app *p = (struct pipe_app *)a;

	if (p->done)
		return;
	if (!p->peer_done) {
		log_error("%s closed the link before the end of its input, after %llu bytes; some may be missing",
		          p->env.peer_id, (unsigned long long)p->received);
		pipe_end(p, 1);
		return;
	}
	p->link_closed = 1;
	if (!p->out_queued)
		pipe_end(p, 0);
}

/* Ctrl-C: what has not arrived will not, so say so with the exit status
 * (and the peer, which sees an application error, exits 1). */
static void pipe_interrupt(struct app *a)
{
	struct pipe_app *p = (struct pipe_app *)a;

	fprintf(stderr, "punch pipe: interrupted after sending %llu bytes and receiving %llu\n",
	        (unsigned long long)p->sent, (unsigned long long)p->received);
	pipe_end(p, 130);
}

static void pipe_destroy(struct app *a)
{
	struct pipe_app *p = (struct pipe_app *)a;

	if (p->input_open)
		app_input_close(&p->in);
	/* libuv made a pipe non-blocking; whoever shares it gets it back as
	 * it was. */
	if (p->os && p->out_fl >= 0)
		fcntl(1, F_SETFL, p->out_fl);
	free(p);
}

const struct app_ops app_pipe = {
	.name = "pipe",
	.wire = "pipe",
	.peer_cmd = "pipe",
	.hint = "run punch pipe on both sides",
	.create = pipe_create,
	.on_ready = pipe_ready,
	.on_data = pipe_data,
	.on_writable = pipe_writable,
	.on_stream_close = pipe_stream_close,
	.on_interrupt = pipe_interrupt,
	.destroy = pipe_destroy,
	.on_closed = pipe_closed,
	.defers_credit = 1,
};
