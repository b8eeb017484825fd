/*
 * The client's relayed candidate: a TURN allocation at -turn's relay or
 * the punch server's (turn_client.h), the permissions for the peer's
 * addresses, and the datagrams it unwraps.
 */
#include <string.h>

#include "addr.h"
#include "agent.h"
#include "client_internal.h"
#include "log.h"
#include "rendezvous_client.h"
#include "turn_client.h"
#include "udp.h"

/* ---- the relay -------------------------------------------------------- */

/* A public relay refuses private addresses (403): only a relay on a
 * private network (or this machine) may reach them. */
static int relay_reaches_private(const struct client *c)
{
	const struct sockaddr *srv = (const struct sockaddr *)&c->relay_addr;

	return addr_is_private(srv) ||
	       addr_classify(srv) == ADDR_CLASS_LOOPBACK;
}

static int relay_reaches(const struct client *c, const struct sockaddr *addr)
{
	return addr->sa_family == c->relay_addr.ss_family &&
	       (!addr_is_private(addr) || relay_reaches_private(c));
}

/* The relay lets through only what comes from addresses we permit: the
 * peer's candidates and where the server saw it (TURN permissions are by
 * IP address). */
void client_permit_peer(struct client *c, const struct punch_peer *peer)
{
	if (c->relay != RELAY_ALLOCATING && c->relay != RELAY_READY)
		return;
	for (size_t i = 0; i < peer->n_cand; i++)
		if (relay_reaches(c, (const struct sockaddr *)&peer->cand[i].addr))
			turn_client_permit(&c->turn,
			                   (const struct sockaddr *)&peer->cand[i].addr,
			                   now_ms(c));
	if (peer->has_observed &&
	    relay_reaches(c, (const struct sockaddr *)&peer->observed))
		turn_client_permit(&c->turn,
		                   (const struct sockaddr *)&peer->observed,
		                   now_ms(c));
}

/* The TURN client's messages go to the relay, from the socket of its
 * family. */
static void turn_send(void *ctx, const uint8_t *buf, size_t len)
{
	struct client *c = ctx;

	client_send_one(c, c->relay_sock, (const struct sockaddr *)&c->relay_addr,
	                buf, len, 0);
}

static void on_turn_event(void *ctx, int event, const void *arg);
static void on_turn_data(void *ctx, const struct sockaddr *peer,
                         const uint8_t *buf, size_t len);

/* Does a relay (the server's, or any -turn's) need UDP socket s? */
int client_turn_needs_sock(const struct client *c, int s)
{
	if (!c->cfg->n_turn)
		return s == c->server_sock;
	for (int i = 0; i < c->cfg->n_turn; i++)
		if ((c->turn_addr[i].ss_family == AF_INET6) == s)
			return 1;
	return 0;
}

/* -turn's relay number i is the one to use. */
void client_relay_use(struct client *c, int i)
{
	c->turn_at = i;
	c->relay_addr = c->turn_addr[i];
	c->relay_name = c->cfg->turn[i].host;
	c->relay_sock = c->relay_addr.ss_family == AF_INET6;
}

/* Registered: ask for a relayed address (once), unless -direct-only:
 * from -turn's server with its credentials, else from the punch server
 * with the ones its REGISTER answer carried. */
void client_relay_start(struct client *c)
{
	const char *user = c->rc.relay_user, *pass = c->rc.relay_pass;

	if (c->relay != RELAY_NONE ||
	    c->cfg->path_policy == AGENT_PATH_DIRECT_ONLY)
		return;
	if (c->cfg->n_turn) {
		user = c->cfg->turn[c->turn_at].user;
		pass = c->cfg->turn[c->turn_at].pass;
	} else if (!c->rc.has_relay) {
		if (c->cfg->path_policy == AGENT_PATH_RELAY_ONLY) {
			log_error("-relay-only, but the server %s does not relay (it runs without -auth-secret); give one with -turn",
			          server_name(c));
			client_finish(c, 1);
		}
		return;
	}
	if (turn_client_init(&c->turn, user, pass, turn_send, on_turn_data,
	                     on_turn_event, c)) {
		log_warn("relay: credentials too long; going on without the relay");
		c->relay = RELAY_FAILED;
		return;
	}
	c->relay = RELAY_ALLOCATING;
	c->t_relay = now_ms(c);
	turn_client_allocate(&c->turn, c->relay_addr.ss_family, now_ms(c));
	if (agent_has_remote(&c->agent))
		client_permit_peer(c, agent_peer(&c->agent));
}

/* Our relayed address: a candidate for the agent, and for the peer (a new
 * REGISTER, which the server passes on as a PEER-INFO update). */
static void relay_ready(struct client *c, const struct sockaddr *relayed)
{
	struct punch_peer *self = &c->rc.self;
	struct punch_candidate *rc;
	char a[ADDR_STRLEN];

	if (self->n_cand >= PUNCH_CANDIDATES_MAX) {
		log_warn("relay: no room for the relayed candidate");
		c->relay = RELAY_FAILED;
		return;
	}
	c->relay = RELAY_READY;
	rc = &self->cand[self->n_cand++];
	memset(rc, 0, sizeof(*rc));
	rc->type = CAND_RELAY;
	rc->priority = punch_cand_priority(CAND_RELAY, 65535);
	memcpy(&rc->addr, relayed, addr_len(relayed));
	agent_set_relay(&c->agent, relayed->sa_family, rc->priority,
	                relay_reaches_private(c), now_ms(c));
	client_say("Relay: %s relays for me at %s (allocated in %llu ms); offered to the peer as a last resort",
	           c->relay_name, addr_str(relayed, a, sizeof(a)),
	           (unsigned long long)(now_ms(c) - c->t_relay));
	rdvc_register(&c->rc, now_ms(c));
}

static void on_turn_event(void *ctx, int event, const void *arg)
{
	struct client *c = ctx;

	switch (event) {
	case TURN_CLIENT_EV_ALLOCATED:
		relay_ready(c, arg);
		break;
	case TURN_CLIENT_EV_FAILED:
		if (c->relay == RELAY_ALLOCATING &&
		    c->turn_at + 1 < c->cfg->n_turn) {
			/* Not from inside the relay client's own call: the
			 * next one starts in client_schedule(). */
			log_warn("relay: %s: %s; trying %s", c->relay_name,
			         (const char *)arg,
			         c->cfg->turn[c->turn_at + 1].host);
			c->relay = RELAY_FAILED;
			c->relay_next = 1;
			break;
		}
		c->relay = RELAY_FAILED;
		if (c->cfg->path_policy == AGENT_PATH_RELAY_ONLY) {
			log_error("-relay-only, but the relay %s refused: %s",
			          c->relay_name, (const char *)arg);
			client_finish(c, 1);
		} else {
			log_warn("relay: %s: %s; going on with direct paths only",
			         c->relay_name, (const char *)arg);
		}
		break;
	}
}

/* A datagram from the peer, unwrapped by the relay client: it came to our
 * relayed address.  Kept for client_relay_dispatch(). */
static void on_turn_data(void *ctx, const struct sockaddr *peer,
                         const uint8_t *buf, size_t len)
{
	struct client *c = ctx;

	if (len > sizeof(c->relayed_in.buf))
		return;
	memcpy(c->relayed_in.buf, buf, len);
	c->relayed_in.len = len;
	memcpy(&c->relayed_in.from, peer, addr_len(peer));
}

/* After turn_client_on_stun() or turn_client_on_channel(): the datagram
 * it unwrapped, if any, to the agent or the link. */
void client_relay_dispatch(struct client *c)
{
	const struct sockaddr *from = (const struct sockaddr *)&c->relayed_in.from;
	size_t len = c->relayed_in.len;

	if (!len)
		return;
	c->relayed_in.len = 0;
	if (udp_classify(c->relayed_in.buf, len) == UDP_KIND_STUN)
		client_on_stun(c, AGENT_SOCK_RELAY, from, c->relayed_in.buf, len);
	else
		client_on_quic(c, AGENT_SOCK_RELAY, from, c->relayed_in.buf, len);
}
