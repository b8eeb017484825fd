/*
 * The client's way to the rendezvous server: one TCP or TLS connection
 * when UDP gets no answer (server_conn.h), the pick among -server's list
 * and failover to another (server_pick.h), and the server's key, pinned
 * or remembered on first use (known_servers.h).
 */
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "agent.h"
#include "client_internal.h"
#include "identity.h"
#include "known_servers.h"
#include "log.h"
#include "rendezvous_client.h"
#include "server_conn.h"
#include "server_pick.h"
#include "udp.h"

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

	client_on_datagram(c, c->server_sock,
	                   kind == FRAME_CHANNEL ? UDP_KIND_QUIC : udp_classify(msg, len),
	                   (const struct sockaddr *)&c->server, msg, len);
	client_schedule(c);
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
	client_finish(c, 1);
}

/* A try failed: TLS next if there is one, else UDP goes on alone. */
static void conn_failed(struct client *c, const char *why)
{
	int was_tls = c->tried != NULL;

	snprintf(c->conn_failed, sizeof(c->conn_failed), "%s", why);
	if (c->rc.state != RDVC_DISCOVERING)
		return;
	if (!was_tls && c->cfg->server_tls) {
		client_say("punch: TCP to %s failed (%s); trying TLS to %s",
		           server_name(c), why, c->cfg->server_tls);
		c->tried = c->conn; /* freed at the end: we are in its callback */
		conn_try(c, 1, now_ms(c));
		return;
	}
	client_say("punch: %s to %s failed (%s); still trying UDP",
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
		client_say("punch: connected to %s over %s; the rendezvous and the relay go over it",
		           c->via == VIA_TLS ? c->cfg->server_tls : server_name(c),
		           via_str(c->via));
		/* No mapping test: UDP is what it would test, and it is
		 * blocked here (PUNCH-NAT stays "unknown"). */
		c->rc.alt_asked = 1;
		rdvc_start(&c->rc, now_ms(c));
		client_schedule(c);
	} else if (now == SCONN_CLOSED && c->via == VIA_UDP) {
		conn_failed(c, why);
	} else if (now == SCONN_CLOSED) {
		conn_lost(c, why);
	}
}

/* No answer over UDP in UDP_ANSWER_MS: try TCP, while UDP goes on (the
 * first to answer wins).  Returns the next deadline. */
uint64_t client_fallback_tick(struct client *c, uint64_t t)
{
	uint64_t due = c->t_start + UDP_ANSWER_MS;

	if (c->conn) /* the try under way (TCP, then TLS), or the connection */
		return server_conn_tick(c->conn, t);
	if (c->via != VIA_UDP || c->rc.state != RDVC_DISCOVERING ||
	    c->conn_failed[0])
		return UINT64_MAX;
	if (t < due)
		return due;
	client_say("punch: no answer from %s over UDP in %d s; trying TCP",
	           server_name(c), UDP_ANSWER_MS / 1000);
	conn_try(c, 0, t);
	return c->conn ? server_conn_tick(c->conn, t) : UINT64_MAX;
}

/* ---- the server list: the pick, and failover (server_pick.h) ----------- */

/* Server i is the one in use: the rendezvous's, and the relay's unless
 * -turn names others or an allocation at the old one is kept (a link may
 * be on it: its refreshes and data must keep going there). */
void client_server_use(struct client *c, int i)
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

void client_pick_send(void *ctx, const struct sockaddr *to, const uint8_t *buf,
                      size_t len)
{
	struct client *c = ctx;

	client_send_one(c, to->sa_family == AF_INET6, to, buf, len, 0);
}

/* The servers a round leaves out: `lost` (unless -1), and those of a
 * family we have no socket for. */
unsigned client_pick_skip(const struct client *c, int lost)
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
		client_server_use(c, i);
		client_say("Server: %s, the fastest of %d to answer (%.2f ms)",
		           server_name(c), c->cfg->servers.n,
		           (double)c->pick.rtt_us[i] / 1000);
	} else {
		client_server_use(c, 0);
		client_say("Server: none of %d answered over UDP in %d s; going on with %s, the first listed",
		           c->cfg->servers.n, PICK_TIMEOUT_MS / 1000, server_name(c));
	}
	rdvc_move(&c->rc, (const struct sockaddr *)&c->server);
	if (client_pin_server(c, c->cfg)) {
		client_finish(c, 1);
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
		client_say("Server %s missed %d refreshes and no other server answered; still trying it",
		           lost, c->rc.missed);
		return;
	}
	relay_drop(c); /* first: client_server_use() moves only a dropped relay */
	client_server_use(c, i);
	client_say("Server %s missed %d refreshes; registering at %s instead (it answered in %.2f ms)",
	           lost, RDVC_MISSED_MAX, server_name(c),
	           (double)c->pick.rtt_us[i] / 1000);
	rdvc_move(&c->rc, (const struct sockaddr *)&c->server);
	if (client_pin_server(c, c->cfg)) {
		client_finish(c, 1);
		return;
	}
	rdvc_register(&c->rc, now_ms(c));
}

/* Three refreshes missed (rendezvous_client.h): ask the others which is
 * fastest.  Over a TCP or TLS connection there is none to ask (UDP is
 * what that network drops), and a lost connection says so itself. */
void client_failover_start(struct client *c)
{
	if (c->cfg->servers.n < 2 || c->via != VIA_UDP ||
	    c->pick.state != PICK_IDLE)
		return;
	c->failover = c->srv_at;
	log_debug("server %s missed %d refreshes; asking the others", server_name(c),
	          c->rc.missed);
	pick_start(&c->pick, client_pick_skip(c, c->srv_at), now_us());
}

/* The round's deadlines, and its end.  Returns the next deadline (ms). */
uint64_t client_pick_schedule(struct client *c)
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

/* ---- -server-tls, and the server's key (known_servers.h) ------------- */

/* -server-tls HOST:PORT: its address, and HOST for the certificate.  0,
 * or -1 having said why. */
int client_tls_target(struct client *c, const char *hostport)
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
int client_pin_server(struct client *c, const struct client_config *cfg)
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

/* The server's key: remembered on first use, or a change that stops us. */
void client_on_server_key(struct client *c, int event, const uint8_t *fp)
{
	char path[IDENTITY_PATH_MAX + 32], seen[IDENTITY_FP_STRLEN];
	char want[IDENTITY_FP_STRLEN];

	identity_fp_str(fp, seen);
	known_servers_path(c->id.dir, path, sizeof(path));
	if (event == RDVC_EV_SERVER_KEY) {
		if (known_servers_add(c->id.dir, server_name(c), fp))
			log_warn("cannot write %s", path);
		client_say("Server key %s is new; remembered for %s in %s", seen,
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
	client_finish(c, 1);
}
