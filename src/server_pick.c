/*
 * Which server to use: see server_pick.h.
 */
#include "server_pick.h"

#include <string.h>

#include "addr.h"
#include "log.h"
#include "rnd.h"

const char *pick_state_str(enum pick_state s)
{
	switch (s) {
	case PICK_IDLE: return "idle";
	case PICK_ASKING: return "asking";
	case PICK_DONE: return "done";
	}
	return "?";
}

/* Every state change goes through here, and is logged old -> new. */
static void set_state(struct server_pick *p, enum pick_state s)
{
	if (p->state == s)
		return;
	log_debug("server pick: %s -> %s", pick_state_str(p->state),
	          pick_state_str(s));
	p->state = s;
}

void pick_init(struct server_pick *p, const struct sockaddr_storage *addr,
               int n, pick_send_fn *send, void *ctx)
{
	memset(p, 0, sizeof(*p));
	p->n = n < 0 ? 0 : n > SERVER_LIST_MAX ? SERVER_LIST_MAX :
	                                         n;
	memcpy(p->addr, addr, (size_t)p->n * sizeof(*addr));
	p->send = send;
	p->ctx = ctx;
	p->chosen = -1;
}

/* The lowest RTT, then the first listed within PICK_TIE_MS of it. */
static int choose(const struct server_pick *p)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < p->n; i++)
		if (p->answered[i] && p->rtt_us[i] < best)
			best = p->rtt_us[i];
	for (int i = 0; i < p->n; i++)
		if (p->answered[i] &&
		    p->rtt_us[i] <= best + (uint64_t)PICK_TIE_MS * 1000)
			return i;
	return -1;
}

static void finish(struct server_pick *p)
{
	p->chosen = choose(p);
	set_state(p, PICK_DONE);
}

int pick_start(struct server_pick *p, unsigned skip, uint64_t now_us)
{
	int asked = 0;

	p->chosen = -1;
	p->sends = 0;
	p->start_us = now_us;
	p->end_us = now_us + (uint64_t)PICK_TIMEOUT_MS * 1000;
	for (int i = 0; i < p->n; i++) {
		p->asked[i] = !(skip & 1u << i);
		p->answered[i] = 0;
		p->rtt_us[i] = 0;
		rnd_nonce(p->txid[i], STUN_TXID_LEN);
		asked += p->asked[i];
	}
	if (!asked) {
		finish(p);
		return 0;
	}
	set_state(p, PICK_ASKING);
	return asked;
}

static void send_all(struct server_pick *p)
{
	for (int i = 0; i < p->n; i++) {
		uint8_t buf[64];
		struct stun_writer w;
		int len;

		if (!p->asked[i] || p->answered[i])
			continue;
		stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING,
		                 STUN_REQUEST, p->txid[i]);
		stun_put_fingerprint(&w);
		if ((len = stun_writer_finish(&w)) > 0)
			p->send(p->ctx, (const struct sockaddr *)&p->addr[i], buf,
			        (size_t)len);
	}
	p->sends++;
}

int pick_on_stun(struct server_pick *p, const struct sockaddr *from,
                 const struct stun_msg *m, uint64_t now_us)
{
	int all = 1;

	if (p->state != PICK_ASKING || m->method != STUN_BINDING ||
	    (m->cls != STUN_SUCCESS && m->cls != STUN_ERROR))
		return 0;
	for (int i = 0; i < p->n; i++) {
		if (!p->asked[i] || p->answered[i] ||
		    !addr_equal(from, (const struct sockaddr *)&p->addr[i]) ||
		    memcmp(m->txid, p->txid[i], STUN_TXID_LEN))
			continue;
		/* An error answer is an answer, but not one to register at:
		 * only a mapped address says the server serves us. */
		if (m->cls == STUN_SUCCESS && (m->present & STUN_HAS_XOR_MAPPED)) {
			p->answered[i] = 1;
			p->rtt_us[i] = now_us - p->start_us;
		} else {
			p->asked[i] = 0;
		}
		for (int j = 0; j < p->n; j++)
			if (p->asked[j] && !p->answered[j])
				all = 0;
		if (all) {
			finish(p);
		} else if (p->answered[i]) {
			uint64_t grace = now_us + (uint64_t)PICK_GRACE_MS * 1000;

			if (grace < p->end_us)
				p->end_us = grace;
		}
		return 1;
	}
	return 0;
}

uint64_t pick_tick(struct server_pick *p, uint64_t now_us)
{
	uint64_t next;

	if (p->state != PICK_ASKING)
		return UINT64_MAX;
	if (now_us >= p->end_us) {
		finish(p);
		return UINT64_MAX;
	}
	/* the requests' times: 0, RTO, 3 RTO (doubling, RFC 8489 6.2.1) */
	next = p->start_us + (uint64_t)PICK_RTO_MS * 1000 *
	                             ((1u << p->sends) - 1);
	if (p->sends < PICK_SENDS && now_us >= next) {
		send_all(p);
		next = p->start_us + (uint64_t)PICK_RTO_MS * 1000 *
		                             ((1u << p->sends) - 1);
	}
	if (p->sends >= PICK_SENDS || next > p->end_us)
		next = p->end_us;
	return next;
}

int pick_result(const struct server_pick *p)
{
	return p->state == PICK_DONE ? p->chosen : -1;
}

void pick_clear(struct server_pick *p)
{
	set_state(p, PICK_IDLE);
}
