#include "client.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <gnutls/crypto.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "addr.h"
#include "agent.h"
#include "identity.h"
#include "known_servers.h"
#include "link.h"
#include "quic.h"
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

static const char *via_str(enum server_via v)
{
	return v == VIA_TLS ? "TLS" : v == VIA_TCP ? "TCP" :
	                                             "UDP";
}

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
	 * arrive as from here (on_quic), like a path it never left. */
	struct sockaddr_storage link_remote;
	uint64_t t_on_relay;
	struct turn_client turn;
	/* The TURN server: -turn's, or the punch server (PUNCH-RELAY) */
	struct sockaddr_storage relay_addr;
	int relay_sock;
	const char *relay_name;
	/* -turn's relays, resolved; turn_at: the one in use.  relay_next: the
	 * one in use refused before allocating, so schedule() moves on. */
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

static uint64_t now_ms(struct client *c)
{
	(void)c;
	return uv_hrtime() / 1000000;
}

static uint64_t now_us(void)
{
	return uv_hrtime() / 1000;
}

static void schedule(struct client *c);
static void on_timer(uv_timer_t *t);
static void failover_start(struct client *c);

/* The server in use, as -server named it. */
static const char *server_name(const struct client *c)
{
	return c->cfg->servers.name[c->srv_at];
}

/* ---- output ------------------------------------------------------------ */

static uint64_t step_ms(struct client *c)
{
	uint64_t t = now_ms(c), d = t - c->t_step;

	c->t_step = t;
	return d;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
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

static void finish(struct client *c, int code)
{
	if (c->exit_code < 0)
		c->exit_code = code;
	uv_stop(&c->loop);
}

/* ---- sending ----------------------------------------------------------- */

/* UDP may drop, and every sender here retransmits: a failed send is
 * only worth a debug line. */
static void send_one(struct client *c, int sock, const struct sockaddr *to,
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
	send_one(ctx, sock, to, buf, len, ttl);
}

/* Probing's sends: from a probe socket, or from our socket of to's family. */
static void probe_send(void *ctx, int psock, const struct sockaddr *to,
                       const uint8_t *buf, size_t len, int ttl)
{
	struct client *c = ctx;
	char a[ADDR_STRLEN];
	int rc;

	if (psock == PROBE_MAIN) {
		send_one(c, to->sa_family == AF_INET6 ? 1 : 0, to, buf, len, ttl);
		return;
	}
	if ((rc = probe_socks_send(&c->psocks, psock, to, buf, len, ttl)) < 0)
		log_debug("probe: send to %s: %s", addr_str(to, a, sizeof(a)),
		          strerror(-rc));
}

/* The TURN client's messages go to the relay, from the socket of its
 * family. */
static void turn_send(void *ctx, const uint8_t *buf, size_t len)
{
	struct client *c = ctx;

	send_one(c, c->relay_sock, (const struct sockaddr *)&c->relay_addr,
	         buf, len, 0);
}

static void rdvc_send(void *ctx, const struct sockaddr *to,
                      const uint8_t *buf, size_t len)
{
	struct client *c = ctx;

	send_one(c, c->server_sock, to, buf, len, 0);
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
		say("Step 1: STUN over %s: the server sees me at %s (a TCP mapping, so no UDP candidate from it), asked %s in %llu ms",
		    via_str(c->via), a, server_name(c),
		    (unsigned long long)step_ms(c));
	else if (is_loopback(m))
		say("Step 1: STUN: the server sees me at %s (no NAT: the server is on loopback, so this is a local test), asked %s in %llu ms",
		    a, server_name(c), (unsigned long long)step_ms(c));
	else
		say("Step 1: STUN: my public address is %s (%s), asked %s in %llu ms",
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
	say("Port mapping: the gateway maps my UDP port %u to %s (%s, in %llu ms)%s",
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
	say("Step 2: registering as %s, looking for %s; candidates: %s",
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
static void permit_peer(struct client *c, const struct punch_peer *peer)
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

/* A PEER-INFO of the session we have: new candidates (trickled: the
 * peer's relayed address), or a repeat. */
/* ---- birthday probing (probe.h) ----------------------------------------- */

/* The probe socket i's datagram: the kept one's is the agent's socket
 * AGENT_SOCK_PROBE like any other; before a hit, only probing's. */
static void on_datagram(void *ctx, int sock, enum udp_kind kind,
                        const struct sockaddr *from, const uint8_t *data,
                        size_t len);

static void on_probe_datagram(void *ctx, int i, const struct sockaddr *from,
                              const uint8_t *buf, size_t len)
{
	struct client *c = ctx;
	enum udp_kind kind = udp_classify(buf, len);
	struct stun_msg m;

	if (i == c->psocks.kept) {
		on_datagram(c, AGENT_SOCK_PROBE, kind, from, buf, len);
	} else if (kind == UDP_KIND_STUN && stun_decode(&m, buf, len) == STUN_OK) {
		probe_on_stun(&c->probe, i, from, buf, len, &m, now_ms(c));
	}
	schedule(c);
}

/* Probing ended: a hit on socket psock (keep it, close the rest), or none
 * (close them all). */
static void on_probe_end(void *ctx, int psock)
{
	struct client *c = ctx;
	const struct probe *p = &c->probe;
	char a[ADDR_STRLEN];

	if (psock >= 0)
		probe_socks_keep(&c->psocks, psock);
	else if (psock < PROBE_MAIN)
		probe_socks_close(&c->psocks);
	if (p->state == PROBE_WON)
		say("Probing: %s answered after %llu ms, %llu packets sent",
		    addr_str((const struct sockaddr *)&p->won_addr, a, sizeof(a)),
		    (unsigned long long)(p->won_ms - p->start_ms),
		    (unsigned long long)p->packets);
	else if (p->state == PROBE_EXHAUSTED && p->role == PROBE_ROLE_HARD)
		say("Probing: no answer after %llu packets (%llu of them refused by the kernel); next try in %d s at the earliest",
		    (unsigned long long)p->packets,
		    (unsigned long long)c->psocks.send_failed,
		    PROBE_HOLDOFF_MS / 1000);
	else if (p->state == PROBE_EXHAUSTED)
		say("Probing: no answer after %llu packets; next try in %d s at the earliest",
		    (unsigned long long)p->packets, PROBE_HOLDOFF_MS / 1000);
}

/* Start probing if our NAT and the peer's call for it (probe_role_for),
 * and -no-probe, the path policy and the holdoff allow it. */
static void maybe_probe(struct client *c)
{
	const struct punch_peer *peer = agent_peer(&c->agent);
	const struct sockaddr *target = (const struct sockaddr *)&peer->observed;
	enum probe_role role;
	char a[ADDR_STRLEN];
	int n = 0;

	if (c->cfg->no_probe || c->cfg->path_policy == AGENT_PATH_RELAY_ONLY ||
	    !agent_has_remote(&c->agent) || !peer->has_observed ||
	    target->sa_family != AF_INET || !udp_is_open(&c->udp, 0) ||
	    !probe_may_start(&c->probe, now_ms(c)))
		return;
	role = probe_role_for(&c->rc.self.nat, &peer->nat);
	if (role == PROBE_ROLE_NONE)
		return;
	if (role == PROBE_ROLE_HARD) {
		probe_socks_close(&c->psocks); /* a run before, 5 min ago */
		if (c->psocks.closing)
			return; /* not yet closed: next time */
		probe_socks_free(&c->psocks);
		if ((n = probe_socks_open(&c->psocks, &c->loop,
		                          PROBE_SOCKETS_DEFAULT)) <= 0) {
			log_debug("probe: no sockets: %s", uv_strerror(n));
			return;
		}
	}
	if (probe_start(&c->probe, role, target, (unsigned)n, now_ms(c)))
		return;
	addr_str(target, a, sizeof(a));
	if (role == PROBE_ROLE_HARD)
		say("Probing: my NAT maps per destination, %s's does not: %d sockets toward %s",
		    peer->id, n, a);
	else
		say("Probing: %s's NAT maps per destination, mine does not: up to %u probes to its address's ports",
		    peer->id, c->probe.max_probes);
}

static void on_peer_update(struct client *c, const struct punch_peer *peer)
{
	size_t before = agent_peer(&c->agent)->n_cand, n;
	char list[1024];

	n = agent_add_candidates(&c->agent, peer, now_ms(c));
	if (!n)
		return;
	permit_peer(c, peer);
	cand_list(peer->cand + (before < peer->n_cand ? before : 0),
	          peer->n_cand - (before < peer->n_cand ? before : 0), list,
	          sizeof(list));
	say("Step 4: peer info update: %s now also has %s (after %llu ms)",
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
		say("%s restarted; punching again", peer->id);
	if (!c->said_ready) {
		/* PEER-INFO overtook the answer to our REGISTER */
		c->said_ready = 1;
		say("Step 3: ready: registered in %llu ms; the peer is here",
		    (unsigned long long)step_ms(c));
	}
	c->t_peer_info = now_ms(c);
	say("Step 4: peer info: %s has %s; the server sees it at %s (after %llu ms)",
	    peer->id, list, seen, (unsigned long long)step_ms(c));
	agent_set_remote(&c->agent, peer, now_ms(c));
	permit_peer(c, peer);
	say("Step 5: punching: checking %zu candidate pairs (%s)",
	    agent_pair_count(&c->agent),
	    agent_is_controlling(&c->agent) ? "controlling" : "controlled");
	c->probe_at = now_ms(c) + PROBE_CHECKS_FIRST_MS;
}

/* The server's key: remembered on first use, or a change that stops us. */
static void on_server_key(struct client *c, int event, const uint8_t *fp)
{
	char path[IDENTITY_PATH_MAX + 32], seen[IDENTITY_FP_STRLEN];
	char want[IDENTITY_FP_STRLEN];

	identity_fp_str(fp, seen);
	known_servers_path(c->id.dir, path, sizeof(path));
	if (event == RDVC_EV_SERVER_KEY) {
		if (known_servers_add(c->id.dir, server_name(c), fp))
			log_warn("cannot write %s", path);
		say("Server key %s is new; remembered for %s in %s", seen,
		    server_name(c), path);
		return;
	}
	identity_fp_str(c->rc.server_fp[0], want);
	if (c->cfg->has_server_key)
		log_error("the server %s signs with key %s, not the pinned -server-key %s%s: refusing to go on",
		          server_name(c), seen, want,
		          c->cfg->has_server_key > 1 ? " nor another" : "");
	else
		log_error("the server %s now signs with key %s, but %s line %d says %s: someone may be in the middle, or the server has a new key; if that is expected, edit or delete line %d",
		          server_name(c), seen, path, c->server_key_line, want,
		          c->server_key_line);
	finish(c, 1);
}

/* ---- the relay -------------------------------------------------------- */

static void on_turn_event(void *ctx, int event, const void *arg);
static void on_turn_data(void *ctx, const struct sockaddr *peer,
                         const uint8_t *buf, size_t len);

/* Does a relay (the server's, or any -turn's) need UDP socket s? */
static int turn_needs_sock(const struct client *c, int s)
{
	if (!c->cfg->n_turn)
		return s == c->server_sock;
	for (int i = 0; i < c->cfg->n_turn; i++)
		if ((c->turn_addr[i].ss_family == AF_INET6) == s)
			return 1;
	return 0;
}

/* -turn's relay number i is the one to use. */
static void relay_use(struct client *c, int i)
{
	c->turn_at = i;
	c->relay_addr = c->turn_addr[i];
	c->relay_name = c->cfg->turn[i].host;
	c->relay_sock = c->relay_addr.ss_family == AF_INET6;
}

/* Registered: ask for a relayed address (once), unless -direct-only:
 * from -turn's server with its credentials, else from the punch server
 * with the ones its REGISTER answer carried. */
static void relay_start(struct client *c)
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
			finish(c, 1);
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
		permit_peer(c, agent_peer(&c->agent));
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
	say("Relay: %s relays for me at %s (allocated in %llu ms); offered to the peer as a last resort",
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
			 * next one starts in schedule(). */
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
			finish(c, 1);
		} else {
			log_warn("relay: %s: %s; going on with direct paths only",
			         c->relay_name, (const char *)arg);
		}
		break;
	}
}

static void on_stun(struct client *c, int sock, const struct sockaddr *from,
                    const uint8_t *data, size_t len);
static void on_quic(struct client *c, int sock, const struct sockaddr *from,
                    const uint8_t *data, size_t len);

/* A datagram from the peer, unwrapped by the relay client: it came to our
 * relayed address.  Kept for relay_dispatch(). */
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
static void relay_dispatch(struct client *c)
{
	const struct sockaddr *from = (const struct sockaddr *)&c->relayed_in.from;
	size_t len = c->relayed_in.len;

	if (!len)
		return;
	c->relayed_in.len = 0;
	if (udp_classify(c->relayed_in.buf, len) == UDP_KIND_STUN)
		on_stun(c, AGENT_SOCK_RELAY, from, c->relayed_in.buf, len);
	else
		on_quic(c, AGENT_SOCK_RELAY, from, c->relayed_in.buf, len);
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
		relay_start(c);
		/* Refreshes come every few seconds; say "ready" once. */
		if (!c->said_ready) {
			c->said_ready = 1;
			say("Step 3: ready: registered in %llu ms; %s",
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
		finish(c, 1);
		break;
	case RDVC_EV_SERVER_KEY:
	case RDVC_EV_SERVER_KEY_CHANGED:
		on_server_key(c, event, arg);
		break;
	case RDVC_EV_RELEASED:
		break;
	case RDVC_EV_SERVER_LOST:
		failover_start(c);
		break;
	case RDVC_EV_UNREACHABLE:
		log_error("cannot reach rendezvous server %s (no answer after %d tries over %s%s%s); check -server",
		          addr_str((struct sockaddr *)&c->server, a, sizeof(a)),
		          RTX_RC, via_str(c->via),
		          c->conn_failed[0] ? "; TCP/TLS: " : "", c->conn_failed);
		finish(c, 1);
		break;
	}
}

/* ---- the link ------------------------------------------------------- */

/* Where the link's packets to `to` go: to the chosen pair's remote when
 * `to` is the peer as the link knows it (see link_remote). */
static const struct sockaddr *link_dest(struct client *c,
                                        const struct agent_pair *p,
                                        const struct sockaddr *to)
{
	if (addr_equal(to, (const struct sockaddr *)&c->link_remote))
		return (const struct sockaddr *)&agent_pair_remote(&c->agent, p)->addr;
	return to;
}

static void link_send(void *ctx, const struct sockaddr *to, const uint8_t *buf,
                      size_t len)
{
	struct client *c = ctx;
	const struct agent_pair *p = agent_selected(&c->agent);

	if (p)
		send_one(c, p->sock, link_dest(c, p, to), buf, len, 0);
}

static void link_send_segments(void *ctx, const struct sockaddr *to,
                               const uint8_t *buf, size_t len, size_t seg)
{
	struct client *c = ctx;
	const struct agent_pair *p = agent_selected(&c->agent);
	char a[ADDR_STRLEN];
	int rc;

	if (!p)
		return;
	to = link_dest(c, p, to);
	if (p->sock == AGENT_SOCK_RELAY || p->sock == AGENT_SOCK_PROBE) {
		/* one at a time: wrapped for the relay, or on the probe
		 * socket (a plain libuv one) */
		for (size_t off = 0; off < len; off += seg)
			send_one(c, p->sock, to, buf + off,
			         len - off < seg ? len - off : seg, 0);
		return;
	}
	rc = udp_send_segments(&c->udp, p->sock, to, buf, len, seg);
	if (rc < 0)
		log_debug("send %zu bytes to %s: %s", len,
		          addr_str(to, a, sizeof(a)), strerror(-rc));
}

static void link_finish(void *ctx, int code)
{
	finish(ctx, code);
}

static void link_kick(void *ctx)
{
	struct client *c = ctx;

	uv_timer_start(&c->timer, on_timer, 0, 0);
}

static void replay_early(void *ctx, int sock, enum udp_kind kind,
                         const struct sockaddr *from, const uint8_t *buf,
                         size_t len)
{
	struct client *c = ctx;

	(void)sock;
	(void)kind;
	link_on_datagram(c->link, from, buf, len, uv_hrtime());
}

/* The pair is chosen: QUIC on it, the controlling peer as the client. */
static void start_link(struct client *c, const struct sockaddr *local,
                       const struct sockaddr *remote)
{
	struct link_env env = {
		.loop = &c->loop,
		.id = &c->id,
		.peer_id = c->cfg->peer,
		.pinned = c->cfg->has_peer_key ? c->cfg->peer_key : NULL,
		.relayed = agent_peer(&c->agent)->has_key_fp ?
		                   agent_peer(&c->agent)->key_fp :
		                   NULL,
		.code = c->cfg->code[0] ? c->cfg->code : NULL,
		.is_client = agent_is_controlling(&c->agent),
		.send = link_send,
		.send_segments = link_send_segments,
		.finish = link_finish,
		.kick = link_kick,
		.ctx = c,
	};
	char err[256];

	memcpy(&env.local, local, addr_len(local));
	memcpy(&env.remote, remote, addr_len(remote));
	memcpy(&c->link_remote, remote, addr_len(remote));
	c->link = link_new(&env, c->cfg->app, &c->cfg->args, uv_hrtime(), err,
	                   sizeof(err));
	if (!c->link) {
		log_error("%s", err);
		finish(c, 1);
		return;
	}
	udp_early_drain(&c->early, replay_early, c);
}

/* Our address on pair p: the relayed one, or the host address the kernel
 * sends from toward the remote candidate r. */
static void pair_local(struct client *c, const struct agent_pair *p,
                       const struct punch_candidate *r,
                       struct sockaddr_storage *local)
{
	if (p->sock == AGENT_SOCK_RELAY) {
		/* NULL once the allocation is lost (a refresh refused) */
		const struct sockaddr *ra = turn_client_relayed(&c->turn);

		memset(local, 0, sizeof(*local));
		if (ra)
			memcpy(local, ra, addr_len(ra));
		else
			local->ss_family = r->addr.ss_family;
	} else {
		uint16_t port = p->sock == AGENT_SOCK_PROBE ?
		                        probe_socks_port(&c->psocks, c->psocks.kept) :
		                        udp_port(&c->udp, p->sock);

		if (gather_source_for((const struct sockaddr *)&r->addr, port,
		                      local)) {
			memset(local, 0, sizeof(*local));
			local->ss_family = r->addr.ss_family;
			addr_set_port((struct sockaddr *)local, port);
		}
	}
}

/* How the chosen pair goes: the remote candidate's type, or "relay via
 * ADDR" (our relayed address, or the peer's) when a relay carries it. */
static void path_str(struct client *c, const struct agent_pair *p,
                     const struct punch_candidate *r,
                     const struct sockaddr_storage *local, char *out,
                     size_t len)
{
	char a[ADDR_STRLEN];

	if (!agent_pair_is_relayed(&c->agent, p)) {
		snprintf(out, len, "%s", punch_cand_type_str(r->type));
		return;
	}
	addr_str(p->sock == AGENT_SOCK_RELAY ? (const struct sockaddr *)local :
	                                       (const struct sockaddr *)&r->addr,
	         a, sizeof(a));
	snprintf(out, len, "relay via %s", a);
}

/* The agent moved the session to another pair: a direct one that opened
 * (the upgrade), or the relayed one again (the direct path died). */
static void on_agent_switch(void *ctx, int old)
{
	struct client *c = ctx;
	const struct agent_pair *p = agent_selected(&c->agent);
	const struct punch_candidate *r = agent_pair_remote(&c->agent, p);
	char la[ADDR_STRLEN], ra[ADDR_STRLEN], path[ADDR_STRLEN + 16];
	struct sockaddr_storage local;
	uint64_t t = now_ms(c);

	(void)old;
	pair_local(c, p, r, &local);
	path_str(c, p, r, &local, path, sizeof(path));
	addr_str((struct sockaddr *)&local, la, sizeof(la));
	addr_str((const struct sockaddr *)&r->addr, ra, sizeof(ra));
	if (agent_pair_is_relayed(&c->agent, p)) {
		c->t_on_relay = t;
		say("Path back on the relay: %s -> %s (%s): the direct path stopped answering",
		    la, ra, path);
	} else {
		say("Path upgraded: %s -> %s (direct, %s), after %llu ms on the relay, %llu ms after the peer info",
		    la, ra, path, (unsigned long long)(t - c->t_on_relay),
		    (unsigned long long)(t - c->t_peer_info));
	}
}

static void on_agent_state(void *ctx, int old, int state)
{
	struct client *c = ctx;
	const struct agent_pair *p;
	const struct punch_candidate *r;
	struct sockaddr_storage local;
	char la[ADDR_STRLEN], ra[ADDR_STRLEN], path[ADDR_STRLEN + 16];
	uint64_t t = now_ms(c);

	(void)old;
	switch (state) {
	case AGENT_STATE_CONNECTED:
		p = agent_selected(&c->agent);
		r = agent_pair_remote(&c->agent, p);
		pair_local(c, p, r, &local);
		if (agent_pair_is_relayed(&c->agent, p))
			c->t_on_relay = t;
		path_str(c, p, r, &local, path, sizeof(path));
		say("Connection established: %s -> %s (%s), punch took %llu ms, %llu ms since start",
		    addr_str((struct sockaddr *)&local, la, sizeof(la)),
		    addr_str((const struct sockaddr *)&r->addr, ra, sizeof(ra)),
		    path, (unsigned long long)(t - c->t_peer_info),
		    (unsigned long long)(t - c->t_start));
		if (!c->link)
			start_link(c, (struct sockaddr *)&local,
			           (const struct sockaddr *)&r->addr);
		break;
	case AGENT_STATE_FAILED:
		/* "no direct path" unless a relayed pair was checked too */
		log_error("no %spath to %s: none of %zu candidate pairs answered within %d s%s",
		          c->relay == RELAY_READY ? "" : "direct ", c->cfg->peer,
		          agent_pair_count(&c->agent),
		          AGENT_CHECK_TIMEOUT_MS / 1000,
		          c->relay == RELAY_READY ?
		                  " (the relay's included)" :
		          c->cfg->path_policy == AGENT_PATH_DIRECT_ONLY ?
		                  " (-direct-only: the relay was not tried)" :
		          c->relay != RELAY_NONE ?
		                  " (the relay could not be used)" :
		                  " (the server offers no relay: it runs without -auth-secret; -turn names another)");
		finish(c, 1);
		break;
	case AGENT_STATE_GONE:
		log_error("%s is gone: no answer for %d s", c->cfg->peer,
		          AGENT_CONSENT_LOST_MS / 1000);
		if (c->link)
			link_close(c->link, APP_ERR_ABORTED, uv_hrtime());
		finish(c, 1);
		break;
	}
}

/* ---- network input ----------------------------------------------------- */

/* QUIC: the link's, or kept until the link exists.  Only the peer's
 * candidates (host, srflx, or learned from its checks) may fill the few
 * early slots, so that datagrams from a third address cannot crowd out the
 * peer's Initial.  The link itself drops what does not come from the
 * chosen pair until the handshake is done (quic.c). */
static void on_quic(struct client *c, int sock, const struct sockaddr *from,
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

static void on_stun(struct client *c, int sock, const struct sockaddr *from,
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
		relay_dispatch(c);
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
static void on_datagram(void *ctx, int sock, enum udp_kind kind,
                        const struct sockaddr *from, const uint8_t *data,
                        size_t len)
{
	struct client *c = ctx;

	switch (kind) {
	case UDP_KIND_STUN:
		on_stun(c, sock, from, data, len);
		break;
	case UDP_KIND_QUIC:
		/* ChannelData looks like QUIC: the relay's address tells */
		if (c->relay != RELAY_NONE &&
		    addr_equal(from, (struct sockaddr *)&c->relay_addr)) {
			turn_client_on_channel(&c->turn, data, len);
			relay_dispatch(c);
		} else
			on_quic(c, sock, from, data, len);
		break;
	case UDP_KIND_TURN_CHANNEL:
		break; /* udp_classify never says so: see above */
	}
}

static void on_batch(void *ctx)
{
	schedule(ctx);
}

/* ---- the server over TCP ---------------------------------------------- */

static void on_conn_message(void *ctx, enum frame_kind kind,
                            const uint8_t *msg, size_t len);
static void on_conn_state(void *ctx, enum sconn_state old,
                          enum sconn_state now, const char *why);

/* The next try: TCP to the server's HOST:PORT, or TLS to -server-tls. */
static void conn_try(struct client *c, int tls, uint64_t t)
{
	if (!(c->conn = server_conn_new(&c->loop, on_conn_message,
	                                on_conn_state, c))) {
		snprintf(c->conn_failed, sizeof(c->conn_failed), "out of memory");
		return;
	}
	if (tls)
		server_conn_open_tls(c->conn, (struct sockaddr *)&c->tls_addr,
		                     c->tls_host, c->cfg->tls_ca, t);
	else
		server_conn_open(c->conn, (struct sockaddr *)&c->server, t);
}

/* A whole message from the server's connection: as a datagram from the
 * server would be (ChannelData: the relay's, as on UDP). */
static void on_conn_message(void *ctx, enum frame_kind kind,
                            const uint8_t *msg, size_t len)
{
	struct client *c = ctx;

	on_datagram(c, c->server_sock,
	            kind == FRAME_CHANNEL ? UDP_KIND_QUIC : udp_classify(msg, len),
	            (const struct sockaddr *)&c->server, msg, len);
	schedule(c);
}

/* The connection lost: fatal unless the link already goes directly (it
 * never needs the server). */
static void conn_lost(struct client *c, const char *why)
{
	const struct agent_pair *p = agent_selected(&c->agent);

	if (c->exit_code >= 0)
		return;
	if (c->link && p && !agent_pair_is_relayed(&c->agent, p)) {
		log_warn("lost the %s connection to the server %s (%s); the link goes on directly",
		         via_str(c->via), server_name(c), why);
		return;
	}
	log_error("lost the %s connection to the server %s: %s", via_str(c->via),
	          server_name(c), why);
	finish(c, 1);
}

/* A try failed: TLS next if there is one, else UDP goes on alone. */
static void conn_failed(struct client *c, const char *why)
{
	int was_tls = c->tried != NULL;

	snprintf(c->conn_failed, sizeof(c->conn_failed), "%s", why);
	if (c->rc.state != RDVC_DISCOVERING)
		return;
	if (!was_tls && c->cfg->server_tls) {
		say("punch: TCP to %s failed (%s); trying TLS to %s",
		    server_name(c), why, c->cfg->server_tls);
		c->tried = c->conn; /* freed at the end: we are in its callback */
		conn_try(c, 1, now_ms(c));
		return;
	}
	say("punch: %s to %s failed (%s); still trying UDP",
	    was_tls ? "TLS" : "TCP", was_tls ? c->cfg->server_tls : server_name(c),
	    why);
}

static void on_conn_state(void *ctx, enum sconn_state old,
                          enum sconn_state now, const char *why)
{
	struct client *c = ctx;

	(void)old;
	if (now == SCONN_OPEN) {
		if (c->rc.state != RDVC_DISCOVERING || c->rc.alt_asked) {
			/* UDP answered after all, while TCP connected (the
			 * mapping test follows a first answer over UDP) */
			server_conn_close(c->conn, "UDP answered");
			return;
		}
		c->via = c->tried ? VIA_TLS : VIA_TCP;
		say("punch: connected to %s over %s; the rendezvous and the relay go over it",
		    c->via == VIA_TLS ? c->cfg->server_tls : server_name(c),
		    via_str(c->via));
		/* No mapping test: UDP is what it would test, and it is
		 * blocked here (PUNCH-NAT stays "unknown"). */
		c->rc.alt_asked = 1;
		rdvc_start(&c->rc, now_ms(c));
		schedule(c);
	} else if (now == SCONN_CLOSED && c->via == VIA_UDP) {
		conn_failed(c, why);
	} else if (now == SCONN_CLOSED) {
		conn_lost(c, why);
	}
}

/* No answer over UDP in UDP_ANSWER_MS: try TCP, while UDP goes on (the
 * first to answer wins).  Returns the next deadline. */
static uint64_t fallback_tick(struct client *c, uint64_t t)
{
	uint64_t due = c->t_start + UDP_ANSWER_MS;

	if (c->conn) /* the try under way (TCP, then TLS), or the connection */
		return server_conn_tick(c->conn, t);
	if (c->via != VIA_UDP || c->rc.state != RDVC_DISCOVERING ||
	    c->conn_failed[0])
		return UINT64_MAX;
	if (t < due)
		return due;
	say("punch: no answer from %s over UDP in %d s; trying TCP",
	    server_name(c), UDP_ANSWER_MS / 1000);
	conn_try(c, 0, t);
	return c->conn ? server_conn_tick(c->conn, t) : UINT64_MAX;
}

/* ---- the server list: the pick, and failover (server_pick.h) ----------- */

static int pin_server(struct client *c, const struct client_config *cfg);

/* Server i is the one in use: the rendezvous's, and the relay's unless
 * -turn names others or an allocation at the old one is kept (a link may
 * be on it: its refreshes and data must keep going there). */
static void server_use(struct client *c, int i)
{
	c->srv_at = i;
	c->server = c->srv_addr[i];
	c->server_sock = c->server.ss_family == AF_INET6;
	if (!c->cfg->n_turn && c->relay == RELAY_NONE) {
		c->relay_addr = c->server;
		c->relay_name = server_name(c);
		c->relay_sock = c->server_sock;
	}
}

static void pick_send(void *ctx, const struct sockaddr *to, const uint8_t *buf,
                      size_t len)
{
	struct client *c = ctx;

	send_one(c, to->sa_family == AF_INET6, to, buf, len, 0);
}

/* The servers a round leaves out: `lost` (unless -1), and those of a
 * family we have no socket for. */
static unsigned pick_skip(const struct client *c, int lost)
{
	unsigned skip = 0;

	for (int i = 0; i < c->cfg->servers.n; i++)
		if (i == lost ||
		    !udp_is_open(&c->udp, c->srv_addr[i].ss_family == AF_INET6))
			skip |= 1u << i;
	return skip;
}

/* The round's RTTs, at -v. */
static void pick_log(const struct client *c)
{
	const struct server_pick *p = &c->pick;
	char line[SERVER_LIST_MAX * (SERVER_NAME_MAX + 24)];
	size_t off = 0;

	if (log_threshold < LOG_DEBUG)
		return;
	line[0] = '\0';
	for (int i = 0; i < p->n && off < sizeof(line); i++) {
		if (!p->asked[i] && !p->answered[i])
			continue;
		if (p->answered[i])
			off += (size_t)snprintf(line + off, sizeof(line) - off,
			                        "%s%s %.2f ms", off ? ", " : "",
			                        c->cfg->servers.name[i],
			                        (double)p->rtt_us[i] / 1000);
		else
			off += (size_t)snprintf(line + off, sizeof(line) - off,
			                        "%s%s no answer", off ? ", " : "",
			                        c->cfg->servers.name[i]);
	}
	log_debug("server pick: %s; picked %s", line,
	          p->chosen >= 0 ? c->cfg->servers.name[p->chosen] : "none");
}

/* The first round's end: the fastest, or the first listed if none
 * answered over UDP (its TCP and TLS tries then follow at once). */
static void pick_first(struct client *c, int i)
{
	if (i >= 0) {
		server_use(c, i);
		say("Server: %s, the fastest of %d to answer (%.2f ms)",
		    server_name(c), c->cfg->servers.n,
		    (double)c->pick.rtt_us[i] / 1000);
	} else {
		server_use(c, 0);
		say("Server: none of %d answered over UDP in %d s; going on with %s, the first listed",
		    c->cfg->servers.n, PICK_TIMEOUT_MS / 1000, server_name(c));
	}
	rdvc_move(&c->rc, (const struct sockaddr *)&c->server);
	if (pin_server(c, c->cfg)) {
		finish(c, 1);
		return;
	}
	rdvc_start(&c->rc, now_ms(c));
}

/* Our relayed candidate came from the lost server: it goes, and the new
 * server's relay is asked for once registered there.  Only while no peer
 * is being punched to: a pair or a link on the old relay keeps it (and
 * dies with it). */
static void relay_drop(struct client *c)
{
	struct punch_peer *self = &c->rc.self;
	size_t k = 0;

	if (c->cfg->n_turn || c->relay == RELAY_NONE ||
	    agent_has_remote(&c->agent))
		return;
	for (size_t i = 0; i < self->n_cand; i++)
		if (self->cand[i].type != CAND_RELAY)
			self->cand[k++] = self->cand[i];
	self->n_cand = k;
	c->relay = RELAY_NONE;
}

/* A failover round's end: register at the server it picked, or stay. */
static void pick_failover(struct client *c, int i)
{
	const char *lost = server_name(c);

	if (i < 0) {
		say("Server %s missed %d refreshes and no other server answered; still trying it",
		    lost, c->rc.missed);
		return;
	}
	relay_drop(c); /* first: server_use() moves only a dropped relay */
	server_use(c, i);
	say("Server %s missed %d refreshes; registering at %s instead (it answered in %.2f ms)",
	    lost, RDVC_MISSED_MAX, server_name(c),
	    (double)c->pick.rtt_us[i] / 1000);
	rdvc_move(&c->rc, (const struct sockaddr *)&c->server);
	if (pin_server(c, c->cfg)) {
		finish(c, 1);
		return;
	}
	rdvc_register(&c->rc, now_ms(c));
}

/* Three refreshes missed (rendezvous_client.h): ask the others which is
 * fastest.  Over a TCP or TLS connection there is none to ask (UDP is
 * what that network drops), and a lost connection says so itself. */
static void failover_start(struct client *c)
{
	if (c->cfg->servers.n < 2 || c->via != VIA_UDP ||
	    c->pick.state != PICK_IDLE)
		return;
	c->failover = c->srv_at;
	log_debug("server %s missed %d refreshes; asking the others", server_name(c),
	          c->rc.missed);
	pick_start(&c->pick, pick_skip(c, c->srv_at), now_us());
}

/* The round's deadlines, and its end.  Returns the next deadline (ms). */
static uint64_t pick_schedule(struct client *c)
{
	uint64_t us = pick_tick(&c->pick, now_us());
	int i;

	if (c->pick.state != PICK_DONE)
		return us == UINT64_MAX ? us : (us + 999) / 1000;
	i = pick_result(&c->pick);
	pick_log(c);
	pick_clear(&c->pick);
	if (c->failover < 0)
		pick_first(c, i);
	else
		pick_failover(c, i);
	c->failover = -1;
	return now_ms(c);
}

/* ---- timers ------------------------------------------------------------ */

static void on_timer(uv_timer_t *t)
{
	schedule(t->data);
}

/* Probing's deadlines: it stops once a direct pair is chosen, and while
 * the relay carries the session it may start again after its holdoff. */
static uint64_t schedule_probe(struct client *c, uint64_t t)
{
	const struct agent_pair *p = agent_selected(&c->agent);

	if (p && !agent_pair_is_relayed(&c->agent, p)) {
		c->probe_at = 0;
		probe_stop(&c->probe);
		return UINT64_MAX;
	}
	if (c->probe_at && t >= c->probe_at) {
		c->probe_at = 0;
		maybe_probe(c);
	}
	if (p && c->probe.state == PROBE_EXHAUSTED) {
		if (!probe_may_start(&c->probe, t))
			return c->probe.last_start_ms + PROBE_HOLDOFF_MS;
		maybe_probe(c);
	}
	t = probe_tick(&c->probe, t);
	return c->probe_at && c->probe_at < t ? c->probe_at : t;
}

/* The one bookkeeping pass: run every module's deadlines, then sleep until
 * the earliest next one. */
static void schedule(struct client *c)
{
	uint64_t t = now_ms(c), next = UINT64_MAX, n;

	if (c->exit_code >= 0)
		return;
	if (c->relay_next) {
		c->relay_next = 0;
		relay_use(c, c->turn_at + 1);
		c->relay = RELAY_NONE;
		relay_start(c);
	}
	n = rdvc_tick(&c->rc, t);
	next = n < next ? n : next;
	/* after the rendezvous, which may start a round (failover) */
	n = pick_schedule(c);
	next = n < next ? n : next;
	n = fallback_tick(c, t);
	next = n < next ? n : next;
	n = agent_tick(&c->agent, t);
	next = n < next ? n : next;
	n = schedule_probe(c, t);
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
		finish(c, 1);
		return;
	}
	if (next == UINT64_MAX)
		next = t + 1000;
	/* The loop's clock is the one the timer counts from; a stale one
	 * (a long batch) would fire it early, before the deadline. */
	uv_update_time(&c->loop);
	uv_timer_start(&c->timer, on_timer, next > t ? next - t : 0, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct client *c = h->data;

	(void)signum;
	if (c->link && !c->interrupted) {
		c->interrupted = 1;
		link_interrupt(c->link, uv_hrtime());
		schedule(c);
	} else {
		finish(c, 130);
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

/* -server-tls HOST:PORT: its address, and HOST for the certificate.  0,
 * or -1 having said why. */
static int tls_target(struct client *c, const char *hostport)
{
	const char *colon = strrchr(hostport, ':'), *err;
	size_t n = colon ? (size_t)(colon - hostport) : 0;

	if (addr_resolve(&c->tls_addr, hostport, AF_UNSPEC, &err)) {
		log_error("bad -server-tls '%s': %s", hostport, err);
		return -1;
	}
	if (n >= 2 && hostport[0] == '[' && hostport[n - 1] == ']') {
		hostport++;
		n -= 2;
	}
	if (!n || n >= sizeof(c->tls_host)) {
		log_error("bad -server-tls '%s': expected HOST:PORT", hostport);
		return -1;
	}
	memcpy(c->tls_host, hostport, n);
	c->tls_host[n] = '\0';
	return 0;
}

/* The server in use: -server-key (any of them), else its line in
 * known_servers, else trust on first use. */
static int pin_server(struct client *c, const struct client_config *cfg)
{
	char path[IDENTITY_PATH_MAX + 32];
	uint8_t fp[IDENTITY_FP_LEN];
	int line = 0;

	if (cfg->has_server_key) {
		for (int i = 0; i < cfg->has_server_key; i++)
			rdvc_pin_server(&c->rc, cfg->server_key[i]);
		return 0;
	}
	known_servers_path(c->id.dir, path, sizeof(path));
	c->server_key_line = 0;
	switch (known_servers_check(c->id.dir, server_name(c), fp, &line)) {
	case KNOWN_SERVER_FOUND:
		c->server_key_line = line;
		rdvc_pin_server(&c->rc, fp);
		return 0;
	case KNOWN_SERVER_NONE:
		return 0;
	case KNOWN_SERVER_BAD:
		log_error("%s line %d is unreadable; fix or delete it", path,
		          line);
		return -1;
	default:
		log_error("cannot read %s", path);
		return -1;
	}
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
	server_use(c, 0);
	pick_init(&c->pick, c->srv_addr, cfg->servers.n, pick_send, c);
	c->failover = -1;
	for (int i = 0; i < cfg->n_turn; i++)
		if (addr_resolve(&c->turn_addr[i], cfg->turn[i].host, AF_UNSPEC,
		                 &err)) {
			log_error("bad -turn server '%s': %s", cfg->turn[i].host,
			          err);
			return 2;
		}
	if (cfg->n_turn)
		relay_use(c, 0);
	if (cfg->server_tls && tls_target(c, cfg->server_tls))
		return 2;
	for (int s = 0; s < UDP_SOCKETS; s++) {
		rc = udp_open(&c->udp, s);
		if (rc && (s == c->server_sock || turn_needs_sock(c, s))) {
			log_error("cannot open a UDP socket: %s", strerror(-rc));
			return 1;
		}
	}
	if (identity_load(&c->id, err_buf, sizeof(err_buf))) {
		log_error("%s", err_buf);
		return 1;
	}
	if (c->id.created)
		say("Created a new identity key in %s", c->id.dir);
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
	agent_set_on_state(&c->agent, on_agent_state);
	agent_set_on_switch(&c->agent, on_agent_switch);
	agent_set_path_policy(&c->agent, cfg->path_policy);
	probe_init(&c->probe, &c->agent, probe_send, on_probe_end, c);
	probe_socks_init(&c->psocks, on_probe_datagram, c);
	/* Local candidates are checked only when everything is on this
	 * machine (tests, the lab's one-host runs). */
	agent_set_allow_local(&c->agent,
	                      addr_classify((struct sockaddr *)&c->server) ==
	                              ADDR_CLASS_LOOPBACK);
	rdvc_init(&c->rc, (struct sockaddr *)&c->server, &self, rdvc_send,
	          on_rdvc_event, c);
	rdvc_set_key(&c->rc, &c->sign);
	if (pin_server(c, cfg))
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
	udp_init(&c->udp, &c->loop, on_datagram, on_batch, c);
	c->t_start = c->t_step = now_ms(c);
	rc = setup(c, cfg);
	if (rc == 0) {
		/* One server: ask it.  Several: the pick's round first. */
		if (cfg->servers.n > 1)
			pick_start(&c->pick, pick_skip(c, -1), now_us());
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
		schedule(c);
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
