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

/* Three lifecycles, each on its own: our input to our stream, the peer's
 * stream to our output, and the app's. */
enum pipe_out_state {
	PIPE_OUT_WAITING, /* for the link; standard input not open */
	PIPE_OUT_READING, /* standard input open, queued on our stream */
	PIPE_OUT_EOF,     /* end of input; what is pending waits for room */
	PIPE_OUT_FIN,     /* FIN queued */
	PIPE_OUT_ACKED,   /* the peer acknowledged all of it, FIN too */
};

enum pipe_in_state {
	PIPE_IN_OPEN,     /* the peer's bytes go to standard output */
	PIPE_IN_FIN,      /* its FIN came */
	PIPE_IN_CLOSED,   /* and then it closed the link: flush, then end */
};

enum pipe_state {
	PIPE_RUNNING,
	PIPE_ENDING,      /* end_code is set; the finish timer runs */
};

struct pipe_app {
	struct app_env env;
	struct app_input in;
	enum pipe_out_state out_state;
	int64_t out;              /* our stream, -1 until the link is up */
	uint8_t pend[PIPE_CHUNK]; /* input quic_write did not take yet */
	size_t pend_len;
	int64_t peer;             /* the peer's stream, -1 until the link is up */
	enum pipe_in_state in_state;
	enum pipe_state state;
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
};

/* A write to standard output that libuv queued. */
struct pipe_write {
	uv_write_t req;
	struct pipe_app *p;
	int64_t id;
	size_t len;
	uint8_t data[];
};

static const char *pipe_out_state_str(enum pipe_out_state st)
{
	switch (st) {
	case PIPE_OUT_WAITING: return "waiting";
	case PIPE_OUT_READING: return "reading";
	case PIPE_OUT_EOF: return "eof";
	case PIPE_OUT_FIN: return "fin";
	case PIPE_OUT_ACKED: return "acked";
	}
	return "?";
}

static const char *pipe_in_state_str(enum pipe_in_state st)
{
	switch (st) {
	case PIPE_IN_OPEN: return "open";
	case PIPE_IN_FIN: return "fin";
	case PIPE_IN_CLOSED: return "closed";
	}
	return "?";
}

static const char *pipe_state_str(enum pipe_state st)
{
	switch (st) {
	case PIPE_RUNNING: return "running";
	case PIPE_ENDING: return "ending";
	}
	return "?";
}

/* Every state change goes through these, and is logged old -> new. */
static void pipe_set_out_state(struct pipe_app *p, enum pipe_out_state st)
{
	log_debug("pipe: ours %s -> %s", pipe_out_state_str(p->out_state),
	          pipe_out_state_str(st));
	p->out_state = st;
}

static void pipe_set_in_state(struct pipe_app *p, enum pipe_in_state st)
{
	log_debug("pipe: peer's %s -> %s", pipe_in_state_str(p->in_state),
	          pipe_in_state_str(st));
	p->in_state = st;
}

static void pipe_set_state(struct pipe_app *p, enum pipe_state st)
{
	log_debug("pipe: %s -> %s", pipe_state_str(p->state), pipe_state_str(st));
	p->state = st;
}

static int pipe_ending(const struct pipe_app *p)
{
	return p->state == PIPE_ENDING;
}

static void on_end(uv_timer_t *t)
{
	struct pipe_app *p = t->data;

	p->env.finish(p->env.ctx, p->end_code);
}

/* Finish once, from the loop rather than from inside a QUIC callback, and
 * after a kick so that what is queued (acknowledgements) goes out first. */
static void pipe_end(struct pipe_app *p, int code)
{
	if (pipe_ending(p))
		return;
	pipe_set_state(p, PIPE_ENDING);
	p->end_code = code;
	if (p->out_state != PIPE_OUT_WAITING)
		app_input_pause(&p->in);
	p->env.kick(p->env.ctx);
	uv_timer_start(&p->end, on_end, 0, 0);
}

static void maybe_done(struct pipe_app *p)
{
	if (p->out_state == PIPE_OUT_ACKED && p->in_state != PIPE_IN_OPEN &&
	    !p->out_queued) {
		log_debug("pipe: sent %llu bytes, received %llu; both acknowledged",
		          (unsigned long long)p->sent,
		          (unsigned long long)p->received);
		pipe_end(p, 0);
	}
}

/* ---- our input to our stream ------------------------------------------- */

static void queue_fin(struct pipe_app *p)
{
	if (p->out_state != PIPE_OUT_EOF || p->pend_len || p->out < 0)
		return;
	pipe_set_out_state(p, PIPE_OUT_FIN);
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

	if (pipe_ending(p))
		return;
	if (!len) {
		pipe_set_out_state(p, PIPE_OUT_EOF);
		queue_fin(p);
		return;
	}
	send_chunk(p, data, len);
}

static void pipe_writable(struct app *a, int64_t id)
{
	struct pipe_app *p = (struct pipe_app *)a;
	size_t len = p->pend_len;

	if (id != p->out || !len || pipe_ending(p))
		return;
	p->pend_len = 0;
	send_chunk(p, p->pend, len);  /* memmove copes with the overlap */
	if (!p->pend_len) {
		if (p->out_state == PIPE_OUT_EOF)
			queue_fin(p);
		else
			app_input_resume(&p->in);
	}
}

/* Start sending input. */
static void pipe_start_input(struct pipe_app *p)
{
	int rc;

	if (p->out_state != PIPE_OUT_WAITING || pipe_ending(p))
		return;
	if ((rc = app_input_open(&p->in, p->env.loop, 0, on_input, p))) {
		log_error("pipe: cannot read standard input: %s", uv_strerror(rc));
		pipe_end(p, 1);
		return;
	}
	pipe_set_out_state(p, PIPE_OUT_READING);
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
	if (pipe_ending(p))
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
	else if (status == 0 && !pipe_ending(p) && p->in_state == PIPE_IN_CLOSED &&
	         !p->out_queued)
		pipe_end(p, 0);
	else if (status == 0 && !pipe_ending(p))
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

	if (pipe_ending(p) || id != p->peer) {
		if (!pipe_ending(p))
			log_debug("pipe: data on unexpected stream %lld dropped", (long long)id);
		quic_consume(p->env.quic, id, len);
		return;
	}
	if (len)
		out_write(p, id, data, len);
	if (pipe_ending(p))
		return;
	p->received += len;
	if (fin) {
		pipe_set_in_state(p, PIPE_IN_FIN);
		maybe_done(p);
	}
}

static void pipe_stream_close(struct app *a, int64_t id, uint64_t err)
{
	struct pipe_app *p = (struct pipe_app *)a;

	if (id != p->out || pipe_ending(p))
		return;
	if (err) {
		log_error("%s stopped our stream (error %llu)", p->env.peer_id,
		          (unsigned long long)err);
		pipe_end(p, 1);
		return;
	}
	pipe_set_out_state(p, PIPE_OUT_ACKED);
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
	p->out_state = PIPE_OUT_WAITING;
	p->in_state = PIPE_IN_OPEN;
	p->state = PIPE_RUNNING;
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

	if (pipe_ending(p))
		return;
	if (p->in_state == PIPE_IN_OPEN) {
		log_error("%s closed the link before the end of its input, after %llu bytes; some may be missing",
		          p->env.peer_id, (unsigned long long)p->received);
		pipe_end(p, 1);
		return;
	}
	pipe_set_in_state(p, PIPE_IN_CLOSED);
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

	if (p->out_state != PIPE_OUT_WAITING)
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
