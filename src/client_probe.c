/*
 * The client's birthday probing (probe.h): when to start it, its sends
 * and its sockets' datagrams (probe_socks.h), and what it found.
 */
#include <string.h>

#include "addr.h"
#include "agent.h"
#include "client_internal.h"
#include "log.h"
#include "probe.h"
#include "probe_socks.h"
#include "stun.h"
#include "udp.h"

/* ---- birthday probing (probe.h) ----------------------------------------- */

/* Probing's sends: from a probe socket, or from our socket of to's family. */
void client_probe_send(void *ctx, int psock, const struct sockaddr *to,
                       const uint8_t *buf, size_t len, int ttl)
{
	struct client *c = ctx;
	char a[ADDR_STRLEN];
	int rc;

	if (psock == PROBE_MAIN) {
		client_send_one(c, to->sa_family == AF_INET6 ? 1 : 0, to, buf, len, ttl);
		return;
	}
	if ((rc = probe_socks_send(&c->psocks, psock, to, buf, len, ttl)) < 0)
		log_debug("probe: send to %s: %s", addr_str(to, a, sizeof(a)),
		          strerror(-rc));
}

/* The probe socket i's datagram: the kept one's is the agent's socket
 * AGENT_SOCK_PROBE like any other; before a hit, only probing's. */
void client_on_probe_datagram(void *ctx, int i, const struct sockaddr *from,
                              const uint8_t *buf, size_t len)
{
	struct client *c = ctx;
	enum udp_kind kind = udp_classify(buf, len);
	struct stun_msg m;

	if (i == c->psocks.kept) {
		client_on_datagram(c, AGENT_SOCK_PROBE, kind, from, buf, len);
	} else if (kind == UDP_KIND_STUN && stun_decode(&m, buf, len) == STUN_OK) {
		probe_on_stun(&c->probe, i, from, buf, len, &m, now_ms(c));
	}
	client_schedule(c);
}

/* Probing ended: a hit on socket psock (keep it, close the rest), or none
 * (close them all). */
void client_on_probe_end(void *ctx, int psock)
{
	struct client *c = ctx;
	const struct probe *p = &c->probe;
	char a[ADDR_STRLEN];

	if (psock >= 0)
		probe_socks_keep(&c->psocks, psock);
	else if (psock < PROBE_MAIN)
		probe_socks_close(&c->psocks);
	if (p->state == PROBE_WON)
		client_say("Probing: %s answered after %llu ms, %llu packets sent",
		           addr_str((const struct sockaddr *)&p->won_addr, a, sizeof(a)),
		           (unsigned long long)(p->won_ms - p->start_ms),
		           (unsigned long long)p->packets);
	else if (p->state == PROBE_EXHAUSTED && p->role == PROBE_ROLE_HARD)
		client_say("Probing: no answer after %llu packets (%llu of them refused by the kernel); next try in %d s at the earliest",
		           (unsigned long long)p->packets,
		           (unsigned long long)c->psocks.send_failed,
		           PROBE_HOLDOFF_MS / 1000);
	else if (p->state == PROBE_EXHAUSTED)
		client_say("Probing: no answer after %llu packets; next try in %d s at the earliest",
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
		client_say("Probing: my NAT maps per destination, %s's does not: %d sockets toward %s",
		           peer->id, n, a);
	else
		client_say("Probing: %s's NAT maps per destination, mine does not: up to %u probes to its address's ports",
		           peer->id, c->probe.max_probes);
}

/* Probing's deadlines: it stops once a direct pair is chosen, and while
 * the relay carries the session it may start again after its holdoff. */
uint64_t client_schedule_probe(struct client *c, uint64_t t)
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
