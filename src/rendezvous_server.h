/*
 * The rendezvous service of `punch server`: REGISTER requests in, PEER-INFO
 * requests out (retransmitted until acknowledged), on the STUN port.
 * No sockets: replies go back through binding.h's struct binding_reply,
 * and PEER-INFO requests through the send callback.
 *
 * A registration must carry a NONCE that the server handed to that source
 * address (error 438 carries it): a spoofed source cannot register, so the
 * server cannot be made to send PEER-INFO, with its retransmissions, to a
 * victim.
 */
#ifndef PUNCH_RENDEZVOUS_SERVER_H
#define PUNCH_RENDEZVOUS_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "binding.h"
#include "registry.h"

enum {
	RDV_PENDING_MAX = 1024,  /* PEER-INFO requests awaiting an answer */
	RDV_RTO_MS = 500,        /* RFC 8489 6.2.1 initial RTO */
	RDV_RC = 7,              /* RFC 8489 6.2.1 Rc: transmissions in all */
	RDV_RM = 16,             /* RFC 8489 6.2.1 Rm: last wait, in RTOs */
	RDV_NONCE_BUCKET_S = 60, /* a nonce is good for 60 to 120 s */
};

typedef void rdv_send_fn(void *ctx, int sock, const struct sockaddr *to,
                         const uint8_t *buf, size_t len);

struct rdv_stats {
	uint64_t registered, introduced, rejected, acked, gave_up;
	uint64_t rate_limited; /* REGISTERs dropped unanswered */
};

struct rdv_server;

struct rdv_server *rdv_server_new(size_t max_entries, rdv_send_fn *send,
                                  void *ctx);
void rdv_server_free(struct rdv_server *rs);

/* Handle a datagram whose method is one of punch's.  Same verdicts as
 * binding_handle(). */
int rdv_handle(struct rdv_server *rs, int sock, const uint8_t *buf,
               size_t len, const struct sockaddr *from, uint64_t now_ms,
               uint8_t *out, size_t cap, struct binding_reply *reply,
               const char **why);

/* Retransmit what is due and expire registrations.  Returns the time of
 * the next deadline. */
uint64_t rdv_tick(struct rdv_server *rs, uint64_t now_ms);

const struct rdv_stats *rdv_stats(const struct rdv_server *rs);
struct registry *rdv_registry(struct rdv_server *rs);

#endif
