/*
 * Unit tests for the Binding responder (src/binding.c), driven through
 * binding_handle() with a struct binding_service filled in by hand: no
 * sockets.  Requests are built with the raw builder in unit.h and responses
 * read back with stun_decode(), which also verifies their FINGERPRINT.
 */
#include "unit.h"

#include <stdlib.h>

#include "addr.h"
#include "binding.h"
#include "stun.h"
#include "stun3489.h"

enum { OUT_CAP = 2048 };

static const char software[] = "punch unit test";

/* Index i of an RFC 5780 server: bit 1 picks the IP, bit 0 the port. */
static void svc_init(struct binding_service *svc, int rfc5780,
                     const int have[BINDING_SOCKETS_MAX])
{
	static const char *const ip[2] = { "192.0.2.10", "192.0.2.11" };
	static const uint16_t port[2] = { 3478, 3479 };

	memset(svc, 0, sizeof(*svc));
	for (int i = 0; i < BINDING_SOCKETS_MAX; i++) {
		svc->local[i] = sa_make(ip[i >> 1], port[i & 1]);
		svc->have[i] = have[i];
	}
	svc->rfc5780 = rfc5780;
	svc->software = software;
}

static void svc_plain(struct binding_service *svc)
{
	static const int have[BINDING_SOCKETS_MAX] = { 1, 0, 0, 0 };

	svc_init(svc, 0, have);
}

static void svc_5780(struct binding_service *svc)
{
	static const int have[BINDING_SOCKETS_MAX] = { 1, 1, 1, 1 };

	svc_init(svc, 1, have);
}

/* A response and what binding_handle() said about it. */
struct result {
	int verdict;
	struct binding_reply reply;
	const char *why;
	uint8_t out[OUT_CAP];
	struct stun_msg m;
};

/* Run one request; on BINDING_REPLY check what holds for every reply (the
 * amplification bound, the txid and method echoed, a valid FINGERPRINT)
 * and decode it into res->m. */
static void run(struct result *res, const struct binding_service *svc,
                int sock, const struct raw *req, const struct sockaddr *from)
{
	struct stun_msg q;

	memset(res, 0, sizeof(*res));
	memset(res->out, 0xAA, sizeof(res->out));
	res->verdict = binding_handle(svc, sock, req->b, req->len, from,
	                              res->out, sizeof(res->out), &res->reply,
	                              &res->why);
	if (res->verdict != BINDING_REPLY)
		return;
	if (res->reply.len > BINDING_AMPLIFICATION_MAX * req->len)
		print_error("response %zu bytes to a %zu-byte request\n",
		            res->reply.len, req->len);
	assert_true(res->reply.len <= BINDING_AMPLIFICATION_MAX * req->len);
	assert_true(res->reply.len <= BINDING_RESPONSE_MAX);
	decode_ok(&res->m, res->out, res->reply.len);
	assert_true(res->m.present & STUN_HAS_FINGERPRINT);
	assert_int_equal(res->m.cls, res->reply.is_error ? STUN_ERROR : STUN_SUCCESS);
	if (stun_decode(&q, req->b, req->len) == STUN_OK) {
		assert_int_equal(res->m.method, q.method);
		assert_memory_equal(res->m.txid, q.txid, STUN_TXID_LEN);
	}
}

static void assert_error(const struct result *res, uint16_t code)
{
	assert_int_equal(res->verdict, BINDING_REPLY);
	assert_true(res->reply.is_error);
	assert_true(res->m.present & STUN_HAS_ERROR_CODE);
	assert_int_equal(res->m.error_code, code);
	assert_true(res->m.reason.len > 0);
}

/* A Binding request padded to at least len bytes with an optional
 * attribute the server ignores. */
static void request(struct raw *r, size_t len)
{
	raw_init(r, 0x0001);
	assert_true(len == STUN_HEADER_LEN || len >= STUN_HEADER_LEN + 4);
	if (len > r->len)
		raw_attr(r, 0x8fff, NULL, len - r->len - 4);
}

/* ---- plain Binding ---------------------------------------------------- */

static void check_plain(const char *ip, uint16_t port, size_t req_len)
{
	struct sockaddr_storage from = sa_make(ip, port);
	struct binding_service svc;
	struct result res;
	struct raw req;

	svc_plain(&svc);
	request(&req, req_len);
	run(&res, &svc, 0, &req, SA(from));
	assert_int_equal(res.verdict, BINDING_REPLY);
	assert_false(res.reply.is_error);
	assert_int_equal(res.reply.sock, 0);
	assert_addr(&res.reply.to, &from);
	assert_int_equal(res.m.present, STUN_HAS_XOR_MAPPED | STUN_HAS_MAPPED |
	                                        STUN_HAS_SOFTWARE | STUN_HAS_FINGERPRINT);
	assert_addr(&res.m.xor_mapped, &from);
	assert_addr(&res.m.mapped, &from);
	assert_bytes_str(res.m.software, software);
}

static void test_plain_ipv4(void **state)
{
	(void)state;
	check_plain("198.51.100.7", 54321, 20);
}

static void test_plain_ipv6(void **state)
{
	(void)state;
	check_plain("2001:db8::7", 1, 28);
}

/* 4 x 20 = 80 bytes: IPv6 XOR-MAPPED (24), MAPPED (24) and FINGERPRINT (8)
 * fit after the header, SOFTWARE no longer does. */
static void test_amplification_ipv6_20_bytes(void **state)
{
	struct sockaddr_storage from = sa_make("2001:db8::7", 40000);
	struct binding_service svc;
	struct result res;
	struct raw req;

	(void)state;
	svc_plain(&svc);
	request(&req, 20);
	run(&res, &svc, 0, &req, SA(from));
	assert_int_equal(res.verdict, BINDING_REPLY);
	assert_addr(&res.m.xor_mapped, &from);
	assert_false(res.m.present & STUN_HAS_SOFTWARE);
	assert_size(res.reply.len, 76);
}

/* Every request size from 20 to 1000 bytes, both families, both kinds of
 * server, each socket, success and error replies: the bound always holds
 * (run() checks it) and the mandatory attributes are always there. */
static void sweep(const struct binding_service *svc, const char *ip,
                  size_t len)
{
	static const uint16_t unknown = 0x0033;
	struct sockaddr_storage from = sa_make(ip, 9);
	struct result res;
	struct raw req;

	for (int sock = 0; sock < BINDING_SOCKETS_MAX; sock++) {
		if (!svc->have[sock])
			continue;
		request(&req, len);
		run(&res, svc, sock, &req, SA(from));
		assert_int_equal(res.verdict, BINDING_REPLY);
		assert_addr(&res.m.xor_mapped, &from);
		request(&req, len);
		req.b[1] = 0x02; /* an unknown method: 400 */
		run(&res, svc, sock, &req, SA(from));
		assert_error(&res, 400);
		if (len < 24)
			continue;
		request(&req, len - 4);
		raw_attr(&req, unknown, NULL, 0);
		run(&res, svc, sock, &req, SA(from));
		assert_error(&res, 420);
	}
}

static void test_amplification_sweep(void **state)
{
	static const char long_sw[] = "a SOFTWARE value long enough that it is "
				      "dropped from many of the small replies";
	struct binding_service svc[2];

	(void)state;
	svc_plain(&svc[0]);
	svc_5780(&svc[1]);
	svc[0].software = long_sw;
	for (size_t len = 20; len <= 1000; len += 4)
		for (int s = 0; s < 2; s++) {
			sweep(&svc[s], "192.0.2.99", len);
			sweep(&svc[s], "2001:db8::99", len);
		}
}

/* ---- errors ----------------------------------------------------------- */

static void test_unknown_attribute_420(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.7", 5000);
	struct binding_service svc;
	struct result res;
	struct raw req;

	(void)state;
	svc_plain(&svc);
	raw_init(&req, 0x0001);
	raw_attr(&req, 0x0033, "x", 1);
	raw_attr(&req, 0x8033, "optional", 8);
	raw_attr(&req, 0x7fff, NULL, 0);
	raw_attr(&req, 0x0033, "y", 1);
	run(&res, &svc, 0, &req, SA(from));
	assert_error(&res, 420);
	assert_int_equal(res.reply.sock, 0);
	assert_addr(&res.reply.to, &from);
	assert_true(res.m.present & STUN_HAS_UNKNOWN_ATTRS);
	assert_size(res.m.unknown_attrs_count, 2);
	assert_int_equal(res.m.unknown_attrs[0], 0x0033);
	assert_int_equal(res.m.unknown_attrs[1], 0x7fff);
	assert_false(res.m.present & STUN_HAS_XOR_MAPPED);
}

static void test_unknown_method_400(void **state)
{
	static const uint16_t types[] = { 0x0002, 0x0003, 0x3EEF };
	struct sockaddr_storage from = sa_make("198.51.100.7", 5000);
	struct binding_service svc;
	struct result res;
	struct raw req;

	(void)state;
	svc_plain(&svc);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		raw_init(&req, types[i]);
		run(&res, &svc, 0, &req, SA(from));
		assert_error(&res, 400);
		assert_false(res.m.present & STUN_HAS_UNKNOWN_ATTRS);
	}
}

/* Indications and responses are valid but not for us (RFC 8489 6.3). */
static void test_not_a_request_ignored(void **state)
{
	static const uint16_t types[] = { 0x0011, 0x0101, 0x0111, 0x0012 };
	struct sockaddr_storage from = sa_make("198.51.100.7", 5000);
	struct binding_service svc;
	struct result res;
	struct raw req;

	(void)state;
	svc_plain(&svc);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		raw_init(&req, types[i]);
		raw_u32(&req, STUN_ATTR_ERROR_CODE, 0x00000400);
		run(&res, &svc, 0, &req, SA(from));
		assert_int_equal(res.verdict, BINDING_IGNORE);
		assert_int_equal(res.out[0], 0xAA); /* nothing written */
	}
}

static void expect_drop(const struct binding_service *svc, int sock,
                        const struct raw *req, const struct sockaddr *from,
                        const char *why)
{
	struct result res;

	run(&res, svc, sock, req, from);
	assert_int_equal(res.verdict, BINDING_DROP);
	assert_non_null(res.why);
	assert_string_equal(res.why, why);
	assert_int_equal(res.out[0], 0xAA);
}

static void test_malformed_dropped(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.7", 5000);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct binding_service svc;
	struct raw req;

	(void)state;
	svc_plain(&svc);
	/* no cookie: RFC 3489, where only Binding requests are answered */
	raw_init(&req, 0x0002);
	req.b[4] ^= 1;
	expect_drop(&svc, 0, &req, SA(from),
	            "RFC 3489 message other than a Binding request");
	raw_init(&req, 0x0001);
	req.b[4] ^= 1;
	raw_attr(&req, STUN_ATTR_CHANGE_REQUEST, NULL, 2);
	expect_drop(&svc, 0, &req, SA(from), stun_err_str(STUN_ERR_ATTR_VALUE));
	raw_init(&req, 0x0001);
	req.len = 19;
	expect_drop(&svc, 0, &req, SA(from), stun_err_str(STUN_ERR_SHORT));
	raw_init(&req, 0x0111);
	expect_drop(&svc, 0, &req, SA(from), stun_err_str(STUN_ERR_CLASS));
	raw_init(&req, 0x0001);
	raw_u32(&req, STUN_ATTR_FINGERPRINT, 0);
	expect_drop(&svc, 0, &req, SA(from),
	            stun_err_str(STUN_ERR_FINGERPRINT));
	raw_init(&req, 0x0001);
	raw_attr(&req, STUN_ATTR_PRIORITY, NULL, 3);
	expect_drop(&svc, 0, &req, SA(from),
	            stun_err_str(STUN_ERR_ATTR_VALUE));
	raw_init(&req, 0x0001);
	expect_drop(&svc, 1, &req, SA(from), "unknown socket");
	expect_drop(&svc, -1, &req, SA(from), "unknown socket");
	expect_drop(&svc, BINDING_SOCKETS_MAX, &req, SA(from),
	            "unknown socket");
	expect_drop(&svc, 0, &req, (struct sockaddr *)&sun,
	            "source address family");
}

/* An output buffer too small for the mandatory attributes: dropped, and
 * nothing written past it (ASan watches the heap copy). */
static void test_small_buffer_dropped(void **state)
{
	struct sockaddr_storage from = sa_make("2001:db8::7", 5000);
	struct binding_service svc;
	struct binding_reply reply;
	const char *why = NULL;
	struct raw req;
	size_t cap = STUN_HEADER_LEN + 24 + 8 - 1;
	uint8_t *out = malloc(cap);

	(void)state;
	assert_non_null(out);
	svc_plain(&svc);
	request(&req, 100);
	assert_int_equal(binding_handle(&svc, 0, req.b, req.len, SA(from), out,
	                                cap, &reply, &why),
	                 BINDING_DROP);
	assert_non_null(why);
	assert_string_equal(why, stun_err_str(STUN_ERR_NOSPACE));
	/* one more byte and it fits, with the optional attributes left out */
	free(out);
	out = malloc(++cap);
	assert_non_null(out);
	assert_int_equal(binding_handle(&svc, 0, req.b, req.len, SA(from), out,
	                                cap, &reply, &why),
	                 BINDING_REPLY);
	assert_size(reply.len, cap);
	/* and why may be NULL */
	req.b[0] |= 0xC0;
	assert_int_equal(binding_handle(&svc, 0, req.b, req.len, SA(from), out,
	                                cap, &reply, NULL),
	                 BINDING_DROP);
	free(out);
}

/* ---- RFC 5780 --------------------------------------------------------- */

/* A request big enough that the budget keeps every optional attribute. */
static void request_5780(struct raw *r, int change, int flags)
{
	request(r, 64);
	if (change)
		raw_u32(r, STUN_ATTR_CHANGE_REQUEST, (uint32_t)flags);
}

/* RFC 5780 7.3/7.4: OTHER-ADDRESS is the socket differing in both IP and
 * port from the one the request came in on; RESPONSE-ORIGIN is the one the
 * reply leaves from. */
static void test_rfc5780_addresses(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.7", 5000);
	struct binding_service svc;
	struct result res;
	struct raw req;

	(void)state;
	svc_5780(&svc);
	for (int sock = 0; sock < BINDING_SOCKETS_MAX; sock++) {
		request_5780(&req, 0, 0);
		run(&res, &svc, sock, &req, SA(from));
		assert_int_equal(res.verdict, BINDING_REPLY);
		assert_int_equal(res.reply.sock, sock);
		assert_int_equal(res.m.present,
		                 STUN_HAS_XOR_MAPPED | STUN_HAS_MAPPED |
		                         STUN_HAS_RESPONSE_ORIGIN |
		                         STUN_HAS_OTHER_ADDRESS | STUN_HAS_SOFTWARE |
		                         STUN_HAS_FINGERPRINT);
		assert_addr(&res.m.other_address, &svc.local[sock ^ 3]);
		assert_addr(&res.m.response_origin, &svc.local[sock]);
	}
}

/* RFC 5780 7.2: change IP flips index bit 1, change port bit 0. */
static void test_rfc5780_change_request(void **state)
{
	static const struct {
		int in, flags, out;
	} cases[] = {
		{ 0, STUN_CHANGE_IP, 2 },
		{ 0, STUN_CHANGE_PORT, 1 },
		{ 0, STUN_CHANGE_IP | STUN_CHANGE_PORT, 3 },
		{ 0, 0, 0 },
		{ 3, STUN_CHANGE_IP, 1 },
		{ 3, STUN_CHANGE_PORT, 2 },
		{ 3, STUN_CHANGE_IP | STUN_CHANGE_PORT, 0 },
		{ 1, STUN_CHANGE_IP, 3 },
		{ 2, STUN_CHANGE_PORT, 3 }
	};
	struct sockaddr_storage from = sa_make("198.51.100.7", 5000);
	struct binding_service svc;
	struct result res;
	struct raw req;

	(void)state;
	svc_5780(&svc);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		request_5780(&req, 1, cases[i].flags);
		run(&res, &svc, cases[i].in, &req, SA(from));
		assert_int_equal(res.verdict, BINDING_REPLY);
		assert_false(res.reply.is_error);
		if (res.reply.sock != cases[i].out)
			print_error("from socket %d, flags %#x\n", cases[i].in,
			            (unsigned)cases[i].flags);
		assert_int_equal(res.reply.sock, cases[i].out);
		assert_addr(&res.reply.to, &from);
		assert_addr(&res.m.xor_mapped, &from);
		assert_addr(&res.m.response_origin, &svc.local[cases[i].out]);
		assert_addr(&res.m.other_address, &svc.local[cases[i].in ^ 3]);
	}
}

static void assert_420_change_request(const struct result *res)
{
	assert_error(res, 420);
	assert_size(res->m.unknown_attrs_count, 1);
	assert_int_equal(res->m.unknown_attrs[0], STUN_ATTR_CHANGE_REQUEST);
	assert_int_equal(res->reply.sock, 0);
}

/* RFC 5780 6.1: a server that cannot change as asked answers 420. */
static void test_rfc5780_no_alternate_ip(void **state)
{
	static const int have[BINDING_SOCKETS_MAX] = { 1, 1, 0, 0 };
	struct sockaddr_storage from = sa_make("198.51.100.7", 5000);
	struct binding_service svc;
	struct result res;
	struct raw req;

	(void)state;
	svc_init(&svc, 1, have);
	request_5780(&req, 1, STUN_CHANGE_IP);
	run(&res, &svc, 0, &req, SA(from));
	assert_420_change_request(&res);
	request_5780(&req, 1, STUN_CHANGE_IP | STUN_CHANGE_PORT);
	run(&res, &svc, 0, &req, SA(from));
	assert_420_change_request(&res);
	/* the port can change, and OTHER-ADDRESS is the port alternate */
	request_5780(&req, 1, STUN_CHANGE_PORT);
	run(&res, &svc, 0, &req, SA(from));
	assert_int_equal(res.verdict, BINDING_REPLY);
	assert_false(res.reply.is_error);
	assert_int_equal(res.reply.sock, 1);
	assert_addr(&res.m.other_address, &svc.local[1]);
	assert_addr(&res.m.response_origin, &svc.local[1]);
}

static void test_change_request_without_rfc5780(void **state)
{
	static const int flags[] = { STUN_CHANGE_IP, STUN_CHANGE_PORT,
		                     STUN_CHANGE_IP | STUN_CHANGE_PORT };
	struct sockaddr_storage from = sa_make("198.51.100.7", 5000);
	struct binding_service svc;
	struct result res;
	struct raw req;

	(void)state;
	svc_plain(&svc);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		request_5780(&req, 1, flags[i]);
		run(&res, &svc, 0, &req, SA(from));
		assert_420_change_request(&res);
		assert_false(res.m.present & STUN_HAS_OTHER_ADDRESS);
	}
}

/* RFC 5780 7.5: the reply goes to RESPONSE-PORT at the source IP, while
 * XOR-MAPPED-ADDRESS still reports the real source. */
static void test_response_port(void **state)
{
	static const char *const ips[] = { "198.51.100.7", "2001:db8::7" };
	struct binding_service svc;
	struct result res;
	struct raw req;

	(void)state;
	svc_5780(&svc);
	for (size_t i = 0; i < 2; i++) {
		struct sockaddr_storage from = sa_make(ips[i], 5000);
		struct sockaddr_storage to = sa_make(ips[i], 40000);

		request(&req, 64);
		raw_u32(&req, STUN_ATTR_RESPONSE_PORT, 40000u << 16);
		run(&res, &svc, 2, &req, SA(from));
		assert_int_equal(res.verdict, BINDING_REPLY);
		assert_int_equal(res.reply.sock, 2);
		assert_addr(&res.reply.to, &to);
		assert_addr(&res.m.xor_mapped, &from);
	}
}

static void test_response_port_zero(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.7", 5000);
	struct binding_service svc;
	struct raw req;

	(void)state;
	svc_5780(&svc);
	request(&req, 64);
	raw_u32(&req, STUN_ATTR_RESPONSE_PORT, 0);
	expect_drop(&svc, 0, &req, SA(from), "RESPONSE-PORT 0");
}

/* ---- classic STUN (RFC 3489) ------------------------------------------ */

static const uint8_t classic_txid[STUN3489_TXID_LEN] = {
	0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
	0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF
};

/* A Binding request as RFC 3489 wrote it: a 128-bit id, no cookie. */
static void classic_request(struct raw *r)
{
	raw_init(r, 0x0001);
	memcpy(r->b + 4, classic_txid, sizeof(classic_txid));
}

/* The value of the first attribute of type t in a classic reply, or NULL. */
static const uint8_t *classic_find(const uint8_t *msg, size_t len, uint16_t t,
                                   size_t *vlen)
{
	for (size_t off = STUN_HEADER_LEN; off + 4 <= len;) {
		uint16_t type = (uint16_t)(msg[off] << 8 | msg[off + 1]);
		uint16_t l = (uint16_t)(msg[off + 2] << 8 | msg[off + 3]);

		assert_true(off + stun_attr_size(l) <= len);
		if (type == t) {
			*vlen = l;
			return msg + off + 4;
		}
		off += stun_attr_size(l);
	}
	return NULL;
}

/* Does the classic reply carry address attribute t equal to want (or not
 * carry it at all when want is NULL)? */
static void classic_addr(const struct result *res, uint16_t t,
                         const struct sockaddr_storage *want)
{
	struct sockaddr_storage seen;
	const uint8_t *v;
	size_t vlen = 0;

	v = classic_find(res->out, res->reply.len, t, &vlen);
	if (!want) {
		assert_null(v);
		return;
	}
	assert_non_null(v);
	assert_int_equal(stun_addr_decode(&seen, v, vlen, NULL), STUN_OK);
	assert_addr(&seen, want);
}

/* run() for classic requests: the checks of run(), but the reply is read
 * with stun3489_decode() and must echo all 128 bits of the id. */
static void run_classic(struct result *res, const struct binding_service *svc,
                        int sock, const struct raw *req,
                        const struct sockaddr *from, struct stun3489_msg *m)
{
	size_t vlen;

	memset(res, 0, sizeof(*res));
	memset(res->out, 0xAA, sizeof(res->out));
	res->verdict = binding_handle(svc, sock, req->b, req->len, from,
	                              res->out, sizeof(res->out), &res->reply,
	                              &res->why);
	assert_int_equal(res->verdict, BINDING_REPLY);
	assert_true(res->reply.len <= BINDING_AMPLIFICATION_MAX * req->len);
	assert_int_equal(stun3489_decode(m, res->out, res->reply.len), STUN_OK);
	assert_int_equal(m->method, STUN_BINDING);
	assert_int_equal(m->cls, res->reply.is_error ? STUN_ERROR : STUN_SUCCESS);
	assert_memory_equal(m->txid, classic_txid, sizeof(classic_txid));
	/* a classic client knows neither of these */
	assert_null(classic_find(res->out, res->reply.len,
	                         STUN_ATTR_XOR_MAPPED_ADDRESS, &vlen));
	assert_null(classic_find(res->out, res->reply.len,
	                         STUN_ATTR_FINGERPRINT, &vlen));
}

static void test_classic_plain(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.7", 40000);
	struct binding_service svc;
	struct stun3489_msg m;
	struct result res;
	struct raw req;
	size_t vlen = 0;

	(void)state;
	svc_plain(&svc);
	classic_request(&req);
	/* RESPONSE-ADDRESS is not honoured: the reply goes to the source */
	raw_attr(&req, STUN3489_ATTR_RESPONSE_ADDRESS, "\0\1\x13\x88\xc0\0\2\x63",
	         8);
	run_classic(&res, &svc, 0, &req, SA(from), &m);
	assert_false(res.reply.is_error);
	assert_int_equal(res.reply.sock, 0);
	assert_addr(&res.reply.to, &from);
	classic_addr(&res, STUN_ATTR_MAPPED_ADDRESS, &from);
	classic_addr(&res, STUN3489_ATTR_SOURCE_ADDRESS, &svc.local[0]);
	classic_addr(&res, STUN3489_ATTR_CHANGED_ADDRESS, NULL); /* no -alt */
	/* no SERVER: RFC 3489 has none, and its client chokes on ours */
	assert_null(classic_find(res.out, res.reply.len, STUN_ATTR_SOFTWARE,
	                         &vlen));
}

/* With -alt: CHANGED-ADDRESS is the other IP and port, and CHANGE-REQUEST
 * moves the reply to that socket, SOURCE-ADDRESS following it. */
static void test_classic_change_request(void **state)
{
	static const struct {
		int flags, sock_out;
	} cases[] = {
		{ 0, 0 },
		{ STUN_CHANGE_PORT, 1 },
		{ STUN_CHANGE_IP, 2 },
		{ STUN_CHANGE_IP | STUN_CHANGE_PORT, 3 }
	};
	struct sockaddr_storage from = sa_make("198.51.100.7", 40000);
	struct binding_service svc;
	struct stun3489_msg m;
	struct result res;
	struct raw req;

	(void)state;
	svc_5780(&svc);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		classic_request(&req);
		raw_u32(&req, STUN_ATTR_CHANGE_REQUEST, (uint32_t)cases[i].flags);
		run_classic(&res, &svc, 0, &req, SA(from), &m);
		assert_false(res.reply.is_error);
		assert_int_equal(res.reply.sock, cases[i].sock_out);
		classic_addr(&res, STUN_ATTR_MAPPED_ADDRESS, &from);
		classic_addr(&res, STUN3489_ATTR_SOURCE_ADDRESS,
		             &svc.local[cases[i].sock_out]);
		classic_addr(&res, STUN3489_ATTR_CHANGED_ADDRESS, &svc.local[3]);
	}
}

/* The UNKNOWN-ATTRIBUTES list of a classic 420, as n 16-bit types. */
static void assert_classic_420(const struct result *res, const uint16_t *want,
                               size_t n)
{
	const uint8_t *v;
	size_t vlen = 0;

	assert_true(res->reply.is_error);
	v = classic_find(res->out, res->reply.len, STUN_ATTR_ERROR_CODE, &vlen);
	assert_non_null(v);
	assert_int_equal(v[2] * 100 + v[3], 420);
	assert_int_equal(vlen % 4, 0); /* RFC 3489 11.2.9 */
	v = classic_find(res->out, res->reply.len,
	                 STUN_ATTR_UNKNOWN_ATTRIBUTES, &vlen);
	assert_non_null(v);
	assert_int_equal(vlen, 2 * n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[2 * i] << 8 | v[2 * i + 1], want[i]);
}

static void test_classic_420(void **state)
{
	/* an odd count repeats one type, RFC 3489 11.2.10 */
	static const uint16_t change[] = { 0x0003, 0x0003 };
	static const uint16_t unknown[] = { 0x7777, 0x0027 };
	struct sockaddr_storage from = sa_make("198.51.100.7", 40000);
	struct binding_service svc;
	struct stun3489_msg m;
	struct result res;
	struct raw req;

	(void)state;
	svc_plain(&svc);
	classic_request(&req);
	raw_u32(&req, STUN_ATTR_CHANGE_REQUEST, STUN_CHANGE_IP);
	run_classic(&res, &svc, 0, &req, SA(from), &m);
	assert_int_equal(res.reply.sock, 0);
	assert_classic_420(&res, change, 2);

	classic_request(&req);
	raw_attr(&req, 0x7777, "abcd", 4);
	raw_attr(&req, 0x0027, "\0\0\0\0", 4);
	raw_attr(&req, 0xC001, "abcd", 4); /* optional: ignored */
	run_classic(&res, &svc, 0, &req, SA(from), &m);
	assert_classic_420(&res, unknown, 2);
}

/* IPv6 from a 20-byte request: MAPPED-ADDRESS (44 bytes with the header)
 * always, optional attributes only while the reply stays within 80. */
static void test_classic_amplification(void **state)
{
	struct sockaddr_storage from = sa_make("2001:db8::7", 40000);
	struct binding_service svc;
	struct stun3489_msg m;
	struct result res;
	struct raw req;

	(void)state;
	svc_5780(&svc);
	classic_request(&req);
	run_classic(&res, &svc, 0, &req, SA(from), &m);
	assert_true(res.reply.len <= 80);
	classic_addr(&res, STUN_ATTR_MAPPED_ADDRESS, &from);
	classic_addr(&res, STUN3489_ATTR_CHANGED_ADDRESS, &svc.local[3]);
	classic_addr(&res, STUN3489_ATTR_SOURCE_ADDRESS, &svc.local[0]);
	assert_int_equal(res.reply.len, 68);

	/* a smaller buffer: SOURCE-ADDRESS goes first, then CHANGED */
	static const struct {
		size_t cap, len;
		int changed, source;
	} caps[] = { { 67, 56, 1, 0 }, { 55, 44, 0, 0 }, { 43, 0, 0, 0 } };
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		int v = binding_handle(&svc, 0, req.b, req.len, SA(from),
		                       res.out, caps[i].cap, &res.reply,
		                       &res.why);
		size_t vlen;

		if (!caps[i].len) {
			assert_int_equal(v, BINDING_DROP);
			continue;
		}
		assert_int_equal(v, BINDING_REPLY);
		assert_int_equal(res.reply.len, caps[i].len);
		classic_addr(&res, STUN_ATTR_MAPPED_ADDRESS, &from);
		assert_int_equal(classic_find(res.out, res.reply.len,
		                              STUN3489_ATTR_CHANGED_ADDRESS,
		                              &vlen) != NULL,
		                 caps[i].changed);
		assert_int_equal(classic_find(res.out, res.reply.len,
		                              STUN3489_ATTR_SOURCE_ADDRESS,
		                              &vlen) != NULL,
		                 caps[i].source);
	}
}

/* All IPv6: MAPPED and CHANGED make 68 bytes, SOURCE-ADDRESS would make 92,
 * over 4 x 20: it is left out, and the reply stays within the bound. */
static void test_classic_amplification_ipv6(void **state)
{
	static const char *const ip[2] = { "2001:db8::10", "2001:db8::11" };
	struct sockaddr_storage from = sa_make("2001:db8::7", 40000);
	struct binding_service svc;
	struct stun3489_msg m;
	struct result res;
	struct raw req;

	(void)state;
	svc_5780(&svc);
	for (int i = 0; i < BINDING_SOCKETS_MAX; i++)
		svc.local[i] = sa_make(ip[i >> 1], (uint16_t)(3478 + (i & 1)));
	classic_request(&req);
	run_classic(&res, &svc, 0, &req, SA(from), &m);
	assert_int_equal(res.reply.len, 68);
	classic_addr(&res, STUN_ATTR_MAPPED_ADDRESS, &from);
	classic_addr(&res, STUN3489_ATTR_CHANGED_ADDRESS, &svc.local[3]);
	classic_addr(&res, STUN3489_ATTR_SOURCE_ADDRESS, NULL);
	/* 4 bytes more of request, and SOURCE-ADDRESS fits */
	raw_attr(&req, 0x8123, NULL, 0);
	run_classic(&res, &svc, 0, &req, SA(from), &m);
	assert_int_equal(res.reply.len, 92);
	classic_addr(&res, STUN3489_ATTR_SOURCE_ADDRESS, &svc.local[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_ipv4),
		cmocka_unit_test(test_plain_ipv6),
		cmocka_unit_test(test_amplification_ipv6_20_bytes),
		cmocka_unit_test(test_amplification_sweep),
		cmocka_unit_test(test_unknown_attribute_420),
		cmocka_unit_test(test_unknown_method_400),
		cmocka_unit_test(test_not_a_request_ignored),
		cmocka_unit_test(test_malformed_dropped),
		cmocka_unit_test(test_small_buffer_dropped),
		cmocka_unit_test(test_rfc5780_addresses),
		cmocka_unit_test(test_rfc5780_change_request),
		cmocka_unit_test(test_rfc5780_no_alternate_ip),
		cmocka_unit_test(test_change_request_without_rfc5780),
		cmocka_unit_test(test_response_port),
		cmocka_unit_test(test_response_port_zero),
		cmocka_unit_test(test_classic_plain),
		cmocka_unit_test(test_classic_change_request),
		cmocka_unit_test(test_classic_420),
		cmocka_unit_test(test_classic_amplification),
		cmocka_unit_test(test_classic_amplification_ipv6),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
