/*
 * Which of the -server list to use: one STUN Binding request (RFC 8489)
 * to each, all at once, and the fastest to answer wins, as Tailscale
 * picks its home DERP by latency.  The client runs a round at start and
 * again when its server stops answering (three missed refreshes,
 * rendezvous_client.h), then leaving that server out.
 *
 * A round: the requests go at 0, PICK_RTO_MS and 3 * PICK_RTO_MS; after
 * the first answer the others get PICK_GRACE_MS more (RTTs for the log);
 * the round ends then, when all have answered, or at PICK_TIMEOUT_MS.
 * RTTs within PICK_TIE_MS of the best count as equal, and then the one
 * listed first wins: the user's order is a preference, which a few
 * milliseconds of noise do not override.  An RTT runs from the first
 * request, so a lost request counts against its server.
 *
 * Pure logic on deadlines, like rendezvous_client.c: times in
 * microseconds, sends through a callback, answers fed in.
 */
#ifndef PUNCH_SERVER_PICK_H
#define PUNCH_SERVER_PICK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "server_list.h"
#include "stun.h"

enum {
	PICK_RTO_MS = 200,      /* requests at 0, 200 and 600 ms */
	PICK_SENDS = 3,
	PICK_TIMEOUT_MS = 1000, /* no answer by then: the round failed */
	PICK_GRACE_MS = 100,    /* after the first answer, for the others */
	PICK_TIE_MS = 10,       /* RTTs this close: the one listed first */
};

enum pick_state {
	PICK_IDLE,
	PICK_ASKING,
	PICK_DONE,   /* pick_result() says which, or none */
};

typedef void pick_send_fn(void *ctx, const struct sockaddr *to,
                          const uint8_t *buf, size_t len);

struct server_pick {
	enum pick_state state;
	int n;
	struct sockaddr_storage addr[SERVER_LIST_MAX];
	uint8_t txid[SERVER_LIST_MAX][STUN_TXID_LEN];
	int asked[SERVER_LIST_MAX], answered[SERVER_LIST_MAX];
	uint64_t rtt_us[SERVER_LIST_MAX];
	uint64_t start_us, end_us;  /* end_us: the round's deadline */
	int sends;                  /* requests sent to each, so far */
	int chosen;                 /* in PICK_DONE: an index, or -1 */
	pick_send_fn *send;
	void *ctx;
};

void pick_init(struct server_pick *p, const struct sockaddr_storage *addr,
               int n, pick_send_fn *send, void *ctx);
/* A round over every server whose bit in skip is clear.  Returns how
 * many are asked (0: none; the round is then PICK_DONE with no pick). */
int pick_start(struct server_pick *p, unsigned skip, uint64_t now_us);
/* A STUN message from `from`: 1 if it answers this round (taken). */
int pick_on_stun(struct server_pick *p, const struct sockaddr *from,
                 const struct stun_msg *m, uint64_t now_us);
/* Sends what is due, ends the round when it is time.  Returns the next
 * deadline (us), or UINT64_MAX. */
uint64_t pick_tick(struct server_pick *p, uint64_t now_us);
/* In PICK_DONE: the index chosen, or -1 if none answered. */
int pick_result(const struct server_pick *p);
/* The round's result taken: back to PICK_IDLE. */
void pick_clear(struct server_pick *p);
const char *pick_state_str(enum pick_state s);

#endif
