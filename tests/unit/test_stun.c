/*
 * Unit tests for the STUN codec (src/stun.c): the RFC 5769 test vectors,
 * encode/decode round trips, every error the decoder and the writer return,
 * and the RFC 8489 rules on duplicates, unknown attributes and attributes
 * after MESSAGE-INTEGRITY.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <gnutls/crypto.h>
#include <zlib.h>

#include "addr.h"
#include "stun.h"
#include "stun3489.h"

/* ---- RFC 5769 test vectors, byte for byte ----------------------------- */

static const char vec_password[] = "VOkJxbRl1RmTxUk/WvJxBt";

/* RFC 5769 2.1: Sample Request (USERNAME padded with spaces) */
static const uint8_t vec_request[108] = {
	0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
	0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
	0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74,
	0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
	0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
	0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
	0x59, 0x20, 0x20, 0x20,
	0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56,
	0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2,
	0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf
};

/* RFC 5769 2.2: Sample IPv4 Response (SOFTWARE "test vector", 11 bytes,
 * padded with one space) */
static const uint8_t vec_response4[80] = {
	0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
	0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
	0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
	0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
	0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
	0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96
};

/* RFC 5769 2.3: Sample IPv6 Response */
static const uint8_t vec_response6[92] = {
	0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
	0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
	0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
	0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
	0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
	0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
	0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c
};

/* RFC 5769 2.4: Sample Request with Long-Term Authentication (no
 * FINGERPRINT; padding is zeros) */
static const uint8_t vec_longterm[116] = {
	0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42,
	0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e,
	0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88, 0xe3, 0x83,
	0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00,
	0x00, 0x15, 0x00, 0x1c, 0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39,
	0x35, 0x34, 0x64, 0x36, 0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46,
	0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73, 0x41,
	0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e,
	0x6f, 0x72, 0x67, 0x00,
	0x00, 0x08, 0x00, 0x14, 0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e,
	0x02, 0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66
};

static const char vec_lt_username[] = "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa"
				      "\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";
static const char vec_lt_nonce[] = "f//499k954d6OL34oL9FSTvy64sA";

/* ---- helpers ---------------------------------------------------------- */

/* RFC 5769 pads with spaces where our writer pads with zeros.  Append a
 * string attribute and overwrite its padding with spaces, before any
 * integrity attribute is computed over it. */
static void put_space_padded(struct stun_writer *w, uint16_t type,
                             const char *s)
{
	size_t n = strlen(s), start = w->len;

	stun_put_bytes(w, type, s, n);
	assert_stun_rc(w->err, STUN_OK);
	memset(w->buf + start + 4 + n, ' ', stun_attr_size(n) - 4 - n);
}

static void assert_vector(const uint8_t *buf, int n, const uint8_t *vec,
                          size_t vec_len)
{
	assert_stun_rc(n, (int)vec_len);
	assert_memory_equal(buf, vec, vec_len);
}

/* Long-term key, RFC 8489 9.2.2: MD5(username ":" realm ":" password). */
static void longterm_key(uint8_t key[16], const char *password)
{
	char s[128];
	int n = snprintf(s, sizeof(s), "%s:example.org:%s", vec_lt_username,
	                 password);

	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_MD5, s, (size_t)n, key),
	                 0);
}

/* ---- RFC 5769 vectors: decode ----------------------------------------- */

static void test_rfc5769_request(void **state)
{
	static const char wrong_password[] = "VOkJxbRl1RmTxUk/WvJxBT";
	static const uint8_t txid[] = { 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
		                        0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae };
	struct stun_msg m;

	(void)state;
	decode_ok(&m, vec_request, sizeof(vec_request));
	assert_int_equal(m.method, STUN_BINDING);
	assert_int_equal(m.cls, STUN_REQUEST);
	assert_memory_equal(m.txid, txid, sizeof(txid));
	assert_bytes_str(m.username, "evtj:h6vY");
	assert_bytes_str(m.software, "STUN test client");
	assert_int_equal(m.priority, 0x6e0001ff);
	assert_true(m.present & STUN_HAS_ICE_CONTROLLED);
	assert_false(m.present & STUN_HAS_ICE_CONTROLLING);
	assert_int_equal(m.tiebreaker, 0x932ff9b151263b36ULL);
	assert_true(m.present & STUN_HAS_INTEGRITY);
	assert_size(m.integrity_offset, 76);
	assert_true(m.present & STUN_HAS_FINGERPRINT);
	assert_int_equal(m.fingerprint, 0xe57a3bcf);
	assert_size(m.attrs_count, 6);
	assert_size(m.unknown_required_count, 0);
	assert_stun_rc(stun_check_integrity(&m, vec_request,
	                                    sizeof(vec_request),
	                                    (const uint8_t *)vec_password,
	                                    strlen(vec_password)),
	               STUN_OK);
	/* the last character's case changed */
	assert_stun_rc(stun_check_integrity(&m, vec_request,
	                                    sizeof(vec_request),
	                                    (const uint8_t *)wrong_password,
	                                    strlen(wrong_password)),
	               STUN_ERR_INTEGRITY);
}

static void check_vector_response(const uint8_t *vec, size_t len,
                                  const char *ip)
{
	struct sockaddr_storage want = sa_make(ip, 32853);
	struct stun_msg m;

	decode_ok(&m, vec, len);
	assert_int_equal(m.method, STUN_BINDING);
	assert_int_equal(m.cls, STUN_SUCCESS);
	/* 11 bytes on the wire; the RFC's prose shows the padding space too */
	assert_bytes_str(m.software, "test vector");
	assert_true(m.present & STUN_HAS_XOR_MAPPED);
	assert_false(m.present & STUN_HAS_MAPPED);
	assert_addr(&m.xor_mapped, &want);
	assert_true(m.present & STUN_HAS_FINGERPRINT);
	assert_stun_rc(stun_check_integrity(&m, vec, len,
	                                    (const uint8_t *)vec_password,
	                                    strlen(vec_password)),
	               STUN_OK);
	assert_stun_rc(stun_check_integrity(&m, vec, len,
	                                    (const uint8_t *)vec_password,
	                                    strlen(vec_password) - 1),
	               STUN_ERR_INTEGRITY);
}

static void test_rfc5769_ipv4_response(void **state)
{
	(void)state;
	check_vector_response(vec_response4, sizeof(vec_response4),
	                      "192.0.2.1");
}

static void test_rfc5769_ipv6_response(void **state)
{
	(void)state;
	check_vector_response(vec_response6, sizeof(vec_response6),
	                      "2001:db8:1234:5678:11:2233:4455:6677");
}

static void test_rfc5769_longterm(void **state)
{
	uint8_t key[16];
	struct stun_msg m;

	(void)state;
	decode_ok(&m, vec_longterm, sizeof(vec_longterm));
	assert_int_equal(m.cls, STUN_REQUEST);
	assert_bytes_str(m.username, vec_lt_username);
	assert_bytes_str(m.realm, "example.org");
	assert_bytes_str(m.nonce, vec_lt_nonce);
	assert_false(m.present & STUN_HAS_FINGERPRINT);
	/* The RFC's password is "The<U+00AD>M<U+00AA>tr<U+2168>"; SASLprep
	 * maps it to "TheMatrIX". */
	longterm_key(key, "TheMatrIX");
	assert_stun_rc(stun_check_integrity(&m, vec_longterm,
	                                    sizeof(vec_longterm), key, 16),
	               STUN_OK);
	longterm_key(key, "thematrix");
	assert_stun_rc(stun_check_integrity(&m, vec_longterm,
	                                    sizeof(vec_longterm), key, 16),
	               STUN_ERR_INTEGRITY);
}

/* ---- RFC 5769 vectors: the writer reproduces them --------------------- */

static void test_rfc5769_encode_request(void **state)
{
	uint8_t buf[256];
	struct stun_writer w;

	(void)state;
	stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST,
	                 vec_request + 8);
	put_space_padded(&w, STUN_ATTR_SOFTWARE, "STUN test client");
	stun_put_u32(&w, STUN_ATTR_PRIORITY, 0x6e0001ff);
	stun_put_u64(&w, STUN_ATTR_ICE_CONTROLLED, 0x932ff9b151263b36ULL);
	put_space_padded(&w, STUN_ATTR_USERNAME, "evtj:h6vY");
	stun_put_integrity(&w, (const uint8_t *)vec_password,
	                   strlen(vec_password));
	stun_put_fingerprint(&w);
	assert_vector(buf, stun_writer_finish(&w), vec_request,
	              sizeof(vec_request));
}

static void encode_response(const uint8_t *vec, size_t len, const char *ip)
{
	struct sockaddr_storage from = sa_make(ip, 32853);
	uint8_t buf[256];
	struct stun_writer w;

	stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING, STUN_SUCCESS,
	                 vec + 8);
	put_space_padded(&w, STUN_ATTR_SOFTWARE, "test vector");
	stun_put_xor_addr(&w, STUN_ATTR_XOR_MAPPED_ADDRESS, SA(from));
	stun_put_integrity(&w, (const uint8_t *)vec_password,
	                   strlen(vec_password));
	stun_put_fingerprint(&w);
	assert_vector(buf, stun_writer_finish(&w), vec, len);
}

static void test_rfc5769_encode_ipv4_response(void **state)
{
	(void)state;
	encode_response(vec_response4, sizeof(vec_response4), "192.0.2.1");
}

static void test_rfc5769_encode_ipv6_response(void **state)
{
	(void)state;
	encode_response(vec_response6, sizeof(vec_response6),
	                "2001:db8:1234:5678:11:2233:4455:6677");
}

static void test_rfc5769_encode_longterm(void **state)
{
	uint8_t buf[256], key[16];
	struct stun_writer w;

	(void)state;
	longterm_key(key, "TheMatrIX");
	stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST,
	                 vec_longterm + 8);
	stun_put_bytes(&w, STUN_ATTR_USERNAME, vec_lt_username,
	               strlen(vec_lt_username));
	stun_put_bytes(&w, STUN_ATTR_NONCE, vec_lt_nonce, strlen(vec_lt_nonce));
	stun_put_bytes(&w, STUN_ATTR_REALM, "example.org", 11);
	stun_put_integrity(&w, key, sizeof(key));
	assert_vector(buf, stun_writer_finish(&w), vec_longterm,
	              sizeof(vec_longterm));
}

/* stun_encode(stun_decode(v)) keeps every field and the integrity, and is a
 * fixed point from the second pass on. */
static void test_rfc5769_reencode(void **state)
{
	static const struct {
		const uint8_t *vec;
		size_t len;
	} vecs[] = {
		{ vec_request, sizeof(vec_request) },
		{ vec_response4, sizeof(vec_response4) },
		{ vec_response6, sizeof(vec_response6) }
	};
	const uint8_t *key = (const uint8_t *)vec_password;
	size_t key_len = strlen(vec_password);

	(void)state;
	for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
		uint8_t b1[256], b2[256];
		struct stun_msg m1, m2;
		int n1, n2;

		decode_ok(&m1, vecs[i].vec, vecs[i].len);
		n1 = stun_encode(&m1, b1, sizeof(b1), key, key_len);
		assert_stun_rc(n1, (int)vecs[i].len);
		decode_ok(&m2, b1, (size_t)n1);
		assert_int_equal(m2.present, m1.present);
		assert_memory_equal(m2.txid, m1.txid, STUN_TXID_LEN);
		assert_stun_rc(stun_check_integrity(&m2, b1, (size_t)n1, key,
		                                    key_len),
		               STUN_OK);
		n2 = stun_encode(&m2, b2, sizeof(b2), key, key_len);
		assert_stun_rc(n2, n1);
		assert_memory_equal(b2, b1, (size_t)n1);
	}
}

/* ---- round trips through the writer and the decoder ------------------- */

/* Write one message of class cls with attributes added by put(), decode it
 * and return its length. */
typedef void (*put_fn)(struct stun_writer *w, const void *arg);

static size_t write_decode(struct stun_msg *m, uint8_t *buf, size_t cap,
                           uint8_t cls, put_fn put, const void *arg)
{
	static const uint8_t txid[STUN_TXID_LEN] = UNIT_TXID;
	struct stun_writer w;
	int n;

	stun_writer_init(&w, buf, cap, STUN_BINDING, cls, txid);
	put(&w, arg);
	n = stun_writer_finish(&w);
	assert_true(n >= STUN_HEADER_LEN);
	decode_ok(m, buf, (size_t)n);
	assert_int_equal(m->cls, cls);
	assert_memory_equal(m->txid, txid, STUN_TXID_LEN);
	return (size_t)n;
}

struct addr_case {
	uint16_t type;
	uint32_t bit;
	size_t field;  /* offsetof(struct stun_msg, ...) */
	int xor ;
	const char *ip;
	uint16_t port;
};

static void put_addr_case(struct stun_writer *w, const void *arg)
{
	const struct addr_case *c = arg;
	struct sockaddr_storage sa = sa_make(c->ip, c->port);

	if (c->xor)
		stun_put_xor_addr(w, c->type, SA(sa));
	else
		stun_put_addr(w, c->type, SA(sa));
}

static void test_roundtrip_addresses(void **state)
{
/* Each attribute with an IPv4 and an IPv6 address. */
#define ADDR_CASES(type, bit, field, xor)                                             \
	{ STUN_ATTR_##type, STUN_HAS_##bit, offsetof(struct stun_msg, field),         \
	  xor, "198.51.100.7", 1 },                                                   \
		{ STUN_ATTR_##type, STUN_HAS_##bit, offsetof(struct stun_msg, field), \
		  xor, "2001:db8::ff00:42:8329", 65535 }
	static const struct addr_case cases[] = {
		ADDR_CASES(MAPPED_ADDRESS, MAPPED, mapped, 0),
		ADDR_CASES(XOR_MAPPED_ADDRESS, XOR_MAPPED, xor_mapped, 1),
		ADDR_CASES(RESPONSE_ORIGIN, RESPONSE_ORIGIN, response_origin,
		           0),
		ADDR_CASES(OTHER_ADDRESS, OTHER_ADDRESS, other_address, 0)
	};
#undef ADDR_CASES
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct addr_case *c = &cases[i];
		struct sockaddr_storage want = sa_make(c->ip, c->port);
		uint8_t buf[128];
		struct stun_msg m;
		size_t n = write_decode(&m, buf, sizeof(buf), STUN_SUCCESS,
		                        put_addr_case, c);

		assert_size(n, STUN_HEADER_LEN +
		                       stun_attr_size(strchr(c->ip, ':') ? 20 : 8));
		assert_int_equal(m.present, c->bit);
		assert_addr((const struct sockaddr_storage *)((const char *)&m +
		                                              c->field),
		            &want);
	}
}

struct bytes_case {
	uint16_t type;
	uint32_t bit;
	size_t field;
	size_t len;
};

static void put_bytes_case(struct stun_writer *w, const void *arg)
{
	const struct bytes_case *c = arg;
	char v[1024];

	for (size_t i = 0; i < c->len; i++)
		v[i] = (char)('a' + i % 26);
	stun_put_bytes(w, c->type, v, c->len);
}

static void test_roundtrip_strings(void **state)
{
#define BYTES_CASE(type, bit, field, len) \
	{ type, bit, offsetof(struct stun_msg, field), len }
	static const struct bytes_case cases[] = {
		BYTES_CASE(STUN_ATTR_USERNAME, STUN_HAS_USERNAME, username, 0),
		BYTES_CASE(STUN_ATTR_USERNAME, STUN_HAS_USERNAME, username, 5),
		BYTES_CASE(STUN_ATTR_USERNAME, STUN_HAS_USERNAME, username,
		           STUN_MAX_USERNAME),
		BYTES_CASE(STUN_ATTR_SOFTWARE, STUN_HAS_SOFTWARE, software, 7),
		BYTES_CASE(STUN_ATTR_SOFTWARE, STUN_HAS_SOFTWARE, software,
		           STUN_MAX_SOFTWARE),
		BYTES_CASE(STUN_ATTR_REALM, STUN_HAS_REALM, realm, 11),
		BYTES_CASE(STUN_ATTR_NONCE, STUN_HAS_NONCE, nonce, 28),
		BYTES_CASE(STUN_ATTR_PADDING, STUN_HAS_PADDING, padding, 1000)
	};
#undef BYTES_CASE
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bytes_case *c = &cases[i];
		const struct stun_bytes *b;
		uint8_t buf[1100];
		struct stun_msg m;
		size_t n = write_decode(&m, buf, sizeof(buf), STUN_REQUEST,
		                        put_bytes_case, c);

		assert_size(n, STUN_HEADER_LEN + stun_attr_size(c->len));
		assert_int_equal(m.present, c->bit);
		b = (const struct stun_bytes *)((const char *)&m + c->field);
		assert_size(b->len, c->len);
		assert_ptr_equal(b->ptr, buf + STUN_HEADER_LEN + 4);
		for (size_t j = 0; j < c->len; j++)
			assert_int_equal(b->ptr[j], 'a' + j % 26);
	}
}

struct error_case {
	uint16_t code;
	const char *reason;
};

static void put_error_case(struct stun_writer *w, const void *arg)
{
	const struct error_case *c = arg;

	stun_put_error(w, c->code, c->reason);
}

static void test_roundtrip_error_code(void **state)
{
	static char longest[STUN_MAX_REASON + 1];
	const struct error_case cases[] = {
		{ 300, "Try Alternate" },
		{ 420, "Unknown Attribute" },
		{ 699, "x" },
		{ 400, "" },
		{ 401, NULL },
		{ 500, longest }
	};

	(void)state;
	memset(longest, 'r', STUN_MAX_REASON);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *reason = cases[i].reason ? cases[i].reason : "";
		uint8_t buf[1024];
		struct stun_msg m;

		write_decode(&m, buf, sizeof(buf), STUN_ERROR, put_error_case,
		             &cases[i]);
		assert_int_equal(m.present, STUN_HAS_ERROR_CODE);
		assert_int_equal(m.error_code, cases[i].code);
		assert_bytes_str(m.reason, reason);
		/* RFC 8489 14.8: class in the low 3 bits of byte 2 */
		assert_int_equal(buf[STUN_HEADER_LEN + 6], cases[i].code / 100);
		assert_int_equal(buf[STUN_HEADER_LEN + 7], cases[i].code % 100);
	}
}

static void put_420(struct stun_writer *w, const void *arg)
{
	stun_put_error(w, 420, "Unknown Attribute");
	stun_put_unknown(w, arg, 3);
}

/* An odd count: 6 bytes of value, 2 of padding (RFC 8489 14.9). */
static void test_roundtrip_unknown_attributes(void **state)
{
	static const uint16_t types[3] = { 0x0031, 0x7fff, 0x8123 };
	static const uint8_t wire[] = { 0x00, 0x0a, 0x00, 0x06, 0x00, 0x31,
		                        0x7f, 0xff, 0x81, 0x23, 0x00, 0x00 };
	uint8_t buf[128];
	struct stun_msg m;
	size_t n;

	(void)state;
	n = write_decode(&m, buf, sizeof(buf), STUN_ERROR, put_420, types);
	assert_memory_equal(buf + n - sizeof(wire), wire, sizeof(wire));
	assert_int_equal(m.present,
	                 STUN_HAS_ERROR_CODE | STUN_HAS_UNKNOWN_ATTRS);
	assert_int_equal(m.error_code, 420);
	assert_size(m.unknown_attrs_count, 3);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(m.unknown_attrs[i], types[i]);
}

static void put_numbers(struct stun_writer *w, const void *arg)
{
	(void)arg;
	stun_put_u32(w, STUN_ATTR_CHANGE_REQUEST,
	             STUN_CHANGE_IP | STUN_CHANGE_PORT);
	stun_put_u32(w, STUN_ATTR_RESPONSE_PORT, 40000u << 16);
	stun_put_u32(w, STUN_ATTR_PRIORITY, 0x7e0000ff);
	stun_put_bytes(w, STUN_ATTR_USE_CANDIDATE, NULL, 0);
	stun_put_u64(w, STUN_ATTR_ICE_CONTROLLING, 0x0123456789abcdefULL);
}

static void test_roundtrip_numbers(void **state)
{
	uint8_t buf[128];
	struct stun_msg m;
	size_t n;

	(void)state;
	n = write_decode(&m, buf, sizeof(buf), STUN_REQUEST, put_numbers, NULL);
	assert_size(n, STUN_HEADER_LEN + 8 + 8 + 8 + 4 + 12);
	assert_int_equal(m.present,
	                 STUN_HAS_CHANGE_REQUEST | STUN_HAS_RESPONSE_PORT |
	                         STUN_HAS_PRIORITY | STUN_HAS_USE_CANDIDATE |
	                         STUN_HAS_ICE_CONTROLLING);
	assert_int_equal(m.change_request, STUN_CHANGE_IP | STUN_CHANGE_PORT);
	assert_int_equal(m.response_port, 40000);
	assert_int_equal(m.priority, 0x7e0000ff);
	assert_int_equal(m.tiebreaker, 0x0123456789abcdefULL);
}

static const uint8_t test_key[] = "a key of some length";

static void put_integrity_all(struct stun_writer *w, const void *arg)
{
	(void)arg;
	stun_put_bytes(w, STUN_ATTR_USERNAME, "user", 4);
	stun_put_integrity(w, test_key, sizeof(test_key));
	stun_put_integrity_sha256(w, test_key, sizeof(test_key));
	stun_put_fingerprint(w);
}

static void test_roundtrip_integrity(void **state)
{
	uint8_t buf[128], mac[32];
	struct stun_msg m;
	size_t n;

	(void)state;
	n = write_decode(&m, buf, sizeof(buf), STUN_REQUEST, put_integrity_all,
	                 NULL);
	assert_size(n, STUN_HEADER_LEN + 8 + 24 + 36 + 8);
	assert_int_equal(m.present, STUN_HAS_USERNAME | STUN_HAS_INTEGRITY |
	                                    STUN_HAS_INTEGRITY_SHA256 | STUN_HAS_FINGERPRINT);
	assert_size(m.integrity_offset, 28);
	assert_size(m.integrity_sha256_offset, 52);
	assert_size(m.integrity_sha256_len, 32);
	assert_int_equal(m.fingerprint,
	                 (uint32_t)crc32(0, buf, (uInt)(n - 8)) ^
	                         STUN_FINGERPRINT_XOR);
	assert_stun_rc(stun_check_integrity(&m, buf, n, test_key,
	                                    sizeof(test_key)),
	               STUN_OK);
	/* Independently: HMAC-SHA1 over the prefix, with the length field
	 * ending just after MESSAGE-INTEGRITY (RFC 8489 14.5). */
	buf[3] = 28 + 24 - STUN_HEADER_LEN;
	assert_int_equal(gnutls_hmac_fast(GNUTLS_MAC_SHA1, test_key,
	                                  sizeof(test_key), buf, 28, mac),
	                 0);
	assert_memory_equal(mac, m.integrity, 20);
}

/* RFC 8489 14.6 lets MESSAGE-INTEGRITY-SHA256 be truncated to 16 bytes. */
static void test_integrity_sha256_truncated(void **state)
{
	uint8_t mac[32];
	struct stun_msg m;
	struct raw r;

	(void)state;
	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_USERNAME, "user", 4);
	raw_put16(r.b + 2, (uint16_t)(r.len + 4 + 16 - STUN_HEADER_LEN));
	assert_int_equal(gnutls_hmac_fast(GNUTLS_MAC_SHA256, test_key,
	                                  sizeof(test_key), r.b, r.len, mac),
	                 0);
	raw_attr(&r, STUN_ATTR_MESSAGE_INTEGRITY_SHA256, mac, 16);
	decode_ok(&m, r.b, r.len);
	assert_size(m.integrity_sha256_len, 16);
	assert_stun_rc(stun_check_integrity(&m, r.b, r.len, test_key,
	                                    sizeof(test_key)),
	               STUN_OK);
	r.b[r.len - 1] ^= 1;
	decode_ok(&m, r.b, r.len);
	assert_stun_rc(stun_check_integrity(&m, r.b, r.len, test_key,
	                                    sizeof(test_key)),
	               STUN_ERR_INTEGRITY);
}

/* Everything stun_encode() knows, written in its canonical order: decoding
 * and re-encoding gives back the same bytes. */
static void put_canonical(struct stun_writer *w, const void *arg)
{
	static const uint16_t unknown[] = { 0x0042 };
	struct sockaddr_storage a4 = sa_make("192.0.2.1", 3478);
	struct sockaddr_storage a6 = sa_make("2001:db8::1", 3479);

	(void)arg;
	stun_put_xor_addr(w, STUN_ATTR_XOR_MAPPED_ADDRESS, SA(a6));
	stun_put_addr(w, STUN_ATTR_MAPPED_ADDRESS, SA(a4));
	stun_put_addr(w, STUN_ATTR_RESPONSE_ORIGIN, SA(a4));
	stun_put_addr(w, STUN_ATTR_OTHER_ADDRESS, SA(a6));
	stun_put_bytes(w, STUN_ATTR_USERNAME, "alice", 5);
	stun_put_bytes(w, STUN_ATTR_REALM, "example.org", 11);
	stun_put_bytes(w, STUN_ATTR_NONCE, "nonce", 5);
	stun_put_error(w, 420, "Unknown Attribute");
	stun_put_unknown(w, unknown, 1);
	stun_put_u32(w, STUN_ATTR_CHANGE_REQUEST, STUN_CHANGE_PORT);
	stun_put_u32(w, STUN_ATTR_RESPONSE_PORT, 5000u << 16);
	stun_put_u32(w, STUN_ATTR_PRIORITY, 12345);
	stun_put_bytes(w, STUN_ATTR_USE_CANDIDATE, NULL, 0);
	stun_put_u64(w, STUN_ATTR_ICE_CONTROLLED, 42);
	stun_put_bytes(w, STUN_ATTR_PADDING, "\0\0\0\0\0\0", 6);
	stun_put_bytes(w, STUN_ATTR_SOFTWARE, "punch", 5);
	stun_put_integrity(w, test_key, sizeof(test_key));
	stun_put_integrity_sha256(w, test_key, sizeof(test_key));
	stun_put_fingerprint(w);
}

static void test_encode_decode_identity(void **state)
{
	uint8_t buf[512], out[512];
	struct stun_msg m;
	size_t n;

	(void)state;
	n = write_decode(&m, buf, sizeof(buf), STUN_ERROR, put_canonical, NULL);
	assert_size(m.attrs_count, 19);
	assert_stun_rc(stun_encode(&m, out, sizeof(out), test_key,
	                           sizeof(test_key)),
	               (int)n);
	assert_memory_equal(out, buf, n);
	/* Without a key the integrity attributes cannot be rebuilt. */
	assert_stun_rc(stun_encode(&m, out, sizeof(out), NULL, 0),
	               (int)(n - 24 - 36));
	/* And into too small a buffer, the writer's error comes back. */
	assert_stun_rc(stun_encode(&m, out, n - 1, test_key, sizeof(test_key)),
	               STUN_ERR_NOSPACE);
}

/* RFC 8489 5: method bits M0-M11 around the class bits C0 (0x10) and C1
 * (0x100). */
static void test_message_type_bits(void **state)
{
	static const struct {
		uint16_t method;
		uint8_t cls;
		uint16_t wire;
	} cases[] = {
		{ STUN_BINDING, STUN_REQUEST, 0x0001 },
		{ STUN_BINDING, STUN_INDICATION, 0x0011 },
		{ STUN_BINDING, STUN_SUCCESS, 0x0101 },
		{ STUN_BINDING, STUN_ERROR, 0x0111 },
		{ 0x00A, STUN_SUCCESS, 0x010A },
		{ 0xFFF, STUN_REQUEST, 0x3EEF },
		{ 0xFFF, STUN_ERROR, 0x3FFF }
	};
	static const uint8_t txid[STUN_TXID_LEN] = UNIT_TXID;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t buf[64];
		struct stun_writer w;
		struct stun_msg m;

		stun_writer_init(&w, buf, sizeof(buf), cases[i].method,
		                 cases[i].cls, txid);
		if (cases[i].cls == STUN_ERROR)
			stun_put_error(&w, 400, NULL);
		assert_true(stun_writer_finish(&w) > 0);
		assert_int_equal(buf[0] << 8 | buf[1], cases[i].wire);
		decode_ok(&m, buf, (size_t)stun_writer_finish(&w));
		assert_int_equal(m.method, cases[i].method);
		assert_int_equal(m.cls, cases[i].cls);
	}
}

static void test_is_stun(void **state)
{
	uint8_t b[sizeof(vec_request)];

	(void)state;
	assert_true(stun_is_stun(vec_request, sizeof(vec_request)));
	assert_true(stun_is_stun(vec_response6, sizeof(vec_response6)));
	/* only the header is looked at */
	assert_true(stun_is_stun(vec_request, STUN_HEADER_LEN));
	assert_false(stun_is_stun(vec_request, STUN_HEADER_LEN - 1));
	memcpy(b, vec_request, sizeof(b));
	b[0] = 3;    /* RFC 9443: 0..3 is STUN */
	assert_true(stun_is_stun(b, sizeof(b)));
	b[0] = 4;
	assert_false(stun_is_stun(b, sizeof(b)));
	b[0] = 22;   /* DTLS */
	assert_false(stun_is_stun(b, sizeof(b)));
	b[0] = 0x80; /* RTP */
	assert_false(stun_is_stun(b, sizeof(b)));
	b[0] = 0;
	b[7] ^= 1;   /* cookie */
	assert_false(stun_is_stun(b, sizeof(b)));
}

static void test_err_and_class_names(void **state)
{
	const char *unknown = stun_err_str(1);

	(void)state;
	for (int e = STUN_ERR_ARG; e <= STUN_OK; e++) {
		assert_non_null(stun_err_str(e));
		assert_string_not_equal(stun_err_str(e), unknown);
		for (int f = STUN_ERR_ARG; f < e; f++)
			assert_string_not_equal(stun_err_str(e),
			                        stun_err_str(f));
	}
	assert_string_equal(stun_class_str(STUN_REQUEST), "request");
	assert_string_equal(stun_class_str(STUN_INDICATION), "indication");
	assert_string_equal(stun_class_str(STUN_SUCCESS), "success");
	assert_string_equal(stun_class_str(STUN_ERROR), "error");
	assert_string_equal(stun_class_str(4), "?");
}

/* ---- classic STUN (RFC 3489, src/stun3489.c) -------------------------- */

/* The Binding request of an RFC 3489 client: bytes 4..19 are the id. */
static void classic_init(struct raw *r, uint16_t type)
{
	raw_init(r, type);
	for (int i = 0; i < 16; i++)
		r->b[4 + i] = (uint8_t)(0xB0 + i);
}

static void test_classic_decode(void **state)
{
	struct stun3489_msg m;
	struct raw r;

	(void)state;
	classic_init(&r, 0x0001);
	raw_u32(&r, STUN_ATTR_CHANGE_REQUEST, 0xFFFFFFFF);
	raw_u32(&r, STUN_ATTR_CHANGE_REQUEST, 0); /* only the first counts */
	raw_attr(&r, STUN3489_ATTR_RESPONSE_ADDRESS, NULL, 8);
	raw_attr(&r, STUN_ATTR_USERNAME, "user", 4);
	raw_attr(&r, 0x8123, "x", 1); /* optional, padded: ignored */
	raw_attr(&r, 0x0030, NULL, 0);
	assert_stun_rc(stun3489_decode(&m, r.b, r.len), STUN_OK);
	assert_int_equal(m.method, STUN_BINDING);
	assert_int_equal(m.cls, STUN_REQUEST);
	assert_memory_equal(m.txid, r.b + 4, STUN3489_TXID_LEN);
	assert_int_equal(m.present, STUN3489_HAS_CHANGE_REQUEST |
	                                    STUN3489_HAS_RESPONSE_ADDRESS);
	assert_int_equal(m.change_request, STUN_CHANGE_IP | STUN_CHANGE_PORT);
	assert_int_equal(m.attrs_count, 6);
	assert_int_equal(m.unknown_required_count, 1);
	assert_int_equal(m.unknown_required[0], 0x0030);

	classic_init(&r, 0x0111);
	assert_stun_rc(stun3489_decode(&m, r.b, r.len), STUN_OK);
	assert_int_equal(m.cls, STUN_ERROR);
}

/* Every length is checked: the decoder refuses, and reads nothing past len
 * (ASan watches the heap copy). */
static void test_classic_decode_errors(void **state)
{
	struct stun3489_msg m;
	struct raw r;
	uint8_t *heap;

	(void)state;
	classic_init(&r, 0x0001);
	assert_stun_rc(stun3489_decode(&m, r.b, 19), STUN_ERR_SHORT);
	r.b[0] = 0x40;
	assert_stun_rc(stun3489_decode(&m, r.b, r.len), STUN_ERR_NOT_STUN);
	classic_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_CHANGE_REQUEST, NULL, 2);
	assert_stun_rc(stun3489_decode(&m, r.b, r.len), STUN_ERR_ATTR_VALUE);
	classic_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_USERNAME, NULL, 8);
	r.b[STUN_HEADER_LEN + 3] = 9; /* runs past the end */
	heap = malloc(r.len);
	assert_non_null(heap);
	memcpy(heap, r.b, r.len);
	assert_stun_rc(stun3489_decode(&m, heap, r.len),
	               STUN_ERR_ATTR_TRUNCATED);
	free(heap);
	r.b[3] += 4; /* header length disagrees with the datagram */
	assert_stun_rc(stun3489_decode(&m, r.b, r.len), STUN_ERR_LENGTH);
	classic_init(&r, 0x0001);
	for (int i = 0; i <= STUN_MAX_ATTRS; i++)
		raw_attr(&r, 0x8123, NULL, 0);
	assert_stun_rc(stun3489_decode(&m, r.b, r.len),
	               STUN_ERR_TOO_MANY_ATTRS);
}

/* The writer puts the whole 128-bit id where RFC 5389 has the cookie. */
static void test_classic_writer(void **state)
{
	struct stun3489_msg m;
	struct stun_writer w;
	uint8_t id[STUN3489_TXID_LEN], buf[64];
	int n;

	(void)state;
	for (int i = 0; i < STUN3489_TXID_LEN; i++)
		id[i] = (uint8_t)(0xC0 + i);
	stun3489_writer_init(&w, buf, sizeof(buf), STUN_BINDING, STUN_SUCCESS,
	                     id);
	stun_put_u32(&w, 0x8123, 7);
	n = stun_writer_finish(&w);
	assert_int_equal(n, 28);
	assert_memory_equal(buf + 4, id, sizeof(id));
	assert_stun_rc(stun3489_decode(&m, buf, (size_t)n), STUN_OK);
	assert_int_equal(m.cls, STUN_SUCCESS);
	stun3489_writer_init(&w, buf, 19, STUN_BINDING, STUN_SUCCESS, id);
	assert_stun_rc(stun_writer_finish(&w), STUN_ERR_NOSPACE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5769_request),
		cmocka_unit_test(test_rfc5769_ipv4_response),
		cmocka_unit_test(test_rfc5769_ipv6_response),
		cmocka_unit_test(test_rfc5769_longterm),
		cmocka_unit_test(test_rfc5769_encode_request),
		cmocka_unit_test(test_rfc5769_encode_ipv4_response),
		cmocka_unit_test(test_rfc5769_encode_ipv6_response),
		cmocka_unit_test(test_rfc5769_encode_longterm),
		cmocka_unit_test(test_rfc5769_reencode),
		cmocka_unit_test(test_roundtrip_addresses),
		cmocka_unit_test(test_roundtrip_strings),
		cmocka_unit_test(test_roundtrip_error_code),
		cmocka_unit_test(test_roundtrip_unknown_attributes),
		cmocka_unit_test(test_roundtrip_numbers),
		cmocka_unit_test(test_roundtrip_integrity),
		cmocka_unit_test(test_integrity_sha256_truncated),
		cmocka_unit_test(test_encode_decode_identity),
		cmocka_unit_test(test_message_type_bits),
		cmocka_unit_test(test_is_stun),
		cmocka_unit_test(test_err_and_class_names),
		cmocka_unit_test(test_classic_decode),
		cmocka_unit_test(test_classic_decode_errors),
		cmocka_unit_test(test_classic_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
