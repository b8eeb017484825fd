#include "probe.h"

#include <string.h>

#include "addr.h"
#include "log.h"
#include "rnd.h"

/* The last 4 bytes of a probe's transaction id: its index.  The first 8
 * are random per run, so that a probe's answer is recognised as one. */
enum { TXID_PREFIX = STUN_TXID_LEN - 4 };

const char *probe_state_str(int state)
{
	static const char *names[] = { "idle", "running", "won", "exhausted",
		                       "stopped" };

	return state >= 0 && state <= PROBE_STOPPED ? names[state] : "?";
}

const char *probe_role_str(int role)
{
	switch (role) {
	case PROBE_ROLE_HARD: return "hard";
	case PROBE_ROLE_EASY: return "easy";
	default: return "none";
	}
}

/* Every state change goes through here, and is logged old -> new. */
static void set_state(struct probe *p, enum probe_state s)
{
	if (p->state == s)
		return;
	log_debug("probe: %s -> %s", probe_state_str(p->state),
	          probe_state_str(s));
	p->state = s;
}

void probe_init(struct probe *p, struct agent *a, probe_send_fn *send,
                probe_end_fn *on_end, void *ctx)
{
	memset(p, 0, sizeof(*p));
	p->agent = a;
	p->send = send;
	p->on_end = on_end;
	p->ctx = ctx;
	p->winner = PROBE_MAIN - 1;
}

enum probe_role probe_role_for(const struct punch_nat *ours,
                               const struct punch_nat *theirs)
{
	/* Two dependent mappings: each side's port toward the other is
	 * unknown and new, and random probing would need about R/2 packets
	 * a side.  Unknown on either side: nothing to go on. */
	if (ours->mapping == PUNCH_NAT_DEPENDENT &&
	    theirs->mapping == PUNCH_NAT_INDEPENDENT)
		return PROBE_ROLE_HARD;
	if (ours->mapping == PUNCH_NAT_INDEPENDENT &&
	    theirs->mapping == PUNCH_NAT_DEPENDENT)
		return PROBE_ROLE_EASY;
	return PROBE_ROLE_NONE;
}

int probe_may_start(const struct probe *p, uint64_t now_ms)
{
	return p->state != PROBE_RUNNING &&
	       (!p->ever_started || now_ms - p->last_start_ms >= PROBE_HOLDOFF_MS);
}

/* How long the easy side's probes take, from its start. */
static uint64_t easy_span_ms(unsigned probes)
{
	return PROBE_EASY_DELAY_MS +
	       ((uint64_t)probes * 1000 + PROBE_RATE_PER_S - 1) / PROBE_RATE_PER_S;
}

/* The easy side: predict the hard side's ports if its NAT said it
 * allocates them sequentially (PUNCH-NAT), from the port the server saw. */
static void predict_init(struct probe *p, const struct sockaddr *target)
{
	const struct punch_nat *nat = &agent_peer(p->agent)->nat;

	p->predict_base = addr_port(target);
	p->predict_delta = 0;
	p->predicted = p->predicted_sent = 0;
	if (p->role == PROBE_ROLE_EASY && nat->ports == PUNCH_PORTS_SEQUENTIAL &&
	    nat->delta != 0 && nat->delta >= -PUNCH_PORTS_SEQUENTIAL_DELTA_MAX &&
	    nat->delta <= PUNCH_PORTS_SEQUENTIAL_DELTA_MAX) {
		p->predict_delta = nat->delta;
		log_debug("probe: the peer's NAT allocates sequentially (delta %d): ports %u%+d*k first",
		          nat->delta, p->predict_base, nat->delta);
	}
}

int probe_start(struct probe *p, enum probe_role role,
                const struct sockaddr *target, unsigned n, uint64_t now_ms)
{
	char t[ADDR_STRLEN];

	if (!probe_may_start(p, now_ms) || role == PROBE_ROLE_NONE ||
	    (target->sa_family != AF_INET && target->sa_family != AF_INET6))
		return -1;
	if (role == PROBE_ROLE_HARD && (n == 0 || n > PROBE_SOCKETS_MAX))
		return -1;
	if (role == PROBE_ROLE_EASY && n == 0)
		n = PROBE_PROBES_DEFAULT;
	if (n > PROBE_PROBES_MAX)
		n = PROBE_PROBES_MAX;
	p->role = role;
	memset(&p->target, 0, sizeof(p->target));
	memcpy(&p->target, target, addr_len(target));
	p->n_socks = role == PROBE_ROLE_HARD ? n : 0;
	p->max_probes = role == PROBE_ROLE_EASY ? n : 0;
	p->sent = 0;
	memset(p->port_sent, 0, sizeof(p->port_sent));
	p->ports[0] = addr_port(target);
	p->n_ports = 1;
	p->start_ms = p->last_start_ms = now_ms;
	p->ever_started = 1;
	p->winner = PROBE_MAIN - 1;
	memset(p->visited, 0, sizeof(p->visited));
	predict_init(p, target);
	rnd_nonce(p->txid_base, sizeof(p->txid_base));
	/* The hard side waits for the easy side's default run. */
	p->end_ms = role == PROBE_ROLE_HARD ?
	                    now_ms + easy_span_ms(PROBE_PROBES_DEFAULT) +
	                            PROBE_LINGER_MS :
	                    UINT64_MAX;
	log_debug("probe: as the %s side, %u %s toward %s", probe_role_str(role),
	          n, role == PROBE_ROLE_HARD ? "sockets" : "probes",
	          addr_str(target, t, sizeof(t)));
	set_state(p, PROBE_RUNNING);
	return 0;
}

static void end(struct probe *p, enum probe_state s, int psock)
{
	set_state(p, s);
	if (p->on_end)
		p->on_end(p->ctx, psock);
}

void probe_stop(struct probe *p)
{
	if (p->state == PROBE_RUNNING)
		end(p, PROBE_STOPPED, PROBE_MAIN - 1);
}

/* ---- sending ------------------------------------------------------------ */

static void send_probe(struct probe *p, int psock, unsigned index,
                       const struct sockaddr *to, int ttl)
{
	uint8_t txid[STUN_TXID_LEN], buf[PUNCH_MSG_MAX];
	int n;

	memcpy(txid, p->txid_base, TXID_PREFIX);
	txid[TXID_PREFIX] = (uint8_t)(index >> 24);
	txid[TXID_PREFIX + 1] = (uint8_t)(index >> 16);
	txid[TXID_PREFIX + 2] = (uint8_t)(index >> 8);
	txid[TXID_PREFIX + 3] = (uint8_t)index;
	if ((n = agent_build_check(p->agent, txid, buf, sizeof(buf))) <= 0)
		return;
	p->packets++;
	p->send(p->ctx, psock, to, buf, (size_t)n, ttl);
}

static int visited(const struct probe *p, unsigned port)
{
	return p->visited[port / 8] & (1u << (port % 8));
}

/*
 * Port prediction's j-th k (probe.h): PROBE_PREDICT_MID, then one above
 * and one below, outwards, down to 1; then on upwards to
 * PROBE_PREDICT_MAX.  Middle-out, not from k = 1 up:
 *   - the hard side's probe sockets, which all aim at us, took about
 *     k = 3..258: the middle of them is hit by the first probe, and other
 *     hosts' flows that got in between shift them by up to ~128 ports
 *     either way before the first probes miss;
 *   - the lowest k are the hard side's own agent's checks, sent to our
 *     address without a small TTL: a NAT of ours without a filter (Linux
 *     MASQUERADE) holds stray entries for them, and a probe to one of
 *     them would move our mapping for every probe after it ("Moved
 *     ports" above).  Seen in the lab's sequential-plain, where probing
 *     from k = 1 up failed every time.
 */
static long predict_k(unsigned j)
{
	const unsigned mid = PROBE_PREDICT_MID;

	if (j <= 2 * (mid - 1))
		return j % 2 ? (long)(mid + (j + 1) / 2) : (long)(mid - j / 2);
	return (long)j + 1;
}

/* The next predicted port not probed yet: B + k*delta, or 0 once all
 * PROBE_PREDICT_MAX are done (those outside the port range skipped). */
static unsigned predicted_port(struct probe *p)
{
	while (p->predict_delta && p->predicted < PROBE_PREDICT_MAX) {
		long port = (long)p->predict_base +
		            predict_k(p->predicted) * p->predict_delta;

		p->predicted++;
		if (port < PROBE_PORT_MIN || port > PROBE_PORT_MAX)
			continue;
		if (!visited(p, (unsigned)port)) {
			p->predicted_sent++;
			return (unsigned)port;
		}
	}
	return 0;
}

/* A port of the range not probed yet: a predicted one first (above),
 * else random, and if a few draws hit visited ports, the next free one
 * after the last draw (there is one: at most PROBE_PROBES_MAX of the
 * range's 64,512 are ever visited). */
static unsigned next_port(struct probe *p)
{
	const unsigned span = PROBE_PORT_MAX - PROBE_PORT_MIN + 1;
	unsigned port = predicted_port(p);

	if (port)
		goto out;
	port = PROBE_PORT_MIN;

	for (int tries = 0; tries < 16; tries++) {
		port = PROBE_PORT_MIN +
		       (p->rng ? p->rng(p->rng_ctx) : rnd_u32()) % span;
		if (!visited(p, port))
			goto out;
	}
	for (unsigned k = 0; k < span && visited(p, port); k++)
		port = PROBE_PORT_MIN + (port - PROBE_PORT_MIN + 1) % span;
out:
	p->visited[port / 8] |= (uint8_t)(1u << (port % 8));
	return port;
}

static int aimed_at(const struct probe *p, uint16_t port)
{
	for (unsigned t = 0; t < p->n_ports; t++)
		if (p->ports[t] == port)
			return 1;
	return 0;
}

/*
 * Moved ports.  The easy side's NAT maps endpoint-independently, but a
 * Linux NAT without a filter (plain MASQUERADE) can move that mapping
 * after the fact: if a packet from some address X (our relayed address,
 * whose check raced the easy side's own first packet to X) reaches the
 * easy side's public port first, conntrack keeps an entry X -> that port,
 * so the easy side's own flow to X must take another port; and from then
 * on conntrack gives every new flow of that socket the same new port (it
 * reuses the newest mapping of the source, nf_nat_core.c's
 * find_appropriate_src).  The easy side's probes then all leave from a
 * port that our mappings, opened toward its server-reflexive one, do not
 * admit (seen in the lab: docs/nat-traversal.md).  The new port is not
 * lost on us, though: the easy side's check through our relay arrives
 * from it, and the agent keeps it as a peer-reflexive candidate.  So
 * every port of the easy side's IP that the agent knows gets checks from
 * all our sockets too, up to PROBE_TARGETS_MAX ports in all.
 */
static void add_moved_ports(struct probe *p)
{
	const struct punch_candidate *c;
	size_t i = 0;

	while (p->n_ports < PROBE_TARGETS_MAX && (c = agent_remote(p->agent, i++))) {
		const struct sockaddr *a = (const struct sockaddr *)&c->addr;
		char s[ADDR_STRLEN];

		if (!addr_same_ip(a, (const struct sockaddr *)&p->target) ||
		    aimed_at(p, addr_port(a)))
			continue;
		p->ports[p->n_ports++] = addr_port(a);
		log_debug("probe: the peer also sends from %s; aiming there too",
		          addr_str(a, s, sizeof(s)));
	}
}

/* The hard side: one check from each socket to each of the easy side's
 * ports, with a TTL that opens our own NAT's mapping and dies before the
 * easy side's NAT (probe.h). */
static uint64_t tick_hard(struct probe *p, uint64_t now_ms)
{
	struct sockaddr_storage to = p->target;

	add_moved_ports(p);
	for (unsigned t = 0; t < p->n_ports; t++) {
		addr_set_port((struct sockaddr *)&to, p->ports[t]);
		for (; p->port_sent[t] < p->n_socks; p->port_sent[t]++)
			send_probe(p, (int)p->port_sent[t], p->sent++,
			           (const struct sockaddr *)&to, AGENT_OPEN_TTL);
	}
	if (now_ms >= p->end_ms) {
		log_debug("probe: no probe reached any of our %u sockets",
		          p->n_socks);
		end(p, PROBE_EXHAUSTED, PROBE_MAIN - 1);
		return UINT64_MAX;
	}
	return p->end_ms;
}

/* The easy side: probe j goes at t0 + j / PROBE_RATE_PER_S. */
static uint64_t tick_easy(struct probe *p, uint64_t now_ms)
{
	uint64_t t0 = p->start_ms + PROBE_EASY_DELAY_MS, due;
	struct sockaddr_storage to = p->target;
	unsigned burst = 0;

	if (now_ms < t0)
		return t0;
	due = (now_ms - t0) * PROBE_RATE_PER_S / 1000 + 1;
	while (p->sent < p->max_probes && p->sent < due &&
	       burst++ < PROBE_BURST_MAX) {
		addr_set_port((struct sockaddr *)&to, (uint16_t)next_port(p));
		send_probe(p, PROBE_MAIN, p->sent++, (const struct sockaddr *)&to, 0);
	}
	if (p->sent == p->max_probes) {
		/* the last probe's answer may still come */
		if (p->end_ms == UINT64_MAX)
			p->end_ms = now_ms + PROBE_LINGER_MS;
		if (now_ms < p->end_ms)
			return p->end_ms;
		log_debug("probe: none of %u probes answered", p->max_probes);
		end(p, PROBE_EXHAUSTED, PROBE_MAIN - 1);
		return UINT64_MAX;
	}
	due = t0 + ((uint64_t)p->sent * 1000 + PROBE_RATE_PER_S - 1) /
	                   PROBE_RATE_PER_S;
	return due > now_ms ? due : now_ms + 1;
}

uint64_t probe_tick(struct probe *p, uint64_t now_ms)
{
	if (p->state != PROBE_RUNNING)
		return UINT64_MAX;
	return p->role == PROBE_ROLE_HARD ? tick_hard(p, now_ms) :
	                                    tick_easy(p, now_ms);
}

/* ---- receiving ---------------------------------------------------------- */

static int is_our_txid(const struct probe *p, const struct stun_msg *m)
{
	return !memcmp(m->txid, p->txid_base, TXID_PREFIX);
}

static void won(struct probe *p, int psock, const struct sockaddr *from,
                uint64_t now_ms)
{
	char f[ADDR_STRLEN];

	p->winner = psock;
	memset(&p->won_addr, 0, sizeof(p->won_addr));
	memcpy(&p->won_addr, from, addr_len(from));
	p->won_ms = now_ms;
	log_debug("probe: hit: %s answered after %llu ms, %llu packets",
	          addr_str(from, f, sizeof(f)),
	          (unsigned long long)(now_ms - p->start_ms),
	          (unsigned long long)p->packets);
	end(p, PROBE_WON, psock);
}

/* The hard side: a check from the easy side (its probe found this
 * socket's mapping), or the answer to this socket's own check. */
static int on_hard(struct probe *p, int psock, const struct sockaddr *from,
                   const uint8_t *buf, size_t len, const struct stun_msg *m,
                   uint64_t now_ms)
{
	int ok;

	if (psock < 0 || (unsigned)psock >= p->n_socks)
		return 0;
	if (m->method != STUN_BINDING)
		ok = 0;
	else if (m->cls == STUN_REQUEST)
		ok = agent_auth_request(p->agent, m, buf, len);
	else
		ok = m->cls == STUN_SUCCESS && is_our_txid(p, m) &&
		     agent_auth_response(p->agent, m, buf, len);
	if (!ok || !addr_same_ip(from, (const struct sockaddr *)&p->target) ||
	    !aimed_at(p, addr_port(from))) {
		p->dropped++;
		return 1;
	}
	won(p, psock, from, now_ms);
	/* the caller has made psock the agent's AGENT_SOCK_PROBE */
	agent_set_socket(p->agent, AGENT_SOCK_PROBE,
	                 punch_cand_priority(CAND_PRFLX, 65535));
	if (m->cls == STUN_REQUEST)
		agent_on_stun(p->agent, AGENT_SOCK_PROBE, from, buf, len, m,
		              now_ms);
	else
		agent_learn_addr(p->agent, AGENT_SOCK_PROBE, from, now_ms);
	return 1;
}

/* The easy side: the answer to one of our probes, from the hard side's
 * public IP. */
static int on_easy(struct probe *p, const struct sockaddr *from,
                   const uint8_t *buf, size_t len, const struct stun_msg *m,
                   uint64_t now_ms)
{
	if (m->method != STUN_BINDING || m->cls != STUN_SUCCESS ||
	    !is_our_txid(p, m))
		return 0;
	if (!addr_same_ip(from, (const struct sockaddr *)&p->target) ||
	    !agent_auth_response(p->agent, m, buf, len)) {
		p->dropped++;
		return 1;
	}
	won(p, PROBE_MAIN, from, now_ms);
	agent_learn_addr(p->agent, from->sa_family == AF_INET6 ? 1 : 0, from,
	                 now_ms);
	return 1;
}

int probe_on_stun(struct probe *p, int psock, const struct sockaddr *from,
                  const uint8_t *buf, size_t len, const struct stun_msg *m,
                  uint64_t now_ms)
{
	if (p->state != PROBE_RUNNING)
		return psock != PROBE_MAIN; /* a probe socket's: not the agent's */
	if (p->role == PROBE_ROLE_HARD)
		return psock == PROBE_MAIN ? 0 :
		                             on_hard(p, psock, from, buf, len, m, now_ms);
	return psock == PROBE_MAIN ? on_easy(p, from, buf, len, m, now_ms) : 1;
}
