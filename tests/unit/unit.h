/*
 * Helpers shared by the unit tests: typed asserts that print what was
 * expected and what was seen, a raw STUN message builder that does not use
 * the codec under test, and socket address constructors.
 *
 * Everything here is static inline, so each test file takes only what it
 * uses.  It includes <cmocka.h> with its prerequisites.
 */
#ifndef PUNCH_TEST_UNIT_H
#define PUNCH_TEST_UNIT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "addr.h"
#include "stun.h"

/* cmocka prints integers in hex; error codes and lengths read better as
 * decimal, and an enum stun_err by name. */
#define assert_stun_rc(seen, expected) \
	unit_check_rc((int)(seen), (int)(expected), #seen, __FILE__, __LINE__)
#define assert_size(seen, expected)                                          \
	unit_check_size((size_t)(seen), (size_t)(expected), #seen, __FILE__, \
	                __LINE__)

static inline void unit_check_rc(int seen, int expected, const char *what,
                                 const char *file, int line)
{
	if (seen == expected)
		return;
	print_error("%s:%d: %s: expected %d (%s), saw %d (%s)\n", file, line,
	            what, expected, stun_err_str(expected), seen,
	            stun_err_str(seen));
	fail();
}

static inline void unit_check_size(size_t seen, size_t expected,
                                   const char *what, const char *file,
                                   int line)
{
	if (seen == expected)
		return;
	print_error("%s:%d: %s: expected %zu, saw %zu\n", file, line, what,
	            expected, seen);
	fail();
}

/* 64-bit values (times in ms, counters) in decimal. */
#define assert_u64(seen, expected)                                          \
	do {                                                                \
		unsigned long long s_ = (seen), e_ = (expected);            \
		if (s_ != e_) {                                             \
			print_error("%s:%d: %s: expected %llu, saw %llu\n", \
			            __FILE__, __LINE__, #seen, e_, s_);     \
			fail();                                             \
		}                                                           \
	} while (0)

/* Like assert_string_equal(), but a NULL (say, no reason given) is a
 * failure rather than a crash. */
#define assert_str(seen, want)                                                  \
	do {                                                                    \
		const char *s_ = (seen), *w_ = (want);                          \
		if (!s_ || !w_ || strcmp(s_, w_)) {                             \
			print_error("%s:%d: %s: expected \"%s\", saw \"%s\"\n", \
			            __FILE__, __LINE__, #seen,                  \
			            w_ ? w_ : "(null)", s_ ? s_ : "(null)");    \
			fail();                                                 \
		}                                                               \
	} while (0)

static inline void decode_ok(struct stun_msg *m, const uint8_t *buf,
                             size_t len)
{
	assert_stun_rc(stun_decode(m, buf, len), STUN_OK);
}

static inline void assert_bytes_str(struct stun_bytes b, const char *s)
{
	assert_size(b.len, strlen(s));
	assert_memory_equal(b.ptr, s, b.len);
}

/* ---- a raw message builder, independent of stun_writer ---------------- */

enum { RAW_CAP = 2048 };

struct raw {
	uint8_t b[RAW_CAP];
	size_t len;
};

/* The transaction id raw_init() uses. */
#define UNIT_TXID                             \
	{ 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, \
	  0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c }

static inline void raw_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void raw_put32(uint8_t *p, uint32_t v)
{
	raw_put16(p, (uint16_t)(v >> 16));
	raw_put16(p + 2, (uint16_t)v);
}

/* Rewrite the header's length field from r->len. */
static inline void raw_fix_length(struct raw *r)
{
	raw_put16(r->b + 2, (uint16_t)(r->len - STUN_HEADER_LEN));
}

/* A header of the given wire type (0x0001 is a Binding request). */
static inline void raw_init(struct raw *r, uint16_t type)
{
	static const uint8_t unit_txid[STUN_TXID_LEN] = UNIT_TXID;

	memset(r, 0, sizeof(*r));
	raw_put16(r->b, type);
	raw_put32(r->b + 4, STUN_MAGIC_COOKIE);
	memcpy(r->b + 8, unit_txid, STUN_TXID_LEN);
	r->len = STUN_HEADER_LEN;
}

/* Append an attribute with value v (or zeros when v is NULL), padded with
 * zeros to a multiple of 4, and update the header length. */
static inline void raw_attr(struct raw *r, uint16_t type, const void *v,
                            size_t len)
{
	size_t padded = (len + 3) & ~(size_t)3;

	assert_true(r->len + 4 + padded <= RAW_CAP);
	raw_put16(r->b + r->len, type);
	raw_put16(r->b + r->len + 2, (uint16_t)len);
	memset(r->b + r->len + 4, 0, padded);
	if (v && len)
		memcpy(r->b + r->len + 4, v, len);
	r->len += 4 + padded;
	raw_fix_length(r);
}

static inline void raw_u32(struct raw *r, uint16_t type, uint32_t v)
{
	uint8_t b[4];

	raw_put32(b, v);
	raw_attr(r, type, b, 4);
}

/* ---- socket addresses ------------------------------------------------- */

static inline struct sockaddr_storage sa_make(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
	}
	return ss;
}

#define SA(ss) ((struct sockaddr *)&(ss))

/* Same family, IP and port; prints both on failure. */
static inline void assert_addr(const struct sockaddr_storage *seen,
                               const struct sockaddr_storage *want)
{
	char a[ADDR_STRLEN], b[ADDR_STRLEN];

	if (seen->ss_family == want->ss_family &&
	    addr_equal((const struct sockaddr *)seen,
	               (const struct sockaddr *)want))
		return;
	print_error("expected %s, saw %s\n",
	            addr_str((const struct sockaddr *)want, a, sizeof(a)),
	            addr_str((const struct sockaddr *)seen, b, sizeof(b)));
	fail();
}

#endif
