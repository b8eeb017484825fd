#include "rendezvous_server.h"

#include <gnutls/crypto.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "identity.h"
#include "log.h"
#include "punch_attr.h"
#include "registry_store.h"
#include "retransmit.h"
#include "rnd.h"
#include "stun.h"
#include "turn_server.h"

struct pending {
	int used;
	uint8_t txid[STUN_TXID_LEN];
	char to_id[PUNCH_ID_MAX + 1];
	struct sockaddr_storage to;
	int sock;
	uint8_t msg[PUNCH_MSG_MAX];
	size_t len;
	struct rtx rtx;
};

struct rdv_server {
	struct registry *reg;
	const struct reg_store_ops *store_ops; /* registry_store.h */
	void *store;
	struct pending pending[RDV_PENDING_MAX];
	/* Beside the table, small and together, so that the walks of every
	 * PEER-INFO, answer and tick read 8 KB and not a slot (1.7 KB) each:
	 * pend_key[i] 0 if slot i is free, else pending_key() of its to_id;
	 * pend_tx[i] the first 4 bytes of its transaction id. */
	uint32_t pend_key[RDV_PENDING_MAX], pend_tx[RDV_PENDING_MAX];
	uint8_t secret[32];
	uint8_t renew_secret[crypto_generichash_KEYBYTES]; /* renew_key() */
	rdv_send_fn *send;
	void *ctx;
	struct rdv_stats stats;
	uint64_t next_expire_ms;
	struct sign_key key;      /* the server's own */
	struct idbind *ids;
	uint64_t wall_base_s;
	uint64_t next_unbind_ms;
	uint8_t relay_secret[256]; /* relay_secret_len 0: no relay */
	size_t relay_secret_len;
};

enum { NONCE_LEN = 32 }; /* 8 hex digits of bucket + 24 of MAC */

static void on_expire(void *ctx, const struct reg_entry *e)
{
	struct rdv_server *rs = ctx;

	rs->stats.expired++;
	rdv_log_expired(e);
}

/* Count a refusal and tell the story; the reply is built by the caller. */
static void refused(struct rdv_server *rs, int refusal, unsigned code,
                    const char *id, const char *peer_id,
                    const struct sockaddr *from, const char *reason)
{
	rs->stats.refused[refusal]++;
	rs->stats.rejected++;
	rdv_log_refused(id, peer_id, from, code, reason);
}

/* Which kind of registration p is, before the registry takes it. */
static enum rdv_reg_kind reg_kind(const struct rdv_server *rs,
                                  const struct punch_peer *p,
                                  const struct sockaddr *from,
                                  struct sockaddr_storage *was)
{
	const struct reg_entry *e = registry_find(rs->reg, p->id);

	memset(was, 0, sizeof(*was));
	if (!e)
		return RDV_REG_NEW;
	registry_entry_from(e, was);
	if (registry_entry_session(e) != p->session)
		return RDV_REG_RESTART;
	if (!addr_equal((const struct sockaddr *)was, from))
		return RDV_REG_MOVED;
	return RDV_REG_REFRESH;
}

struct rdv_server *rdv_server_new(size_t max_entries, rdv_send_fn *send,
                                  void *ctx)
{
	struct rdv_server *rs = calloc(1, sizeof(*rs));

	if (!rs)
		return NULL;
	/* The pending table is the server's fixed memory: take its pages now
	 * (a write the compiler keeps), so that RSS does not move later when
	 * rdv_tick() first walks it (some kernels back even read faults). */
	sodium_memzero(rs->pending, sizeof(rs->pending));
	rs->reg = registry_new(max_entries, REGISTRY_PER_PREFIX_MAX);
	rs->ids = idbind_new(IDBIND_TTL_DEFAULT_S, IDBIND_MAX);
	if (!rs->reg || !rs->ids || sign_key_from_seed(&rs->key, NULL) ||
	    gnutls_rnd(GNUTLS_RND_KEY, rs->secret, sizeof(rs->secret)) ||
	    gnutls_rnd(GNUTLS_RND_KEY, rs->renew_secret,
	               sizeof(rs->renew_secret))) {
		rdv_server_free(rs);
		return NULL;
	}
	rs->send = send;
	rs->ctx = ctx;
	rs->store_ops = &registry_mem_ops;
	rs->store = rs->reg;
	registry_on_expire(rs->reg, on_expire, rs);
	return rs;
}

void rdv_server_free(struct rdv_server *rs)
{
	if (!rs)
		return;
	registry_free(rs->reg);
	idbind_free(rs->ids);
	sign_key_wipe(&rs->key);
	sodium_memzero(rs->relay_secret, sizeof(rs->relay_secret));
	gnutls_memset(rs->secret, 0, sizeof(rs->secret));
	sodium_memzero(rs->renew_secret, sizeof(rs->renew_secret));
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

int rdv_server_set_key(struct rdv_server *rs, const uint8_t seed[SIGN_SEED_LEN])
{
	return sign_key_from_seed(&rs->key, seed);
}

const uint8_t *rdv_server_pk(const struct rdv_server *rs)
{
	return rs->key.pk;
}

struct idbind *rdv_idbind(struct rdv_server *rs)
{
	return rs->ids;
}

void rdv_server_set_id_ttl(struct rdv_server *rs, uint64_t ttl_s)
{
	idbind_set_ttl(rs->ids, ttl_s);
}

void rdv_server_set_wall(struct rdv_server *rs, uint64_t base_s)
{
	rs->wall_base_s = base_s;
}

static uint64_t wall_s(const struct rdv_server *rs, uint64_t now_ms)
{
	return rs->wall_base_s + now_ms / 1000;
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

/* Every answer of the rendezvous: signed by the server, then FINGERPRINT. */
static int reply_finish(const struct rdv_server *rs, struct stun_writer *w,
                        int is_error, struct binding_reply *reply)
{
	int n;

	sign_put(w, PUNCH_ATTR_SERVER_KEY, &rs->key);
	stun_put_fingerprint(w);
	n = stun_writer_finish(w);
	if (n < 0)
		return BINDING_DROP;
	reply->len = (size_t)n;
	reply->is_error = is_error;
	return BINDING_REPLY;
}

static int reply_error(const struct rdv_server *rs, const struct stun_msg *m,
                       uint16_t code,
                       const char *reason, const char *nonce,
                       const uint16_t *unknown, size_t n_unknown,
                       uint8_t *out, size_t cap, struct binding_reply *reply)
{
	struct stun_writer w;

	stun_writer_init(&w, out, cap, m->method, STUN_ERROR, m->txid);
	stun_put_error(&w, code, reason);
	if (n_unknown)
		stun_put_unknown(&w, unknown, n_unknown);
	if (nonce)
		stun_put_bytes(&w, STUN_ATTR_NONCE, nonce, strlen(nonce));
	return reply_finish(rs, &w, 1, reply);
}

/* FNV-1a of an id, never 0: a filter before strcmp(), so that nobody
 * gains by choosing ids that collide (they only cost a strcmp()). */
static uint32_t pending_key(const char *id)
{
	uint32_t h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 16777619u;
	return h | 1;
}

static uint32_t txid_head(const uint8_t *txid)
{
	return (uint32_t)txid[0] << 24 | (uint32_t)txid[1] << 16 |
	       (uint32_t)txid[2] << 8 | txid[3];
}

static void pending_clear(struct rdv_server *rs, struct pending *p)
{
	p->used = 0;
	rs->pend_key[p - rs->pending] = 0;
}

static struct pending *pending_slot(struct rdv_server *rs, const char *to_id)
{
	struct pending *best = NULL;
	uint32_t key = pending_key(to_id);

	/* One outstanding PEER-INFO per receiver: a newer one replaces it. */
	for (int i = 0; i < RDV_PENDING_MAX; i++)
		if (rs->pend_key[i] == key && !strcmp(rs->pending[i].to_id, to_id))
			return &rs->pending[i];
	for (int i = 0; i < RDV_PENDING_MAX; i++)
		if (!rs->pend_key[i])
			return &rs->pending[i];
	for (int i = 0; i < RDV_PENDING_MAX; i++) {
		struct pending *p = &rs->pending[i];

		if (!best || p->rtx.sent > best->rtx.sent)
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
	rtx_sent(&p->rtx, &rtx_stun, now_ms, rnd_u32());
}

/* Tell to_id (at `to` on socket sock) about `about` with a PEER-INFO
 * request; about->observed is where its server saw it. */
static void introduce_peer(struct rdv_server *rs, const char *to_id,
                           const struct sockaddr *to, int sock,
                           const struct punch_peer *about, uint64_t now_ms)
{
	struct pending *p = pending_slot(rs, to_id);
	struct stun_writer w;
	int n;

	pending_clear(rs, p);
	memset(p, 0, sizeof(*p));
	rnd_nonce(p->txid, sizeof(p->txid));
	stun_writer_init(&w, p->msg, sizeof(p->msg), PUNCH_PEER_INFO,
	                 STUN_REQUEST, p->txid);
	punch_peer_put(&w, about, 0);
	sign_put(&w, PUNCH_ATTR_SERVER_KEY, &rs->key);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	if (n < 0) {
		log_warn("cannot build PEER-INFO for %s: %s", to_id,
		         stun_err_str(n));
		return;
	}
	p->used = 1;
	rs->pend_key[p - rs->pending] = pending_key(to_id);
	rs->pend_tx[p - rs->pending] = txid_head(p->txid);
	p->len = (size_t)n;
	memcpy(&p->to, to, addr_len(to));
	p->sock = sock;
	rtx_start(&p->rtx, &rtx_stun, now_ms);
	snprintf(p->to_id, sizeof(p->to_id), "%s", to_id);
	pending_send(rs, p, now_ms);
}

/* Tell `to` about `about`, both registered here. */
static void introduce(struct rdv_server *rs, const struct reg_entry *to,
                      const struct reg_entry *about, uint64_t now_ms)
{
	static struct punch_peer info; /* over 1 KB; one thread */
	struct sockaddr_storage addr;

	registry_entry_peer(about, &info); /* observed: where it was seen */
	registry_entry_from(to, &addr);
	introduce_peer(rs, registry_entry_id(to), (const struct sockaddr *)&addr,
	               registry_entry_sock(to), &info, now_ms);
}

/* Tell `to`, registered here, about a peer registered at another server
 * (registry_store.h), once that peer passes the checks a registration
 * here passes: its value was signed by its key (regval_decode()), and
 * its id may be used by that key.  0, or -1 if refused. */
static int introduce_remote(struct rdv_server *rs, const struct reg_entry *to,
                            const struct punch_peer *about, uint64_t now_ms);

/* What every client request goes through before the server acts on it:
 * comprehension (420), return routability (438), and proof of the key
 * (401).  Returns 0 with the fingerprint of the proven key in fp, or a
 * verdict with the reply made. */
static int request_check(struct rdv_server *rs, const struct stun_msg *m,
                         const uint8_t *buf, size_t len,
                         const struct sockaddr *from, uint64_t now_ms,
                         uint8_t fp[PUNCH_KEY_FP_LEN], uint8_t *out,
                         size_t cap, struct binding_reply *reply)
{
	uint32_t bucket = (uint32_t)(now_ms / 1000 / RDV_NONCE_BUCKET_S);
	uint16_t unknown[STUN_MAX_UNKNOWN];
	size_t n_unknown = punch_unknown_required(m, unknown);
	char nonce[NONCE_LEN + 1], reason[96];
	uint8_t pk[SIGN_PK_LEN];
	int rc;

	if (n_unknown) {
		refused(rs, RDV_REFUSED_UNKNOWN_ATTR, 420, "", "", from,
		        "Unknown Attribute");
		return reply_error(rs, m, 420, "Unknown Attribute", NULL,
		                   unknown, n_unknown, out, cap, reply);
	}
	if (!nonce_ok(rs, m, from, bucket)) {
		/* RFC 8489 9.2's Stale Nonce, used as a return-routability
		 * check: only a real source address sees this nonce.  It
		 * comes before the signature check, which costs more. */
		nonce_make(rs, bucket, from, nonce);
		rs->stats.challenged++;
		rdv_log_challenge(from);
		return reply_error(rs, m, 438, "Stale Nonce", nonce, NULL, 0,
		                   out, cap, reply);
	}
	/* The signature covers the NONCE, which is bound to the source
	 * address: a captured request does not work from anywhere else. */
	if ((rc = sign_verify(m, buf, len, PUNCH_ATTR_PUBKEY, pk))) {
		rs->stats.bad_signature++;
		snprintf(reason, sizeof(reason), "Unauthorized: %s",
		         sign_err_str(rc));
		refused(rs, RDV_REFUSED_SIGNATURE, 401, "", "", from, reason);
		return reply_error(rs, m, 401, reason, NULL, NULL, 0, out, cap,
		                   reply);
	}
	sign_fp(pk, fp);
	return 0;
}

/* May this key use this id?  NULL if so, else the reason for a 403. */
static const char *id_owner_check(const struct rdv_server *rs,
                                  const char *id,
                                  const uint8_t fp[PUNCH_KEY_FP_LEN],
                                  uint64_t now_ms)
{
	uint8_t named[PUNCH_KEY_FP_LEN];

	/* An id in the form `punch id` prints names its only key. */
	if (!strncmp(id, "SHA256:", 7) && !identity_fp_parse(id, named) &&
	    memcmp(named, fp, PUNCH_KEY_FP_LEN))
		return "Forbidden: this id is a key fingerprint, and only that key may use it";
	if (idbind_check(rs->ids, id, fp, wall_s(rs, now_ms)) == IDBIND_OTHER)
		return "Forbidden: this id is bound to another key; its holder can release it with punch release";
	return NULL;
}

/* The key of e's RENEWs (docs/protocol.md, "RENEW"): keyed BLAKE2b of
 * what names this registration, under a secret of this process.  Nothing
 * is stored: each RENEW derives it again, and a registration with a new
 * session or address (a new epoch, registry.h) makes the old key
 * useless. */
static void renew_key(const struct rdv_server *rs, const struct reg_entry *e,
                      uint8_t k[PUNCH_RENEW_KEY_LEN])
{
	static const char label[] = "punch-renew-v1";
	const char *id = registry_entry_id(e);
	uint8_t v[sizeof(label) + 4 + 8 + PUNCH_KEY_FP_LEN + PUNCH_ID_MAX];
	uint32_t epoch = registry_entry_epoch(e);
	uint64_t session = registry_entry_session(e);
	size_t n = sizeof(label), idlen = strlen(id);

	memcpy(v, label, sizeof(label));
	for (int i = 3; i >= 0; i--)
		v[n++] = (uint8_t)(epoch >> (8 * i));
	for (int i = 7; i >= 0; i--)
		v[n++] = (uint8_t)(session >> (8 * i));
	registry_entry_key_fp(e, v + n);
	n += PUNCH_KEY_FP_LEN;
	memcpy(v + n, id, idlen);
	n += idlen;
	crypto_generichash(k, PUNCH_RENEW_KEY_LEN, v, n, rs->renew_secret,
	                   sizeof(rs->renew_secret));
}

/* PUNCH-RENEW-KEY in a REGISTER success: only from the in-memory store,
 * whose table is the registration (a shared registry keeps its TTL in
 * Redis, which a RENEW here would not move). */
static void put_renew_key(const struct rdv_server *rs, struct stun_writer *w,
                          const char *id)
{
	const struct reg_entry *e;
	uint8_t k[PUNCH_RENEW_KEY_LEN];

	if (rs->store_ops != &registry_mem_ops ||
	    !(e = registry_find(rs->reg, id)))
		return;
	renew_key(rs, e, k);
	stun_put_bytes(w, PUNCH_ATTR_RENEW_KEY, k, sizeof(k));
	sodium_memzero(k, sizeof(k));
}

/* PUNCH-RELAY (docs/protocol.md): the username's length in one byte,
 * the username, the password. */
static void put_relay(const struct rdv_server *rs, struct stun_writer *w,
                      const struct punch_peer *p)
{
	char user[TURN_USERNAME_MAX + 1], pass[64];
	uint8_t v[1 + TURN_USERNAME_MAX + sizeof(pass)];
	size_t ulen, plen;

	if (!rs->relay_secret_len ||
	    turn_mint(rs->relay_secret, rs->relay_secret_len, p->id,
	              p->session, user, sizeof(user), pass, sizeof(pass)))
		return;
	ulen = strlen(user);
	plen = strlen(pass);
	v[0] = (uint8_t)ulen;
	memcpy(v + 1, user, ulen);
	memcpy(v + 1 + ulen, pass, plen);
	stun_put_bytes(w, PUNCH_ATTR_RELAY, v, 1 + ulen + plen);
	sodium_memzero(pass, sizeof(pass));
	sodium_memzero(v, sizeof(v));
}

static int reply_success(const struct rdv_server *rs, const struct stun_msg *m,
                         const struct sockaddr *from, int status,
                         const struct punch_peer *p, uint8_t *out, size_t cap,
                         struct binding_reply *reply)
{
	struct stun_writer w;

	stun_writer_init(&w, out, cap, m->method, STUN_SUCCESS, m->txid);
	stun_put_xor_addr(&w, STUN_ATTR_XOR_MAPPED_ADDRESS, from);
	if (status >= 0) {
		stun_put_u32(&w, PUNCH_ATTR_STATUS, (uint32_t)status);
		stun_put_u32(&w, PUNCH_ATTR_LIFETIME,
		             (uint32_t)(registry_lifetime(rs->reg) / 1000));
	}
	if (p) {
		put_relay(rs, &w, p);
		put_renew_key(rs, &w, p->id);
	}
	return reply_finish(rs, &w, 0, reply);
}

/* Has a refresh changed the candidates its peer was told about? */
static int cands_changed(const struct reg_entry *e, const struct punch_peer *p)
{
	static struct punch_peer old; /* over 1 KB; one thread */

	if (!e || registry_entry_session(e) != p->session)
		return 0;
	registry_entry_peer(e, &old);
	if (old.n_cand != p->n_cand)
		return 1;
	for (size_t i = 0; i < p->n_cand; i++)
		if (old.cand[i].type != p->cand[i].type ||
		    !addr_equal((const struct sockaddr *)&old.cand[i].addr,
		                (const struct sockaddr *)&p->cand[i].addr))
			return 1;
	return 0;
}

static int introduce_remote(struct rdv_server *rs, const struct reg_entry *to,
                            const struct punch_peer *about, uint64_t now_ms)
{
	struct sockaddr_storage addr;
	const char *why;

	if (strcmp(about->peer_id, registry_entry_id(to)) ||
	    strcmp(registry_entry_peer_id(to), about->id))
		why = "they are not looking for each other";
	else
		why = id_owner_check(rs, about->id, about->key_fp, now_ms);
	if (why) {
		log_warn("not introducing %s to %s from another server: %s",
		         registry_entry_id(to), about->id, why);
		return -1;
	}
	registry_entry_from(to, &addr);
	introduce_peer(rs, registry_entry_id(to), (const struct sockaddr *)&addr,
	               registry_entry_sock(to), about, now_ms);
	return 0;
}

static void rdv_log_introduced_remote(const struct reg_entry *a,
                                      const struct punch_peer *b)
{
	char x[ADDR_STRLEN], y[ADDR_STRLEN];
	struct sockaddr_storage fa;

	registry_entry_from(a, &fa);
	log_event("Step 4: introduced %s at %s and %s at %s, who registered at another server: PEER-INFO to %s here, and to %s from its server",
	          registry_entry_id(a),
	          addr_str((const struct sockaddr *)&fa, x, sizeof(x)), b->id,
	          addr_str((const struct sockaddr *)&b->observed, y, sizeof(y)),
	          registry_entry_id(a), b->id);
}

int rdv_remote_introduce(struct rdv_server *rs, const char *to_id,
                         const struct punch_peer *about, uint64_t now_ms)
{
	const struct reg_entry *to = registry_find(rs->reg, to_id);
	char a[ADDR_STRLEN];

	if (!to) {
		log_debug("another server introduces %s, who is not registered here",
		          to_id);
		return -1;
	}
	if (introduce_remote(rs, to, about, now_ms))
		return -1;
	log_event("Step 4: introduced %s to %s at %s, who registered at another server: PEER-INFO to %s",
	          to_id, about->id,
	          addr_str((const struct sockaddr *)&about->observed, a,
	                   sizeof(a)),
	          to_id);
	return 0;
}

/* Answer a REGISTER the store has decided on (reg_done_fn): in job->out
 * if it decided at once, else by rs->send. */
static void register_answer(struct rdv_server *rs, struct reg_job *job,
                            int status, uint16_t code, const char *reason)
{
	uint8_t buf[BINDING_RESPONSE_MAX];
	struct binding_reply r, *reply = job->reply ? job->reply : &r;
	uint8_t *out = job->out ? job->out : buf;
	size_t cap = job->out ? job->cap : sizeof(buf);
	struct stun_msg m;

	memset(&m, 0, sizeof(m));
	m.method = PUNCH_REGISTER;
	memcpy(m.txid, job->txid, sizeof(m.txid));
	if (!job->out)
		memset(&r, 0, sizeof(r));
	job->verdict = code ?
	                       reply_error(rs, &m, code, reason, NULL, NULL, 0, out, cap, reply) :
	                       reply_success(rs, &m, (const struct sockaddr *)&job->from,
	                                     status, &job->p, out, cap, reply);
	if (!job->out && job->verdict == BINDING_REPLY)
		rs->send(rs->ctx, job->sock, (const struct sockaddr *)&job->from,
		         out, reply->len);
}

static void register_refused(struct rdv_server *rs, struct reg_job *job,
                             int rc)
{
	char reason[128];
	uint16_t code = rc == REG_ERR_FULL                       ? 508 :
	                rc == REG_ERR_KEY || rc == REG_ERR_BOUND ? 403 :
	                                                           400;
	const char *what = rc == REG_ERR_BOUND ?
	                           "id is bound to another key (in the shared registry)" :
	                           registry_result_str(rc);

	snprintf(reason, sizeof(reason), "%s: %s",
	         code == 508 ? "Insufficient Capacity" :
	         code == 403 ? "Forbidden" :
	                       "Bad Request",
	         what);
	refused(rs, rc == REG_ERR_BOUND ? RDV_REFUSED_BOUND : rdv_refusal_of(rc),
	        code, job->p.id, job->p.peer_id,
	        (const struct sockaddr *)&job->from, what);
	register_answer(rs, job, 0, code, reason);
}

static void register_done(struct reg_job *job, const struct reg_outcome *o)
{
	struct rdv_server *rs = job->ctx;
	const struct punch_peer *p = &job->p;
	int rc = o->result;

	if (rc < 0) {
		register_refused(rs, job, rc);
		return;
	}
	if (idbind_touch(rs->ids, p->id, p->key_fp, wall_s(rs, job->now_ms)) !=
	    IDBIND_OK)
		log_debug("no room to bind %s to its key", p->id);
	rs->stats.registered++;
	if (job->kind == RDV_REG_REFRESH)
		rs->stats.refreshed++;
	rdv_log_registered(p, (const struct sockaddr *)&job->from,
	                   (const struct sockaddr *)&job->was, job->kind);
	if (rc == REG_WAITING && job->kind != RDV_REG_REFRESH)
		rdv_log_waiting(p);
	if (rc == REG_INTRODUCE && o->self && o->peer) {
		rs->stats.introduced++;
		rdv_log_introduced(o->self, o->peer);
		introduce(rs, o->self, o->peer, job->now_ms);
		introduce(rs, o->peer, o->self, job->now_ms);
	} else if (rc == REG_INTRODUCE && o->self && o->remote) {
		/* the other side's server hears of it from the store */
		if (!introduce_remote(rs, o->self, o->remote, job->now_ms)) {
			rs->stats.introduced++;
			rdv_log_introduced_remote(o->self, o->remote);
		}
	} else if (rc == REG_PAIRED && job->changed && o->peer) {
		/* New candidates (a relayed address, gathered after the
		 * first REGISTER): the peer hears of them at once, as a
		 * PEER-INFO of the same session (trickled). */
		rs->stats.updated++;
		introduce(rs, o->peer, o->self, job->now_ms);
	}
	register_answer(rs, job,
	                rc == REG_WAITING ? PUNCH_STATUS_WAITING :
	                                    PUNCH_STATUS_PAIRED,
	                0, NULL);
}

static int handle_register(struct rdv_server *rs, int sock,
                           const struct stun_msg *m, const uint8_t *buf,
                           size_t len, const struct sockaddr *from,
                           uint64_t now_ms, uint8_t *out, size_t cap,
                           struct binding_reply *reply)
{
	static struct reg_job job; /* over 1 KB; one thread */
	uint8_t fp[PUNCH_KEY_FP_LEN];
	char reason[128];
	const char *why;
	int rc;

	if ((rc = request_check(rs, m, buf, len, from, now_ms, fp, out, cap,
	                        reply)))
		return rc;
	if (!punch_peer_parse(&job.p, m, &why) && !job.p.peer_id[0])
		why = "peer id missing";
	if (why) {
		snprintf(reason, sizeof(reason), "Bad Request: %s", why);
		refused(rs, RDV_REFUSED_BAD_REQUEST, 400, "", "", from, reason);
		return reply_error(rs, m, 400, reason, NULL, NULL, 0, out, cap,
		                   reply);
	}
	/* The fingerprint is the server's own, from the proven key; a
	 * PUNCH-KEY-FP in the request proves nothing and is ignored. */
	memcpy(job.p.key_fp, fp, PUNCH_KEY_FP_LEN);
	job.p.has_key_fp = 1;
	if ((why = id_owner_check(rs, job.p.id, fp, now_ms))) {
		refused(rs, RDV_REFUSED_BOUND, 403, job.p.id, job.p.peer_id, from,
		        why);
		return reply_error(rs, m, 403, why, NULL, NULL, 0, out, cap,
		                   reply);
	}
	job.kind = reg_kind(rs, &job.p, from, &job.was);
	job.changed = cands_changed(registry_find(rs->reg, job.p.id), &job.p);
	memcpy(&job.from, from, addr_len(from));
	job.sock = sock;
	job.now_ms = now_ms;
	job.msg = buf;
	job.msg_len = len;
	memcpy(job.txid, m->txid, sizeof(job.txid));
	job.out = out;
	job.cap = cap;
	job.reply = reply;
	job.verdict = BINDING_IGNORE; /* answered later, unless now */
	job.done = register_done;
	job.ctx = rs;
	rs->store_ops->submit(rs->store, &job);
	return job.verdict;
}

/* A RENEW refused: unsigned and without MAC, so that a flood of bad
 * RENEWs costs no signature; a forged one can only make the client fall
 * back to a signed REGISTER (docs/protocol.md, "RENEW"). */
static int renew_refused(struct rdv_server *rs, const struct stun_msg *m,
                         uint16_t code, const char *reason,
                         const struct sockaddr *from, uint8_t *out,
                         size_t cap, struct binding_reply *reply)
{
	struct stun_writer w;
	char a[ADDR_STRLEN];
	int n;

	rs->stats.renew_refused++;
	log_debug("RENEW from %s refused: %u %s", addr_str(from, a, sizeof(a)),
	          code, reason);
	stun_writer_init(&w, out, cap, m->method, STUN_ERROR, m->txid);
	stun_put_error(&w, code, reason);
	stun_put_fingerprint(&w);
	if ((n = stun_writer_finish(&w)) < 0)
		return BINDING_DROP;
	reply->len = (size_t)n;
	reply->is_error = 1;
	return BINDING_REPLY;
}

/* RENEW's attributes: PUNCH-ID, PUNCH-SESSION, PUNCH-RENEW-SEQ and
 * MESSAGE-INTEGRITY-SHA256 (checked later, with the key).  NULL if well
 * formed, else why not. */
static const char *renew_parse(const struct stun_msg *m, char *id,
                               uint64_t *session, uint32_t *seq)
{
	const struct stun_attr *a = punch_attr_find(m, PUNCH_ATTR_ID);
	const char *why = a ? punch_id_check(a->value, a->len) : "id missing";

	if (why)
		return why;
	memcpy(id, a->value, a->len);
	id[a->len] = '\0';
	if (!(a = punch_attr_find(m, PUNCH_ATTR_SESSION)) || a->len != 8)
		return "session missing or malformed";
	*session = 0;
	for (int i = 0; i < 8; i++)
		*session = *session << 8 | a->value[i];
	if (!(a = punch_attr_find(m, PUNCH_ATTR_RENEW_SEQ)) || a->len != 4)
		return "sequence number missing or malformed";
	*seq = (uint32_t)a->value[0] << 24 | (uint32_t)a->value[1] << 16 |
	       (uint32_t)a->value[2] << 8 | a->value[3];
	if (!(m->present & STUN_HAS_INTEGRITY_SHA256))
		return "MESSAGE-INTEGRITY-SHA256 missing";
	return NULL;
}

/* Is the peer of e here, and looking for e? */
static int renew_status(const struct rdv_server *rs, const struct reg_entry *e)
{
	const struct reg_entry *o = registry_find(rs->reg,
	                                          registry_entry_peer_id(e));

	return o && !strcmp(registry_entry_peer_id(o), registry_entry_id(e)) ?
	               PUNCH_STATUS_PAIRED :
	               PUNCH_STATUS_WAITING;
}

/* RENEW (docs/protocol.md): a live registration, from the address it was
 * registered from, with a MAC under its key and a sequence number above
 * the last: it lives a lifetime from now.  Nothing else changes; new
 * candidates need a signed REGISTER. */
static int handle_renew(struct rdv_server *rs, const struct stun_msg *m,
                        const uint8_t *buf, size_t len,
                        const struct sockaddr *from, uint64_t now_ms,
                        uint8_t *out, size_t cap, struct binding_reply *reply)
{
	uint16_t unknown[STUN_MAX_UNKNOWN];
	char id[PUNCH_ID_MAX + 1], reason[96];
	uint8_t k[PUNCH_RENEW_KEY_LEN], fp[PUNCH_KEY_FP_LEN];
	const struct reg_entry *e;
	struct sockaddr_storage seen;
	struct stun_writer w;
	uint64_t session;
	uint32_t seq;
	const char *why;
	int n;

	if (punch_unknown_required(m, unknown))
		return renew_refused(rs, m, 420, "Unknown Attribute", from, out,
		                     cap, reply);
	if ((why = renew_parse(m, id, &session, &seq))) {
		snprintf(reason, sizeof(reason), "Bad Request: %s", why);
		return renew_refused(rs, m, 400, reason, from, out, cap, reply);
	}
	e = rs->store_ops == &registry_mem_ops ? registry_find(rs->reg, id) :
	                                         NULL;
	if (e)
		registry_entry_from(e, &seen);
	if (!e || registry_entry_session(e) != session ||
	    !addr_equal((const struct sockaddr *)&seen, from))
		return renew_refused(rs, m, 401,
		                     "Unauthorized: no such registration from this address; REGISTER",
		                     from, out, cap, reply);
	renew_key(rs, e, k);
	if (stun_check_integrity(m, buf, len, k, sizeof(k)) != STUN_OK) {
		sodium_memzero(k, sizeof(k));
		return renew_refused(rs, m, 401, "Unauthorized: bad MAC", from,
		                     out, cap, reply);
	}
	/* after the MAC: only the key's holder learns where its count is */
	if (seq <= registry_entry_renew_seq(e)) {
		sodium_memzero(k, sizeof(k));
		return renew_refused(rs, m, 401,
		                     "Unauthorized: sequence number not above the last",
		                     from, out, cap, reply);
	}
	registry_renew(rs->reg, e, seq, now_ms);
	registry_entry_key_fp(e, fp); /* its binding is in use, as on REGISTER */
	(void)idbind_touch(rs->ids, id, fp, wall_s(rs, now_ms));
	rs->stats.renewed++;
	log_debug("%s renewed its registration from %s", id,
	          addr_str(from, reason, sizeof(reason)));
	stun_writer_init(&w, out, cap, m->method, STUN_SUCCESS, m->txid);
	stun_put_xor_addr(&w, STUN_ATTR_XOR_MAPPED_ADDRESS, from);
	stun_put_u32(&w, PUNCH_ATTR_STATUS, (uint32_t)renew_status(rs, e));
	stun_put_u32(&w, PUNCH_ATTR_LIFETIME,
	             (uint32_t)(registry_lifetime(rs->reg) / 1000));
	stun_put_integrity_sha256(&w, k, sizeof(k));
	stun_put_fingerprint(&w);
	sodium_memzero(k, sizeof(k));
	if ((n = stun_writer_finish(&w)) < 0)
		return BINDING_DROP;
	reply->len = (size_t)n;
	return BINDING_REPLY;
}

/* RELEASE: the holder gives its id up.  Idempotent: releasing an id that
 * is not bound succeeds, so that a retransmission gets the same answer. */
static int handle_release(struct rdv_server *rs, const struct stun_msg *m,
                          const uint8_t *buf, size_t len,
                          const struct sockaddr *from, uint64_t now_ms,
                          uint8_t *out, size_t cap,
                          struct binding_reply *reply)
{
	uint8_t fp[PUNCH_KEY_FP_LEN];
	char id[PUNCH_ID_MAX + 1], reason[96], a[ADDR_STRLEN];
	const struct stun_attr *at;
	const char *why;
	int rc;

	if ((rc = request_check(rs, m, buf, len, from, now_ms, fp, out, cap,
	                        reply)))
		return rc;
	at = punch_attr_find(m, PUNCH_ATTR_ID);
	why = at ? punch_id_check(at->value, at->len) : "id missing";
	if (why) {
		snprintf(reason, sizeof(reason), "Bad Request: %s", why);
		return reply_error(rs, m, 400, reason, NULL, NULL, 0, out, cap,
		                   reply);
	}
	memcpy(id, at->value, at->len);
	id[at->len] = '\0';
	if (idbind_release(rs->ids, id, fp) == IDBIND_OTHER) {
		log_debug("release of %s from %s refused: another key holds it",
		          id, addr_str(from, a, sizeof(a)));
		return reply_error(rs, m, 403,
		                   "Forbidden: this id is bound to another key",
		                   NULL, NULL, 0, out, cap, reply);
	}
	/* and its live registration, if this key holds it: nobody is
	 * introduced to a released id in the seconds before it expires */
	rs->store_ops->release(rs->store, id, fp, now_ms);
	rs->stats.released++;
	log_debug("released %s from %s", id, addr_str(from, a, sizeof(a)));
	return reply_success(rs, m, from, -1, NULL, out, cap, reply);
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
	if (m.cls == STUN_REQUEST &&
	    (m.method == PUNCH_REGISTER || m.method == PUNCH_RELEASE ||
	     m.method == PUNCH_RENEW)) {
		uint64_t challenged = rs->stats.challenged;

		/* Before any other work, and without an answer: a flood from
		 * one prefix, spoofed or not, costs the server little and
		 * earns its source nothing.  Counted here, not as malformed. */
		if (!registry_admit(rs->reg, from, now_ms)) {
			char a[ADDR_STRLEN];

			rs->stats.rate_limited++;
			log_debug("drop %s from %s: over the rate of its prefix",
			          m.method == PUNCH_REGISTER ? "REGISTER" :
			          m.method == PUNCH_RENEW    ? "RENEW" :
			                                       "RELEASE",
			          addr_str(from, a, sizeof(a)));
			return BINDING_IGNORE;
		}
		rc = m.method == PUNCH_REGISTER ?
		             handle_register(rs, sock, &m, buf, len, from, now_ms, out,
		                             cap, reply) :
		     m.method == PUNCH_RENEW ?
		             handle_renew(rs, &m, buf, len, from, now_ms, out, cap,
		                          reply) :
		             handle_release(rs, &m, buf, len, from, now_ms, out, cap,
		                            reply);
		/* The Binding service's bound holds here too: a bare REGISTER
		 * from a spoofed source must not earn a bigger 438. */
		if (rc == BINDING_REPLY &&
		    reply->len > len * BINDING_AMPLIFICATION_MAX) {
			rs->stats.challenged = challenged; /* none was sent */
			*why = "answer would exceed the amplification bound";
			return BINDING_DROP;
		}
		return rc;
	}
	if ((m.cls == STUN_SUCCESS || m.cls == STUN_ERROR) &&
	    m.method == PUNCH_PEER_INFO) {
		uint32_t head = txid_head(m.txid);

		for (int i = 0; i < RDV_PENDING_MAX; i++) {
			struct pending *p = &rs->pending[i];

			if (rs->pend_key[i] && rs->pend_tx[i] == head &&
			    !memcmp(p->txid, m.txid, STUN_TXID_LEN)) {
				rdv_log_peer_info_acked(p->to_id);
				pending_clear(rs, p);
				rs->stats.acked++;
			}
		}
		return BINDING_IGNORE;
	}
	if (m.cls == STUN_REQUEST) {
		rs->stats.bad_method++;
		return reply_error(rs, &m, 400, "Bad Request: unknown method", NULL,
		                   NULL, 0, out, cap, reply);
	}
	return BINDING_IGNORE;
}

uint64_t rdv_tick(struct rdv_server *rs, uint64_t now_ms)
{
	uint64_t next = now_ms + 1000;

	if (now_ms >= rs->next_expire_ms) {
		registry_expire(rs->reg, now_ms); /* on_expire() tells */
		rs->next_expire_ms = now_ms + 1000;
	}
	if (now_ms >= rs->next_unbind_ms) {
		/* a walk of the whole table: once a minute is plenty for a
		 * TTL of days */
		size_t n = idbind_expire(rs->ids, wall_s(rs, now_ms));

		if (n)
			log_debug("%zu id bindings expired", n);
		rs->next_unbind_ms = now_ms + RDV_UNBIND_EVERY_MS;
	}
	for (int i = 0; i < RDV_PENDING_MAX; i++) {
		struct pending *p = &rs->pending[i];

		if (!rs->pend_key[i])
			continue;
		switch (rtx_poll(&p->rtx, &rtx_stun, now_ms)) {
		case RTX_GIVE_UP:
			rdv_log_peer_info_gave_up(p->to_id, (int)p->rtx.sent);
			pending_clear(rs, p);
			rs->stats.gave_up++;
			continue;
		case RTX_SEND:
			pending_send(rs, p, now_ms);
			rs->stats.retransmitted++;
			break;
		case RTX_WAIT:
			break;
		}
		if (rtx_deadline(&p->rtx, &rtx_stun) < next)
			next = rtx_deadline(&p->rtx, &rtx_stun);
	}
	return next;
}

void rdv_server_set_lifetime(struct rdv_server *rs, uint64_t ms)
{
	registry_set_lifetime(rs->reg, ms);
}

void rdv_server_set_store(struct rdv_server *rs,
                          const struct reg_store_ops *ops, void *store)
{
	rs->store_ops = ops;
	rs->store = store;
}

int rdv_server_set_relay_secret(struct rdv_server *rs, const uint8_t *secret,
                                size_t len)
{
	if (len > sizeof(rs->relay_secret))
		return -1;
	memcpy(rs->relay_secret, secret, len);
	rs->relay_secret_len = len;
	return 0;
}

/* Is ip the address of one of the peer's candidates, or where the server
 * saw it? */
static int peer_has_ip(const struct reg_entry *e, const struct sockaddr *ip)
{
	static struct punch_peer pp; /* over 1 KB; one thread */
	struct sockaddr_storage seen;

	registry_entry_from(e, &seen);
	if (addr_same_ip((const struct sockaddr *)&seen, ip))
		return 1;
	registry_entry_peer(e, &pp);
	for (size_t i = 0; i < pp.n_cand; i++)
		if (addr_same_ip((const struct sockaddr *)&pp.cand[i].addr, ip))
			return 1;
	return 0;
}

int rdv_minted_check(void *ctx, const char *username,
                     const struct sockaddr *peer)
{
	const struct rdv_server *rs = ctx;
	const struct reg_entry *e, *other;
	char id[PUNCH_ID_MAX + 1];
	uint64_t session;

	if (turn_mint_parse(username, id, sizeof(id), &session) ||
	    !(e = registry_find(rs->reg, id)) ||
	    registry_entry_session(e) != session)
		return -1;
	if (!peer)
		return 0;
	/* The peer it was introduced to: registered for this id in turn */
	other = registry_find(rs->reg, registry_entry_peer_id(e));
	if (!other || strcmp(registry_entry_peer_id(other), id))
		return -1;
	return peer_has_ip(other, peer) ? 0 : -1;
}
