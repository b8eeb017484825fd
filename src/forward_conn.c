/*
 * One forwarded connection: see forward_conn.h, and app_forward.h for the
 * lines on the wire.
 *
 * Back-pressure:
 *   TCP -> QUIC: when quic_write takes less than a read, reading stops and
 *     keeps the rest until on_writable.
 *   QUIC -> TCP: the peer gets credit back (quic_consume) only for bytes
 *     the socket has taken, or that we drop; what waits for the socket (or
 *     for the connection to be made) is therefore bounded by QUIC's
 *     windows (quic.h), per stream and in all, however slow or silent the
 *     target.  FWD_QUEUE_MAX_BYTES is a second fence above the stream
 *     window: a peer that ignored flow control would meet it first.
 *
 * State: one life cycle (enum fwd_life: the request, the socket, its
 * close) and one state per direction (enum fwd_in, the peer's stream to
 * the socket; enum fwd_out, the socket to our stream), each change logged
 * as old -> new at debug level.
 *
 * Freeing: the terminal state FWD_FREED, entered only from FWD_CLOSED
 * once no libuv request is outstanding and the stream is closed (or the
 * link is going away); conn_maybe_free() is only ever the last call of an
 * event handler, so that nothing touches a connection after it is gone.
 */
#include "forward_conn.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "term.h"

enum {
	FWD_STATUS_MAX = 256,           /* "ok" or "bad connect ..." */
};

/* Stream bytes waiting for the TCP connection to be made. */
struct fwd_chunk {
	struct fwd_chunk *next;
	size_t len;
	uint8_t data[];
};

struct fwd_write {
	uv_write_t req;
	struct fwd_conn *c;
	size_t len;
	uint8_t data[];
};

enum fwd_life {
	FWD_REQUEST,     /* serving end: waiting for the peer's request line */
	FWD_RESOLVING,   /* serving end: getaddrinfo under way */
	FWD_CONNECTING,  /* serving end: a socket connecting to c->ai_next */
	FWD_RETRYING,    /* serving end: that socket closing; the next address after */
	FWD_ANSWER,      /* opening end: connected, waiting for the peer's "ok" */
	FWD_OPEN,        /* connected: bytes flow */
	FWD_CLOSING,     /* the socket is closing */
	FWD_CLOSED,      /* no socket (any more); waiting for libuv and the stream */
	FWD_FREED,       /* terminal: conn_free() */
};

/* The peer's stream to the socket. */
enum fwd_in {
	FWD_IN_OPEN,     /* its bytes go to the socket (held until connected) */
	FWD_IN_FIN,      /* its FIN came: shut down once all is written */
	FWD_IN_SHUTTING, /* uv_shutdown under way */
	FWD_IN_DONE,     /* shut down */
	FWD_IN_DEAD,     /* given up: what the peer sends is dropped */
};

/* The socket to our stream. */
enum fwd_out {
	FWD_OUT_IDLE,    /* not reading: not connected yet, or the stream is full */
	FWD_OUT_READING,
	FWD_OUT_EOF,     /* end of TCP input (or given up): FIN once pend is out */
	FWD_OUT_FIN,     /* FIN written */
};

struct fwd_conn {
	struct fwd_ctx *x;
	struct fwd_conn *next;
	unsigned serial;          /* for messages */
	int opener;               /* we accepted the TCP connection */
	enum fwd_life life;
	enum fwd_in in;
	enum fwd_out out;
	int64_t sid;              /* -1: no stream (yet, or any more) */
	char host[FORWARD_HOST_MAX + 1];
	uint16_t port;
	int reqs;                 /* libuv requests outstanding */

	uv_tcp_t tcp;
	uv_getaddrinfo_t gai;
	struct addrinfo *ai, *ai_next;
	uv_connect_t connect;
	int connect_err;          /* the last address's failure */
	uv_shutdown_t shutdown;

	/* stream -> TCP */
	struct app_header hdr;    /* the request, at the other end */
	char status[FWD_STATUS_MAX]; /* the answer, at the opener */
	size_t status_len;
	struct fwd_chunk *held, **held_tail;
	size_t queued;            /* held, or in uv_write */

	/* TCP -> stream */
	uint8_t *pend;            /* FWD_READ_BYTES, once needed */
	size_t pend_len;
};

static const char *life_str(enum fwd_life s)
{
	switch (s) {
	case FWD_REQUEST: return "request";
	case FWD_RESOLVING: return "resolving";
	case FWD_CONNECTING: return "connecting";
	case FWD_RETRYING: return "retrying";
	case FWD_ANSWER: return "answer";
	case FWD_OPEN: return "open";
	case FWD_CLOSING: return "closing";
	case FWD_CLOSED: return "closed";
	case FWD_FREED: return "freed";
	}
	return "?";
}

static const char *in_str(enum fwd_in s)
{
	switch (s) {
	case FWD_IN_OPEN: return "open";
	case FWD_IN_FIN: return "fin";
	case FWD_IN_SHUTTING: return "shutting";
	case FWD_IN_DONE: return "done";
	case FWD_IN_DEAD: return "dead";
	}
	return "?";
}

static const char *out_str(enum fwd_out s)
{
	switch (s) {
	case FWD_OUT_IDLE: return "idle";
	case FWD_OUT_READING: return "reading";
	case FWD_OUT_EOF: return "eof";
	case FWD_OUT_FIN: return "fin";
	}
	return "?";
}

static void set_life(struct fwd_conn *c, enum fwd_life s)
{
	if (c->life == s)
		return;
	log_debug("forward: connection %u: %s -> %s", c->serial,
	          life_str(c->life), life_str(s));
	c->life = s;
}

static void set_in(struct fwd_conn *c, enum fwd_in s)
{
	if (c->in == s)
		return;
	log_debug("forward: connection %u: stream to TCP %s -> %s", c->serial,
	          in_str(c->in), in_str(s));
	c->in = s;
}

static void set_out(struct fwd_conn *c, enum fwd_out s)
{
	if (c->out == s)
		return;
	log_debug("forward: connection %u: TCP to stream %s -> %s", c->serial,
	          out_str(c->out), out_str(s));
	c->out = s;
}

/* A socket that exists and is not closing: uv_tcp_t calls are allowed. */
static int conn_has_socket(const struct fwd_conn *c)
{
	return c->life == FWD_CONNECTING || c->life == FWD_ANSWER ||
	       c->life == FWD_OPEN;
}

/* Connected: bytes go to the socket rather than wait. */
static int conn_connected(const struct fwd_conn *c)
{
	return c->life == FWD_ANSWER || c->life == FWD_OPEN;
}

static void conn_pump(struct fwd_conn *c);
static void conn_abort(struct fwd_conn *c, const char *why);

/* n bytes from the peer are written out or dropped: credit for as many. */
static void consumed(struct fwd_conn *c, size_t n)
{
	quic_consume(c->x->env.quic, c->sid, n);
	c->x->env.kick(c->x->env.ctx);
}

/* ---- connections: life cycle ------------------------------------------------ */

static struct fwd_conn *conn_new(struct fwd_ctx *x, int opener, int64_t sid)
{
	struct fwd_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->x = x;
	c->opener = opener;
	c->life = opener ? FWD_ANSWER : FWD_REQUEST;
	c->sid = sid;
	c->serial = ++x->serial;
	c->held_tail = &c->held;
	c->next = x->conns;
	x->conns = c;
	return c;
}

/* What waited for the connection to be made will never be written: the
 * peer gets its credit back, or the FIN behind it could never come. */
static void drop_held(struct fwd_conn *c)
{
	while (c->held) {
		struct fwd_chunk *k = c->held;

		c->held = k->next;
		c->queued -= k->len;
		quic_consume(c->x->env.quic, c->sid, k->len);
		free(k);
	}
	c->held_tail = &c->held;
}

static struct fwd_conn *conn_find(struct fwd_ctx *x, int64_t sid)
{
	for (struct fwd_conn *c = x->conns; c; c = c->next)
		if (c->sid == sid)
			return c;
	return NULL;
}

static void conn_free(struct fwd_conn *c)
{
	struct fwd_conn **pp = &c->x->conns;

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	drop_held(c);
	if (c->ai)
		uv_freeaddrinfo(c->ai);
	free(c->pend);
	free(c);
}

/* Only ever called last in an event handler: nothing may touch c after. */
static void conn_maybe_free(struct fwd_conn *c)
{
	if (c->life != FWD_CLOSED || c->reqs || (c->sid >= 0 && c->x->state != FWD_APP_CLOSING))
		return;
	set_life(c, FWD_FREED);
	conn_free(c);
}

static void on_tcp_closed(uv_handle_t *h)
{
	struct fwd_conn *c = h->data;

	set_life(c, FWD_CLOSED);
	conn_maybe_free(c);
}

/* Close the socket, if there is one; either way the connection is then
 * done with TCP.  (In FWD_RETRYING the failed socket is already closing,
 * counted in reqs.) */
static void conn_close_tcp(struct fwd_conn *c)
{
	if (c->life == FWD_CLOSING || c->life == FWD_CLOSED ||
	    c->life == FWD_FREED)
		return;
	if (!conn_has_socket(c)) {
		set_life(c, FWD_CLOSED);
		return;
	}
	set_life(c, FWD_CLOSING);
	uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

/* Both TCP directions done: close the socket. */
static void conn_maybe_close(struct fwd_conn *c)
{
	if (c->out >= FWD_OUT_EOF &&
	    (c->in == FWD_IN_DONE || c->in == FWD_IN_DEAD))
		conn_close_tcp(c);
}

/* After the end of TCP input: FIN, once what is pending is written. */
static void stream_fin(struct fwd_conn *c)
{
	if (c->out != FWD_OUT_EOF || c->sid < 0 || c->pend_len)
		return;
	set_out(c, FWD_OUT_FIN);
	quic_write_fin(c->x->env.quic, c->sid);
	c->x->env.kick(c->x->env.ctx);
}

static void stop_reading(struct fwd_conn *c, enum fwd_out next)
{
	if (c->out == FWD_OUT_READING)
		uv_read_stop((uv_stream_t *)&c->tcp);
	if (c->out < next)
		set_out(c, next);
}

/* Give up on the TCP side: close it, end our half of the stream, and drop
 * whatever the peer still sends (there is no stream reset in quic.h). */
static void conn_abort(struct fwd_conn *c, const char *why)
{
	if (why)
		log_warn("forward: connection %u (%s:%u): %s", c->serial, c->host,
		         c->port, why);
	set_in(c, FWD_IN_DEAD);
	c->pend_len = 0;
	drop_held(c);
	c->x->env.kick(c->x->env.ctx);
	stop_reading(c, FWD_OUT_EOF);
	stream_fin(c);
	conn_close_tcp(c);
}

/* ---- stream -> TCP ----------------------------------------------------------- */

static void conn_maybe_shutdown(struct fwd_conn *c);

static void on_write(uv_write_t *req, int status)
{
	struct fwd_write *w = (struct fwd_write *)req;
	struct fwd_conn *c = w->c;

	c->reqs--;
	c->queued -= w->len;
	consumed(c, w->len);
	free(w);
	if (status < 0 && status != UV_ECANCELED && c->in != FWD_IN_DEAD)
		conn_abort(c, uv_strerror(status));
	conn_maybe_shutdown(c);
	conn_maybe_free(c);
}

static void tcp_send(struct fwd_conn *c, const uint8_t *data, size_t len)
{
	struct fwd_write *w;
	uv_buf_t b;
	int n = 0;

	if (!c->queued) {
		b = uv_buf_init((char *)data, (unsigned)len);
		n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		if (n == UV_EAGAIN)
			n = 0;
		if (n < 0) {
			consumed(c, len);
			conn_abort(c, uv_strerror(n));
			return;
		}
		consumed(c, (size_t)n);
	}
	if ((size_t)n == len)
		return;
	data += n;
	len -= (size_t)n;
	if (c->queued + len > FWD_QUEUE_MAX_BYTES) {
		consumed(c, len);
		conn_abort(c, "the peer sent more than its flow-control credit; closing the connection");
		return;
	}
	if (!(w = malloc(sizeof(*w) + len))) {
		consumed(c, len);
		conn_abort(c, "out of memory");
		return;
	}
	w->c = c;
	w->len = len;
	memcpy(w->data, data, len);
	b = uv_buf_init((char *)w->data, (unsigned)len);
	if ((n = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write))) {
		free(w);
		consumed(c, len);
		conn_abort(c, uv_strerror(n));
		return;
	}
	c->reqs++;
	c->queued += len;
}

static void hold(struct fwd_conn *c, const uint8_t *data, size_t len)
{
	struct fwd_chunk *k;

	if (c->queued + len > FWD_QUEUE_MAX_BYTES ||
	    !(k = malloc(sizeof(*k) + len))) {
		consumed(c, len);
		conn_abort(c, "too much data before the connection was made");
		return;
	}
	k->next = NULL;
	k->len = len;
	memcpy(k->data, data, len);
	*c->held_tail = k;
	c->held_tail = &k->next;
	c->queued += len;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct fwd_conn *c = req->data;

	(void)status;
	c->reqs--;
	if (c->in == FWD_IN_SHUTTING)
		set_in(c, FWD_IN_DONE);
	conn_maybe_close(c);
	conn_maybe_free(c);
}

/* The peer's FIN, once everything before it is written: TCP shutdown. */
static void conn_maybe_shutdown(struct fwd_conn *c)
{
	if (c->in != FWD_IN_FIN || c->queued || !conn_connected(c))
		return;
	set_in(c, FWD_IN_SHUTTING);
	c->shutdown.data = c;
	if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown)) {
		set_in(c, FWD_IN_DONE);
		conn_maybe_close(c);
		return;
	}
	c->reqs++;
}

/* Bytes from the stream: to the socket, or held until it connects. */
static void conn_deliver(struct fwd_conn *c, const uint8_t *data, size_t len)
{
	if (!len)
		return;
	if (c->in == FWD_IN_DEAD) {
		consumed(c, len);
		return;
	}
	if (conn_connected(c))
		tcp_send(c, data, len);
	else
		hold(c, data, len);
}

/* ---- TCP -> stream ----------------------------------------------------------- */

static void alloc_read(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct fwd_conn *c = h->data;

	(void)suggested;
	*buf = uv_buf_init((char *)c->x->rbuf, sizeof(c->x->rbuf));
}

static void stream_send(struct fwd_conn *c, const uint8_t *data, size_t len)
{
	long n = quic_write(c->x->env.quic, c->sid, data, len);

	if (n < 0) {
		conn_abort(c, "its stream is gone");
		return;
	}
	if ((size_t)n < len) {
		if (!c->pend && !(c->pend = malloc(FWD_READ_BYTES))) {
			conn_abort(c, "out of memory");
			return;
		}
		memmove(c->pend, data + n, len - (size_t)n);
		c->pend_len = len - (size_t)n;
		if (c->out == FWD_OUT_READING) {
			uv_read_stop((uv_stream_t *)&c->tcp);
			set_out(c, FWD_OUT_IDLE);
		}
	}
	c->x->env.kick(c->x->env.ctx);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct fwd_conn *c = s->data;

	(void)buf;
	if (n > 0) {
		stream_send(c, c->x->rbuf, (size_t)n);
	} else if (n < 0) {
		stop_reading(c, FWD_OUT_EOF);
		if (n != UV_EOF) {
			conn_abort(c, uv_strerror((int)n));
		} else {
			log_debug("forward: connection %u: end of TCP input", c->serial);
			stream_fin(c);
			conn_maybe_close(c);
		}
	}
	conn_maybe_free(c);
}

static void conn_start_reading(struct fwd_conn *c)
{
	if (c->out != FWD_OUT_IDLE || c->pend_len || c->x->state == FWD_APP_CLOSING ||
	    !conn_connected(c))
		return;
	if (uv_read_start((uv_stream_t *)&c->tcp, alloc_read, on_read) == 0)
		set_out(c, FWD_OUT_READING);
}

/* Everything held goes out, and reading starts: the connection is up. */
static void conn_pump(struct fwd_conn *c)
{
	while (c->held && c->in != FWD_IN_DEAD) {
		struct fwd_chunk *k = c->held;

		c->held = k->next;
		c->queued -= k->len;
		tcp_send(c, k->data, k->len);
		free(k);
	}
	c->held_tail = &c->held;
	conn_start_reading(c);
	conn_maybe_shutdown(c);
}

void fwd_conn_writable(struct fwd_ctx *x, int64_t id)
{
	struct fwd_conn *c = conn_find(x, id);
	size_t len;

	if (!c || !c->pend_len)
		return;
	len = c->pend_len;
	c->pend_len = 0;
	stream_send(c, c->pend, len);
	if (!c->pend_len) {
		if (c->out >= FWD_OUT_EOF)
			stream_fin(c);
		else
			conn_start_reading(c);
	}
	conn_maybe_free(c);
}

/* ---- the side that connects -------------------------------------------------- */

static void answer(struct fwd_conn *c, const char *line, int fin)
{
	quic_write(c->x->env.quic, c->sid, line, strlen(line));
	if (fin) {
		stop_reading(c, FWD_OUT_FIN);
		quic_write_fin(c->x->env.quic, c->sid);
	}
	c->x->env.kick(c->x->env.ctx);
}

/* Answer "bad KIND WHY" and end the stream; with hint, tell our user
 * which -allow would serve it. */
static void refuse(struct fwd_conn *c, const char *kind, const char *why,
                   int hint)
{
	char line[FWD_STATUS_MAX], host[TERM_ESCAPE_SIZE(FORWARD_HOST_MAX)];
	int v6 = strchr(c->host, ':') != NULL;

	term_str(host, sizeof(host), c->host);
	if (hint)
		log_warn("forward: %s asked for %s:%u: %s (to serve it, run punch forward with -allow %s%s%s:%u)",
		         c->x->env.peer_id, host, c->port, why, v6 ? "[" : "",
		         host, v6 ? "]" : "", c->port);
	else
		log_warn("forward: %s asked for %s:%u: %s", c->x->env.peer_id,
		         host, c->port, why);
	snprintf(line, sizeof(line), "bad %s %s\n", kind, why);
	answer(c, line, 1);
	set_in(c, FWD_IN_DEAD);
	drop_held(c);
	conn_close_tcp(c);
}

static void try_connect(struct fwd_conn *c);

/* A socket that failed to connect cannot be reused: close it, and try the
 * next address once it is closed. */
static void on_failed_closed(uv_handle_t *h)
{
	struct fwd_conn *c = h->data;

	c->reqs--;
	if (c->life == FWD_RETRYING && c->x->state != FWD_APP_CLOSING)
		try_connect(c);
	else if (c->life == FWD_RETRYING)
		set_life(c, FWD_CLOSED);
	conn_maybe_free(c);
}

static void connect_failed(struct fwd_conn *c, int err)
{
	c->connect_err = err;
	c->ai_next = c->ai_next->ai_next;
	c->reqs++;
	set_life(c, FWD_RETRYING);
	uv_close((uv_handle_t *)&c->tcp, on_failed_closed);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct fwd_conn *c = req->data;

	c->reqs--;
	if (status == UV_ECANCELED || c->x->state == FWD_APP_CLOSING ||
	    c->life != FWD_CONNECTING) {
		conn_maybe_free(c);
		return;
	}
	if (status < 0) {
		connect_failed(c, status);
		return;
	}
	set_life(c, FWD_OPEN);
	uv_tcp_nodelay(&c->tcp, 1);
	uv_freeaddrinfo(c->ai);
	c->ai = c->ai_next = NULL;
	log_info("forward: %s: connection %u to %s:%u", c->x->env.peer_id,
	         c->serial, c->host, c->port);
	answer(c, "ok\n", 0);
	conn_pump(c);
	conn_maybe_free(c);
}

/* Connect to the next address of c->ai (c->ai_next). */
static void try_connect(struct fwd_conn *c)
{
	int rc;

	if (!c->ai_next) {
		set_life(c, FWD_CLOSED);  /* the last socket is closed */
		refuse(c, "connect", uv_strerror(c->connect_err), 0);
		return;
	}
	if ((rc = uv_tcp_init(c->x->env.loop, &c->tcp))) {
		set_life(c, FWD_CLOSED);
		refuse(c, "connect", uv_strerror(rc), 0);
		return;
	}
	set_life(c, FWD_CONNECTING);
	c->tcp.data = c;
	c->connect.data = c;
	rc = uv_tcp_connect(&c->connect, &c->tcp, c->ai_next->ai_addr, on_connect);
	if (rc) {
		connect_failed(c, rc);
		return;
	}
	c->reqs++;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
	struct fwd_conn *c = req->data;

	c->reqs--;
	if (status == UV_ECANCELED || c->x->state == FWD_APP_CLOSING || c->life != FWD_RESOLVING) {
		/* given up meanwhile (conn_abort): no socket now */
		uv_freeaddrinfo(ai);
	} else if (status < 0) {
		refuse(c, "connect", uv_strerror(status), 0);
	} else {
		c->ai = c->ai_next = ai;
		c->connect_err = UV_EHOSTUNREACH;
		try_connect(c);
	}
	conn_maybe_free(c);
}

/* The opener's request, "punch/1 forward HOST PORT": served only if the
 * user allowed that target with -allow. */
static void conn_request(struct fwd_conn *c)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct forward_target t;
	char port[8];
	int rc;

	if (strcmp(c->hdr.name, "forward") ||
	    forward_request_parse(c->hdr.rest, strlen(c->hdr.rest), &t)) {
		snprintf(c->host, sizeof(c->host), "?");
		refuse(c, "connect", "a request punch cannot read", 0);
		return;
	}
	memcpy(c->host, t.host, sizeof(c->host));
	c->port = t.port;
	if (!forward_allowed(c->x->allow, c->x->n_allow, &t)) {
		refuse(c, "denied", "not allowed here", 1);
		return;
	}
	snprintf(port, sizeof(port), "%u", c->port);
	c->gai.data = c;
	set_life(c, FWD_RESOLVING);
	rc = uv_getaddrinfo(c->x->env.loop, &c->gai, on_resolved, c->host, port,
	                    &hints);
	if (rc) {
		refuse(c, "connect", uv_strerror(rc), 0);
		return;
	}
	c->reqs++;
}

/* ---- stream events ----------------------------------------------------------- */

/* The opener reads the answer line before the bytes. */
static size_t opener_status(struct fwd_conn *c, const uint8_t *data, size_t len)
{
	size_t i;

	for (i = 0; i < len && c->life == FWD_ANSWER; i++) {
		if (data[i] != '\n') {
			if (c->status_len < sizeof(c->status) - 1)
				c->status[c->status_len++] = (char)data[i];
			continue;
		}
		c->status[c->status_len] = '\0';
		if (!strcmp(c->status, "ok")) {
			set_life(c, FWD_OPEN);
		} else {
			char why[TERM_ESCAPE_SIZE(FWD_STATUS_MAX) + 64];
			char said[TERM_ESCAPE_SIZE(FWD_STATUS_MAX)];
			int connect = !strncmp(c->status, "bad connect ", 12);
			int denied = !strncmp(c->status, "bad denied ", 11);

			/* The peer's words reach our terminal: escaped. */
			term_str(said, sizeof(said),
			         connect ? c->status + 12 :
			         denied  ? c->status + 11 :
			                   c->status);
			snprintf(why, sizeof(why), "%s %s: %s", c->x->env.peer_id,
			         connect ? "cannot connect to it" : "refused it",
			         said);
			conn_abort(c, why);
		}
	}
	return i;
}

void fwd_conn_data(struct fwd_ctx *x, int64_t id, const uint8_t *data,
                   size_t len, int fin)
{
	struct fwd_conn *c = conn_find(x, id);

	if (!c && (quic_stream_is_ours(x->env.quic, id) || !(c = conn_new(x, 0, id)))) {
		quic_consume(x->env.quic, id, len);
		return;
	}
	if (c->opener && c->life == FWD_ANSWER) {
		size_t used = opener_status(c, data, len);

		consumed(c, used);
		data += used;
		len -= used;
	} else if (c->life == FWD_REQUEST && len) {
		long used = app_header_feed(&c->hdr, data, len);

		if (used < 0) {
			snprintf(c->host, sizeof(c->host), "?");
			refuse(c, "connect", "a request punch cannot read", 0);
			consumed(c, len);
			len = 0;
		} else {
			consumed(c, (size_t)used);
			data += used;
			len -= (size_t)used;
			if (c->hdr.done)
				conn_request(c);
		}
	}
	conn_deliver(c, data, len);
	if (fin) {
		if (c->in == FWD_IN_OPEN)
			set_in(c, FWD_IN_FIN);
		if (c->life == FWD_REQUEST) {
			snprintf(c->host, sizeof(c->host), "?");
			refuse(c, "connect", "the request ended early", 0);
		} else if (c->opener && c->life == FWD_ANSWER) {
			conn_abort(c, "the peer ended the stream without an answer");
		}
		conn_maybe_shutdown(c);
		conn_maybe_close(c);
	}
	conn_maybe_free(c);
}

void fwd_conn_stream_close(struct fwd_ctx *x, int64_t id, uint64_t err)
{
	struct fwd_conn *c = conn_find(x, id);

	if (!c)
		return;
	c->sid = -1;
	if (err || c->in == FWD_IN_OPEN)
		conn_abort(c, err ? "the peer stopped the stream" : NULL);
	conn_maybe_free(c);
}

/* ---- the side that listens --------------------------------------------------- */

void fwd_conn_accept(struct fwd_ctx *x, uv_stream_t *server,
                     const char *host, uint16_t port, uint16_t lport)
{
	struct fwd_conn *c;
	char rest[APP_HEADER_MAX];
	int64_t sid;

	if (!(c = conn_new(x, 1, -1)))
		return;
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->port = port;
	uv_tcp_init(x->env.loop, &c->tcp);  /* FWD_ANSWER: a socket */
	c->tcp.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
		conn_abort(c, 0);
		return;
	}
	sid = quic_open_stream(x->env.quic, 1);
	snprintf(rest, sizeof(rest), "%s %u", c->host, c->port);
	if (sid < 0 || app_header_write(x->env.quic, sid, "forward", rest) < 0) {
		conn_abort(c, "no QUIC stream free (too many connections at once)");
		return;
	}
	c->sid = sid;
	uv_tcp_nodelay(&c->tcp, 1);
	log_info("forward: connection %u on port %u to %s's %s:%u", c->serial,
	         lport, x->env.peer_id, c->host, c->port);
	log_debug("forward: connection %u: stream %lld", c->serial, (long long)sid);
	conn_start_reading(c);
	x->env.kick(x->env.ctx);
}

unsigned fwd_conn_count(const struct fwd_ctx *x)
{
	unsigned n = 0;

	for (const struct fwd_conn *c = x->conns; c; c = c->next)
		n++;
	return n;
}

void fwd_conn_free_all(struct fwd_ctx *x)
{
	while (x->conns)
		conn_free(x->conns);
}
