/*
 * Unit tests for punch's rendezvous attributes (src/punch_attr.c): the
 * candidate format (XORed like XOR-MAPPED-ADDRESS), the peer description
 * REGISTER and PEER-INFO carry, and their parse errors.  Messages are
 * decoded with stun_decode() and the raw builder in unit.h.
 */
#include "unit.h"

#include <stdio.h>

#include "punch_attr.h"

static const char R_EMPTY[] = "id is empty";
static const char R_UTF8[] = "id is not valid UTF-8";
static const char R_SPACE[] = "id contains a space or control character";

/* ---- candidates -------------------------------------------------------- */

enum { MSG_CAP = 1500 };

static const uint8_t txid_a[STUN_TXID_LEN] = { 0xA0, 0xA1, 0xA2, 0xA3, 0xA4,
	                                       0xA5, 0xA6, 0xA7, 0xA8, 0xA9,
	                                       0xAA, 0xAB };

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

/* Encode one candidate into a request and decode it again. */
static int cand_encode(uint8_t *buf, const struct punch_candidate *c)
{
	struct stun_writer w;

	stun_writer_init(&w, buf, MSG_CAP, PUNCH_REGISTER, STUN_REQUEST,
	                 txid_a);
	punch_put_candidate(&w, c);
	return stun_writer_finish(&w);
}

static void test_candidate_round_trip(void **state)
{
	static const struct {
		uint8_t type;
		const char *ip;
		uint16_t port;
		uint32_t prio;
	} cases[] = {
		{ CAND_HOST, "192.0.2.1", 40000, 0x7EFFFFFF },
		{ CAND_SRFLX, "203.0.113.77", 1, 0x64000000 },
		{ CAND_PRFLX, "2001:db8::1", 65535, 0x6E00FFFF },
		{ CAND_RELAY, "2001:db8:1:2:3:4:5:6", 3478, 0 }
	};
	uint8_t buf[MSG_CAP];
	struct stun_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct punch_candidate c = cand(cases[i].type, cases[i].ip,
		                                cases[i].port, cases[i].prio);
		struct punch_candidate d;
		const struct stun_attr *a;
		int n = cand_encode(buf, &c);
		int v6 = strchr(cases[i].ip, ':') != NULL;

		assert_true(n > 0);
		decode_ok(&m, buf, (size_t)n);
		a = punch_attr_find(&m, PUNCH_ATTR_CANDIDATE);
		assert_non_null(a);
		assert_size(a->len, v6 ? 24 : 12);
		/* The wire form is XORed: the raw port is not the port. */
		assert_int_equal(a->value[0], cases[i].type);
		assert_int_equal(a->value[1], v6 ? 2 : 1);
		assert_int_equal((a->value[2] << 8 | a->value[3]),
		                 cases[i].port ^ 0x2112);
		assert_int_equal(a->value[4] << 24 | a->value[5] << 16 |
		                         a->value[6] << 8 | a->value[7],
		                 cases[i].prio);
		memset(&d, 0xEE, sizeof(d));
		assert_int_equal(punch_parse_candidate(&d, a, m.txid), 0);
		assert_int_equal(d.type, cases[i].type);
		assert_int_equal(d.priority, cases[i].prio);
		assert_addr(&d.addr, &c.addr);
	}
}

/* The XOR key is the cookie (then the txid for IPv6), as in RFC 8489 14.2. */
static void test_candidate_wire_bytes(void **state)
{
	struct punch_candidate c =
		cand(CAND_HOST, "192.0.2.1", 0x1234, 0x01020304);
	struct punch_candidate d;
	static const uint8_t want[12] = {
		0x01, 0x01, 0x12 ^ 0x21, 0x34 ^ 0x12,
		0x01, 0x02, 0x03, 0x04,
		192 ^ 0x21, 0 ^ 0x12, 2 ^ 0xA4, 1 ^ 0x42
	};
	uint8_t buf[MSG_CAP];
	struct stun_msg m;
	const struct stun_attr *a;
	int n;

	(void)state;
	n = cand_encode(buf, &c);
	assert_true(n > 0);
	decode_ok(&m, buf, (size_t)n);
	a = punch_attr_find(&m, PUNCH_ATTR_CANDIDATE);
	assert_non_null(a);
	assert_size(a->len, sizeof(want));
	assert_memory_equal(a->value, want, sizeof(want));

	/* IPv6: the address is XORed with the cookie and the txid */
	c = cand(CAND_SRFLX, "2001:db8::1", 1, 7);
	n = cand_encode(buf, &c);
	assert_true(n > 0);
	decode_ok(&m, buf, (size_t)n);
	a = punch_attr_find(&m, PUNCH_ATTR_CANDIDATE);
	assert_non_null(a);
	assert_int_equal(a->value[8], 0x20 ^ 0x21);
	assert_int_equal(a->value[12], 0x00 ^ 0xA0);
	assert_int_equal(a->value[23], 0x01 ^ 0xAB);
	/* decoding under another txid gives another address */
	assert_int_equal(punch_parse_candidate(&d, a, txid_a), 0);
	assert_addr(&d.addr, &c.addr);
	{
		uint8_t other[STUN_TXID_LEN] = { 0 };

		assert_int_equal(punch_parse_candidate(&d, a, other), 0);
		assert_false(addr_equal(SA(d.addr), SA(c.addr)));
	}
}

static void test_candidate_bad(void **state)
{
	uint8_t v[24];
	struct stun_attr a = { PUNCH_ATTR_CANDIDATE, 12, v };
	struct punch_candidate d;

	(void)state;
	memset(v, 0, sizeof(v));
	v[0] = CAND_HOST;
	v[1] = 1;
	assert_int_equal(punch_parse_candidate(&d, &a, txid_a), 0);
	/* type out of range */
	v[0] = 0;
	assert_int_equal(punch_parse_candidate(&d, &a, txid_a), -1);
	v[0] = CAND_MAPPED;
	assert_int_equal(punch_parse_candidate(&d, &a, txid_a), 0);
	v[0] = CAND_MAPPED + 1;
	assert_int_equal(punch_parse_candidate(&d, &a, txid_a), -1);
	v[0] = CAND_HOST;
	/* family does not match the length */
	v[1] = 2;
	assert_int_equal(punch_parse_candidate(&d, &a, txid_a), -1);
	a.len = 24;
	assert_int_equal(punch_parse_candidate(&d, &a, txid_a), 0);
	v[1] = 1;
	assert_int_equal(punch_parse_candidate(&d, &a, txid_a), -1);
	v[1] = 3;
	assert_int_equal(punch_parse_candidate(&d, &a, txid_a), -1);
	/* other lengths */
	v[1] = 1;
	for (uint16_t len = 0; len <= 24; len++) {
		a.len = len;
		if (len != 12 && len != 24)
			assert_int_equal(punch_parse_candidate(&d, &a, txid_a),
			                 -1);
	}
}

static void test_candidate_priority(void **state)
{
	(void)state;
	/* RFC 8445 5.1.2.1: 2^24 type + 2^8 local + (256 - component 1) */
	assert_int_equal(punch_cand_priority(CAND_HOST, 65535),
	                 (126u << 24) | (65535u << 8) | 255u);
	assert_int_equal(punch_cand_priority(CAND_PRFLX, 0),
	                 (110u << 24) | 255u);
	assert_int_equal(punch_cand_priority(CAND_SRFLX, 0x1234),
	                 (100u << 24) | (0x1234u << 8) | 255u);
	assert_int_equal(punch_cand_priority(CAND_RELAY, 65535),
	                 (65535u << 8) | 255u);
	/* type dominates local preference: host > prflx > srflx > relay */
	assert_true(punch_cand_priority(CAND_HOST, 0) >
	            punch_cand_priority(CAND_PRFLX, 65535));
	assert_true(punch_cand_priority(CAND_PRFLX, 0) >
	            punch_cand_priority(CAND_SRFLX, 65535));
	assert_true(punch_cand_priority(CAND_SRFLX, 0) >
	            punch_cand_priority(CAND_RELAY, 65535));
	/* a gateway's mapping: between host and srflx, below prflx */
	assert_int_equal(punch_cand_priority(CAND_MAPPED, 0), (105u << 24) | 255u);
	assert_true(punch_cand_priority(CAND_HOST, 0) >
	            punch_cand_priority(CAND_MAPPED, 65535));
	assert_true(punch_cand_priority(CAND_MAPPED, 0) >
	            punch_cand_priority(CAND_SRFLX, 65535));
	assert_str(punch_cand_type_str(CAND_HOST), "host");
	assert_str(punch_cand_type_str(CAND_SRFLX), "srflx");
	assert_str(punch_cand_type_str(CAND_PRFLX), "prflx");
	assert_str(punch_cand_type_str(CAND_RELAY), "relay");
	assert_str(punch_cand_type_str(CAND_MAPPED), "mapped");
	assert_str(punch_cand_type_str(9), "?");
}

/* ---- peers ------------------------------------------------------------- */

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

static void assert_peer_equal(const struct punch_peer *a,
                              const struct punch_peer *b, int with_peer_id)
{
	assert_str(a->id, b->id);
	if (with_peer_id)
		assert_str(a->peer_id, b->peer_id);
	assert_str(a->ufrag, b->ufrag);
	assert_str(a->pwd, b->pwd);
	assert_true(a->session == b->session);
	assert_int_equal(a->has_key_fp, b->has_key_fp);
	if (a->has_key_fp)
		assert_memory_equal(a->key_fp, b->key_fp, PUNCH_KEY_FP_LEN);
	assert_int_equal(a->has_observed, b->has_observed);
	if (a->has_observed)
		assert_addr(&a->observed, &b->observed);
	assert_int_equal(a->nat.mapping, b->nat.mapping);
	assert_int_equal(a->nat.ports, b->nat.ports);
	assert_int_equal(a->nat.delta, b->nat.delta);
	assert_size(a->n_cand, b->n_cand);
	for (size_t i = 0; i < a->n_cand; i++) {
		assert_int_equal(a->cand[i].type, b->cand[i].type);
		assert_int_equal(a->cand[i].priority, b->cand[i].priority);
		assert_addr(&a->cand[i].addr, &b->cand[i].addr);
	}
}

static int peer_encode(uint8_t *buf, const struct punch_peer *p,
                       int with_peer_id)
{
	struct stun_writer w;

	stun_writer_init(&w, buf, MSG_CAP, PUNCH_PEER_INFO, STUN_REQUEST,
	                 txid_a);
	punch_peer_put(&w, p, with_peer_id);
	stun_put_fingerprint(&w);
	return stun_writer_finish(&w);
}

static void test_peer_round_trip(void **state)
{
	struct punch_peer p = peer_make("alice", "bob", 0x0123456789ABCDEFull);
	struct punch_peer q;
	uint8_t buf[MSG_CAP];
	struct stun_msg m;
	const char *why = "unset";
	int n;

	(void)state;
	p.has_key_fp = 1;
	for (int i = 0; i < PUNCH_KEY_FP_LEN; i++)
		p.key_fp[i] = (uint8_t)(0xC0 + i);
	p.has_observed = 1;
	p.observed = sa_make("2001:db8::99", 4242);
	p.nat = (struct punch_nat){ PUNCH_NAT_DEPENDENT, PUNCH_PORTS_SEQUENTIAL,
		                    -2 };
	p.cand[p.n_cand++] = cand(CAND_HOST, "2001:db8::5", 5001, 0x7EFFFEFF);
	n = peer_encode(buf, &p, 1);
	assert_true(n > 0 && n <= PUNCH_MSG_MAX);
	decode_ok(&m, buf, (size_t)n);
	memset(&q, 0xEE, sizeof(q));
	assert_int_equal(punch_peer_parse(&q, &m, &why), 0);
	assert_null(why);
	assert_peer_equal(&q, &p, 1);
	/* Our own attributes are known, so none is "unknown required". */
	{
		uint16_t unknown[STUN_MAX_UNKNOWN];

		assert_true(m.unknown_required_count > 0);
		assert_size(punch_unknown_required(&m, unknown), 0);
	}

	/* Without the peer id (PEER-INFO's form) */
	n = peer_encode(buf, &p, 0);
	assert_true(n > 0);
	decode_ok(&m, buf, (size_t)n);
	assert_null(punch_attr_find(&m, PUNCH_ATTR_PEER_ID));
	assert_int_equal(punch_peer_parse(&q, &m, &why), 0);
	assert_string_equal(q.peer_id, "");
	assert_peer_equal(&q, &p, 0);
}

/* The most a peer can hold still fits one unfragmented datagram. */
static void test_peer_max_size(void **state)
{
	struct punch_peer p, q;
	uint8_t buf[MSG_CAP];
	struct stun_msg m;
	const char *why;
	int n;

	(void)state;
	memset(&p, 0, sizeof(p));
	memset(p.id, 'i', PUNCH_ID_MAX);
	memset(p.peer_id, 'p', PUNCH_ID_MAX);
	memset(p.ufrag, 'u', PUNCH_UFRAG_MAX);
	memset(p.pwd, 'w', PUNCH_PWD_MAX);
	p.has_key_fp = p.has_observed = 1;
	p.observed = sa_make("2001:db8::1", 1);
	p.nat = (struct punch_nat){ PUNCH_NAT_DEPENDENT, PUNCH_PORTS_RANDOM,
		                    -32768 };
	for (int i = 0; i < PUNCH_CANDIDATES_MAX; i++)
		p.cand[i] = cand(CAND_HOST, "2001:db8::2", (uint16_t)(1000 + i),
		                 (uint32_t)i);
	p.n_cand = PUNCH_CANDIDATES_MAX;
	n = peer_encode(buf, &p, 1);
	assert_true(n > 0);
	assert_true(n + 36 /* NONCE */ <= PUNCH_MSG_MAX);
	decode_ok(&m, buf, (size_t)n);
	assert_int_equal(punch_peer_parse(&q, &m, &why), 0);
	assert_peer_equal(&q, &p, 1);
}

/* A request built from raw attributes, for the parse failures. */
static void raw_peer(struct raw *r, unsigned skip, const char *id)
{
	static const uint8_t session[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	raw_init(r, 0x00ED); /* REGISTER request */
	if (!(skip & 1))
		raw_attr(r, PUNCH_ATTR_ID, id, strlen(id));
	if (!(skip & 2))
		raw_attr(r, PUNCH_ATTR_UFRAG, "uf", 2);
	if (!(skip & 4))
		raw_attr(r, PUNCH_ATTR_PWD, "pw", 2);
	if (!(skip & 8))
		raw_attr(r, PUNCH_ATTR_SESSION, session, sizeof(session));
}

static void expect_parse_error(const struct raw *r, const char *reason)
{
	struct punch_peer q;
	struct stun_msg m;
	const char *why = NULL;

	decode_ok(&m, r->b, r->len);
	assert_int_equal(punch_peer_parse(&q, &m, &why), -1);
	assert_str(why, reason);
}

static void test_peer_parse_errors(void **state)
{
	static const char creds[] = "bad or missing credentials";
	struct raw r;
	uint8_t v[64];

	(void)state;
	raw_peer(&r, 0, "alice");
	{
		struct punch_peer q;
		struct stun_msg m;
		const char *why;

		decode_ok(&m, r.b, r.len);
		assert_int_equal(punch_peer_parse(&q, &m, &why), 0);
		assert_string_equal(q.id, "alice");
		assert_string_equal(q.ufrag, "uf");
		assert_true(q.session == 0x0102030405060708ull);
	}
	raw_peer(&r, 1, "alice");
	expect_parse_error(&r, "id missing");
	raw_peer(&r, 0, "al ice");
	expect_parse_error(&r, R_SPACE);
	raw_peer(&r, 0, "\xC0\xAF");
	expect_parse_error(&r, R_UTF8);
	raw_peer(&r, 0, "alice");
	raw_attr(&r, PUNCH_ATTR_PEER_ID, "", 0);
	expect_parse_error(&r, R_EMPTY);
	raw_peer(&r, 2, "alice");
	expect_parse_error(&r, creds);
	raw_peer(&r, 4, "alice");
	expect_parse_error(&r, creds);
	/* empty, too long, or with a NUL inside */
	raw_peer(&r, 2, "alice");
	raw_attr(&r, PUNCH_ATTR_UFRAG, "", 0);
	expect_parse_error(&r, creds);
	raw_peer(&r, 2, "alice");
	memset(v, 'u', sizeof(v));
	raw_attr(&r, PUNCH_ATTR_UFRAG, v, PUNCH_UFRAG_MAX + 1);
	expect_parse_error(&r, creds);
	raw_peer(&r, 4, "alice");
	raw_attr(&r, PUNCH_ATTR_PWD, "p\0w", 3);
	expect_parse_error(&r, creds);
	raw_peer(&r, 8, "alice");
	expect_parse_error(&r, "bad or missing session");
	raw_peer(&r, 8, "alice");
	raw_attr(&r, PUNCH_ATTR_SESSION, v, 4);
	expect_parse_error(&r, "bad or missing session");
	raw_peer(&r, 0, "alice");
	raw_attr(&r, PUNCH_ATTR_KEY_FP, v, PUNCH_KEY_FP_LEN - 1);
	expect_parse_error(&r, "bad key fingerprint");
	raw_peer(&r, 0, "alice");
	raw_attr(&r, PUNCH_ATTR_OBSERVED, v, 5);
	expect_parse_error(&r, "bad observed address");
	raw_peer(&r, 0, "alice");
	memset(v, 0, 12);
	raw_attr(&r, PUNCH_ATTR_CANDIDATE, v, 12); /* type 0 */
	expect_parse_error(&r, "bad candidate");
	/* 12 candidates are fine, 13 are too many */
	raw_peer(&r, 0, "alice");
	v[0] = CAND_HOST;
	v[1] = 1;
	for (int i = 0; i < PUNCH_CANDIDATES_MAX; i++)
		raw_attr(&r, PUNCH_ATTR_CANDIDATE, v, 12);
	{
		struct punch_peer q;
		struct stun_msg m;
		const char *why;

		decode_ok(&m, r.b, r.len);
		assert_int_equal(punch_peer_parse(&q, &m, &why), 0);
		assert_size(q.n_cand, PUNCH_CANDIDATES_MAX);
	}
	raw_attr(&r, PUNCH_ATTR_CANDIDATE, v, 12);
	expect_parse_error(&r, "too many candidates");
}

static void test_unknown_required(void **state)
{
	uint16_t out[STUN_MAX_UNKNOWN];
	struct stun_msg m;
	struct raw r;

	(void)state;
	raw_peer(&r, 0, "alice");
	raw_attr(&r, 0x4F00, "x", 1);          /* just below our range */
	raw_attr(&r, PUNCH_ATTR_OBSERVED, "abcd", 4); /* the top of our range */
	raw_attr(&r, 0x4F0F, "x", 1);          /* just above it */
	raw_attr(&r, 0xC123, "x", 1);          /* comprehension-optional */
	decode_ok(&m, r.b, r.len);
	assert_size(punch_unknown_required(&m, out), 2);
	assert_int_equal(out[0], 0x4F00);
	assert_int_equal(out[1], 0x4F0F);
	assert_true(punch_attr_known(PUNCH_ATTR_ID));
	assert_true(punch_attr_known(PUNCH_ATTR_SERVER_KEY));
	assert_false(punch_attr_known(0x4F00));
	assert_true(punch_attr_known(PUNCH_ATTR_RENEW_SEQ));
	assert_false(punch_attr_known(0x4F0F));
	assert_true(punch_method_is_rendezvous(PUNCH_REGISTER));
	assert_true(punch_method_is_rendezvous(PUNCH_PEER_INFO));
	assert_true(punch_method_is_rendezvous(PUNCH_RELEASE));
	assert_true(punch_method_is_rendezvous(PUNCH_RENEW));
	assert_false(punch_method_is_rendezvous(0x07B));
	assert_false(punch_method_is_rendezvous(STUN_BINDING));
	assert_false(punch_method_is_rendezvous(-1));
}

/* ---- PUNCH-NAT ---------------------------------------------------------- */

static void test_nat_wire(void **state)
{
	/* mapping 2, ports 3, delta -2 (0xFFFE) */
	static const uint8_t want[] = { 0xCF, 0x02, 0x00, 0x04, 2, 3, 0xFF, 0xFE };
	struct punch_nat n = { PUNCH_NAT_DEPENDENT, PUNCH_PORTS_RANDOM, -2 }, o;
	uint8_t buf[MSG_CAP];
	struct stun_writer w;
	struct stun_msg m;
	int len;

	(void)state;
	stun_writer_init(&w, buf, MSG_CAP, PUNCH_REGISTER, STUN_REQUEST, txid_a);
	punch_put_nat(&w, &n);
	len = stun_writer_finish(&w);
	assert_int_equal(len, 20 + 8);
	assert_memory_equal(buf + 20, want, sizeof(want));
	decode_ok(&m, buf, (size_t)len);
	/* comprehension-optional: a server or client that does not know it
	 * ignores it (RFC 8489 14) */
	assert_size(m.unknown_required_count, 0);
	assert_int_equal(punch_parse_nat(&o, punch_attr_find(&m, PUNCH_ATTR_NAT)), 0);
	assert_int_equal(o.mapping, n.mapping);
	assert_int_equal(o.ports, n.ports);
	assert_int_equal(o.delta, -2);
}

static void test_nat_bad(void **state)
{
	static const uint8_t v[5] = { 1, 1, 0, 0, 0 };
	static const uint8_t bad_map[4] = { 3, 0, 0, 0 };
	static const uint8_t bad_ports[4] = { 1, 4, 0, 0 };
	struct raw r;

	(void)state;
	for (size_t len = 0; len <= 5; len++) {
		if (len == 4)
			continue;
		raw_peer(&r, 0, "alice");
		raw_attr(&r, PUNCH_ATTR_NAT, v, len);
		expect_parse_error(&r, "bad NAT behaviour");
	}
	{
		/* mapping 0: unknown, the rest ignored */
		static const uint8_t unknown[4] = { 0, 3, 0x12, 0x34 };
		struct punch_peer q;
		struct stun_msg m;
		const char *why;

		raw_peer(&r, 0, "alice");
		raw_attr(&r, PUNCH_ATTR_NAT, unknown, 4);
		decode_ok(&m, r.b, r.len);
		assert_int_equal(punch_peer_parse(&q, &m, &why), 0);
		assert_int_equal(q.nat.mapping, 0);
		assert_int_equal(q.nat.ports, 0);
		assert_int_equal(q.nat.delta, 0);
	}
	raw_peer(&r, 0, "alice");
	raw_attr(&r, PUNCH_ATTR_NAT, bad_map, 4);
	expect_parse_error(&r, "bad NAT behaviour");
	raw_peer(&r, 0, "alice");
	raw_attr(&r, PUNCH_ATTR_NAT, bad_ports, 4);
	expect_parse_error(&r, "bad NAT behaviour");
}

static void test_nat_classify(void **state)
{
	struct sockaddr_storage a = sa_make("203.0.113.5", 40000),
				same = sa_make("203.0.113.5", 40000),
				near = sa_make("203.0.113.5", 40002),
				far = sa_make("203.0.113.5", 9123),
				pres = sa_make("203.0.113.5", 5000);
	struct punch_nat n;
	const struct sockaddr *A = (const struct sockaddr *)&a;

	(void)state;
	punch_nat_classify(&n, 5000, A, NULL);
	assert_int_equal(n.mapping, PUNCH_NAT_UNKNOWN);
	punch_nat_classify(&n, 5000, A, (const struct sockaddr *)&same);
	assert_int_equal(n.mapping, PUNCH_NAT_INDEPENDENT);
	assert_int_equal(n.ports, PUNCH_PORTS_UNKNOWN);
	punch_nat_classify(&n, 5000, (const struct sockaddr *)&pres,
	                   (const struct sockaddr *)&pres);
	assert_int_equal(n.mapping, PUNCH_NAT_INDEPENDENT);
	assert_int_equal(n.ports, PUNCH_PORTS_PRESERVED);
	punch_nat_classify(&n, 5000, A, (const struct sockaddr *)&near);
	assert_int_equal(n.mapping, PUNCH_NAT_DEPENDENT);
	assert_int_equal(n.ports, PUNCH_PORTS_SEQUENTIAL);
	assert_int_equal(n.delta, 2);
	punch_nat_classify(&n, 5000, A, (const struct sockaddr *)&far);
	assert_int_equal(n.mapping, PUNCH_NAT_DEPENDENT);
	assert_int_equal(n.ports, PUNCH_PORTS_RANDOM);
	assert_int_equal(n.delta, 9123 - 40000);
}

/* ---- what a MAC covers ------------------------------------------------- */

/* RFC 8489 14.5/14.6: attributes after MESSAGE-INTEGRITY(-SHA256) are
 * covered by nothing and ignored (FINGERPRINT aside).  A PUNCH attribute
 * put there by someone on the path is not found. */
static void test_attr_after_integrity(void **state)
{
	static const uint8_t key[32] = { 1 };
	uint8_t buf[MSG_CAP];
	struct stun_writer w;
	struct stun_msg m;
	int n;

	(void)state;
	for (int sha = 0; sha < 2; sha++) {
		stun_writer_init(&w, buf, sizeof(buf), PUNCH_RENEW, STUN_SUCCESS,
		                 txid_a);
		stun_put_u32(&w, PUNCH_ATTR_LIFETIME, 30);
		if (sha)
			stun_put_integrity_sha256(&w, key, sizeof(key));
		else
			stun_put_integrity(&w, key, sizeof(key));
		stun_put_u32(&w, PUNCH_ATTR_STATUS, 1);
		stun_put_bytes(&w, PUNCH_ATTR_RELAY, "\x01up", 3);
		stun_put_fingerprint(&w);
		n = stun_writer_finish(&w);
		assert_true(n > 0);
		assert_int_equal(stun_decode(&m, buf, (size_t)n), STUN_OK);
		assert_non_null(punch_attr_find(&m, PUNCH_ATTR_LIFETIME));
		assert_null(punch_attr_find(&m, PUNCH_ATTR_STATUS));
		assert_null(punch_attr_find(&m, PUNCH_ATTR_RELAY));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_candidate_round_trip),
		cmocka_unit_test(test_attr_after_integrity),
		cmocka_unit_test(test_candidate_wire_bytes),
		cmocka_unit_test(test_candidate_bad),
		cmocka_unit_test(test_candidate_priority),
		cmocka_unit_test(test_peer_round_trip),
		cmocka_unit_test(test_peer_max_size),
		cmocka_unit_test(test_peer_parse_errors),
		cmocka_unit_test(test_unknown_required),
		cmocka_unit_test(test_nat_wire),
		cmocka_unit_test(test_nat_bad),
		cmocka_unit_test(test_nat_classify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
