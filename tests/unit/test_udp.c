/*
 * Unit tests for the client's UDP layer (src/udp.c): the STUN/QUIC
 * demultiplexer, the early-packet buffer, and batched sending and
 * receiving on loopback: a GSO send cut back into its datagrams, sendmmsg,
 * and the fall-back from GSO to sendmmsg when the kernel refuses GSO on a
 * socket (SO_NO_CHECK makes Linux answer EINVAL, as a kernel without
 * UDP_SEGMENT does).
 */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>
#include <uv.h>

#include "udp.h"

enum {
	RX_MAX = 64,
	WAIT_MS = 5000,   /* bound on waiting for loopback datagrams */
};

/* ---- classification ----------------------------------------------------- */

static void test_classify(void **state)
{
	uint8_t b[64];

	(void)state;
	/* A Binding request: type 0x0001, cookie 0x2112A442. */
	memset(b, 0, sizeof(b));
	b[1] = 0x01;
	b[4] = 0x21, b[5] = 0x12, b[6] = 0xA4, b[7] = 0x42;
	assert_int_equal(udp_classify(b, 20), UDP_KIND_STUN);
	assert_int_equal(udp_classify(b, sizeof(b)), UDP_KIND_STUN);
	/* Shorter than a STUN header: not STUN, whatever it holds. */
	assert_int_equal(udp_classify(b, 19), UDP_KIND_QUIC);
	assert_int_equal(udp_classify(b, 0), UDP_KIND_QUIC);
	/* The cookie in place but a first byte of 4 or more: QUIC. */
	b[0] = 0x04;
	assert_int_equal(udp_classify(b, 20), UDP_KIND_QUIC);
	b[0] = 0xC0;
	assert_int_equal(udp_classify(b, 40), UDP_KIND_QUIC);
	/* A greased short header (RFC 9287: the QUIC bit clear) whose first
	 * byte is below 4 but without the cookie: QUIC, not STUN. */
	b[0] = 0x01;
	b[6] = 0;
	assert_int_equal(udp_classify(b, 40), UDP_KIND_QUIC);
	/* A ChannelData-looking first byte is QUIC until a relay claims it. */
	memset(b, 0, sizeof(b));
	b[0] = 0x40;
	assert_int_equal(udp_classify(b, 40), UDP_KIND_QUIC);
}

/* ---- the early-packet buffer ------------------------------------------- */

struct seen {
	int n;
	int sock[RX_MAX];
	enum udp_kind kind[RX_MAX];
	size_t len[RX_MAX];
	uint8_t first[RX_MAX];
	struct sockaddr_storage from[RX_MAX];
	uint8_t data[RX_MAX][1500];
	int batches;
};

static void record(void *ctx, int sock, enum udp_kind kind,
                   const struct sockaddr *from, const uint8_t *buf, size_t len)
{
	struct seen *s = ctx;

	if (s->n >= RX_MAX)
		return;
	s->sock[s->n] = sock;
	s->kind[s->n] = kind;
	s->len[s->n] = len;
	s->first[s->n] = len ? buf[0] : 0;
	memcpy(&s->from[s->n], from, addr_len(from));
	memcpy(s->data[s->n], buf, len < 1500 ? len : 1500);
	s->n++;
}

static void test_early_keeps_order_and_bounds(void **state)
{
	static struct udp_early e;
	static struct seen s;
	struct sockaddr_storage a = sa_make("192.0.2.1", 4000);
	uint8_t big[UDP_EARLY_BYTES + 1], pkt[100];

	(void)state;
	memset(&e, 0, sizeof(e));
	memset(&s, 0, sizeof(s));
	memset(big, 0xC3, sizeof(big));
	/* Too large for a slot: refused, nothing kept. */
	assert_int_equal(udp_early_push(&e, 0, SA(a), big, sizeof(big)), -1);
	assert_int_equal(e.n, 0);
	/* The largest that fits is kept whole. */
	assert_int_equal(udp_early_push(&e, 1, SA(a), big, UDP_EARLY_BYTES), 0);
	for (int i = 1; i < UDP_EARLY_MAX; i++) {
		memset(pkt, 0x40 + i, sizeof(pkt));
		assert_int_equal(udp_early_push(&e, 0, SA(a), pkt, 10 + i), 0);
	}
	/* Full: the next is refused, the kept ones stay. */
	assert_int_equal(udp_early_push(&e, 0, SA(a), pkt, 10), -1);
	assert_int_equal(e.n, UDP_EARLY_MAX);

	udp_early_drain(&e, record, &s);
	assert_int_equal(e.n, 0);
	assert_int_equal(s.n, UDP_EARLY_MAX);
	assert_size(s.len[0], UDP_EARLY_BYTES);
	assert_int_equal(s.sock[0], 1);
	assert_int_equal(s.first[0], 0xC3);
	for (int i = 1; i < UDP_EARLY_MAX; i++) {
		assert_size(s.len[i], 10 + i);
		assert_int_equal(s.first[i], 0x40 + i);
		assert_int_equal(s.kind[i], UDP_KIND_QUIC);
		assert_true(addr_equal(SA(s.from[i]), SA(a)));
	}
	/* Drained once: a second drain hands over nothing. */
	udp_early_drain(&e, record, &s);
	assert_int_equal(s.n, UDP_EARLY_MAX);
}

/* ---- sockets on loopback ------------------------------------------------ */

struct pair {
	uv_loop_t loop;
	struct udp tx, rx;
	struct seen seen;
	struct sockaddr_storage to;
};

static void count_batch(void *ctx)
{
	((struct seen *)ctx)->batches++;
}

static void ignore(void *ctx, int sock, enum udp_kind kind,
                   const struct sockaddr *from, const uint8_t *buf, size_t len)
{
	(void)ctx, (void)sock, (void)kind, (void)from, (void)buf, (void)len;
}

static void on_expire(uv_timer_t *t)
{
	*(int *)t->data = 1;
}

/* Run the loop until `want` datagrams are in, or WAIT_MS. */
static void run_until(struct pair *p, int want)
{
	uv_timer_t t;
	int expired = 0;

	uv_timer_init(&p->loop, &t);
	t.data = &expired;
	uv_timer_start(&t, on_expire, WAIT_MS, 0);
	while (p->seen.n < want && !expired)
		uv_run(&p->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&p->loop, UV_RUN_NOWAIT);
}

static struct pair *pair_open(void)
{
	struct pair *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	assert_int_equal(uv_loop_init(&p->loop), 0);
	udp_init(&p->tx, &p->loop, ignore, NULL, NULL);
	udp_init(&p->rx, &p->loop, record, count_batch, &p->seen);
	assert_int_equal(udp_open(&p->tx, 0), 0);
	assert_int_equal(udp_open(&p->rx, 0), 0);
	p->to = sa_make("127.0.0.1", udp_port(&p->rx, 0));
	return p;
}

static void pair_close(struct pair *p)
{
	udp_stop(&p->tx);
	udp_stop(&p->rx);
	uv_run(&p->loop, UV_RUN_DEFAULT);
	udp_free(&p->tx);
	udp_free(&p->rx);
	assert_int_equal(uv_loop_close(&p->loop), 0);
	free(p);
}

/* Three packets of 1000 bytes and a last one of 500, each byte telling
 * its packet and offset. */
static void fill(uint8_t *buf, size_t len, size_t seg)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(0x40 + i / seg + (i % seg) * 7);
}

static void expect_segments(const struct pair *p, const uint8_t *buf,
                            size_t len, size_t seg)
{
	int n = (int)((len + seg - 1) / seg);

	assert_int_equal(p->seen.n, n);
	for (int i = 0; i < n; i++) {
		size_t want = len - (size_t)i * seg < seg ? len - (size_t)i * seg : seg;

		assert_size(p->seen.len[i], want);
		assert_memory_equal(p->seen.data[i], buf + (size_t)i * seg, want);
		assert_int_equal(p->seen.kind[i], UDP_KIND_QUIC);
		assert_int_equal(p->seen.sock[i], 0);
		assert_int_equal(addr_port(SA(p->seen.from[i])), udp_port(&p->tx, 0));
	}
	assert_true(p->seen.batches >= 1);
}

static void send_and_check(struct pair *p, int expect_gso, int expect_mmsg)
{
	uint8_t buf[3500];

	fill(buf, sizeof(buf), 1000);
	assert_int_equal(udp_send_segments(&p->tx, 0, SA(p->to), buf,
	                                   sizeof(buf), 1000),
	                 0);
	run_until(p, 4);
	expect_segments(p, buf, sizeof(buf), 1000);
	assert_int_equal(p->tx.gso_sends, (uint64_t)expect_gso);
	assert_int_equal(p->tx.mmsg_sends, (uint64_t)expect_mmsg);
	assert_int_equal(p->tx.send_failed, 0);
}

static void test_gso_send(void **state)
{
	struct pair *p = pair_open();

	(void)state;
	/* This machine's kernel has UDP_SEGMENT (4.18+): the test would
	 * otherwise check only the fall-back. */
	assert_true(p->tx.s[0].gso);
	send_and_check(p, 1, 0);
	pair_close(p);
}

static void test_mmsg_send(void **state)
{
	struct pair *p = pair_open();

	(void)state;
	udp_disable_gso(&p->tx, 0);
	send_and_check(p, 0, 1);
	pair_close(p);
}

/* The kernel refuses GSO on this socket (EINVAL): the same packets go
 * out with sendmmsg, and GSO is not tried again. */
static void test_gso_refused_falls_back(void **state)
{
	struct pair *p = pair_open();
	uint8_t buf[1200];
	int one = 1;

	(void)state;
	assert_int_equal(setsockopt(p->tx.s[0].fd, SOL_SOCKET, SO_NO_CHECK, &one,
	                            sizeof(one)),
	                 0);
	send_and_check(p, 0, 1);
	assert_false(p->tx.s[0].gso);
	/* The next burst goes straight to sendmmsg. */
	memset(&p->seen, 0, sizeof(p->seen));
	fill(buf, sizeof(buf), 500);
	assert_int_equal(udp_send_segments(&p->tx, 0, SA(p->to), buf,
	                                   sizeof(buf), 500),
	                 0);
	run_until(p, 3);
	expect_segments(p, buf, sizeof(buf), 500);
	assert_int_equal(p->tx.mmsg_sends, 2);
	pair_close(p);
}

/* A STUN message on the wire arrives classified as STUN; bad arguments
 * are refused without sending. */
static void test_stun_and_bad_args(void **state)
{
	struct pair *p = pair_open();
	uint8_t b[20] = { 0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42 };

	(void)state;
	assert_int_equal(udp_send(&p->tx, 0, SA(p->to), b, sizeof(b), 0), 0);
	/* A primed send (small TTL) still reaches a loopback peer. */
	assert_int_equal(udp_send(&p->tx, 0, SA(p->to), b, sizeof(b), 2), 0);
	run_until(p, 2);
	assert_int_equal(p->seen.n, 2);
	assert_int_equal(p->seen.kind[0], UDP_KIND_STUN);
	assert_int_equal(p->seen.kind[1], UDP_KIND_STUN);
	assert_int_equal(udp_send(&p->tx, UDP_SOCKETS, SA(p->to), b, 20, 0),
	                 -EBADF);
	assert_int_equal(udp_send(&p->tx, 1, SA(p->to), b, 20, 0), -EBADF);
	assert_int_equal(udp_send_segments(&p->tx, 0, SA(p->to), b, 20, 0),
	                 -EINVAL);
	{
		static uint8_t big[UDP_SEG_MAX * 10 + 1];

		assert_int_equal(udp_send_segments(&p->tx, 0, SA(p->to), big,
		                                   sizeof(big), 10),
		                 -EINVAL);
	}
	pair_close(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_early_keeps_order_and_bounds),
		cmocka_unit_test(test_gso_send),
		cmocka_unit_test(test_mmsg_send),
		cmocka_unit_test(test_gso_refused_falls_back),
		cmocka_unit_test(test_stun_and_bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
