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
#include "rendezvous_client.h"
#include "stun.h"

enum {
	RECV_BUF_BYTES = 65536,
	EARLY_QUIC_MAX = 8,    /* QUIC packets that beat our own nomination */
	PEER_SESSIONS_MAX = 8, /* the peer's past sessions, never taken back */
};

struct client {
	const struct client_config *cfg;
	uv_loop_t loop;
	uv_udp_t udp[AGENT_SOCKETS];
	int have_udp[AGENT_SOCKETS];
	uint16_t port[AGENT_SOCKETS];
	uv_timer_t timer;
	uv_signal_t sigint, sigterm;

	struct sockaddr_storage server;
	int server_sock;
	struct rdv_client rc;
	struct agent agent;
	struct identity id;
	struct sign_key sign;  /* the identity key, for signing requests */
	int server_key_line;   /* known_servers line of the pinned key, or 0 */
	/* The peer's sessions we have acted on: a PEER-INFO carrying one of
	 * them again is old news (or a replay), never a restart. */
	uint64_t peer_sessions[PEER_SESSIONS_MAX];
	unsigned n_peer_sessions;
	uint64_t peer_info_ignored;
	struct link *link;
	/* QUIC packets that arrive before we have chosen the pair: replayed
	 * once the link exists. */
	struct {
		uint8_t data[1500];
		size_t len;
		struct sockaddr_storage from;
	} early[EARLY_QUIC_MAX];
	int n_early;

	uint64_t t_start, t_step, t_peer_info;
	int exit_code;
	int said_ready;
	int interrupted;
	uint64_t malformed;
	uint8_t rbuf[RECV_BUF_BYTES];
};

static uint64_t now_ms(struct client *c)
{
	(void)c;
	return uv_hrtime() / 1000000;
}

static void schedule(struct client *c);
static void on_timer(uv_timer_t *t);

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
		                        addr_str((const struct sockaddr *)
		                                 &cand[i].addr, a, sizeof(a)));
}

static void finish(struct client *c, int code)
{
	if (c->exit_code < 0)
		c->exit_code = code;
	uv_stop(&c->loop);
}

/* ---- sending ----------------------------------------------------------- */

static void udp_send(struct client *c, int sock, const struct sockaddr *to,
                     const uint8_t *buf, size_t len, int ttl)
{
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
	char a[ADDR_STRLEN];
	int rc;

	if (sock < 0 || sock >= AGENT_SOCKETS || !c->have_udp[sock])
		return;
	if (ttl)
		uv_udp_set_ttl(&c->udp[sock], ttl);
	rc = uv_udp_try_send(&c->udp[sock], &b, 1, to);
	if (ttl)
		uv_udp_set_ttl(&c->udp[sock], 64);
	if (rc < 0)
		log_debug("send to %s: %s", addr_str(to, a, sizeof(a)),
		          uv_strerror(rc));
}

static void agent_send(void *ctx, int sock, const struct sockaddr *to,
                       const uint8_t *buf, size_t len, int ttl)
{
	udp_send(ctx, sock, to, buf, len, ttl);
}

static void rdvc_send(void *ctx, const struct sockaddr *to,
                      const uint8_t *buf, size_t len)
{
	struct client *c = ctx;

	udp_send(c, c->server_sock, to, buf, len, 0);
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
	if (is_loopback(m))
		say("Step 1: STUN: the server sees me at %s (no NAT: the server is on loopback, so this is a local test), asked %s in %llu ms",
		    a, c->cfg->server, (unsigned long long)step_ms(c));
	else
		say("Step 1: STUN: my public address is %s (%s), asked %s in %llu ms",
		    a, natted ? "behind a NAT" :
		    "no NAT: it is this machine's own address",
		    c->cfg->server, (unsigned long long)step_ms(c));
}

static void publish_candidates(struct client *c)
{
	struct punch_peer *self = &c->rc.self;
	char list[1024];
	int natted = 1;

	self->n_cand = 0;
	for (int s = 0; s < AGENT_SOCKETS; s++) {
		size_t n;

		if (!c->have_udp[s])
			continue;
		n = gather_host(s ? AF_INET6 : AF_INET, c->port[s],
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
	c->agent.natted = natted;
	if (natted) {
		struct punch_candidate *sr = &self->cand[self->n_cand++];

		sr->type = CAND_SRFLX;
		sr->priority = punch_cand_priority(CAND_SRFLX, 65535);
		sr->addr = c->rc.srflx;
	}
	if (!c->agent.have_sock[c->server_sock]) {
		/* No usable host address of the server's family (say, only
		 * loopback): the srflx path still needs the socket. */
		agent_set_socket(&c->agent, c->server_sock,
		                 punch_cand_priority(CAND_HOST, 0));
	}
	cand_list(self->cand, self->n_cand, list, sizeof(list));
	say_step1(c, natted);
	say("Step 2: registering as %s, looking for %s; candidates: %s",
	    c->cfg->id, c->cfg->peer, list);
}

static int peer_session_seen(const struct client *c, uint64_t session)
{
	unsigned n = c->n_peer_sessions < PEER_SESSIONS_MAX ?
	             c->n_peer_sessions : PEER_SESSIONS_MAX;

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
	const struct punch_peer *cur = &c->agent.peer;

	if (!c->agent.have_remote)
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

static void on_peer_info(struct client *c, const struct punch_peer *peer)
{
	char list[1024], seen[ADDR_STRLEN] = "?";

	if (!peer_info_is_news(c, peer))
		return;
	c->peer_sessions[c->n_peer_sessions++ % PEER_SESSIONS_MAX] =
		peer->session;
	cand_list(peer->cand, peer->n_cand, list, sizeof(list));
	if (peer->has_observed)
		addr_str((const struct sockaddr *)&peer->observed, seen,
		         sizeof(seen));
	if (c->agent.have_remote)
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
	say("Step 5: punching: checking %zu candidate pairs (%s)",
	    c->agent.n_pairs, c->agent.controlling ? "controlling" : "controlled");
}

/* The server's key: remembered on first use, or a change that stops us. */
static void on_server_key(struct client *c, int event, const uint8_t *fp)
{
	char path[IDENTITY_PATH_MAX + 32], seen[IDENTITY_FP_STRLEN];
	char want[IDENTITY_FP_STRLEN];

	identity_fp_str(fp, seen);
	known_servers_path(c->id.dir, path, sizeof(path));
	if (event == RDVC_EV_SERVER_KEY) {
		if (known_servers_add(c->id.dir, c->cfg->server, fp))
			log_warn("cannot write %s", path);
		say("Server key %s is new; remembered for %s in %s", seen,
		    c->cfg->server, path);
		return;
	}
	identity_fp_str(c->rc.server_fp, want);
	if (c->cfg->has_server_key)
		log_error("the server %s signs with key %s, not the pinned -server-key %s: refusing to go on",
		          c->cfg->server, seen, want);
	else
		log_error("the server %s now signs with key %s, but %s line %d says %s: someone may be in the middle, or the server has a new key; if that is expected, edit or delete line %d",
		          c->cfg->server, seen, path, c->server_key_line, want,
		          c->server_key_line);
	finish(c, 1);
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
		/* Refreshes come every few seconds; say "ready" once. */
		if (!c->said_ready) {
			c->said_ready = 1;
			say("Step 3: ready: registered in %llu ms; %s",
			    (unsigned long long)step_ms(c),
			    *(const uint32_t *)arg == PUNCH_STATUS_PAIRED ?
			    "the peer is here" : "waiting for the peer");
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
	case RDVC_EV_UNREACHABLE:
		log_error("cannot reach rendezvous server %s (no answer after %d tries); check -server",
		          addr_str((struct sockaddr *)&c->server, a, sizeof(a)),
		          RTX_RC);
		finish(c, 1);
		break;
	}
}

/* ---- the link ------------------------------------------------------- */

static void link_send(void *ctx, const struct sockaddr *to, const uint8_t *buf,
                      size_t len)
{
	struct client *c = ctx;
	const struct agent_pair *p = agent_selected(&c->agent);

	if (p)
		udp_send(c, p->sock, to, buf, len, 0);
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

/* The pair is chosen: QUIC on it, the controlling peer as the client. */
static void start_link(struct client *c, const struct sockaddr *local,
                       const struct sockaddr *remote)
{
	struct link_env env = {
		.loop = &c->loop,
		.id = &c->id,
		.peer_id = c->cfg->peer,
		.pinned = c->cfg->has_peer_key ? c->cfg->peer_key : NULL,
		.relayed = c->agent.peer.has_key_fp ? c->agent.peer.key_fp : NULL,
		.code = c->cfg->code[0] ? c->cfg->code : NULL,
		.is_client = c->agent.controlling,
		.send = link_send,
		.finish = link_finish,
		.kick = link_kick,
		.ctx = c,
	};
	char err[256];

	memcpy(&env.local, local, addr_len(local));
	memcpy(&env.remote, remote, addr_len(remote));
	c->link = link_new(&env, c->cfg->app, &c->cfg->args, uv_hrtime(), err,
	                   sizeof(err));
	if (!c->link) {
		log_error("%s", err);
		finish(c, 1);
		return;
	}
	for (int i = 0; i < c->n_early; i++)
		link_on_datagram(c->link, (struct sockaddr *)&c->early[i].from,
		                 c->early[i].data, c->early[i].len, uv_hrtime());
	c->n_early = 0;
}

static void on_agent_state(void *ctx, int old, int state)
{
	struct client *c = ctx;
	const struct agent_pair *p;
	const struct punch_candidate *r;
	struct sockaddr_storage local;
	char la[ADDR_STRLEN], ra[ADDR_STRLEN];
	uint64_t t = now_ms(c);

	(void)old;
	switch (state) {
	case AGENT_STATE_CONNECTED:
		p = agent_selected(&c->agent);
		r = agent_pair_remote(&c->agent, p);
		if (gather_source_for((const struct sockaddr *)&r->addr,
		                      c->port[p->sock], &local)) {
			memset(&local, 0, sizeof(local));
			local.ss_family = r->addr.ss_family;
			addr_set_port((struct sockaddr *)&local, c->port[p->sock]);
		}
		say("Connection established: %s -> %s (%s), punch took %llu ms, %llu ms since start",
		    addr_str((struct sockaddr *)&local, la, sizeof(la)),
		    addr_str((const struct sockaddr *)&r->addr, ra, sizeof(ra)),
		    punch_cand_type_str(r->type),
		    (unsigned long long)(t - c->t_peer_info),
		    (unsigned long long)(t - c->t_start));
		if (!c->link)
			start_link(c, (struct sockaddr *)&local,
			           (const struct sockaddr *)&r->addr);
		break;
	case AGENT_STATE_FAILED:
		log_error("no direct path to %s: none of %zu candidate pairs answered within %d s",
		          c->cfg->peer, c->agent.n_pairs,
		          AGENT_CHECK_TIMEOUT_MS / 1000);
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

static void alloc_udp(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *c = h->data;

	(void)suggested;
	*buf = uv_buf_init((char *)c->rbuf, sizeof(c->rbuf));
}

/* Is this one of the peer's candidates (host, srflx, or learned from its
 * checks)?  Only these may fill the few slots for early QUIC packets, so
 * that datagrams from a third address cannot crowd out the peer's Initial. */
static int from_peer(const struct client *c, const struct sockaddr *from)
{
	for (size_t i = 0; i < c->agent.n_remote; i++)
		if (addr_equal(from, (const struct sockaddr *)&c->agent.remote[i].addr))
			return 1;
	return 0;
}

/* QUIC, by elimination: see on_udp.  The link itself drops what does not
 * come from the chosen pair until the handshake is done (quic.c). */
static void on_quic(struct client *c, const struct sockaddr *from,
                    const uint8_t *data, size_t len)
{
	if (c->link) {
		link_on_datagram(c->link, from, data, len, uv_hrtime());
	} else if (c->agent.have_remote && c->n_early < EARLY_QUIC_MAX &&
	           len <= sizeof(c->early[0].data) && from_peer(c, from)) {
		memcpy(c->early[c->n_early].data, data, len);
		c->early[c->n_early].len = len;
		memcpy(&c->early[c->n_early].from, from, addr_len(from));
		c->n_early++;
	}
}

static void on_udp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                   const struct sockaddr *from, unsigned flags)
{
	struct client *c = h->data;
	int sock = h == &c->udp[1];
	const uint8_t *data = (const uint8_t *)buf->base;
	uint64_t t = now_ms(c);
	struct stun_msg m;
	char a[ADDR_STRLEN];
	int rc;

	if (nread <= 0 || !from)
		return;
	/* RFC 9443 tells STUN (first byte 0-3) from QUIC (64-255) by the first
	 * byte, but ngtcp2 0.12 always allows its peer to grease the QUIC bit
	 * (RFC 9287), which puts QUIC's first byte anywhere.  So: STUN is what
	 * has the magic cookie in place, and everything else goes to QUIC,
	 * which authenticates every packet it accepts. */
	if (!(flags & UV_UDP_PARTIAL) && !stun_is_stun(data, (size_t)nread)) {
		on_quic(c, from, data, (size_t)nread);
		schedule(c);
		return;
	}
	if ((flags & UV_UDP_PARTIAL) ||
	    (rc = stun_decode(&m, data, (size_t)nread)) != STUN_OK) {
		c->malformed++;
		log_debug("drop %zd bytes from %s: %s", nread,
		          addr_str(from, a, sizeof(a)),
		          (flags & UV_UDP_PARTIAL) ? "too large" : stun_err_str(rc));
		return;
	}
	if (addr_equal(from, (struct sockaddr *)&c->server)) {
		if (!rdvc_on_stun(&c->rc, data, (size_t)nread, &m, t))
			log_debug("unexpected message from the server dropped");
	} else if (!agent_on_stun(&c->agent, sock, from, data, (size_t)nread,
	                          &m, t)) {
		log_debug("unexpected %s from %s dropped",
		          stun_class_str(m.cls), addr_str(from, a, sizeof(a)));
	}
	schedule(c);
}

/* ---- timers ------------------------------------------------------------ */

static void on_timer(uv_timer_t *t)
{
	schedule(t->data);
}

/* The one bookkeeping pass: run every module's deadlines, then sleep until
 * the earliest next one. */
static void schedule(struct client *c)
{
	uint64_t t = now_ms(c), next = UINT64_MAX, n;

	if (c->exit_code >= 0)
		return;
	n = rdvc_tick(&c->rc, t);
	next = n < next ? n : next;
	n = agent_tick(&c->agent, t);
	next = n < next ? n : next;
	if (c->link && c->exit_code < 0) {
		uint64_t ns = link_tick(c->link, uv_hrtime());

		if (ns != UINT64_MAX) {
			/* round up, so that the timer does not fire early */
			n = (ns + 999999) / 1000000;
			next = n < next ? n : next;
		}
	}
	if (c->exit_code >= 0)
		return;
	if (c->cfg->wait_s && !c->agent.have_remote &&
	    t - c->t_start >= (uint64_t)c->cfg->wait_s * 1000) {
		log_error("%s did not show up within %u s", c->cfg->peer,
		          c->cfg->wait_s);
		finish(c, 1);
		return;
	}
	if (next == UINT64_MAX)
		next = t + 1000;
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

static int open_socket(struct client *c, int s)
{
	struct sockaddr_storage any = { 0 };
	struct sockaddr_storage bound;
	int len = sizeof(bound);
	int rc;

	any.ss_family = s ? AF_INET6 : AF_INET;
	if ((rc = uv_udp_init(&c->loop, &c->udp[s])))
		return rc;
	c->udp[s].data = c;
	rc = uv_udp_bind(&c->udp[s], (struct sockaddr *)&any,
	                 s ? UV_UDP_IPV6ONLY : 0);
	if (!rc)
		rc = uv_udp_getsockname(&c->udp[s], (struct sockaddr *)&bound, &len);
	if (!rc)
		rc = uv_udp_recv_start(&c->udp[s], alloc_udp, on_udp);
	if (rc) {
		uv_close((uv_handle_t *)&c->udp[s], NULL);
		return rc;
	}
	c->have_udp[s] = 1;
	c->port[s] = addr_port((struct sockaddr *)&bound);
	return 0;
}

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

/* -server-key, else known_servers, else trust on first use. */
static int pin_server(struct client *c, const struct client_config *cfg)
{
	char path[IDENTITY_PATH_MAX + 32];
	uint8_t fp[IDENTITY_FP_LEN];
	int line = 0;

	if (cfg->has_server_key) {
		rdvc_pin_server(&c->rc, cfg->server_key);
		return 0;
	}
	known_servers_path(c->id.dir, path, sizeof(path));
	switch (known_servers_check(c->id.dir, cfg->server, fp, &line)) {
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

	if (addr_resolve(&c->server, cfg->server, AF_UNSPEC, &err)) {
		log_error("bad -server '%s': %s", cfg->server, err);
		return 2;
	}
	c->server_sock = c->server.ss_family == AF_INET6;
	for (int s = 0; s < AGENT_SOCKETS; s++) {
		rc = open_socket(c, s);
		if (rc && s == c->server_sock) {
			log_error("cannot open a UDP socket: %s", uv_strerror(rc));
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
	c->agent.on_state = on_agent_state;
	/* Local candidates are checked only when everything is on this
	 * machine (tests, the lab's one-host runs). */
	c->agent.allow_local = addr_classify((struct sockaddr *)&c->server) ==
	                       ADDR_CLASS_LOOPBACK;
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
	c->t_start = c->t_step = now_ms(c);
	rc = setup(c, cfg);
	if (rc == 0) {
		rdvc_start(&c->rc, now_ms(c));
		schedule(c);
		uv_run(&c->loop, UV_RUN_DEFAULT);
		rc = c->exit_code < 0 ? 0 : c->exit_code;
	}
	uv_walk(&c->loop, close_one, NULL);
	uv_run(&c->loop, UV_RUN_DEFAULT);
	link_free(c->link);   /* after the loop has closed the app's handles */
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
