#include "rendezvous_server.h"

#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "punch_attr.h"
#include "stun.h"

struct pending {
	int used;
	uint8_t txid[STUN_TXID_LEN];
	char to_id[PUNCH_ID_MAX + 1];
	struct sockaddr_storage to;
	int sock;
	uint8_t msg[PUNCH_MSG_MAX];
	size_t len;
	uint64_t next_ms;
	uint32_t rto_ms;
	int sent;
};

struct rdv_server {
	struct registry *reg;
	struct pending pending[RDV_PENDING_MAX];
	uint8_t secret[32];
	rdv_send_fn *send;
	void *ctx;
	struct rdv_stats stats;
	uint64_t next_expire_ms;
};

enum { NONCE_LEN = 32 }; /* 8 hex digits of bucket + 24 of MAC */

struct rdv_server *rdv_server_new(size_t max_entries, rdv_send_fn *send,
                                  void *ctx)
{
	struct rdv_server *rs = calloc(1, sizeof(*rs));

	if (!rs)
		return NULL;
	rs->reg = registry_new(max_entries, REGISTRY_PER_PREFIX_MAX);
	if (!rs->reg ||
	    gnutls_rnd(GNUTLS_RND_KEY, rs->secret, sizeof(rs->secret))) {
		rdv_server_free(rs);
		return NULL;
	}
	rs->send = send;
	rs->ctx = ctx;
	return rs;
}

void rdv_server_free(struct rdv_server *rs)
{
	if (!rs)
		return;
	registry_free(rs->reg);
	gnutls_memset(rs->secret, 0, sizeof(rs->secret));
	free(rs);
}

const struct rdv_stats *rdv_stats(const struct rdv_server *rs)
{
	return &rs->stats;
}

struct registry *rdv_registry(struct rdv_server *rs)
{
	return rs->reg;
}

/* nonce = hex(bucket) || hex(HMAC-SHA256(secret, bucket || address)[0..12]) */
static void nonce_make(const struct rdv_server *rs, uint32_t bucket,
                       const struct sockaddr *from, char out[NONCE_LEN + 1])
{
	uint8_t data[4 + 20], mac[32];
	int n = stun_addr_encode(data + 4, sizeof(data) - 4, from, NULL);

	data[0] = (uint8_t)(bucket >> 24);
	data[1] = (uint8_t)(bucket >> 16);
	data[2] = (uint8_t)(bucket >> 8);
	data[3] = (uint8_t)bucket;
	gnutls_hmac_fast(GNUTLS_MAC_SHA256, rs->secret, sizeof(rs->secret), data,
	                 4 + (size_t)(n > 0 ? n : 0), mac);
	snprintf(out, NONCE_LEN + 1, "%08x", bucket);
	for (int i = 0; i < 12; i++)
		snprintf(out + 8 + 2 * i, 3, "%02x", mac[i]);
}

static int nonce_ok(const struct rdv_server *rs, const struct stun_msg *m,
                    const struct sockaddr *from, uint32_t now_bucket)
{
	char expect[NONCE_LEN + 1], bucket_hex[9];
	uint32_t bucket;
	uint8_t diff = 0;

	if (!(m->present & STUN_HAS_NONCE) || m->nonce.len != NONCE_LEN)
		return 0;
	memcpy(bucket_hex, m->nonce.ptr, 8);
	bucket_hex[8] = '\0';
	if (sscanf(bucket_hex, "%8x", &bucket) != 1)
		return 0;
	if (bucket != now_bucket && bucket + 1 != now_bucket)
		return 0;
	nonce_make(rs, bucket, from, expect);
	for (int i = 0; i < NONCE_LEN; i++)
		diff |= (uint8_t)(expect[i] ^ m->nonce.ptr[i]);
	return diff == 0;
}

static int reply_error(const struct stun_msg *m, uint16_t code,
                       const char *reason, const char *nonce,
                       const uint16_t *unknown, size_t n_unknown,
                       uint8_t *out, size_t cap, struct binding_reply *reply)
{
	struct stun_writer w;
	int n;

	stun_writer_init(&w, out, cap, m->method, STUN_ERROR, m->txid);
	stun_put_error(&w, code, reason);
	if (n_unknown)
		stun_put_unknown(&w, unknown, n_unknown);
	if (nonce)
		stun_put_bytes(&w, STUN_ATTR_NONCE, nonce, strlen(nonce));
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	if (n < 0)
		return BINDING_DROP;
	reply->len = (size_t)n;
	reply->is_error = 1;
	return BINDING_REPLY;
}

static struct pending *pending_slot(struct rdv_server *rs, const char *to_id)
{
	struct pending *best = NULL;

	/* One outstanding PEER-INFO per receiver: a newer one replaces it. */
	for (int i = 0; i < RDV_PENDING_MAX; i++)
		if (rs->pending[i].used && !strcmp(rs->pending[i].to_id, to_id))
			return &rs->pending[i];
	for (int i = 0; i < RDV_PENDING_MAX; i++) {
		struct pending *p = &rs->pending[i];

		if (!p->used)
			return p;
		if (!best || p->sent > best->sent)
			best = p; /* full: evict the one closest to giving up */
	}
	rs->stats.gave_up++;
	return best;
}

static void pending_send(struct rdv_server *rs, struct pending *p,
                         uint64_t now_ms)
{
	rs->send(rs->ctx, p->sock, (const struct sockaddr *)&p->to, p->msg,
	         p->len);
	p->sent++;
	/* RFC 8489 6.2.1: after the last transmission, wait Rm * RTO */
	p->next_ms = now_ms + (p->sent < RDV_RC ? p->rto_ms :
	                       (uint32_t)RDV_RM * RDV_RTO_MS);
	p->rto_ms *= 2;
}

/* Tell `to` about `about` with a PEER-INFO request. */
static void introduce(struct rdv_server *rs, const struct reg_entry *to,
                      const struct reg_entry *about, uint64_t now_ms)
{
	struct pending *p = pending_slot(rs, registry_entry_id(to));
	struct punch_peer info;
	struct stun_writer w;
	int n;

	memset(p, 0, sizeof(*p));
	gnutls_rnd(GNUTLS_RND_NONCE, p->txid, sizeof(p->txid));
	registry_entry_peer(about, &info); /* observed: where it was seen */
	stun_writer_init(&w, p->msg, sizeof(p->msg), PUNCH_PEER_INFO,
	                 STUN_REQUEST, p->txid);
	punch_peer_put(&w, &info, 0);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	if (n < 0) {
		log_warn("cannot build PEER-INFO for %s: %s",
		         registry_entry_id(to), stun_err_str(n));
		return;
	}
	p->used = 1;
	p->len = (size_t)n;
	registry_entry_from(to, &p->to);
	p->sock = registry_entry_sock(to);
	p->rto_ms = RDV_RTO_MS;
	snprintf(p->to_id, sizeof(p->to_id), "%s", registry_entry_id(to));
	pending_send(rs, p, now_ms);
}

static int handle_register(struct rdv_server *rs, int sock,
                           const struct stun_msg *m,
                           const struct sockaddr *from, uint64_t now_ms,
                           uint8_t *out, size_t cap,
                           struct binding_reply *reply)
{
	uint32_t bucket = (uint32_t)(now_ms / 1000 / RDV_NONCE_BUCKET_S);
	const struct reg_entry *self = NULL, *peer = NULL;
	uint16_t unknown[STUN_MAX_UNKNOWN];
	size_t n_unknown = punch_unknown_required(m, unknown);
	char nonce[NONCE_LEN + 1], reason[128], a[ADDR_STRLEN];
	struct punch_peer p;
	const char *why;
	struct stun_writer w;
	int rc, n;

	if (n_unknown)
		return reply_error(m, 420, "Unknown Attribute", NULL, unknown,
		                   n_unknown, out, cap, reply);
	if (!nonce_ok(rs, m, from, bucket)) {
		/* RFC 8489 9.2's Stale Nonce, used as a return-routability
		 * check: only a real source address sees this nonce. */
		nonce_make(rs, bucket, from, nonce);
		return reply_error(m, 438, "Stale Nonce", nonce, NULL, 0, out,
		                   cap, reply);
	}
	if (!punch_peer_parse(&p, m, &why) && !p.peer_id[0])
		why = "peer id missing";
	if (why) {
		snprintf(reason, sizeof(reason), "Bad Request: %s", why);
		rs->stats.rejected++;
		return reply_error(m, 400, reason, NULL, NULL, 0, out, cap,
		                   reply);
	}
	rc = registry_register(rs->reg, &p, from, sock, now_ms, &self, &peer);
	if (rc < 0) {
		uint16_t code = rc == REG_ERR_FULL ? 508 :
		                rc == REG_ERR_KEY ? 403 : 400;

		snprintf(reason, sizeof(reason), "%s: %s",
		         code == 508 ? "Insufficient Capacity" :
		         code == 403 ? "Forbidden" : "Bad Request",
		         registry_result_str(rc));
		rs->stats.rejected++;
		log_debug("register %s -> %s from %s refused: %s", p.id,
		          p.peer_id, addr_str(from, a, sizeof(a)),
		          registry_result_str(rc));
		return reply_error(m, code, reason, NULL, NULL, 0, out, cap,
		                   reply);
	}
	rs->stats.registered++;
	log_debug("register %s -> %s from %s: %s, %zu candidates", p.id,
	          p.peer_id, addr_str(from, a, sizeof(a)),
	          registry_result_str(rc), p.n_cand);
	if (rc == REG_INTRODUCE) {
		rs->stats.introduced++;
		log_debug("introducing %s and %s", registry_entry_id(self),
		          registry_entry_id(peer));
		introduce(rs, self, peer, now_ms);
		introduce(rs, peer, self, now_ms);
	}

	stun_writer_init(&w, out, cap, m->method, STUN_SUCCESS, m->txid);
	stun_put_xor_addr(&w, STUN_ATTR_XOR_MAPPED_ADDRESS, from);
	stun_put_u32(&w, PUNCH_ATTR_STATUS, rc == REG_WAITING ?
	             PUNCH_STATUS_WAITING : PUNCH_STATUS_PAIRED);
	stun_put_u32(&w, PUNCH_ATTR_LIFETIME, REGISTRY_LIFETIME_MS / 1000);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	if (n < 0)
		return BINDING_DROP;
	reply->len = (size_t)n;
	return BINDING_REPLY;
}

int rdv_handle(struct rdv_server *rs, int sock, const uint8_t *buf,
               size_t len, const struct sockaddr *from, uint64_t now_ms,
               uint8_t *out, size_t cap, struct binding_reply *reply,
               const char **why)
{
	struct stun_msg m;
	int rc = stun_decode(&m, buf, len);

	if (rc) {
		*why = stun_err_str(rc);
		return BINDING_DROP;
	}
	memset(reply, 0, sizeof(*reply));
	reply->sock = sock;
	memcpy(&reply->to, from, addr_len(from));
	if (m.cls == STUN_REQUEST && m.method == PUNCH_REGISTER) {
		/* Before any other work, and without an answer: a flood from
		 * one prefix, spoofed or not, costs the server little and
		 * earns its source nothing.  Counted here, not as malformed. */
		if (!registry_admit(rs->reg, from, now_ms)) {
			char a[ADDR_STRLEN];

			rs->stats.rate_limited++;
			log_debug("drop REGISTER from %s: over the rate of its "
			          "prefix", addr_str(from, a, sizeof(a)));
			return BINDING_IGNORE;
		}
		rc = handle_register(rs, sock, &m, from, now_ms, out, cap, reply);
		/* The Binding service's bound holds here too: a bare REGISTER
		 * from a spoofed source must not earn a bigger 438. */
		if (rc == BINDING_REPLY &&
		    reply->len > len * BINDING_AMPLIFICATION_MAX) {
			*why = "answer would exceed the amplification bound";
			return BINDING_DROP;
		}
		return rc;
	}
	if ((m.cls == STUN_SUCCESS || m.cls == STUN_ERROR) &&
	    m.method == PUNCH_PEER_INFO) {
		for (int i = 0; i < RDV_PENDING_MAX; i++) {
			struct pending *p = &rs->pending[i];

			if (p->used && !memcmp(p->txid, m.txid, STUN_TXID_LEN)) {
				log_debug("PEER-INFO acknowledged by %s",
				          p->to_id);
				p->used = 0;
				rs->stats.acked++;
			}
		}
		return BINDING_IGNORE;
	}
	if (m.cls == STUN_REQUEST)
		return reply_error(&m, 400, "Bad Request: unknown method", NULL,
		                   NULL, 0, out, cap, reply);
	return BINDING_IGNORE;
}

uint64_t rdv_tick(struct rdv_server *rs, uint64_t now_ms)
{
	uint64_t next = now_ms + 1000;

	if (now_ms >= rs->next_expire_ms) {
		size_t n = registry_expire(rs->reg, now_ms);

		if (n)
			log_debug("%zu registrations expired", n);
		rs->next_expire_ms = now_ms + 1000;
	}
	for (int i = 0; i < RDV_PENDING_MAX; i++) {
		struct pending *p = &rs->pending[i];

		if (!p->used)
			continue;
		if (p->next_ms <= now_ms) {
			if (p->sent >= RDV_RC) {
				log_debug("PEER-INFO to %s: no answer", p->to_id);
				p->used = 0;
				rs->stats.gave_up++;
				continue;
			}
			pending_send(rs, p, now_ms);
		}
		if (p->next_ms < next)
			next = p->next_ms;
	}
	return next;
}
