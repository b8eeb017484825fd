/*
 * Unit tests for what the STUN codec (src/stun.c) refuses and what it
 * ignores: every enum stun_err the decoder, stun_check_integrity() and the
 * writer return, and the RFC 8489 rules on attributes after
 * MESSAGE-INTEGRITY, duplicates and unknown attributes.
 *
 * Messages are built with the raw builder in unit.h, not with the writer
 * under test, so a writer bug cannot hide a decoder bug.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include "stun.h"

/* Decode and compare the result with expected; name says which case of a
 * table failed. */
static void expect_decode(const char *name, const uint8_t *buf, size_t len,
                          int expected)
{
	struct stun_msg m;
	int rc = stun_decode(&m, buf, len);

	if (rc != expected)
		print_error("case \"%s\" (%zu bytes)\n", name, len);
	assert_stun_rc(rc, expected);
}

/* Append FINGERPRINT over everything so far (RFC 8489 14.7), computed here
 * with zlib rather than by the codec. */
static void raw_fingerprint(struct raw *r)
{
	uint32_t crc;

	raw_u32(r, STUN_ATTR_FINGERPRINT, 0);
	crc = (uint32_t)crc32(0, r->b, (uInt)(r->len - 8));
	raw_put32(r->b + r->len - 4, crc ^ STUN_FINGERPRINT_XOR);
}

/* A valid request to start from: SOFTWARE "abcd" and FINGERPRINT. */
static void raw_request(struct raw *r)
{
	raw_init(r, 0x0001);
	raw_attr(r, STUN_ATTR_SOFTWARE, "abcd", 4);
	raw_fingerprint(r);
}

/* ---- header errors ---------------------------------------------------- */

static void test_short(void **state)
{
	struct raw r;

	(void)state;
	raw_request(&r);
	expect_decode("control", r.b, r.len, STUN_OK);
	for (size_t n = 0; n < STUN_HEADER_LEN; n++)
		expect_decode("short", r.b, n, STUN_ERR_SHORT);
}

static void test_not_stun(void **state)
{
	static const uint8_t top[] = { 0x40, 0x80, 0xC0 };
	struct raw r;

	(void)state;
	for (size_t i = 0; i < sizeof(top); i++) {
		raw_request(&r);
		r.b[0] |= top[i];
		expect_decode("top bits", r.b, r.len, STUN_ERR_NOT_STUN);
		r.b[5] ^= 0xFF; /* checked before the cookie */
		expect_decode("top bits, bad cookie", r.b, r.len,
		              STUN_ERR_NOT_STUN);
	}
}

static void test_cookie(void **state)
{
	struct raw r;

	(void)state;
	for (size_t i = 4; i < 8; i++) {
		raw_request(&r);
		r.b[i] ^= 0x01;
		expect_decode("cookie", r.b, r.len, STUN_ERR_COOKIE);
	}
	/* An RFC 3489 message: the cookie field is part of the txid. */
	raw_request(&r);
	memset(r.b + 4, 0x5A, 4);
	expect_decode("rfc3489", r.b, r.len, STUN_ERR_COOKIE);
}

static void test_length(void **state)
{
	static const struct {
		const char *name;
		int delta_field;  /* added to the length field */
		int delta_len;    /* added to the datagram length */
	} cases[] = {
		{ "field not a multiple of 4", -2, -2 },
		{ "field 1 more than datagram", 1, 0 },
		{ "field 4 more than datagram", 4, 0 },
		{ "field 4 less than datagram", -4, 0 },
		{ "datagram 4 longer", 0, 4 },
		{ "datagram 1 shorter", 0, -1 }
	};
	struct raw r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		raw_request(&r);
		raw_put16(r.b + 2, (uint16_t)(r.len - STUN_HEADER_LEN +
		                              (size_t)cases[i].delta_field));
		expect_decode(cases[i].name, r.b,
		              r.len + (size_t)cases[i].delta_len,
		              STUN_ERR_LENGTH);
	}
}

/* ---- attribute framing ------------------------------------------------ */

static void test_attr_truncated(void **state)
{
	struct raw r;

	(void)state;
	/* value runs past the end: declares 8, has 4 */
	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_SOFTWARE, "abcd", 4);
	raw_put16(r.b + STUN_HEADER_LEN + 2, 8);
	expect_decode("value past end", r.b, r.len, STUN_ERR_ATTR_TRUNCATED);
	/* value of 5 with 4 present: its padding would run past too */
	raw_put16(r.b + STUN_HEADER_LEN + 2, 5);
	expect_decode("value 5 of 4", r.b, r.len, STUN_ERR_ATTR_TRUNCATED);
	/* the largest length there is */
	raw_put16(r.b + STUN_HEADER_LEN + 2, 0xFFFF);
	expect_decode("value 65535", r.b, r.len, STUN_ERR_ATTR_TRUNCATED);
	/* the second attribute is the bad one */
	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_USERNAME, "user", 4);
	raw_attr(&r, STUN_ATTR_SOFTWARE, "abcdefgh", 8);
	raw_put16(r.b + STUN_HEADER_LEN + 8 + 2, 9);
	expect_decode("second past end", r.b, r.len, STUN_ERR_ATTR_TRUNCATED);
}

/*
 * A cut attribute header, or a value that fits with padding that does not,
 * can only occur when the body is not a multiple of 4 bytes, and the header
 * check refuses that first (RFC 8489 5).  So these come back as LENGTH; the
 * decoder's own "header cut" check is defence in depth.
 */
static void test_attr_cut_is_length(void **state)
{
	struct raw r;

	(void)state;
	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_SOFTWARE, "abcd", 4);
	r.len = STUN_HEADER_LEN + 8 + 2; /* 2 bytes of a second header */
	raw_fix_length(&r);
	expect_decode("header cut", r.b, r.len, STUN_ERR_LENGTH);
	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_SOFTWARE, "abcde", 5);
	r.len -= 3; /* unpadded, as RFC 3489 senders may do */
	raw_fix_length(&r);
	expect_decode("padding cut", r.b, r.len, STUN_ERR_LENGTH);
}

/* ---- attribute values ------------------------------------------------- */

struct bad_attr {
	const char *name;
	uint16_t type;
	uint8_t head[8];  /* first bytes of the value; the rest are zeros */
	size_t len;
};

/* Name, length and the value's first bytes, for the failure message. */
#define BAD(type, len, ...) \
	{ #type ", length " #len ", value " #__VA_ARGS__, STUN_ATTR_##type, { __VA_ARGS__ }, len }

static const struct bad_attr bad_attrs[] = {
	/* addresses: family 3 or 0, or a length not the family's */
	BAD(MAPPED_ADDRESS, 8, 0, 3, 0, 1, 1, 2, 3, 4),
	BAD(MAPPED_ADDRESS, 8, 0, 0, 0, 1, 1, 2, 3, 4),
	BAD(MAPPED_ADDRESS, 12, 0, 1, 0, 1, 1, 2, 3, 4),
	BAD(MAPPED_ADDRESS, 4, 0, 1, 0, 1),
	BAD(MAPPED_ADDRESS, 8, 0, 2, 0, 1),
	BAD(MAPPED_ADDRESS, 24, 0, 2, 0, 1),
	BAD(MAPPED_ADDRESS, 2, 0, 1),
	BAD(MAPPED_ADDRESS, 0, 0),
	BAD(XOR_MAPPED_ADDRESS, 8, 0, 3, 0, 1, 1, 2, 3, 4),
	BAD(XOR_MAPPED_ADDRESS, 12, 0, 1, 0, 1),
	BAD(XOR_MAPPED_ADDRESS, 16, 0, 2, 0, 1),
	BAD(RESPONSE_ORIGIN, 8, 0, 3, 0, 1),
	BAD(RESPONSE_ORIGIN, 20, 0, 1, 0, 1),
	BAD(OTHER_ADDRESS, 8, 0, 3, 0, 1),
	BAD(OTHER_ADDRESS, 8, 0, 2, 0, 1),
	/* ERROR-CODE: class 3..6, number 0..99, reason <= 763 */
	BAD(ERROR_CODE, 4, 0, 0, 2, 0),
	BAD(ERROR_CODE, 4, 0, 0, 7, 0),
	BAD(ERROR_CODE, 4, 0, 0, 4, 100),
	BAD(ERROR_CODE, 3, 0, 0, 4),
	BAD(ERROR_CODE, 4 + STUN_MAX_REASON + 1, 0, 0, 4, 0),
	/* strings over their RFC 8489 limits */
	BAD(USERNAME, STUN_MAX_USERNAME + 1, 'u'),
	BAD(SOFTWARE, STUN_MAX_SOFTWARE + 1, 's'),
	BAD(REALM, STUN_MAX_REASON + 1, 'r'),
	BAD(NONCE, STUN_MAX_REASON + 1, 'n'),
	/* an odd-length type list, and fixed-size values of the wrong size */
	BAD(UNKNOWN_ATTRIBUTES, 3, 0, 1, 0),
	BAD(CHANGE_REQUEST, 8, 0, 0, 0, 6),
	BAD(CHANGE_REQUEST, 0, 0),
	BAD(RESPONSE_PORT, 2, 0x13, 0x88),
	BAD(PRIORITY, 3, 1, 2, 3),
	BAD(PRIORITY, 8, 1, 2, 3, 4),
	BAD(USE_CANDIDATE, 4, 0),
	BAD(ICE_CONTROLLED, 4, 1, 2, 3, 4),
	BAD(ICE_CONTROLLING, 12, 1),
	BAD(MESSAGE_INTEGRITY, 19, 0),
	BAD(MESSAGE_INTEGRITY, 21, 0),
	BAD(MESSAGE_INTEGRITY_SHA256, 12, 0),
	BAD(MESSAGE_INTEGRITY_SHA256, 36, 0),
	BAD(MESSAGE_INTEGRITY_SHA256, 18, 0),
	BAD(FINGERPRINT, 8, 0),
	BAD(FINGERPRINT, 0, 0)
};
#undef BAD

/* Each bad attribute, alone in a request, is STUN_ERR_ATTR_VALUE; and after
 * a good attribute too, so the error is not about position. */
static void test_attr_value(void **state)
{
	uint8_t v[1024];
	struct raw r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_attrs) / sizeof(bad_attrs[0]); i++) {
		const struct bad_attr *c = &bad_attrs[i];

		memset(v, 0, sizeof(v));
		memcpy(v, c->head, sizeof(c->head));
		raw_init(&r, 0x0001);
		raw_attr(&r, c->type, v, c->len);
		expect_decode(c->name, r.b, r.len, STUN_ERR_ATTR_VALUE);
		raw_init(&r, 0x0001);
		raw_u32(&r, 0x8fff, 0);
		raw_attr(&r, c->type, v, c->len);
		expect_decode(c->name, r.b, r.len, STUN_ERR_ATTR_VALUE);
	}
}

/* The limits themselves are accepted: the table above is off by one. */
static void test_attr_value_limits(void **state)
{
	static const struct {
		uint16_t type;
		size_t len;
	} ok[] = {
		{ STUN_ATTR_USERNAME, STUN_MAX_USERNAME },
		{ STUN_ATTR_SOFTWARE, STUN_MAX_SOFTWARE },
		{ STUN_ATTR_REALM, STUN_MAX_REASON },
		{ STUN_ATTR_NONCE, STUN_MAX_REASON },
		{ STUN_ATTR_MESSAGE_INTEGRITY_SHA256, 16 },
		{ STUN_ATTR_MESSAGE_INTEGRITY_SHA256, 20 },
		{ STUN_ATTR_MESSAGE_INTEGRITY_SHA256, 32 }
	};
	uint8_t v[1024] = { 0, 0, 6, 99 };
	struct raw r;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		raw_init(&r, 0x0001);
		raw_attr(&r, ok[i].type, v, ok[i].len);
		expect_decode("at the limit", r.b, r.len, STUN_OK);
	}
	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_ERROR_CODE, v, 4 + STUN_MAX_REASON); /* 699 */
	expect_decode("ERROR-CODE 699, longest reason", r.b, r.len, STUN_OK);
}

static void test_too_many_attrs(void **state)
{
	struct raw r;

	(void)state;
	raw_init(&r, 0x0001);
	for (int i = 0; i < STUN_MAX_ATTRS; i++)
		raw_attr(&r, 0x8fff, NULL, 0);
	expect_decode("32 attributes", r.b, r.len, STUN_OK);
	raw_attr(&r, 0x8fff, NULL, 0);
	expect_decode("33 attributes", r.b, r.len, STUN_ERR_TOO_MANY_ATTRS);
}

/* ---- FINGERPRINT ------------------------------------------------------ */

static void test_fingerprint_mismatch(void **state)
{
	struct raw r;

	(void)state;
	raw_request(&r);
	expect_decode("control", r.b, r.len, STUN_OK);
	/* every bit of the transaction id and of the values; header and
	 * attribute-header bits would trip other checks first */
	for (size_t i = 8; i < r.len; i++) {
		if (i == STUN_HEADER_LEN || i == r.len - 8)
			i += 4;
		for (int bit = 0; bit < 8; bit++) {
			r.b[i] ^= (uint8_t)(1 << bit);
			expect_decode("flipped bit", r.b, r.len,
			              STUN_ERR_FINGERPRINT);
			r.b[i] ^= (uint8_t)(1 << bit);
		}
	}
	/* the message type is covered too: a response claiming it */
	r.b[1] ^= 0x10;
	expect_decode("type changed", r.b, r.len, STUN_ERR_FINGERPRINT);
}

static void test_after_fingerprint(void **state)
{
	uint32_t crc;
	struct raw r;

	(void)state;
	/* A FINGERPRINT that is right for the final length field, followed by
	 * one more attribute: the order is the only thing wrong. */
	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_SOFTWARE, "abcd", 4);
	raw_u32(&r, STUN_ATTR_FINGERPRINT, 0);
	raw_attr(&r, STUN_ATTR_USERNAME, "user", 4);
	crc = (uint32_t)crc32(0, r.b, STUN_HEADER_LEN + 8);
	raw_put32(r.b + STUN_HEADER_LEN + 12, crc ^ STUN_FINGERPRINT_XOR);
	expect_decode("USERNAME after", r.b, r.len, STUN_ERR_AFTER_FINGERPRINT);
	/* two FINGERPRINTs */
	raw_request(&r);
	raw_fingerprint(&r);
	crc = (uint32_t)crc32(0, r.b, STUN_HEADER_LEN + 8);
	raw_put32(r.b + STUN_HEADER_LEN + 12, crc ^ STUN_FINGERPRINT_XOR);
	expect_decode("FINGERPRINT twice", r.b, r.len,
	              STUN_ERR_AFTER_FINGERPRINT);
}

/* ---- class ------------------------------------------------------------ */

static void test_class(void **state)
{
	struct raw r;

	(void)state;
	raw_init(&r, 0x0111);
	expect_decode("error, empty", r.b, r.len, STUN_ERR_CLASS);
	raw_attr(&r, STUN_ATTR_SOFTWARE, "abcd", 4);
	expect_decode("error, no ERROR-CODE", r.b, r.len, STUN_ERR_CLASS);
	raw_u32(&r, STUN_ATTR_ERROR_CODE, 0x00000400);
	expect_decode("error with ERROR-CODE", r.b, r.len, STUN_OK);
	/* ERROR-CODE after MESSAGE-INTEGRITY is ignored, so it is missing */
	raw_init(&r, 0x0111);
	raw_attr(&r, STUN_ATTR_MESSAGE_INTEGRITY, NULL, 20);
	raw_u32(&r, STUN_ATTR_ERROR_CODE, 0x00000400);
	expect_decode("ERROR-CODE after MI", r.b, r.len, STUN_ERR_CLASS);
	/* the other classes do not need one */
	raw_init(&r, 0x0101);
	expect_decode("success, empty", r.b, r.len, STUN_OK);
	raw_init(&r, 0x0011);
	expect_decode("indication, empty", r.b, r.len, STUN_OK);
}
/* ---- stun_check_integrity() ------------------------------------------ */

static const uint8_t key_a[] = "VOkJxbRl1RmTxUk/WvJxBt";
static const uint8_t key_b[] = "another key";

/* USERNAME "user" then MESSAGE-INTEGRITY with key_a: no FINGERPRINT, so a
 * changed byte is for the integrity check alone to notice. */
static size_t signed_request(uint8_t *buf, size_t cap)
{
	static const uint8_t txid[STUN_TXID_LEN] = UNIT_TXID;
	struct stun_writer w;
	int n;

	stun_writer_init(&w, buf, cap, STUN_BINDING, STUN_REQUEST, txid);
	stun_put_bytes(&w, STUN_ATTR_USERNAME, "user", 4);
	stun_put_integrity(&w, key_a, sizeof(key_a));
	n = stun_writer_finish(&w);
	assert_stun_rc(n, STUN_HEADER_LEN + 8 + 24);
	return (size_t)n;
}

static int check(const uint8_t *buf, size_t len, const uint8_t *key,
                 size_t key_len)
{
	struct stun_msg m;

	decode_ok(&m, buf, len);
	return stun_check_integrity(&m, buf, len, key, key_len);
}

static void test_no_integrity(void **state)
{
	struct raw r;

	(void)state;
	raw_request(&r);
	assert_stun_rc(check(r.b, r.len, key_a, sizeof(key_a)),
	               STUN_ERR_NO_INTEGRITY);
}

static void test_integrity_mismatch(void **state)
{
	uint8_t buf[64];
	size_t n = signed_request(buf, sizeof(buf));
	struct stun_msg m;

	(void)state;
	assert_stun_rc(check(buf, n, key_a, sizeof(key_a)), STUN_OK);
	assert_stun_rc(check(buf, n, key_b, sizeof(key_b)), STUN_ERR_INTEGRITY);
	/* (HMAC pads keys with zeros, so dropping the NUL would not do) */
	assert_stun_rc(check(buf, n, key_a, sizeof(key_a) - 2),
	               STUN_ERR_INTEGRITY);
	assert_stun_rc(check(buf, n, key_a, 0), STUN_ERR_INTEGRITY);
	/* every covered byte but the cookie, and the MAC itself */
	for (size_t i = 0; i < n; i++) {
		if (i == 2 || i == 3 || (i >= 4 && i < 8) ||
		    (i >= STUN_HEADER_LEN && i < STUN_HEADER_LEN + 4) ||
		    (i >= 28 && i < 32))
			continue; /* framing: other errors first */
		buf[i] ^= 0x20;
		if (check(buf, n, key_a, sizeof(key_a)) != STUN_ERR_INTEGRITY)
			print_error("changed byte %zu went unnoticed\n", i);
		assert_stun_rc(check(buf, n, key_a, sizeof(key_a)),
		               STUN_ERR_INTEGRITY);
		buf[i] ^= 0x20;
	}
	/* a datagram length that does not reach the MAC's end */
	decode_ok(&m, buf, n);
	assert_stun_rc(stun_check_integrity(&m, buf, n - 4, key_a,
	                                    sizeof(key_a)),
	               STUN_ERR_INTEGRITY);
}

/* With both, RFC 8489 14.6's SHA256 one is the one checked. */
static void test_integrity_sha256_preferred(void **state)
{
	static const uint8_t txid[STUN_TXID_LEN] = UNIT_TXID;
	uint8_t buf[128];
	struct stun_writer w;
	int n;

	(void)state;
	stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST,
	                 txid);
	stun_put_integrity(&w, key_a, sizeof(key_a));
	stun_put_integrity_sha256(&w, key_b, sizeof(key_b));
	n = stun_writer_finish(&w);
	assert_true(n > 0);
	assert_stun_rc(check(buf, (size_t)n, key_b, sizeof(key_b)), STUN_OK);
	assert_stun_rc(check(buf, (size_t)n, key_a, sizeof(key_a)),
	               STUN_ERR_INTEGRITY);
}

/* ---- writer errors ---------------------------------------------------- */

static void test_writer_header_errors(void **state)
{
	static const uint8_t txid[STUN_TXID_LEN] = UNIT_TXID;
	uint8_t buf[STUN_HEADER_LEN];
	struct stun_writer w;

	(void)state;
	stun_writer_init(&w, buf, STUN_HEADER_LEN - 1, STUN_BINDING,
	                 STUN_REQUEST, txid);
	assert_stun_rc(stun_writer_finish(&w), STUN_ERR_NOSPACE);
	stun_writer_init(&w, buf, sizeof(buf), 0x1000, STUN_REQUEST, txid);
	assert_stun_rc(stun_writer_finish(&w), STUN_ERR_ARG);
	stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING, 4, txid);
	assert_stun_rc(stun_writer_finish(&w), STUN_ERR_ARG);
	/* exactly a header fits */
	stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST,
	                 txid);
	assert_stun_rc(stun_writer_finish(&w), STUN_HEADER_LEN);
	/* and nothing more */
	stun_put_bytes(&w, STUN_ATTR_USE_CANDIDATE, NULL, 0);
	assert_stun_rc(stun_writer_finish(&w), STUN_ERR_NOSPACE);
}

typedef void (*bad_put_fn)(struct stun_writer *w);

static void put_error_299(struct stun_writer *w)
{
	stun_put_error(w, 299, "x");
}

static void put_error_700(struct stun_writer *w)
{
	stun_put_error(w, 700, "x");
}

static void put_error_long_reason(struct stun_writer *w)
{
	static char r[STUN_MAX_REASON + 2];

	memset(r, 'r', STUN_MAX_REASON + 1);
	stun_put_error(w, 400, r);
}

static void put_addr_unix(struct stun_writer *w)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	stun_put_addr(w, STUN_ATTR_MAPPED_ADDRESS, (struct sockaddr *)&sun);
}

static void put_xor_addr_unspec(struct stun_writer *w)
{
	struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };

	stun_put_xor_addr(w, STUN_ATTR_XOR_MAPPED_ADDRESS, SA(ss));
}

static void put_addr_null(struct stun_writer *w)
{
	stun_put_addr(w, STUN_ATTR_OTHER_ADDRESS, NULL);
}

static void put_bytes_64k(struct stun_writer *w)
{
	static const uint8_t big[0x10000];

	stun_put_bytes(w, STUN_ATTR_SOFTWARE, big, sizeof(big));
}

/* Each bad argument gives STUN_ERR_ARG, writes nothing, and sticks: a later
 * valid attribute does not clear it or get written. */
static void test_writer_arg_errors(void **state)
{
	static const bad_put_fn bad[] = {
		put_error_299,
		put_error_700,
		put_error_long_reason,
		put_addr_unix,
		put_xor_addr_unspec,
		put_addr_null,
		put_bytes_64k,
	};
	static const uint8_t txid[STUN_TXID_LEN] = UNIT_TXID;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t buf[128];
		struct stun_writer w;

		stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING,
		                 STUN_REQUEST, txid);
		stun_put_u32(&w, STUN_ATTR_PRIORITY, 1);
		bad[i](&w);
		assert_stun_rc(w.err, STUN_ERR_ARG);
		assert_size(w.len, STUN_HEADER_LEN + 8);
		stun_put_u32(&w, STUN_ATTR_PRIORITY, 2);
		stun_put_fingerprint(&w);
		assert_size(w.len, STUN_HEADER_LEN + 8);
		assert_stun_rc(stun_writer_finish(&w), STUN_ERR_ARG);
	}
}

/* One of each writer call. */
static void put_every(struct stun_writer *w)
{
	static const uint16_t unknown[] = { 0x0042, 0x0043, 0x0044 };
	static const uint8_t key[] = "key";
	struct sockaddr_storage a4 = sa_make("192.0.2.1", 3478);
	struct sockaddr_storage a6 = sa_make("2001:db8::1", 3479);

	stun_put_xor_addr(w, STUN_ATTR_XOR_MAPPED_ADDRESS, SA(a6));
	stun_put_xor_addr(w, STUN_ATTR_XOR_MAPPED_ADDRESS, SA(a4));
	stun_put_addr(w, STUN_ATTR_MAPPED_ADDRESS, SA(a4));
	stun_put_addr(w, STUN_ATTR_OTHER_ADDRESS, SA(a6));
	stun_put_bytes(w, STUN_ATTR_USERNAME, "alice", 5);
	stun_put_error(w, 420, "Unknown Attribute");
	stun_put_unknown(w, unknown, 3);
	stun_put_u32(w, STUN_ATTR_PRIORITY, 12345);
	stun_put_bytes(w, STUN_ATTR_USE_CANDIDATE, NULL, 0);
	stun_put_u64(w, STUN_ATTR_ICE_CONTROLLED, 42);
	stun_put_integrity(w, key, 3);
	stun_put_integrity_sha256(w, key, 3);
	stun_put_fingerprint(w);
}

enum { PUT_EVERY_ATTRS = 13 };

/* Every writer call into every buffer size that is too small: each call's
 * space check fires in turn, nothing is written past cap (the buffer is
 * heap-allocated at exactly cap, for ASan), and what was written is a
 * well-formed message: its length field matches and it decodes. */
static void test_writer_nospace_each_step(void **state)
{
	static const uint8_t txid[STUN_TXID_LEN] = UNIT_TXID;
	uint8_t full[512];
	struct stun_writer w;
	size_t n, prev = 0, stops = 0;

	(void)state;
	stun_writer_init(&w, full, sizeof(full), STUN_BINDING, STUN_REQUEST,
	                 txid);
	put_every(&w);
	assert_true(stun_writer_finish(&w) > 0);
	n = w.len;
	for (size_t cap = STUN_HEADER_LEN; cap < n; cap++) {
		uint8_t *buf = malloc(cap);
		struct stun_msg m;

		assert_non_null(buf);
		stun_writer_init(&w, buf, cap, STUN_BINDING, STUN_REQUEST,
		                 txid);
		put_every(&w);
		assert_stun_rc(stun_writer_finish(&w), STUN_ERR_NOSPACE);
		assert_true(w.len <= cap);
		assert_size(buf[2] << 8 | buf[3], w.len - STUN_HEADER_LEN);
		assert_memory_equal(buf + 4, full + 4, w.len - 4);
		decode_ok(&m, buf, w.len);
		stops += w.len != prev;
		prev = w.len;
		free(buf);
	}
	/* it stopped before each attribute in turn */
	assert_size(stops, PUT_EVERY_ATTRS);
}

/* RFC 8489 5: the length field is 16 bits, so a message body stops at
 * 65535 bytes whatever the buffer. */
static void test_writer_nospace_64k(void **state)
{
	static const uint8_t txid[STUN_TXID_LEN] = UNIT_TXID;
	size_t cap = 70000, big = 0xFFFF - 3 - 4; /* body: 65532 */
	uint8_t *buf = calloc(1, cap), *value = calloc(1, big);
	struct stun_writer w;

	(void)state;
	assert_non_null(buf);
	assert_non_null(value);
	stun_writer_init(&w, buf, cap, STUN_BINDING, STUN_REQUEST, txid);
	stun_put_bytes(&w, STUN_ATTR_PADDING, value, big);
	assert_stun_rc(stun_writer_finish(&w), STUN_HEADER_LEN + 0xFFFC);
	stun_put_fingerprint(&w);
	assert_stun_rc(stun_writer_finish(&w), STUN_ERR_NOSPACE);
	assert_size(w.len, STUN_HEADER_LEN + 0xFFFC);
	free(value);
	free(buf);
}


/* ---- what the decoder ignores ----------------------------------------- */

/* RFC 8489 14.5: after MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256 and
 * FINGERPRINT count.  The rest are skipped: not decoded, not validated, not
 * in present, not in unknown_required, though still listed in attrs. */
static void test_ignored_after_integrity(void **state)
{
	static const uint8_t bad_addr[8] = { 0, 3 };
	struct stun_msg m;
	struct raw r;

	(void)state;
	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_USERNAME, "user", 4);
	raw_attr(&r, STUN_ATTR_MESSAGE_INTEGRITY, NULL, 20);
	raw_attr(&r, STUN_ATTR_SOFTWARE, "late", 4);
	raw_attr(&r, 0x0033, NULL, 0);                         /* unknown */
	raw_attr(&r, STUN_ATTR_XOR_MAPPED_ADDRESS, bad_addr, 8); /* bad */
	raw_attr(&r, STUN_ATTR_PRIORITY, NULL, 3);             /* bad */
	raw_attr(&r, STUN_ATTR_MESSAGE_INTEGRITY, "second", 6); /* bad */
	raw_attr(&r, STUN_ATTR_MESSAGE_INTEGRITY_SHA256, NULL, 32);
	raw_fingerprint(&r);
	decode_ok(&m, r.b, r.len);
	assert_int_equal(m.present, STUN_HAS_USERNAME | STUN_HAS_INTEGRITY |
	                                    STUN_HAS_INTEGRITY_SHA256 | STUN_HAS_FINGERPRINT);
	assert_size(m.unknown_required_count, 0);
	assert_size(m.software.len, 0);
	assert_size(m.integrity_offset, STUN_HEADER_LEN + 8);
	assert_size(m.integrity_sha256_offset, r.len - 8 - 36);
	assert_size(m.attrs_count, 9);
	assert_int_equal(m.attrs[3].type, 0x0033);
}

/* RFC 8489 14.6: after MESSAGE-INTEGRITY-SHA256 only FINGERPRINT counts,
 * including a MESSAGE-INTEGRITY or a second SHA256. */
static void test_ignored_after_sha256(void **state)
{
	struct stun_msg m;
	struct raw r;

	(void)state;
	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_MESSAGE_INTEGRITY_SHA256, NULL, 16);
	raw_attr(&r, STUN_ATTR_MESSAGE_INTEGRITY, NULL, 20);
	raw_attr(&r, STUN_ATTR_MESSAGE_INTEGRITY_SHA256, NULL, 32);
	raw_attr(&r, STUN_ATTR_USERNAME, "user", 4);
	raw_attr(&r, 0x0034, NULL, 4);
	decode_ok(&m, r.b, r.len);
	assert_int_equal(m.present, STUN_HAS_INTEGRITY_SHA256);
	assert_size(m.integrity_sha256_len, 16);
	assert_size(m.integrity_sha256_offset, STUN_HEADER_LEN);
	assert_size(m.unknown_required_count, 0);
}

/* RFC 8489 14: of duplicate attributes only the first counts; the later
 * ones are not even validated. */
static void test_duplicates_first_wins(void **state)
{
	struct sockaddr_storage want = sa_make("192.0.2.1", 1000);
	uint8_t first[8] = { 0, 1, 0x22, 0xfa, 0xe1, 0x12, 0xa6, 0x43 };
	uint8_t second[8] = { 0, 1, 0x22, 0xfb, 0xe1, 0x12, 0xa6, 0x44 };
	struct stun_msg m;
	struct raw r;

	(void)state;
	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_XOR_MAPPED_ADDRESS, first, 8);
	raw_attr(&r, STUN_ATTR_USERNAME, "first", 5);
	raw_u32(&r, STUN_ATTR_PRIORITY, 1);
	raw_attr(&r, STUN_ATTR_XOR_MAPPED_ADDRESS, second, 8);
	raw_attr(&r, STUN_ATTR_USERNAME, "second", 6);
	raw_u32(&r, STUN_ATTR_PRIORITY, 2);
	raw_attr(&r, STUN_ATTR_PRIORITY, NULL, 3); /* bad, but a duplicate */
	decode_ok(&m, r.b, r.len);
	assert_int_equal(m.present, STUN_HAS_XOR_MAPPED | STUN_HAS_USERNAME |
	                                    STUN_HAS_PRIORITY);
	/* 0x22fa ^ 0x2112 = 1000; 0xe112a643 ^ cookie = 192.0.2.1 */
	assert_addr(&m.xor_mapped, &want);
	assert_bytes_str(m.username, "first");
	assert_int_equal(m.priority, 1);
	assert_size(m.attrs_count, 7);
}

/* RFC 8489 7.3.1: unknown comprehension-required types (< 0x8000) are
 * collected once each, in order, for a 420; optional ones are not. */
static void test_unknown_required(void **state)
{
	static const uint16_t sent[] = { 0x0033, 0x8033, 0x0002, 0x0033,
		                         0x7fff, 0xffff, 0x0002, 0x8000 };
	static const uint16_t want[] = { 0x0033, 0x0002, 0x7fff };
	struct stun_msg m;
	struct raw r;

	(void)state;
	raw_init(&r, 0x0001);
	for (size_t i = 0; i < sizeof(sent) / sizeof(sent[0]); i++)
		raw_attr(&r, sent[i], "v", 1);
	decode_ok(&m, r.b, r.len);
	assert_int_equal(m.present, 0);
	assert_size(m.attrs_count, sizeof(sent) / sizeof(sent[0]));
	assert_size(m.unknown_required_count, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(m.unknown_required[i], want[i]);
}

/* More unknown types than STUN_MAX_UNKNOWN: the first ones are kept and the
 * message is still decoded. */
static void test_unknown_required_overflow(void **state)
{
	struct stun_msg m;
	struct raw r;

	(void)state;
	raw_init(&r, 0x0001);
	for (uint16_t t = 0x0100; t < 0x0100 + STUN_MAX_UNKNOWN + 4; t++)
		raw_attr(&r, t, NULL, 0);
	decode_ok(&m, r.b, r.len);
	assert_size(m.unknown_required_count, STUN_MAX_UNKNOWN);
	assert_int_equal(m.unknown_required[STUN_MAX_UNKNOWN - 1],
	                 0x0100 + STUN_MAX_UNKNOWN - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short),
		cmocka_unit_test(test_not_stun),
		cmocka_unit_test(test_cookie),
		cmocka_unit_test(test_length),
		cmocka_unit_test(test_attr_truncated),
		cmocka_unit_test(test_attr_cut_is_length),
		cmocka_unit_test(test_attr_value),
		cmocka_unit_test(test_attr_value_limits),
		cmocka_unit_test(test_too_many_attrs),
		cmocka_unit_test(test_fingerprint_mismatch),
		cmocka_unit_test(test_after_fingerprint),
		cmocka_unit_test(test_class),
		cmocka_unit_test(test_no_integrity),
		cmocka_unit_test(test_integrity_mismatch),
		cmocka_unit_test(test_integrity_sha256_preferred),
		cmocka_unit_test(test_writer_header_errors),
		cmocka_unit_test(test_writer_arg_errors),
		cmocka_unit_test(test_writer_nospace_each_step),
		cmocka_unit_test(test_writer_nospace_64k),
		cmocka_unit_test(test_ignored_after_integrity),
		cmocka_unit_test(test_ignored_after_sha256),
		cmocka_unit_test(test_duplicates_first_wins),
		cmocka_unit_test(test_unknown_required),
		cmocka_unit_test(test_unknown_required_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
