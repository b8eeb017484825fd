/*
 * One retransmission schedule for every STUN request punch sends: the
 * rendezvous client's Binding, REGISTER and RELEASE, the server's
 * PEER-INFO, and the agent's connectivity checks.
 *
 * RFC 8489 6.2.1: the first retransmission after RTO, each later one after
 * twice the interval before it, Rc transmissions in all, and after the
 * last a wait of Rm * RTO before the transaction has failed.  With
 * RTO = 500 ms, Rc = 7 and Rm = 16 the requests go at 0, 0.5, 1.5, 3.5,
 * 7.5, 15.5 and 31.5 s and the client gives up at 39.5 s.
 *
 * Jitter: each wait is lengthened by a random 0 to RTX_JITTER_PCT percent,
 * so that clients cut off together (a server restart, a NAT reboot) do
 * not retransmit in step.  Only lengthened: no wait is ever shorter than
 * RFC 8489's, so jitter adds no load.
 *
 * Pure: it takes the time and the caller's random bits, and touches no
 * socket and no clock, so its schedule can be tested exactly.
 */
#ifndef PUNCH_RETRANSMIT_H
#define PUNCH_RETRANSMIT_H

#include <stdint.h>

enum {
	RTX_RTO_MS = 500,    /* RFC 8489 6.2.1 initial RTO */
	RTX_RC = 7,          /* RFC 8489 6.2.1 Rc: transmissions in all */
	RTX_RM = 16,         /* RFC 8489 6.2.1 Rm: the last wait, in RTOs */
	RTX_JITTER_PCT = 10, /* each wait lengthened by 0 to 10 % */
};

/* A schedule.  rtx_stun is RFC 8489's; the agent's checks use a faster
 * one of their own (agent.h). */
struct rtx_params {
	uint32_t rto_ms;     /* the first wait */
	uint32_t rto_max_ms; /* doubling stops here; 0: no cap */
	uint32_t rc;         /* transmissions in all; 0: no limit */
	uint32_t rm;         /* after the last, wait rm * rto_ms */
	uint32_t timeout_ms; /* failed this long after the first; 0: never */
};

extern const struct rtx_params rtx_stun;

/* One request transaction's timer. */
struct rtx {
	uint64_t next_ms;    /* next transmission; UINT64_MAX after the last */
	uint64_t first_ms;   /* the first transmission */
	uint64_t give_up_ms; /* the transaction has failed; UINT64_MAX: not yet */
	uint32_t rto_ms;     /* the next wait, before jitter */
	uint32_t sent;       /* transmissions so far */
};

enum rtx_due {
	RTX_WAIT,    /* nothing to do until rtx_deadline() */
	RTX_SEND,    /* transmit now, then call rtx_sent() */
	RTX_GIVE_UP, /* the transaction has failed */
};

/* A new transaction, its first transmission due at now_ms. */
void rtx_start(struct rtx *t, const struct rtx_params *p, uint64_t now_ms);
/* RFC 8445 7.3.1.4's triggered check: the same transaction, sent again
 * at once and paced from the first wait again. */
void rtx_trigger(struct rtx *t, const struct rtx_params *p, uint64_t now_ms);
/* What is due at now_ms. */
enum rtx_due rtx_poll(const struct rtx *t, const struct rtx_params *p,
                      uint64_t now_ms);
/* The caller transmitted at now_ms: schedule the next one.  rnd is 32
 * random bits (the caller's source), which pick the jitter. */
void rtx_sent(struct rtx *t, const struct rtx_params *p, uint64_t now_ms,
              uint32_t rnd);
/* When rtx_poll() next has something to say. */
uint64_t rtx_deadline(const struct rtx *t, const struct rtx_params *p);
/* wait_ms lengthened by rnd's share of RTX_JITTER_PCT percent. */
uint64_t rtx_jitter(uint64_t wait_ms, uint32_t rnd);

#endif
