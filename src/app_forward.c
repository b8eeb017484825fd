/*
 * punch forward [-L LPORT:HOST:PORT]...: TCP port forwarding, like ssh -L.
 *
 * A side with -L listens on 127.0.0.1:LPORT.  Each connection it accepts
 * gets a bidirectional QUIC stream of its own (wire format: app_forward.h);
 * the other side connects to HOST:PORT as it resolves it there, and bytes
 * flow both ways.  TCP end of input becomes FIN and FIN becomes a TCP
 * shutdown, so half-closed connections work.  Either side may have -L;
 * both accept the other's streams.
 *
 * Each side's hello stream (app.h) holds only "punch/1 forward" and FIN;
 * each side listens (-L) only once it knows the peer runs punch forward
 * too (on_ready).  A peer that closes the link while connections are open
 * cut them short: exit 1, saying how many.
 *
 * Policy: -L only opens local listeners.  A side serves the peer's
 * requests only for the HOST:PORT targets named with -allow, compared as
 * written (sshd's PermitOpen); anything else is refused on its stream with
 * a reason both sides print.  Every forwarded connection is logged, with
 * its target, at the default level.
 *
 * Each connection, its stream and its back-pressure: forward_conn.c.
 */
#include "app_forward.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward_conn.h"
#include "log.h"
#include "term.h"

enum {
	FWD_BACKLOG = 128,
	FWD_PEER_CONNS = 64,      /* the peer's forwarded connections at once */
	FWD_PEER_CONNS_NONE = 4,  /* the same, with no -allow: all refused */
};

/* ---- -L and -allow ------------------------------------------------------------ */

enum app_status app_forward_check(const struct app_args *args, char *why, size_t len)
{
	struct forward_spec spec;

	for (int i = 0; i < args->n_forwards; i++) {
		if (forward_spec_parse(args->forwards[i], &spec, why, len))
			return APP_STATUS_USAGE;
		for (int j = 0; j < i; j++) {
			struct forward_spec other;

			forward_spec_parse(args->forwards[j], &other, why, len);
			if (spec.lport && spec.lport == other.lport) {
				snprintf(why, len, "-L: port %u is given twice", spec.lport);
				return APP_STATUS_USAGE;
			}
		}
	}
	for (int i = 0; i < args->n_allows; i++) {
		struct forward_target t;

		if (forward_allow_parse(args->allows[i], &t, why, len))
			return APP_STATUS_USAGE;
	}
	return APP_STATUS_OK;
}

/* ---- state ------------------------------------------------------------------- */

struct fwd_app;

struct fwd_listener {
	uv_tcp_t tcp;
	struct fwd_app *f;
	struct forward_spec spec;
};

struct fwd_app {
	struct fwd_ctx x;         /* first: what the connections share */
	const char *specs[APP_ARGS_MAX]; /* -L */
	int n_specs;
	struct fwd_listener listeners[APP_ARGS_MAX];
	int n_listeners;
	uv_timer_t end;
	int end_code;
};

static const char *fwd_app_state_str(enum fwd_app_state st)
{
	switch (st) {
	case FWD_APP_WAITING: return "waiting";
	case FWD_APP_RUNNING: return "running";
	case FWD_APP_CLOSING: return "closing";
	}
	return "?";
}

/* Every state change goes through here, and is logged old -> new. */
static void fwd_set_state(struct fwd_app *f, enum fwd_app_state st)
{
	log_debug("forward: %s -> %s", fwd_app_state_str(f->x.state),
	          fwd_app_state_str(st));
	f->x.state = st;
}

/* ---- ending ------------------------------------------------------------------ */

static void on_end(uv_timer_t *t)
{
	struct fwd_app *f = t->data;

	f->x.env.finish(f->x.env.ctx, f->end_code);
}

static void close_listeners(struct fwd_app *f)
{
	for (int i = 0; i < f->n_listeners; i++)
		if (!uv_is_closing((uv_handle_t *)&f->listeners[i].tcp))
			uv_close((uv_handle_t *)&f->listeners[i].tcp, NULL);
}

/* Finish from the loop, not from inside a QUIC callback. */
static void fwd_end(struct fwd_app *f, int code)
{
	if (f->x.state == FWD_APP_CLOSING)
		return;
	fwd_set_state(f, FWD_APP_CLOSING);
	f->end_code = code;
	close_listeners(f);
	f->x.env.kick(f->x.env.ctx);
	uv_timer_start(&f->end, on_end, 0, 0);
}

static void fwd_data(struct app *a, int64_t id, const uint8_t *data,
                     size_t len, int fin)
{
	struct fwd_app *f = (struct fwd_app *)a;

	/* Credit goes back as bytes reach a socket (forward_conn.c); the rest
	 * (the hello stream's FIN, anything after it) is dropped at once. */
	if (f->x.state == FWD_APP_CLOSING || app_stream_is_uni(id)) {
		quic_consume(f->x.env.quic, id, len);
		f->x.env.kick(f->x.env.ctx);
		return;
	}
	fwd_conn_data(&f->x, id, data, len, fin);
}

static void fwd_writable(struct app *a, int64_t id)
{
	fwd_conn_writable(&((struct fwd_app *)a)->x, id);
}

static void fwd_stream_close(struct app *a, int64_t id, uint64_t err)
{
	fwd_conn_stream_close(&((struct fwd_app *)a)->x, id, err);
}

/* One forwarded connection failed, not the link: its stream's close,
 * which carries the code, ends that connection alone. */
static void fwd_stream_error(struct app *a, int64_t id, uint64_t err,
                             const char *why)
{
	(void)a, (void)err;
	log_debug("forward: stream %lld: %s", (long long)id, why);
}

/* ---- the side that listens --------------------------------------------------- */

static void on_accept(uv_stream_t *server, int status)
{
	struct fwd_listener *l = server->data;
	struct fwd_app *f = l->f;

	if (status < 0) {
		log_warn("forward: accept on port %u: %s", l->spec.lport,
		         uv_strerror(status));
		return;
	}
	if (f->x.state != FWD_APP_CLOSING)
		fwd_conn_accept(&f->x, server, l->spec.host, l->spec.port,
		                l->spec.lport);
}

static int listen_one(struct fwd_app *f, const char *arg)
{
	struct fwd_listener *l = &f->listeners[f->n_listeners];
	struct sockaddr_in sin;
	struct sockaddr_storage bound;
	int len = sizeof(bound), rc;
	char why[160];

	if (forward_spec_parse(arg, &l->spec, why, sizeof(why))) {
		log_error("%s", why);
		return -1;
	}
	l->f = f;
	uv_tcp_init(f->x.env.loop, &l->tcp);
	l->tcp.data = l;
	f->n_listeners++;
	uv_ip4_addr("127.0.0.1", l->spec.lport, &sin);
	if ((rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&sin, 0)) ||
	    (rc = uv_listen((uv_stream_t *)&l->tcp, FWD_BACKLOG, on_accept)) ||
	    (rc = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &len))) {
		log_error("cannot listen on 127.0.0.1:%u: %s", l->spec.lport,
		          uv_strerror(rc));
		return -1;
	}
	l->spec.lport = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	fprintf(stderr, "Forwarding 127.0.0.1:%u to %s:%u on %s's side\n",
	        l->spec.lport, l->spec.host, l->spec.port, f->x.env.peer_id);
	return 0;
}

/* ---- app ---------------------------------------------------------------------- */

static struct app *fwd_create(const struct app_env *env,
                              const struct app_args *args)
{
	struct fwd_app *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	for (int i = 0; i < args->n_forwards && i < APP_ARGS_MAX; i++)
		f->specs[f->n_specs++] = args->forwards[i];
	for (int i = 0; i < args->n_allows && i < FORWARD_ALLOW_MAX; i++) {
		char why[160];

		if (forward_allow_parse(args->allows[i], &f->x.allow[f->x.n_allow],
		                        why, sizeof(why)) == 0)
			f->x.n_allow++;
	}
	/* A TCP peer that resets is an error on that connection, not a
	 * signal that ends every other one. */
	signal(SIGPIPE, SIG_IGN);
	f->x.env = *env;
	f->x.state = FWD_APP_WAITING;
	uv_timer_init(env->loop, &f->end);
	f->end.data = f;
	return (struct app *)f;
}

/* What this side serves the peer: the -allow targets, or nothing. */
static void say_serving(const struct fwd_app *f)
{
	char list[FORWARD_ALLOW_MAX * (FORWARD_HOST_MAX + 10)];
	size_t n = 0;

	if (!f->x.n_allow) {
		fprintf(stderr, "Serving none of %s's connections (no -allow); Ctrl-C stops\n",
		        f->x.env.peer_id);
		return;
	}
	list[0] = '\0';
	for (int i = 0; i < f->x.n_allow && n < sizeof(list); i++) {
		const struct forward_target *t = &f->x.allow[i];
		int v6 = strchr(t->host, ':') != NULL;

		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s%s%s:%u",
		                      i ? ", " : "", v6 ? "[" : "", t->host,
		                      v6 ? "]" : "", t->port);
	}
	fprintf(stderr, "Serving %s's connections to %s; Ctrl-C stops\n",
	        f->x.env.peer_id, list);
}

/* The peer runs punch forward: our hello stream ends, and we listen. */
static void fwd_ready(struct app *a, const struct app_hello *h)
{
	struct fwd_app *f = (struct fwd_app *)a;

	log_debug("forward: %s runs punch forward", f->x.env.peer_id);
	if (quic_write_fin(f->x.env.quic, h->out)) {
		log_error("forward: cannot write on our stream");
		fwd_end(f, 1);
		return;
	}
	f->x.env.kick(f->x.env.ctx);
	if (f->x.state != FWD_APP_WAITING)
		return;
	fwd_set_state(f, FWD_APP_RUNNING);
	for (int i = 0; i < f->n_specs; i++) {
		if (listen_one(f, f->specs[i])) {
			fwd_end(f, 1);
			return;
		}
	}
	say_serving(f);
}

/* The peer stopped (its Ctrl-C): no error, unless connections were open. */
static void fwd_closed(struct app *a)
{
	struct fwd_app *f = (struct fwd_app *)a;
	unsigned open = fwd_conn_count(&f->x);

	if (open)
		log_error("%s closed the link with %u connection%s open; %s cut short",
		          f->x.env.peer_id, open, open == 1 ? "" : "s",
		          open == 1 ? "it was" : "they were");
	else
		fprintf(stderr, "%s stopped forwarding\n", f->x.env.peer_id);
	fwd_end(f, open ? 1 : 0);
}

static void fwd_interrupt(struct app *a)
{
	struct fwd_app *f = (struct fwd_app *)a;
	unsigned open = fwd_conn_count(&f->x);

	fprintf(stderr, "punch forward: stopping; closing %u connection%s\n",
	        open, open == 1 ? "" : "s");
	fwd_end(f, 0);
}

static void fwd_destroy(struct app *a)
{
	struct fwd_app *f = (struct fwd_app *)a;

	/* The loop has closed every handle and run every callback. */
	fwd_conn_free_all(&f->x);
	free(f);
}
/* The peer's connections at once: FWD_PEER_CONNS if this side serves
 * anything, else a few, enough to answer each with a refusal. */
static void fwd_limits(const struct app_args *args, struct quic_limits *lim)
{
	lim->peer_bidi = args->n_allows ? FWD_PEER_CONNS : FWD_PEER_CONNS_NONE;
	lim->peer_uni = APP_PEER_UNI;
}

const struct app_ops app_forward = {
	.name = "forward",
	.wire = "forward",
	.peer_cmd = "forward",
	.hint = "run punch forward on both sides",
	.create = fwd_create,
	.on_ready = fwd_ready,
	.on_data = fwd_data,
	.on_writable = fwd_writable,
	.on_stream_close = fwd_stream_close,
	.on_stream_error = fwd_stream_error,
	.on_interrupt = fwd_interrupt,
	.destroy = fwd_destroy,
	.defers_credit = 1,
	.limits = fwd_limits,
	.on_closed = fwd_closed,
};
