/*
 * server_conn.c: the client's TCP connection to its server.  Fed bytes
 * (no socket): whole messages out across split reads, and a server that
 * sends garbage or a message over FRAME_MAX closes the connection with a
 * reason, never a crash or a message.  Over loopback TCP: a server that
 * sends garbage, one that hangs up, a refused connect, and ChannelData
 * padded on the wire (RFC 8656 12.5); every handle closed at the end.
 */
#include "unit.h"

#include <stdlib.h>
#include <uv.h>

#include "server_conn.h"

enum { LOOP_LIMIT_MS = 5000 };

struct seen {
	int msgs;
	size_t lens[8];
	enum frame_kind kinds[8];
	int closed, opened;
	char why[SCONN_REASON_MAX];
};

static void on_message(void *ctx, enum frame_kind kind, const uint8_t *msg,
                       size_t len)
{
	struct seen *s = ctx;

	(void)msg;
	if (s->msgs < 8) {
		s->lens[s->msgs] = len;
		s->kinds[s->msgs] = kind;
	}
	s->msgs++;
}

static void on_state(void *ctx, enum sconn_state old, enum sconn_state now,
                     const char *why)
{
	struct seen *s = ctx;

	(void)old;
	if (now == SCONN_OPEN)
		s->opened++;
	if (now == SCONN_CLOSED) {
		s->closed++;
		snprintf(s->why, sizeof(s->why), "%s", why ? why : "");
	}
}

static size_t stun_msg(uint8_t *buf, size_t body)
{
	memset(buf, 0, FRAME_STUN_HEADER + body);
	raw_put16(buf, 0x0101); /* a Binding success */
	raw_put16(buf + 2, (uint16_t)body);
	raw_put32(buf + 4, 0x2112A442);
	return FRAME_STUN_HEADER + body;
}

/* Split reads: one STUN message and one padded ChannelData, byte by byte. */
static void test_feed_split(void **state)
{
	uint8_t b[64];
	struct seen s = { 0 };
	struct server_conn *sc = server_conn_new(NULL, on_message, on_state, &s);
	size_t n = stun_msg(b, 8);

	(void)state;
	raw_put16(b + n, 0x4001);
	raw_put16(b + n + 2, 5);
	memset(b + n + 4, 0xAB, 8); /* 5 data bytes, 3 padding */
	for (size_t i = 0; i < n + 12; i++)
		server_conn_feed(sc, b + i, 1);
	assert_int_equal(s.msgs, 2);
	assert_size(s.lens[0], 28);
	assert_int_equal(s.kinds[0], FRAME_STUN);
	assert_size(s.lens[1], 9);
	assert_int_equal(s.kinds[1], FRAME_CHANNEL);
	assert_int_equal(s.closed, 0);
	assert_int_equal(server_conn_state(sc), SCONN_OPEN);
	server_conn_free(sc);
}

/* The attack: bytes that are neither STUN nor ChannelData, after a good
 * message.  The good one comes out; then the connection closes, saying
 * why, and nothing after the garbage is taken. */
static void test_feed_garbage(void **state)
{
	uint8_t b[128];
	struct seen s = { 0 };
	struct server_conn *sc = server_conn_new(NULL, on_message, on_state, &s);
	size_t n = stun_msg(b, 0);

	(void)state;
	memset(b + n, 0xFF, 16);
	stun_msg(b + n + 16, 0);
	server_conn_feed(sc, b, n + 16 + 20);
	assert_int_equal(s.msgs, 1);
	assert_int_equal(s.closed, 1);
	assert_non_null(strstr(s.why, "neither STUN nor ChannelData"));
	assert_int_equal(server_conn_state(sc), SCONN_CLOSED);
	/* and nothing more, ever */
	server_conn_feed(sc, b, n);
	assert_int_equal(s.msgs, 1);
	assert_int_equal(s.closed, 1);
	server_conn_free(sc);
}

/* A STUN header announcing 64 KB, and ChannelData announcing 65535: over
 * FRAME_MAX, closed before the body is waited for. */
static void test_feed_oversize(void **state)
{
	uint8_t b[FRAME_STUN_HEADER];
	(void)state;

	for (int kind = 0; kind < 2; kind++) {
		struct seen s = { 0 };
		struct server_conn *sc =
			server_conn_new(NULL, on_message, on_state, &s);

		if (kind == 0) {
			stun_msg(b, 0);
			raw_put16(b + 2, 0xFFFC);
		} else {
			memset(b, 0, sizeof(b));
			raw_put16(b, 0x4001);
			raw_put16(b + 2, 0xFFFF);
		}
		server_conn_feed(sc, b, sizeof(b));
		assert_int_equal(s.msgs, 0);
		assert_int_equal(s.closed, 1);
		assert_non_null(strstr(s.why, "over 4096 bytes"));
		server_conn_free(sc);
	}
}

/* ---- over loopback TCP ------------------------------------------------- */

enum srv_mode {
	SRV_GARBAGE,  /* write bytes that are neither STUN nor ChannelData */
	SRV_HANG_UP,  /* close at once */
	SRV_ECHO_LEN, /* read what comes, keep it */
};

struct fake_server {
	uv_tcp_t listen, conn;
	int have_conn;
	enum srv_mode mode;
	uint8_t got[64];
	size_t got_len;
	uv_write_t wr;
};

static void srv_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
	struct fake_server *f = h->data;

	(void)sz;
	*buf = uv_buf_init((char *)f->got + f->got_len,
	                   (unsigned)(sizeof(f->got) - f->got_len));
}

static void srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct fake_server *f = st->data;

	(void)buf;
	if (n > 0)
		f->got_len += (size_t)n;
}

static void srv_on_conn(uv_stream_t *l, int status)
{
	static const uint8_t junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
	struct fake_server *f = l->data;
	uv_buf_t b = uv_buf_init((char *)junk, sizeof(junk) - 1);

	assert_int_equal(status, 0);
	uv_tcp_init(l->loop, &f->conn);
	f->conn.data = f;
	assert_int_equal(uv_accept(l, (uv_stream_t *)&f->conn), 0);
	f->have_conn = 1;
	if (f->mode == SRV_GARBAGE)
		uv_write(&f->wr, (uv_stream_t *)&f->conn, &b, 1, NULL);
	else if (f->mode == SRV_HANG_UP)
		uv_close((uv_handle_t *)&f->conn, NULL);
	else
		uv_read_start((uv_stream_t *)&f->conn, srv_alloc, srv_read);
}

static int srv_start(uv_loop_t *loop, struct fake_server *f,
                     enum srv_mode mode, struct sockaddr_in *bound)
{
	struct sockaddr_in any;
	int len = sizeof(*bound);

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	uv_ip4_addr("127.0.0.1", 0, &any);
	uv_tcp_init(loop, &f->listen);
	f->listen.data = f;
	assert_int_equal(uv_tcp_bind(&f->listen, (struct sockaddr *)&any, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&f->listen, 4, srv_on_conn), 0);
	return uv_tcp_getsockname(&f->listen, (struct sockaddr *)bound, &len);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void on_limit(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* Run the loop until done() or LOOP_LIMIT_MS. */
static void run_until(uv_loop_t *loop, int (*done)(void *), void *arg)
{
	uv_timer_t limit;
	uint64_t end = uv_now(loop) + LOOP_LIMIT_MS;

	uv_timer_init(loop, &limit);
	uv_timer_start(&limit, on_limit, LOOP_LIMIT_MS, 0);
	while (!done(arg) && uv_now(loop) < end)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&limit, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

static int is_closed(void *arg)
{
	return ((struct seen *)arg)->closed > 0;
}

static int is_open(void *arg)
{
	return ((struct seen *)arg)->opened > 0;
}

static int got_12(void *arg)
{
	return ((struct fake_server *)arg)->got_len >= 12;
}

/* Tear down: the connection freed, every handle closed, the loop empty. */
static void finish_loop(uv_loop_t *loop, struct server_conn *sc)
{
	server_conn_free(sc);
	uv_walk(loop, close_walk, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
}

static void test_tcp_garbage(void **state)
{
	uv_loop_t loop;
	struct fake_server f;
	struct sockaddr_in at;
	struct seen s = { 0 };
	struct server_conn *sc;

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(srv_start(&loop, &f, SRV_GARBAGE, &at), 0);
	sc = server_conn_new(&loop, on_message, on_state, &s);
	assert_int_equal(server_conn_open(sc, (struct sockaddr *)&at,
	                                  uv_now(&loop)),
	                 0);
	run_until(&loop, is_closed, &s);
	assert_int_equal(s.opened, 1);
	assert_int_equal(s.closed, 1);
	assert_int_equal(s.msgs, 0);
	assert_non_null(strstr(s.why, "neither STUN nor ChannelData"));
	finish_loop(&loop, sc);
}

static void test_tcp_hang_up(void **state)
{
	uv_loop_t loop;
	struct fake_server f;
	struct sockaddr_in at;
	struct seen s = { 0 };
	struct server_conn *sc;

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(srv_start(&loop, &f, SRV_HANG_UP, &at), 0);
	sc = server_conn_new(&loop, on_message, on_state, &s);
	server_conn_open(sc, (struct sockaddr *)&at, uv_now(&loop));
	run_until(&loop, is_closed, &s);
	assert_int_equal(s.closed, 1);
	/* EOF, or a reset if the close raced our connect */
	assert_true(strstr(s.why, "closed the connection") ||
	            strstr(s.why, "reset"));
	finish_loop(&loop, sc);
}

static void test_tcp_refused(void **state)
{
	uv_loop_t loop;
	struct fake_server f;
	struct sockaddr_in at;
	struct seen s = { 0 };
	struct server_conn *sc;

	(void)state;
	uv_loop_init(&loop);
	/* a port that was just free: listen, learn it, close */
	assert_int_equal(srv_start(&loop, &f, SRV_HANG_UP, &at), 0);
	uv_close((uv_handle_t *)&f.listen, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	sc = server_conn_new(&loop, on_message, on_state, &s);
	server_conn_open(sc, (struct sockaddr *)&at, uv_now(&loop));
	run_until(&loop, is_closed, &s);
	assert_int_equal(s.opened, 0);
	assert_int_equal(s.closed, 1);
	assert_non_null(strstr(s.why, "refused"));
	finish_loop(&loop, sc);
}

/* ChannelData of 5 bytes is 8 on the wire: padded with zeros. */
static void test_tcp_pads_channel_data(void **state)
{
	static const uint8_t cd[] = { 0x40, 0x01, 0x00, 0x01, 0x7A };
	uv_loop_t loop;
	struct fake_server f;
	struct sockaddr_in at;
	struct seen s = { 0 };
	struct server_conn *sc;

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(srv_start(&loop, &f, SRV_ECHO_LEN, &at), 0);
	sc = server_conn_new(&loop, on_message, on_state, &s);
	assert_int_equal(server_conn_send(sc, cd, sizeof(cd)), -1); /* not open */
	server_conn_open(sc, (struct sockaddr *)&at, uv_now(&loop));
	run_until(&loop, is_open, &s);
	assert_int_equal(server_conn_send(sc, cd, sizeof(cd)), 0);
	assert_int_equal(server_conn_send(sc, cd, 4), 0); /* no data: no pad */
	run_until(&loop, got_12, &f);
	assert_size(f.got_len, 12);
	assert_memory_equal(f.got, cd, sizeof(cd));
	assert_memory_equal(f.got + 5, "\0\0\0", 3);
	assert_memory_equal(f.got + 8, cd, 4);
	finish_loop(&loop, sc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_feed_split),
		cmocka_unit_test(test_feed_garbage),
		cmocka_unit_test(test_feed_oversize),
		cmocka_unit_test(test_tcp_garbage),
		cmocka_unit_test(test_tcp_hang_up),
		cmocka_unit_test(test_tcp_refused),
		cmocka_unit_test(test_tcp_pads_channel_data),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
