/*
 * The client's link: once the agent has chosen a pair, QUIC on it
 * (link.h), its packets sent by whichever pair the agent has chosen since,
 * and the agent's state changes told to the user.
 */
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "agent.h"
#include "client_internal.h"
#include "gather.h"
#include "link.h"
#include "log.h"
#include "probe_socks.h"
#include "turn_client.h"
#include "udp.h"

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
		client_send_one(c, p->sock, link_dest(c, p, to), buf, len, 0);
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
			client_send_one(c, p->sock, to, buf + off,
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
	client_finish(ctx, code);
}

static void link_kick(void *ctx)
{
	struct client *c = ctx;

	uv_timer_start(&c->timer, client_on_timer, 0, 0);
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
		client_finish(c, 1);
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
void client_on_agent_switch(void *ctx, int old)
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
		client_say("Path back on the relay: %s -> %s (%s): the direct path stopped answering",
		           la, ra, path);
	} else {
		client_say("Path upgraded: %s -> %s (direct, %s), after %llu ms on the relay, %llu ms after the peer info",
		           la, ra, path, (unsigned long long)(t - c->t_on_relay),
		           (unsigned long long)(t - c->t_peer_info));
	}
}

void client_on_agent_state(void *ctx, int old, int state)
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
		client_say("Connection established: %s -> %s (%s), punch took %llu ms, %llu ms since start",
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
		client_finish(c, 1);
		break;
	case AGENT_STATE_GONE:
		log_error("%s is gone: no answer for %d s", c->cfg->peer,
		          AGENT_CONSENT_LOST_MS / 1000);
		if (c->link)
			link_close(c->link, APP_ERR_ABORTED, uv_hrtime());
		client_finish(c, 1);
		break;
	}
}
