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
 *
 * Trust (docs/protocol.md): a REGISTER or RELEASE carries the client's
 * Ed25519 key and a signature over the message, NONCE included; the server
 * checks it before anything touches the registry, and binds the id to the
 * fingerprint it computes from that key (idbind.h), never to a claimed
 * one.  Every rendezvous response and PEER-INFO is signed with the
 * server's own key, but for RENEW's: a registration is kept alive by
 * RENEW, authenticated by MESSAGE-INTEGRITY-SHA256 under a key the signed
 * REGISTER success gave (PUNCH-RENEW-KEY), so that a refresh costs two
 * hashes instead of two Ed25519 operations.
 */
#ifndef PUNCH_RENDEZVOUS_SERVER_H
#define PUNCH_RENDEZVOUS_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "binding.h"
#include "idbind.h"
#include "registry.h"
#include "registry_store.h"
#include "rendezvous_log.h"
#include "sign.h"

enum {
	RDV_PENDING_MAX = 1024,  /* PEER-INFO requests awaiting an answer */
	RDV_NONCE_BUCKET_S = 60, /* a nonce is good for 60 to 120 s */
	RDV_UNBIND_EVERY_MS = 60000, /* expiry of id bindings */
};

typedef void rdv_send_fn(void *ctx, int sock, const struct sockaddr *to,
                         const uint8_t *buf, size_t len);

/* What the server did, for its stop line.  A 438 challenge is a normal
 * step of every registration, not an error; refusals are counted by
 * reason (rejected is their sum). */
struct rdv_stats {
	uint64_t registered, introduced, rejected, acked, gave_up;
	uint64_t retransmitted; /* PEER-INFO sent again, unacknowledged */
	uint64_t updated; /* PEER-INFO again: a paired peer's candidates changed */
	uint64_t challenged;                /* 438 with a fresh nonce */
	uint64_t refused[RDV_REFUSED_N];    /* REGISTER refused, by reason */
	uint64_t refreshed;                 /* of registered: same session */
	uint64_t expired;                   /* not refreshed in time */
	uint64_t bad_method;                /* 400 to an unknown method */
	uint64_t bad_signature, released;
	uint64_t rate_limited; /* REGISTERs dropped unanswered */
	uint64_t renewed, renew_refused; /* RENEW (by MAC) */
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

/* The server's signing key; a new server has a random one until this is
 * called with the seed from its state directory.  Returns 0 or -1. */
int rdv_server_set_key(struct rdv_server *rs, const uint8_t seed[SIGN_SEED_LEN]);
const uint8_t *rdv_server_pk(const struct rdv_server *rs);
/* The id bindings (for loading and saving them), and their TTL. */
struct idbind *rdv_idbind(struct rdv_server *rs);
void rdv_server_set_id_ttl(struct rdv_server *rs, uint64_t ttl_s);
/* Bindings last for days, across restarts, so they use the wall clock:
 * wall seconds = base_s + now_ms / 1000.  (0 by default, for tests.) */
void rdv_server_set_wall(struct rdv_server *rs, uint64_t base_s);

/* The store that makes pairs (registry_store.h); the in-memory table
 * (rdv_registry()) by default.  The store stays the caller's. */
/* How long a registration lives without a refresh (registry.h); 0: the
 * default, REGISTRY_LIFETIME_MS. */
void rdv_server_set_lifetime(struct rdv_server *rs, uint64_t ms);

void rdv_server_set_store(struct rdv_server *rs,
                          const struct reg_store_ops *ops, void *store);
/* Another server, through the shared registry, introduces to_id (a client
 * registered here) to `about`, checked by regval_decode(): PEER-INFO to
 * to_id if the two look for each other and about's key may use its id.
 * 0, or -1 if not. */
int rdv_remote_introduce(struct rdv_server *rs, const char *to_id,
                         const struct punch_peer *about, uint64_t now_ms);

/* With the relay on: REGISTER successes carry PUNCH-RELAY, credentials
 * minted with the relay's secret for that registration (turn_mint()). */
int rdv_server_set_relay_secret(struct rdv_server *rs, const uint8_t *secret,
                                size_t len);
/* turn_ops.minted: 0 while the registration a minted username names is
 * live (same id, same session); with peer, 0 only if peer's IP address is
 * one the peer it was introduced to announced or was seen at. */
int rdv_minted_check(void *rs, const char *username,
                     const struct sockaddr *peer);

#endif
