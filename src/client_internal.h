/*
 * The client's own header: struct client, which the files below share, and
 * the functions they call across files.  Only they include it.  One peer
 * session (client.h), written as five files, one part each:
 *
 *   client.c         output, sending, the rendezvous events (Steps 1 to
 *                    4), network input, the timers, set-up and tear-down
 *   client_server.c  the server over TCP or TLS, the pick among -server's
 *                    list and failover, -server-tls and the server's key
 *   client_relay.c   the relay: our relayed candidate (turn_client.h)
 *   client_link.c    the chosen pair and the link on it (link.h)
 *   client_probe.c   birthday probing (probe.h) and its sockets
 *
 * The functions declared at the end are global symbols of punchcore,
 * beside other modules' relay_, pick_ and probe_ names: hence client_ on
 * every one.  The few static inline ones before them are no symbols, and
 * keep their short names.
 */
#ifndef PUNCH_CLIENT_INTERNAL_H
#define PUNCH_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "agent.h"
#include "client.h"
#include "identity.h"
#include "portmap.h"
#include "probe.h"
#include "probe_socks.h"
#include "rendezvous_client.h"
#include "server_conn.h"
#include "server_pick.h"
#include "turn_client.h"
#include "udp.h"

struct link;

enum {
	PEER_SESSIONS_MAX = 8, /* the peer's past sessions, never taken back */
	/* The server's first answer over UDP, before TCP is tried */
	UDP_ANSWER_MS = 1000,
};

/* How the server is reached: UDP, or one stream connection when UDP
 * gets no answer (a network that drops it): server_conn.h. */
enum server_via {
	VIA_UDP,
	VIA_TCP,
	VIA_TLS,   /* -server-tls, when TCP failed too */
};

/* Our relayed candidate, from the punch server's TURN relay. */
enum relay_state {
	RELAY_NONE,        /* not asked for: no credentials, or -direct-only */
	RELAY_ALLOCATING,
	RELAY_READY,       /* a relayed address, offered as a candidate */
	RELAY_FAILED,
};

_Static_assert((int)AGENT_SOCK_RELAY == (int)UDP_SOCKETS,
               "the agent's host sockets are udp.c's, by index, then the relay");

struct client {
	const struct client_config *cfg;
	uv_loop_t loop;
	struct udp udp;
	uv_timer_t timer;
	uv_signal_t sigint, sigterm;

	struct sockaddr_storage server;
	int server_sock;
	/* -server's list, resolved; srv_at: the one in use.  The pick's
	 * round: at start (when there are several), or to fail over
	 * (failover: the lost server's index, else -1). */
	struct sockaddr_storage srv_addr[SERVER_LIST_MAX];
	int srv_at;
	struct server_pick pick;
	int failover;
	enum server_via via;
	struct server_conn *conn;   /* the try under way, or the connection */
	struct server_conn *tried;  /* the TCP try, failed, before TLS */
	char conn_failed[SCONN_REASON_MAX]; /* why the last try failed */
	struct sockaddr_storage tls_addr;    /* -server-tls */
	char tls_host[256];                  /* its HOST, for the certificate */
	struct rdv_client rc;
	struct agent agent;
	/* Birthday probing (probe.h) and, on the hard side, its sockets: the
	 * one a probe reaches becomes the agent's AGENT_SOCK_PROBE. */
	struct probe probe;
	struct probe_socks psocks;
	uint64_t probe_at;     /* when to consider probing, or 0 */
	struct identity id;
	struct sign_key sign;  /* the identity key, for signing requests */
	int server_key_line;   /* known_servers line of the pinned key, or 0 */
	/* The peer's sessions we have acted on: a PEER-INFO carrying one of
	 * them again is old news (or a replay), never a restart. */
	uint64_t peer_sessions[PEER_SESSIONS_MAX];
	unsigned n_peer_sessions;
	uint64_t peer_info_ignored;
	struct link *link;
	/* The peer's address as the link knows it: the first chosen pair's.
	 * When the agent switches pairs (relay to direct and back) the link
	 * is not told; its packets go by the chosen pair (link_dest), and
	 * arrive as from here (client_on_quic), like a path it never left. */
	struct sockaddr_storage link_remote;
	uint64_t t_on_relay;
	struct turn_client turn;
	/* The TURN server: -turn's, or the punch server (PUNCH-RELAY) */
	struct sockaddr_storage relay_addr;
	int relay_sock;
	const char *relay_name;
	/* -turn's relays, resolved; turn_at: the one in use.  relay_next: the
	 * one in use refused before allocating, so client_schedule() moves on. */
	struct sockaddr_storage turn_addr[CLIENT_TURN_MAX];
	int turn_at, relay_next;
	enum relay_state relay;
	uint64_t t_relay;
	/* The datagram the relay client just unwrapped, handled once it has
	 * returned (its callbacks must not call back into it). */
	struct {
		uint8_t buf[TURNC_DATA_MAX];
		size_t len;
		struct sockaddr_storage from;
	} relayed_in;
	/* QUIC packets that arrive before we have chosen the pair: replayed
	 * once the link exists. */
	struct udp_early early;
	/* A port the gateway mapped for our IPv4 socket (-no-portmap: none) */
	struct portmap pm;
	int pm_started, published;

	uint64_t t_start, t_step, t_peer_info;
	int exit_code;
	int said_ready;
	int interrupted;
	uint64_t malformed;
};

static inline uint64_t now_ms(struct client *c)
{
	(void)c;
	return uv_hrtime() / 1000000;
}

static inline uint64_t now_us(void)
{
	return uv_hrtime() / 1000;
}

/* The server in use, as -server named it. */
static inline const char *server_name(const struct client *c)
{
	return c->cfg->servers.name[c->srv_at];
}

static inline const char *via_str(enum server_via v)
{
	return v == VIA_TLS ? "TLS" : v == VIA_TCP ? "TCP" :
	                                             "UDP";
}

/* client.c */
void client_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void client_finish(struct client *c, int code);
void client_send_one(struct client *c, int sock, const struct sockaddr *to,
                     const uint8_t *buf, size_t len, int ttl);
void client_on_datagram(void *ctx, int sock, enum udp_kind kind,
                        const struct sockaddr *from, const uint8_t *data,
                        size_t len);
void client_on_stun(struct client *c, int sock, const struct sockaddr *from,
                    const uint8_t *data, size_t len);
void client_on_quic(struct client *c, int sock, const struct sockaddr *from,
                    const uint8_t *data, size_t len);
void client_on_timer(uv_timer_t *t);
void client_schedule(struct client *c);

/* client_server.c */
int client_tls_target(struct client *c, const char *hostport);
int client_pin_server(struct client *c, const struct client_config *cfg);
void client_on_server_key(struct client *c, int event, const uint8_t *fp);
void client_server_use(struct client *c, int i);
void client_pick_send(void *ctx, const struct sockaddr *to, const uint8_t *buf,
                      size_t len);
unsigned client_pick_skip(const struct client *c, int lost);
void client_failover_start(struct client *c);
uint64_t client_pick_schedule(struct client *c);
uint64_t client_fallback_tick(struct client *c, uint64_t t);

/* client_relay.c */
int client_turn_needs_sock(const struct client *c, int s);
void client_relay_use(struct client *c, int i);
void client_relay_start(struct client *c);
void client_permit_peer(struct client *c, const struct punch_peer *peer);
void client_relay_dispatch(struct client *c);

/* client_link.c */
void client_on_agent_state(void *ctx, int old, int state);
void client_on_agent_switch(void *ctx, int old);

/* client_probe.c */
void client_probe_send(void *ctx, int psock, const struct sockaddr *to,
                       const uint8_t *buf, size_t len, int ttl);
void client_on_probe_datagram(void *ctx, int i, const struct sockaddr *from,
                              const uint8_t *buf, size_t len);
void client_on_probe_end(void *ctx, int psock);
uint64_t client_schedule_probe(struct client *c, uint64_t t);

#endif
