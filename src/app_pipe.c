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
 * Who speaks first: the QUIC server side writes its header as the link
 * comes up; the client side waits for the server's, then writes its own
 * (the same header either way, so that both sides learn what the other
 * runs before anything else is sent; see speak()).
 *
 * Back-pressure: when quic_write takes less than a chunk (the stream's
 * buffer is full), input pauses and keeps the rest until on_writable.
 * Standard output is written with blocking writes: a slow reader stalls
 * the whole loop, which stops acknowledgements, which slows the peer.
 */
#include <errno.h>
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
	int spoke;                /* our header is written */
	uint8_t pend[PIPE_CHUNK]; /* input quic_write did not take yet */
	size_t pend_len;
	int in_eof, fin_queued;
	int out_acked;            /* the peer acknowledged all of it, FIN too */
	int64_t peer;             /* the peer's stream, -1 until it shows up */
	struct app_header hdr;
	int peer_done;            /* its FIN came and all of it is written */
	int done;
	uint64_t sent, received;
	uv_timer_t end;           /* finish outside ngtcp2's callbacks */
	int end_code;
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
	if (p->out_acked && p->peer_done) {
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

/* Write our header (once), and start sending input unless the peer runs
 * something else (then the header only tells it so). */
static void speak(struct pipe_app *p, int send_input)
{
	int rc;

	if (!p->spoke) {
		p->spoke = 1;
		if (app_header_write(p->env.quic, p->out, "pipe", NULL)) {
			log_error("pipe: cannot write on our stream");
			pipe_end(p, 1);
			return;
		}
		p->env.kick(p->env.ctx);
	}
	if (!send_input || p->input_open || p->done)
		return;
	if ((rc = app_input_open(&p->in, p->env.loop, 0, on_input, p))) {
		log_error("pipe: cannot read standard input: %s", uv_strerror(rc));
		pipe_end(p, 1);
		return;
	}
	p->input_open = 1;
}

/* ---- the peer's stream to our output -------------------------------- */

/* Blocking writes: standard output may be a pipe that someone set
 * non-blocking, so wait for it rather than drop data. */
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

static void pipe_data(struct app *a, int64_t id, const uint8_t *data,
                      size_t len, int fin)
{
	struct pipe_app *p = (struct pipe_app *)a;

	if (p->done)
		return;
	if (p->peer < 0)
		p->peer = id;
	if (id != p->peer) {
		log_debug("pipe: data on unexpected stream %lld dropped", (long long)id);
		return;
	}
	if (!p->hdr.done && len) {
		long used = app_header_feed(&p->hdr, data, len);

		if (used < 0 || (p->hdr.done && strcmp(p->hdr.name, "pipe"))) {
			char name[TERM_ESCAPE_SIZE(APP_HEADER_MAX)];

			log_error("%s is not running punch pipe (it runs %s); run punch pipe on both sides",
			          p->env.peer_id, !p->hdr.done ? "something else" :
			          !strcmp(p->hdr.name, "file") ? "send or recv" :
			          term_str(name, sizeof(name), p->hdr.name));
			if (p->out >= 0)
				speak(p, 0);
			pipe_end(p, 1);
			return;
		}
		data += used;
		len -= (size_t)used;
		if (p->hdr.done && p->out >= 0)
			speak(p, 1);
	}
	if (len && write_all(1, data, len)) {
		log_error("pipe: cannot write to standard output: %s", strerror(errno));
		pipe_end(p, 1);
		return;
	}
	p->received += len;
	if (fin) {
		if (!p->hdr.done) {
			log_error("%s ended its stream before saying what it runs", p->env.peer_id);
			pipe_end(p, 1);
			return;
		}
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
	return (struct app *)p;
}

static void pipe_ready(struct app *a)
{
	struct pipe_app *p = (struct pipe_app *)a;

	p->out = quic_open_stream(p->env.quic, 0);
	if (p->out < 0) {
		log_error("pipe: cannot open a stream");
		pipe_end(p, 1);
		return;
	}
	/* RFC 9000 2.1: bit 0x1 of a stream id is set when the server opened it. */
	if ((p->out & 1) || p->hdr.done)
		speak(p, 1);
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
	free(p);
}

const struct app_ops app_pipe = {
	.name = "pipe",
	.wire = "pipe",
	.create = pipe_create,
	.on_ready = pipe_ready,
	.on_data = pipe_data,
	.on_writable = pipe_writable,
	.on_stream_close = pipe_stream_close,
	.on_interrupt = pipe_interrupt,
	.destroy = pipe_destroy,
};
