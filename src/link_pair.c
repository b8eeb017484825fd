#include "link_pair.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* The RFC 5705 label of the exporter that is CPace's sid. */
static const char sid_label[] = "EXPORTER-punch-pair-sid";

static const char *const state_names[] = {
	[PAIR_STATE_OFF] = "off",
	[PAIR_STATE_WAIT_LINK] = "wait-link",
	[PAIR_STATE_SHARE] = "share",
	[PAIR_STATE_CONFIRM] = "confirm",
	[PAIR_STATE_FINISH] = "finish",
	[PAIR_STATE_DONE] = "done",
	[PAIR_STATE_FAILED] = "failed",
};

static void set_state(struct link_pair *p, enum pair_state s)
{
	log_debug("pairing: %s -> %s", state_names[p->state], state_names[s]);
	p->state = s;
	if (s == PAIR_STATE_DONE || s == PAIR_STATE_FAILED)
		pake_wipe(&p->pake);
}

static int fail(struct link_pair *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int fail(struct link_pair *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->why, sizeof(p->why), fmt, ap);
	va_end(ap);
	set_state(p, PAIR_STATE_FAILED);
	return PAIR_FAIL;
}

/* The peer's first unidirectional stream: the server's ids are 3, 7, ...,
 * the client's 2, 6, ... (RFC 9000 2.1). */
static int64_t peer_stream(const struct link_pair *p)
{
	return p->is_client ? 3 : 2;
}

void link_pair_init(struct link_pair *p, const char *code,
                    const char *peer_id, const char *dir, int is_client)
{
	memset(p, 0, sizeof(*p));
	p->peer_id = peer_id;
	p->dir = dir;
	p->is_client = is_client;
	p->out = -1;
	if (code) {
		snprintf(p->code, sizeof(p->code), "%s", code);
		p->state = PAIR_STATE_WAIT_LINK;
	}
}

int link_pair_pending(const struct link_pair *p)
{
	return p->state != PAIR_STATE_OFF && p->state != PAIR_STATE_DONE;
}

int link_pair_owns(const struct link_pair *p, int64_t id)
{
	return p->state != PAIR_STATE_OFF && (id == p->out || id == peer_stream(p));
}

const char *link_pair_why(const struct link_pair *p)
{
	return p->why;
}

void link_pair_wipe(struct link_pair *p)
{
	pake_wipe(&p->pake);
	sodium_memzero(p->code, sizeof(p->code));
}

/* The peer proved the code: pin its key under its id. */
static void pin(struct link_pair *p)
{
	char fps[IDENTITY_FP_STRLEN], was[48] = "";
	int line = 0;
	int known = known_peers_check(p->dir, p->peer_id, p->peer_fp, &line);

	identity_fp_str(p->peer_fp, fps);
	if (known == KNOWN_MATCH) {
		fprintf(stderr, "Paired with %s: the code matched; its key %s was already in %s/known_peers\n",
		        p->peer_id, fps, p->dir);
		return;
	}
	if (known == KNOWN_MISMATCH)
		snprintf(was, sizeof(was), " (replacing line %d)", line);
	if (known_peers_set(p->dir, p->peer_id, p->peer_fp)) {
		log_warn("cannot write %s/known_peers; %s's key %s is not pinned",
		         p->dir, p->peer_id, fps);
		return;
	}
	fprintf(stderr, "Paired with %s: the code matched; its key %s is pinned in %s/known_peers%s\n",
	        p->peer_id, fps, p->dir, was);
}

static int write_all(struct quic *q, int64_t id, const void *d, size_t n)
{
	return quic_write(q, id, d, n) == (long)n ? 0 : -1;
}

/* Move on with what the peer's stream holds so far. */
static int advance(struct link_pair *p, struct quic *q)
{
	const uint8_t *share, *mac;
	uint8_t own[PAKE_MAC_LEN];

	if (p->state == PAIR_STATE_SHARE && (share = pake_rx_share(&p->rx))) {
		if (pake_finish(&p->pake, share, NULL, 0))
			return fail(p, "pairing code did not match: %s sent a share that is refused (not a ristretto255 element, or our own sent back); nothing was pinned",
			            p->peer_id);
		pake_mac_own(&p->pake, own);
		if (write_all(q, p->out, own, sizeof(own)))
			return fail(p, "pairing with %s failed: cannot write on the link", p->peer_id);
		set_state(p, PAIR_STATE_CONFIRM);
	}
	if (p->state == PAIR_STATE_CONFIRM && (mac = pake_rx_mac(&p->rx))) {
		if (pake_mac_check(&p->pake, mac))
			return fail(p, "pairing code did not match: %s's confirmation is wrong (it has another code, or someone is in the middle); nothing was pinned",
			            p->peer_id);
		pin(p);
		/* FIN says "your confirmation was right": the peer starts
		 * its app on it. */
		if (quic_write_fin(q, p->out))
			return fail(p, "pairing with %s failed: cannot write on the link", p->peer_id);
		set_state(p, PAIR_STATE_FINISH);
	}
	if (p->state == PAIR_STATE_FINISH && p->rx.fin)
		set_state(p, PAIR_STATE_DONE);
	return PAIR_TAKEN;
}

int link_pair_start(struct link_pair *p, struct quic *q,
                    const uint8_t own_fp[IDENTITY_FP_LEN],
                    const uint8_t peer_fp[IDENTITY_FP_LEN], uint64_t now_ns)
{
	uint8_t sid[PAKE_SID_LEN], ci[PAKE_CI_MAX];
	size_t ci_len;
	int rc;

	if (p->state != PAIR_STATE_WAIT_LINK)
		return 0;
	memcpy(p->peer_fp, peer_fp, IDENTITY_FP_LEN);
	/* CI: both keys, the QUIC client's first; sid: this link's own
	 * exporter. */
	ci_len = p->is_client ? pake_ci(own_fp, peer_fp, ci) :
	                        pake_ci(peer_fp, own_fp, ci);
	if (quic_export(q, sid_label, sid, sizeof(sid)) ||
	    pake_start(&p->pake, p->is_client, p->code, ci, ci_len, sid,
	               sizeof(sid), NULL, 0, NULL))
		return fail(p, "pairing with %s failed: cannot start CPace", p->peer_id);
	p->out = quic_open_stream(q, 0);
	if (p->out < 0 ||
	    write_all(q, p->out, PAKE_STREAM_HEADER, PAKE_HEADER_LEN) ||
	    write_all(q, p->out, p->pake.own, PAKE_SHARE_LEN))
		return fail(p, "pairing with %s failed: cannot write on the link", p->peer_id);
	p->deadline_ns = now_ns + (uint64_t)PAIR_TIMEOUT_MS * 1000000u;
	set_state(p, PAIR_STATE_SHARE);
	rc = advance(p, q);
	return rc == PAIR_FAIL ? PAIR_FAIL : 0;
}

/* No code here: does the peer's first stream say it wants to pair? */
static int peek(struct link_pair *p, int64_t id, const uint8_t *data,
                size_t len)
{
	if (id != peer_stream(p) || p->peek >= PAKE_PREFIX_LEN)
		return PAIR_PASS;
	if (!pake_prefix_match(p->peek, data, len)) {
		p->peek = PAKE_PREFIX_LEN;
		return PAIR_PASS;
	}
	p->peek += len;
	if (p->peek < PAKE_PREFIX_LEN)
		return PAIR_PASS;
	return fail(p, "%s wants to pair with a code, and this side has none: run punch with -code and the same code",
	            p->peer_id);
}

int link_pair_on_data(struct link_pair *p, struct quic *q, int64_t id,
                      const uint8_t *data, size_t len, int fin)
{
	if (p->state == PAIR_STATE_OFF)
		return peek(p, id, data, len);
	if (p->state == PAIR_STATE_FAILED)
		return PAIR_TAKEN;
	if (id != peer_stream(p)) {
		if (p->state == PAIR_STATE_DONE)
			return PAIR_PASS;
		/* The peer starts its app only after our FIN, which we send
		 * only after checking its confirmation. */
		if (p->state == PAIR_STATE_FINISH) {
			set_state(p, PAIR_STATE_DONE);
			return PAIR_PASS;
		}
		return fail(p, "pairing code did not match: %s sent app data before pairing (does it run with -code?); nothing was pinned",
		            p->peer_id);
	}
	if (p->state == PAIR_STATE_DONE)
		return PAIR_TAKEN; /* the FIN, overtaken by the peer's app */
	if (pake_rx_feed(&p->rx, data, len, fin) == PAKE_RX_BAD) {
		size_t n = p->rx.len < PAKE_PREFIX_LEN ? p->rx.len : PAKE_PREFIX_LEN;

		if (!pake_prefix_match(0, p->rx.buf, n))
			return fail(p, "pairing code did not match: %s has no code (it started its app instead of pairing; run it with -code too); nothing was pinned",
			            p->peer_id);
		return fail(p, "pairing code did not match: %s sent a malformed pairing message; nothing was pinned",
		            p->peer_id);
	}
	if (p->state == PAIR_STATE_WAIT_LINK)
		return PAIR_TAKEN;
	return advance(p, q);
}

int link_pair_tick(struct link_pair *p, uint64_t now_ns, uint64_t *next)
{
	if (p->state != PAIR_STATE_SHARE && p->state != PAIR_STATE_CONFIRM &&
	    p->state != PAIR_STATE_FINISH)
		return 0;
	if (now_ns >= p->deadline_ns && p->state == PAIR_STATE_FINISH)
		return fail(p, "pairing with %s did not finish: its confirmation was right (its key is pinned), but it did not accept ours within %d s",
		            p->peer_id, PAIR_TIMEOUT_MS / 1000);
	if (now_ns >= p->deadline_ns)
		return fail(p, "pairing code did not match: %s did not finish pairing within %d s (does it run with -code?); nothing was pinned",
		            p->peer_id, PAIR_TIMEOUT_MS / 1000);
	if (p->deadline_ns < *next)
		*next = p->deadline_ns;
	return 0;
}
