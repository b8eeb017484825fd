/*
 * The task's chat, as simple authenticated datagrams on the chosen path:
 * each line is a PUNCH-DATA request with a sequence number, USERNAME and
 * MESSAGE-INTEGRITY keyed with the session's check credentials, and is
 * retransmitted until the peer answers.  One line is in flight at a time,
 * so lines arrive once and in order.  An empty DATA says "I left".
 *
 * Pure logic on deadlines: the caller passes in messages and the time.
 */
#ifndef PUNCH_CHAT_H
#define PUNCH_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "agent.h"

enum {
	CHAT_QUEUE_MAX = 256,   /* lines typed but not yet acknowledged */
	CHAT_RTO_MS = 200,
	CHAT_RTO_MAX_MS = 1000,
};

struct chat {
	struct agent *agent;
	char *queue[CHAT_QUEUE_MAX];
	size_t qlen[CHAT_QUEUE_MAX];
	size_t head, count;
	uint32_t seq_out, seq_in;
	uint64_t peer_session;  /* the session seq_in belongs to */
	int inflight;
	uint8_t txid[STUN_TXID_LEN];
	uint64_t next_ms;
	uint32_t rto_ms;
	int bye_queued, bye_acked, peer_left;
	void (*on_line)(void *ctx, const char *text, size_t len);
	void (*on_bye)(void *ctx);
	void *ctx;
};

void chat_init(struct chat *c, struct agent *agent,
               void (*on_line)(void *, const char *, size_t),
               void (*on_bye)(void *), void *ctx);
void chat_free(struct chat *c);
/* Queue a line (copied).  Returns -1 when the queue is full: the caller
 * stops reading input until chat_can_queue(). */
int chat_send_line(struct chat *c, const char *text, size_t len);
int chat_can_queue(const struct chat *c);
/* Say goodbye after every queued line has been delivered. */
void chat_bye(struct chat *c);
int chat_on_stun(struct chat *c, int sock, const struct sockaddr *from,
                 const uint8_t *buf, size_t len, const struct stun_msg *m,
                 uint64_t now_ms);
uint64_t chat_tick(struct chat *c, uint64_t now_ms);

#endif
