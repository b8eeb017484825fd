/*
 * Unit tests for birthday probing (src/probe.c), with two real agents over
 * an in-memory network in the style of agent_net.h, but with real NATs in
 * front of them:
 *
 *   - the hard side (alice unless a test swaps them) behind an
 *     endpoint-dependent NAT: every (socket, destination) gets a random
 *     public port of 1024-65535, which admits only that destination;
 *   - the easy side behind an endpoint-independent, port-restricted NAT:
 *     one public port, which admits only addresses the side has sent to.
 *
 * Datagrams take 1 ms.  A datagram with a small TTL opens its sender's
 * mapping and dies there.  Optionally both have a relayed address (always
 * reachable), so that the agents connect through the relay first and
 * probing's pair takes over through the upgrade path.
 *
 * The probes' ports come from a seeded generator (probe.rng), the NAT's
 * from another, so that every run is the same.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "agent.h"
#include "log.h"
#include "probe.h"
#include "punch_attr.h"

enum {
	HARD = 0,
	EASY = 1,
	NODE_SOCK_PROBE = 100, /* node socket ids: 0 main, 100 + k probe k */
	MAP_MAX = 2048,
	Q_MAX = 4096,
	SENT_MAX = 8192,
};

struct mapping {
	int sock;        /* node socket id */
	struct sockaddr_storage dst;
	uint16_t port;
};

struct tnode {
	struct agent a;
	struct probe pr;
	struct punch_peer self;
	struct sockaddr_storage host, pub, relay;
	int controlling;
	/* the probe sockets: open[k], and the one kept as AGENT_SOCK_PROBE */
	int open[PROBE_SOCKETS_MAX];
	int kept;
	unsigned n_open;
	size_t n_switches;
	uint32_t rng;
};

struct tdgram {
	int from_node, from_sock, ttl;
	struct sockaddr_storage dst;
	uint8_t buf[PUNCH_MSG_MAX];
	size_t len;
};

static struct {
	struct tnode n[2];
	struct tdgram q[Q_MAX];
	size_t nq;
	uint64_t now;
	int relay;
	/* the hard NAT's mappings */
	struct mapping map[MAP_MAX];
	size_t n_map;
	uint32_t nat_rng;
	/* the easy NAT's filter: ports of the hard IP it sent to, and
	 * whether it sent to the relay */
	uint8_t easy_sent[65536 / 8];
	int drop_probes;            /* the easy side's probes are lost */
	/* The easy NAT has moved its mapping (a filterless NAT after a
	 * stray entry, probe.c "Moved ports"): every flow of the easy side
	 * leaves from this port, not the one the server saw; 0: none. */
	uint16_t easy_moved;
	/* The hard NAT allocates sequentially: each new mapping takes this
	 * port, then the next; 0: random ports. */
	uint16_t hard_seq;
	/* what the easy side's probing sent: destinations */
	struct sockaddr_storage probe_dst[SENT_MAX];
	size_t n_probe_dst;
} w;

static const char *HARD_HOST = "10.0.1.2:5000", *HARD_IP = "203.0.113.10",
		  *EASY_HOST = "10.0.2.2:5000", *EASY_PUB = "192.0.2.10:5000";

static uint32_t xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static uint32_t probe_rng(void *ctx)
{
	return xorshift(ctx);
}

static struct sockaddr_storage sa(const char *s)
{
	struct sockaddr_storage a;

	memset(&a, 0, sizeof(a));
	a.ss_family = AF_INET;
	assert_int_equal(addr_parse(&a, s), 0);
	return a;
}

/* ---- the NATs ----------------------------------------------------------- */

static int port_taken(uint16_t port)
{
	for (size_t i = 0; i < w.n_map; i++)
		if (w.map[i].port == port)
			return 1;
	return 0;
}

/* The hard NAT's public port for (sock, dst): a new random one per pair. */
static uint16_t hard_map(int sock, const struct sockaddr *dst)
{
	uint16_t port;

	for (size_t i = 0; i < w.n_map; i++)
		if (w.map[i].sock == sock && addr_equal(SA(w.map[i].dst), dst))
			return w.map[i].port;
	assert_true(w.n_map < MAP_MAX);
	if (w.hard_seq)
		port = w.hard_seq++;
	else
		do
			port = (uint16_t)(1024 + xorshift(&w.nat_rng) % 64512);
		while (port_taken(port));
	w.map[w.n_map].sock = sock;
	memset(&w.map[w.n_map].dst, 0, sizeof(w.map[0].dst));
	memcpy(&w.map[w.n_map].dst, dst, addr_len(dst));
	w.map[w.n_map++].port = port;
	return port;
}

/* ---- sending ------------------------------------------------------------ */

static void push(int node, int sock, const struct sockaddr *to,
                 const uint8_t *buf, size_t len, int ttl)
{
	struct tdgram *d;
	struct stun_msg m;

	decode_ok(&m, buf, len);
	assert_true(w.nq < Q_MAX);
	d = &w.q[w.nq++];
	d->from_node = node;
	d->from_sock = sock;
	d->ttl = ttl;
	memset(&d->dst, 0, sizeof(d->dst));
	memcpy(&d->dst, to, addr_len(to));
	memcpy(d->buf, buf, len);
	d->len = len;
}

static void agent_send(void *ctx, int sock, const struct sockaddr *to,
                       const uint8_t *buf, size_t len, int ttl)
{
	struct tnode *n = ctx;
	int node = (int)(n - w.n);

	if (sock == AGENT_SOCK_PROBE) {
		assert_true(n->kept >= 0);
		sock = NODE_SOCK_PROBE + n->kept;
	}
	push(node, sock, to, buf, len, ttl);
}

static void probe_send(void *ctx, int psock, const struct sockaddr *to,
                       const uint8_t *buf, size_t len, int ttl)
{
	struct tnode *n = ctx;
	int node = (int)(n - w.n);

	if (psock == PROBE_MAIN) {
		assert_true(w.n_probe_dst < SENT_MAX);
		memcpy(&w.probe_dst[w.n_probe_dst++], to, addr_len(to));
		push(node, 0, to, buf, len, ttl);
		return;
	}
	assert_true(psock >= 0 && (unsigned)psock < n->n_open);
	assert_true(n->open[psock]);
	push(node, NODE_SOCK_PROBE + psock, to, buf, len, ttl);
}

static void probe_end(void *ctx, int psock)
{
	struct tnode *n = ctx;

	if (psock == PROBE_MAIN)
		return;
	for (unsigned k = 0; k < n->n_open; k++)
		n->open[k] = (int)k == psock;
	if (psock >= 0)
		n->kept = psock;
}

static void on_switch(void *ctx, int old)
{
	struct tnode *n = ctx;

	(void)old;
	n->n_switches++;
}

/* ---- delivering --------------------------------------------------------- */

/* Where d goes (node and socket id) and from which source, after both
 * NATs; -1 if dropped. */
static int route(const struct tdgram *d, struct sockaddr_storage *src,
                 int *sock)
{
	struct sockaddr_storage relay_dst;
	int relayed = d->from_sock == AGENT_SOCK_RELAY;

	/* our own NAT, outbound */
	if (relayed) {
		*src = w.n[d->from_node].relay;
	} else if (d->from_node == HARD) {
		*src = sa(HARD_IP);
		addr_set_port(SA(*src), hard_map(d->from_sock, SA(d->dst)));
	} else {
		*src = sa(EASY_PUB);
		if (w.easy_moved)
			addr_set_port(SA(*src), w.easy_moved);
		if (addr_same_ip(SA(d->dst), SA(w.n[HARD].pub)))
			w.easy_sent[addr_port(SA(d->dst)) / 8] |=
				(uint8_t)(1u << (addr_port(SA(d->dst)) % 8));
	}
	if (d->ttl)
		return -1; /* died after our NAT */
	/* a relayed address: always reachable */
	for (int i = 0; i < 2; i++) {
		relay_dst = w.n[i].relay;
		if (w.relay && i != d->from_node && addr_equal(SA(d->dst), SA(relay_dst))) {
			*sock = AGENT_SOCK_RELAY;
			return i;
		}
	}
	if (relayed)
		return -1; /* the relay only reaches the other relayed address */
	if (d->from_node == EASY) {
		/* to the hard NAT: a mapping that admits exactly our source */
		uint16_t port = addr_port(SA(d->dst));

		if (!addr_same_ip(SA(d->dst), SA(w.n[HARD].pub)))
			return -1;
		if (w.drop_probes && d->from_sock == 0 && port != 0) {
			for (size_t i = 0; i < w.n_map; i++)
				if (w.map[i].port == port && w.map[i].sock >= NODE_SOCK_PROBE)
					return -1;
		}
		for (size_t i = 0; i < w.n_map; i++)
			if (w.map[i].port == port &&
			    addr_equal(SA(w.map[i].dst), SA(*src))) {
				*sock = w.map[i].sock;
				return HARD;
			}
		return -1;
	}
	/* to the easy NAT: to its mapping, only from where it sent */
	if (!addr_same_ip(SA(d->dst), SA(w.n[EASY].pub)) ||
	    addr_port(SA(d->dst)) != (w.easy_moved ? w.easy_moved :
	                                             addr_port(SA(w.n[EASY].pub))))
		return -1;
	{
		uint16_t port = addr_port(SA(*src));

		if (!(w.easy_sent[port / 8] & (1u << (port % 8))))
			return -1;
	}
	*sock = 0;
	return EASY;
}

static void deliver(const struct tdgram *d)
{
	struct sockaddr_storage src;
	struct stun_msg m;
	struct tnode *n;
	int to, sock;

	if ((to = route(d, &src, &sock)) < 0)
		return;
	n = &w.n[to];
	decode_ok(&m, d->buf, d->len);
	if (sock >= NODE_SOCK_PROBE) {
		int k = sock - NODE_SOCK_PROBE;

		if (k == n->kept)
			agent_on_stun(&n->a, AGENT_SOCK_PROBE, SA(src), d->buf,
			              d->len, &m, w.now);
		else if (n->open[k])
			probe_on_stun(&n->pr, k, SA(src), d->buf, d->len, &m,
			              w.now);
		return;
	}
	if (!agent_on_stun(&n->a, sock, SA(src), d->buf, d->len, &m, w.now))
		probe_on_stun(&n->pr, PROBE_MAIN, SA(src), d->buf, d->len, &m,
		              w.now);
}

static int direct(const struct tnode *n)
{
	const struct agent_pair *p = agent_selected(&n->a);

	return p && !agent_pair_is_relayed(&n->a, p);
}

static void step(void)
{
	static struct tdgram batch[Q_MAX];
	size_t k = w.nq;

	memcpy(batch, w.q, k * sizeof(batch[0]));
	w.nq = 0;
	for (size_t i = 0; i < k; i++)
		deliver(&batch[i]);
	for (int i = 0; i < 2; i++) {
		uint64_t a = agent_tick(&w.n[i].a, w.now);
		uint64_t p = probe_tick(&w.n[i].pr, w.now);

		assert_true(a > w.now);
		assert_true(p > w.now);
		/* as the client does: a direct path ends probing */
		if (direct(&w.n[i]))
			probe_stop(&w.n[i].pr);
	}
	w.now++;
}

/* ---- the nodes ---------------------------------------------------------- */

static void node(int i, int controlling, uint32_t seed)
{
	struct tnode *n = &w.n[i];
	struct punch_peer *p = &n->self;
	char ufrag[16], pwd[40];

	memset(n, 0, sizeof(*n));
	n->kept = -1;
	n->controlling = controlling;
	n->rng = seed * 2654435761u + (uint32_t)i + 1;
	n->host = sa(i == HARD ? HARD_HOST : EASY_HOST);
	if (i == HARD) {
		/* what the server saw: the mapping toward it */
		n->pub = sa(HARD_IP);
		addr_set_port(SA(n->pub), 40000);
	} else {
		n->pub = sa(EASY_PUB);
	}
	n->relay = sa(i == HARD ? "198.51.100.10:50001" : "198.51.100.10:50002");
	snprintf(ufrag, sizeof(ufrag), "u%d", i);
	snprintf(pwd, sizeof(pwd), "pwd-%d-0123456789abcdef", i);
	snprintf(p->id, sizeof(p->id), "%s", i == HARD ? "hard" : "easy");
	snprintf(p->ufrag, sizeof(p->ufrag), "%s", ufrag);
	snprintf(p->pwd, sizeof(p->pwd), "%s", pwd);
	p->session = 100 + (uint64_t)i;
	p->cand[0] = (struct punch_candidate){ CAND_HOST,
		                               punch_cand_priority(CAND_HOST, 65535),
		                               n->host };
	p->cand[1] = (struct punch_candidate){ CAND_SRFLX,
		                               punch_cand_priority(CAND_SRFLX, 65535),
		                               n->pub };
	p->n_cand = 2;
	p->observed = n->pub;
	p->has_observed = 1;
	p->nat.mapping = i == HARD ? PUNCH_NAT_DEPENDENT : PUNCH_NAT_INDEPENDENT;
	agent_init(&n->a, controlling, ufrag, pwd, agent_send, n);
	agent_set_socket(&n->a, 0, p->cand[0].priority);
	agent_set_natted(&n->a, 1);
	agent_set_on_switch(&n->a, on_switch);
	probe_init(&n->pr, &n->a, probe_send, probe_end, n);
	n->pr.rng = probe_rng;
	n->pr.rng_ctx = &n->rng;
}

static void world(uint32_t seed, int hard_controls, int relay)
{
	memset(&w, 0, sizeof(w));
	log_set_level(LOG_WARN);
	w.now = 1000;
	w.nat_rng = 0x9E3779B9u ^ (seed * 40503u + 7);
	w.relay = relay;
	node(HARD, hard_controls, seed);
	node(EASY, !hard_controls, seed);
	if (relay) {
		for (int i = 0; i < 2; i++) {
			struct punch_peer *p = &w.n[i].self;

			p->cand[p->n_cand++] = (struct punch_candidate){
				CAND_RELAY, punch_cand_priority(CAND_RELAY, 65535),
				w.n[i].relay
			};
			agent_set_relay(&w.n[i].a, AF_INET, p->cand[2].priority, 0,
			                w.now);
		}
	}
}

/* PEER-INFO at both, and each side's probing as the client starts it. */
static void introduce(unsigned n_socks)
{
	for (int i = 0; i < 2; i++) {
		struct tnode *n = &w.n[i];
		const struct punch_peer *peer = &w.n[!i].self;
		enum probe_role role = probe_role_for(&n->self.nat, &peer->nat);

		agent_set_remote(&n->a, peer, w.now);
		if (role == PROBE_ROLE_HARD) {
			n->n_open = n_socks;
			for (unsigned k = 0; k < n_socks; k++)
				n->open[k] = 1;
			assert_int_equal(probe_start(&n->pr, role, SA(peer->observed),
			                             n_socks, w.now),
			                 0);
		} else if (role == PROBE_ROLE_EASY) {
			assert_int_equal(probe_start(&n->pr, role, SA(peer->observed),
			                             0, w.now),
			                 0);
		}
	}
}

static int both_direct(void)
{
	return direct(&w.n[HARD]) && direct(&w.n[EASY]);
}

/* Run until both sides have chosen a direct pair, or `limit` ms. */
static int run_direct(uint64_t limit)
{
	uint64_t end = w.now + limit;

	while (!both_direct() && w.now < end)
		step();
	return both_direct();
}

/* ---- tests -------------------------------------------------------------- */

static void test_role(void **state)
{
	struct punch_nat u = { PUNCH_NAT_UNKNOWN, 0, 0 },
			 ei = { PUNCH_NAT_INDEPENDENT, 0, 0 },
			 dep = { PUNCH_NAT_DEPENDENT, PUNCH_PORTS_RANDOM, 0 };

	(void)state;
	assert_int_equal(probe_role_for(&dep, &ei), PROBE_ROLE_HARD);
	assert_int_equal(probe_role_for(&ei, &dep), PROBE_ROLE_EASY);
	/* never between two hard NATs, nor on a guess */
	assert_int_equal(probe_role_for(&dep, &dep), PROBE_ROLE_NONE);
	assert_int_equal(probe_role_for(&ei, &ei), PROBE_ROLE_NONE);
	assert_int_equal(probe_role_for(&u, &dep), PROBE_ROLE_NONE);
	assert_int_equal(probe_role_for(&dep, &u), PROBE_ROLE_NONE);
}

/* Without probing, the pair cannot connect directly: the hard side's port
 * toward the easy side is new, and the easy side's filter drops it. */
static void test_no_probing_no_direct_path(void **state)
{
	(void)state;
	world(1, 1, 0);
	w.n[HARD].self.nat.mapping = PUNCH_NAT_UNKNOWN; /* as without -alt */
	introduce(PROBE_SOCKETS_DEFAULT);
	assert_false(run_direct(AGENT_CHECK_TIMEOUT_MS + 1000));
	assert_int_equal(w.n[HARD].pr.state, PROBE_IDLE);
	assert_int_equal(w.n[EASY].pr.state, PROBE_IDLE);
	assert_int_equal(w.n[HARD].a.state, AGENT_STATE_FAILED);
}

/* The whole thing, once: a direct pair, the hard side on the socket that
 * won, every other socket closed, the probes all to the hard side's IP and
 * never one port twice. */
static void check_one_run(int hard_controls)
{
	const struct agent_pair *ph, *pe;
	uint64_t t0 = w.now;

	introduce(PROBE_SOCKETS_DEFAULT);
	assert_true(run_direct(AGENT_CHECK_TIMEOUT_MS));
	(void)hard_controls;
	ph = agent_selected(&w.n[HARD].a);
	pe = agent_selected(&w.n[EASY].a);
	assert_int_equal(ph->sock, AGENT_SOCK_PROBE);
	assert_addr(&agent_pair_remote(&w.n[HARD].a, ph)->addr, &w.n[EASY].pub);
	assert_int_equal(pe->sock, 0);
	assert_true(addr_same_ip(SA(agent_pair_remote(&w.n[EASY].a, pe)->addr),
	                         SA(w.n[HARD].pub)));
	assert_int_equal(w.n[HARD].pr.state, PROBE_WON);
	assert_true(w.n[HARD].kept >= 0);
	for (unsigned k = 0; k < w.n[HARD].n_open; k++)
		assert_int_equal(w.n[HARD].open[k], (int)k == w.n[HARD].kept);
	assert_true(w.n[EASY].pr.state == PROBE_WON ||
	            w.n[EASY].pr.state == PROBE_STOPPED);
	/* the budget: 256 sockets, at most 1,024 probes, at the pace */
	assert_u64(w.n[HARD].pr.packets, PROBE_SOCKETS_DEFAULT);
	assert_true(w.n[EASY].pr.packets <= PROBE_PROBES_DEFAULT);
	assert_true(w.n[EASY].pr.packets <=
	            1 + (w.now - t0) * PROBE_RATE_PER_S / 1000);
	for (size_t i = 0; i < w.n_probe_dst; i++) {
		assert_true(addr_same_ip(SA(w.probe_dst[i]), SA(w.n[HARD].pub)));
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(addr_port(SA(w.probe_dst[i])),
			                     addr_port(SA(w.probe_dst[j])));
	}
}

static void test_hard_controls(void **state)
{
	(void)state;
	world(7, 1, 0);
	check_one_run(1);
}

static void test_easy_controls(void **state)
{
	(void)state;
	world(7, 0, 0);
	check_one_run(0);
}

/* Many runs: the birthday paradox's odds, (1 - 256/64512)^1024 = 1.7 %
 * failures, and the median hit after about 175 probes (0.9 s). */
static void test_many_runs(void **state)
{
	enum { RUNS = 100 };
	uint64_t ms[RUNS];
	unsigned ok = 0;

	(void)state;
	for (uint32_t s = 0; s < RUNS; s++) {
		uint64_t t0;

		world(1000 + s, s & 1, 0);
		t0 = w.now;
		introduce(PROBE_SOCKETS_DEFAULT);
		if (run_direct(AGENT_CHECK_TIMEOUT_MS))
			ms[ok++] = w.now - t0;
	}
	for (unsigned i = 1; i < ok; i++)
		for (unsigned j = i; j > 0 && ms[j - 1] > ms[j]; j--) {
			uint64_t t = ms[j];

			ms[j] = ms[j - 1];
			ms[j - 1] = t;
		}
	print_message("probe: %u of %u runs direct, median %llu ms\n", ok,
	              RUNS, ok ? (unsigned long long)ms[ok / 2] : 0ull);
	assert_true(ok >= 95);
	assert_true(ms[ok / 2] <= 2000);
}

/* With a relay the agents connect through it first; probing's pair then
 * takes over through the upgrade path. */
static void test_upgrade_from_relay(void **state)
{
	(void)state;
	world(7, 1, 1);
	introduce(PROBE_SOCKETS_DEFAULT);
	while (!(w.n[HARD].a.state == AGENT_STATE_CONNECTED &&
	         w.n[EASY].a.state == AGENT_STATE_CONNECTED) &&
	       w.now < 3000)
		step();
	assert_true(agent_pair_is_relayed(&w.n[HARD].a,
	                                  agent_selected(&w.n[HARD].a)));
	assert_true(run_direct(AGENT_CHECK_TIMEOUT_MS));
	assert_true(w.n[HARD].n_switches >= 1);
	assert_true(w.n[EASY].n_switches >= 1);
	assert_int_equal(agent_selected(&w.n[HARD].a)->sock, AGENT_SOCK_PROBE);
}

/* The easy side's NAT has moved its mapping after the server saw it, as a
 * filterless Linux NAT does after a stray entry (probe.c, "Moved ports";
 * seen in the lab's symmetric-plain): its probes leave from another port
 * than the one the hard side's sockets aimed at.  Its check through the
 * hard side's relay shows the new port, and the hard side aims there too. */
static void test_moved_port(void **state)
{
	struct sockaddr_storage moved = sa(EASY_PUB);
	const struct agent_pair *ph;

	(void)state;
	world(7, 1, 1);
	w.easy_moved = 52372;
	addr_set_port(SA(moved), w.easy_moved);
	introduce(PROBE_SOCKETS_DEFAULT);
	assert_true(run_direct(AGENT_CHECK_TIMEOUT_MS));
	assert_int_equal(agent_selected(&w.n[HARD].a)->sock, AGENT_SOCK_PROBE);
	ph = agent_selected(&w.n[HARD].a);
	assert_addr(&agent_pair_remote(&w.n[HARD].a, ph)->addr, &moved);
	/* each socket aimed at both ports, and at nothing else */
	assert_int_equal(w.n[HARD].pr.n_ports, 2);
	assert_u64(w.n[HARD].pr.packets, 2 * PROBE_SOCKETS_DEFAULT);
}

/* A sequential hard NAT: the server saw port 40000 and the alternate
 * address 40001 (PUNCH-NAT sequential, delta 1), and every later mapping
 * takes the next port.  The easy side probes 40130, 40131, 40129, ...
 * first (the middle of where the hard side's probe sockets are) and
 * lands at once; announced as random, the same NAT costs the birthday
 * paradox's hundreds. */
static void test_sequential_prediction(void **state)
{
	uint64_t predicted_probes, random_probes;

	(void)state;
	for (int predict = 1; predict >= 0; predict--) {
		world(7, 1, 0);
		w.hard_seq = 40002;
		w.n[HARD].self.nat.ports = predict ? PUNCH_PORTS_SEQUENTIAL :
		                                     PUNCH_PORTS_RANDOM;
		w.n[HARD].self.nat.delta = 1;
		introduce(PROBE_SOCKETS_DEFAULT);
		assert_true(run_direct(AGENT_CHECK_TIMEOUT_MS));
		if (predict) {
			predicted_probes = w.n[EASY].pr.packets;
			assert_int_equal(w.n[EASY].pr.predict_delta, 1);
			/* middle-out from B + PROBE_PREDICT_MID */
			assert_true(w.n_probe_dst >= 1);
			assert_int_equal(addr_port(SA(w.probe_dst[0])),
			                 40000 + PROBE_PREDICT_MID);
		} else {
			random_probes = w.n[EASY].pr.packets;
			assert_int_equal(w.n[EASY].pr.predict_delta, 0);
		}
	}
	print_message("probe: sequential NAT: %llu probes predicted, %llu random\n",
	              (unsigned long long)predicted_probes,
	              (unsigned long long)random_probes);
	assert_true(predicted_probes <= 3);
	assert_true(random_probes > 4 * predicted_probes);
}

/* A delta beyond what sequential means (PUNCH-NAT from a hostile or
 * confused peer) predicts nothing: the probes stay random. */
static void test_prediction_bounds(void **state)
{
	(void)state;
	world(7, 1, 0);
	w.n[HARD].self.nat.ports = PUNCH_PORTS_SEQUENTIAL;
	w.n[HARD].self.nat.delta = 30000;
	introduce(PROBE_SOCKETS_DEFAULT);
	assert_int_equal(w.n[EASY].pr.predict_delta, 0);
	/* near the top of the range, only the ports below 65536 */
	world(7, 1, 0);
	addr_set_port(SA(w.n[HARD].self.observed), 65530);
	w.n[HARD].self.nat.ports = PUNCH_PORTS_SEQUENTIAL;
	w.n[HARD].self.nat.delta = 2;
	w.drop_probes = 1;
	introduce(PROBE_SOCKETS_DEFAULT);
	while (w.n_probe_dst < 10)
		step();
	assert_int_equal(addr_port(SA(w.probe_dst[0])), 65534);
	assert_int_equal(addr_port(SA(w.probe_dst[1])), 65532);
	assert_int_equal(w.n[EASY].pr.predicted_sent, 2);
	assert_int_equal(w.n[EASY].pr.predicted, PROBE_PREDICT_MAX);
	for (size_t i = 0; i < w.n_probe_dst; i++)
		assert_true(addr_port(SA(w.probe_dst[i])) >= PROBE_PORT_MIN);
	/* the PROBE_PREDICT_MAX first probes: B + 1 .. B + max, each once */
	world(7, 1, 0);
	addr_set_port(SA(w.n[HARD].self.observed), 30000);
	w.n[HARD].self.nat.ports = PUNCH_PORTS_SEQUENTIAL;
	w.n[HARD].self.nat.delta = -1;
	w.drop_probes = 1;
	introduce(PROBE_SOCKETS_DEFAULT);
	while (w.n_probe_dst < PROBE_PREDICT_MAX)
		step();
	{
		static uint8_t seen[PROBE_PREDICT_MAX + 1];

		memset(seen, 0, sizeof(seen));
		for (size_t i = 0; i < PROBE_PREDICT_MAX; i++) {
			int k = 30000 - addr_port(SA(w.probe_dst[i]));

			assert_true(k >= 1 && k <= PROBE_PREDICT_MAX);
			assert_false(seen[k]);
			seen[k] = 1;
		}
	}
}

/* No probe lands: the easy side stops after exactly its budget of
 * distinct ports, the hard side closes every socket at its deadline. */
static void test_exhausted(void **state)
{
	(void)state;
	world(7, 1, 1);
	w.drop_probes = 1;
	introduce(PROBE_SOCKETS_DEFAULT);
	while (w.now < 1000 + 10000)
		step();
	assert_int_equal(w.n[EASY].pr.state, PROBE_EXHAUSTED);
	assert_u64(w.n[EASY].pr.packets, PROBE_PROBES_DEFAULT);
	assert_size(w.n_probe_dst, PROBE_PROBES_DEFAULT);
	assert_int_equal(w.n[HARD].pr.state, PROBE_EXHAUSTED);
	for (unsigned k = 0; k < w.n[HARD].n_open; k++)
		assert_false(w.n[HARD].open[k]);
	/* the relay carries on */
	assert_int_equal(w.n[HARD].a.state, AGENT_STATE_CONNECTED);
	/* and not again within 5 minutes */
	assert_false(probe_may_start(&w.n[EASY].pr, w.now));
	assert_int_equal(probe_start(&w.n[EASY].pr, PROBE_ROLE_EASY,
	                             SA(w.n[HARD].pub), 0, w.now),
	                 -1);
	assert_true(probe_may_start(&w.n[EASY].pr, 1000 + PROBE_HOLDOFF_MS));
}

/* A check on a probe socket that the peer did not send (wrong password),
 * or from an address other than the easy side's, wins nothing; nor does an
 * answer to the easy side's probe from another IP, or unauthenticated. */
static void test_forged_hits(void **state)
{
	struct sockaddr_storage other = sa("203.0.113.99:7000"), from;
	uint8_t buf[PUNCH_MSG_MAX], txid[STUN_TXID_LEN] = { 1 };
	struct stun_writer wr;
	struct stun_msg m;
	int n;

	(void)state;
	world(7, 1, 0);
	introduce(PROBE_SOCKETS_DEFAULT);
	step();
	/* a check with the easy side's username but the wrong password */
	stun_writer_init(&wr, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, txid);
	stun_put_bytes(&wr, STUN_ATTR_USERNAME, "u0:u1", 5);
	stun_put_integrity(&wr, (const uint8_t *)"guess", 5);
	stun_put_fingerprint(&wr);
	n = stun_writer_finish(&wr);
	decode_ok(&m, buf, (size_t)n);
	assert_int_equal(probe_on_stun(&w.n[HARD].pr, 3, SA(w.n[EASY].pub), buf,
	                               (size_t)n, &m, w.now),
	                 1);
	assert_int_equal(w.n[HARD].pr.state, PROBE_RUNNING);
	/* the easy side's real check, from another address */
	n = agent_build_check(&w.n[EASY].a, txid, buf, sizeof(buf));
	decode_ok(&m, buf, (size_t)n);
	assert_int_equal(probe_on_stun(&w.n[HARD].pr, 3, SA(other), buf,
	                               (size_t)n, &m, w.now),
	                 1);
	assert_int_equal(w.n[HARD].pr.state, PROBE_RUNNING);
	assert_u64(w.n[HARD].pr.dropped, 2);
	/* the real check from the real address wins */
	assert_int_equal(probe_on_stun(&w.n[HARD].pr, 3, SA(w.n[EASY].pub), buf,
	                               (size_t)n, &m, w.now),
	                 1);
	assert_int_equal(w.n[HARD].pr.state, PROBE_WON);
	assert_int_equal(w.n[HARD].kept, 3);

	/* The easy side: a success "answer" with a probe's transaction id
	 * from another IP, then one without the right integrity. */
	while (w.n[EASY].pr.sent == 0)
		step();
	memcpy(txid, w.n[EASY].pr.txid_base, STUN_TXID_LEN);
	from = sa(HARD_IP);
	addr_set_port(SA(from), 4321);
	stun_writer_init(&wr, buf, sizeof(buf), STUN_BINDING, STUN_SUCCESS, txid);
	stun_put_xor_addr(&wr, STUN_ATTR_XOR_MAPPED_ADDRESS, SA(w.n[EASY].pub));
	agent_put_response_integrity(&w.n[HARD].a, &wr);
	stun_put_fingerprint(&wr);
	n = stun_writer_finish(&wr);
	decode_ok(&m, buf, (size_t)n);
	assert_int_equal(probe_on_stun(&w.n[EASY].pr, PROBE_MAIN, SA(other), buf,
	                               (size_t)n, &m, w.now),
	                 1);
	assert_int_equal(w.n[EASY].pr.state, PROBE_RUNNING);
	buf[n - 12] ^= 1; /* inside MESSAGE-INTEGRITY's HMAC */
	stun_writer_init(&wr, buf, sizeof(buf), STUN_BINDING, STUN_SUCCESS, txid);
	stun_put_xor_addr(&wr, STUN_ATTR_XOR_MAPPED_ADDRESS, SA(w.n[EASY].pub));
	stun_put_integrity(&wr, (const uint8_t *)"guess", 5);
	stun_put_fingerprint(&wr);
	n = stun_writer_finish(&wr);
	decode_ok(&m, buf, (size_t)n);
	assert_int_equal(probe_on_stun(&w.n[EASY].pr, PROBE_MAIN, SA(from), buf,
	                               (size_t)n, &m, w.now),
	                 1);
	assert_int_equal(w.n[EASY].pr.state, PROBE_RUNNING);
	assert_u64(w.n[EASY].pr.dropped, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_role),
		cmocka_unit_test(test_no_probing_no_direct_path),
		cmocka_unit_test(test_hard_controls),
		cmocka_unit_test(test_easy_controls),
		cmocka_unit_test(test_many_runs),
		cmocka_unit_test(test_upgrade_from_relay),
		cmocka_unit_test(test_moved_port),
		cmocka_unit_test(test_sequential_prediction),
		cmocka_unit_test(test_prediction_bounds),
		cmocka_unit_test(test_exhausted),
		cmocka_unit_test(test_forged_hits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
