/*
 * One peer session (client.h) wired together: what it says, what it
 * sends, the rendezvous events (Steps 1 to 4), network input, the one
 * bookkeeping pass and set-up and tear-down.  The server connection, the
 * relay, the link and probing have files of their own (client_internal.h).
 */
#include "client.h"

#include <signal.h>
#include <stdarg.h>
#include <gnutls/crypto.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "addr.h"
#include "agent.h"
#include "client_internal.h"
#include "identity.h"
#include "link.h"
#include "gather.h"
#include "log.h"
#include "portmap.h"
#include "probe.h"
#include "probe_socks.h"
#include "rendezvous_client.h"
#include "server_conn.h"
#include "server_pick.h"
#include "stun.h"
#include "turn_client.h"
#include "udp.h"

/* ---- output ------------------------------------------------------------ */

static uint64_t step_ms(struct client *c)
{
	uint64_t t = now_ms(c), d = t - c->t_step;

	c->t_step = t;
	return d;
}

void client_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void cand_list(const struct punch_candidate *cand, size_t n, char *buf,
                      size_t len)
{
	char a[ADDR_STRLEN];
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s %s",
		                        i ? ", " : "",
		                        punch_cand_type_str(cand[i].type),
		                        addr_str((const struct sockaddr *)&cand[i].addr, a, sizeof(a)));
}

void client_finish(struct client *c, int code)
{
	if (c->exit_code < 0)
		c->exit_code = code;
	uv_stop(&c->loop);
}

/* ---- sending ----------------------------------------------------------- */

/* UDP may drop, and every sender here retransmits: a failed send is
 * only worth a debug line. */
void client_send_one(struct client *c, int sock, const struct sockaddr *to,
                     const uint8_t *buf, size_t len, int ttl)
{
	char a[ADDR_STRLEN];
	int rc;

	if (sock == AGENT_SOCK_PROBE) {
		rc = probe_socks_send(&c->psocks, c->psocks.kept, to, buf, len,
		                      ttl);
		if (rc < 0)
			log_debug("send to %s: %s", addr_str(to, a, sizeof(a)),
			          strerror(-rc));
		return;
	}
	if (c->via != VIA_UDP && sock != AGENT_SOCK_RELAY &&
	    addr_equal(to, (const struct sockaddr *)&c->server)) {
		/* over the server's connection: the rendezvous and TURN */
		if (server_conn_send(c->conn, buf, len))
			log_debug("server connection: cannot send %zu bytes", len);
		return;
	}
	if (sock == AGENT_SOCK_RELAY) {
		/* through the relay: wrapped for it (turn_client.h) */
		if (c->relay != RELAY_READY ||
		    turn_client_send(&c->turn, to, buf, len, now_ms(c)))
			log_debug("relay: cannot send %zu bytes to %s", len,
			          addr_str(to, a, sizeof(a)));
		return;
	}
	rc = udp_send(&c->udp, sock, to, buf, len, ttl);

	if (rc < 0)
		log_debug("send to %s: %s", addr_str(to, a, sizeof(a)),
		          strerror(-rc));
}

static void agent_send(void *ctx, int sock, const struct sockaddr *to,
                       const uint8_t *buf, size_t len, int ttl)
{
	client_send_one(ctx, sock, to, buf, len, ttl);
}

static void rdvc_send(void *ctx, const struct sockaddr *to,
                      const uint8_t *buf, size_t len)
{
	struct client *c = ctx;

	client_send_one(c, c->server_sock, to, buf, len, 0);
}

/* ---- rendezvous events: Steps 1 to 4 ---------------------------------- */

static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >>
		        24) == 127;
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* Step 1 in plain words.  A mapped address that is one of this machine's
 * own means no NAT; one on loopback means the server runs here too, which
 * only a local test does (the srflx candidate stays: it is what works
 * between two peers on a machine with no other address). */
static void say_step1(struct client *c, int natted)
{
	const struct sockaddr *m = (const struct sockaddr *)&c->rc.srflx;
	char a[ADDR_STRLEN];

	addr_str(m, a, sizeof(a));
	if (c->via != VIA_UDP)
		client_say("Step 1: STUN over %s: the server sees me at %s (a TCP mapping, so no UDP candidate from it), asked %s in %llu ms",
		           via_str(c->via), a, server_name(c),
		           (unsigned long long)step_ms(c));
	else if (is_loopback(m))
		client_say("Step 1: STUN: the server sees me at %s (no NAT: the server is on loopback, so this is a local test), asked %s in %llu ms",
		           a, server_name(c), (unsigned long long)step_ms(c));
	else
		client_say("Step 1: STUN: my public address is %s (%s), asked %s in %llu ms",
		           a, natted ? "behind a NAT" : "no NAT: it is this machine's own address",
		           server_name(c), (unsigned long long)step_ms(c));
}

/* The gateway's mapping as a candidate of its own (portmap.h); its base is
 * our IPv4 socket, so the agent needs no socket of its own for it.  0 when
 * added (or already there). */
static int add_mapped(struct client *c)
{
	struct punch_peer *self = &c->rc.self;
	const struct portmap_entry *e = portmap_mapped(&c->pm, NULL);
	struct punch_candidate *m;

	if (!c->pm_started || !e)
		return -1;
	for (size_t i = 0; i < self->n_cand; i++)
		if (self->cand[i].type == CAND_MAPPED)
			return 0;
	if (self->n_cand >= PUNCH_CANDIDATES_MAX)
		return -1;
	m = &self->cand[self->n_cand++];
	memset(m, 0, sizeof(*m));
	m->type = CAND_MAPPED;
	m->priority = punch_cand_priority(CAND_MAPPED, 65535);
	memcpy(&m->addr, &e->ext, sizeof(e->ext));
	return 0;
}

static void on_portmap(void *ctx, enum portmap_event ev, int proto)
{
	struct client *c = ctx;
	const struct portmap_entry *e;
	char a[ADDR_STRLEN];
	int first;

	e = portmap_mapped(&c->pm, &first);
	if (ev != PORTMAP_EV_MAPPED || !e || first != proto)
		return;
	client_say("Port mapping: the gateway maps my UDP port %u to %s (%s, in %llu ms)%s",
	           c->pm.port, addr_str((const struct sockaddr *)&e->ext, a, sizeof(a)),
	           portmap_proto_str(proto),
	           (unsigned long long)(e->mapped_ms - c->pm.start_ms),
	           c->published ? "; offered to the peer" : "");
	/* registered already: the new candidate goes in a new REGISTER,
	 * which the server passes on as a PEER-INFO update */
	if (c->published && !add_mapped(c))
		rdvc_register(&c->rc, now_ms(c));
}

static void publish_candidates(struct client *c)
{
	struct punch_peer *self = &c->rc.self;
	char list[1024];
	int natted = 1;

	self->n_cand = 0;
	for (int s = 0; s < UDP_SOCKETS; s++) {
		size_t n;

		if (!udp_is_open(&c->udp, s))
			continue;
		n = gather_host(s ? AF_INET6 : AF_INET, udp_port(&c->udp, s),
		                self->cand + self->n_cand,
		                PUNCH_CANDIDATES_MAX - 1 - self->n_cand);
		if (n)
			agent_set_socket(&c->agent, s, self->cand[self->n_cand].priority);
		self->n_cand += n;
	}
	for (size_t i = 0; i < self->n_cand; i++)
		if (addr_same_ip((struct sockaddr *)&self->cand[i].addr,
		                 (struct sockaddr *)&c->rc.srflx))
			natted = 0;
	agent_set_natted(&c->agent, natted);
	/* Over TCP the server saw a TCP mapping: nothing to learn of UDP's. */
	if (c->via == VIA_UDP)
		punch_nat_classify(&self->nat, udp_port(&c->udp, c->server_sock),
		                   (const struct sockaddr *)&c->rc.srflx,
		                   c->rc.has_srflx_alt ?
		                           (const struct sockaddr *)&c->rc.srflx_alt :
		                           NULL);
	log_debug("my NAT's mapping: %s, ports %s (delta %d)",
	          punch_nat_mapping_str(self->nat.mapping),
	          punch_nat_ports_str(self->nat.ports), self->nat.delta);
	if (natted && c->via == VIA_UDP) {
		struct punch_candidate *sr = &self->cand[self->n_cand++];

		sr->type = CAND_SRFLX;
		sr->priority = punch_cand_priority(CAND_SRFLX, 65535);
		sr->addr = c->rc.srflx;
	}
	if (!agent_has_socket(&c->agent, c->server_sock)) {
		/* No usable host address of the server's family (say, only
		 * loopback): the srflx path still needs the socket. */
		agent_set_socket(&c->agent, c->server_sock,
		                 punch_cand_priority(CAND_HOST, 0));
	}
	add_mapped(c);
	c->published = 1;
	cand_list(self->cand, self->n_cand, list, sizeof(list));
	say_step1(c, natted);
	client_say("Step 2: registering as %s, looking for %s; candidates: %s",
	           c->cfg->id, c->cfg->peer, list);
}

static int peer_session_seen(const struct client *c, uint64_t session)
{
	unsigned n = c->n_peer_sessions < PEER_SESSIONS_MAX ?
	                     c->n_peer_sessions :
	                     PEER_SESSIONS_MAX;

	for (unsigned i = 0; i < n; i++)
		if (c->peer_sessions[i] == session)
			return 1;
	return 0;
}

/* A PEER-INFO about a peer we already have is acted on only if it is that
 * peer, restarted: the same key and a session we have not seen.  Anything
 * else (a repeat, a replay, another key under the same id) leaves the
 * agent and the link alone. */
static int peer_info_is_news(struct client *c, const struct punch_peer *peer)
{
	const struct punch_peer *cur = agent_peer(&c->agent);

	if (!agent_has_remote(&c->agent))
		return 1;
	if (peer_session_seen(c, peer->session))
		return 0;
	if (!peer->has_key_fp || !cur->has_key_fp ||
	    memcmp(peer->key_fp, cur->key_fp, sizeof(cur->key_fp))) {
		c->peer_info_ignored++;
		log_debug("PEER-INFO for %s with another key ignored: the peer we have keeps its link",
		          peer->id);
		return 0;
	}
	return 1;
}

/* A PEER-INFO of the session we have: new candidates (trickled: the
 * peer's relayed address), or a repeat. */
static void on_peer_update(struct client *c, const struct punch_peer *peer)
{
	size_t before = agent_peer(&c->agent)->n_cand, n;
	char list[1024];

	n = agent_add_candidates(&c->agent, peer, now_ms(c));
	if (!n)
		return;
	client_permit_peer(c, peer);
	cand_list(peer->cand + (before < peer->n_cand ? before : 0),
	          peer->n_cand - (before < peer->n_cand ? before : 0), list,
	          sizeof(list));
	client_say("Step 4: peer info update: %s now also has %s (after %llu ms)",
	           peer->id, list, (unsigned long long)(now_ms(c) - c->t_peer_info));
}

static void on_peer_info(struct client *c, const struct punch_peer *peer)
{
	char list[1024], seen[ADDR_STRLEN] = "?";

	if (agent_has_remote(&c->agent) &&
	    agent_peer(&c->agent)->session == peer->session) {
		on_peer_update(c, peer);
		return;
	}
	if (!peer_info_is_news(c, peer))
		return;
	c->peer_sessions[c->n_peer_sessions++ % PEER_SESSIONS_MAX] =
		peer->session;
	cand_list(peer->cand, peer->n_cand, list, sizeof(list));
	if (peer->has_observed)
		addr_str((const struct sockaddr *)&peer->observed, seen,
		         sizeof(seen));
	if (agent_has_remote(&c->agent))
		client_say("%s restarted; punching again", peer->id);
	if (!c->said_ready) {
		/* PEER-INFO overtook the answer to our REGISTER */
		c->said_ready = 1;
		client_say("Step 3: ready: registered in %llu ms; the peer is here",
		           (unsigned long long)step_ms(c));
	}
	c->t_peer_info = now_ms(c);
	client_say("Step 4: peer info: %s has %s; the server sees it at %s (after %llu ms)",
	           peer->id, list, seen, (unsigned long long)step_ms(c));
	agent_set_remote(&c->agent, peer, now_ms(c));
	client_permit_peer(c, peer);
	client_say("Step 5: punching: checking %zu candidate pairs (%s)",
	           agent_pair_count(&c->agent),
	           agent_is_controlling(&c->agent) ? "controlling" : "controlled");
	c->probe_at = now_ms(c) + PROBE_CHECKS_FIRST_MS;
}

static void on_rdvc_event(void *ctx, int event, const void *arg)
{
	struct client *c = ctx;
	char a[ADDR_STRLEN];

	switch (event) {
	case RDVC_EV_DISCOVERED:
		publish_candidates(c);
		rdvc_register(&c->rc, now_ms(c));
		break;
	case RDVC_EV_REGISTERED:
		client_relay_start(c);
		/* Refreshes come every few seconds; say "ready" once. */
		if (!c->said_ready) {
			c->said_ready = 1;
			client_say("Step 3: ready: registered in %llu ms; %s",
			           (unsigned long long)step_ms(c),
			           *(const uint32_t *)arg == PUNCH_STATUS_PAIRED ?
			                   "the peer is here" :
			                   "waiting for the peer");
		}
		break;
	case RDVC_EV_PEER_INFO:
		on_peer_info(c, arg);
		break;
	case RDVC_EV_REFUSED:
		log_error("the rendezvous server refused: %s", (const char *)arg);
		client_finish(c, 1);
		break;
	case RDVC_EV_SERVER_KEY:
	case RDVC_EV_SERVER_KEY_CHANGED:
		client_on_server_key(c, event, arg);
		break;
	case RDVC_EV_RELEASED:
		break;
	case RDVC_EV_SERVER_LOST:
		client_failover_start(c);
		break;
	case RDVC_EV_UNREACHABLE:
		log_error("cannot reach rendezvous server %s (no answer after %d tries over %s%s%s); check -server",
		          addr_str((struct sockaddr *)&c->server, a, sizeof(a)),
		          c->rc.rtx_params ? (int)c->rc.rtx_params->rc : RTX_RC,
		          via_str(c->via),
		          c->conn_failed[0] ? "; TCP/TLS: " : "", c->conn_failed);
		client_finish(c, 1);
		break;
	}
}

/* ---- network input ----------------------------------------------------- */

/* QUIC: the link's, or kept until the link exists.  Only the peer's
 * candidates (host, srflx, or learned from its checks) may fill the few
 * early slots, so that datagrams from a third address cannot crowd out the
 * peer's Initial.  The link itself drops what does not come from the
 * chosen pair until the handshake is done (quic.c). */
void client_on_quic(struct client *c, int sock, const struct sockaddr *from,
                    const uint8_t *data, size_t len)
{
	if (c->link) {
		/* The peer on any of its known addresses, relayed or not, is
		 * the peer the link knows (QUIC authenticates every packet). */
		if (agent_is_remote_addr(&c->agent, from))
			from = (const struct sockaddr *)&c->link_remote;
		link_on_datagram(c->link, from, data, len, uv_hrtime());
	} else if (agent_has_remote(&c->agent) &&
	           agent_is_remote_addr(&c->agent, from))
		udp_early_push(&c->early, sock, from, data, len);
}

void client_on_stun(struct client *c, int sock, const struct sockaddr *from,
                    const uint8_t *data, size_t len)
{
	uint64_t t = now_ms(c);
	struct stun_msg m;
	char a[ADDR_STRLEN];
	int rc;

	if ((rc = stun_decode(&m, data, len)) != STUN_OK) {
		c->malformed++;
		log_debug("drop %zu bytes from %s: %s", len,
		          addr_str(from, a, sizeof(a)), stun_err_str(rc));
		return;
	}
	if (sock != AGENT_SOCK_RELAY && c->relay != RELAY_NONE &&
	    addr_equal(from, (struct sockaddr *)&c->relay_addr) &&
	    turn_client_on_stun(&c->turn, data, len, &m, t)) {
		client_relay_dispatch(c);
		return;
	}
	if (sock != AGENT_SOCK_RELAY &&
	    pick_on_stun(&c->pick, from, &m, now_us()))
		return;
	if (sock != AGENT_SOCK_RELAY && rdvc_is_server(&c->rc, from)) {
		if (!rdvc_on_stun(&c->rc, data, len, &m, t))
			log_debug("unexpected message from the server dropped");
	} else if (!agent_on_stun(&c->agent, sock, from, data, len, &m, t) &&
	           (sock == AGENT_SOCK_RELAY ||
	            !probe_on_stun(&c->probe, PROBE_MAIN, from, data, len, &m, t))) {
		log_debug("unexpected %s from %s dropped",
		          stun_class_str(m.cls), addr_str(from, a, sizeof(a)));
	}
}

/* udp.c hands over every datagram of a batch, then calls on_batch: the
 * one bookkeeping pass (and so one QUIC write) per batch. */
void client_on_datagram(void *ctx, int sock, enum udp_kind kind,
                        const struct sockaddr *from, const uint8_t *data,
                        size_t len)
{
	struct client *c = ctx;

	switch (kind) {
	case UDP_KIND_STUN:
		client_on_stun(c, sock, from, data, len);
		break;
	case UDP_KIND_QUIC:
		/* ChannelData looks like QUIC: the relay's address tells */
		if (c->relay != RELAY_NONE &&
		    addr_equal(from, (struct sockaddr *)&c->relay_addr)) {
			turn_client_on_channel(&c->turn, data, len);
			client_relay_dispatch(c);
		} else
			client_on_quic(c, sock, from, data, len);
		break;
	case UDP_KIND_TURN_CHANNEL:
		break; /* udp_classify never says so: see above */
	}
}

static void on_batch(void *ctx)
{
	client_schedule(ctx);
}

/* ---- timers ------------------------------------------------------------ */

void client_on_timer(uv_timer_t *t)
{
	client_schedule(t->data);
}

/* The one bookkeeping pass: run every module's deadlines, then sleep until
 * the earliest next one. */
void client_schedule(struct client *c)
{
	uint64_t t = now_ms(c), next = UINT64_MAX, n;

	if (c->exit_code >= 0)
		return;
	if (c->relay_next) {
		c->relay_next = 0;
		client_relay_use(c, c->turn_at + 1);
		c->relay = RELAY_NONE;
		client_relay_start(c);
	}
	n = rdvc_tick(&c->rc, t);
	next = n < next ? n : next;
	/* after the rendezvous, which may start a round (failover) */
	n = client_pick_schedule(c);
	next = n < next ? n : next;
	n = client_fallback_tick(c, t);
	next = n < next ? n : next;
	n = agent_tick(&c->agent, t);
	next = n < next ? n : next;
	n = client_schedule_probe(c, t);
	next = n < next ? n : next;
	if (c->relay == RELAY_ALLOCATING || c->relay == RELAY_READY) {
		n = turn_client_tick(&c->turn, t);
		next = n < next ? n : next;
	}
	if (c->link && c->exit_code < 0) {
		uint64_t ns = link_tick(c->link, uv_hrtime());

		if (ns != UINT64_MAX) {
			/* Round up, so that the timer does not fire early.  The
			 * deadline includes ngtcp2's pacer (its next send slot);
			 * ngtcp2 0.12 lets a packet go up to 1 ms before its slot
			 * (NGTCP2_PKT_PACING_OVERHEAD), so libuv's whole
			 * milliseconds do not slow a paced link. */
			n = (ns + 999999) / 1000000;
			next = n < next ? n : next;
		}
	}
	if (c->exit_code >= 0)
		return;
	if (c->cfg->wait_s && !agent_has_remote(&c->agent) &&
	    t - c->t_start >= (uint64_t)c->cfg->wait_s * 1000) {
		log_error("%s did not show up within %u s", c->cfg->peer,
		          c->cfg->wait_s);
		client_finish(c, 1);
		return;
	}
	if (next == UINT64_MAX)
		next = t + 1000;
	/* The loop's clock is the one the timer counts from; a stale one
	 * (a long batch) would fire it early, before the deadline. */
	uv_update_time(&c->loop);
	uv_timer_start(&c->timer, client_on_timer, next > t ? next - t : 0, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct client *c = h->data;

	(void)signum;
	if (c->link && !c->interrupted) {
		c->interrupted = 1;
		link_interrupt(c->link, uv_hrtime());
		client_schedule(c);
	} else {
		client_finish(c, 130);
	}
}

/* ---- set-up and tear-down --------------------------------------------- */

/* The check credentials: the password keys MESSAGE-INTEGRITY, so it is
 * drawn as a key is (GNUTLS_RND_RANDOM).  0, or -1 if the generator
 * failed. */
static int random_token(char *out, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t r[64];

	if (len > sizeof(r) || gnutls_rnd(GNUTLS_RND_RANDOM, r, len))
		return -1;
	for (size_t i = 0; i < len; i++)
		out[i] = alphabet[r[i] % 64];
	out[len] = '\0';
	gnutls_memset(r, 0, sizeof(r));
	return 0;
}

static void close_one(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int setup(struct client *c, const struct client_config *cfg)
{
	struct punch_peer self = { 0 };
	char err_buf[256];
	const char *err;
	int rc;

	for (int i = 0; i < cfg->servers.n; i++)
		if (addr_resolve(&c->srv_addr[i], cfg->servers.name[i], AF_UNSPEC,
		                 &err)) {
			log_error("bad -server '%s': %s", cfg->servers.name[i],
			          err);
			return 2;
		}
	client_server_use(c, 0);
	pick_init(&c->pick, c->srv_addr, cfg->servers.n, client_pick_send, c);
	c->failover = -1;
	for (int i = 0; i < cfg->n_turn; i++)
		if (addr_resolve(&c->turn_addr[i], cfg->turn[i].host, AF_UNSPEC,
		                 &err)) {
			log_error("bad -turn server '%s': %s", cfg->turn[i].host,
			          err);
			return 2;
		}
	if (cfg->n_turn)
		client_relay_use(c, 0);
	if (cfg->server_tls && client_tls_target(c, cfg->server_tls))
		return 2;
	for (int s = 0; s < UDP_SOCKETS; s++) {
		rc = udp_open(&c->udp, s);
		if (rc && (s == c->server_sock || client_turn_needs_sock(c, s))) {
			log_error("cannot open a UDP socket: %s", strerror(-rc));
			return 1;
		}
	}
	if (identity_load(&c->id, err_buf, sizeof(err_buf))) {
		log_error("%s", err_buf);
		return 1;
	}
	if (c->id.created)
		client_say("Created a new identity key in %s", c->id.dir);
	if (sign_key_from_x509(&c->sign, c->id.key)) {
		log_error("cannot use the identity key in %s for signing",
		          c->id.dir);
		return 1;
	}
	snprintf(self.id, sizeof(self.id), "%s", cfg->id);
	snprintf(self.peer_id, sizeof(self.peer_id), "%s", cfg->peer);
	if (random_token(self.ufrag, 8) || random_token(self.pwd, 24) ||
	    gnutls_rnd(GNUTLS_RND_NONCE, &self.session, sizeof(self.session))) {
		log_error("the system's random number generator failed");
		return 1;
	}

	/* RFC 8445 6.1.1 decides roles by tie-breaker; both ends know both
	 * ids, so the smaller id controls and there is never a conflict. */
	agent_init(&c->agent, strcmp(cfg->id, cfg->peer) < 0, self.ufrag,
	           self.pwd, agent_send, c);
	agent_set_on_state(&c->agent, client_on_agent_state);
	agent_set_on_switch(&c->agent, client_on_agent_switch);
	agent_set_path_policy(&c->agent, cfg->path_policy);
	probe_init(&c->probe, &c->agent, client_probe_send, client_on_probe_end, c);
	probe_socks_init(&c->psocks, client_on_probe_datagram, c);
	/* Local candidates are checked only when everything is on this
	 * machine (tests, the lab's one-host runs). */
	agent_set_allow_local(&c->agent,
	                      addr_classify((struct sockaddr *)&c->server) ==
	                              ADDR_CLASS_LOOPBACK);
	rdvc_init(&c->rc, (struct sockaddr *)&c->server, &self, rdvc_send,
	          on_rdvc_event, c);
	rdvc_set_key(&c->rc, &c->sign);
	if (client_pin_server(c, cfg))
		return 1;

	uv_timer_init(&c->loop, &c->timer);
	c->timer.data = c;
	uv_signal_init(&c->loop, &c->sigint);
	uv_signal_init(&c->loop, &c->sigterm);
	c->sigint.data = c->sigterm.data = c;
	uv_signal_start(&c->sigint, on_signal, SIGINT);
	uv_signal_start(&c->sigterm, on_signal, SIGTERM);
	return 0;
}

int client_run(const struct client_config *cfg)
{
	struct client *c = calloc(1, sizeof(*c));
	int rc;

	if (!c) {
		log_error("out of memory");
		return 1;
	}
	c->cfg = cfg;
	c->exit_code = -1;
	/* A closed stdout (punch chat | head) is an error to report, not a
	 * reason to die silently. */
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&c->loop);
	udp_init(&c->udp, &c->loop, client_on_datagram, on_batch, c);
	c->t_start = c->t_step = now_ms(c);
	rc = setup(c, cfg);
	if (rc == 0) {
		/* One server: ask it.  Several: the pick's round first. */
		if (cfg->servers.n > 1)
			pick_start(&c->pick, client_pick_skip(c, -1), now_us());
		else
			rdvc_start(&c->rc, now_ms(c));
		/* A server on loopback is a test on this one machine: no
		 * gateway of ours is involved, and none is asked. */
		if (!cfg->no_portmap && udp_is_open(&c->udp, 0) &&
		    addr_classify((struct sockaddr *)&c->server) !=
		            ADDR_CLASS_LOOPBACK &&
		    !portmap_start(&c->pm, &c->loop, udp_port(&c->udp, 0), NULL,
		                   0, on_portmap, c))
			c->pm_started = 1;
		client_schedule(c);
		uv_run(&c->loop, UV_RUN_DEFAULT);
		rc = c->exit_code < 0 ? 0 : c->exit_code;
		/* the relayed port goes back now, not at its lifetime's end */
		if (c->relay == RELAY_READY)
			turn_client_release(&c->turn, now_ms(c));
	}
	/* so is the mapped one (and a UPnP call still running ends in the
	 * loop's last run, below) */
	if (c->pm_started)
		portmap_stop(&c->pm);
	if (c->conn)
		log_debug("server connection: %llu messages in, %llu out, %llu dropped",
		          (unsigned long long)server_conn_stats(c->conn)->rx_msgs,
		          (unsigned long long)server_conn_stats(c->conn)->tx_msgs,
		          (unsigned long long)server_conn_stats(c->conn)->tx_dropped);
	server_conn_free(c->conn); /* freed once the loop has closed it */
	server_conn_free(c->tried);
	uv_walk(&c->loop, close_one, NULL);
	uv_run(&c->loop, UV_RUN_DEFAULT);
	udp_free(&c->udp);    /* after the loop has closed the poll handles */
	probe_socks_free(&c->psocks);
	link_free(c->link);   /* after the loop has closed the app's handles */
	log_debug("udp: %llu GSO sends, %llu sendmmsg, %llu sends failed, %llu datagrams too large",
	          (unsigned long long)c->udp.gso_sends,
	          (unsigned long long)c->udp.mmsg_sends,
	          (unsigned long long)c->udp.send_failed,
	          (unsigned long long)c->udp.truncated);
	log_debug("rendezvous: %llu unsigned or badly signed messages dropped, %llu PEER-INFO ignored",
	          (unsigned long long)c->rc.unsigned_dropped,
	          (unsigned long long)c->peer_info_ignored);
	sign_key_wipe(&c->sign);
	uv_loop_close(&c->loop);
	identity_free(&c->id);
	gnutls_memset(c, 0, sizeof(*c));
	free(c);
	return rc;
}
