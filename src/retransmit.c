#include "retransmit.h"

const struct rtx_params rtx_stun = {
	.rto_ms = RTX_RTO_MS,
	.rc = RTX_RC,
	.rm = RTX_RM,
};

void rtx_start(struct rtx *t, const struct rtx_params *p, uint64_t now_ms)
{
	t->next_ms = now_ms;
	t->first_ms = 0;
	t->give_up_ms = UINT64_MAX;
	t->rto_ms = p->rto_ms;
	t->sent = 0;
}

void rtx_trigger(struct rtx *t, const struct rtx_params *p, uint64_t now_ms)
{
	if (t->next_ms <= now_ms || t->give_up_ms != UINT64_MAX)
		return; /* already due, or past its last transmission */
	t->rto_ms = p->rto_ms;
	t->next_ms = now_ms;
}

static uint64_t timeout_at(const struct rtx *t, const struct rtx_params *p)
{
	return p->timeout_ms && t->sent ? t->first_ms + p->timeout_ms :
	                                  UINT64_MAX;
}

enum rtx_due rtx_poll(const struct rtx *t, const struct rtx_params *p,
                      uint64_t now_ms)
{
	if (now_ms >= t->give_up_ms || now_ms >= timeout_at(t, p))
		return RTX_GIVE_UP;
	return now_ms >= t->next_ms ? RTX_SEND : RTX_WAIT;
}

uint64_t rtx_jitter(uint64_t wait_ms, uint32_t rnd)
{
	/* wait * pct/100 * rnd/2^32; no overflow for waits under 4e8 ms */
	return wait_ms + (wait_ms * RTX_JITTER_PCT * rnd / 100 >> 32);
}

void rtx_sent(struct rtx *t, const struct rtx_params *p, uint64_t now_ms,
              uint32_t rnd)
{
	if (!t->sent++)
		t->first_ms = now_ms;
	if (p->rc && t->sent >= p->rc) {
		/* RFC 8489 6.2.1: after the last, wait Rm * RTO */
		t->next_ms = UINT64_MAX;
		t->give_up_ms = now_ms + rtx_jitter((uint64_t)p->rm * p->rto_ms,
		                                    rnd);
		return;
	}
	t->next_ms = now_ms + rtx_jitter(t->rto_ms, rnd);
	if (p->rto_max_ms && t->rto_ms >= p->rto_max_ms / 2)
		t->rto_ms = p->rto_max_ms;
	else
		t->rto_ms *= 2;
}

uint64_t rtx_deadline(const struct rtx *t, const struct rtx_params *p)
{
	uint64_t d = t->next_ms < t->give_up_ms ? t->next_ms : t->give_up_ms;
	uint64_t to = timeout_at(t, p);

	return d < to ? d : to;
}
