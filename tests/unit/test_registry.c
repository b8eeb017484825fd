/*
 * Unit tests for the pure registry (src/registry.c) and the ids it is keyed
 * by (punch_id_check() in src/punch_attr.c): pairing, expiry,
 * re-registration, caps and key binding.  No sockets and no clock: the
 * tests pass the time in.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "punch_attr.h"
#include "registry.h"

/* The heap in use, from the allocator itself: ASan's when it runs. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNIT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNIT_ASAN 1
#endif
#ifdef UNIT_ASAN
#include <sanitizer/allocator_interface.h>
static size_t heap_in_use(void)
{
	return __sanitizer_get_current_allocated_bytes();
}
#else
#include <malloc.h>
static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}
#endif

/* registry_register()'s result, printed by name on failure. */
#define assert_reg(seen, expected)                                         \
	do {                                                               \
		int s_ = (seen), e_ = (expected);                          \
		if (s_ != e_) {                                            \
			print_error("%s:%d: %s: expected %d (%s), saw %d " \
			            "(%s)\n",                              \
			            __FILE__, __LINE__, #seen, e_,         \
			            registry_result_str(e_), s_,           \
			            registry_result_str(s_));              \
			fail();                                            \
		}                                                          \
	} while (0)

/* ---- punch_id_check ---------------------------------------------------- */

static const char R_EMPTY[] = "id is empty";
static const char R_LONG[] = "id is longer than 64 bytes";
static const char R_UTF8[] = "id is not valid UTF-8";
static const char R_SPACE[] = "id contains a space or control character";

struct id_case {
	const char *name;
	const char *bytes;
	size_t len;       /* 0: strlen(bytes) */
	const char *why;  /* NULL: valid */
};

static void check_id(const struct id_case *c)
{
	size_t len = c->len ? c->len : strlen(c->bytes);
	const char *why = punch_id_check((const uint8_t *)c->bytes, len);

	if ((why == NULL) != (c->why == NULL) ||
	    (why && strcmp(why, c->why))) {
		print_error("id case '%s': expected %s, saw %s\n", c->name,
		            c->why ? c->why : "valid", why ? why : "valid");
		fail();
	}
}

static void test_id_valid(void **state)
{
	static const struct id_case cases[] = {
		{ "one ascii byte", "a", 0, NULL },
		{ "typical", "alice@example.org", 0, NULL },
		{ "punctuation", "!~#$%^&*()_+-=[]{}|;':\",./<>?", 0, NULL },
		{ "two-byte", "caf\xC3\xA9", 0, NULL },
		{ "lowest allowed two-byte, U+00A1", "x\xC2\xA1y", 0, NULL },
		{ "C1 control U+0085", "x\xC2\x85y", 0, R_SPACE },
		{ "C1 CSI U+009B", "x\xC2\x9By", 0, R_SPACE },
		{ "no-break space U+00A0", "x\xC2\xA0y", 0, R_SPACE },
		{ "line separator U+2028", "x\xE2\x80\xA8y", 0, R_SPACE },
		{ "ideographic space U+3000", "x\xE3\x80\x80y", 0, R_SPACE },
		{ "three-byte", "\xE6\x97\xA5\xE6\x9C\xAC", 0, NULL },
		{ "U+0800, lowest three-byte", "\xE0\xA0\x80", 0, NULL },
		{ "U+D7FF, below the surrogates", "\xED\x9F\xBF", 0, NULL },
		{ "U+E000, above the surrogates", "\xEE\x80\x80", 0, NULL },
		{ "U+FFFF", "\xEF\xBF\xBF", 0, NULL },
		{ "four-byte emoji", "\xF0\x9F\x98\x80", 0, NULL },
		{ "U+10FFFF, the last code point", "\xF4\x8F\xBF\xBF", 0,
		  NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_id(&cases[i]);
}

static void test_id_length(void **state)
{
	char id[80];

	(void)state;
	memset(id, 'a', sizeof(id));
	assert_null(punch_id_check((uint8_t *)id, 64));
	assert_str(punch_id_check((uint8_t *)id, 65), R_LONG);
	assert_str(punch_id_check((uint8_t *)id, sizeof(id)), R_LONG);
	assert_str(punch_id_check((uint8_t *)id, 0), R_EMPTY);
	/* 64 bytes, ending in a whole 4-byte character */
	memcpy(id + 60, "\xF0\x9F\x98\x80", 4);
	assert_null(punch_id_check((uint8_t *)id, 64));
	/* the limit counts bytes, not characters: 17 emoji are 68 bytes */
	for (int i = 0; i < 17; i++)
		memcpy(id + 4 * i, "\xF0\x9F\x98\x80", 4);
	assert_str(punch_id_check((uint8_t *)id, 68), R_LONG);
	assert_null(punch_id_check((uint8_t *)id, 64));
	/* a character cut by the length is not valid UTF-8 */
	assert_str(punch_id_check((uint8_t *)id, 63), R_UTF8);
}

static void test_id_bad_utf8(void **state)
{
	static const struct id_case cases[] = {
		{ "stray continuation byte", "a\x80", 0, R_UTF8 },
		{ "lone continuation at the start", "\xBF", 0, R_UTF8 },
		{ "overlong NUL (C0 80)", "\xC0\x80", 0, R_UTF8 },
		{ "overlong '/' (C0 AF)", "\xC0\xAF", 0, R_UTF8 },
		{ "overlong two-byte (C1 BF)", "\xC1\xBF", 0, R_UTF8 },
		{ "overlong three-byte '/' (E0 80 AF)", "\xE0\x80\xAF", 0,
		  R_UTF8 },
		{ "overlong three-byte U+07FF (E0 9F BF)", "\xE0\x9F\xBF", 0,
		  R_UTF8 },
		{ "overlong four-byte '/' (F0 80 80 AF)", "\xF0\x80\x80\xAF", 0,
		  R_UTF8 },
		{ "overlong four-byte U+FFFF (F0 8F BF BF)", "\xF0\x8F\xBF\xBF",
		  0, R_UTF8 },
		{ "high surrogate U+D800", "\xED\xA0\x80", 0, R_UTF8 },
		{ "low surrogate U+DFFF", "\xED\xBF\xBF", 0, R_UTF8 },
		{ "surrogate pair as CESU-8", "\xED\xA0\xBD\xED\xB8\x80", 0,
		  R_UTF8 },
		{ "above U+10FFFF (F4 90 80 80)", "\xF4\x90\x80\x80", 0,
		  R_UTF8 },
		{ "F5 lead byte", "\xF5\x80\x80\x80", 0, R_UTF8 },
		{ "FE byte", "a\xFE", 0, R_UTF8 },
		{ "FF byte", "\xFF", 0, R_UTF8 },
		{ "truncated two-byte", "ab\xC3", 0, R_UTF8 },
		{ "truncated three-byte", "\xE6\x97", 0, R_UTF8 },
		{ "truncated four-byte", "\xF0\x9F\x98", 0, R_UTF8 },
		{ "continuation replaced by ASCII",
		  "\xE6"
		  "a"
		  "\xA5",
		  0, R_UTF8 },
		{ "continuation replaced by a lead", "\xC3\xC3\xA9", 0,
		  R_UTF8 },
		{ "two leads", "\xC3\xC3", 0, R_UTF8 },
		{ "three-byte with a lead inside", "\xE6\xD7\xA5", 0, R_UTF8 }
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_id(&cases[i]);
}

static void test_id_space_control(void **state)
{
	static const struct id_case cases[] = {
		{ "space", "alice bob", 0, R_SPACE },
		{ "leading space", " alice", 0, R_SPACE },
		{ "trailing space", "alice ", 0, R_SPACE },
		{ "tab", "a\tb", 0, R_SPACE },
		{ "newline", "alice\n", 0, R_SPACE },
		{ "carriage return", "a\rb", 0, R_SPACE },
		{ "escape (terminal injection)", "\x1b[2Jalice", 0, R_SPACE },
		{ "unit separator 0x1F", "a\x1f", 0, R_SPACE },
		{ "DEL 0x7F", "a\x7f", 0, R_SPACE },
		{ "NUL inside", "a\0b", 3, R_SPACE },
		{ "only NUL", "\0", 1, R_SPACE }
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_id(&cases[i]);
}

/* ---- registry ---------------------------------------------------------- */

static struct punch_candidate cand(uint8_t type, const char *ip, uint16_t port,
                                   uint32_t prio)
{
	struct punch_candidate c;

	memset(&c, 0, sizeof(c));
	c.type = type;
	c.priority = prio;
	c.addr = sa_make(ip, port);
	return c;
}

static struct punch_peer peer_make(const char *id, const char *peer_id,
                                   uint64_t session)
{
	struct punch_peer p;

	memset(&p, 0, sizeof(p));
	snprintf(p.id, sizeof(p.id), "%s", id);
	snprintf(p.peer_id, sizeof(p.peer_id), "%s", peer_id);
	snprintf(p.ufrag, sizeof(p.ufrag), "uf-%s", id);
	snprintf(p.pwd, sizeof(p.pwd), "password-of-%s", id);
	p.session = session;
	p.cand[p.n_cand++] = cand(CAND_HOST, "10.0.0.1", 5000,
	                          punch_cand_priority(CAND_HOST, 65279));
	p.cand[p.n_cand++] = cand(CAND_SRFLX, "203.0.113.1", 6000,
	                          punch_cand_priority(CAND_SRFLX, 65535));
	return p;
}


#define LIFE REGISTRY_LIFETIME_MS

/* An entry read back, as the rendezvous server reads it. */
static const struct punch_peer *peer_of(const struct reg_entry *e)
{
	static struct punch_peer p;

	assert_non_null(e);
	registry_entry_peer(e, &p);
	return &p;
}

static const struct sockaddr_storage *from_of(const struct reg_entry *e)
{
	static struct sockaddr_storage ss;

	assert_non_null(e);
	registry_entry_from(e, &ss);
	return &ss;
}

struct reg_fixture {
	struct registry *r;
	const struct reg_entry *self, *peer;
};

/* The registry under test, freed by the teardown even when a test fails. */
static struct registry *live;

static struct registry *reg_new(size_t max, size_t per_ip)
{
	registry_free(live);
	live = registry_new(max, per_ip);
	assert_non_null(live);
	return live;
}

static int reg_teardown(void **state)
{
	(void)state;
	registry_free(live);
	live = NULL;
	return 0;
}

static int reg(struct reg_fixture *f, const struct punch_peer *p,
               const char *ip, uint16_t port, uint64_t now)
{
	struct sockaddr_storage from = sa_make(ip, port);

	f->self = f->peer = NULL;
	return registry_register(f->r, p, SA(from), 1, now, &f->self, &f->peer);
}

static void test_registry_pairing(void **state)
{
	struct reg_fixture f = { reg_new(16, 0), NULL, NULL };
	struct punch_peer a = peer_make("alice", "bob", 1);
	struct punch_peer b = peer_make("bob", "alice", 2);
	struct punch_peer c = peer_make("carol", "alice", 3);
	struct sockaddr_storage a_from = sa_make("198.51.100.1", 1111);
	struct sockaddr_storage b_from = sa_make("2001:db8::2", 2222);
	const struct reg_entry *e;

	(void)state;
	assert_non_null(f.r);
	assert_reg(reg(&f, &a, "198.51.100.1", 1111, 1000), REG_WAITING);
	assert_size(registry_count(f.r), 1);
	/* carol wants alice, but alice wants bob: no pair */
	assert_reg(reg(&f, &c, "198.51.100.3", 3333, 1000), REG_WAITING);
	assert_null(f.self);
	assert_reg(reg(&f, &b, "2001:db8::2", 2222, 1500), REG_INTRODUCE);
	assert_size(registry_count(f.r), 3);
	assert_non_null(f.self);
	assert_non_null(f.peer);
	assert_string_equal(registry_entry_id(f.self), "bob");
	assert_string_equal(registry_entry_id(f.peer), "alice");
	assert_addr(from_of(f.self), &b_from);
	assert_addr(from_of(f.peer), &a_from);
	assert_int_equal(registry_entry_sock(f.self), 1);
	assert_true(registry_entry_expires(f.self) == 1500 + LIFE);
	assert_true(registry_entry_expires(f.peer) == 1000 + LIFE);
	assert_true(registry_entry_session(f.peer) == 1);
	assert_size(peer_of(f.self)->n_cand, 2);
	/* what PEER-INFO will say about bob: all he sent, and where he was
	 * seen */
	{
		const struct punch_peer *seen = peer_of(f.self);

		assert_string_equal(seen->id, "bob");
		assert_string_equal(seen->peer_id, "alice");
		assert_string_equal(seen->ufrag, b.ufrag);
		assert_string_equal(seen->pwd, b.pwd);
		assert_true(seen->session == 2);
		for (size_t i = 0; i < b.n_cand; i++) {
			assert_int_equal(seen->cand[i].type, b.cand[i].type);
			assert_true(seen->cand[i].priority ==
			            b.cand[i].priority);
			assert_addr(&seen->cand[i].addr, &b.cand[i].addr);
		}
		assert_true(seen->has_observed);
		assert_addr(&seen->observed, &b_from);
	}

	e = registry_find(f.r, "alice");
	assert_ptr_equal(e, f.peer);
	assert_null(registry_find(f.r, "dave"));
	assert_null(registry_find(f.r, "alic"));
}

static void test_registry_same_id(void **state)
{
	struct reg_fixture f = { reg_new(4, 0), NULL, NULL };
	struct punch_peer a = peer_make("alice", "alice", 1);

	(void)state;
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 0), REG_ERR_SAME_ID);
	assert_size(registry_count(f.r), 0);
	assert_string_equal(registry_result_str(REG_ERR_SAME_ID),
	                    "id and peer id are the same");
}

static void test_registry_expiry(void **state)
{
	struct reg_fixture f = { reg_new(4, 0), NULL, NULL };
	struct punch_peer a = peer_make("alice", "bob", 1);
	struct punch_peer b = peer_make("bob", "alice", 2);

	(void)state;
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 0), REG_WAITING);
	assert_size(registry_expire(f.r, LIFE - 1), 0);
	assert_non_null(registry_find(f.r, "alice"));
	assert_size(registry_expire(f.r, LIFE), 1);
	assert_null(registry_find(f.r, "alice"));
	assert_size(registry_count(f.r), 0);

	/* A refresh pushes the expiry out. */
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 100000), REG_WAITING);
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 100000 + LIFE - 1),
	           REG_WAITING);
	assert_size(registry_expire(f.r, 100000 + LIFE), 0);
	assert_size(registry_expire(f.r, 100000 + 2 * LIFE - 2), 0);
	assert_size(registry_expire(f.r, 100000 + 2 * LIFE - 1), 1);

	/* Expiry of one side undoes the pair: bob waits again. */
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 200000), REG_WAITING);
	assert_reg(reg(&f, &b, "198.51.100.2", 2, 210000), REG_INTRODUCE);
	assert_size(registry_expire(f.r, 200000 + LIFE), 1);
	assert_null(registry_find(f.r, "alice"));
	assert_reg(reg(&f, &b, "198.51.100.2", 2, 230001), REG_WAITING);
	/* and alice's return, same session, is introduced again: the server
	 * forgot it, and bob may have restarted in between */
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 230002), REG_INTRODUCE);
}

static void test_registry_reregistration(void **state)
{
	struct reg_fixture f = { reg_new(8, 0), NULL, NULL };
	struct punch_peer a = peer_make("alice", "bob", 1);
	struct punch_peer b = peer_make("bob", "alice", 2);

	(void)state;
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 0), REG_WAITING);
	assert_reg(reg(&f, &b, "198.51.100.2", 2, 10), REG_INTRODUCE);
	/* plain refreshes, from either side: no new introduction */
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 20), REG_PAIRED);
	assert_non_null(f.self);
	assert_string_equal(registry_entry_id(f.self), "alice");
	assert_string_equal(registry_entry_id(f.peer), "bob");
	assert_reg(reg(&f, &b, "198.51.100.2", 2, 30), REG_PAIRED);
	assert_reg(reg(&f, &b, "198.51.100.2", 2, 40), REG_PAIRED);
	/* a refresh may bring new candidates and a new address */
	a.n_cand = 1;
	assert_reg(reg(&f, &a, "198.51.100.9", 9, 50), REG_PAIRED);
	assert_size(peer_of(f.self)->n_cand, 1);
	{
		struct sockaddr_storage moved = sa_make("198.51.100.9", 9);

		assert_addr(from_of(f.self), &moved);
	}
	/* alice restarts: a new session is introduced again, once */
	a.session = 11;
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 60), REG_INTRODUCE);
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 70), REG_PAIRED);
	assert_reg(reg(&f, &b, "198.51.100.2", 2, 80), REG_PAIRED);
	/* bob restarts */
	b.session = 22;
	assert_reg(reg(&f, &b, "198.51.100.2", 2, 90), REG_INTRODUCE);
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 100), REG_PAIRED);
	assert_size(registry_count(f.r), 2);
}

/* Alice turns to carol and back: bob is introduced to her again, since
 * in between she was introduced to someone else. */
static void test_registry_switch_peer(void **state)
{
	struct reg_fixture f = { reg_new(8, 0), NULL, NULL };
	struct punch_peer a = peer_make("alice", "bob", 1);
	struct punch_peer b = peer_make("bob", "alice", 2);
	struct punch_peer c = peer_make("carol", "alice", 3);

	(void)state;
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 0), REG_WAITING);
	assert_reg(reg(&f, &b, "198.51.100.2", 2, 0), REG_INTRODUCE);
	assert_reg(reg(&f, &c, "198.51.100.3", 3, 0), REG_WAITING);
	snprintf(a.peer_id, sizeof(a.peer_id), "carol");
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 10), REG_INTRODUCE);
	assert_string_equal(registry_entry_id(f.peer), "carol");
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 20), REG_PAIRED);
	/* bob still wants alice, but she does not want him now */
	assert_reg(reg(&f, &b, "198.51.100.2", 2, 30), REG_WAITING);
	snprintf(a.peer_id, sizeof(a.peer_id), "bob");
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 40), REG_INTRODUCE);
	assert_string_equal(registry_entry_id(f.peer), "bob");
	assert_reg(reg(&f, &b, "198.51.100.2", 2, 50), REG_PAIRED);
}

static void test_registry_capacity(void **state)
{
	struct reg_fixture f = { reg_new(2, 0), NULL, NULL };
	struct punch_peer a = peer_make("alice", "bob", 1);
	struct punch_peer b = peer_make("bob", "alice", 2);
	struct punch_peer c = peer_make("carol", "dave", 3);

	(void)state;
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 0), REG_WAITING);
	assert_reg(reg(&f, &c, "198.51.100.3", 3, 0), REG_WAITING);
	assert_reg(reg(&f, &b, "198.51.100.2", 2, 0), REG_ERR_FULL);
	assert_null(registry_find(f.r, "bob"));
	assert_size(registry_count(f.r), 2);
	/* refreshes still work when full */
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 5000), REG_WAITING);
	/* carol expires, and her slot is reused */
	assert_size(registry_expire(f.r, LIFE), 1);
	assert_reg(reg(&f, &b, "198.51.100.2", 2, LIFE), REG_INTRODUCE);
	/* many cycles through a small pool: the free list holds up */
	assert_size(registry_expire(f.r, 2 * LIFE), 2);
	for (uint64_t i = 0; i < 50; i++) {
		char id[16];
		struct punch_peer x;
		uint64_t t = 2 * LIFE + i * LIFE * 2;

		snprintf(id, sizeof(id), "x%u", (unsigned)i);
		x = peer_make(id, "nobody", i);
		assert_reg(reg(&f, &x, "198.51.100.5", 5, t), REG_WAITING);
		assert_size(registry_count(f.r), 1);
		assert_size(registry_expire(f.r, t + LIFE), 1);
	}
	assert_string_equal(registry_result_str(REG_ERR_FULL),
	                    "server is full");

	/* 0 entries is rounded up to 1 */
	f.r = reg_new(0, 0);
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 0), REG_WAITING);
	assert_reg(reg(&f, &b, "198.51.100.2", 2, 0), REG_ERR_FULL);
	registry_free(NULL);
}

static void test_registry_per_prefix(void **state)
{
	struct reg_fixture f = { reg_new(16, 3), NULL, NULL };
	struct punch_peer p[5];

	(void)state;
	for (int i = 0; i < 5; i++) {
		char id[8];

		snprintf(id, sizeof(id), "p%d", i);
		p[i] = peer_make(id, "nobody", (uint64_t)i);
	}
	/* three from one /24, on different ports */
	for (int i = 0; i < 3; i++)
		assert_reg(reg(&f, &p[i], "198.51.100.1", (uint16_t)(1000 + i),
		               0),
		           REG_WAITING);
	assert_reg(reg(&f, &p[3], "198.51.100.1", 2000, 0), REG_ERR_FULL);
	assert_null(registry_find(f.r, "p3"));
	/* IPv6 is another prefix; another /24 too */
	assert_reg(reg(&f, &p[3], "2001:db8::1", 2000, 0), REG_WAITING);
	assert_reg(reg(&f, &p[4], "198.51.101.2", 2000, 0), REG_WAITING);
	/* refreshes from the full prefix are still accepted */
	assert_reg(reg(&f, &p[0], "198.51.100.1", 1000, 10), REG_WAITING);
	/* when one expires, there is room again */
	assert_reg(reg(&f, &p[1], "198.51.100.1", 1001, 20), REG_WAITING);
	assert_reg(reg(&f, &p[2], "198.51.100.1", 1002, 20), REG_WAITING);
	assert_reg(reg(&f, &p[3], "2001:db8::1", 2000, 20), REG_WAITING);
	assert_reg(reg(&f, &p[4], "198.51.101.2", 2000, 20), REG_WAITING);
	/* moving into the full /24 is refused, and changes nothing */
	assert_reg(reg(&f, &p[4], "198.51.100.99", 2000, 20), REG_ERR_FULL);
	{
		struct sockaddr_storage was = sa_make("198.51.101.2", 2000);

		assert_addr(from_of(registry_find(f.r, "p4")), &was);
	}
	assert_size(registry_expire(f.r, 10 + LIFE), 1); /* p0 */
	{
		struct punch_peer n = peer_make("newcomer", "nobody", 9);

		assert_reg(reg(&f, &n, "198.51.100.1", 3000, 10 + LIFE),
		           REG_WAITING);
	}
}

/* Register ids pre<i> from the addresses base<i> (i in hex for IPv6),
 * first <= i < first + n; returns how many were taken. */
static int fill_prefix(struct reg_fixture *f, const char *pre,
                       const char *base, int first, int n, uint64_t now)
{
	int taken = 0;

	for (int i = first; i < first + n; i++) {
		char id[32], ip[64];
		struct punch_peer p;

		snprintf(id, sizeof(id), "%s%d", pre, i);
		snprintf(ip, sizeof(ip), strchr(base, '.') ? "%s%d" : "%s%x",
		         base, i);
		p = peer_make(id, "nobody", (uint64_t)i);
		if (reg(f, &p, ip, 4000, now) >= 0)
			taken++;
	}
	return taken;
}

/* The attack: one IPv6 /64 holds 2^64 addresses, so a cap per address
 * lets one customer fill the table.  The cap is per /64. */
static void test_registry_prefix_v6(void **state)
{
	struct reg_fixture f = { reg_new(4096, REGISTRY_PER_PREFIX_MAX),
		                 NULL, NULL };
	struct punch_peer p = peer_make("elsewhere", "nobody", 1);

	(void)state;
	assert_int_equal(fill_prefix(&f, "a", "2001:db8:1:2::", 1, 1000, 0),
	                 REGISTRY_PER_PREFIX_MAX);
	assert_size(registry_count(f.r), REGISTRY_PER_PREFIX_MAX);
	/* the next /64 has its own room */
	assert_reg(reg(&f, &p, "2001:db8:1:3::1", 1, 0), REG_WAITING);
	/* ...and the bits past /64 do not matter */
	assert_int_equal(fill_prefix(&f, "b", "2001:db8:1:2:abcd::", 1, 5, 0),
	                 0);
}

/* The same for IPv4's /24, which IPv4-mapped IPv6 shares. */
static void test_registry_prefix_v4(void **state)
{
	struct reg_fixture f = { reg_new(4096, REGISTRY_PER_PREFIX_MAX),
		                 NULL, NULL };

	(void)state;
	assert_int_equal(fill_prefix(&f, "a", "198.51.100.", 1, 250, 0),
	                 REGISTRY_PER_PREFIX_MAX);
	assert_int_equal(fill_prefix(&f, "m", "::ffff:198.51.100.", 1, 10, 0),
	                 0);
	assert_int_equal(fill_prefix(&f, "c", "198.51.101.", 1, 10, 0), 10);
	/* mapped addresses of another /24 count with it */
	assert_int_equal(fill_prefix(&f, "d", "::ffff:198.51.101.", 11, 100,
	                             0),
	                 REGISTRY_PER_PREFIX_MAX - 10);
	/* and once the prefix's registrations expire, it has room again */
	assert_size(registry_expire(f.r, LIFE), 2 * REGISTRY_PER_PREFIX_MAX);
	assert_int_equal(fill_prefix(&f, "e", "198.51.100.", 1, 3, LIFE), 3);
}

static int admit(struct registry *r, const char *ip, uint64_t now)
{
	struct sockaddr_storage from = sa_make(ip, 4000);

	return registry_admit(r, SA(from), now);
}

/* The REGISTER bucket: a burst, then a steady rate, per prefix. */
static void test_registry_admit(void **state)
{
	struct registry *r = reg_new(16, 0);
	struct registry_info info;
	enum { T = 1000 / REGISTRY_RATE_PER_S };
	int ok = 0;

	(void)state;
	/* a flood from all over one /24: only the burst gets through */
	for (int i = 0; i < 100; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		ok += admit(r, ip, 1000);
	}
	assert_int_equal(ok, REGISTRY_RATE_BURST);
	registry_info(r, &info);
	assert_true(info.rate_limited == 100 - REGISTRY_RATE_BURST);
	/* mapped IPv6 is the same prefix; another /24 is not */
	assert_false(admit(r, "::ffff:198.51.100.7", 1000));
	assert_true(admit(r, "198.51.101.1", 1000));
	/* one more per interval, and not before */
	assert_false(admit(r, "198.51.100.1", 1000 + T - 1));
	assert_true(admit(r, "198.51.100.1", 1000 + T));
	assert_false(admit(r, "198.51.100.1", 1000 + T));
	assert_true(admit(r, "198.51.100.1", 1000 + 2 * T));
	/* an IPv6 /64 is one source, however many addresses it uses */
	ok = 0;
	for (int i = 0; i < 100; i++) {
		char ip[48];

		snprintf(ip, sizeof(ip), "2001:db8:7:7:%x::%x", i, i);
		ok += admit(r, ip, 1000);
	}
	assert_int_equal(ok, REGISTRY_RATE_BURST);
	/* refilled after burst intervals of quiet */
	ok = 0;
	for (int i = 0; i < 100; i++)
		ok += admit(r, "198.51.100.1",
		            1000 + 2 * T + REGISTRY_RATE_BURST * T);
	assert_int_equal(ok, REGISTRY_RATE_BURST);
	/* a full bucket is forgotten: nothing is left once all are full */
	registry_expire(r, 1000000);
	registry_info(r, &info);
	assert_size(info.prefixes, 0);
	/* and off, it admits all */
	registry_set_rate(r, 0, 0);
	for (int i = 0; i < 1000; i++)
		assert_true(admit(r, "198.51.100.1", 1000000));
	registry_info(r, &info);
	assert_size(info.prefixes, 0);
}

/* The server's threads each read their own loop's clock, so one prefix's
 * requests may come with times a few ms out of order.  A time behind the
 * bucket finds it as full as it is: once refilled that way, a flood spread
 * over the threads had a fresh burst at every 1 ms step back. */
static void test_registry_admit_clock_behind(void **state)
{
	struct registry *r = reg_new(16, 0);
	enum { NOW = 100000,
	       T = 1000 / REGISTRY_RATE_PER_S };
	int ok = 0;

	(void)state;
	for (int i = 0; i < 2 * REGISTRY_RATE_BURST; i++)
		ok += admit(r, "198.51.100.1", NOW);
	assert_int_equal(ok, REGISTRY_RATE_BURST);
	for (int i = 0; i < 10; i++) {
		assert_false(admit(r, "198.51.100.2", NOW - 1 - (i & 1)));
		assert_false(admit(r, "198.51.100.3", NOW));
	}
	assert_false(admit(r, "198.51.100.4", NOW - 60000));
	/* and the rate goes on as before */
	assert_true(admit(r, "198.51.100.5", NOW + T));
	assert_false(admit(r, "198.51.100.5", NOW + T));
}

/* Buckets from a flood of (spoofed) sources stay bounded in number and
 * go away when full again. */
static void test_registry_admit_bounded(void **state)
{
	struct registry *r = reg_new(16, 0);
	struct registry_info info;

	(void)state;
	for (int i = 0; i < 3 * REGISTRY_IDLE_PREFIX_MIN; i++) {
		char ip[48];

		snprintf(ip, sizeof(ip), "2001:db8:%x:%x::1", i >> 8, i & 255);
		assert_true(admit(r, ip, 1000));
	}
	registry_info(r, &info);
	assert_size(info.prefixes, REGISTRY_IDLE_PREFIX_MIN);
	assert_size(info.idle_prefixes, REGISTRY_IDLE_PREFIX_MIN);
	/* not yet full again: kept */
	assert_size(registry_expire(r, 1000), 0);
	registry_info(r, &info);
	assert_size(info.prefixes, REGISTRY_IDLE_PREFIX_MIN);
	registry_expire(r, 1000 + 1000 / REGISTRY_RATE_PER_S);
	registry_info(r, &info);
	assert_size(info.prefixes, 0);
	assert_size(info.allocs, 2); /* the two empty tables */
}

static struct punch_peer peer_four(int i)
{
	char id[PUNCH_ID_MAX + 1];
	struct punch_peer p;

	/* ids as long as the fingerprint form `punch id` prints */
	snprintf(id, sizeof(id), "SHA256:%043d", i);
	p = peer_make(id, "SHA256:0000000000000000000000000000000000000000000",
	              (uint64_t)i);
	p.cand[p.n_cand++] = cand(CAND_HOST, "2001:db8:a::1", 5000, 1);
	p.cand[p.n_cand++] = cand(CAND_SRFLX, "2001:db8:b::1", 5000, 2);
	snprintf(p.ufrag, sizeof(p.ufrag), "abcdefgh");
	snprintf(p.pwd, sizeof(p.pwd), "abcdefghijklmnopqrstuvwx");
	return p;
}

/* Memory follows the registrations: at most 512 bytes each with 4
 * candidates (all counted, tables and prefixes included), and all of it
 * back when they expire. */
static void test_registry_memory(void **state)
{
	enum { N = 5000 };
	struct reg_fixture f = { reg_new(N, REGISTRY_PER_PREFIX_MAX), NULL,
		                 NULL };
	struct registry_info empty, full;

	(void)state;
	registry_info(f.r, &empty);
	assert_size(empty.allocs, 2);
	for (int i = 0; i < N; i++) {
		struct punch_peer p = peer_four(i + 1);
		char ip[32];

		/* each from its own /24: one prefix per registration */
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i >> 8, i & 255);
		assert_reg(reg(&f, &p, ip, 4000, 0), REG_WAITING);
	}
	registry_info(f.r, &full);
	assert_size(full.entries, N);
	assert_size(full.prefixes, N);
	assert_true((full.bytes - empty.bytes) / N <= 512);
	/* a refresh with other candidates changes the size, not the count */
	{
		struct punch_peer p = peer_four(1);
		struct registry_info now;

		p.n_cand = 1;
		assert_reg(reg(&f, &p, "10.0.0.1", 4000, 10), REG_WAITING);
		registry_info(f.r, &now);
		assert_size(now.allocs, full.allocs);
		assert_true(now.bytes < full.bytes);
	}
	assert_size(registry_expire(f.r, LIFE + 10), N);
	registry_info(f.r, &full);
	assert_size(full.entries, 0);
	assert_size(full.prefixes, 0);
	assert_size(full.allocs, empty.allocs);
	assert_size(full.bytes, empty.bytes);
}

/* Expiry gives back every block, and registry_free() the rest: the heap
 * in use is what it was before the registry was made. */
static void test_registry_frees_all(void **state)
{
	enum { N = 3000 };
	struct reg_fixture f = { NULL, NULL, NULL };
	struct registry_info info;
	size_t before;

	(void)state;
	reg_new(1, 0); /* libsodium's one-time set-up */
	registry_free(live);
	live = NULL;
	before = heap_in_use();
	f.r = live = registry_new(N, REGISTRY_PER_PREFIX_MAX);
	assert_non_null(f.r);
	for (int i = 0; i < N; i++) {
		struct punch_peer p = peer_four(i + 1);
		char ip[48];

		snprintf(ip, sizeof(ip), "2001:db8:%x:%x::1", i >> 8, i & 255);
		assert_true(admit(f.r, ip, (uint64_t)i));
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i >> 8, i & 255);
		assert_reg(reg(&f, &p, ip, 4000, (uint64_t)i), REG_WAITING);
	}
	registry_info(f.r, &info);
	assert_true(info.allocs > 2 * N);
	assert_true(heap_in_use() > before + N * 300);
	assert_size(registry_expire(f.r, N + LIFE), N);
	registry_info(f.r, &info);
	assert_size(info.entries, 0);
	assert_size(info.prefixes, 0);
	assert_size(info.allocs, 2); /* the two empty tables */
	registry_free(f.r);
	live = NULL;
	assert_size(heap_in_use(), before);
}

/* Random registrations, refreshes (changing size, key and prefix),
 * admissions and expiries, checked against a plain model of what the
 * registry must hold.  ASan watches the entries and prefixes that come
 * and go underneath. */
static uint32_t rnd_state = 12345;

static uint32_t rnd(uint32_t n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state % n;
}

static void test_registry_model(void **state)
{
	enum { IDS = 150,
	       PREFIXES = 12,
	       MAX = 60,
	       PER = 8,
	       OPS = 30000 };
	struct model {
		int live, prefix, key;
		uint64_t expires, session;
	} m[IDS];
	int pcount[PREFIXES] = { 0 }, count = 0;
	struct reg_fixture f = { reg_new(MAX, PER), NULL, NULL };
	uint64_t now = 0;

	(void)state;
	memset(m, 0, sizeof(m));
	for (int op = 0; op < OPS; op++) {
		int id = (int)rnd(IDS), pf = (int)rnd(PREFIXES);
		int key = (int)rnd(3), want, seen;
		char ip[48], name[16];
		struct punch_peer p;

		now += rnd(700);
		snprintf(ip, sizeof(ip), pf & 1 ? "2001:db8:0:%x::%x" : "198.51.%d.%d",
		         pf, 1 + (int)rnd(200));
		if (rnd(10) == 0) {
			size_t gone = 0;

			for (int i = 0; i < IDS; i++)
				if (m[i].live && m[i].expires <= now) {
					m[i].live = 0;
					pcount[m[i].prefix]--;
					count--;
					gone++;
				}
			assert_size(registry_expire(f.r, now), gone);
			continue;
		}
		if (rnd(4) == 0) {
			admit(f.r, ip, now);
			continue;
		}
		snprintf(name, sizeof(name), "id%d", id);
		p = peer_make(name, "nobody", op);
		p.n_cand = rnd(3);
		memset(p.ufrag, 'u', sizeof(p.ufrag));
		p.ufrag[1 + rnd(PUNCH_UFRAG_MAX)] = '\0';
		p.has_key_fp = key != 0;
		memset(p.key_fp, key, sizeof(p.key_fp));
		if (m[id].live && m[id].key && m[id].key != key)
			want = REG_ERR_KEY;
		else if (!m[id].live && count >= MAX)
			want = REG_ERR_FULL;
		else if ((!m[id].live || m[id].prefix != pf) &&
		         pcount[pf] >= PER)
			want = REG_ERR_FULL;
		else
			want = REG_WAITING;
		seen = reg(&f, &p, ip, 4000, now);
		assert_reg(seen, want);
		if (want == REG_WAITING) {
			if (m[id].live)
				pcount[m[id].prefix]--;
			else
				count++;
			pcount[pf]++;
			m[id] = (struct model){ 1, pf, key, now + LIFE,
				                (uint64_t)op };
		}
		assert_size(registry_count(f.r), count);
		{
			const struct reg_entry *e = registry_find(f.r, name);

			assert_int_equal(e != NULL, m[id].live);
			if (e) {
				assert_true(registry_entry_session(e) ==
				            m[id].session);
				assert_true(registry_entry_expires(e) ==
				            m[id].expires);
			}
		}
	}
	registry_expire(f.r, now + LIFE + 1000);
	{
		struct registry_info info;

		registry_info(f.r, &info);
		assert_size(info.entries, 0);
		assert_size(info.prefixes, 0);
		assert_size(info.allocs, 2);
	}
}

/* Many ids: the tables grow and shrink through several rehashes, chains
 * stay short, and no id is confused with another sharing its bucket. */
static void test_registry_growth(void **state)
{
	enum { N = 20000 };
	struct reg_fixture f = { reg_new(N, 0), NULL, NULL };
	struct registry_info info;

	(void)state;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			char id[16], peer[16];
			struct punch_peer p;

			snprintf(id, sizeof(id), "g%d", i);
			snprintf(peer, sizeof(peer), "g%d", i ^ 1);
			p = peer_make(id, peer, (uint64_t)i);
			assert_reg(reg(&f, &p, "198.51.100.1", 1,
			               round * 10 * LIFE + (uint64_t)i / 2),
			           (i & 1) ? REG_INTRODUCE : REG_WAITING);
			if (i & 1) {
				assert_string_equal(registry_entry_id(f.peer),
				                    peer);
				assert_string_equal(registry_entry_id(f.self),
				                    id);
			}
		}
		registry_info(f.r, &info);
		assert_size(info.entries, N);
		assert_true(info.id_buckets >= N / 2);
		assert_true(info.longest_chain <= 20);
		for (int i = 0; i < N; i++) {
			char id[16];
			const struct reg_entry *e;

			snprintf(id, sizeof(id), "g%d", i);
			e = registry_find(f.r, id);
			assert_non_null(e);
			assert_string_equal(registry_entry_id(e), id);
			assert_true(registry_entry_session(e) == (uint64_t)i);
		}
		assert_null(registry_find(f.r, "g"));
		assert_null(registry_find(f.r, "g20000"));
		/* the first half expires first */
		assert_size(registry_expire(f.r, round * 10 * LIFE + N / 4 +
		                                         LIFE - 1),
		            N / 2);
		assert_null(registry_find(f.r, "g0"));
		assert_non_null(registry_find(f.r, "g10000"));
		assert_size(registry_expire(f.r, round * 10 * LIFE + 2 * LIFE),
		            N / 2);
		registry_info(f.r, &info);
		assert_size(info.id_buckets, REGISTRY_BUCKETS_MIN);
		assert_size(info.allocs, 2);
	}
}

static void test_registry_key_binding(void **state)
{
	struct reg_fixture f = { reg_new(8, 0), NULL, NULL };
	struct punch_peer a = peer_make("alice", "bob", 1);
	struct punch_peer evil = peer_make("alice", "mallory", 66);
	struct punch_peer b = peer_make("bob", "alice", 2);

	(void)state;
	a.has_key_fp = 1;
	memset(a.key_fp, 0xA1, PUNCH_KEY_FP_LEN);
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 0), REG_WAITING);
	/* another key, or none, cannot take the id over */
	evil.has_key_fp = 1;
	memcpy(evil.key_fp, a.key_fp, PUNCH_KEY_FP_LEN);
	evil.key_fp[PUNCH_KEY_FP_LEN - 1] ^= 1;
	assert_reg(reg(&f, &evil, "203.0.113.66", 66, 10), REG_ERR_KEY);
	evil.key_fp[PUNCH_KEY_FP_LEN - 1] ^= 1;
	evil.key_fp[0] ^= 0x80;
	assert_reg(reg(&f, &evil, "203.0.113.66", 66, 10), REG_ERR_KEY);
	/* no key at all, even with the right bytes left in the struct */
	memcpy(evil.key_fp, a.key_fp, PUNCH_KEY_FP_LEN);
	evil.has_key_fp = 0;
	assert_reg(reg(&f, &evil, "203.0.113.66", 66, 10), REG_ERR_KEY);
	memcpy(evil.key_fp, a.key_fp, PUNCH_KEY_FP_LEN);
	evil.key_fp[0] ^= 0x80;
	/* nothing changed */
	assert_string_equal(registry_entry_peer_id(registry_find(f.r, "alice")),
	                    "bob");
	assert_true(registry_entry_session(registry_find(f.r, "alice")) == 1);
	/* the right key can refresh and restart */
	a.session = 7;
	assert_reg(reg(&f, &a, "198.51.100.7", 7, 20), REG_WAITING);
	assert_reg(reg(&f, &b, "198.51.100.2", 2, 30), REG_INTRODUCE);
	assert_true(peer_of(f.peer)->has_key_fp);
	/* once the entry expires, the id is free again */
	assert_size(registry_expire(f.r, 20 + LIFE), 1);
	assert_reg(reg(&f, &evil, "203.0.113.66", 66, 20 + LIFE), REG_WAITING);
	/* an id first registered without a key is bound by the first key */
	evil.has_key_fp = 1;
	assert_reg(reg(&f, &evil, "203.0.113.66", 66, 20 + LIFE + 1),
	           REG_WAITING);
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 20 + LIFE + 2), REG_ERR_KEY);
	assert_string_equal(registry_result_str(REG_ERR_KEY),
	                    "id is registered with a different key");
}

/* RELEASE drops the live registration only for the key that holds it,
 * and gives its memory back. */
static void test_registry_remove(void **state)
{
	struct reg_fixture f = { reg_new(8, 0), NULL, NULL };
	struct punch_peer a = peer_make("alice", "bob", 1);
	struct registry_info empty, info;
	uint8_t other[PUNCH_KEY_FP_LEN];

	(void)state;
	registry_info(f.r, &empty);
	a.has_key_fp = 1;
	memset(a.key_fp, 0xA1, PUNCH_KEY_FP_LEN);
	memset(other, 0xEE, sizeof(other));
	assert_int_equal(registry_remove(f.r, "alice", a.key_fp, 0), 0);
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 0), REG_WAITING);
	assert_int_equal(registry_remove(f.r, "alice", other, 5), -1);
	assert_non_null(registry_find(f.r, "alice"));
	assert_int_equal(registry_remove(f.r, "alice", a.key_fp, 6), 1);
	assert_null(registry_find(f.r, "alice"));
	assert_size(registry_count(f.r), 0);
	assert_size(registry_expire(f.r, 7 + LIFE), 0);
	registry_info(f.r, &info);
	assert_size(info.allocs, empty.allocs);
	assert_size(info.bytes, empty.bytes);
	/* the id is free for anyone now */
	memset(a.key_fp, 0xEE, PUNCH_KEY_FP_LEN);
	assert_reg(reg(&f, &a, "198.51.100.1", 1, 8 + LIFE), REG_WAITING);
}

/* Ids that share a hash bucket must not be confused. */
static void test_registry_many_ids(void **state)
{
	enum { N = 64 };
	struct reg_fixture f = { reg_new(N, 0), NULL, NULL };

	(void)state;
	for (int i = 0; i < N; i++) {
		char id[16], peer[16];
		struct punch_peer p;

		snprintf(id, sizeof(id), "id%d", i);
		snprintf(peer, sizeof(peer), "id%d", i ^ 1);
		p = peer_make(id, peer, (uint64_t)i);
		assert_reg(reg(&f, &p, "198.51.100.1", (uint16_t)i,
		               (uint64_t)i),
		           (i & 1) ? REG_INTRODUCE : REG_WAITING);
	}
	assert_size(registry_count(f.r), N);
	for (int i = 0; i < N; i++) {
		char id[16];
		const struct reg_entry *e;

		snprintf(id, sizeof(id), "id%d", i);
		e = registry_find(f.r, id);
		assert_non_null(e);
		assert_string_equal(registry_entry_id(e), id);
		assert_true(registry_entry_session(e) == (uint64_t)i);
	}
	/* expire the even ones only (registered at even times) */
	for (int i = 0; i < N; i += 2) {
		char id[16];
		struct punch_peer p;

		snprintf(id, sizeof(id), "id%d", i + 1);
		p = peer_make(id, "x", (uint64_t)i + 1);
		assert_reg(reg(&f, &p, "198.51.100.1", (uint16_t)(i + 1), 1000),
		           REG_WAITING);
	}
	assert_size(registry_expire(f.r, N + LIFE), N / 2);
	for (int i = 0; i < N; i++) {
		char id[16];

		snprintf(id, sizeof(id), "id%d", i);
		if (i & 1)
			assert_non_null(registry_find(f.r, id));
		else
			assert_null(registry_find(f.r, id));
	}
}

int main(void)
{
#define R(f) cmocka_unit_test_teardown(f, reg_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_valid),
		cmocka_unit_test(test_id_length),
		cmocka_unit_test(test_id_bad_utf8),
		cmocka_unit_test(test_id_space_control),
		R(test_registry_pairing),
		R(test_registry_same_id),
		R(test_registry_expiry),
		R(test_registry_reregistration),
		R(test_registry_switch_peer),
		R(test_registry_capacity),
		R(test_registry_per_prefix),
		R(test_registry_prefix_v6),
		R(test_registry_prefix_v4),
		R(test_registry_admit),
		R(test_registry_admit_bounded),
		R(test_registry_admit_clock_behind),
		R(test_registry_memory),
		R(test_registry_frees_all),
		R(test_registry_model),
		R(test_registry_growth),
		R(test_registry_key_binding),
		R(test_registry_remove),
		R(test_registry_many_ids),
	};
#undef R

	return cmocka_run_group_tests(tests, NULL, NULL);
}
