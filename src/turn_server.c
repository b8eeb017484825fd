/*
 * TURN over UDP (RFC 8656): requests, indications and ChannelData.
 *
 * A request goes through, in order (RFC 8656 5, RFC 8489 9.2.4):
 *   1. decode; unknown comprehension-required attributes: 420
 *   2. no MESSAGE-INTEGRITY: 401 with REALM and a fresh NONCE
 *   3. no USERNAME, REALM or NONCE: 400
 *   4. a NONCE that is not ours or is stale: 438 with a fresh one
 *   5. a username that is not a valid, unexpired REST name, or a
 *      MESSAGE-INTEGRITY that does not check: 401 with a fresh NONCE
 *   6. the method; anything answered from here on is signed with the key.
 * So nothing is allocated, and no port opened, before step 6.
 */
#include "turn_server.h"

#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sodium.h>

#include "addr.h"
#include "log.h"
#include "stun.h"
#include "turn_alloc.h"
#include "turn_auth.h"
#include "turn_internal.h"
#include "turn_req.h"

enum {
	OPEN_TRIES_MAX = 64,          /* ports tried per Allocate */
	AMPLIFICATION_MAX = 4,        /* unauthenticated answers */
};


int turn_is_channel_data(const uint8_t *buf, size_t len)
{
	return len >= 1 && (buf[0] & 0xC0) == 0x40;
}

int turn_method_is_turn(int method)
{
	return method == STUN_ALLOCATE || method == STUN_REFRESH ||
	       method == STUN_SEND || method == STUN_CREATE_PERMISSION ||
	       method == STUN_CHANNEL_BIND;
}

struct turn_server *turn_server_new(const struct turn_config *cfg,
                                    const struct turn_ops *ops)
{
	struct turn_server *t;
	const char *realm = cfg->realm ? cfg->realm : "punch";

	if (!cfg->secret || cfg->secret_len > sizeof(t->auth.secret) ||
	    strlen(realm) > TURN_REALM_MAX || cfg->port_lo > cfg->port_hi ||
	    !cfg->port_lo)
		return NULL;
	if (sodium_init() < 0 || !(t = calloc(1, sizeof(*t))))
		return NULL;
	t->cfg = *cfg;
	t->ops = *ops;
	if (!t->cfg.max_allocs)
		t->cfg.max_allocs = TURN_ALLOCS_DEFAULT;
	if (!t->cfg.max_per_prefix)
		t->cfg.max_per_prefix = TURN_PER_PREFIX_DEFAULT;
	memcpy(t->auth.secret, cfg->secret, cfg->secret_len);
	t->auth.secret_len = cfg->secret_len;
	snprintf(t->auth.realm, sizeof(t->auth.realm), "%s", realm);
	randombytes_buf(t->auth.nonce_key, sizeof(t->auth.nonce_key));
	t->cfg.secret = NULL; /* the copy in auth is the one kept */
	t->port_cursor = randombytes_uniform(
		(uint32_t)(cfg->port_hi - cfg->port_lo + 1));
	if (turn_table_init(&t->tb, t->cfg.max_allocs)) {
		free(t);
		return NULL;
	}
	return t;
}

struct turn_group {
	pthread_mutex_t lock;
	struct turn_server *t[TURN_GROUP_MAX];
	size_t n;
};

struct turn_group *turn_group_new(void)
{
	struct turn_group *g = calloc(1, sizeof(*g));

	if (g && pthread_mutex_init(&g->lock, NULL)) {
		free(g);
		return NULL;
	}
	return g;
}

void turn_group_free(struct turn_group *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->lock);
	free(g);
}

int turn_server_join(struct turn_server *t, struct turn_group *g)
{
	if (g->n == TURN_GROUP_MAX)
		return -1;
	pthread_mutex_lock(&g->lock);
	/* One nonce key for all: a nonce from one thread's 401 is good at
	 * another's (a client whose source port changed lands elsewhere). */
	if (g->n)
		memcpy(t->auth.nonce_key, g->t[0]->auth.nonce_key,
		       sizeof(t->auth.nonce_key));
	g->t[g->n++] = t;
	t->group = g;
	pthread_mutex_unlock(&g->lock);
	return 0;
}

/* Tables change (add, remove) only under the group's lock, so that
 * another member may read them under it; their owner reads them without. */
static void group_lock(const struct turn_server *t)
{
	if (t->group)
		pthread_mutex_lock(&t->group->lock);
}

static void group_unlock(const struct turn_server *t)
{
	if (t->group)
		pthread_mutex_unlock(&t->group->lock);
}

static void alloc_close(struct turn_server *t, int slot)
{
	struct turn_alloc *a = t->tb.slots[slot];
	uint16_t port = addr_port((const struct sockaddr *)&a->relayed);

	t->port_used[port / 8] &= (uint8_t)~(1u << (port % 8));
	t->ops.relay_close(t->ops.ctx, slot);
	sodium_memzero(a->key, sizeof(a->key));
	group_lock(t);
	turn_table_remove(&t->tb, slot);
	group_unlock(t);
}

void turn_server_free(struct turn_server *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->tb.max; i++)
		if (t->tb.slots[i])
			alloc_close(t, (int)i);
	turn_table_fini(&t->tb);
	sodium_memzero(&t->auth, sizeof(t->auth));
	free(t);
}

void turn_server_set_wall(struct turn_server *t, uint64_t wall_at_zero_s)
{
	t->wall_at_zero_s = wall_at_zero_s;
}

const struct turn_stats *turn_stats(const struct turn_server *t)
{
	return &t->stats;
}

size_t turn_alloc_count(const struct turn_server *t)
{
	return t->tb.count;
}

size_t turn_alloc_size(void)
{
	return sizeof(struct turn_alloc);
}

uint64_t turn_tick(struct turn_server *t, uint64_t now)
{
	uint64_t next = now + TURN_TICK_MAX_MS;

	/* No lifetime can be cut below the default (RFC 8656 7.3, lifetime_of),
	 * so the earliest expiry seen here stays the earliest until then. */
	if (now < t->next_tick)
		return t->next_tick;
	for (size_t i = 0; i < t->tb.max; i++) {
		struct turn_alloc *a = t->tb.slots[i];

		if (!a)
			continue;
		if (a->expires <= now) {
			log_debug("turn: allocation %zu expired", i);
			alloc_close(t, (int)i);
			t->stats.expired++;
		} else if (a->expires < next) {
			next = a->expires;
		}
	}
	t->next_tick = next;
	return next;
}

int turn_client_gone(struct turn_server *t, int sock,
                     const struct sockaddr *from)
{
	int slot = turn_table_find(&t->tb, sock, from);

	if (slot < 0)
		return 0;
	log_debug("turn: allocation %d closed with its connection", slot);
	alloc_close(t, slot);
	t->stats.closed++;
	return 1;
}

int turn_client_has_alloc(const struct turn_server *t, int sock,
                          const struct sockaddr *from)
{
	return turn_table_find(&t->tb, sock, from) >= 0;
}

/* ---- responses ----------------------------------------------------------- */

/* An error response.  Before authentication (key NULL) it carries REALM and
 * a fresh NONCE when challenge is set, SOFTWARE only inside the
 * amplification budget, and no integrity; after, it is signed. */
static int reply_error(struct turn_server *t, const struct turn_req *r,
                       const struct sockaddr *from, uint64_t now,
                       uint16_t code, const char *reason, const uint8_t *key,
                       int challenge, size_t req_len, uint8_t *out, size_t cap)
{
	const char *sw = t->cfg.software;
	char nonce[TURN_NONCE_LEN + 1];
	struct stun_writer w;
	size_t need;

	need = STUN_HEADER_LEN + stun_attr_size(4 + strlen(reason)) +
	       stun_attr_size(4);
	stun_writer_init(&w, out, cap, r->m.method, STUN_ERROR, r->m.txid);
	stun_put_error(&w, code, reason);
	if (code == 420)
		stun_put_unknown(&w, r->unknown, r->n_unknown);
	if (challenge) {
		turn_nonce_make(&t->auth, from, now, nonce);
		stun_put_bytes(&w, STUN_ATTR_REALM, t->auth.realm,
		               strlen(t->auth.realm));
		stun_put_bytes(&w, STUN_ATTR_NONCE, nonce, TURN_NONCE_LEN);
		need += stun_attr_size(strlen(t->auth.realm)) +
		        stun_attr_size(TURN_NONCE_LEN);
	}
	if (sw && (key || need + stun_attr_size(strlen(sw)) <=
	                          req_len * AMPLIFICATION_MAX))
		stun_put_bytes(&w, STUN_ATTR_SOFTWARE, sw, strlen(sw));
	if (key)
		stun_put_integrity(&w, key, TURN_KEY_LEN);
	stun_put_fingerprint(&w);
	return stun_writer_finish(&w);
}

/* Out of a turn_handle_client() request handler: -code for an error with
 * its reason, or the length of a success written to out. */
struct verdict {
	int code;
	const char *reason;
};

static int finish_reply(struct turn_server *t, const struct turn_req *r,
                        const struct sockaddr *from, uint64_t now, int sock,
                        const uint8_t *key, struct verdict v, int len,
                        size_t req_len, uint8_t *out, size_t cap,
                        struct turn_out *o)
{
	if (v.code) {
		len = reply_error(t, r, from, now, (uint16_t)v.code, v.reason,
		                  key, v.code == 401 || v.code == 438, req_len,
		                  out, cap);
		o->is_error = 1;
		if (v.code == 401)
			t->stats.challenged++;
		else if (v.code == 438)
			t->stats.stale++;
		else if (v.code == 486 || v.code == 508)
			t->stats.quota++;
		else if (v.code == 403)
			t->stats.forbidden++;
		else
			t->stats.refused++;
	}
	/* The amplification bound of the Binding service holds here too: an
	 * answer to a client not yet authenticated is at most 4 times its
	 * request, or nothing (a bare 20-byte Allocate is no client's). */
	if (len < 0 || (!key && (size_t)len > req_len * AMPLIFICATION_MAX))
		return TURN_DROP;
	o->sock = sock;
	memcpy(&o->to, from, addr_len(from));
	o->len = (size_t)len;
	o->data = out;
	return TURN_TO_CLIENT;
}

static struct verdict err(int code, const char *reason)
{
	return (struct verdict){ code, reason };
}

static const struct verdict ok = { 0, NULL };

/* ---- authentication (RFC 8489 9.2.4) -------------------------------------- */

/* Ask the rendezvous about a minted username (and a peer for it). */
static int minted_ok(const struct turn_server *t, const uint8_t *user,
                     size_t len, const struct sockaddr *peer)
{
	char name[TURN_USERNAME_MAX + 1];

	if (!t->ops.minted || len > TURN_USERNAME_MAX ||
	    memchr(user, '\0', len))
		return 0;
	memcpy(name, user, len);
	name[len] = '\0';
	return t->ops.minted(t->ops.ctx, name, peer) == 0;
}

static struct verdict authenticate(struct turn_server *t,
                                   const struct turn_req *r,
                                   const uint8_t *buf, size_t len,
                                   const struct sockaddr *from, uint64_t now,
                                   uint8_t key[TURN_KEY_LEN])
{
	const struct stun_msg *m = &r->m;
	uint64_t wall = t->wall_at_zero_s + now / 1000;

	if (!(m->present & (STUN_HAS_INTEGRITY | STUN_HAS_INTEGRITY_SHA256)))
		return err(401, "Unauthorized");
	if ((m->present & (STUN_HAS_USERNAME | STUN_HAS_REALM | STUN_HAS_NONCE)) != (STUN_HAS_USERNAME | STUN_HAS_REALM | STUN_HAS_NONCE))
		return err(400, "Bad Request: USERNAME, REALM and NONCE needed");
	if (turn_nonce_check(&t->auth, from, now, m->nonce.ptr, m->nonce.len))
		return err(438, "Stale Nonce");
	if (turn_is_minted(m->username.ptr, m->username.len) &&
	    !minted_ok(t, m->username.ptr, m->username.len, NULL))
		return err(401, "Unauthorized");
	if (m->realm.len != strlen(t->auth.realm) ||
	    memcmp(m->realm.ptr, t->auth.realm, m->realm.len) ||
	    turn_auth_key(&t->auth, m->username.ptr, m->username.len, wall,
	                  key) ||
	    stun_check_integrity(m, buf, len, key, TURN_KEY_LEN))
		return err(401, "Unauthorized");
	return ok;
}

/* ---- peers ------------------------------------------------------------ */

/* Every XOR-PEER-ADDRESS: 400 if none, 443 if of another family than the
 * relayed address (RFC 8656 9.1), 403 if not allowed. */
static struct verdict check_peers(const struct turn_server *t,
                                  const struct turn_alloc *a,
                                  const struct turn_req *r)
{
	if (!r->n_peers)
		return err(400, "Bad Request: no XOR-PEER-ADDRESS");
	for (size_t i = 0; i < r->n_peers; i++) {
		const struct sockaddr *p = (const struct sockaddr *)&r->peers[i];

		if (p->sa_family != a->relayed.ss_family)
			return err(443, "Peer Address Family Mismatch");
		if (!turn_peer_allowed(p, t->cfg.allow_private))
			return err(403, "Forbidden");
		/* A rendezvous-minted allocation reaches only the peer it was
		 * introduced to, where that peer said or was seen to be */
		if (a->minted && !minted_ok(t, (const uint8_t *)a->username,
		                            a->username_len, p))
			return err(403, "Forbidden: not the introduced peer");
	}
	return ok;
}

/* ---- Allocate (RFC 8656 7.2) ----------------------------------------- */

static uint32_t lifetime_of(const struct turn_req *r)
{
	if (!r->has_lifetime || r->lifetime < TURN_LIFETIME_DEFAULT_S)
		return TURN_LIFETIME_DEFAULT_S;
	return r->lifetime > TURN_LIFETIME_MAX_S ? TURN_LIFETIME_MAX_S :
	                                           r->lifetime;
}

/* Same IPv4 /24 or IPv6 /64. */
static int same_prefix(const struct sockaddr *a, const struct sockaddr *b)
{
	struct turn_ip x, y;

	if (a->sa_family != b->sa_family)
		return 0;
	turn_ip_of(a, &x);
	turn_ip_of(b, &y);
	return !memcmp(x.b, y.b, a->sa_family == AF_INET ? 3 : 8);
}

static size_t prefix_count(const struct turn_server *t,
                           const struct sockaddr *from)
{
	size_t n = 0;

	for (size_t i = 0; i < t->tb.max; i++)
		if (t->tb.slots[i] &&
		    same_prefix((const struct sockaddr *)&t->tb.slots[i]->client,
		                from))
			n++;
	return n;
}

/* May one more allocation for `from` be made?  0, or the error code.
 * With a group: of every member's tables, under the group's lock. */
static int quota_check(const struct turn_server *t,
                       const struct sockaddr *from)
{
	size_t n = t->group ? t->group->n : 1, count = 0, prefix = 0;

	for (size_t i = 0; i < n; i++) {
		const struct turn_server *m = t->group ? t->group->t[i] : t;

		count += m->tb.count;
		prefix += prefix_count(m, from);
	}
	if (count >= t->cfg.max_allocs)
		return 508;
	return prefix >= t->cfg.max_per_prefix ? 486 : 0;
}

/* Bind a relayed socket on a free port of the range: the socket layer
 * says whether the port is free on the host.  EVEN-PORT (RFC 8656 18.7)
 * asks for an even one; its R bit is not honoured (no reservations). */
static int open_relay(struct turn_server *t, int slot, struct turn_alloc *a,
                      const struct sockaddr_storage *relay, int even)
{
	uint32_t span = (uint32_t)(t->cfg.port_hi - t->cfg.port_lo + 1);
	const struct sockaddr_storage *bind = relay == &t->cfg.relay4 ?
	                                              &t->cfg.bind4 :
	                                              &t->cfg.bind6;
	int tries = 0;

	if (!bind->ss_family)
		bind = relay;
	for (uint32_t i = 0; i < span && tries < OPEN_TRIES_MAX; i++) {
		uint16_t port = (uint16_t)(t->cfg.port_lo +
		                           (t->port_cursor + i) % span);
		struct sockaddr_storage at = *bind;

		if (t->port_used[port / 8] & (1u << (port % 8)) ||
		    (even && port % 2))
			continue;
		tries++;
		addr_set_port((struct sockaddr *)&at, port);
		if (t->ops.relay_open(t->ops.ctx, slot,
		                      (const struct sockaddr *)&at))
			continue;
		t->port_used[port / 8] |= (uint8_t)(1u << (port % 8));
		t->port_cursor = (t->port_cursor + i + 1) % span;
		a->relayed = *relay;
		addr_set_port((struct sockaddr *)&a->relayed, port);
		return 0;
	}
	return -1;
}

static int allocate_success(const struct turn_server *t,
                            const struct turn_alloc *a,
                            const struct turn_req *r,
                            const struct sockaddr *from, uint64_t now,
                            uint8_t *out, size_t cap)
{
	struct stun_writer w;
	uint64_t left = a->expires > now ? (a->expires - now) / 1000 : 0;

	stun_writer_init(&w, out, cap, STUN_ALLOCATE, STUN_SUCCESS, r->m.txid);
	stun_put_xor_addr(&w, STUN_ATTR_XOR_RELAYED_ADDRESS,
	                  (const struct sockaddr *)&a->relayed);
	stun_put_u32(&w, STUN_ATTR_LIFETIME, (uint32_t)left);
	stun_put_xor_addr(&w, STUN_ATTR_XOR_MAPPED_ADDRESS, from);
	if (t->cfg.software)
		stun_put_bytes(&w, STUN_ATTR_SOFTWARE, t->cfg.software,
		               strlen(t->cfg.software));
	stun_put_integrity(&w, a->key, TURN_KEY_LEN);
	stun_put_fingerprint(&w);
	return stun_writer_finish(&w);
}

/* Checks of an Allocate that need no allocation: 442, 400, 420, 440. */
static struct verdict allocate_check(const struct turn_server *t,
                                     const struct turn_req *r,
                                     const struct sockaddr_storage **relay)
{
	if (!r->has_transport)
		return err(400, "Bad Request: no REQUESTED-TRANSPORT");
	if (r->transport != TURN_REQUESTED_UDP)
		return err(442, "Unsupported Transport Protocol");
	if (r->has_dont_fragment)
		return err(420, "Unknown Attribute: DONT-FRAGMENT");
	if (r->has_reservation)
		return err(508, "Insufficient Capacity: no reservations");
	*relay = &t->cfg.relay4;
	if (r->has_family && r->family == TURN_FAMILY_IPV6)
		*relay = &t->cfg.relay6;
	else if (r->has_family && r->family != TURN_FAMILY_IPV4)
		return err(440, "Address Family not Supported");
	if (!(*relay)->ss_family)
		return err(440, "Address Family not Supported");
	return ok;
}

static struct verdict do_allocate(struct turn_server *t, int sock,
                                  const struct turn_req *r,
                                  const struct sockaddr *from, uint64_t now,
                                  const uint8_t key[TURN_KEY_LEN], int *len,
                                  uint8_t *out, size_t cap)
{
	const struct sockaddr_storage *relay;
	struct turn_alloc *a;
	struct verdict v;
	int slot = turn_table_find(&t->tb, sock, from), quota;

	if (slot >= 0) {
		a = t->tb.slots[slot];
		/* RFC 8656 7.2: a retransmission gets the same answer */
		if (memcmp(a->txid, r->m.txid, STUN_TXID_LEN) ||
		    memcmp(a->key, key, TURN_KEY_LEN))
			return err(437, "Allocation Mismatch");
		*len = allocate_success(t, a, r, from, now, out, cap);
		return ok;
	}
	if ((v = allocate_check(t, r, &relay)).code)
		return v;
	group_lock(t);
	quota = quota_check(t, from);
	slot = quota ? -1 : turn_table_add(&t->tb, sock, from);
	group_unlock(t);
	if (quota == 486)
		return err(486, "Allocation Quota Reached");
	if (slot < 0)
		return err(508, "Insufficient Capacity");
	a = t->tb.slots[slot];
	if (open_relay(t, slot, a, relay, r->has_even_port)) {
		group_lock(t);
		turn_table_remove(&t->tb, slot);
		group_unlock(t);
		return err(508, "Insufficient Capacity: no relay port free");
	}
	memcpy(a->txid, r->m.txid, STUN_TXID_LEN);
	memcpy(a->key, key, TURN_KEY_LEN);
	a->username_len = (uint8_t)r->m.username.len;
	a->minted = (uint8_t)turn_is_minted(r->m.username.ptr,
	                                    r->m.username.len);
	memcpy(a->username, r->m.username.ptr, r->m.username.len);
	a->expires = now + lifetime_of(r) * 1000ULL;
	a->tokens = t->cfg.relay_bps;
	a->refilled = now;
	t->stats.allocated++;
	*len = allocate_success(t, a, r, from, now, out, cap);
	return ok;
}

/* ---- Refresh, CreatePermission, ChannelBind ------------------------------ */

/* A success with no attributes but integrity (and LIFETIME for Refresh). */
static int plain_success(const struct turn_server *t,
                         const struct turn_req *r, const uint8_t *key,
                         int lifetime, uint8_t *out, size_t cap)
{
	struct stun_writer w;

	stun_writer_init(&w, out, cap, r->m.method, STUN_SUCCESS, r->m.txid);
	if (lifetime >= 0)
		stun_put_u32(&w, STUN_ATTR_LIFETIME, (uint32_t)lifetime);
	if (t->cfg.software)
		stun_put_bytes(&w, STUN_ATTR_SOFTWARE, t->cfg.software,
		               strlen(t->cfg.software));
	stun_put_integrity(&w, key, TURN_KEY_LEN);
	stun_put_fingerprint(&w);
	return stun_writer_finish(&w);
}

static struct verdict do_refresh(struct turn_server *t, int slot,
                                 const struct turn_req *r, uint64_t now,
                                 const uint8_t *key, int *len, uint8_t *out,
                                 size_t cap)
{
	uint32_t life = r->has_lifetime && r->lifetime == 0 ? 0 :
	                                                      lifetime_of(r);

	if (life == 0) {
		/* RFC 8656 7.3: LIFETIME 0 deletes the allocation */
		alloc_close(t, slot);
		t->stats.deleted++;
	} else {
		t->tb.slots[slot]->expires = now + life * 1000ULL;
		t->stats.refreshed++;
	}
	*len = plain_success(t, r, key, (int)life, out, cap);
	return ok;
}

static struct verdict do_permission(struct turn_server *t,
                                    struct turn_alloc *a,
                                    const struct turn_req *r, uint64_t now,
                                    int *len, uint8_t *out, size_t cap)
{
	struct verdict v = check_peers(t, a, r);

	if (v.code)
		return v;
	/* RFC 8656 10.2: all or nothing */
	for (size_t i = 0; i < r->n_peers; i++) {
		struct turn_ip ip;
		int live = 0;

		turn_ip_of((const struct sockaddr *)&r->peers[i], &ip);
		for (int k = 0; k < TURN_PERMS_MAX; k++)
			live += a->perms[k].expires > now;
		if (!turn_perm_has(a, &ip, now) && live + (int)i >= TURN_PERMS_MAX)
			return err(508, "Insufficient Capacity: permissions");
	}
	for (size_t i = 0; i < r->n_peers; i++) {
		struct turn_ip ip;

		turn_ip_of((const struct sockaddr *)&r->peers[i], &ip);
		if (turn_perm_set(a, &ip, now))
			return err(508, "Insufficient Capacity: permissions");
	}
	*len = plain_success(t, r, a->key, -1, out, cap);
	return ok;
}

static struct verdict do_channel_bind(struct turn_server *t,
                                      struct turn_alloc *a,
                                      const struct turn_req *r, uint64_t now,
                                      int *len, uint8_t *out, size_t cap)
{
	const struct sockaddr *peer = (const struct sockaddr *)&r->peers[0];
	struct verdict v;
	struct turn_ip ip;
	int rc;

	/* RFC 8656 11.2 */
	if (!r->has_channel || r->channel < TURN_CHANNEL_MIN ||
	    r->channel > TURN_CHANNEL_MAX)
		return err(400, "Bad Request: CHANNEL-NUMBER");
	if (r->n_peers != 1)
		return err(400, "Bad Request: one XOR-PEER-ADDRESS");
	if ((v = check_peers(t, a, r)).code)
		return v;
	turn_ip_of(peer, &ip);
	if (!turn_perm_has(a, &ip, now) && turn_perm_set(a, &ip, now))
		return err(508, "Insufficient Capacity: permissions");
	rc = turn_chan_bind(a, r->channel, &ip, addr_port(peer), now);
	if (rc == 400)
		return err(400, "Bad Request: channel or peer bound otherwise");
	if (rc)
		return err(508, "Insufficient Capacity: channels");
	/* 11.2: the binding also installs or refreshes the permission */
	turn_perm_set(a, &ip, now);
	*len = plain_success(t, r, a->key, -1, out, cap);
	return ok;
}

/* ---- dispatch ------------------------------------------------------------ */

static struct verdict do_method(struct turn_server *t, int sock,
                                const struct turn_req *r,
                                const struct sockaddr *from, uint64_t now,
                                const uint8_t *key, int *len, uint8_t *out,
                                size_t cap)
{
	int slot;
	struct turn_alloc *a;

	if (r->m.username.len > TURN_USERNAME_MAX)
		return err(400, "Bad Request: USERNAME too long");
	if (r->m.method == STUN_ALLOCATE)
		return do_allocate(t, sock, r, from, now, key, len, out, cap);
	slot = turn_table_find(&t->tb, sock, from);
	if (slot < 0)
		return err(437, "Allocation Mismatch");
	a = t->tb.slots[slot];
	/* RFC 8656 5: the same credentials as the Allocate */
	if (r->m.username.len != a->username_len ||
	    memcmp(r->m.username.ptr, a->username, a->username_len))
		return err(441, "Wrong Credentials");
	switch (r->m.method) {
	case STUN_REFRESH:
		return do_refresh(t, slot, r, now, key, len, out, cap);
	case STUN_CREATE_PERMISSION:
		return do_permission(t, a, r, now, len, out, cap);
	case STUN_CHANNEL_BIND:
		return do_channel_bind(t, a, r, now, len, out, cap);
	default:
		return err(400, "Bad Request: unknown method");
	}
}

static int handle_request(struct turn_server *t, int sock,
                          struct turn_req *r, const uint8_t *buf, size_t len,
                          const struct sockaddr *from, uint64_t now,
                          uint8_t *out, size_t cap, struct turn_out *o)
{
	uint8_t key[TURN_KEY_LEN];
	struct verdict v;
	int n = -1, authed = 0;

	if (turn_req_parse(r))
		v = err(400, "Bad Request: malformed TURN attribute");
	else if (r->n_unknown)
		v = err(420, "Unknown Attribute");
	else if (!(v = authenticate(t, r, buf, len, from, now, key)).code) {
		authed = 1;
		v = do_method(t, sock, r, from, now, key, &n, out, cap);
	}
	n = finish_reply(t, r, from, now, sock, authed ? key : NULL, v, n,
	                 len, out, cap, o);
	sodium_memzero(key, sizeof(key));
	return n;
}

int turn_handle_client(struct turn_server *t, int sock, const uint8_t *buf,
                       size_t len, const struct sockaddr *from, uint64_t now,
                       uint8_t *out, size_t cap, struct turn_out *o)
{
	/* Static: the message is over 1 KB, and the server is one thread. */
	static _Thread_local struct turn_req r; /* -threads: one each */
	int rc;

	memset(o, 0, sizeof(*o));
	if (turn_is_channel_data(buf, len))
		return turn_relay_channel(t, sock, buf, len, from, now, o);
	if (from->sa_family != AF_INET && from->sa_family != AF_INET6)
		return TURN_DROP;
	rc = stun_decode(&r.m, buf, len);
	if (rc) {
		t->stats.malformed++;
		return TURN_DROP;
	}
	if (r.m.cls == STUN_INDICATION && r.m.method == STUN_SEND)
		return turn_relay_send(t, sock, &r, from, now, o);
	if (r.m.cls != STUN_REQUEST || !turn_method_is_turn(r.m.method) ||
	    r.m.method == STUN_SEND)
		return TURN_IGNORE;
	return handle_request(t, sock, &r, buf, len, from, now, out, cap, o);
}
