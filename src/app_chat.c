/*
 * punch chat on the secure link: each side writes its lines on a
 * unidirectional stream of its own, the link's hello stream (app.h).  A
 * line "quit", or the end of input, ends the stream (FIN); the peer says
 * who left, ends its own stream, and both close the link.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "term.h"

enum {
	CHAT_LINE_MAX = 4096,
	CHAT_LINGER_MS = 3000, /* after our FIN, wait this long for the peer's */
};

/* Our stream and the peer's each end on their own, in either order. */
enum chat_out_state {
	CHAT_OUT_WAITING, /* for the link: no stream yet */
	CHAT_OUT_OPEN,    /* our lines go on it */
	CHAT_OUT_FIN,     /* "quit", end of input or Ctrl-C: FIN queued */
};

enum chat_peer_state {
	CHAT_PEER_TALKING, /* its lines come (once the link is up) */
	CHAT_PEER_LEFT,    /* its FIN came */
};

struct chat_app {
	struct app_env env;
	struct app_input in;
	int64_t out;              /* our stream, -1 until the link is up */
	enum chat_out_state out_state;
	int64_t peer;             /* the peer's stream, -1 until the link is up */
	enum chat_peer_state peer_state;
	char line[CHAT_LINE_MAX];
	size_t line_len;          /* a partial line from the peer */
	char typed[CHAT_LINE_MAX];
	size_t typed_len;         /* a partial line from our input */
	uv_timer_t linger;
};

static const char *chat_out_state_str(enum chat_out_state st)
{
	switch (st) {
	case CHAT_OUT_WAITING: return "waiting";
	case CHAT_OUT_OPEN: return "open";
	case CHAT_OUT_FIN: return "fin";
	}
	return "?";
}

static const char *chat_peer_state_str(enum chat_peer_state st)
{
	switch (st) {
	case CHAT_PEER_TALKING: return "talking";
	case CHAT_PEER_LEFT: return "left";
	}
	return "?";
}

/* Every state change goes through these, and is logged old -> new. */
static void chat_set_out_state(struct chat_app *c, enum chat_out_state st)
{
	log_debug("chat: ours %s -> %s", chat_out_state_str(c->out_state),
	          chat_out_state_str(st));
	c->out_state = st;
}

static void chat_set_peer_state(struct chat_app *c, enum chat_peer_state st)
{
	log_debug("chat: peer %s -> %s", chat_peer_state_str(c->peer_state),
	          chat_peer_state_str(st));
	c->peer_state = st;
}

static void send_line(struct chat_app *c, const char *s, size_t n)
{
	char buf[CHAT_LINE_MAX + 1];

	if (c->out_state != CHAT_OUT_OPEN)
		return;
	memcpy(buf, s, n);
	buf[n] = '\n';
	/* A full buffer (4 MB of unacknowledged chat) stops input instead. */
	if (quic_write(c->env.quic, c->out, buf, n + 1) != (long)(n + 1))
		log_warn("chat: a line could not be queued");
	c->env.kick(c->env.ctx);
}

static void on_linger(uv_timer_t *t)
{
	struct chat_app *c = t->data;

	c->env.finish(c->env.ctx, 0);
}

static void end_ours(struct chat_app *c)
{
	if (c->out_state == CHAT_OUT_FIN)
		return;
	chat_set_out_state(c, CHAT_OUT_FIN);
	app_input_pause(&c->in);
	if (c->out >= 0)
		quic_write_fin(c->env.quic, c->out);
	c->env.kick(c->env.ctx);
	if (c->peer_state == CHAT_PEER_LEFT)
		c->env.finish(c->env.ctx, 0);
	else
		uv_timer_start(&c->linger, on_linger, CHAT_LINGER_MS, 0);
}

static void on_input(void *ctx, const uint8_t *data, size_t len)
{
	struct chat_app *c = ctx;

	if (!len) {
		if (c->typed_len)
			send_line(c, c->typed, c->typed_len);
		c->typed_len = 0;
		end_ours(c);
		return;
	}
	for (size_t i = 0; i < len && c->out_state != CHAT_OUT_FIN; i++) {
		if (data[i] != '\n' && c->typed_len < sizeof(c->typed)) {
			c->typed[c->typed_len++] = (char)data[i];
			continue;
		}
		if (c->typed_len && c->typed[c->typed_len - 1] == '\r')
			c->typed_len--;
		if (c->typed_len == 4 && !memcmp(c->typed, "quit", 4))
			end_ours(c);
		else if (c->typed_len)
			send_line(c, c->typed, c->typed_len);
		c->typed_len = 0;
		if (data[i] != '\n')
			c->typed[c->typed_len++] = (char)data[i];
	}
}

static struct app *chat_create(const struct app_env *env,
                               const struct app_args *args)
{
	struct chat_app *c = calloc(1, sizeof(*c));

	(void)args;
	if (!c)
		return NULL;
	c->env = *env;
	c->out = c->peer = -1;
	c->out_state = CHAT_OUT_WAITING;
	c->peer_state = CHAT_PEER_TALKING;
	uv_timer_init(env->loop, &c->linger);
	c->linger.data = c;
	return (struct app *)c;
}

static void chat_ready(struct app *a, const struct app_hello *h)
{
	struct chat_app *c = (struct chat_app *)a;

	c->out = h->out;
	c->peer = h->in;
	if (c->out_state == CHAT_OUT_WAITING)
		chat_set_out_state(c, CHAT_OUT_OPEN);
	fprintf(stderr, "Type a line and press Enter to send it; 'quit' ends the chat.\n");
	if (app_input_open(&c->in, c->env.loop, 0, on_input, c))
		log_warn("cannot read standard input; receiving only");
}

static void print_line(struct chat_app *c)
{
	char esc[TERM_ESCAPE_SIZE(CHAT_LINE_MAX)];

	term_escape(esc, sizeof(esc), c->line, c->line_len);
	printf("%s: %s\n", c->env.peer_id, esc);
	fflush(stdout);
	c->line_len = 0;
}

static void chat_data(struct app *a, int64_t id, const uint8_t *data,
                      size_t len, int fin)
{
	struct chat_app *c = (struct chat_app *)a;

	if (id != c->peer)
		return;
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' || c->line_len == sizeof(c->line)) {
			print_line(c);
			if (data[i] == '\n')
				continue;
		}
		c->line[c->line_len++] = (char)data[i];
	}
	if (fin) {
		if (c->line_len)
			print_line(c);
		chat_set_peer_state(c, CHAT_PEER_LEFT);
		fprintf(stderr, "%s left the chat\n", c->env.peer_id);
		if (c->out_state == CHAT_OUT_FIN)
			c->env.finish(c->env.ctx, 0);
		else
			end_ours(c);
	}
}

static void chat_interrupt(struct app *a)
{
	end_ours((struct chat_app *)a);
}

static void chat_destroy(struct app *a)
{
	struct chat_app *c = (struct chat_app *)a;

	app_input_close(&c->in);
	free(c);
}

const struct app_ops app_chat = {
	.name = "chat",
	.wire = "chat",
	.peer_cmd = "chat",
	.hint = "run the same command on both sides",
	.create = chat_create,
	.on_ready = chat_ready,
	.on_data = chat_data,
	.on_interrupt = chat_interrupt,
	.destroy = chat_destroy,
};
