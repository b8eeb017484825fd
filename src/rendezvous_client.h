/*
 * The client side of the rendezvous: learn our server-reflexive address
 * (a Binding request), register (id, peer id, candidates, credentials),
 * refresh the registration, and answer the server's PEER-INFO.
 *
 * Pure logic on deadlines, like agent.c: the caller feeds in messages from
 * the server and the time, and it sends through a callback.  Requests are
 * retransmitted on the RFC 8489 6.2.1 schedule (retransmit.h).
 *
 * Refreshes: once a signed REGISTER's success carries PUNCH-RENEW-KEY,
 * the registration is refreshed by RENEW, with MESSAGE-INTEGRITY-SHA256
 * under that key; any error or silence falls back to a signed REGISTER.
 *
 * Trust: REGISTER and RELEASE are signed with the identity key.  Every
 * rendezvous message from the server must be signed by the server's key:
 * the pinned one, or, on first use, the key of the first correctly signed
 * answer to one of our own requests (an off-path sender cannot know its
 * transaction id).  Anything else is dropped and counted.  An answer to
 * our request signed by a different key means the server's key changed:
 * that stops the client (RDVC_EV_SERVER_KEY_CHANGED).  Several keys may be
 * pinned at once (-server-key repeated: servers sharing a registry, each
 * with its own key); any of them is the server's.
 *
 * Failover: once registered, a refresh that gets no answer within
 * RDVC_REFRESH_TIMEOUT_MS is missed, and the next goes at once; the
 * RDVC_MISSED_MAX-th missed in a row is RDVC_EV_SERVER_LOST (and so is
 * every RDVC_MISSED_MAX-th after it, each a refresh interval apart).  The
 * caller may then move to another server with rdvc_move(): the
 * registration is made there afresh, with the same candidates.
 */
#ifndef PUNCH_RENDEZVOUS_CLIENT_H
#define PUNCH_RENDEZVOUS_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "punch_attr.h"
#include "retransmit.h"
#include "sign.h"
#include "stun.h"

enum {
	RDVC_REFRESH_DIVISOR = 3, /* refresh at a third of the lifetime, */
	RDVC_REFRESH_MAX_MS = 25000, /* and at least every 25 s (NAT timeouts) */
	RDVC_LIFETIME_MAX_S = 86400, /* a longer LIFETIME is taken as this
	                              * (the server's -lifetime limit) */
	RDVC_NONCE_MAX = 64,
	RDVC_RELAY_USER_MAX = 255, /* PUNCH-RELAY's one-byte length */
	RDVC_RELAY_PASS_MAX = 64,
	/* The mapping test (one Binding to the server's OTHER-ADDRESS,
	 * RFC 5780 4.3): quick, and never holds the registration up for
	 * long: sent at 0, 100 and 300 ms, given up at 500 ms. */
	RDVC_ALT_RTO_MS = 100,
	RDVC_ALT_TIMEOUT_MS = 500,
	RDVC_PINS_MAX = 8,        /* server keys trusted at once */
	/* A refresh is missed after 5 s (sent at 0, 0.5, 1.5 and 3.5 s), so
	 * that three missed (15 s) come before a 30 s registration at the
	 * lost server has run out. */
	RDVC_REFRESH_TIMEOUT_MS = 5000,
	RDVC_MISSED_MAX = 3,
	/* The first Binding (rdvc_start): RFC 8489's doubling from 250 ms,
	 * not 500, and 8 transmissions, so that three go out within the
	 * second the client waits for UDP before it tries TCP (client.c).
	 * On a path that loses 10 % each way one exchange in five fails:
	 * two in a row lost, as before, sent a working UDP path to TCP 3.6 %
	 * of the time, three do 0.7 %.  Given up after 35.75 s (0, 0.25,
	 * 0.75, ... 31.75 s, then 16 RTOs), about RFC 8489's 39.5 s. */
	RDVC_FIRST_RTO_MS = 250,
	RDVC_FIRST_RC = 8,
};

enum rdvc_state {
	RDVC_IDLE,
	RDVC_DISCOVERING,  /* Binding request out (and then the mapping
	                    * test's, to the alternate address) */
	RDVC_DISCOVERED,   /* the app is gathering candidates */
	RDVC_REGISTERING,  /* REGISTER out, not yet answered */
	RDVC_REGISTERED,   /* answered; refreshing */
};

enum rdvc_event {
	RDVC_EV_DISCOVERED,  /* srflx known: gather, then rdvc_register() */
	RDVC_EV_REGISTERED,  /* arg: enum punch_status */
	RDVC_EV_PEER_INFO,   /* arg: struct punch_peer * */
	RDVC_EV_REFUSED,     /* arg: reason string; fatal */
	RDVC_EV_UNREACHABLE, /* the first request got no answer; fatal */
	RDVC_EV_SERVER_KEY,  /* first use: arg is the fingerprint to pin */
	RDVC_EV_SERVER_KEY_CHANGED, /* arg: the new fingerprint; fatal */
	RDVC_EV_RELEASED,    /* the server dropped our id's binding */
	RDVC_EV_SERVER_LOST, /* arg: int *, refreshes missed in a row */
};

typedef void rdvc_send_fn(void *ctx, const struct sockaddr *to,
                          const uint8_t *buf, size_t len);
typedef void rdvc_event_fn(void *ctx, int event, const void *arg);

struct rdv_client {
	struct sockaddr_storage server;
	struct punch_peer self;   /* what we register */
	struct sockaddr_storage srflx;
	/* The mapping test: the server's OTHER-ADDRESS, and what it saw. */
	struct sockaddr_storage alt, srflx_alt;
	int alt_asked, has_srflx_alt;
	enum rdvc_state state;
	char nonce[RDVC_NONCE_MAX + 1];
	uint32_t lifetime_s;
	uint64_t refresh_ms;
	uint64_t retry_ms;        /* a REGISTER to retry after a 438, or 0 */
	int stale_438;            /* 438s in a row */
	int ever_registered;

	const struct sign_key *key;    /* ours, for REGISTER and RELEASE */
	/* the server's keys, once pinned (server_fp[0]: the first) */
	uint8_t server_fp[RDVC_PINS_MAX][SIGN_FP_LEN];
	int server_pinned;             /* how many */
	/* refreshes missed in a row */
	int missed;
	uint64_t unsigned_dropped;     /* unsigned or badly signed messages */
	/* The relay credentials of our registration (PUNCH-RELAY), if the
	 * server relays: valid while the registration lives. */
	int has_relay;
	char relay_user[RDVC_RELAY_USER_MAX + 1];
	char relay_pass[RDVC_RELAY_PASS_MAX + 1];
	/* The key of our RENEWs (PUNCH-RENEW-KEY), from the last signed
	 * REGISTER's success; without one, refreshes are signed REGISTERs. */
	int has_renew_key;
	uint8_t renew_key[PUNCH_RENEW_KEY_LEN];
	uint32_t renew_seq;       /* of the last RENEW sent */
	uint64_t renewed;         /* RENEWs answered with a good MAC */

	/* the one outstanding request */
	int busy;
	uint16_t method;
	uint8_t txid[STUN_TXID_LEN];
	uint8_t msg[PUNCH_MSG_MAX];
	size_t len;
	struct rtx rtx;
	const struct rtx_params *rtx_params; /* rtx_stun, or the mapping test's */

	rdvc_send_fn *send;
	rdvc_event_fn *on_event;
	void *ctx;
};

void rdvc_init(struct rdv_client *rc, const struct sockaddr *server,
               const struct punch_peer *self, rdvc_send_fn *send,
               rdvc_event_fn *on_event, void *ctx);
void rdvc_start(struct rdv_client *rc, uint64_t now_ms);
/* Sign requests with key (kept by the caller). */
void rdvc_set_key(struct rdv_client *rc, const struct sign_key *key);
/* Trust this server key (known_servers or -server-key): only the keys
 * pinned so far, up to RDVC_PINS_MAX. */
void rdvc_pin_server(struct rdv_client *rc, const uint8_t fp[SIGN_FP_LEN]);
/* Another server: its address, no key pinned (pin its keys next), no
 * nonce; the registration is made there with rdvc_register().  What the
 * first server told us (srflx, the mapping test) is kept. */
void rdvc_move(struct rdv_client *rc, const struct sockaddr *server);
/* Register rc->self (the app has filled in its candidates). */
void rdvc_register(struct rdv_client *rc, uint64_t now_ms);
/* Refresh: RENEW if we have its key, else a signed REGISTER. */
void rdvc_refresh(struct rdv_client *rc, uint64_t now_ms);
/* Ask the server to drop the binding of rc->self.id to our key. */
void rdvc_release(struct rdv_client *rc, uint64_t now_ms);
/* Is `from` the server: its address, or the alternate one while the
 * mapping test waits for its answer? */
int rdvc_is_server(const struct rdv_client *rc, const struct sockaddr *from);
/* A STUN message from the server's address.  Returns 1 if handled. */
int rdvc_on_stun(struct rdv_client *rc, const uint8_t *buf, size_t len,
                 const struct stun_msg *m, uint64_t now_ms);
uint64_t rdvc_tick(struct rdv_client *rc, uint64_t now_ms);
const char *rdvc_state_str(enum rdvc_state s);

#endif
