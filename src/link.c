#include "link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "quic.h"
#include "term.h"

struct link {
	struct link_env env;
	struct quic *quic;
	const struct app_ops *ops;
	struct app *app;
	struct app_args args;
	struct app_env app_env;
	uint64_t now_ns;
	int done;
	/* An app that ends asks for the close; it happens at the next tick,
	 * outside ngtcp2's callbacks, where ngtcp2 0.12 forbids writing the
	 * CONNECTION_CLOSE. */
	int close_pending, close_code;
	int draining;             /* closed by the peer; the app flushes */
};

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
	return 0;
}

/* ---- QUIC events to the app -------------------------------------------- */

static void q_send(void *ctx, const struct sockaddr *to, const uint8_t *buf,
                   size_t len)
{
	struct link *l = ctx;

	l->env.send(l->env.ctx, to, buf, len);
}

static void q_ready(void *ctx)
{
	struct link *l = ctx;
	char code[16];

	if (quic_short_code(l->quic, code) == 0)
		fprintf(stderr, "Secure link up: QUIC with TLS 1.3; short code %s "
		        "(%s sees the same one unless someone is in the middle)\n",
		        code, l->env.peer_id);
	l->ops->on_ready(l->app);
	l->env.kick(l->env.ctx);
}

static void q_data(void *ctx, int64_t id, const uint8_t *data, size_t len,
                   int fin)
{
	struct link *l = ctx;

	l->ops->on_data(l->app, id, data, len, fin);
	if (!l->ops->defers_credit)
		quic_consume(l->quic, id, len);
}

static void q_writable(void *ctx, int64_t id)
{
	struct link *l = ctx;

	if (l->ops->on_writable)
		l->ops->on_writable(l->app, id);
}

static void q_stream_close(void *ctx, int64_t id, uint64_t err)
{
	struct link *l = ctx;

	if (l->ops->on_stream_close)
		l->ops->on_stream_close(l->app, id, err);
}

static void q_closed(void *ctx, const char *reason)
{
	struct link *l = ctx;

	if (l->done)
		return;
	l->done = 1;
	if (reason) {
		/* It may hold the peer's CONNECTION_CLOSE reason phrase. */
		char shown[TERM_ESCAPE_SIZE(256)];

		log_error("link to %s closed: %s", l->env.peer_id,
		          term_str(shown, sizeof(shown), reason));
	}
	/* The peer has all it wanted; what it sent us may still be on its
	 * way to our output (credit is given as it is written). */
	if (!reason && l->ops->on_link_closed) {
		l->draining = 1;
		l->ops->on_link_closed(l->app);
		return;
	}
	l->env.finish(l->env.ctx, reason ? 1 : 0);
}

/* ---- app requests --------------------------------------------------------- */

static void app_finish(void *ctx, int code)
{
	struct link *l = ctx;

	if (l->draining) {
		l->draining = 0;
		l->env.finish(l->env.ctx, code);
		return;
	}
	if (l->done || l->close_pending)
		return;
	l->close_pending = 1;
	l->close_code = code;
	l->env.kick(l->env.ctx);
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
		.verify_peer = verify_peer,
		.on_ready = q_ready,
		.on_stream_data = q_data,
		.on_writable = q_writable,
		.on_stream_close = q_stream_close,
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
	if (app->limits)
		app->limits(args, &lim);
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
	if (l->close_pending && !l->done) {
		l->done = 1;
		quic_close(l->quic, l->close_code ? APP_ERR_ABORTED : APP_OK,
		           NULL, now_ns);
		l->env.finish(l->env.ctx, l->close_code);
		return UINT64_MAX;
	}
	return next;
}

void link_interrupt(struct link *l, uint64_t now_ns)
{
	l->now_ns = now_ns;
	if (quic_ready(l->quic) && l->ops->on_interrupt)
		l->ops->on_interrupt(l->app);
	else
		app_finish(l, 130);
}

void link_close(struct link *l, uint64_t app_error, uint64_t now_ns)
{
	l->now_ns = now_ns;
	if (l->done)
		return;
	l->done = 1;
	quic_close(l->quic, app_error, NULL, now_ns);
}
