/*
 * `punch server` over TCP: listeners, connections, their reads and
 * writes.  What a message means is binding.c's and turn_server.c's; where
 * it ends is stream_frame.c's.
 */
#include "server_tcp.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "punch_attr.h"
#include "rendezvous_server.h"
#include "stream_frame.h"
#include "stun.h"
#include "tls_stream.h"

enum {
	CIPHER_READ = 16384 + 2048, /* a TLS record, with room (RFC 8446 5.2) */
};

struct tcp_listener {
	uv_tcp_t tcp;
	struct tcp_server *ts;
	const struct binding_service *svc;
	int index;
	int tls;        /* -tls-listen's */
};

/* A TLS connection's session and buffers, beside its plain state. */
struct tcp_tls {
	struct tls_stream t;
	uint8_t cipher[CIPHER_READ];  /* what a read brought */
	uint8_t out[FRAME_MAX + 4];   /* a message being sent, padded */
};

struct tcp_conn {
	uv_tcp_t tcp;
	struct tcp_server *ts;
	struct tcp_listener *li;
	int id;         /* in ts->conns */
	int closing;
	uint64_t last_ms;             /* of the last whole message */
	struct sockaddr_storage peer;
	struct framer in;
	struct tcp_tls *tls;          /* NULL: plain TCP */
};

/* A write libuv could not finish at once: the rest, copied. */
struct tcp_write {
	uv_write_t req;
	struct tcp_conn *c;
	uint8_t data[];
};

struct tcp_server {
	uv_loop_t *loop;
	struct tcp_hooks hooks;
	struct turn_server *turn;
	struct rdv_server *rdv;
	uv_mutex_t *rdv_lock;
	struct tcp_listener *listeners[TCP_LISTEN_MAX];
	int n_listeners;
	uv_timer_t sweep;
	struct tcp_conn **conns;      /* by id; NULL: free */
	int *free_ids;                /* stack */
	size_t max, n_free;
	struct tcp_stats stats;
	gnutls_certificate_credentials_t cred; /* -cert, -key; NULL: no TLS */
	uint8_t out[TURN_OUT_MAX];    /* a response being written */
};

static void conn_freed(uv_handle_t *h)
{
	struct tcp_conn *c = h->data;

	if (c->tls) {
		tls_stream_free(&c->tls->t);
		free(c->tls);
	}
	free(c);
}

static void conn_close(struct tcp_conn *c, const char *why)
{
	struct tcp_server *ts = c->ts;
	char a[ADDR_STRLEN];

	if (c->closing)
		return;
	c->closing = 1;
	log_debug("tcp %s: %s",
	          addr_str((struct sockaddr *)&c->peer, a, sizeof(a)), why);
	/* RFC 8656 3.1: the allocation lives as long as its connection */
	if (ts->turn)
		turn_client_gone(ts->turn, TCP_SOCK_BASE + c->id,
		                 (struct sockaddr *)&c->peer);
	ts->conns[c->id] = NULL;
	ts->free_ids[ts->n_free++] = c->id;
	uv_close((uv_handle_t *)&c->tcp, conn_freed);
}

static void on_written(uv_write_t *req, int status)
{
	struct tcp_write *w = req->data;

	if (status < 0 && status != UV_ECANCELED && !w->c->closing) {
		w->c->ts->stats.write_failed++;
		conn_close(w->c, uv_strerror(status));
	}
	free(w);
}

/* Bytes onto the socket (data, then pad zero bytes): what it takes now,
 * the rest queued.  Over the queue's bound (the client does not read)
 * they are dropped, unless must (TLS records, which cannot lose a byte).
 * 0, or -1 when the connection closed. */
static int conn_put(struct tcp_conn *c, const uint8_t *data, size_t len,
                    size_t pad, int must)
{
	static const uint8_t zeros[3];
	uv_stream_t *s = (uv_stream_t *)&c->tcp;
	uv_buf_t b[2] = { uv_buf_init((char *)data, (unsigned)len),
		          uv_buf_init((char *)zeros, (unsigned)pad) };
	size_t queued = uv_stream_get_write_queue_size(s);
	size_t total = len + pad, done = 0;
	struct tcp_write *w;
	uv_buf_t rest;
	int n;

	if (c->closing || pad > sizeof(zeros))
		return -1;
	if (queued + total > TCP_WRITE_QUEUE_MAX && !must) {
		c->ts->stats.dropped++;
		return 0;
	}
	if (!queued) {
		n = uv_try_write(s, b, pad ? 2 : 1);
		if (n < 0 && n != UV_EAGAIN) {
			c->ts->stats.write_failed++;
			conn_close(c, uv_strerror(n));
			return -1;
		}
		done = n > 0 ? (size_t)n : 0;
	}
	if (done == total)
		return 0;
	if (!(w = malloc(sizeof(*w) + total - done))) {
		if (must) {
			conn_close(c, "out of memory");
			return -1;
		}
		c->ts->stats.dropped++;
		return 0;
	}
	w->c = c;
	w->req.data = w;
	if (done < len) {
		memcpy(w->data, data + done, len - done);
		memset(w->data + len - done, 0, pad);
	} else {
		memset(w->data, 0, total - done);
	}
	rest = uv_buf_init((char *)w->data, (unsigned)(total - done));
	if (uv_write(&w->req, s, &rest, 1, on_written)) {
		free(w);
		c->ts->stats.write_failed++;
		conn_close(c, "write");
		return -1;
	}
	return 0;
}

/* tls_stream's push: the records must all go. */
static int tls_push(void *ctx, const uint8_t *buf, size_t len)
{
	return conn_put(ctx, buf, len, 0, 1);
}

/* Write a message and pad zero bytes, or drop it whole when the client
 * already has TCP_WRITE_QUEUE_MAX bytes waiting (it does not read). */
static void conn_write(struct tcp_conn *c, const uint8_t *data, size_t len,
                       size_t pad)
{
	struct tcp_tls *t = c->tls;

	if (!t) {
		conn_put(c, data, len, pad, 0);
		return;
	}
	if (c->closing || !t->t.ready || len + pad > sizeof(t->out))
		return;
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) + len + pad >
	    TCP_WRITE_QUEUE_MAX) {
		c->ts->stats.dropped++;
		return;
	}
	memcpy(t->out, data, len);
	memset(t->out + len, 0, pad);
	if (tls_stream_send(&t->t, t->out, len + pad) && !c->closing) {
		c->ts->stats.write_failed++;
		conn_close(c, t->t.reason[0] ? t->t.reason : "TLS write");
	}
}

/* A TURN message: a response back, or a datagram for a peer. */
static void conn_turn(struct tcp_conn *c, const uint8_t *msg, size_t len,
                      uint64_t now)
{
	struct tcp_server *ts = c->ts;
	struct turn_out o;
	int rc;

	rc = turn_handle_client(ts->turn, TCP_SOCK_BASE + c->id, msg, len,
	                        (struct sockaddr *)&c->peer, now, ts->out,
	                        sizeof(ts->out), &o);
	if (rc == TURN_TO_PEER) {
		ts->hooks.to_peer(ts->hooks.ctx, &o);
	} else if (rc == TURN_TO_CLIENT) {
		conn_write(c, o.data, o.len, 0);
		if (ts->hooks.replied)
			ts->hooks.replied(ts->hooks.ctx, msg, len, o.data, o.len,
			                  o.is_error);
	}
}

/* A Binding request, answered on the connection (XOR-MAPPED-ADDRESS: the
 * connection's peer).  0, or -1 when it was malformed. */
static int conn_binding(struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	struct tcp_server *ts = c->ts;
	struct binding_reply reply;
	const char *why = NULL;
	int rc;

	rc = binding_handle(c->li->svc, c->li->index, msg, len,
	                    (struct sockaddr *)&c->peer, ts->out,
	                    sizeof(ts->out), &reply, &why);
	if (rc == BINDING_DROP) {
		log_debug("tcp: drop %zu bytes: %s", len, why);
		return -1;
	}
	/* CHANGE-REQUEST (RFC 5780) asks for another socket: not over TCP */
	if (rc == BINDING_IGNORE || reply.sock != c->li->index) {
		ts->stats.ignored++;
		return 0;
	}
	conn_write(c, ts->out, reply.len, 0);
	if (!reply.is_error)
		ts->stats.answered++;
	if (ts->hooks.replied)
		ts->hooks.replied(ts->hooks.ctx, msg, len, ts->out, reply.len,
		                  reply.is_error);
	return 0;
}

/* A rendezvous request (REGISTER, RELEASE, or the answer to a PEER-INFO),
 * answered on the connection; its PEER-INFO requests come back through
 * tcp_server_send_to() with this connection's sock.  0, or -1 when it was
 * malformed. */
static int conn_rendezvous(struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	struct tcp_server *ts = c->ts;
	struct binding_reply reply;
	const char *why = NULL;
	int rc;

	if (ts->rdv_lock)
		uv_mutex_lock(ts->rdv_lock);
	rc = rdv_handle(ts->rdv, TCP_SOCK_BASE + c->id, msg, len,
	                (struct sockaddr *)&c->peer, uv_now(ts->loop), ts->out,
	                sizeof(ts->out), &reply, &why);
	if (ts->rdv_lock)
		uv_mutex_unlock(ts->rdv_lock);
	if (rc == BINDING_DROP) {
		log_debug("tcp: drop %zu bytes: %s", len, why);
		return -1;
	}
	if (rc == BINDING_IGNORE) /* an answer to PEER-INFO; the rendezvous counts */
		return 0;
	conn_write(c, ts->out, reply.len, 0);
	if (!reply.is_error)
		ts->stats.answered++;
	if (ts->hooks.replied)
		ts->hooks.replied(ts->hooks.ctx, msg, len, ts->out, reply.len,
		                  reply.is_error);
	return 0;
}

/* One whole message from the stream; -1 closes the connection. */
static int conn_message(struct tcp_conn *c, const uint8_t *msg, size_t len,
                        enum frame_kind kind, uint64_t now)
{
	struct tcp_server *ts = c->ts;
	int method = kind == FRAME_STUN ? stun_peek_method(msg, len) : -1;

	if (ts->turn && (kind == FRAME_CHANNEL || turn_method_is_turn(method))) {
		conn_turn(c, msg, len, now);
		return 0;
	}
	if (ts->rdv && kind == FRAME_STUN && punch_method_is_rendezvous(method))
		return conn_rendezvous(c, msg, len);
	/* ChannelData without a relay is no one's */
	if (kind == FRAME_CHANNEL || punch_method_is_rendezvous(method)) {
		ts->stats.ignored++;
		return 0;
	}
	return conn_binding(c, msg, len);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct tcp_conn *c = h->data;
	size_t cap;
	uint8_t *p = framer_space(&c->in, &cap);

	(void)suggested;
	if (c->tls)
		*buf = uv_buf_init((char *)c->tls->cipher, sizeof(c->tls->cipher));
	else
		*buf = uv_buf_init((char *)p, (unsigned)cap);
}

/* Every whole message held: 0, or -1 when the stream broke. */
static int conn_drain(struct tcp_conn *c, uint64_t now)
{
	enum frame_kind kind;
	const uint8_t *msg;
	size_t len;
	int rc;

	while (!c->closing && (rc = framer_next(&c->in, &msg, &len, &kind)) > 0) {
		c->last_ms = now;
		if (conn_message(c, msg, len, kind, now))
			return -1;
	}
	return c->closing ? 0 : rc;
}

/* Ciphertext read: the handshake, then plaintext into the framer, drained
 * as it fills.  0, or -1 when the stream broke. */
static int conn_tls_read(struct tcp_conn *c, size_t n, uint64_t now)
{
	struct tcp_tls *t = c->tls;

	tls_stream_give(&t->t, t->cipher, n);
	for (int i = 0; i < TLS_STREAM_ROUNDS_MAX && !c->closing; i++) {
		size_t cap;
		uint8_t *p = framer_space(&c->in, &cap);
		ssize_t got = tls_stream_recv(&t->t, p, cap);

		if (got < 0) {
			conn_close(c, t->t.reason);
			return 0;
		}
		if (!got)
			return 0;
		framer_wrote(&c->in, (size_t)got);
		if (conn_drain(c, now))
			return -1;
	}
	return c->closing ? 0 : -1;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct tcp_conn *c = s->data;
	struct tcp_server *ts = c->ts;
	uint64_t now = uv_now(ts->loop);
	int rc = 0;

	(void)buf;
	if (nread == 0 || c->closing)
		return;
	if (nread < 0) {
		conn_close(c, nread == UV_EOF ? "closed by the client" :
		                                uv_strerror((int)nread));
		return;
	}
	if (c->tls) {
		rc = conn_tls_read(c, (size_t)nread, now);
	} else {
		framer_wrote(&c->in, (size_t)nread);
		rc = conn_drain(c, now);
	}
	/* The datagrams to peers point into c->in: out before the next read */
	ts->hooks.flush(ts->hooks.ctx);
	if (rc < 0 && !c->closing) {
		ts->stats.malformed++;
		conn_close(c, "malformed input");
	}
}

static void conn_open(struct tcp_server *ts, struct tcp_listener *li,
                      struct tcp_conn *c)
{
	int len = sizeof(c->peer);

	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len)) {
		uv_close((uv_handle_t *)&c->tcp, conn_freed);
		return;
	}
	c->ts = ts;
	c->li = li;
	c->id = ts->free_ids[--ts->n_free];
	c->last_ms = uv_now(ts->loop);
	framer_init(&c->in);
	if (li->tls && (!(c->tls = calloc(1, sizeof(*c->tls))) ||
	                tls_stream_server(&c->tls->t, ts->cred, tls_push, c))) {
		log_warn("tls: cannot start a session: %s",
		         c->tls ? c->tls->t.reason : "out of memory");
		uv_close((uv_handle_t *)&c->tcp, conn_freed);
		return;
	}
	ts->conns[c->id] = c;
	ts->stats.accepted++;
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_connection(uv_stream_t *l, int status)
{
	struct tcp_listener *li = l->data;
	struct tcp_server *ts = li->ts;
	struct tcp_conn *c;

	if (status < 0)
		return;
	if (!(c = calloc(1, sizeof(*c)))) {
		log_warn("tcp: out of memory for a connection");
		return;
	}
	uv_tcp_init(ts->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(l, (uv_stream_t *)&c->tcp)) {
		uv_close((uv_handle_t *)&c->tcp, conn_freed);
		return;
	}
	if (!ts->n_free) {
		/* -max-tcp: accepted, so the backlog does not fill, and gone */
		ts->stats.over_cap++;
		uv_close((uv_handle_t *)&c->tcp, conn_freed);
		return;
	}
	conn_open(ts, li, c);
}

/* Connections without an allocation close after TCP_IDLE_MS. */
static void on_sweep(uv_timer_t *t)
{
	struct tcp_server *ts = t->data;
	uint64_t now = uv_now(ts->loop);

	for (size_t i = 0; i < ts->max; i++) {
		struct tcp_conn *c = ts->conns[i];

		if (!c || now - c->last_ms < TCP_IDLE_MS)
			continue;
		if (ts->turn && turn_client_has_alloc(ts->turn,
		                                      TCP_SOCK_BASE + c->id,
		                                      (struct sockaddr *)&c->peer))
			continue;
		ts->stats.idle++;
		conn_close(c, "idle");
	}
}

struct tcp_server *tcp_server_new(uv_loop_t *loop, size_t max_conns,
                                  const struct tcp_hooks *hooks)
{
	struct tcp_server *ts = calloc(1, sizeof(*ts));

	if (!ts)
		return NULL;
	ts->loop = loop;
	ts->hooks = *hooks;
	ts->max = max_conns ? max_conns : TCP_CONNS_DEFAULT;
	ts->conns = calloc(ts->max, sizeof(*ts->conns));
	ts->free_ids = calloc(ts->max, sizeof(*ts->free_ids));
	if (!ts->conns || !ts->free_ids) {
		tcp_server_free(ts);
		return NULL;
	}
	/* Lowest ids first */
	for (size_t i = 0; i < ts->max; i++)
		ts->free_ids[i] = (int)(ts->max - 1 - i);
	ts->n_free = ts->max;
	uv_timer_init(loop, &ts->sweep);
	ts->sweep.data = ts;
	uv_timer_start(&ts->sweep, on_sweep, TCP_SWEEP_MS, TCP_SWEEP_MS);
	return ts;
}

static void listener_freed(uv_handle_t *h)
{
	free(h->data);
}

static int listen_on(struct tcp_server *ts, const struct sockaddr *addr,
                     const struct binding_service *svc, int index, int tls)
{
	struct tcp_listener *li;
	int rc;

	if (ts->n_listeners == TCP_LISTEN_MAX)
		return UV_ENOSPC;
	if (!(li = calloc(1, sizeof(*li))))
		return UV_ENOMEM;
	li->tls = tls;
	li->ts = ts;
	li->svc = svc;
	li->index = index;
	if ((rc = uv_tcp_init(ts->loop, &li->tcp))) {
		free(li);
		return rc;
	}
	li->tcp.data = li;
	/* Both 0.0.0.0:3478 and [::]:3478 by default: keep them apart */
	rc = uv_tcp_bind(&li->tcp, addr,
	                 addr->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
	if (!rc)
		rc = uv_listen((uv_stream_t *)&li->tcp, TCP_BACKLOG,
		               on_connection);
	if (rc) {
		uv_close((uv_handle_t *)&li->tcp, listener_freed);
		return rc;
	}
	ts->listeners[ts->n_listeners++] = li;
	return 0;
}

int tcp_server_listen(struct tcp_server *ts, const struct sockaddr *addr,
                      const struct binding_service *svc, int index)
{
	return listen_on(ts, addr, svc, index, 0);
}

int tcp_server_set_tls(struct tcp_server *ts, const char *cert, const char *key,
                       char *why, size_t why_len)
{
	if (ts->cred)
		return 0;
	if (tls_cred_server(&ts->cred, cert, key, why, why_len)) {
		ts->cred = NULL;
		return -1;
	}
	return 0;
}

int tcp_server_listen_tls(struct tcp_server *ts, const struct sockaddr *addr,
                          const struct binding_service *svc, int index)
{
	return ts->cred ? listen_on(ts, addr, svc, index, 1) : UV_EINVAL;
}

void tcp_server_set_turn(struct tcp_server *ts, struct turn_server *turn)
{
	ts->turn = turn;
}

void tcp_server_set_rdv(struct tcp_server *ts, struct rdv_server *rdv,
                        uv_mutex_t *lock)
{
	ts->rdv = rdv;
	ts->rdv_lock = lock;
}

int tcp_sock_is(int sock)
{
	return sock >= TCP_SOCK_BASE;
}

void tcp_server_send(struct tcp_server *ts, int sock, const uint8_t *data,
                     size_t len)
{
	size_t id = (size_t)(sock - TCP_SOCK_BASE);
	struct tcp_conn *c;

	if (!tcp_sock_is(sock) || id >= ts->max || !(c = ts->conns[id]))
		return;
	/* RFC 8656 12.5: ChannelData over TCP is padded to 4 bytes */
	conn_write(c, data, len,
	           turn_is_channel_data(data, len) ? frame_padded(len) - len :
	                                             0);
}

void tcp_server_send_to(struct tcp_server *ts, int sock,
                        const struct sockaddr *to, const uint8_t *data,
                        size_t len)
{
	size_t id = (size_t)(sock - TCP_SOCK_BASE);
	struct tcp_conn *c;

	/* A closed connection's id may already be another client's */
	if (!tcp_sock_is(sock) || id >= ts->max || !(c = ts->conns[id]) ||
	    !addr_equal((struct sockaddr *)&c->peer, to))
		return;
	conn_write(c, data, len, 0);
}

void tcp_server_close(struct tcp_server *ts)
{
	if (!ts)
		return;
	for (size_t i = 0; i < ts->max; i++)
		if (ts->conns[i])
			conn_close(ts->conns[i], "server stopping");
	for (int i = 0; i < ts->n_listeners; i++)
		uv_close((uv_handle_t *)&ts->listeners[i]->tcp, listener_freed);
	ts->n_listeners = 0;
	uv_timer_stop(&ts->sweep);
	uv_close((uv_handle_t *)&ts->sweep, NULL);
}

void tcp_server_free(struct tcp_server *ts)
{
	if (!ts)
		return;
	free(ts->conns);
	free(ts->free_ids);
	if (ts->cred)
		gnutls_certificate_free_credentials(ts->cred);
	free(ts);
}

const struct tcp_stats *tcp_server_stats(const struct tcp_server *ts)
{
	return &ts->stats;
}
