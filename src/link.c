#include "link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "link_pair.h"
#include "log.h"
#include "quic.h"
#include "term.h"

enum link_state {
	LINK_OPEN,
	/* An app that ends asks for the close; it happens at the next tick,
	 * outside ngtcp2's callbacks, where ngtcp2 0.12 forbids writing the
	 * CONNECTION_CLOSE. */
	LINK_CLOSING,
	LINK_DRAINING, /* closed by the peer; the app flushes, then finishes */
	LINK_DONE,
};

/* Where the app stands on the link: the hello (app.h) comes first. */
enum link_app_state {
	LINK_APP_WAIT,      /* the handshake or the pairing is under way */
	LINK_APP_HELLO,     /* the hellos: ours (the server's first), the peer's */
	LINK_APP_RUNNING,   /* the names matched: on_ready has run */
	LINK_APP_MISMATCH,  /* they did not: said so, closing */
};

struct link {
	struct link_env env;
	struct quic *quic;
	const struct app_ops *ops;
	struct app *app;
	struct app_args args;
	struct app_env app_env;
	uint64_t now_ns;
	enum link_state state;
	int close_code;           /* LINK_CLOSING: the exit status */
	uint64_t close_error;     /* the QUIC application error to close with */
	struct link_pair pair;
	uint8_t peer_fp[IDENTITY_FP_LEN];
	enum link_app_state app_state;
	int64_t hello_out, hello_in;  /* our hello's stream, the peer's (-1: none yet) */
	int said;                 /* our hello is written */
	int hello_fin;            /* the peer's hello stream ended */
	struct app_hello hello;   /* for on_ready */
	struct app_header peer_hello;
};

static const char *link_state_str(enum link_state s)
{
	switch (s) {
	case LINK_OPEN: return "open";
	case LINK_CLOSING: return "closing";
	case LINK_DRAINING: return "draining";
	case LINK_DONE: return "done";
	}
	return "?";
}

/* Every state change goes through here, and is logged old -> new. */
static void set_state(struct link *l, enum link_state s)
{
	if (l->state == s)
		return;
	log_debug("link: %s -> %s", link_state_str(l->state),
	          link_state_str(s));
	l->state = s;
}

/* The link is over, or on its way out. */
static int link_ended(const struct link *l)
{
	return l->state == LINK_DRAINING || l->state == LINK_DONE;
}

/* ---- trust ------------------------------------------------------------ */

static void say_key(const char *what, const uint8_t fp[IDENTITY_FP_LEN])
{
	char s[IDENTITY_FP_STRLEN];

	identity_fp_str(fp, s);
	fprintf(stderr, "%s %s\n", what, s);
}

static int verify_peer(void *ctx, const uint8_t fp[IDENTITY_FP_LEN])
{
	struct link *l = ctx;
	const struct link_env *e = &l->env;
	char seen[IDENTITY_FP_STRLEN], want[IDENTITY_FP_STRLEN];
	int line = 0, known;

	identity_fp_str(fp, seen);
	memcpy(l->peer_fp, fp, IDENTITY_FP_LEN);
	if (e->pinned) {
		if (!memcmp(fp, e->pinned, IDENTITY_FP_LEN)) {
			say_key("Peer key matches -peer-key:", fp);
			return 0;
		}
		identity_fp_str(e->pinned, want);
		log_error("%s's key is %s, not the pinned %s: refusing to connect",
		          e->peer_id, seen, want);
		return -1;
	}
	known = known_peers_check(e->id->dir, e->peer_id, fp, &line);
	if (e->code && known != KNOWN_MATCH) {
		/* The code decides, before the app starts (link_pair.c). */
		fprintf(stderr, "Peer key %s %s; pairing with the code decides\n",
		        seen, known == KNOWN_MISMATCH ? "differs from known_peers" : known == KNOWN_ERROR ? "is not readable in known_peers" :
		                                                                                            "is new");
		return 0;
	}
	if (known == KNOWN_MATCH) {
		say_key("Peer key matches known_peers:", fp);
		return 0;
	}
	if (known == KNOWN_MISMATCH) {
		log_error("WARNING: %s's key has changed! It is now %s, but %s/known_peers line %d "
		          "has a different one. Someone may be in the middle, or %s has a new key. "
		          "Refusing to connect; if the change is expected, delete line %d.",
		          e->peer_id, seen, e->id->dir, line, e->peer_id, line);
		return -1;
	}
	if (known == KNOWN_ERROR) {
		log_error("%s/known_peers line %d is unreadable; fix or delete it",
		          e->id->dir, line);
		return -1;
	}
	if (!e->relayed || memcmp(fp, e->relayed, IDENTITY_FP_LEN)) {
		log_error("%s's key %s is not the one it registered with the server; refusing to connect",
		          e->peer_id, seen);
		return -1;
	}
	if (known_peers_add(e->id->dir, e->peer_id, fp))
		log_warn("cannot write %s/known_peers", e->id->dir);
	fprintf(stderr, "Peer key %s is new; remembered in %s/known_peers\n",
	        seen, e->id->dir);
	fprintf(stderr, "unverified: only the rendezvous server vouches for %s's key; "
	                "compare the short code with %s, or pair with -code\n",
	        e->peer_id, e->peer_id);
	return 0;
}

/* ---- QUIC events to the app -------------------------------------------- */

static void q_send(void *ctx, const struct sockaddr *to, const uint8_t *buf,
                   size_t len)
{
	struct link *l = ctx;

	l->env.send(l->env.ctx, to, buf, len);
}

static void q_send_segments(void *ctx, const struct sockaddr *to,
                            const uint8_t *buf, size_t len, size_t seg)
{
	struct link *l = ctx;

	if (l->env.send_segments) {
		l->env.send_segments(l->env.ctx, to, buf, len, seg);
		return;
	}
	for (size_t off = 0; off < len; off += seg)
		l->env.send(l->env.ctx, to, buf + off,
		            len - off < seg ? len - off : seg);
}

/* Close soon (not inside ngtcp2's callbacks), with this error. */
static void close_soon(struct link *l, int exit_code, uint64_t app_error)
{
	if (l->state != LINK_OPEN)
		return;
	set_state(l, LINK_CLOSING);
	l->close_code = exit_code;
	l->close_error = app_error;
	l->env.kick(l->env.ctx);
}

static void pair_failed(struct link *l)
{
	log_error("%s", link_pair_why(&l->pair));
	close_soon(l, 1, APP_ERR_PAIRING);
}

/* ---- the hello (app.h) ------------------------------------------------------ */

static const char *app_state_str(enum link_app_state st)
{
	switch (st) {
	case LINK_APP_WAIT: return "wait";
	case LINK_APP_HELLO: return "hello";
	case LINK_APP_RUNNING: return "running";
	case LINK_APP_MISMATCH: return "mismatch";
	}
	return "?";
}

static void app_set_state(struct link *l, enum link_app_state st)
{
	log_debug("link: app %s -> %s", app_state_str(l->app_state),
	          app_state_str(st));
	l->app_state = st;
}

/* A stream the peer opened, unidirectional: its hello comes on the first. */
static int stream_is_peer_uni(const struct link *l, int64_t id)
{
	return app_stream_is_uni(id) && !quic_stream_is_ours(l->quic, id);
}

/* Our hello, once.  0, or -1 after closing. */
static int hello_say(struct link *l)
{
	const char *rest = l->ops->hello_rest ? l->ops->hello_rest(l->app) : NULL;
	int n;

	if (l->said || l->hello_out < 0)
		return 0;
	l->said = 1;
	if ((n = app_header_write(l->quic, l->hello_out, l->ops->wire, rest)) < 0) {
		log_error("%s: cannot write on our stream", l->ops->name);
		close_soon(l, 1, APP_ERR_ABORTED);
		return -1;
	}
	l->hello.out_len = (size_t)n;
	l->env.kick(l->env.ctx);
	return 0;
}

/* The names differ (runs: what the peer runs instead): say so on both
 * sides (our hello tells the peer) and close. */
static void hello_mismatch(struct link *l, const char *runs)
{
	log_error("%s is not running punch %s (it runs %s); %s", l->env.peer_id,
	          l->ops->peer_cmd, runs, l->ops->hint);
	app_set_state(l, LINK_APP_MISMATCH);
	hello_say(l);
	close_soon(l, 1, APP_ERR_MISMATCH);
}

/* Both hellos are in (ours after the peer's, for the client): compare. */
static void hello_check(struct link *l)
{
	const struct app_header *h = &l->peer_hello;
	char name[TERM_ESCAPE_SIZE(APP_HEADER_MAX)];

	if (l->app_state != LINK_APP_HELLO || !h->done)
		return;
	if (strcmp(h->name, l->ops->wire)) {
		hello_mismatch(l, !strcmp(h->name, "file") ? "send or recv" :
		                                             term_str(name, sizeof(name), h->name));
		return;
	}
	if (hello_say(l))
		return;
	l->hello.out = l->hello_out;
	l->hello.in = l->hello_in;
	l->hello.rest = h->rest;
	app_set_state(l, LINK_APP_RUNNING);
	l->ops->on_ready(l->app, &l->hello);
	l->env.kick(l->env.ctx);
	if (l->hello_fin && l->app_state == LINK_APP_RUNNING && !link_ended(l))
		l->ops->on_data(l->app, l->hello_in, NULL, 0, 1);
}

/* The link is up and paired: open our stream; the server speaks first. */
static void hello_start(struct link *l)
{
	if (l->app_state != LINK_APP_WAIT)
		return;
	app_set_state(l, LINK_APP_HELLO);
	if ((l->hello_out = quic_open_stream(l->quic, 0)) < 0) {
		log_error("%s: cannot open a stream", l->ops->name);
		close_soon(l, 1, APP_ERR_ABORTED);
		return;
	}
	if (!l->env.is_client && hello_say(l))
		return;
	hello_check(l);  /* the peer's came while we paired */
}

/* The peer's hello stream: gather its line.  The bytes it used (consumed
 * here), or -1 once the link is closing over it. */
static long hello_feed(struct link *l, const uint8_t *data, size_t len,
                       int fin)
{
	long used = 0;

	if (!l->peer_hello.done && len)
		used = app_header_feed(&l->peer_hello, data, len);
	if (used < 0) {
		quic_consume(l->quic, l->hello_in, len);
		hello_mismatch(l, "something else");
		return -1;
	}
	quic_consume(l->quic, l->hello_in, (size_t)used);
	if (fin && !l->peer_hello.done) {
		log_error("%s ended its stream before saying what it runs",
		          l->env.peer_id);
		app_set_state(l, LINK_APP_MISMATCH);
		close_soon(l, 1, APP_ERR_MISMATCH);
		return -1;
	}
	if ((size_t)used < len && l->app_state == LINK_APP_WAIT) {
		/* The peer sends only after our hello, which we have not
		 * written yet. */
		quic_consume(l->quic, l->hello_in, len - (size_t)used);
		log_error("%s sent data before its hello was answered",
		          l->env.peer_id);
		close_soon(l, 1, APP_ERR_ABORTED);
		return -1;
	}
	if ((size_t)used == len && fin)
		l->hello_fin = 1;
	hello_check(l);
	return used;
}

/* ---- QUIC events to the app -------------------------------------------- */

static void q_ready(void *ctx)
{
	struct link *l = ctx;
	const uint8_t *own = l->env.id->fp;
	uint8_t exp[32];
	char code[IDENTITY_SHORT_CODE_LEN];

	if (quic_export(l->quic, "EXPORTER-punch-short-code", exp, sizeof(exp)) == 0) {
		identity_short_code(exp, l->env.is_client ? own : l->peer_fp,
		                    l->env.is_client ? l->peer_fp : own, code);
		fprintf(stderr, "Secure link up: QUIC with TLS 1.3; short code %s "
		                "(%s sees the same one unless someone is in the middle)\n",
		        code, l->env.peer_id);
	}
	if (link_pair_pending(&l->pair)) {
		if (link_pair_start(&l->pair, l->quic, own, l->peer_fp,
		                    l->now_ns) == PAIR_FAIL)
			pair_failed(l);
		l->env.kick(l->env.ctx);
		if (link_pair_pending(&l->pair))
			return;
	}
	hello_start(l);
	l->env.kick(l->env.ctx);
}

static void q_data(void *ctx, int64_t id, const uint8_t *data, size_t len,
                   int fin)
{
	struct link *l = ctx;
	int was_pending = link_pair_pending(&l->pair);
	long used;

	switch (link_pair_on_data(&l->pair, l->quic, id, data, len, fin)) {
	case PAIR_FAIL:
		pair_failed(l);
		return;
	case PAIR_TAKEN:
		/* the pairing stream's bytes are consumed as they come */
		quic_consume(l->quic, id, len);
		if (was_pending && !link_pair_pending(&l->pair))
			hello_start(l);
		return;
	default:
		break;
	}
	if (was_pending && !link_pair_pending(&l->pair))
		hello_start(l);
	if (l->state != LINK_OPEN || l->app_state == LINK_APP_MISMATCH) {
		quic_consume(l->quic, id, len);  /* closing: dropped */
		return;
	}
	if (l->hello_in < 0 && stream_is_peer_uni(l, id))
		l->hello_in = id;
	if (id == l->hello_in && l->app_state != LINK_APP_RUNNING) {
		if ((used = hello_feed(l, data, len, fin)) < 0)
			return;  /* consumed; closing */
		/* A FIN right after the hello went with it (hello_fin). */
		data += used;
		len -= (size_t)used;
		if (!len || l->app_state != LINK_APP_RUNNING)
			return;
	}
	/* Before RUNNING, only a stream other than the hello's gets here: a
	 * forwarded connection the peer opened once it had our hello, which
	 * overtook its own. */
	l->ops->on_data(l->app, id, data, len, fin);
	if (!l->ops->defers_credit)
		quic_consume(l->quic, id, len);
}

static void q_writable(void *ctx, int64_t id)
{
	struct link *l = ctx;

	if (link_pair_owns(&l->pair, id))
		return;
	if (l->ops->on_writable)
		l->ops->on_writable(l->app, id);
}

static void q_stream_close(void *ctx, int64_t id, uint64_t err)
{
	struct link *l = ctx;

	if (link_pair_owns(&l->pair, id))
		return;
	if (l->ops->on_stream_close)
		l->ops->on_stream_close(l->app, id, err);
}

/* What an application error code (app.h, docs/protocol.md) means. */
static const char *app_error_name(uint64_t code)
{
	switch (code) {
	case APP_OK:
		return "no error";
	case APP_ERR_MISMATCH:
		return "the two sides run different commands";
	case APP_ERR_ABORTED:
		return "aborted";
	case APP_ERR_CORRUPT:
		return "the transfer failed its check";
	case APP_ERR_PAIRING:
		return "pairing failed";
	default:
		return "unknown";
	}
}

/* The peer reset or stopped one of the app's streams: the app decides, or
 * the session ends (every app but forward has one stream each way). */
static void stream_error(struct link *l, int64_t id, uint64_t code,
                         const char *what)
{
	char why[256];

	if (link_pair_owns(&l->pair, id) || link_ended(l))
		return;
	snprintf(why, sizeof(why), "%s %s (code %llu: %s)", l->env.peer_id,
	         what, (unsigned long long)code, app_error_name(code));
	if (l->ops->on_stream_error) {
		l->ops->on_stream_error(l->app, id, code, why);
		return;
	}
	log_error("%s", why);
	close_soon(l, 1, APP_ERR_ABORTED);
}

static void q_stream_reset(void *ctx, int64_t id, uint64_t code)
{
	stream_error(ctx, id, code, "reset the stream it was sending");
}

static void q_stop_sending(void *ctx, int64_t id, uint64_t code)
{
	stream_error(ctx, id, code, "stopped reading our stream");
}

static void q_closed(void *ctx, const char *reason)
{
	struct link *l = ctx;

	if (link_ended(l))
		return;
	set_state(l, LINK_DONE);
	if (l->pair.state == PAIR_STATE_FAILED) {
		l->env.finish(l->env.ctx, 1); /* pair_failed() said why */
		return;
	}
	/* The peer wanted to pair and gave up on us before its pairing
	 * stream reached us: say so as if it had. */
	if ((!l->env.code || !l->env.code[0]) &&
	    quic_peer_app_error(l->quic) == APP_ERR_PAIRING) {
		log_error("%s wants to pair with a code, and this side has none: run punch with -code and the same code",
		          l->env.peer_id);
		l->env.finish(l->env.ctx, 1);
		return;
	}
	if (link_pair_pending(&l->pair) &&
	    l->pair.state != PAIR_STATE_WAIT_LINK) {
		log_error("pairing code did not match: %s ended the link during pairing (%s); nothing was pinned",
		          l->env.peer_id, reason ? reason : "a clean close");
		l->env.finish(l->env.ctx, 1);
		return;
	}
	if (l->app_state == LINK_APP_MISMATCH) {
		l->env.finish(l->env.ctx, 1); /* hello_mismatch() said why */
		return;
	}
	if (!reason && l->app_state != LINK_APP_RUNNING) {
		log_error("%s closed the link before saying what it runs",
		          l->env.peer_id);
		l->env.finish(l->env.ctx, 1);
		return;
	}
	if (reason) {
		/* It may hold the peer's CONNECTION_CLOSE reason phrase. */
		char shown[TERM_ESCAPE_SIZE(256)];

		log_error("link to %s closed: %s", l->env.peer_id,
		          term_str(shown, sizeof(shown), reason));
	}
	/* A clean close: the app says whether the peer left mid-transfer,
	 * and what it sent us may still be on its way to our output (credit
	 * is given as it is written). */
	if (!reason && l->ops->on_closed) {
		set_state(l, LINK_DRAINING);
		l->ops->on_closed(l->app);
		return;
	}
	l->env.finish(l->env.ctx, reason ? 1 : 0);
}

/* ---- app requests --------------------------------------------------------- */

static void app_finish(void *ctx, int code)
{
	struct link *l = ctx;

	if (l->state == LINK_DRAINING) {
		set_state(l, LINK_DONE);
		l->env.finish(l->env.ctx, code);
		return;
	}
	close_soon(l, code, code ? APP_ERR_ABORTED : APP_OK);
}

static void app_kick(void *ctx)
{
	struct link *l = ctx;

	l->env.kick(l->env.ctx);
}

struct link *link_new(const struct link_env *env, const struct app_ops *app,
                      const struct app_args *args, uint64_t now_ns,
                      char *err, size_t errlen)
{
	static const struct quic_callbacks cbs = {
		.send = q_send,
		.send_segments = q_send_segments,
		.verify_peer = verify_peer,
		.on_ready = q_ready,
		.on_stream_data = q_data,
		.on_writable = q_writable,
		.on_stream_close = q_stream_close,
		.on_stream_reset = q_stream_reset,
		.on_stop_sending = q_stop_sending,
		.on_closed = q_closed,
	};
	struct link *l = calloc(1, sizeof(*l));
	struct quic_limits lim = { 0, APP_PEER_UNI };

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->env = *env;
	l->ops = app;
	l->args = *args;
	l->now_ns = now_ns;
	l->hello_out = l->hello_in = -1;
	if (app->limits)
		app->limits(args, &lim);
	link_pair_init(&l->pair, env->code, env->peer_id, env->id->dir,
	               env->is_client);
	l->quic = quic_new(env->is_client, env->id,
	                   (const struct sockaddr *)&env->local,
	                   (const struct sockaddr *)&env->remote, &lim, &cbs, l,
	                   now_ns, err, errlen);
	if (!l->quic) {
		free(l);
		return NULL;
	}
	l->app_env = (struct app_env){
		.loop = env->loop,
		.quic = l->quic,
		.peer_id = env->peer_id,
		.tty = isatty(2),
		.finish = app_finish,
		.kick = app_kick,
		.ctx = l,
	};
	l->app = app->create(&l->app_env, &l->args);
	if (!l->app) {
		snprintf(err, errlen, "cannot start %s", app->name);
		quic_free(l->quic);
		free(l);
		return NULL;
	}
	return l;
}

void link_free(struct link *l)
{
	if (!l)
		return;
	l->ops->destroy(l->app);
	quic_free(l->quic);
	link_pair_wipe(&l->pair);
	free(l);
}

void link_on_datagram(struct link *l, const struct sockaddr *from,
                      const uint8_t *buf, size_t len, uint64_t now_ns)
{
	l->now_ns = now_ns;
	quic_on_datagram(l->quic, from, buf, len, now_ns);
}

uint64_t link_tick(struct link *l, uint64_t now_ns)
{
	uint64_t next;

	l->now_ns = now_ns;
	next = quic_tick(l->quic, now_ns);
	if (link_pair_tick(&l->pair, now_ns, &next) == PAIR_FAIL)
		pair_failed(l);
	if (l->state == LINK_CLOSING) {
		set_state(l, LINK_DONE);
		quic_close(l->quic, l->close_error,
		           l->close_error == APP_ERR_PAIRING ?
		                   "pairing code did not match" :
		                   NULL,
		           now_ns);
		l->env.finish(l->env.ctx, l->close_code);
		return UINT64_MAX;
	}
	return next;
}

void link_interrupt(struct link *l, uint64_t now_ns)
{
	l->now_ns = now_ns;
	if (quic_ready(l->quic) && l->app_state == LINK_APP_RUNNING &&
	    l->ops->on_interrupt)
		l->ops->on_interrupt(l->app);
	else
		app_finish(l, 130);
}

void link_close(struct link *l, uint64_t app_error, uint64_t now_ns)
{
	l->now_ns = now_ns;
	if (link_ended(l))
		return;
	set_state(l, LINK_DONE);
	quic_close(l->quic, app_error, NULL, now_ns);
}
