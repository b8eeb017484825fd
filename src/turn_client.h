/*
 * The client side of TURN (RFC 8656, over UDP): one allocation on a relay,
 * its permissions and channels, and the data to and from peers through it.
 *
 * Pure logic on deadlines, like agent.c and rendezvous_client.c: no
 * sockets, no clock.  The caller feeds in what the TURN server sends
 * (turn_client_on_stun() for STUN, turn_client_on_channel() for
 * ChannelData) with the time in ms, sends what comes out of send_fn to
 * the server, and calls turn_client_tick() at the deadline it returns.
 * Requests are retransmitted on RFC 8489 6.2.1's schedule (retransmit.h).
 *
 * Credentials are RFC 8489 9.2's long-term ones: the first Allocate goes
 * without them, the 401 brings REALM and NONCE, and every request after
 * that carries USERNAME, REALM, NONCE and MESSAGE-INTEGRITY keyed with
 * MD5(username ":" realm ":" password).  Success responses must carry a
 * MESSAGE-INTEGRITY that checks with that key; others are dropped and
 * counted (bad_integrity).
 *
 * Timers (all deadlines, found by turn_client_tick()):
 *   - each transaction's retransmission and give-up (struct rtx);
 *   - the allocation's Refresh, at half its LIFETIME (never sooner than
 *     TURNC_REFRESH_FLOOR_S after it was granted), and its expiry;
 *   - each permission's refresh, TURNC_PERMISSION_REFRESH_S after it was
 *     installed (a permission lasts 300 s, RFC 8656 9);
 *   - each channel's refresh, TURNC_CHANNEL_REFRESH_S after it was bound
 *     (a channel lasts 600 s, RFC 8656 12).
 *
 * The callbacks must not call back into the same turn_client from send_fn
 * or data_fn; event_fn may (it runs once the state is settled).
 */
#ifndef PUNCH_TURN_CLIENT_H
#define PUNCH_TURN_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "retransmit.h"
#include "stun.h"

enum {
	TURNC_USERNAME_MAX = 128,     /* longer credentials: init refuses */
	TURNC_PASSWORD_MAX = 128,
	TURNC_REALM_MAX = 127,        /* RFC 8489 14.9: under 128 characters */
	TURNC_NONCE_MAX = 127,        /* RFC 8489 14.10 */
	TURNC_TXNS = 8,               /* requests in flight at once */
	TURNC_PERMS_MAX = 16,         /* peer IPs (the relay's own limit) */
	TURNC_CHANNELS_MAX = 16,      /* channels: numbers 0x4000 + index */
	TURNC_MSG_MAX = 640,          /* one request, credentials included */
	TURNC_DATA_MAX = 2048,        /* largest datagram relayed */
	TURNC_STALE_MAX = 3,          /* 438s in a row for one request */
	TURNC_CHANNEL_FIRST = 0x4000, /* RFC 8656 12 */
	TURNC_CHANNEL_HEADER = 4,     /* RFC 8656 12.4 */
	TURNC_TRANSPORT_UDP = 17,     /* RFC 8656 18.8: IANA protocol */
	TURNC_FAMILY_IPV6 = 0x02,     /* RFC 8656 18.6 */
	TURNC_LIFETIME_DEFAULT_S = 600, /* RFC 8656 3.2: no LIFETIME given */
	TURNC_REFRESH_FLOOR_S = 5,    /* no Refresh sooner than this */
	TURNC_PERMISSION_REFRESH_S = 240, /* of 300, RFC 8656 9 */
	TURNC_CHANNEL_REFRESH_S = 540,    /* of 600, RFC 8656 12 */
	TURNC_REASON_MAX = 256,       /* EV_FAILED's sentence */
};

enum turn_client_event {
	/* arg: const struct sockaddr *, the XOR-RELAYED-ADDRESS */
	TURN_CLIENT_EV_ALLOCATED,
	/* arg: const char *, a sentence with the error code when there is
	 * one ("401 Unauthorized (wrong credentials?)", "no answer from the
	 * relay"); the reason phrase is escaped for the terminal.  Fatal: the
	 * allocation is gone. */
	TURN_CLIENT_EV_FAILED,
};

enum turnc_state {
	TURNC_IDLE,
	TURNC_ALLOCATING, /* Allocate out (with or without credentials) */
	TURNC_ALLOCATED,
	TURNC_FAILED,
	TURNC_RELEASED,
};

/* A permission's or channel's state. */
enum turnc_item {
	TURNC_ITEM_FREE,
	TURNC_ITEM_WANTED,  /* to be requested (or requested, not answered) */
	TURNC_ITEM_OK,      /* installed; refreshed at refresh_ms */
	TURNC_ITEM_REFUSED, /* the relay said no: not asked again */
};

struct turnc_perm {
	uint8_t state;                 /* enum turnc_item */
	uint8_t busy;                  /* a request is in flight */
	struct sockaddr_storage ip;    /* port 0 */
	uint64_t refresh_ms;
};

struct turnc_chan {
	uint8_t state;                 /* enum turnc_item */
	uint8_t busy;
	struct sockaddr_storage peer;
	uint64_t refresh_ms;
};

/* One request transaction: the bytes as sent, for retransmission. */
struct turnc_txn {
	uint8_t used;
	uint8_t stale;                 /* 438s answered so far */
	uint8_t authed;                /* sent with credentials */
	uint16_t method;
	int item;        /* perm or channel index, or -1 */
	uint32_t lifetime;             /* Refresh's LIFETIME */
	uint8_t txid[STUN_TXID_LEN];
	struct rtx rtx;
	size_t len;
	uint8_t msg[TURNC_MSG_MAX];
};

typedef void turn_client_send_fn(void *ctx, const uint8_t *buf, size_t len);
typedef void turn_client_data_fn(void *ctx, const struct sockaddr *peer,
                                 const uint8_t *buf, size_t len);
typedef void turn_client_event_fn(void *ctx, int event, const void *arg);

struct turn_client {
	enum turnc_state state;
	char username[TURNC_USERNAME_MAX + 1];
	char password[TURNC_PASSWORD_MAX + 1];
	char realm[TURNC_REALM_MAX + 1];
	char nonce[TURNC_NONCE_MAX + 1];
	uint8_t key[16];               /* MD5, RFC 8489 9.2.2 */
	int has_key;
	int family;      /* AF_INET or AF_INET6 */

	struct sockaddr_storage relayed;
	struct sockaddr_storage mapped; /* XOR-MAPPED-ADDRESS, if given */
	uint32_t lifetime_s;
	uint64_t refresh_ms;           /* next Refresh */
	uint64_t expires_ms;           /* the allocation ends, unrefreshed */
	int refreshing;                /* a Refresh is in flight */

	struct turnc_txn txns[TURNC_TXNS];
	struct turnc_perm perms[TURNC_PERMS_MAX];
	struct turnc_chan chans[TURNC_CHANNELS_MAX];

	char reason[TURNC_REASON_MAX];
	/* Dropped: bad ChannelData or Data indications, and responses
	 * whose MESSAGE-INTEGRITY did not check. */
	uint64_t malformed;
	uint64_t bad_integrity;

	turn_client_send_fn *send;
	turn_client_data_fn *on_data;
	turn_client_event_fn *on_event;
	void *ctx;
};

/* Credentials are copied.  0, or -1 when one is longer than
 * TURNC_USERNAME_MAX / TURNC_PASSWORD_MAX. */
int turn_client_init(struct turn_client *t, const char *username,
                     const char *password, turn_client_send_fn *send,
                     turn_client_data_fn *on_data,
                     turn_client_event_fn *on_event, void *ctx);
/* Ask for a relayed address of this family (AF_INET6 adds
 * REQUESTED-ADDRESS-FAMILY).  EV_ALLOCATED or EV_FAILED follows. */
void turn_client_allocate(struct turn_client *t, int family, uint64_t now_ms);
/* A STUN message from the TURN server, already decoded (stun_decode()
 * on the same buf).  Returns 1 if it was the TURN client's (a response to
 * one of its transactions, or a Data indication), whether or not it was
 * accepted; 0 if it belongs to someone else. */
int turn_client_on_stun(struct turn_client *t, const uint8_t *buf, size_t len,
                        const struct stun_msg *m, uint64_t now_ms);
/* A datagram from the TURN server whose first two bits are 01
 * (ChannelData, RFC 8656 12.4).  1 if it was valid ChannelData of one of
 * our channels (the payload went to data_fn), 0 if dropped (counted in
 * malformed). */
int turn_client_on_channel(struct turn_client *t, const uint8_t *buf,
                           size_t len);
/* Permit a peer's IP (CreatePermission; the port is ignored), refreshed
 * while allocated.  Idempotent.  Before the allocation exists the IP is
 * remembered and requested once it does.  0, or -1 if the table is full,
 * the family is not the relay's, or the relay refused this IP before. */
int turn_client_permit(struct turn_client *t, const struct sockaddr *peer,
                       uint64_t now_ms);
/* Send a datagram to peer through the relay: ChannelData when a channel
 * is bound to peer (IP and port), else a Send indication, and then a
 * ChannelBind is started for peer if none is bound or being bound and a
 * number is free.  Permits peer's IP first if needed.  0, or -1 when not
 * allocated, len > TURNC_DATA_MAX, or the IP cannot be permitted. */
int turn_client_send(struct turn_client *t, const struct sockaddr *peer,
                     const uint8_t *buf, size_t len, uint64_t now_ms);
/* Retransmissions and refreshes due at now_ms; returns the next deadline,
 * or UINT64_MAX when nothing is pending. */
uint64_t turn_client_tick(struct turn_client *t, uint64_t now_ms);
/* Give the allocation back: one Refresh with LIFETIME 0, sent once (no
 * retransmission; the relay lets it expire otherwise).  The client is
 * done after this; the key is wiped. */
void turn_client_release(struct turn_client *t, uint64_t now_ms);
int turn_client_is_allocated(const struct turn_client *t);
/* The relayed address, or NULL when not allocated. */
const struct sockaddr *turn_client_relayed(const struct turn_client *t);
const char *turn_client_state_str(enum turnc_state s);

/* A TURN server as the user names it: "turn:USER:PASS@HOST:PORT" (the
 * USER may hold ':', as REST usernames "EXPIRY:NAME" do; the PASS may not;
 * HOST may be a name or an address, IPv6 in brackets).  0, or -1 with
 * *why saying what is wrong. */
int turn_uri_parse(const char *uri, char user[TURNC_USERNAME_MAX + 1],
                   char pass[TURNC_PASSWORD_MAX + 1], char *hostport,
                   size_t hostport_len, const char **why);

#endif
