/*
 * The TURN relay of `punch server` (RFC 8656 over UDP), as pure logic.
 *
 * No sockets here.  server_relay.c hands in each datagram with the time; what
 * comes back says what to send and where: a response to the client, a
 * datagram out of an allocation's relayed socket to a peer, or a Data
 * indication / ChannelData message to the client.  Opening and closing the
 * relayed sockets is the one thing done through callbacks (turn_ops), since
 * only the socket layer knows whether a port is free.
 *
 * Credentials are coturn's "TURN REST API" scheme (also in
 * draft-uberti-behave-turn-rest): the username is "EXPIRY" or
 * "EXPIRY:NAME" with EXPIRY in Unix seconds, the password
 * base64(HMAC-SHA1(secret, username)), and the long-term key of RFC 8489
 * 9.2.2 MD5(username ":" realm ":" password).  Nonces are stateless: the
 * time they were made and a keyed hash of it and the client's address.
 *
 * Memory: struct turn_alloc is the whole per-allocation state (see
 * turn_alloc_size()); the tables beside it cost 8 bytes per slot.
 */
#ifndef PUNCH_TURN_SERVER_H
#define PUNCH_TURN_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum {
	/* RFC 8656 3.2, 9, 12 */
	TURN_LIFETIME_DEFAULT_S = 600,
	TURN_LIFETIME_MAX_S = 3600,
	TURN_PERMISSION_S = 300,
	TURN_CHANNEL_S = 600,
	/* RFC 8656 12: a channel number, once unbound, stays reserved for
	 * its peer this much longer, so late ChannelData cannot reach a new
	 * peer. */
	TURN_CHANNEL_COOLDOWN_S = 300,
	/* RFC 8656 12 narrows channels to 0x4000-0x4FFF, but RFC 5766 11
	 * allowed up to 0x7FFF, and coturn's clients still pick from there:
	 * accepted, for them.  The first two bits are 01 either way. */
	TURN_CHANNEL_MIN = 0x4000,
	TURN_CHANNEL_MAX = 0x7FFF,
	TURN_NONCE_S = 600,           /* a nonce is good this long: then 438 */
	TURN_PERMS_MAX = 16,          /* peer addresses per allocation */
	TURN_CHANNELS_MAX = 16,       /* channels per allocation */
	TURN_USERNAME_MAX = 128,      /* longer usernames: 400 */
	TURN_REALM_MAX = 64,
	TURN_ALLOCS_DEFAULT = 1000,   /* -max-allocations */
	TURN_ALLOCS_MAX = 100000,
	TURN_PER_PREFIX_DEFAULT = 16, /* allocations per IPv4 /24, IPv6 /64 */
	TURN_OUT_MAX = 2048 + 64,     /* largest datagram handed back */
	TURN_CHANNEL_HEADER = 4,
	TURN_TICK_MAX_MS = 60000,     /* expiry runs at least this often */
	TURN_GROUP_MAX = 64,          /* relays in a group (-threads) */
};

/* What turn_handle_client() and turn_handle_peer() ask for. */
enum turn_verdict {
	TURN_DROP = -1,      /* malformed or refused silently: count it */
	TURN_IGNORE = 0,     /* nothing to send */
	TURN_TO_CLIENT = 1,  /* send out[0..o->len) to o->to from listen
	                      * socket o->sock */
	TURN_TO_PEER = 2,    /* send o->data[0..o->len) to o->to from the
	                      * relayed socket of allocation o->slot */
};

/* Why datagrams were dropped or requests refused, for the stop line. */
struct turn_stats {
	uint64_t allocated, refreshed, deleted, expired;
	uint64_t closed;            /* deleted as their connection closed */
	uint64_t challenged;        /* 401 with a fresh nonce */
	uint64_t stale;             /* 438 */
	uint64_t refused;           /* other error responses */
	uint64_t quota;             /* 486 and 508 */
	uint64_t forbidden;         /* 403 */
	uint64_t relayed_out, relayed_in;       /* datagrams */
	uint64_t bytes_out, bytes_in;
	uint64_t malformed_channel; /* ChannelData dropped as malformed */
	uint64_t no_permission;     /* dropped: no permission or channel */
	uint64_t over_rate;         /* dropped: -relay-bps */
	uint64_t malformed;         /* STUN dropped */
};

/* The socket layer's side.  relay_open binds the relayed socket of
 * allocation slot `slot` to addr (its port chosen here) and returns 0, or
 * -1 when that port is taken; relay_close closes it. */
struct turn_ops {
	int (*relay_open)(void *ctx, int slot, const struct sockaddr *addr);
	void (*relay_close)(void *ctx, int slot);
	/* Credentials the rendezvous minted (usernames "rdv:..."; see
	 * turn_mint()): 0 while the registration that got them is live, and,
	 * with peer, when peer is an address the client may relay to.  NULL:
	 * such usernames are refused. */
	int (*minted)(void *ctx, const char *username,
	              const struct sockaddr *peer);
	void *ctx;
};

struct turn_config {
	const uint8_t *secret;        /* REST secret; NULL: TURN is off */
	size_t secret_len;
	const char *realm;            /* NULL: "punch" */
	const char *software;         /* SOFTWARE value, or NULL */
	/* Relayed addresses: the address the relayed sockets bind to and
	 * that XOR-RELAYED-ADDRESS advertises, one per family (port
	 * ignored; unset family: no relay of that family). */
	struct sockaddr_storage relay4, relay6;
	struct sockaddr_storage bind4, bind6; /* where to bind; unset: relayN */
	uint16_t port_lo, port_hi;    /* relayed ports, inclusive */
	size_t max_allocs;            /* 0: TURN_ALLOCS_DEFAULT */
	size_t max_per_prefix;        /* 0: TURN_PER_PREFIX_DEFAULT */
	uint64_t relay_bps;           /* bytes per second per allocation; 0: no
	                               * limit */
	int allow_private;            /* peers on loopback/private addresses */
};

struct turn_out {
	int sock;       /* TURN_TO_CLIENT: listen socket */
	int slot;       /* TURN_TO_PEER: allocation */
	struct sockaddr_storage to;
	const uint8_t *data;          /* TURN_TO_PEER: into the input */
	size_t len;
	int is_error;                 /* an error response */
};

struct turn_server;

struct turn_server *turn_server_new(const struct turn_config *cfg,
                                    const struct turn_ops *ops);
void turn_server_free(struct turn_server *t);
/* Unix time at which the monotonic clock `now` (ms) read 0, for the REST
 * usernames' expiry. */
void turn_server_set_wall(struct turn_server *t, uint64_t wall_at_zero_s);

/* Is this datagram ChannelData (RFC 8656 12: first two bits 01)?  Is this
 * STUN method TURN's? */
int turn_is_channel_data(const uint8_t *buf, size_t len);
int turn_method_is_turn(int method);

/* A datagram from a client on listen socket sock: TURN requests, Send
 * indications, ChannelData. */
int turn_handle_client(struct turn_server *t, int sock, const uint8_t *buf,
                       size_t len, const struct sockaddr *from, uint64_t now,
                       uint8_t *out, size_t cap, struct turn_out *o);
/* A datagram from a peer on the relayed socket of allocation slot. */
int turn_handle_peer(struct turn_server *t, int slot, const uint8_t *buf,
                     size_t len, const struct sockaddr *from, uint64_t now,
                     uint8_t *out, size_t cap, struct turn_out *o);
/* The client's connection (a TCP control connection, RFC 8656 3.1) is
 * gone: delete its allocation, if it has one (RFC 8656 7: the
 * allocation's 5-tuple is the connection's).  1 if it had one. */
int turn_client_gone(struct turn_server *t, int sock,
                     const struct sockaddr *from);
/* Does this client (listen socket or connection sock) hold an
 * allocation? */
int turn_client_has_alloc(const struct turn_server *t, int sock,
                          const struct sockaddr *from);
/* Expire allocations, permissions and channels; returns the next time
 * (ms) this wants to run. */
uint64_t turn_tick(struct turn_server *t, uint64_t now);

/* -threads: one relay per thread, each serving the allocations its
 * thread made, under limits (-max-allocations, per prefix) that are the
 * server's.  A relay that joins a group counts every member's
 * allocations, under the group's lock, when it allocates; members share
 * their config's limits.  The group must outlive its members. */
struct turn_group;
struct turn_group *turn_group_new(void);
void turn_group_free(struct turn_group *g);
/* 0, or -1 if the group is full (TURN_GROUP_MAX). */
int turn_server_join(struct turn_server *t, struct turn_group *g);

const struct turn_stats *turn_stats(const struct turn_server *t);
size_t turn_alloc_count(const struct turn_server *t);
size_t turn_alloc_size(void);  /* bytes of state per allocation */

/* The REST password for a username, base64(HMAC-SHA1(secret, username)),
 * NUL-terminated in out (29 bytes are enough).  For tests and tools. */
int turn_rest_password(const uint8_t *secret, size_t secret_len,
                       const char *username, char *out, size_t cap);

/* Credentials for a registration (docs/protocol.md, PUNCH-RELAY): the
 * username "rdv:SESSION:ID" (SESSION 16 hex digits), the password the REST
 * formula gives it under the relay's secret.  0, or -1 if they do not fit. */
int turn_mint(const uint8_t *secret, size_t secret_len, const char *id,
              uint64_t session, char *user, size_t user_cap, char *pass,
              size_t pass_cap);
/* The id and session of a minted username; 0, or -1 if it is not one. */
int turn_mint_parse(const char *user, char *id, size_t id_cap,
                    uint64_t *session);

#endif
