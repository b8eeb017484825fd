/*
 * Fuzz harness for punch's rendezvous protocol: the attribute codec
 * (punch_attr.c), the server (rendezvous_server.c, registry.c), and the
 * client side: the connectivity agent and the rendezvous client.
 *
 * For each input:
 *
 *  1. Decode it; parse its punch attributes, write them back out, and parse
 *     that again (c-ares style): both parses must agree.
 *  2. Give it to a fresh rdv_server.  Every reply must decode and stay
 *     small.  A REGISTER answered with 438 is sent again with the NONCE, as
 *     a real client would, so the fuzzer reaches the parser and registry
 *     behind the return-routability check; when it registers, a partner
 *     registers too, and the PEER-INFO requests the server sends must
 *     decode and describe the right peers, through all retransmissions.
 *  3. Give it to a client: an agent that has PEER-INFO (optionally already
 *     connected, with a consent check in flight), and a rendezvous client
 *     waiting for an answer.  Responses get the transaction id of something
 *     outstanding, and MESSAGE-INTEGRITY and FINGERPRINT are recomputed with
 *     the right key, so that the input gets past authentication to the
 *     state machines; rendezvous messages are signed again with the server
 *     key the client has pinned.  Everything they send must decode.
 *  4. Check the signature of the input as it is (sign.c's parser), and
 *     read it as lines of id_bindings and known_servers: a binding that
 *     parses is written back out and parses the same again.
 *
 * The server signs everything: every reply must verify under its key.
 * REGISTERs get past the signature check because the harness signs them
 * again (with a fixed key) when it adds the server's NONCE.
 *
 * Built with libFuzzer (clang -fsanitize=fuzzer) and with replay.c's plain
 * main(), so that ctest replays the committed corpus with any compiler.
 * Nothing here keeps state between inputs (transaction ids and the
 * server's secret are random, but every path the harness takes copies them
 * from the live state).
 */
#include <gnutls/crypto.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "agent.h"
#include "binding.h"
#include "idbind.h"
#include "known_servers.h"
#include "log.h"
#include "punch_attr.h"
#include "rendezvous_client.h"
#include "rendezvous_server.h"
#include "retransmit.h"
#include "sign.h"
#include "stun.h"
#include "fuzz.h"

enum {
	BUF_MAX = 2048,
	T0 = 10 * 60 * 1000, /* ms; any time works, the nonce follows it */
	/* The largest reply the server sends to one datagram: an error with
	 * the longest reason, 16 unknown attributes and a NONCE, or a
	 * success, each with the server's key and signature (104 bytes). */
	RDV_REPLY_MAX = 320,
	LINES_MAX = 64,      /* lines of the input read as a state file */
};

/* The client side's credentials; the seed corpus uses the same ones. */
static const char my_id[] = "fz-id", peer_id[] = "pf-id";
static const char my_ufrag[] = "fz", my_pwd[] = "fuzz-local-password";
static const char peer_ufrag[] = "pf", peer_pwd[] = "fuzz-peer-password";

/* Fixed keys: the clients' (REGISTERs the harness signs) and the server
 * key the client side trusts (the harness signs its messages with it). */
static struct sign_key client_key, server_key;

static void keys_init(void)
{
	static int done;
	uint8_t seed[SIGN_SEED_LEN];

	if (done)
		return;
	memset(seed, 0xC1, sizeof(seed));
	CHECK(sign_key_from_seed(&client_key, seed) == 0);
	memset(seed, 0x5E, sizeof(seed));
	CHECK(sign_key_from_seed(&server_key, seed) == 0);
	done = 1;
}

static int same_addr(const struct sockaddr_storage *a,
                     const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return !memcmp(a, b, sizeof(struct sockaddr_in));
	return !memcmp(a, b, sizeof(struct sockaddr_in6));
}

static struct sockaddr_storage v4(uint32_t ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(ip);
	sin->sin_port = htons(port);
	return ss;
}

static struct sockaddr_storage v6(uint8_t last, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr.s6_addr[0] = 0x20;
	sin6->sin6_addr.s6_addr[1] = 0x01;
	sin6->sin6_addr.s6_addr[2] = 0x0d;
	sin6->sin6_addr.s6_addr[3] = 0xb8;
	sin6->sin6_addr.s6_addr[15] = last;
	sin6->sin6_port = htons(port);
	return ss;
}

/* Every datagram any module sends must be a well-formed STUN message that
 * fits one unfragmented datagram. */
static void check_sent(const uint8_t *buf, size_t len)
{
	struct stun_msg m;

	CHECK(len >= STUN_HEADER_LEN && len <= PUNCH_MSG_MAX);
	CHECK(stun_decode(&m, buf, len) == STUN_OK);
	CHECK(m.present & STUN_HAS_FINGERPRINT);
}

/* ---- 1. the attribute codec ------------------------------------------- */

static void peer_equal(const struct punch_peer *a, const struct punch_peer *b)
{
	CHECK(!strcmp(a->id, b->id) && !strcmp(a->peer_id, b->peer_id));
	CHECK(!strcmp(a->ufrag, b->ufrag) && !strcmp(a->pwd, b->pwd));
	CHECK(a->session == b->session && a->has_key_fp == b->has_key_fp);
	CHECK(!a->has_key_fp ||
	      !memcmp(a->key_fp, b->key_fp, PUNCH_KEY_FP_LEN));
	CHECK(a->has_observed == b->has_observed);
	CHECK(!a->has_observed || same_addr(&a->observed, &b->observed));
	CHECK(a->nat.mapping == b->nat.mapping && a->nat.ports == b->nat.ports &&
	      a->nat.delta == b->nat.delta);
	CHECK(a->n_cand == b->n_cand);
	for (size_t i = 0; i < a->n_cand; i++) {
		CHECK(a->cand[i].type == b->cand[i].type);
		CHECK(a->cand[i].priority == b->cand[i].priority);
		CHECK(same_addr(&a->cand[i].addr, &b->cand[i].addr));
	}
}

static void codec(const struct stun_msg *m)
{
	static uint8_t out[BUF_MAX];
	uint16_t unknown[STUN_MAX_UNKNOWN];
	struct punch_peer p, q;
	struct stun_writer w;
	struct stun_msg m2;
	const char *why;
	int n;

	CHECK(punch_unknown_required(m, unknown) <= m->unknown_required_count);
	if (punch_peer_parse(&p, m, &why)) {
		CHECK(why != NULL);
		return;
	}
	CHECK(why == NULL);
	CHECK(p.id[0] && p.n_cand <= PUNCH_CANDIDATES_MAX);
	CHECK(!punch_id_check((const uint8_t *)p.id, strlen(p.id)));
	stun_writer_init(&w, out, sizeof(out), m->method, m->cls, m->txid);
	punch_peer_put(&w, &p, p.peer_id[0] != '\0');
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	CHECK(n > 0 && n <= PUNCH_MSG_MAX);
	CHECK(stun_decode(&m2, out, (size_t)n) == STUN_OK);
	CHECK(punch_peer_parse(&q, &m2, &why) == 0);
	peer_equal(&p, &q);
}

/* ---- 2. the server ------------------------------------------------------ */

struct srv_ctx {
	size_t sent;
	uint8_t first_txid[STUN_TXID_LEN];
	char to_about[2][PUNCH_ID_MAX + 1]; /* whom each PEER-INFO describes */
	struct sockaddr_storage to[2];
	size_t n_info;
};

static void srv_send(void *ctx, int sock, const struct sockaddr *to,
                     const uint8_t *buf, size_t len)
{
	struct srv_ctx *c = ctx;
	struct punch_peer p;
	struct stun_msg m;
	const char *why;

	CHECK(sock == 0 || sock == 1);
	check_sent(buf, len);
	CHECK(stun_decode(&m, buf, len) == STUN_OK);
	CHECK(m.cls == STUN_REQUEST && m.method == PUNCH_PEER_INFO);
	{
		uint8_t pk[SIGN_PK_LEN];

		CHECK(sign_verify(&m, buf, len, PUNCH_ATTR_SERVER_KEY, pk) ==
		      SIGN_OK);
	}
	CHECK(punch_peer_parse(&p, &m, &why) == 0);
	CHECK(p.has_observed);
	if (c->n_info < 2) {
		memcpy(c->to_about[c->n_info], p.id, sizeof(p.id));
		memset(&c->to[c->n_info], 0, sizeof(c->to[0]));
		memcpy(&c->to[c->n_info], to,
		       to->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
		                                   sizeof(struct sockaddr_in));
		if (!c->n_info)
			memcpy(c->first_txid, m.txid, STUN_TXID_LEN);
		c->n_info++;
	}
	c->sent++;
}

/* Run one datagram through the server and check its reply.  Returns the
 * verdict; the reply is decoded into *r. */
static int serve(struct rdv_server *rs, int sock, const uint8_t *buf,
                 size_t len, const struct sockaddr_storage *from,
                 uint64_t now, uint8_t *out, struct stun_msg *r)
{
	struct binding_reply reply;
	const char *why = NULL;
	int v = rdv_handle(rs, sock, buf, len, (const struct sockaddr *)from,
	                   now, out, BUF_MAX, &reply, &why);

	if (v == BINDING_DROP) {
		CHECK(why != NULL);
		return v;
	}
	CHECK(v == BINDING_IGNORE || v == BINDING_REPLY);
	if (v == BINDING_IGNORE)
		return v;
	CHECK(reply.len <= RDV_REPLY_MAX);
	CHECK(reply.sock == sock && same_addr(&reply.to, from));
	check_sent(out, reply.len);
	CHECK(stun_decode(r, out, reply.len) == STUN_OK);
	CHECK(r->cls == (reply.is_error ? STUN_ERROR : STUN_SUCCESS));
	if (r->method == PUNCH_RENEW) {
		/* RENEW's answers: no signature; a success has the MAC */
		CHECK(!punch_attr_find(r, PUNCH_ATTR_SIGNATURE));
		CHECK(r->cls == STUN_ERROR ||
		      (r->present & STUN_HAS_INTEGRITY_SHA256));
	} else {
		uint8_t pk[SIGN_PK_LEN];

		CHECK(sign_verify(r, out, reply.len, PUNCH_ATTR_SERVER_KEY,
		                  pk) == SIGN_OK);
		CHECK(!memcmp(pk, rdv_server_pk(rs), SIGN_PK_LEN));
	}
	CHECK(!memcmp(r->txid, buf + 8, STUN_TXID_LEN));
	return v;
}

static int is_438(int v, const struct stun_msg *r)
{
	return v == BINDING_REPLY && r->cls == STUN_ERROR &&
	       r->error_code == 438 && (r->present & STUN_HAS_NONCE);
}

/* The same request with the server's NONCE in place of any it had. */
static size_t add_nonce(uint8_t *out, const struct stun_msg *m,
                        const struct stun_bytes *nonce)
{
	struct stun_writer w;
	int n;

	stun_writer_init(&w, out, BUF_MAX, m->method, m->cls, m->txid);
	for (size_t i = 0; i < m->attrs_count; i++) {
		uint16_t t = m->attrs[i].type;

		if (t == STUN_ATTR_NONCE || t == STUN_ATTR_FINGERPRINT ||
		    t == STUN_ATTR_MESSAGE_INTEGRITY ||
		    t == STUN_ATTR_MESSAGE_INTEGRITY_SHA256 ||
		    t == PUNCH_ATTR_PUBKEY || t == PUNCH_ATTR_SIGNATURE)
			continue;
		stun_put_bytes(&w, t, m->attrs[i].value, m->attrs[i].len);
	}
	stun_put_bytes(&w, STUN_ATTR_NONCE, nonce->ptr, nonce->len);
	sign_put(&w, PUNCH_ATTR_PUBKEY, &client_key);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	return n > 0 ? (size_t)n : 0;
}

/* Register `id` wanting `want` from `from`, doing the nonce dance. */
static int partner_register(struct rdv_server *rs, const char *id,
                            const char *want,
                            const struct sockaddr_storage *from)
{
	static uint8_t req[BUF_MAX], out[BUF_MAX], req2[BUF_MAX], out2[BUF_MAX];
	static const uint8_t txid[STUN_TXID_LEN] = "partner-txid";
	struct punch_peer p;
	struct stun_writer w;
	struct stun_msg q, r, r2;
	int n, v;

	memset(&p, 0, sizeof(p));
	memcpy(p.id, id, strlen(id) + 1);
	memcpy(p.peer_id, want, strlen(want) + 1);
	memcpy(p.ufrag, "pu", 3);
	memcpy(p.pwd, "pp", 3);
	p.session = 1;
	p.cand[0].type = CAND_HOST;
	p.cand[0].priority = 1;
	p.cand[0].addr = *from;
	p.n_cand = 1;
	stun_writer_init(&w, req, sizeof(req), PUNCH_REGISTER, STUN_REQUEST,
	                 txid);
	punch_peer_put(&w, &p, 1);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	CHECK(n > 0);
	v = serve(rs, 1, req, (size_t)n, from, T0, out, &r);
	CHECK(is_438(v, &r));
	CHECK(stun_decode(&q, req, (size_t)n) == STUN_OK);
	n = (int)add_nonce(req2, &q, &r.nonce);
	CHECK(n > 0);
	v = serve(rs, 1, req2, (size_t)n, from, T0, out2, &r2);
	CHECK(v == BINDING_REPLY);
	return r2.cls == STUN_SUCCESS;
}

/* A RENEW under the key of the success r (docs/protocol.md, "RENEW"):
 * renewed, and answered under the same key. */
static void renew_once(struct rdv_server *rs, const struct punch_peer *p,
                       const struct stun_msg *r,
                       const struct sockaddr_storage *from)
{
	static uint8_t req[BUF_MAX], out[BUF_MAX];
	static const uint8_t txid[STUN_TXID_LEN] = "renew-txid-1";
	const struct stun_attr *k = punch_attr_find(r, PUNCH_ATTR_RENEW_KEY);
	uint8_t key[PUNCH_RENEW_KEY_LEN], s[8];
	struct stun_writer w;
	struct stun_msg a;
	int n;

	CHECK(k && k->len == PUNCH_RENEW_KEY_LEN);
	memcpy(key, k->value, sizeof(key));
	for (int i = 0; i < 8; i++)
		s[i] = (uint8_t)(p->session >> (56 - 8 * i));
	stun_writer_init(&w, req, sizeof(req), PUNCH_RENEW, STUN_REQUEST, txid);
	stun_put_bytes(&w, PUNCH_ATTR_ID, p->id, strlen(p->id));
	stun_put_bytes(&w, PUNCH_ATTR_SESSION, s, sizeof(s));
	stun_put_u32(&w, PUNCH_ATTR_RENEW_SEQ, 1);
	stun_put_integrity_sha256(&w, key, sizeof(key));
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	CHECK(n > 0);
	CHECK(serve(rs, 0, req, (size_t)n, from, T0 + 2, out, &a) ==
	      BINDING_REPLY);
	CHECK(a.cls == STUN_SUCCESS);
	n = 20 + (out[2] << 8 | out[3]); /* the header's length */
	CHECK(stun_check_integrity(&a, out, (size_t)n, key, sizeof(key)) ==
	      STUN_OK);
}

static void server(const uint8_t *data, size_t size)
{
	static uint8_t out[BUF_MAX], req[BUF_MAX], out2[BUF_MAX], ack[BUF_MAX];
	const struct sockaddr_storage from = v4(0xC0000201, 40000);
	const struct sockaddr_storage partner = v6(2, 50000);
	struct srv_ctx ctx;
	struct rdv_server *rs;
	struct stun_msg q, r, r2;
	struct punch_peer p;
	const char *why;
	size_t n;
	int v;

	/* A first datagram cannot change a server's state: registering
	 * needs a nonce from this very server, and nothing is pending to be
	 * answered.  So one long-lived server takes first datagrams, and only
	 * a REGISTER that gets as far as the nonce check gets a fresh one
	 * (an rdv_server is over 1 MB). */
	static struct srv_ctx idle_ctx;
	static struct rdv_server *idle;

	if (!idle) {
		CHECK((idle = rdv_server_new(8, srv_send, &idle_ctx)) != NULL);
		/* every input comes from one source: no REGISTER rate */
		registry_set_rate(rdv_registry(idle), 0, 0);
	}
	v = serve(idle, 0, data, size, &from, T0, out, &r);
	CHECK(idle_ctx.sent == 0 && registry_count(rdv_registry(idle)) == 0);
	if (!is_438(v, &r) || stun_decode(&q, data, size) != STUN_OK)
		return;
	memset(&ctx, 0, sizeof(ctx));
	rs = rdv_server_new(8, srv_send, &ctx);
	CHECK(rs != NULL);
	v = serve(rs, 0, data, size, &from, T0, out, &r);
	CHECK(is_438(v, &r));
	/* the nonce dance */
	n = add_nonce(req, &q, &r.nonce);
	if (!n)
		goto out;
	v = serve(rs, 0, req, n, &from, T0, out2, &r2);
	if (v != BINDING_REPLY)
		goto out; /* the NONCE made it too big (too many attributes) */
	CHECK(!is_438(v, &r2));
	if (r2.cls != STUN_SUCCESS)
		goto out;
	CHECK(stun_decode(&q, req, n) == STUN_OK);
	if (q.method == PUNCH_RELEASE)
		goto out; /* released (nothing was bound): nothing more */
	/* it registered: it must have been a good registration, bound to
	 * the key that signed it, whatever fingerprint it claimed */
	CHECK(punch_peer_parse(&p, &q, &why) == 0 && p.peer_id[0]);
	CHECK(strcmp(p.id, p.peer_id));
	{
		const struct reg_entry *e = registry_find(rdv_registry(rs), p.id);
		struct punch_peer held;
		uint8_t fp[SIGN_FP_LEN];

		CHECK(e != NULL);
		registry_entry_peer(e, &held);
		CHECK(held.has_key_fp);
		sign_fp(client_key.pk, fp);
		CHECK(!memcmp(held.key_fp, fp, SIGN_FP_LEN));
		CHECK(idbind_check(rdv_idbind(rs), p.id, fp, 0) == IDBIND_OK);
	}
	/* a refresh changes nothing */
	v = serve(rs, 0, req, n, &from, T0 + 1, out2, &r2);
	CHECK(v == BINDING_REPLY && r2.cls == STUN_SUCCESS);
	CHECK(ctx.sent == 0);
	renew_once(rs, &p, &r2, &from);
	/* its peer comes (nothing can refuse it: one id is taken, of 8):
	 * both are introduced */
	CHECK(partner_register(rs, p.peer_id, p.id, &partner));
	CHECK(ctx.n_info == 2 && ctx.sent == 2);
	for (int i = 0; i < 2; i++) {
		const struct sockaddr_storage *to =
			ctx.to[i].ss_family == AF_INET ? &from : &partner;

		CHECK(same_addr(&ctx.to[i], to));
		CHECK(!strcmp(ctx.to_about[i], to == &from ? p.peer_id : p.id));
	}
	/* one side answers, the other never does: one transmission to the
	 * first, RTX_RC to the other */
	{
		struct stun_writer w;
		int k;

		stun_writer_init(&w, ack, sizeof(ack), PUNCH_PEER_INFO,
		                 STUN_SUCCESS, ctx.first_txid);
		stun_put_fingerprint(&w);
		k = stun_writer_finish(&w);
		CHECK(k > 0);
		v = serve(rs, 0, ack, (size_t)k, &from, T0 + 2, out2, &r2);
		CHECK(v == BINDING_IGNORE && rdv_stats(rs)->acked == 1);
	}
	for (uint64_t t = T0 + 2; t < T0 + 120000;)
		t = rdv_tick(rs, t);
	CHECK(ctx.sent == 1 + RTX_RC);
	CHECK(rdv_stats(rs)->gave_up == 1);
	/* everything expired */
	CHECK(registry_count(rdv_registry(rs)) == 0);
out:
	rdv_server_free(rs);
}

/* ---- 3. the client ------------------------------------------------------ */

struct cli {
	struct agent a;
	struct rdv_client rc;
	struct sockaddr_storage server;
	uint64_t now;
	size_t sent;
};

static void agent_send(void *ctx, int sock, const struct sockaddr *to,
                       const uint8_t *buf, size_t len, int ttl)
{
	struct cli *c = ctx;

	CHECK(sock >= 0 && sock < AGENT_SOCKETS && c->a.have_sock[sock]);
	CHECK(to->sa_family == (sock ? AF_INET6 : AF_INET));
	CHECK(ttl == 0 || ttl == AGENT_OPEN_TTL);
	check_sent(buf, len);
	c->sent++;
}

static void rdvc_send(void *ctx, const struct sockaddr *to,
                      const uint8_t *buf, size_t len)
{
	struct cli *c = ctx;

	CHECK(to->sa_family == AF_INET);
	check_sent(buf, len);
	c->sent++;
}

static void on_rdvc(void *ctx, int event, const void *arg)
{
	struct cli *c = ctx;

	switch (event) {
	case RDVC_EV_DISCOVERED:
		rdvc_register(&c->rc, c->now);
		break;
	case RDVC_EV_PEER_INFO: {
		const struct punch_peer *p = arg;

		CHECK(!strcmp(p->id, peer_id));
		/* as client.c does: a new session starts the checks over */
		agent_set_remote(&c->a, p, c->now);
		break;
	}
	case RDVC_EV_REFUSED:
		CHECK(arg != NULL && strlen(arg) < STUN_MAX_REASON + 32);
		break;
	default:
		break;
	}
}

/* Recompute MESSAGE-INTEGRITY(-SHA256) with key, and FINGERPRINT, of buf,
 * whose attributes lie where m (decoded from base) says. */
static void resign(uint8_t *buf, const uint8_t *base, const struct stun_msg *m,
                   const char *key)
{
	uint8_t tmp[BUF_MAX], mac[32];

	for (size_t i = 0; i < m->attrs_count; i++) {
		const struct stun_attr *a = &m->attrs[i];
		size_t off = (size_t)(a->value - base) - 4;
		gnutls_mac_algorithm_t alg;

		if (a->type == STUN_ATTR_MESSAGE_INTEGRITY &&
		    (m->present & STUN_HAS_INTEGRITY) &&
		    off == m->integrity_offset)
			alg = GNUTLS_MAC_SHA1;
		else if (a->type == STUN_ATTR_MESSAGE_INTEGRITY_SHA256 &&
		         (m->present & STUN_HAS_INTEGRITY_SHA256) &&
		         off == m->integrity_sha256_offset)
			alg = GNUTLS_MAC_SHA256;
		else if (a->type == STUN_ATTR_FINGERPRINT) {
			uint32_t crc = (uint32_t)crc32(0, buf, (uInt)off) ^
			               STUN_FINGERPRINT_XOR;

			buf[off + 4] = (uint8_t)(crc >> 24);
			buf[off + 5] = (uint8_t)(crc >> 16);
			buf[off + 6] = (uint8_t)(crc >> 8);
			buf[off + 7] = (uint8_t)crc;
			continue;
		} else {
			continue;
		}
		memcpy(tmp, buf, off);
		tmp[2] = (uint8_t)((off + 4 + a->len - STUN_HEADER_LEN) >> 8);
		tmp[3] = (uint8_t)(off + 4 + a->len - STUN_HEADER_LEN);
		gnutls_hmac_fast(alg, key, strlen(key), tmp, off, mac);
		memcpy(buf + off + 4, mac, a->len);
	}
}

/* buf (decoded in m) with its signature replaced by the server key's;
 * returns the new length, or 0 if it no longer fits. */
static size_t server_sign(uint8_t *buf, const struct stun_msg *m)
{
	static uint8_t out[BUF_MAX];
	struct stun_writer w;
	int n;

	stun_writer_init(&w, out, sizeof(out), m->method, m->cls, m->txid);
	for (size_t i = 0; i < m->attrs_count; i++) {
		uint16_t t = m->attrs[i].type;

		if (t == STUN_ATTR_FINGERPRINT || t == PUNCH_ATTR_SERVER_KEY ||
		    t == PUNCH_ATTR_SIGNATURE)
			continue;
		stun_put_bytes(&w, t, m->attrs[i].value, m->attrs[i].len);
	}
	sign_put(&w, PUNCH_ATTR_SERVER_KEY, &server_key);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	if (n <= 0)
		return 0;
	memcpy(buf, out, (size_t)n);
	return (size_t)n;
}

static struct punch_peer the_peer(void)
{
	struct punch_peer p;

	memset(&p, 0, sizeof(p));
	memcpy(p.id, peer_id, sizeof(peer_id));
	memcpy(p.peer_id, my_id, sizeof(my_id));
	memcpy(p.ufrag, peer_ufrag, sizeof(peer_ufrag));
	memcpy(p.pwd, peer_pwd, sizeof(peer_pwd));
	p.session = 7;
	p.cand[0] = (struct punch_candidate){ CAND_HOST, 0x7EFFFEFF,
		                              v4(0x0A000002, 5000) };
	p.cand[1] = (struct punch_candidate){ CAND_HOST, 0x7EFFFFFF,
		                              v6(2, 5000) };
	p.cand[2] = (struct punch_candidate){ CAND_SRFLX, 0x64FFFFFF,
		                              v4(0xCB007102, 6000) };
	p.n_cand = 3;
	p.observed = v4(0xCB007102, 6001);
	p.has_observed = 1;
	return p;
}

/* A message from the peer's side: `buf` signed with `key`. */
static void to_agent(struct cli *c, const uint8_t *buf, size_t len,
                     const struct sockaddr_storage *from)
{
	struct stun_msg m;

	CHECK(stun_decode(&m, buf, len) == STUN_OK);
	agent_on_stun(&c->a, from->ss_family == AF_INET6,
	              (const struct sockaddr *)from, buf, len, &m, c->now);
}

/* Get the agent to CONNECTED the honest way: the best pair's check is
 * answered, and the nomination too (controlling), or the peer nominates
 * it (controlled). */
static void connect_agent(struct cli *c)
{
	uint8_t buf[256];
	struct stun_writer w;
	int best = 0, n;
	const struct punch_candidate *r;

	for (size_t i = 1; i < c->a.n_pairs; i++)
		if (c->a.pairs[i].priority > c->a.pairs[best].priority)
			best = (int)i;
	r = &c->a.remote[c->a.pairs[best].remote];
	for (int round = 0; round < 2; round++) {
		stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING,
		                 STUN_SUCCESS, c->a.pairs[best].txid);
		stun_put_integrity(&w, (const uint8_t *)peer_pwd,
		                   strlen(peer_pwd));
		stun_put_fingerprint(&w);
		n = stun_writer_finish(&w);
		CHECK(n > 0);
		to_agent(c, buf, (size_t)n, &r->addr);
		if (!c->a.controlling)
			break;
		agent_tick(&c->a, c->now); /* nominates */
	}
	if (!c->a.controlling) {
		static const uint8_t txid[STUN_TXID_LEN] = "nominate-you";
		char user[16];

		memcpy(user, my_ufrag, sizeof(my_ufrag) - 1);
		user[sizeof(my_ufrag) - 1] = ':';
		memcpy(user + sizeof(my_ufrag), peer_ufrag, sizeof(peer_ufrag));
		stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING,
		                 STUN_REQUEST, txid);
		stun_put_bytes(&w, STUN_ATTR_USERNAME, user, strlen(user));
		stun_put_bytes(&w, STUN_ATTR_USE_CANDIDATE, NULL, 0);
		stun_put_integrity(&w, (const uint8_t *)my_pwd, strlen(my_pwd));
		stun_put_fingerprint(&w);
		n = stun_writer_finish(&w);
		CHECK(n > 0);
		to_agent(c, buf, (size_t)n, &r->addr);
	}
	CHECK(c->a.state == AGENT_STATE_CONNECTED);
}

struct target {
	const uint8_t *txid;
	const char *key;
};

static void check_invariants(const struct cli *c)
{
	CHECK(c->a.n_remote <= AGENT_REMOTE_MAX &&
	      c->a.n_pairs <= AGENT_PAIRS_MAX);
	for (size_t i = 0; i < c->a.n_pairs; i++)
		CHECK(c->a.pairs[i].remote >= 0 &&
		      (size_t)c->a.pairs[i].remote < c->a.n_remote);
	CHECK(c->a.state >= AGENT_STATE_IDLE && c->a.state <= AGENT_STATE_GONE);
	if (c->a.state == AGENT_STATE_CONNECTED)
		CHECK(c->a.selected >= 0 &&
		      (size_t)c->a.selected < c->a.n_pairs);
}

static void client(const uint8_t *data, size_t size, const struct stun_msg *m0)
{
	static struct cli c;
	static uint8_t buf[BUF_MAX];
	struct punch_peer self, peer = the_peer();
	struct target targets[AGENT_PAIRS_MAX + 3];
	uint8_t mode = m0->txid[10], sel = m0->txid[11];
	const char *key = my_pwd;
	struct sockaddr_storage from;
	struct stun_msg m;
	size_t n_targets = 0;

	if (size > sizeof(buf))
		return;
	memset(&c, 0, sizeof(c));
	c.now = T0;
	c.server = v4(0xC000020A, 3478);

	agent_init(&c.a, mode & 1, my_ufrag, my_pwd, agent_send, &c);
	agent_set_socket(&c.a, 0, 0x7EFFFEFF);
	agent_set_socket(&c.a, 1, 0x7EFFFFFF);
	c.a.natted = (mode & 8) != 0;
	memset(&self, 0, sizeof(self));
	memcpy(self.id, my_id, sizeof(my_id));
	memcpy(self.peer_id, peer_id, sizeof(peer_id));
	memcpy(self.ufrag, my_ufrag, sizeof(my_ufrag));
	memcpy(self.pwd, my_pwd, sizeof(my_pwd));
	self.session = 5;
	rdvc_init(&c.rc, (const struct sockaddr *)&c.server, &self, rdvc_send,
	          on_rdvc, &c);
	rdvc_set_key(&c.rc, &client_key);
	{
		uint8_t fp[SIGN_FP_LEN];

		sign_fp(server_key.pk, fp);
		rdvc_pin_server(&c.rc, fp);
	}

	agent_set_remote(&c.a, &peer, c.now);
	agent_tick(&c.a, c.now);
	c.now += AGENT_OPEN_DELAY_MS;
	agent_tick(&c.a, c.now);
	if (mode & 2) {
		connect_agent(&c);
		if (mode & 16) {
			c.now += AGENT_CONSENT_MS * 2;
			agent_tick(&c.a, c.now); /* a consent check in flight */
		}
	}
	if (mode & 4) {
		rdvc_start(&c.rc, c.now);
	} else {
		c.rc.state = RDVC_DISCOVERED;
		rdvc_register(&c.rc, c.now);
	}

	/* What could the input be an answer to? */
	for (size_t i = 0; i < c.a.n_pairs; i++)
		targets[n_targets++] =
			(struct target){ c.a.pairs[i].txid, peer_pwd };
	if (c.a.consent_pending)
		targets[n_targets++] =
			(struct target){ c.a.consent_txid, peer_pwd };
	if (c.rc.busy)
		targets[n_targets++] = (struct target){ c.rc.txid, peer_pwd };

	memcpy(buf, data, size);
	if (m0->cls == STUN_SUCCESS || m0->cls == STUN_ERROR) {
		/* high bit of the last txid byte: keep the txid as it is */
		if (!(sel & 0x80) && n_targets) {
			const struct target *t = &targets[sel % n_targets];

			memcpy(buf + 8, t->txid, STUN_TXID_LEN);
			key = t->key;
		} else {
			key = peer_pwd;
		}
	}
	/* bit 6 of the last txid byte: keep the input's own MACs (which
	 * then fail, unless the txid was kept too) */
	if (!(sel & 0x40))
		resign(buf, data, m0, key);
	if (stun_decode(&m, buf, size) != STUN_OK) {
		CHECK(sel & 0x40); /* a new txid breaks the old FINGERPRINT */
		return;
	}
	/* the rendezvous: signed again by the pinned server key */
	if (!(sel & 0x40) && punch_method_is_rendezvous(m.method)) {
		size = server_sign(buf, &m);
		if (!size || stun_decode(&m, buf, size) != STUN_OK)
			return;
	}

	/* from the peer: one of its candidates, or an address it did not
	 * list (peer-reflexive) */
	from = (mode & 32) ? v4(0xC6336363, 7000) :
	                     peer.cand[(mode >> 6) % peer.n_cand].addr;
	if (mode & 32 && (mode & 64))
		from = v6(99, 7000);
	to_agent(&c, buf, size, &from);
	/* and from the server */
	rdvc_on_stun(&c.rc, buf, size, &m, c.now);
	check_invariants(&c);

	/* let the consequences play out */
	for (int i = 0; i < 4; i++) {
		c.now += i < 2 ? 1 : 20000;
		agent_tick(&c.a, c.now);
		rdvc_tick(&c.rc, c.now);
		check_invariants(&c);
	}
}

/* ---- 4. signatures as they come, and the state files' lines ------------ */

static void signature(const uint8_t *data, size_t size,
                      const struct stun_msg *m)
{
	uint8_t pk[SIGN_PK_LEN];
	int rc = sign_verify(m, data, size, PUNCH_ATTR_PUBKEY, pk);

	CHECK(rc <= SIGN_OK && rc >= SIGN_ERR_BAD);
	rc = sign_verify(m, data, size, PUNCH_ATTR_SERVER_KEY, pk);
	CHECK(rc <= SIGN_OK && rc >= SIGN_ERR_BAD);
}

static void lines(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char id[PUNCH_ID_MAX + 1], id2[PUNCH_ID_MAX + 1];
	char name[KNOWN_SERVER_NAME_MAX + 1], out[IDBIND_LINE_MAX];
	uint8_t fp[PUNCH_KEY_FP_LEN], fp2[PUNCH_KEY_FP_LEN];
	uint64_t last, last2;

	for (int i = 0; i < LINES_MAX && p < end; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl : end) - p);
		int rc = idbind_parse_line(p, len, id, fp, &last);

		CHECK(rc >= -1 && rc <= 1);
		if (rc == 1) {
			int n = idbind_format_line(out, sizeof(out), id, fp, last);

			CHECK(n > 0 && out[n - 1] == '\n');
			CHECK(idbind_parse_line(out, (size_t)n - 1, id2, fp2,
			                        &last2) == 1);
			CHECK(!strcmp(id, id2) && last == last2 &&
			      !memcmp(fp, fp2, sizeof(fp)));
		}
		rc = known_servers_parse_line(p, len, name, fp);
		CHECK(rc >= -1 && rc <= 1);
		CHECK(rc != 1 || (name[0] && strlen(name) <= KNOWN_SERVER_NAME_MAX));
		p += len + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stun_msg m;

	log_set_level(LOG_ERROR);
	keys_init();
	lines(data, size);
	if (stun_decode(&m, data, size) == STUN_OK) {
		signature(data, size, &m);
		codec(&m);
		client(data, size, &m);
	}
	server(data, size);
	return 0;
}
