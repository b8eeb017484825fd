/*
 * An in-memory network for the agent tests (test_agent.c).
 *
 * Two agents, alice and bob, are wired back to back: the send callback
 * queues datagrams, and step() delivers them a millisecond later (so a
 * round trip takes 2 ms of the fake clock), routing by address the way a
 * LAN and two NATs would.  A per-test filter drops, duplicates or rewrites
 * datagrams to simulate loss and NAT behaviour.
 *
 * A node may have a relayed address (node_relay): what it sends on
 * AGENT_SOCK_RELAY leaves from that address, and what is sent to that
 * address reaches it on AGENT_SOCK_RELAY, as a TURN client would hand it
 * over.
 *
 * Everything is static inline, as in unit.h, so each test file takes only
 * what it uses.
 */
#ifndef PUNCH_TEST_AGENT_NET_H
#define PUNCH_TEST_AGENT_NET_H

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "agent.h"
#include "log.h"
#include "punch_attr.h"

#define assert_state(a, expected)                                             \
	do {                                                                  \
		int s_ = (a)->state, e_ = (expected);                         \
		if (s_ != e_) {                                               \
			print_error("%s:%d: %s: expected %s, saw %s at %llu " \
			            "ms\n",                                   \
			            __FILE__, __LINE__, #a,                   \
			            agent_state_str(e_), agent_state_str(s_), \
			            (unsigned long long)net.now);             \
			fail();                                               \
		}                                                             \
	} while (0)

enum {
	QUEUE_MAX = 1024,
	LOG_MAX = 60000,
	STATES_MAX = 16,
	ALICE = 0, /* "alice" < "bob": alice controls */
	BOB = 1,
};

/* ---- the network ------------------------------------------------------ */

/* filter_direct_blocked lets direct datagrams through again */
static int direct_open;

static const char *const names[2] = { "alice", "bob" };

struct node {
	struct agent a;
	struct punch_peer self;       /* what PEER-INFO says about it */
	struct sockaddr_storage host; /* IPv4 host address */
	struct sockaddr_storage pub;  /* its NAT's mapping, or host */
	struct sockaddr_storage relay; /* its relayed address (has_relay) */
	int has_relay;
	int natted;
	/* the agent's state changes, as on_state reported them */
	int states[STATES_MAX];
	uint64_t state_at[STATES_MAX];
	size_t n_states;
	/* the chosen pair's changes while connected (on_switch) */
	size_t n_switches;
	uint64_t switch_at;
};

struct dgram {
	int from;       /* node index */
	int sock;
	struct sockaddr_storage dst;
	uint8_t buf[PUNCH_MSG_MAX];
	size_t len;
	int ttl;
	uint64_t at;
};

/* What was sent, for the tests to inspect afterwards. */
struct sent_info {
	int from, ttl, method, cls, use_candidate;
	struct sockaddr_storage dst;
	uint8_t txid[STUN_TXID_LEN];
	uint64_t at;
};

/* Return 0 to drop d; may rewrite *src (a NAT's mapping) or set *dup to
 * deliver it twice. */
typedef int filter_fn(const struct dgram *d, int to,
                      struct sockaddr_storage *src, int *dup);

static struct {
	struct node n[2];
	struct dgram q[QUEUE_MAX];
	size_t nq;
	struct sent_info log[LOG_MAX];
	size_t nlog;
	uint64_t now;
	int lan;        /* the host addresses reach each other */
	filter_fn *filter;
	uint32_t rng;
	/* a symmetric NAT in front of bob: its mapping toward alice */
	int bob_symmetric;
	struct sockaddr_storage bob_sym;
	size_t delivered, dropped;
} net;

static inline uint32_t rnd(void)
{
	/* xorshift32: deterministic loss patterns */
	net.rng ^= net.rng << 13;
	net.rng ^= net.rng >> 17;
	net.rng ^= net.rng << 5;
	return net.rng;
}

static inline void net_send(void *ctx, int sock, const struct sockaddr *to,
                            const uint8_t *buf, size_t len, int ttl)
{
	struct node *n = ctx;
	struct dgram *d;
	struct sent_info *s;
	struct stun_msg m;

	assert_true(len <= PUNCH_MSG_MAX);
	assert_true(sock == (to->sa_family == AF_INET6) ||
	            (sock == AGENT_SOCK_RELAY && n->has_relay));
	decode_ok(&m, buf, len);
	assert_true(m.present & STUN_HAS_FINGERPRINT);
	assert_true(net.nlog < LOG_MAX);
	s = &net.log[net.nlog++];
	s->from = (int)(n - net.n);
	s->ttl = ttl;
	s->method = m.method;
	s->cls = m.cls;
	s->use_candidate = !!(m.present & STUN_HAS_USE_CANDIDATE);
	memset(&s->dst, 0, sizeof(s->dst));
	memcpy(&s->dst, to, addr_len(to));
	memcpy(s->txid, m.txid, STUN_TXID_LEN);
	s->at = net.now;

	assert_true(net.nq < QUEUE_MAX);
	d = &net.q[net.nq++];
	d->from = s->from;
	d->sock = sock;
	d->dst = s->dst;
	memcpy(d->buf, buf, len);
	d->len = len;
	d->ttl = ttl;
	d->at = net.now;
}

/* Which node a datagram reaches, on which of its sockets, and from which
 * source address. */
static inline int route(const struct dgram *d, struct sockaddr_storage *src,
                        int *sock)
{
	const struct node *x = &net.n[d->from];
	int y = !d->from;
	const struct node *n = &net.n[y];

	*src = d->sock == AGENT_SOCK_RELAY ? x->relay : x->pub;
	*sock = 0;
	if (n->has_relay && addr_equal(SA(d->dst), SA(n->relay))) {
		*sock = AGENT_SOCK_RELAY;
		return y;
	}
	if (net.lan && d->sock != AGENT_SOCK_RELAY &&
	    addr_equal(SA(d->dst), SA(n->host))) {
		*src = x->host;
		return y;
	}
	if (addr_equal(SA(d->dst), SA(n->pub)))
		return y;
	if (net.bob_symmetric && y == BOB &&
	    addr_equal(SA(d->dst), SA(net.bob_sym)))
		return y;
	return -1;
}

/* Is d a direct datagram (through no relay)? */
static inline int is_direct(const struct dgram *d, int to)
{
	return d->sock != AGENT_SOCK_RELAY &&
	       !(net.n[to].has_relay &&
	         addr_equal(SA(d->dst), SA(net.n[to].relay)));
}

static inline void deliver_one(struct dgram *d)
{
	struct sockaddr_storage src;
	struct stun_msg m;
	struct node *n;
	int to, sock, dup = 0;

	/* a small TTL dies on the way (see send_open_probes()) */
	if (d->ttl)
		return;
	if ((to = route(d, &src, &sock)) < 0) {
		net.dropped++;
		return;
	}
	if (net.filter && !net.filter(d, to, &src, &dup)) {
		net.dropped++;
		return;
	}
	n = &net.n[to];
	for (int i = 0; i <= dup; i++) {
		decode_ok(&m, d->buf, d->len);
		net.delivered++;
		agent_on_stun(&n->a, sock, SA(src), d->buf, d->len, &m,
		              net.now);
	}
}

/* One millisecond: everything sent before now arrives, then timers run. */
static inline void step(void)
{
	size_t n = net.nq;
	static struct dgram batch[QUEUE_MAX];

	memcpy(batch, net.q, n * sizeof(batch[0]));
	memmove(net.q, net.q + n, (net.nq - n) * sizeof(net.q[0]));
	net.nq -= n;
	for (size_t i = 0; i < n; i++)
		deliver_one(&batch[i]);
	/* A deadline in the past would make the caller's event loop spin
	 * (a timer of 0 ms, again and again). */
	for (int i = 0; i < 2; i++) {
		uint64_t next = agent_tick(&net.n[i].a, net.now);

		if (next <= net.now)
			print_error("%s at %llu ms: agent_tick() says %llu\n",
			            names[i], (unsigned long long)net.now,
			            (unsigned long long)next);
		assert_true(next > net.now);
	}
	net.now++;
}

static inline void run_until(uint64_t t)
{
	while (net.now <= t)
		step();
}

static inline int both(enum agent_state state)
{
	return net.n[0].a.state == state && net.n[1].a.state == state;
}

/* Run until both agents are in `state`, at most `limit` ms from now. */
static inline void run_until_both(int state, uint64_t limit)
{
	uint64_t end = net.now + limit;

	while (!both(state) && net.now < end)
		step();
	if (!both(state))
		print_error("after %llu ms: alice %s, bob %s\n",
		            (unsigned long long)net.now,
		            agent_state_str(net.n[0].a.state),
		            agent_state_str(net.n[1].a.state));
	assert_true(both(state));
}

/* ---- the nodes -------------------------------------------------------- */

static inline void on_state(void *ctx, int old, int state)
{
	struct node *n = ctx;

	(void)old;
	assert_true(n->n_states < STATES_MAX);
	n->states[n->n_states] = state;
	n->state_at[n->n_states++] = net.now;
}

static inline void on_switch(void *ctx, int old_pair)
{
	struct node *n = ctx;

	assert_non_null(agent_pair_at(&n->a, old_pair));
	n->n_switches++;
	n->switch_at = net.now;
}

/* host and pub: "IP:port"; pub NULL when not behind a NAT. */
static inline void node_init(int i, const char *host, const char *pub,
                             uint64_t session)
{
	struct node *n = &net.n[i];
	struct punch_peer *p = &n->self;
	char ufrag[16], pwd[40];

	memset(p, 0, sizeof(*p));
	n->host.ss_family = AF_INET;
	assert_int_equal(addr_parse(&n->host, host), 0);
	n->natted = pub != NULL;
	n->pub = n->host;
	if (pub)
		assert_int_equal(addr_parse(&n->pub, pub), 0);
	snprintf(ufrag, sizeof(ufrag), "u%s%u", names[i], (unsigned)session);
	snprintf(pwd, sizeof(pwd), "pwd-%s-%u-0123456789", names[i],
	         (unsigned)session);
	snprintf(p->id, sizeof(p->id), "%s", names[i]);
	snprintf(p->peer_id, sizeof(p->peer_id), "%s", names[!i]);
	snprintf(p->ufrag, sizeof(p->ufrag), "%s", ufrag);
	snprintf(p->pwd, sizeof(p->pwd), "%s", pwd);
	p->session = session;
	p->cand[0].type = CAND_HOST;
	p->cand[0].priority = punch_cand_priority(CAND_HOST, 65279);
	p->cand[0].addr = n->host;
	p->n_cand = 1;
	if (n->natted) {
		p->cand[1].type = CAND_SRFLX;
		p->cand[1].priority = punch_cand_priority(CAND_SRFLX, 65535);
		p->cand[1].addr = n->pub;
		p->n_cand = 2;
	}
	/* what the server saw */
	p->observed = n->pub;
	p->has_observed = 1;

	agent_init(&n->a, strcmp(names[i], names[!i]) < 0, ufrag, pwd,
	           net_send, n);
	agent_set_socket(&n->a, 0, p->cand[0].priority);
	n->a.natted = n->natted;
	n->a.on_state = on_state;
	n->a.on_switch = on_switch;
	n->n_states = 0;
	n->n_switches = 0;
}

/* Give node i the relayed address `relay` ("IP:port"): a candidate in
 * what PEER-INFO says about it, and the agent's third socket. */
static inline void node_relay(int i, const char *relay)
{
	struct node *n = &net.n[i];
	struct punch_candidate *c = &n->self.cand[n->self.n_cand++];

	n->relay.ss_family = AF_INET;
	assert_int_equal(addr_parse(&n->relay, relay), 0);
	n->has_relay = 1;
	c->type = CAND_RELAY;
	c->priority = punch_cand_priority(CAND_RELAY, 65535);
	c->addr = n->relay;
	agent_set_relay(&n->a, AF_INET, c->priority, 0, net.now);
}

/* The usual topology: alice and bob on one LAN, each behind a NAT whose
 * public addresses reach each other (hairpinning). */
static inline void nodes_lan_nat(void)
{
	node_init(ALICE, "10.0.0.1:5000", "203.0.113.1:6000", 1);
	node_init(BOB, "10.0.0.2:5000", "203.0.113.2:6000", 2);
	net.lan = 1;
}

/* PEER-INFO arrives at both. */
static inline void introduce(void)
{
	agent_set_remote(&net.n[ALICE].a, &net.n[BOB].self, net.now);
	agent_set_remote(&net.n[BOB].a, &net.n[ALICE].self, net.now);
}

static inline int net_setup(void **state)
{
	(void)state;
	memset(&net, 0, sizeof(net));
	direct_open = 0;
	net.rng = 0x12345678;
	net.now = 1000;
	log_set_level(LOG_WARN);
	return 0;
}

static inline const struct punch_candidate *selected_remote(int i)
{
	const struct agent_pair *p = agent_selected(&net.n[i].a);

	assert_non_null(p);
	return agent_pair_remote(&net.n[i].a, p);
}

static inline int pair_to(const struct agent *a,
                          const struct sockaddr_storage *addr)
{
	for (size_t i = 0; i < a->n_pairs; i++)
		if (addr_equal(SA(a->remote[a->pairs[i].remote].addr),
		               SA(*addr)))
			return (int)i;
	return -1;
}

/* A check with the given USERNAME (or none) and MESSAGE-INTEGRITY keyed
 * with pwd (or none), as a peer or an impostor would send it. */
static inline size_t forge_check(uint8_t *buf, const char *username,
                                 const char *pwd, int use_candidate)
{
	static const uint8_t txid[STUN_TXID_LEN] = { 9, 8, 7, 6, 5, 4, 3, 2,
		                                     1, 0, 1, 2 };
	struct stun_writer w;
	int n;

	stun_writer_init(&w, buf, PUNCH_MSG_MAX, STUN_BINDING, STUN_REQUEST,
	                 txid);
	if (username)
		stun_put_bytes(&w, STUN_ATTR_USERNAME, username,
		               strlen(username));
	stun_put_u32(&w, STUN_ATTR_PRIORITY,
	             punch_cand_priority(CAND_PRFLX, 1));
	stun_put_u64(&w, STUN_ATTR_ICE_CONTROLLING, 1);
	if (use_candidate)
		stun_put_bytes(&w, STUN_ATTR_USE_CANDIDATE, NULL, 0);
	if (pwd)
		stun_put_integrity(&w, (const uint8_t *)pwd, strlen(pwd));
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	assert_true(n > 0);
	return (size_t)n;
}

static inline int feed_check(struct agent *a, const uint8_t *buf, size_t len,
                             const struct sockaddr_storage *from)
{
	struct stun_msg m;

	decode_ok(&m, buf, len);
	return agent_on_stun(a, 0, SA(*from), buf, len, &m, net.now);
}

/* Set to lose everything from now on (with filter_drop_all). */
static int drop_all;

/* Only relayed datagrams get through (a symmetric NAT against a
 * filtering one, or UDP between the peers blocked), unless direct_open. */

static inline int filter_direct_blocked(const struct dgram *d, int to,
                                        struct sockaddr_storage *src, int *dup)
{
	(void)src;
	(void)dup;
	return direct_open || !is_direct(d, to);
}

static inline int filter_drop_all(const struct dgram *d, int to,
                                  struct sockaddr_storage *src, int *dup)
{
	(void)d;
	(void)to;
	(void)src;
	(void)dup;
	return !drop_all;
}

#endif
