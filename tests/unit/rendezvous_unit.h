/*
 * Helpers for the rendezvous server tests (test_rendezvous.c): the capture
 * of what the server sends, REGISTER requests built by hand with the raw
 * builder in unit.h (so that a bug in punch_peer_put() cannot hide one in
 * the server), running rdv_handle() with the checks every reply must pass,
 * and a registered, introduced pair.
 *
 * Everything is static inline, as in unit.h.
 */
#ifndef PUNCH_TEST_RENDEZVOUS_UNIT_H
#define PUNCH_TEST_RENDEZVOUS_UNIT_H

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include <sodium.h>

#include "binding.h"
#include "log.h"
#include "punch_attr.h"
#include "registry.h"
#include "rendezvous_server.h"
#include "identity.h"

/* Wire types: method bits interleaved with the class (RFC 8489 5). */
enum {
	T_REGISTER = 0x00ED,
	T_REGISTER_OK = 0x01ED,
	T_PEER_INFO = 0x00EE,
	T_PEER_INFO_OK = 0x01EE,
	T_PEER_INFO_ERR = 0x01FE,
	T_BINDING = 0x0001,
	T_RELEASE = 0x00EF,
	OUT_CAP = 1500,
	T0 = 1000, /* the tests' epoch: inside the first nonce bucket */
	KEY_DEFAULT = 0x11,
	NONCE_BUCKET_MS = RDV_NONCE_BUCKET_S * 1000,
};

/* ---- capture of what the server sends ------------------------------- */

struct sent {
	int sock;
	struct sockaddr_storage to;
	uint8_t buf[PUNCH_MSG_MAX];
	size_t len;
	uint64_t at;
};

enum { SENT_MAX = 256 };

static struct {
	struct sent s[SENT_MAX];
	size_t n;
	uint64_t now;
} cap;

static inline void cap_send(void *ctx, int sock, const struct sockaddr *to,
                            const uint8_t *buf, size_t len)
{
	struct sent *s;

	assert_ptr_equal(ctx, &cap);
	assert_true(cap.n < SENT_MAX);
	assert_true(len <= PUNCH_MSG_MAX);
	s = &cap.s[cap.n++];
	s->sock = sock;
	memset(&s->to, 0, sizeof(s->to));
	memcpy(&s->to, to, addr_len(to));
	memcpy(s->buf, buf, len);
	s->len = len;
	s->at = cap.now;
}

/* The server under test, freed by the teardown even when a test fails. */
static struct rdv_server *srv;

static inline struct rdv_server *srv_new(size_t max)
{
	rdv_server_free(srv);
	srv = rdv_server_new(max, cap_send, &cap);
	assert_non_null(srv);
	return srv;
}

static inline int setup(void **state)
{
	(void)state;
	log_set_level(LOG_WARN);
	memset(&cap, 0, sizeof(cap));
	srv_new(64);
	return 0;
}

static inline int teardown(void **state)
{
	(void)state;
	rdv_server_free(srv);
	srv = NULL;
	return 0;
}

/* ---- building REGISTER requests by hand ------------------------------ */

struct reg_req {
	const char *id, *peer;       /* NULL: left out */
	uint64_t session;
	const char *nonce;           /* NULL: none */
	int key;     /* the signing key's seed fill byte; 0: KEY_DEFAULT */
	int unsigned_req;            /* no PUNCH-PUBKEY or signature */
	int claim;   /* 0: no PUNCH-KEY-FP, else its fill byte (a claim) */
	struct punch_candidate cand[PUNCH_CANDIDATES_MAX];
	size_t n_cand;
	uint8_t txid[STUN_TXID_LEN];
};

static unsigned txid_counter;

static inline void fresh_txid(uint8_t txid[STUN_TXID_LEN])
{
	txid_counter++;
	memset(txid, 0x5A, STUN_TXID_LEN);
	raw_put32(txid + 8, txid_counter);
}

static inline void raw_set_txid(struct raw *r,
                                const uint8_t txid[STUN_TXID_LEN])
{
	memcpy(r->b + 8, txid, STUN_TXID_LEN);
}

static inline void raw_fingerprint(struct raw *r)
{
	uint32_t crc;

	r->len += 8;
	raw_fix_length(r);
	crc = (uint32_t)crc32(0, r->b, (uInt)(r->len - 8)) ^
	      STUN_FINGERPRINT_XOR;
	raw_put16(r->b + r->len - 8, STUN_ATTR_FINGERPRINT);
	raw_put16(r->b + r->len - 6, 4);
	raw_put32(r->b + r->len - 4, crc);
}

/* PUNCH-CANDIDATE, XORed by hand as docs/protocol.md describes. */
static inline void raw_candidate(struct raw *r, const struct punch_candidate *c)
{
	uint8_t v[24], key[16];
	size_t n;

	raw_put32(key, STUN_MAGIC_COOKIE);
	memcpy(key + 4, r->b + 8, STUN_TXID_LEN);
	v[0] = c->type;
	raw_put32(v + 4, c->priority);
	if (c->addr.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)&c->addr;

		v[1] = 1;
		raw_put16(v + 2, ntohs(sin->sin_port) ^ 0x2112);
		memcpy(v + 8, &sin->sin_addr, 4);
		n = 4;
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)&c->addr;

		v[1] = 2;
		raw_put16(v + 2, ntohs(sin6->sin6_port) ^ 0x2112);
		memcpy(v + 8, &sin6->sin6_addr, 16);
		n = 16;
	}
	for (size_t i = 0; i < n; i++)
		v[8 + i] ^= key[i];
	raw_attr(r, PUNCH_ATTR_CANDIDATE, v, 8 + n);
}

/* The test's own key pair for a seed fill byte, and its fingerprint. */
static inline void test_key(int fill, uint8_t pk[32], uint8_t sk[64],
                            uint8_t fp[32])
{
	static const uint8_t spki[12] = { 0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
		                          0x2b, 0x65, 0x70, 0x03, 0x21, 0x00 };
	uint8_t seed[32], der[44];

	assert_true(sodium_init() >= 0);
	memset(seed, fill ? fill : KEY_DEFAULT, sizeof(seed));
	assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
	memcpy(der, spki, sizeof(spki));
	memcpy(der + 12, pk, 32);
	crypto_hash_sha256(fp, der, sizeof(der));
}

/* PUNCH-PUBKEY and PUNCH-SIGNATURE, computed by hand as docs/protocol.md
 * says: Ed25519 over the context string and the message so far, with the
 * length field counting the signature attribute. */
static inline void raw_sign(struct raw *r, int fill)
{
	static const char ctx[] = "punch-rendezvous-v1";
	uint8_t pk[32], sk[64], fp[32], sig[64], in[32 + 2048];
	size_t body;

	test_key(fill, pk, sk, fp);
	raw_attr(r, PUNCH_ATTR_PUBKEY, pk, sizeof(pk));
	assert_true(r->len <= 2048);
	memcpy(in, ctx, sizeof(ctx) - 1);
	memcpy(in + sizeof(ctx) - 1, r->b, r->len);
	body = r->len + 4 + 64 - STUN_HEADER_LEN;
	raw_put16(in + sizeof(ctx) - 1 + 2, (uint16_t)body);
	crypto_sign_detached(sig, NULL, in, sizeof(ctx) - 1 + r->len, sk);
	raw_attr(r, PUNCH_ATTR_SIGNATURE, sig, sizeof(sig));
}

static inline void build_register(struct raw *r, const struct reg_req *q)
{
	uint8_t session[8], fp[PUNCH_KEY_FP_LEN];
	char ufrag[PUNCH_UFRAG_MAX + 1], pwd[PUNCH_PWD_MAX + 1];

	raw_init(r, T_REGISTER);
	raw_set_txid(r, q->txid);
	snprintf(ufrag, sizeof(ufrag), "uf%.20s", q->id ? q->id : "");
	snprintf(pwd, sizeof(pwd), "pw-%.40s-0123456789", q->id ? q->id : "");
	if (q->id)
		raw_attr(r, PUNCH_ATTR_ID, q->id, strlen(q->id));
	if (q->peer)
		raw_attr(r, PUNCH_ATTR_PEER_ID, q->peer, strlen(q->peer));
	raw_attr(r, PUNCH_ATTR_UFRAG, ufrag, strlen(ufrag));
	raw_attr(r, PUNCH_ATTR_PWD, pwd, strlen(pwd));
	raw_put32(session, (uint32_t)(q->session >> 32));
	raw_put32(session + 4, (uint32_t)q->session);
	raw_attr(r, PUNCH_ATTR_SESSION, session, sizeof(session));
	if (q->claim) {
		memset(fp, q->claim, sizeof(fp));
		raw_attr(r, PUNCH_ATTR_KEY_FP, fp, sizeof(fp));
	}
	for (size_t i = 0; i < q->n_cand; i++)
		raw_candidate(r, &q->cand[i]);
	if (q->nonce)
		raw_attr(r, STUN_ATTR_NONCE, q->nonce, strlen(q->nonce));
	if (!q->unsigned_req)
		raw_sign(r, q->key);
	raw_fingerprint(r);
}

static inline struct reg_req req_make(const char *id, const char *peer,
                                      uint64_t session)
{
	struct reg_req q;

	memset(&q, 0, sizeof(q));
	q.id = id;
	q.peer = peer;
	q.session = session;
	q.cand[0].type = CAND_HOST;
	q.cand[0].priority = punch_cand_priority(CAND_HOST, 65279);
	q.cand[0].addr = sa_make("10.0.0.1", 5000);
	q.cand[1].type = CAND_HOST;
	q.cand[1].priority = punch_cand_priority(CAND_HOST, 65535);
	q.cand[1].addr = sa_make("2001:db8:a::1", 5001);
	q.cand[2].type = CAND_SRFLX;
	q.cand[2].priority = punch_cand_priority(CAND_SRFLX, 65535);
	q.cand[2].addr = sa_make("203.0.113.9", 6000);
	q.n_cand = 3;
	fresh_txid(q.txid);
	return q;
}

/* ---- running the server ---------------------------------------------- */

struct result {
	int verdict;
	const char *why;
	struct binding_reply reply;
	uint8_t out[OUT_CAP];
	struct stun_msg m;
};

/* Feed one datagram; on a reply check what every reply must satisfy. */
static inline void feed(struct result *res, int sock, const uint8_t *buf,
                        size_t len, const struct sockaddr_storage *from,
                        uint64_t now)
{
	struct stun_msg q;

	memset(res, 0, sizeof(*res));
	cap.now = now;
	res->verdict = rdv_handle(srv, sock, buf, len, SA(*from), now, res->out,
	                          sizeof(res->out), &res->reply, &res->why);
	if (res->verdict != BINDING_REPLY)
		return;
	assert_true(res->reply.len <= PUNCH_MSG_MAX);
	decode_ok(&res->m, res->out, res->reply.len);
	assert_true(res->m.present & STUN_HAS_FINGERPRINT);
	assert_int_equal(res->m.cls, res->reply.is_error ? STUN_ERROR : STUN_SUCCESS);
	assert_int_equal(res->reply.sock, sock);
	assert_addr(&res->reply.to, from);
	decode_ok(&q, buf, len);
	assert_int_equal(res->m.method, q.method);
	assert_memory_equal(res->m.txid, q.txid, STUN_TXID_LEN);
}

static inline void feed_req(struct result *res, const struct reg_req *q,
                            const struct sockaddr_storage *from, uint64_t now)
{
	struct raw r;

	build_register(&r, q);
	feed(res, 0, r.b, r.len, from, now);
}

static inline void assert_error_reply(const struct result *res, uint16_t code,
                                      const char *reason)
{
	char seen[STUN_MAX_REASON + 1];

	assert_int_equal(res->verdict, BINDING_REPLY);
	assert_true(res->reply.is_error);
	assert_int_equal(res->m.error_code, code);
	memcpy(seen, res->m.reason.ptr, res->m.reason.len);
	seen[res->m.reason.len] = '\0';
	assert_str(seen, reason);
}

/* A 438 with a well-formed nonce; returns it in nonce (33 bytes). */
static inline void expect_438(const struct result *res, char *nonce)
{
	assert_error_reply(res, 438, "Stale Nonce");
	assert_true(res->m.present & STUN_HAS_NONCE);
	assert_size(res->m.nonce.len, 32);
	for (size_t i = 0; i < 32; i++)
		assert_non_null(
			strchr("0123456789abcdef", res->m.nonce.ptr[i]));
	memcpy(nonce, res->m.nonce.ptr, 32);
	nonce[32] = '\0';
}

static inline uint32_t u32_attr(const struct stun_msg *m, uint16_t type)
{
	const struct stun_attr *a = punch_attr_find(m, type);

	assert_non_null(a);
	assert_int_equal(a->len, 4);
	return (uint32_t)a->value[0] << 24 | (uint32_t)a->value[1] << 16 |
	       (uint32_t)a->value[2] << 8 | a->value[3];
}

static inline void expect_registered(const struct result *res,
                                     const struct sockaddr_storage *from,
                                     uint32_t status)
{
	assert_int_equal(res->verdict, BINDING_REPLY);
	assert_false(res->reply.is_error);
	assert_int_equal(res->m.cls, STUN_SUCCESS);
	assert_true(res->m.present & STUN_HAS_XOR_MAPPED);
	assert_addr(&res->m.xor_mapped, from);
	assert_int_equal(u32_attr(&res->m, PUNCH_ATTR_STATUS), status);
	assert_int_equal(u32_attr(&res->m, PUNCH_ATTR_LIFETIME),
	                 REGISTRY_LIFETIME_MS / 1000);
}

/* The whole dance: without a nonce (438), then with it.  Returns the
 * final result in res and the nonce in nonce. */
static inline void do_register(struct result *res, struct reg_req *q,
                               const struct sockaddr_storage *from,
                               uint64_t now, char *nonce)
{
	q->nonce = NULL;
	fresh_txid(q->txid);
	feed_req(res, q, from, now);
	expect_438(res, nonce);
	q->nonce = nonce;
	fresh_txid(q->txid);
	feed_req(res, q, from, now);
}

/* ---- PEER-INFO ---------------------------------------------------------- */

/* Decode a captured PEER-INFO and check it describes `about`, seen by the
 * server at about_from. */
static inline void expect_peer_info(const struct sent *s, int sock,
                                    const struct sockaddr_storage *to,
                                    const struct reg_req *about,
                                    const struct sockaddr_storage *about_from,
                                    struct stun_msg *m)
{
	struct punch_peer p;
	const char *why = NULL;

	assert_int_equal(s->sock, sock);
	assert_addr(&s->to, to);
	decode_ok(m, s->buf, s->len);
	assert_int_equal(m->method, PUNCH_PEER_INFO);
	assert_int_equal(m->cls, STUN_REQUEST);
	assert_true(m->present & STUN_HAS_FINGERPRINT);
	/* PEER-INFO names the peer, not whom the peer wants */
	assert_null(punch_attr_find(m, PUNCH_ATTR_PEER_ID));
	assert_int_equal(punch_peer_parse(&p, m, &why), 0);
	assert_str(p.id, about->id);
	assert_true(p.session == about->session);
	assert_true(p.has_observed);
	assert_addr(&p.observed, about_from);
	assert_size(p.n_cand, about->n_cand);
	for (size_t i = 0; i < p.n_cand; i++) {
		assert_int_equal(p.cand[i].type, about->cand[i].type);
		assert_int_equal(p.cand[i].priority, about->cand[i].priority);
		assert_addr(&p.cand[i].addr, &about->cand[i].addr);
	}
	{
		char ufrag[PUNCH_UFRAG_MAX + 1];

		snprintf(ufrag, sizeof(ufrag), "uf%.20s", about->id);
		assert_str(p.ufrag, ufrag);
	}
	/* the fingerprint of the key the peer proved, computed by the
	 * server, whatever the peer claimed */
	{
		uint8_t pk[32], sk[64], fp[32];

		test_key(about->key, pk, sk, fp);
		assert_true(p.has_key_fp);
		assert_memory_equal(p.key_fp, fp, sizeof(fp));
		/* and signed by the server */
		assert_int_equal(sign_verify(m, s->buf, s->len,
		                             PUNCH_ATTR_SERVER_KEY, pk),
		                 0);
		assert_memory_equal(pk, rdv_server_pk(srv), sizeof(pk));
	}
}

struct pair_fixture {
	struct sockaddr_storage a_from, b_from;
	struct reg_req a, b;
	char a_nonce[33], b_nonce[33];
	struct stun_msg to_a, to_b; /* the PEER-INFO each got */
	size_t i_a, i_b;            /* their index in cap */
};

/* alice registers at T0 on socket 0 over IPv4, bob at T0 + 100 on socket
 * 1 over IPv6; the server introduces them. */
static inline void pair_up(struct pair_fixture *f)
{
	struct result res;
	struct raw r;

	memset(f, 0, sizeof(*f));
	f->a_from = sa_make("198.51.100.1", 40000);
	f->b_from = sa_make("2001:db8:b::2", 50000);
	f->a = req_make("alice", "bob", 0xA11CE);
	f->b = req_make("bob", "alice", 0xB0B);
	f->b.key = 0xBB;
	f->b.cand[0].addr = sa_make("10.0.0.2", 5000);
	f->b.n_cand = 1;

	do_register(&res, &f->a, &f->a_from, T0, f->a_nonce);
	expect_registered(&res, &f->a_from, PUNCH_STATUS_WAITING);
	assert_size(cap.n, 0);

	f->b.nonce = NULL;
	build_register(&r, &f->b);
	feed(&res, 1, r.b, r.len, &f->b_from, T0 + 100);
	expect_438(&res, f->b_nonce);
	f->b.nonce = f->b_nonce;
	fresh_txid(f->b.txid);
	build_register(&r, &f->b);
	feed(&res, 1, r.b, r.len, &f->b_from, T0 + 100);
	expect_registered(&res, &f->b_from, PUNCH_STATUS_PAIRED);
	assert_u64(rdv_stats(srv)->introduced, 1);
	assert_size(cap.n, 2);
	for (size_t i = 0; i < 2; i++) {
		if (cap.s[i].to.ss_family == AF_INET)
			f->i_a = i;
		else
			f->i_b = i;
	}
	assert_true(f->i_a != f->i_b);
	expect_peer_info(&cap.s[f->i_a], 0, &f->a_from, &f->b, &f->b_from,
	                 &f->to_a);
	expect_peer_info(&cap.s[f->i_b], 1, &f->b_from, &f->a, &f->a_from,
	                 &f->to_b);
	assert_u64(cap.s[f->i_a].at, T0 + 100);
	/* two transactions */
	assert_memory_not_equal(f->to_a.txid, f->to_b.txid, STUN_TXID_LEN);
}

static inline void ack(const struct stun_msg *peer_info, uint16_t type,
                       const struct sockaddr_storage *from, uint64_t now)
{
	struct result res;
	struct raw r;

	raw_init(&r, type);
	raw_set_txid(&r, peer_info->txid);
	if (type == T_PEER_INFO_ERR) {
		uint8_t v[8] = { 0, 0, 4, 0, 'n', 'o', 'p', 'e' };

		raw_attr(&r, STUN_ATTR_ERROR_CODE, v, sizeof(v));
	}
	raw_fingerprint(&r);
	feed(&res, 0, r.b, r.len, from, now);
	assert_int_equal(res.verdict, BINDING_IGNORE);
}

#endif
