#include "rendezvous_client.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "rnd.h"
#include "term.h"

void rdvc_init(struct rdv_client *rc, const struct sockaddr *server,
               const struct punch_peer *self, rdvc_send_fn *send,
               rdvc_event_fn *on_event, void *ctx)
{
	memset(rc, 0, sizeof(*rc));
	memcpy(&rc->server, server, addr_len(server));
	rc->self = *self;
	rc->send = send;
	rc->on_event = on_event;
	rc->ctx = ctx;
}

const char *rdvc_state_str(enum rdvc_state s)
{
	switch (s) {
	case RDVC_IDLE: return "idle";
	case RDVC_DISCOVERING: return "discovering";
	case RDVC_DISCOVERED: return "discovered";
	case RDVC_REGISTERING: return "registering";
	case RDVC_REGISTERED: return "registered";
	}
	return "?";
}

/* Every state change goes through here, and is logged old -> new. */
static void set_state(struct rdv_client *rc, enum rdvc_state s)
{
	if (rc->state == s)
		return;
	log_debug("rendezvous: %s -> %s", rdvc_state_str(rc->state),
	          rdvc_state_str(s));
	rc->state = s;
}

void rdvc_set_key(struct rdv_client *rc, const struct sign_key *key)
{
	rc->key = key;
}

static int pinned(const struct rdv_client *rc, const uint8_t fp[SIGN_FP_LEN])
{
	for (int i = 0; i < rc->server_pinned; i++)
		if (!memcmp(fp, rc->server_fp[i], SIGN_FP_LEN))
			return 1;
	return 0;
}

void rdvc_pin_server(struct rdv_client *rc, const uint8_t fp[SIGN_FP_LEN])
{
	if (pinned(rc, fp) || rc->server_pinned == RDVC_PINS_MAX)
		return;
	memcpy(rc->server_fp[rc->server_pinned++], fp, SIGN_FP_LEN);
}

static void renew_forget(struct rdv_client *rc);

void rdvc_move(struct rdv_client *rc, const struct sockaddr *server)
{
	memset(&rc->server, 0, sizeof(rc->server));
	memcpy(&rc->server, server, addr_len(server));
	rc->server_pinned = 0;
	rc->nonce[0] = '\0';
	rc->busy = 0;
	rc->retry_ms = 0;
	rc->stale_438 = 0;
	rc->missed = 0;
	renew_forget(rc); /* its key was the lost server's */
	/* the lost server's relay is not this one's */
	rc->has_relay = 0;
	if (rc->state == RDVC_REGISTERED)
		set_state(rc, RDVC_DISCOVERED);
}

static const struct rtx_params alt_rtx = {
	.rto_ms = RDVC_ALT_RTO_MS,
	.timeout_ms = RDVC_ALT_TIMEOUT_MS,
};

static const struct rtx_params first_rtx = {
	.rto_ms = RDVC_FIRST_RTO_MS,
	.rc = RDVC_FIRST_RC,
	.rm = RTX_RM,
};

/* Once registered, a refresh: RFC 8489's schedule, cut short (failover,
 * rendezvous_client.h). */
static const struct rtx_params refresh_rtx = {
	.rto_ms = RTX_RTO_MS,
	.rc = RTX_RC,
	.rm = RTX_RM,
	.timeout_ms = RDVC_REFRESH_TIMEOUT_MS,
};

/* Where the outstanding request goes. */
static const struct sockaddr *txn_dest(const struct rdv_client *rc)
{
	return (const struct sockaddr *)(rc->rtx_params == &alt_rtx ?
	                                         &rc->alt :
	                                         &rc->server);
}

int rdvc_is_server(const struct rdv_client *rc, const struct sockaddr *from)
{
	return addr_equal(from, (const struct sockaddr *)&rc->server) ||
	       (rc->busy && rc->rtx_params == &alt_rtx &&
	        addr_equal(from, (const struct sockaddr *)&rc->alt));
}

/* Start a new request transaction with the message now in rc->msg. */
static void txn_start(struct rdv_client *rc, uint64_t now_ms)
{
	rc->busy = 1;
	if (!rc->rtx_params)
		rc->rtx_params = &rtx_stun;
	rtx_start(&rc->rtx, rc->rtx_params, now_ms);
	rdvc_tick(rc, now_ms);
}

static void build_begin(struct rdv_client *rc, struct stun_writer *w,
                        uint16_t method)
{
	rnd_nonce(rc->txid, sizeof(rc->txid));
	rc->method = method;
	stun_writer_init(w, rc->msg, sizeof(rc->msg), method, STUN_REQUEST,
	                 rc->txid);
}

static int build_end(struct rdv_client *rc, struct stun_writer *w)
{
	int n;

	/* RENEW: the MAC under the registration's key ("RENEW").  REGISTER
	 * and RELEASE: NONCE, then the proof of our key over all of it
	 * (docs/protocol.md, "Signatures"). */
	if (rc->method == PUNCH_RENEW) {
		stun_put_integrity_sha256(w, rc->renew_key,
		                          sizeof(rc->renew_key));
	} else if (rc->method != STUN_BINDING) {
		if (rc->nonce[0])
			stun_put_bytes(w, STUN_ATTR_NONCE, rc->nonce,
			               strlen(rc->nonce));
		if (rc->key)
			sign_put(w, PUNCH_ATTR_PUBKEY, rc->key);
	}
	stun_put_fingerprint(w);
	n = stun_writer_finish(w);
	if (n < 0) {
		log_error("cannot build a request: %s", stun_err_str(n));
		return -1;
	}
	rc->len = (size_t)n;
	return 0;
}

void rdvc_start(struct rdv_client *rc, uint64_t now_ms)
{
	struct stun_writer w;

	rc->rtx_params = &first_rtx;
	build_begin(rc, &w, STUN_BINDING);
	if (build_end(rc, &w))
		return;
	set_state(rc, RDVC_DISCOVERING);
	txn_start(rc, now_ms);
}

/* The mapping test (docs/protocol.md, "PUNCH-NAT"): the same Binding from
 * the same socket to the server's OTHER-ADDRESS (RFC 5780 4.3).  Its
 * mapped address, next to the first, tells whether our NAT maps
 * endpoint-independently. */
static void ask_alt(struct rdv_client *rc, const struct sockaddr *other,
                    uint64_t now_ms)
{
	struct stun_writer w;

	memcpy(&rc->alt, other, addr_len(other));
	rc->alt_asked = 1;
	rc->rtx_params = &alt_rtx;
	build_begin(rc, &w, STUN_BINDING);
	if (build_end(rc, &w))
		return;
	txn_start(rc, now_ms);
}

static void discovered(struct rdv_client *rc)
{
	rc->rtx_params = &rtx_stun;
	set_state(rc, RDVC_DISCOVERED);
	rc->on_event(rc->ctx, RDVC_EV_DISCOVERED, &rc->srflx);
}

static void on_binding(struct rdv_client *rc, const struct stun_msg *m,
                       uint64_t now_ms)
{
	if (rc->rtx_params == &alt_rtx) {
		/* the mapping test's answer: any failure is only "unknown" */
		if (m->cls == STUN_SUCCESS && (m->present & STUN_HAS_XOR_MAPPED)) {
			rc->srflx_alt = m->xor_mapped;
			rc->has_srflx_alt = 1;
		}
		discovered(rc);
		return;
	}
	if (m->cls != STUN_SUCCESS || !(m->present & STUN_HAS_XOR_MAPPED)) {
		rc->on_event(rc->ctx, RDVC_EV_REFUSED,
		             "the server did not answer the Binding request with an address");
		return;
	}
	rc->srflx = m->xor_mapped;
	/* An OTHER-ADDRESS of another family, or the server's own, tests
	 * nothing. */
	if (!rc->alt_asked && (m->present & STUN_HAS_OTHER_ADDRESS) &&
	    m->other_address.ss_family == rc->server.ss_family &&
	    !addr_equal((const struct sockaddr *)&m->other_address,
	                (const struct sockaddr *)&rc->server)) {
		ask_alt(rc, (const struct sockaddr *)&m->other_address, now_ms);
		return;
	}
	discovered(rc);
}

void rdvc_register(struct rdv_client *rc, uint64_t now_ms)
{
	struct stun_writer w;

	rc->rtx_params = rc->ever_registered ? &refresh_rtx : &rtx_stun;
	build_begin(rc, &w, PUNCH_REGISTER);
	punch_peer_put(&w, &rc->self, 1);
	if (build_end(rc, &w))
		return;
	if (rc->state != RDVC_REGISTERED)
		set_state(rc, RDVC_REGISTERING);
	txn_start(rc, now_ms);
}

/* RENEW (docs/protocol.md): our id and session, a sequence number above
 * the last, and the MAC; nothing the server must check a signature for. */
static void renew(struct rdv_client *rc, uint64_t now_ms)
{
	uint8_t session[8];
	struct stun_writer w;

	for (int i = 0; i < 8; i++)
		session[i] = (uint8_t)(rc->self.session >> (56 - 8 * i));
	/* a refresh like any other: missed after RDVC_REFRESH_TIMEOUT_MS, so
	 * that three missed ones mean the server is lost (failover) */
	rc->rtx_params = &refresh_rtx;
	build_begin(rc, &w, PUNCH_RENEW);
	stun_put_bytes(&w, PUNCH_ATTR_ID, rc->self.id, strlen(rc->self.id));
	stun_put_bytes(&w, PUNCH_ATTR_SESSION, session, sizeof(session));
	stun_put_u32(&w, PUNCH_ATTR_RENEW_SEQ, ++rc->renew_seq);
	if (build_end(rc, &w))
		return;
	txn_start(rc, now_ms);
}

void rdvc_refresh(struct rdv_client *rc, uint64_t now_ms)
{
	if (rc->has_renew_key && rc->state == RDVC_REGISTERED)
		renew(rc, now_ms);
	else
		rdvc_register(rc, now_ms);
}

/* No RENEW until a signed REGISTER gives a key.  The sequence number is
 * kept: the server may give the same key again (the same session from the
 * same address) and keeps its last number with it, so ours only rises. */
static void renew_forget(struct rdv_client *rc)
{
	rc->has_renew_key = 0;
	sodium_memzero(rc->renew_key, sizeof(rc->renew_key));
}

void rdvc_release(struct rdv_client *rc, uint64_t now_ms)
{
	struct stun_writer w;

	rc->rtx_params = &rtx_stun;
	build_begin(rc, &w, PUNCH_RELEASE);
	stun_put_bytes(&w, PUNCH_ATTR_ID, rc->self.id, strlen(rc->self.id));
	if (build_end(rc, &w))
		return;
	set_state(rc, RDVC_REGISTERING);
	txn_start(rc, now_ms);
}

static void resend(struct rdv_client *rc, uint64_t now_ms)
{
	if (rc->method == PUNCH_RELEASE)
		rdvc_release(rc, now_ms);
	else
		rdvc_register(rc, now_ms);
}

/* Is m signed by the server's key?  1 if so, 0 to drop it, -1 if it is an
 * answer to our request signed by another key (the key changed).  On
 * first use, an answer to our request pins the key. */
static int server_signed(struct rdv_client *rc, const struct stun_msg *m,
                         const uint8_t *buf, size_t len, int ours)
{
	uint8_t pk[SIGN_PK_LEN], fp[SIGN_FP_LEN];
	int rc_sig = sign_verify(m, buf, len, PUNCH_ATTR_SERVER_KEY, pk);

	if (rc_sig) {
		rc->unsigned_dropped++;
		log_debug("rendezvous: %s from the server dropped: %s",
		          stun_class_str(m->cls), sign_err_str(rc_sig));
		return 0;
	}
	sign_fp(pk, fp);
	if (rc->server_pinned) {
		if (pinned(rc, fp))
			return 1;
		rc->unsigned_dropped++;
		log_debug("rendezvous: %s signed by another key dropped",
		          stun_class_str(m->cls));
		if (!ours)
			return 0;
		/* fatal: nothing more goes to this server */
		rc->busy = 0;
		rc->retry_ms = 0;
		set_state(rc, RDVC_IDLE);
		rc->on_event(rc->ctx, RDVC_EV_SERVER_KEY_CHANGED, fp);
		return -1;
	}
	if (!ours) {
		/* not pinned yet: only an answer to us may pin the key */
		rc->unsigned_dropped++;
		log_debug("rendezvous: PEER-INFO before the server's key is known dropped");
		return 0;
	}
	rdvc_pin_server(rc, fp);
	rc->on_event(rc->ctx, RDVC_EV_SERVER_KEY, fp);
	return 1;
}

static void answer_peer_info(struct rdv_client *rc, const struct stun_msg *m)
{
	uint8_t buf[128];
	struct stun_writer w;
	int n;

	stun_writer_init(&w, buf, sizeof(buf), PUNCH_PEER_INFO, STUN_SUCCESS,
	                 m->txid);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	if (n > 0)
		rc->send(rc->ctx, (const struct sockaddr *)&rc->server, buf,
		         (size_t)n);
}

static void on_peer_info(struct rdv_client *rc, const struct stun_msg *m,
                         const uint8_t *buf, size_t len)
{
	struct punch_peer peer;
	const char *why;

	if (server_signed(rc, m, buf, len, 0) != 1)
		return; /* unanswered: the real server sends it again */
	/* Answer even a repeat: our last answer may have been lost. */
	answer_peer_info(rc, m);
	if (punch_peer_parse(&peer, m, &why)) {
		log_debug("rendezvous: bad PEER-INFO dropped: %s", why);
		return;
	}
	if (strcmp(peer.id, rc->self.peer_id)) {
		log_debug("rendezvous: PEER-INFO for %s, not %s: dropped",
		          peer.id, rc->self.peer_id);
		return;
	}
	rc->on_event(rc->ctx, RDVC_EV_PEER_INFO, &peer);
}

static void on_register_error(struct rdv_client *rc, const struct stun_msg *m,
                              uint64_t now_ms)
{
	char reason[TERM_ESCAPE_SIZE(STUN_MAX_REASON) + 32];

	if (m->error_code == 438 && (m->present & STUN_HAS_NONCE) &&
	    m->nonce.len <= RDVC_NONCE_MAX) {
		/* The server's return-routability nonce: again, with it, at
		 * once the first time.  A 438 to a request that already had a
		 * nonce (a new server, a rebinding NAT) is retried after a
		 * pause, so that a confused server cannot cause a storm. */
		int had_nonce = rc->nonce[0] != '\0';

		memcpy(rc->nonce, m->nonce.ptr, m->nonce.len);
		rc->nonce[m->nonce.len] = '\0';
		if (!had_nonce || rc->stale_438 == 0) {
			rc->stale_438++;
			resend(rc, now_ms);
		} else {
			rc->retry_ms = now_ms + rtx_jitter(
							(uint64_t)RTX_RTO_MS << (rc->stale_438 < 5 ? rc->stale_438 : 5),
							rnd_u32());
			rc->stale_438++;
		}
		return;
	}
	/* The server's reason phrase is printed: escape it (term.h). */
	snprintf(reason, sizeof(reason), "%u ", m->error_code);
	term_escape(reason + strlen(reason), sizeof(reason) - strlen(reason),
	            m->reason.ptr, m->reason.len);
	rc->on_event(rc->ctx, RDVC_EV_REFUSED, reason);
}

/* PUNCH-RELAY (docs/protocol.md): the username's length in one byte, the
 * username, the password; both printable ASCII.  Kept only if well formed:
 * the server is trusted (signed) but its bytes are still checked. */
static void take_relay(struct rdv_client *rc, const struct stun_msg *m)
{
	const struct stun_attr *a = punch_attr_find(m, PUNCH_ATTR_RELAY);
	size_t ulen, plen;

	if (!a)
		return;
	ulen = a->len ? a->value[0] : 0;
	plen = a->len > 1 + ulen ? a->len - 1 - ulen : 0;
	if (!ulen || !plen || 1 + ulen + plen != a->len ||
	    plen > RDVC_RELAY_PASS_MAX) {
		log_debug("rendezvous: malformed PUNCH-RELAY ignored");
		return;
	}
	for (size_t i = 1; i < a->len; i++)
		if (a->value[i] < 0x21 || a->value[i] > 0x7e) {
			log_debug("rendezvous: PUNCH-RELAY with a bad byte ignored");
			return;
		}
	memcpy(rc->relay_user, a->value + 1, ulen);
	rc->relay_user[ulen] = '\0';
	memcpy(rc->relay_pass, a->value + 1 + ulen, plen);
	rc->relay_pass[plen] = '\0';
	rc->has_relay = 1;
}

/* PUNCH-RENEW-KEY, in a signed REGISTER success: 32 bytes, or none (a
 * server of an older version, or a shared registry): then refreshes stay
 * signed REGISTERs. */
static void take_renew_key(struct rdv_client *rc, const struct stun_msg *m)
{
	const struct stun_attr *a = punch_attr_find(m, PUNCH_ATTR_RENEW_KEY);

	renew_forget(rc);
	if (!a || a->len != PUNCH_RENEW_KEY_LEN) {
		if (a)
			log_debug("rendezvous: malformed PUNCH-RENEW-KEY ignored");
		return;
	}
	memcpy(rc->renew_key, a->value, PUNCH_RENEW_KEY_LEN);
	rc->has_renew_key = 1;
}

static void on_register_ok(struct rdv_client *rc, const struct stun_msg *m,
                           uint64_t now_ms);

/* The answer to a RENEW.  A success must carry our MAC: else dropped, as
 * a badly signed answer is, and the RENEW is sent again.  An error needs
 * none: whoever sent it can only make us do what we may always do, a
 * signed REGISTER, at once. */
static void on_renew_answer(struct rdv_client *rc, const uint8_t *buf,
                            size_t len, const struct stun_msg *m,
                            uint64_t now_ms)
{
	if (m->cls == STUN_SUCCESS) {
		if (!(m->present & STUN_HAS_INTEGRITY_SHA256) ||
		    stun_check_integrity(m, buf, len, rc->renew_key,
		                         sizeof(rc->renew_key)) != STUN_OK) {
			rc->unsigned_dropped++;
			log_debug("rendezvous: RENEW answer without our MAC dropped");
			return;
		}
		rc->busy = 0;
		on_register_ok(rc, m, now_ms);
		return;
	}
	log_debug("rendezvous: RENEW refused (%u); registering again",
	          m->error_code);
	rc->busy = 0;
	renew_forget(rc);
	rdvc_register(rc, now_ms);
}

/* A third of the lifetime, and at most RDVC_REFRESH_MAX_MS: the refresh
 * is also what keeps our NAT's mapping toward the server open, so that a
 * PEER-INFO can still reach us (many NATs drop an idle UDP mapping after
 * 30 s). */
static uint64_t refresh_interval_ms(uint32_t lifetime_s)
{
	uint64_t ms = (uint64_t)lifetime_s * 1000 / RDVC_REFRESH_DIVISOR;

	return ms < RDVC_REFRESH_MAX_MS ? ms : RDVC_REFRESH_MAX_MS;
}

static void on_register_ok(struct rdv_client *rc, const struct stun_msg *m,
                           uint64_t now_ms)
{
	const struct stun_attr *a = punch_attr_find(m, PUNCH_ATTR_LIFETIME);
	const struct stun_attr *st = punch_attr_find(m, PUNCH_ATTR_STATUS);
	uint32_t lifetime = 30, status = PUNCH_STATUS_WAITING;

	if (a && a->len == 4)
		lifetime = (uint32_t)a->value[0] << 24 | (uint32_t)a->value[1] << 16 |
		           (uint32_t)a->value[2] << 8 | a->value[3];
	if (st && st->len == 4)
		status = st->value[3];
	if (lifetime < 3)
		lifetime = 3;
	if (lifetime > RDVC_LIFETIME_MAX_S)
		lifetime = RDVC_LIFETIME_MAX_S;
	/* A RENEW answer is under a MAC whose key went in clear: its LIFETIME
	 * is not trusted to stretch the schedule; the signed REGISTER's is. */
	if (m->method == PUNCH_RENEW && rc->lifetime_s)
		lifetime = rc->lifetime_s;
	rc->lifetime_s = lifetime;
	rc->refresh_ms = now_ms + refresh_interval_ms(lifetime);
	rc->ever_registered = 1;
	rc->stale_438 = 0;
	if (m->method == PUNCH_RELEASE) {
		set_state(rc, RDVC_IDLE);
		rc->on_event(rc->ctx, RDVC_EV_RELEASED, NULL);
		return;
	}
	/* Relay credentials, too, only from a signed answer: a RENEW's never
	 * carries any. */
	if (m->method == PUNCH_REGISTER) {
		take_renew_key(rc, m);
		take_relay(rc, m);
	} else {
		rc->renewed++;
	}
	set_state(rc, RDVC_REGISTERED);
	rc->on_event(rc->ctx, RDVC_EV_REGISTERED, &status);
}

int rdvc_on_stun(struct rdv_client *rc, const uint8_t *buf, size_t len,
                 const struct stun_msg *m, uint64_t now_ms)
{
	if (m->cls == STUN_REQUEST && m->method == PUNCH_PEER_INFO) {
		on_peer_info(rc, m, buf, len);
		return 1;
	}
	if ((m->cls != STUN_SUCCESS && m->cls != STUN_ERROR) || !rc->busy ||
	    memcmp(m->txid, rc->txid, STUN_TXID_LEN) || m->method != rc->method)
		return 0;
	if (m->method == PUNCH_RENEW) {
		on_renew_answer(rc, buf, len, m, now_ms);
		return 1;
	}
	/* Binding responses are not signed (plain STUN); everything else of
	 * the rendezvous is. */
	if (m->method != STUN_BINDING && server_signed(rc, m, buf, len, 1) != 1)
		return 1;
	rc->busy = 0;
	rc->missed = 0;
	if (m->method == STUN_BINDING) {
		on_binding(rc, m, now_ms);
	} else if (m->cls == STUN_ERROR) {
		on_register_error(rc, m, now_ms);
	} else {
		on_register_ok(rc, m, now_ms);
	}
	return 1;
}

uint64_t rdvc_tick(struct rdv_client *rc, uint64_t now_ms)
{
	const struct rtx_params *rp = rc->rtx_params ? rc->rtx_params : &rtx_stun;
	enum rtx_due due = rc->busy ? rtx_poll(&rc->rtx, rp, now_ms) : RTX_WAIT;

	if (due == RTX_GIVE_UP && rp == &alt_rtx) {
		/* no answer from the alternate address: mapping unknown */
		rc->busy = 0;
		discovered(rc);
		return rdvc_tick(rc, now_ms);
	}
	if (due == RTX_GIVE_UP) {
		rc->busy = 0;
		if (!rc->ever_registered) {
			rc->on_event(rc->ctx, RDVC_EV_UNREACHABLE, NULL);
			return UINT64_MAX;
		}
		/* A refresh went unanswered (the server may be restarting):
		 * keep the registration alive by trying again, at once until
		 * the server counts as lost, then once an interval. */
		rc->missed++;
		log_info("rendezvous server not answering (%d refreshes missed); still trying",
		         rc->missed);
		rc->refresh_ms = now_ms;
		if (rc->missed >= RDVC_MISSED_MAX)
			rc->refresh_ms += rtx_jitter(refresh_interval_ms(rc->lifetime_s),
			                             rnd_u32());
		if (rc->missed % RDVC_MISSED_MAX == 0)
			rc->on_event(rc->ctx, RDVC_EV_SERVER_LOST, &rc->missed);
		/* it may have restarted, with our registration lost */
		renew_forget(rc);
	}
	if (due == RTX_SEND) {
		rc->send(rc->ctx, txn_dest(rc), rc->msg, rc->len);
		rtx_sent(&rc->rtx, rp, now_ms, rnd_u32());
	}
	if (!rc->busy && rc->retry_ms && now_ms >= rc->retry_ms) {
		rc->retry_ms = 0;
		resend(rc, now_ms);
	}
	if (!rc->busy && rc->state == RDVC_REGISTERED && now_ms >= rc->refresh_ms)
		rdvc_refresh(rc, now_ms);
	if (rc->busy)
		return rtx_deadline(&rc->rtx, rc->rtx_params);
	if (rc->retry_ms)
		return rc->retry_ms;
	return rc->state == RDVC_REGISTERED ? rc->refresh_ms : UINT64_MAX;
}
