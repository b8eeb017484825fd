/*
 * TURN client (RFC 8656 over UDP): Allocate with long-term credentials
 * (RFC 8489 9.2), Refresh, CreatePermission, ChannelBind, Send
 * indications out and Data indications and ChannelData in.
 *
 * RFC 8656 12.4, ChannelData:
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |         Channel Number        |            Length             |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                                                               |
 *  /                       Application Data                        /
 *  /                                                               /
 *  |                                                               |
 *  |                               +-------------------------------+
 *  |                               |
 *  +-------------------------------+
 */
#include "turn_client.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <gnutls/crypto.h>
#include <netinet/in.h>

#include "addr.h"
#include "log.h"
#include "rnd.h"
#include "term.h"

const char *turn_client_state_str(enum turnc_state s)
{
	switch (s) {
	case TURNC_IDLE: return "idle";
	case TURNC_ALLOCATING: return "allocating";
	case TURNC_ALLOCATED: return "allocated";
	case TURNC_FAILED: return "failed";
	case TURNC_RELEASED: return "released";
	}
	return "?";
}

/* Every state change goes through here, and is logged old -> new. */
static void set_state(struct turn_client *t, enum turnc_state s)
{
	if (t->state == s)
		return;
	log_debug("turn client: %s -> %s", turn_client_state_str(t->state),
	          turn_client_state_str(s));
	t->state = s;
}

int turn_client_init(struct turn_client *t, const char *username,
                     const char *password, turn_client_send_fn *send,
                     turn_client_data_fn *on_data,
                     turn_client_event_fn *on_event, void *ctx)
{
	memset(t, 0, sizeof(*t));
	if (strlen(username) > TURNC_USERNAME_MAX ||
	    strlen(password) > TURNC_PASSWORD_MAX)
		return -1;
	memcpy(t->username, username, strlen(username) + 1);
	memcpy(t->password, password, strlen(password) + 1);
	t->send = send;
	t->on_data = on_data;
	t->on_event = on_event;
	t->ctx = ctx;
	return 0;
}

int turn_client_is_allocated(const struct turn_client *t)
{
	return t->state == TURNC_ALLOCATED;
}

const struct sockaddr *turn_client_relayed(const struct turn_client *t)
{
	return t->state == TURNC_ALLOCATED ?
	               (const struct sockaddr *)&t->relayed :
	               NULL;
}

static void forget(struct turn_client *t)
{
	memset(t->txns, 0, sizeof(t->txns));
	memset(t->chans, 0, sizeof(t->chans));
	t->refreshing = 0;
	gnutls_memset(t->key, 0, sizeof(t->key));
	t->has_key = 0;
}

/* The end of the allocation: EV_FAILED with a sentence. */
static void fail(struct turn_client *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct turn_client *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->reason, sizeof(t->reason), fmt, ap);
	va_end(ap);
	log_debug("turn client: failed: %s", t->reason);
	forget(t);
	set_state(t, TURNC_FAILED);
	t->on_event(t->ctx, TURN_CLIENT_EV_FAILED, t->reason);
}

/* "CODE reason phrase" of an error response, the phrase escaped for the
 * terminal (term.h): it came over the network. */
static void error_text(const struct stun_msg *m, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%u", m->error_code);

	if (n < 0 || (size_t)n + 2 >= cap || !m->reason.len)
		return;
	buf[n++] = ' ';
	term_escape(buf + n, cap - (size_t)n, m->reason.ptr, m->reason.len);
}

/* RFC 8489 9.2.2: key = MD5(username ":" realm ":" password).  The
 * OpaqueString profile is not applied: REST credentials are ASCII. */
static int make_key(struct turn_client *t)
{
	char buf[TURNC_USERNAME_MAX + TURNC_REALM_MAX + TURNC_PASSWORD_MAX + 3];
	int n = snprintf(buf, sizeof(buf), "%s:%s:%s", t->username, t->realm,
	                 t->password);
	int rc = -1;

	if (n > 0 && (size_t)n < sizeof(buf) &&
	    gnutls_hash_fast(GNUTLS_DIG_MD5, buf, (size_t)n, t->key) == 0)
		rc = 0;
	gnutls_memset(buf, 0, sizeof(buf));
	t->has_key = rc == 0;
	return rc;
}

/* Copy a REALM or NONCE value: printable, short, no NUL. */
static int take_text(char *dst, size_t max, const struct stun_bytes *b)
{
	if (!b->len || b->len > max || memchr(b->ptr, '\0', b->len))
		return -1;
	memcpy(dst, b->ptr, b->len);
	dst[b->len] = '\0';
	return 0;
}

/* A 401 or 438 brings a NONCE (and REALM): take them, and a new key if
 * the realm changed. */
static int take_nonce(struct turn_client *t, const struct stun_msg *m)
{
	char realm[TURNC_REALM_MAX + 1];

	if (!(m->present & STUN_HAS_NONCE) ||
	    take_text(t->nonce, TURNC_NONCE_MAX, &m->nonce))
		return -1;
	if (!(m->present & STUN_HAS_REALM))
		return t->realm[0] ? 0 : -1;
	if (take_text(realm, TURNC_REALM_MAX, &m->realm))
		return -1;
	if (t->has_key && !strcmp(realm, t->realm))
		return 0;
	memcpy(t->realm, realm, sizeof(realm));
	return make_key(t);
}

/* ---- requests ------------------------------------------------------------ */

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Write request x (its method, item and lifetime set) with a fresh
 * transaction id; 0 or -1. */
static int build(struct turn_client *t, struct turnc_txn *x)
{
	struct stun_writer w;
	int n;

	rnd_nonce(x->txid, sizeof(x->txid));
	stun_writer_init(&w, x->msg, sizeof(x->msg), x->method, STUN_REQUEST,
	                 x->txid);
	switch (x->method) {
	case STUN_ALLOCATE: /* RFC 8656 7.1 */
		stun_put_u32(&w, STUN_ATTR_REQUESTED_TRANSPORT,
		             (uint32_t)TURNC_TRANSPORT_UDP << 24);
		if (t->family == AF_INET6)
			stun_put_u32(&w, STUN_ATTR_REQUESTED_ADDRESS_FAMILY,
			             (uint32_t)TURNC_FAMILY_IPV6 << 24);
		break;
	case STUN_REFRESH: /* 7.3 */
		stun_put_u32(&w, STUN_ATTR_LIFETIME, x->lifetime);
		break;
	case STUN_CREATE_PERMISSION: /* 9.1 */
		stun_put_xor_addr(&w, STUN_ATTR_XOR_PEER_ADDRESS,
		                  (const struct sockaddr *)&t->perms[x->item].ip);
		break;
	case STUN_CHANNEL_BIND: /* 12.1 */
		stun_put_u32(&w, STUN_ATTR_CHANNEL_NUMBER,
		             (uint32_t)(TURNC_CHANNEL_FIRST + x->item) << 16);
		stun_put_xor_addr(&w, STUN_ATTR_XOR_PEER_ADDRESS,
		                  (const struct sockaddr *)&t->chans[x->item].peer);
		break;
	default:
		return -1;
	}
	x->authed = (uint8_t)t->has_key;
	if (t->has_key) { /* RFC 8489 9.2.3 */
		stun_put_bytes(&w, STUN_ATTR_USERNAME, t->username,
		               strlen(t->username));
		stun_put_bytes(&w, STUN_ATTR_REALM, t->realm, strlen(t->realm));
		stun_put_bytes(&w, STUN_ATTR_NONCE, t->nonce, strlen(t->nonce));
		stun_put_integrity(&w, t->key, sizeof(t->key));
	}
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	if (n < 0) {
		log_error("turn client: cannot build a request: %s",
		          stun_err_str(n));
		return -1;
	}
	x->len = (size_t)n;
	return 0;
}

/* Start a transaction and send its first transmission; -1 when every
 * slot is taken (the caller tries again when one frees). */
static int txn_start(struct turn_client *t, uint16_t method, int item,
                     uint32_t lifetime, int stale, uint64_t now_ms)
{
	struct turnc_txn *x = NULL;

	for (int i = 0; i < TURNC_TXNS && !x; i++)
		if (!t->txns[i].used)
			x = &t->txns[i];
	if (!x)
		return -1;
	x->method = method;
	x->item = item;
	x->lifetime = lifetime;
	x->stale = (uint8_t)stale;
	if (build(t, x))
		return -1;
	x->used = 1;
	rtx_start(&x->rtx, &rtx_stun, now_ms);
	t->send(t->ctx, x->msg, x->len);
	rtx_sent(&x->rtx, &rtx_stun, now_ms, rnd_u32());
	return 0;
}

/* Start what is due and has no request in flight: the Refresh, then
 * permissions, then channels. */
static void pump(struct turn_client *t, uint64_t now_ms)
{
	if (t->state != TURNC_ALLOCATED)
		return;
	if (!t->refreshing && now_ms >= t->refresh_ms) {
		if (txn_start(t, STUN_REFRESH, -1, t->lifetime_s, 0, now_ms))
			return;
		t->refreshing = 1;
	}
	for (int i = 0; i < TURNC_PERMS_MAX; i++) {
		struct turnc_perm *p = &t->perms[i];

		if (p->busy || !(p->state == TURNC_ITEM_WANTED ||
		                 (p->state == TURNC_ITEM_OK &&
		                  now_ms >= p->refresh_ms)))
			continue;
		if (txn_start(t, STUN_CREATE_PERMISSION, i, 0, 0, now_ms))
			return;
		p->busy = 1;
	}
	for (int i = 0; i < TURNC_CHANNELS_MAX; i++) {
		struct turnc_chan *c = &t->chans[i];

		if (c->busy || !(c->state == TURNC_ITEM_WANTED ||
		                 (c->state == TURNC_ITEM_OK &&
		                  now_ms >= c->refresh_ms)))
			continue;
		if (txn_start(t, STUN_CHANNEL_BIND, i, 0, 0, now_ms))
			return;
		c->busy = 1;
	}
}

void turn_client_allocate(struct turn_client *t, int family, uint64_t now_ms)
{
	forget(t);
	t->family = family == AF_INET6 ? AF_INET6 : AF_INET;
	t->realm[0] = t->nonce[0] = '\0';
	/* Peers asked for earlier are asked for again on this allocation */
	for (int i = 0; i < TURNC_PERMS_MAX; i++) {
		t->perms[i].busy = 0;
		if (t->perms[i].state != TURNC_ITEM_FREE)
			t->perms[i].state = TURNC_ITEM_WANTED;
	}
	set_state(t, TURNC_ALLOCATING);
	/* RFC 8489 9.2.3: the first request goes without credentials */
	if (txn_start(t, STUN_ALLOCATE, -1, 0, 0, now_ms))
		fail(t, "cannot build the Allocate request");
}

void turn_client_release(struct turn_client *t, uint64_t now_ms)
{
	struct turnc_txn x;

	(void)now_ms;
	if (t->state == TURNC_ALLOCATED) {
		/* RFC 8656 7.3: LIFETIME 0 deletes the allocation */
		memset(&x, 0, sizeof(x));
		x.method = STUN_REFRESH;
		x.item = -1;
		if (!build(t, &x))
			t->send(t->ctx, x.msg, x.len);
		log_debug("turn client: allocation released");
	}
	forget(t);
	memset(t->perms, 0, sizeof(t->perms));
	set_state(t, TURNC_RELEASED);
}

/* ---- permissions and channels ---------------------------------------------- */

static int perm_find(const struct turn_client *t, const struct sockaddr *sa)
{
	for (int i = 0; i < TURNC_PERMS_MAX; i++)
		if (t->perms[i].state != TURNC_ITEM_FREE &&
		    addr_same_ip((const struct sockaddr *)&t->perms[i].ip, sa))
			return i;
	return -1;
}

static int chan_find(const struct turn_client *t, const struct sockaddr *sa)
{
	for (int i = 0; i < TURNC_CHANNELS_MAX; i++)
		if (t->chans[i].state != TURNC_ITEM_FREE &&
		    addr_equal((const struct sockaddr *)&t->chans[i].peer, sa))
			return i;
	return -1;
}

int turn_client_permit(struct turn_client *t, const struct sockaddr *peer,
                       uint64_t now_ms)
{
	struct turnc_perm *p = NULL;
	int i;

	if ((peer->sa_family != AF_INET && peer->sa_family != AF_INET6) ||
	    (t->family && peer->sa_family != t->family))
		return -1;
	if ((i = perm_find(t, peer)) >= 0)
		return t->perms[i].state == TURNC_ITEM_REFUSED ? -1 : 0;
	for (i = 0; i < TURNC_PERMS_MAX && !p; i++)
		if (t->perms[i].state == TURNC_ITEM_FREE)
			p = &t->perms[i];
	if (!p)
		return -1;
	memset(p, 0, sizeof(*p));
	memcpy(&p->ip, peer, addr_len(peer));
	/* RFC 8656 9.1 ignores the port, but a relay may refuse port 0 as
	 * no peer's (ours does): any other will do. */
	if (!addr_port(peer))
		addr_set_port((struct sockaddr *)&p->ip, 9);
	p->state = TURNC_ITEM_WANTED;
	pump(t, now_ms);
	return 0;
}

/* A Send indication (RFC 8656 11.1): XOR-PEER-ADDRESS and DATA, no
 * integrity. */
static int send_indication(struct turn_client *t, const struct sockaddr *peer,
                           const uint8_t *buf, size_t len)
{
	uint8_t out[TURNC_DATA_MAX + 64], txid[STUN_TXID_LEN];
	struct stun_writer w;
	int n;

	rnd_nonce(txid, sizeof(txid));
	stun_writer_init(&w, out, sizeof(out), STUN_SEND, STUN_INDICATION, txid);
	stun_put_xor_addr(&w, STUN_ATTR_XOR_PEER_ADDRESS, peer);
	stun_put_bytes(&w, STUN_ATTR_DATA, buf, len);
	if ((n = stun_writer_finish(&w)) < 0)
		return -1;
	t->send(t->ctx, out, (size_t)n);
	return 0;
}

int turn_client_send(struct turn_client *t, const struct sockaddr *peer,
                     const uint8_t *buf, size_t len, uint64_t now_ms)
{
	uint8_t out[TURNC_CHANNEL_HEADER + TURNC_DATA_MAX];
	int i;

	if (t->state != TURNC_ALLOCATED || len > TURNC_DATA_MAX ||
	    turn_client_permit(t, peer, now_ms))
		return -1;
	i = chan_find(t, peer);
	if (i >= 0 && t->chans[i].state == TURNC_ITEM_OK) {
		/* RFC 8656 12.5: over UDP no padding is needed */
		out[0] = (uint8_t)((TURNC_CHANNEL_FIRST + i) >> 8);
		out[1] = (uint8_t)(TURNC_CHANNEL_FIRST + i);
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		memcpy(out + TURNC_CHANNEL_HEADER, buf, len);
		t->send(t->ctx, out, TURNC_CHANNEL_HEADER + len);
		return 0;
	}
	if (send_indication(t, peer, buf, len))
		return -1;
	if (i >= 0)
		return 0; /* being bound, or refused: indications it is */
	/* A channel for this peer, so that what follows costs 4 bytes of
	 * header rather than 36 or more.  Numbers are never reused within
	 * an allocation (RFC 8656 12: a number stays its peer's). */
	for (i = 0; i < TURNC_CHANNELS_MAX; i++) {
		struct turnc_chan *c = &t->chans[i];

		if (c->state != TURNC_ITEM_FREE)
			continue;
		memset(c, 0, sizeof(*c));
		memcpy(&c->peer, peer, addr_len(peer));
		c->state = TURNC_ITEM_WANTED;
		pump(t, now_ms);
		break;
	}
	return 0;
}

/* ---- responses ------------------------------------------------------------- */

static void on_allocate(struct turn_client *t, const struct turnc_txn *x,
                        const struct stun_msg *m, uint64_t now_ms)
{
	char text[TURNC_REASON_MAX];
	const struct stun_attr *a;
	uint32_t life = TURNC_LIFETIME_DEFAULT_S, refresh_s;

	if (m->cls == STUN_ERROR) {
		if (m->error_code == 401 && !x->authed) {
			/* RFC 8489 9.2.4: the challenge; again, with credentials */
			if (!(m->present & STUN_HAS_REALM) || take_nonce(t, m)) {
				fail(t, "401 from the relay without a usable REALM and NONCE");
				return;
			}
			if (txn_start(t, STUN_ALLOCATE, -1, 0, 0, now_ms))
				fail(t, "cannot build the Allocate request");
			return;
		}
		if (m->error_code == 438 && x->stale < TURNC_STALE_MAX &&
		    !take_nonce(t, m)) {
			if (txn_start(t, STUN_ALLOCATE, -1, 0, x->stale + 1, now_ms))
				fail(t, "cannot build the Allocate request");
			return;
		}
		error_text(m, text, sizeof(text));
		fail(t, "%s%s", text,
		     m->error_code == 401 ? " (wrong credentials?)" : "");
		return;
	}
	a = stun_attr_find(m, STUN_ATTR_XOR_RELAYED_ADDRESS);
	if (!a || stun_addr_decode(&t->relayed, a->value, a->len, m->txid) ||
	    t->relayed.ss_family != t->family) {
		fail(t, "the relay's answer has no usable XOR-RELAYED-ADDRESS");
		return;
	}
	if ((a = stun_attr_find(m, STUN_ATTR_LIFETIME)) && a->len == 4)
		life = get32(a->value);
	if (m->present & STUN_HAS_XOR_MAPPED)
		t->mapped = m->xor_mapped;
	/* Refresh at half the lifetime, or a minute before it ends if that
	 * is sooner, but not in a busy loop on a tiny lifetime. */
	refresh_s = life / 2;
	if (life > 60 && life - 60 < refresh_s)
		refresh_s = life - 60;
	if (refresh_s < TURNC_REFRESH_FLOOR_S)
		refresh_s = TURNC_REFRESH_FLOOR_S;
	t->lifetime_s = life;
	t->expires_ms = now_ms + (uint64_t)life * 1000;
	t->refresh_ms = now_ms + (uint64_t)refresh_s * 1000;
	set_state(t, TURNC_ALLOCATED);
	pump(t, now_ms);
	t->on_event(t->ctx, TURN_CLIENT_EV_ALLOCATED, &t->relayed);
}

static void on_refresh(struct turn_client *t, const struct turnc_txn *x,
                       const struct stun_msg *m, uint64_t now_ms)
{
	char text[TURNC_REASON_MAX];
	const struct stun_attr *a;
	uint32_t life = x->lifetime;

	t->refreshing = 0;
	if (m->cls == STUN_ERROR) {
		if (m->error_code == 438 && x->stale < TURNC_STALE_MAX &&
		    !take_nonce(t, m) &&
		    !txn_start(t, STUN_REFRESH, -1, x->lifetime, x->stale + 1,
		               now_ms)) {
			t->refreshing = 1;
			return;
		}
		error_text(m, text, sizeof(text));
		fail(t, "the relay refused to refresh the allocation: %s", text);
		return;
	}
	if ((a = stun_attr_find(m, STUN_ATTR_LIFETIME)) && a->len == 4)
		life = get32(a->value);
	if (!life) {
		fail(t, "the relay ended the allocation (LIFETIME 0)");
		return;
	}
	t->lifetime_s = life;
	t->expires_ms = now_ms + (uint64_t)life * 1000;
	t->refresh_ms = now_ms + (uint64_t)(life / 2 > TURNC_REFRESH_FLOOR_S ?
	                                            life / 2 :
	                                            TURNC_REFRESH_FLOOR_S) *
	                                 1000;
	log_debug("turn client: allocation refreshed for %u s", life);
}

/* CreatePermission and ChannelBind answers: the item is installed, or
 * refused and not asked for again; neither ends the allocation. */
static void on_item(struct turn_client *t, const struct turnc_txn *x,
                    const struct stun_msg *m, uint64_t now_ms)
{
	int perm = x->method == STUN_CREATE_PERMISSION;
	uint8_t *state = perm ? &t->perms[x->item].state :
	                        &t->chans[x->item].state;
	uint8_t *busy = perm ? &t->perms[x->item].busy :
	                       &t->chans[x->item].busy;
	uint64_t *refresh = perm ? &t->perms[x->item].refresh_ms :
	                           &t->chans[x->item].refresh_ms;
	const struct sockaddr *peer =
		perm ? (const struct sockaddr *)&t->perms[x->item].ip :
		       (const struct sockaddr *)&t->chans[x->item].peer;
	char text[TURNC_REASON_MAX], a[ADDR_STRLEN];

	*busy = 0;
	if (*state == TURNC_ITEM_FREE)
		return;
	if (m->cls == STUN_SUCCESS) {
		*state = TURNC_ITEM_OK;
		*refresh = now_ms + (perm ? TURNC_PERMISSION_REFRESH_S :
		                            TURNC_CHANNEL_REFRESH_S) *
		                            1000ULL;
		log_debug("turn client: %s %s", perm ? "permission for" : "channel bound to",
		          addr_str(peer, a, sizeof(a)));
		return;
	}
	if (m->error_code == 438 && x->stale < TURNC_STALE_MAX &&
	    !take_nonce(t, m) &&
	    !txn_start(t, x->method, x->item, 0, x->stale + 1, now_ms)) {
		*busy = 1;
		return;
	}
	error_text(m, text, sizeof(text));
	log_warn("TURN relay refused %s %s: %s",
	         perm ? "a permission for" : "a channel to",
	         addr_str(peer, a, sizeof(a)), text);
	*state = TURNC_ITEM_REFUSED;
}

/* RFC 8489 9.2.5: a success must carry MESSAGE-INTEGRITY that checks with
 * our key once we have sent it one; an error is checked when signed.
 * 401 and 438 cannot be signed (the relay has not authenticated us), and
 * an unsigned error still needs our 96-bit transaction id to be taken. */
static int trusted(const struct turn_client *t, const struct turnc_txn *x,
                   const struct stun_msg *m, const uint8_t *buf, size_t len)
{
	if (!x->authed || !t->has_key)
		return 1;
	if (m->cls == STUN_ERROR &&
	    !(m->present & (STUN_HAS_INTEGRITY | STUN_HAS_INTEGRITY_SHA256)))
		return 1;
	return stun_check_integrity(m, buf, len, t->key, sizeof(t->key)) ==
	       STUN_OK;
}

/* RFC 8656 11.6: a Data indication, a peer's datagram. */
static void on_data_indication(struct turn_client *t, const struct stun_msg *m)
{
	const struct stun_attr *p = stun_attr_find(m, STUN_ATTR_XOR_PEER_ADDRESS);
	const struct stun_attr *d = stun_attr_find(m, STUN_ATTR_DATA);
	struct sockaddr_storage peer;
	int i;

	/* Only from an IP we asked for, and the relay did not refuse */
	if (t->state != TURNC_ALLOCATED || !p || !d ||
	    stun_addr_decode(&peer, p->value, p->len, m->txid) ||
	    (i = perm_find(t, (const struct sockaddr *)&peer)) < 0 ||
	    t->perms[i].state == TURNC_ITEM_REFUSED) {
		t->malformed++;
		log_debug("turn client: Data indication dropped");
		return;
	}
	t->on_data(t->ctx, (const struct sockaddr *)&peer, d->value, d->len);
}

int turn_client_on_stun(struct turn_client *t, const uint8_t *buf, size_t len,
                        const struct stun_msg *m, uint64_t now_ms)
{
	struct turnc_txn x;
	int i;

	if (m->cls == STUN_INDICATION && m->method == STUN_DATA) {
		on_data_indication(t, m);
		return 1;
	}
	if (m->cls != STUN_SUCCESS && m->cls != STUN_ERROR)
		return 0;
	for (i = 0; i < TURNC_TXNS; i++)
		if (t->txns[i].used && t->txns[i].method == m->method &&
		    !memcmp(t->txns[i].txid, m->txid, STUN_TXID_LEN))
			break;
	if (i == TURNC_TXNS)
		return 0;
	if (!trusted(t, &t->txns[i], m, buf, len)) {
		t->bad_integrity++;
		log_debug("turn client: %s response dropped: bad MESSAGE-INTEGRITY",
		          stun_class_str(m->cls));
		return 1;
	}
	/* The slot is free before the handlers run: they may start the next
	 * request in it. */
	x = t->txns[i];
	t->txns[i].used = 0;
	switch (x.method) {
	case STUN_ALLOCATE:
		on_allocate(t, &x, m, now_ms);
		break;
	case STUN_REFRESH:
		on_refresh(t, &x, m, now_ms);
		break;
	default:
		on_item(t, &x, m, now_ms);
		break;
	}
	pump(t, now_ms);
	return 1;
}

/* RFC 8656 12.6: ChannelData from the relay.  Its length must fit in the
 * datagram, with at most 3 bytes of padding after it. */
int turn_client_on_channel(struct turn_client *t, const uint8_t *buf,
                           size_t len)
{
	const struct turnc_chan *c;
	size_t dlen;
	int number;

	if (t->state != TURNC_ALLOCATED || len < TURNC_CHANNEL_HEADER)
		goto bad;
	number = buf[0] << 8 | buf[1];
	dlen = (size_t)(buf[2] << 8 | buf[3]);
	if (dlen + TURNC_CHANNEL_HEADER > len ||
	    len - dlen - TURNC_CHANNEL_HEADER > 3 ||
	    number < TURNC_CHANNEL_FIRST ||
	    number >= TURNC_CHANNEL_FIRST + TURNC_CHANNELS_MAX)
		goto bad;
	/* Ours once asked for: the relay uses it only once it is bound,
	 * which may be before its answer reaches us. */
	c = &t->chans[number - TURNC_CHANNEL_FIRST];
	if (c->state != TURNC_ITEM_OK &&
	    !(c->state == TURNC_ITEM_WANTED && c->busy))
		goto bad;
	t->on_data(t->ctx, (const struct sockaddr *)&c->peer,
	           buf + TURNC_CHANNEL_HEADER, dlen);
	return 1;
bad:
	t->malformed++;
	log_debug("turn client: ChannelData of %zu bytes dropped", len);
	return 0;
}

/* ---- timers ---------------------------------------------------------------- */

static void on_give_up(struct turn_client *t, const struct turnc_txn *x,
                       uint64_t now_ms)
{
	switch (x->method) {
	case STUN_ALLOCATE:
		fail(t, "no answer from the relay");
		return;
	case STUN_REFRESH:
		/* Not yet lost: try again at once, until it expires. */
		t->refreshing = 0;
		t->refresh_ms = now_ms;
		log_info("TURN relay not answering the refresh; still trying");
		return;
	case STUN_CREATE_PERMISSION:
		t->perms[x->item].busy = 0;
		t->perms[x->item].refresh_ms = now_ms;
		return;
	default:
		t->chans[x->item].busy = 0;
		t->chans[x->item].refresh_ms = now_ms;
		return;
	}
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The next deadline.  Something due but not started waits for a
 * transaction slot, whose request's deadline is in the list already. */
static uint64_t next_deadline(const struct turn_client *t, uint64_t now_ms)
{
	uint64_t next = UINT64_MAX;

	for (int i = 0; i < TURNC_TXNS; i++)
		if (t->txns[i].used)
			next = min64(next, rtx_deadline(&t->txns[i].rtx, &rtx_stun));
	if (t->state != TURNC_ALLOCATED)
		return next;
	next = min64(next, t->expires_ms);
	if (!t->refreshing && t->refresh_ms > now_ms)
		next = min64(next, t->refresh_ms);
	for (int i = 0; i < TURNC_PERMS_MAX; i++)
		if (t->perms[i].state == TURNC_ITEM_OK && !t->perms[i].busy &&
		    t->perms[i].refresh_ms > now_ms)
			next = min64(next, t->perms[i].refresh_ms);
	for (int i = 0; i < TURNC_CHANNELS_MAX; i++)
		if (t->chans[i].state == TURNC_ITEM_OK && !t->chans[i].busy &&
		    t->chans[i].refresh_ms > now_ms)
			next = min64(next, t->chans[i].refresh_ms);
	return next;
}

uint64_t turn_client_tick(struct turn_client *t, uint64_t now_ms)
{
	for (int i = 0; i < TURNC_TXNS; i++) {
		struct turnc_txn *x = &t->txns[i];
		struct turnc_txn copy;

		if (!x->used)
			continue;
		switch (rtx_poll(&x->rtx, &rtx_stun, now_ms)) {
		case RTX_SEND:
			t->send(t->ctx, x->msg, x->len);
			rtx_sent(&x->rtx, &rtx_stun, now_ms, rnd_u32());
			break;
		case RTX_GIVE_UP:
			copy = *x;
			x->used = 0;
			on_give_up(t, &copy, now_ms);
			break;
		case RTX_WAIT:
			break;
		}
		if (t->state == TURNC_FAILED)
			return UINT64_MAX;
	}
	if (t->state == TURNC_ALLOCATED && now_ms >= t->expires_ms) {
		fail(t, "the allocation expired: the relay did not answer the refreshes");
		return UINT64_MAX;
	}
	pump(t, now_ms);
	return next_deadline(t, now_ms);
}

int turn_uri_parse(const char *uri, char user[TURNC_USERNAME_MAX + 1],
                   char pass[TURNC_PASSWORD_MAX + 1], char *hostport,
                   size_t hostport_len, const char **why)
{
	const char *at, *colon, *creds;
	size_t ulen, plen, hlen;

	if (strncmp(uri, "turn:", 5)) {
		*why = "expected turn:USER:PASS@HOST:PORT";
		return -1;
	}
	creds = uri + 5;
	if (!(at = strrchr(creds, '@'))) {
		*why = "no '@': expected turn:USER:PASS@HOST:PORT";
		return -1;
	}
	colon = NULL;
	for (const char *p = creds; p < at; p++)
		if (*p == ':')
			colon = p;
	if (!colon) {
		*why = "no password: expected turn:USER:PASS@HOST:PORT";
		return -1;
	}
	ulen = (size_t)(colon - creds);
	plen = (size_t)(at - colon - 1);
	hlen = strlen(at + 1);
	if (!ulen || !plen) {
		*why = "empty user or password";
		return -1;
	}
	if (ulen > TURNC_USERNAME_MAX || plen > TURNC_PASSWORD_MAX) {
		*why = "user or password longer than 128 bytes";
		return -1;
	}
	if (!hlen || hlen >= hostport_len || !strrchr(at + 1, ':') ||
	    strrchr(at + 1, ':')[1] == '\0') {
		*why = "expected HOST:PORT after '@'";
		return -1;
	}
	for (const char *p = uri; *p; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
			*why = "spaces and control characters are not allowed";
			return -1;
		}
	memcpy(user, creds, ulen);
	user[ulen] = '\0';
	memcpy(pass, colon + 1, plen);
	pass[plen] = '\0';
	memcpy(hostport, at + 1, hlen + 1);
	return 0;
}
