/*
 * stream_frame.c: STUN and ChannelData cut out of a TCP stream (RFC 8489
 * 6.2.2, RFC 8656 12.5): whole messages, partial reads, several messages
 * in one read, ChannelData padding, and the ways a stream breaks.
 */
#include "unit.h"

#include "stream_frame.h"

/* A Binding request with body bytes of attributes (zeros). */
static size_t stun_msg(uint8_t *buf, size_t body)
{
	memset(buf, 0, FRAME_STUN_HEADER + body);
	raw_put16(buf, 0x0001);
	raw_put16(buf + 2, (uint16_t)body);
	raw_put32(buf + 4, 0x2112A442);
	for (size_t i = 8; i < FRAME_STUN_HEADER; i++)
		buf[i] = (uint8_t)i;
	return FRAME_STUN_HEADER + body;
}

/* ChannelData on channel 0x4001 with n data bytes, padded: the bytes on
 * the stream. */
static size_t channel_msg(uint8_t *buf, size_t n)
{
	size_t whole = (FRAME_CHANNEL_HEADER + n + 3) & ~(size_t)3;

	memset(buf, 0, whole);
	raw_put16(buf, 0x4001);
	raw_put16(buf + 2, (uint16_t)n);
	for (size_t i = 0; i < n; i++)
		buf[FRAME_CHANNEL_HEADER + i] = (uint8_t)(0xA0 + i);
	return whole;
}

/* Copy n bytes into the framer as one read. */
static void feed(struct framer *f, const uint8_t *p, size_t n)
{
	size_t cap;
	uint8_t *space = framer_space(f, &cap);

	assert_true(n <= cap);
	memcpy(space, p, n);
	framer_wrote(f, n);
}

static void test_peek(void **state)
{
	uint8_t b[64];
	size_t len;
	enum frame_kind kind;

	(void)state;
	assert_int_equal(frame_peek(b, 0, FRAME_MAX, &len, &kind), 0);
	stun_msg(b, 8);
	/* the length needs 4 bytes, the cookie 8 */
	for (size_t n = 1; n < 28; n++)
		assert_int_equal(frame_peek(b, n, FRAME_MAX, &len, &kind), 0);
	assert_int_equal(frame_peek(b, 28, FRAME_MAX, &len, &kind), 28);
	assert_size(len, 28);
	assert_int_equal(kind, FRAME_STUN);
	/* 5 data bytes: 9 in the message, 12 on the stream */
	channel_msg(b, 5);
	for (size_t n = 1; n < 12; n++)
		assert_int_equal(frame_peek(b, n, FRAME_MAX, &len, &kind), 0);
	assert_int_equal(frame_peek(b, 64, FRAME_MAX, &len, &kind), 12);
	assert_size(len, 9);
	assert_int_equal(kind, FRAME_CHANNEL);
	/* empty ChannelData is 4 bytes, no padding */
	channel_msg(b, 0);
	assert_int_equal(frame_peek(b, 4, FRAME_MAX, &len, &kind), 4);
	assert_size(frame_padded(9), 12);
	assert_size(frame_padded(12), 12);
	assert_size(frame_padded(0), 0);
}

static void test_broken(void **state)
{
	uint8_t b[64];
	size_t len;
	enum frame_kind kind;

	(void)state;
	/* first bits 10 and 11: neither STUN nor ChannelData */
	b[0] = 0x80;
	assert_int_equal(frame_peek(b, 1, FRAME_MAX, &len, &kind), -1);
	b[0] = 0xC0;
	assert_int_equal(frame_peek(b, 1, FRAME_MAX, &len, &kind), -1);
	/* no magic cookie */
	stun_msg(b, 0);
	b[4] ^= 1;
	assert_int_equal(frame_peek(b, 20, FRAME_MAX, &len, &kind), -1);
	/* a STUN length that is not a multiple of 4 */
	stun_msg(b, 0);
	raw_put16(b + 2, 6);
	assert_int_equal(frame_peek(b, 8, FRAME_MAX, &len, &kind), -1);
	/* "GET / HTTP/1.1" starts with 0x47: 01, ChannelData 0x4745 of
	 * 0x5420 bytes, longer than FRAME_MAX */
	memcpy(b, "GET / HTTP/1.1\r\n", 16);
	assert_int_equal(frame_peek(b, 16, FRAME_MAX, &len, &kind), -1);
}

/* Oversize: the header alone says so, before the bytes arrive. */
static void test_oversize(void **state)
{
	uint8_t b[FRAME_STUN_HEADER];
	size_t len;
	enum frame_kind kind;

	(void)state;
	stun_msg(b, 0);
	raw_put16(b + 2, FRAME_MAX - FRAME_STUN_HEADER);
	assert_int_equal(frame_peek(b, 8, FRAME_MAX, &len, &kind), 0);
	raw_put16(b + 2, FRAME_MAX - FRAME_STUN_HEADER + 4);
	assert_int_equal(frame_peek(b, 8, FRAME_MAX, &len, &kind), -1);
	/* ChannelData: the padding counts */
	raw_put16(b, 0x4000);
	raw_put16(b + 2, FRAME_MAX - FRAME_CHANNEL_HEADER);
	assert_int_equal(frame_peek(b, 4, FRAME_MAX, &len, &kind), 0);
	raw_put16(b + 2, FRAME_MAX - FRAME_CHANNEL_HEADER + 1);
	assert_int_equal(frame_peek(b, 4, FRAME_MAX, &len, &kind), -1);
	raw_put16(b + 2, 0xFFFF);
	assert_int_equal(frame_peek(b, 4, FRAME_MAX, &len, &kind), -1);
}

/* Two messages and the start of a third in one read, then the rest of
 * it one byte at a time. */
static void test_framer_reads(void **state)
{
	static struct framer f;
	uint8_t s[64], c[64], all[192];
	size_t ns = stun_msg(s, 12), nc = channel_msg(c, 7), n = 0;
	const uint8_t *msg;
	size_t len;
	enum frame_kind kind;

	(void)state;
	framer_init(&f);
	memcpy(all, s, ns);
	memcpy(all + ns, c, nc);
	memcpy(all + ns + nc, s, ns);
	n = ns + nc + ns;
	feed(&f, all, ns + nc + 5);
	assert_int_equal(framer_next(&f, &msg, &len, &kind), 1);
	assert_int_equal(kind, FRAME_STUN);
	assert_size(len, ns);
	assert_memory_equal(msg, s, ns);
	assert_int_equal(framer_next(&f, &msg, &len, &kind), 1);
	assert_int_equal(kind, FRAME_CHANNEL);
	/* without the padding, which the relay does not forward */
	assert_size(len, FRAME_CHANNEL_HEADER + 7);
	assert_memory_equal(msg, c, len);
	assert_int_equal(framer_next(&f, &msg, &len, &kind), 0);
	for (size_t i = ns + nc + 5; i < n; i++) {
		assert_int_equal(framer_next(&f, &msg, &len, &kind), 0);
		feed(&f, all + i, 1);
	}
	assert_int_equal(framer_next(&f, &msg, &len, &kind), 1);
	assert_int_equal(kind, FRAME_STUN);
	assert_memory_equal(msg, s, ns);
	assert_int_equal(framer_next(&f, &msg, &len, &kind), 0);
}

/* Many messages through a full buffer: space is made as messages go, and a
 * message of FRAME_MAX bytes still fits. */
static void test_framer_space(void **state)
{
	static struct framer f;
	static uint8_t big[FRAME_MAX];
	size_t nb = stun_msg(big, FRAME_MAX - FRAME_STUN_HEADER), cap;
	const uint8_t *msg;
	size_t len;
	enum frame_kind kind;

	(void)state;
	framer_init(&f);
	for (int round = 0; round < 3; round++) {
		/* half of it, then the rest in what space there is */
		feed(&f, big, 100);
		assert_int_equal(framer_next(&f, &msg, &len, &kind), 0);
		framer_space(&f, &cap);
		assert_size(cap, FRAME_MAX - 100);
		feed(&f, big + 100, nb - 100);
		assert_int_equal(framer_next(&f, &msg, &len, &kind), 1);
		assert_size(len, FRAME_MAX);
		assert_memory_equal(msg, big, nb);
		assert_int_equal(framer_next(&f, &msg, &len, &kind), 0);
	}
	framer_space(&f, &cap);
	assert_size(cap, FRAME_MAX);
}

/* A broken stream stays broken; messages before the break come out. */
static void test_framer_broken(void **state)
{
	static struct framer f;
	uint8_t b[64];
	size_t n = stun_msg(b, 0), cap;
	const uint8_t *msg;
	size_t len;
	enum frame_kind kind;

	(void)state;
	framer_init(&f);
	b[n] = 0xFF;
	feed(&f, b, n + 1);
	assert_int_equal(framer_next(&f, &msg, &len, &kind), 1);
	assert_int_equal(framer_next(&f, &msg, &len, &kind), -1);
	assert_int_equal(framer_next(&f, &msg, &len, &kind), -1);
	framer_space(&f, &cap);
	assert_size(cap, 0);
	framer_wrote(&f, 10);
	assert_int_equal(framer_next(&f, &msg, &len, &kind), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peek),
		cmocka_unit_test(test_broken),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_framer_reads),
		cmocka_unit_test(test_framer_space),
		cmocka_unit_test(test_framer_broken),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
