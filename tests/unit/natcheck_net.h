/*
 * A simulated network for test_natcheck.c: natcheck's sockets on a host
 * (10.0.0.2) behind one NAT (public 203.0.113.10), and punch's own Binding
 * service (binding.c, the server's pure half) on four addresses:
 *
 *	198.51.100.10:3478  198.51.100.10:3479  198.51.100.11:3478  198.51.100.11:3479
 *
 * The NAT is configured by RFC 4787's three behaviours of mapping and
 * filtering, a port allocation rule, hairpinning and a mapping lifetime.
 * Every datagram takes 10 ms each way; the clock is simulated, so the
 * tests measure natcheck's time without sleeping.
 *
 * Everything is static, as in agent_net.h.
 */
#ifndef PUNCH_TEST_NATCHECK_NET_H
#define PUNCH_TEST_NATCHECK_NET_H

#include "unit.h"

#include "binding.h"
#include "natcheck.h"

enum {
	SIM_DELAY_MS = 10,
	SIM_MAPS_MAX = 128,
	SIM_PERMITS_MAX = 8,
	SIM_QUEUE_MAX = 256,
	SIM_LOCAL_PORT0 = 40000, /* socket s is bound to 40000 + 2s */
	SIM_PUBLIC_PORT0 = 50000, /* where allocation starts when not kept */
};

enum sim_alloc {
	SIM_PRESERVE = 0, /* keep the local port when free */
	SIM_SEQUENTIAL,   /* next port, sim.step apart */
	SIM_RANDOM,
};

struct sim_map {
	int used;
	uint16_t in_port;                 /* host's local port */
	struct sockaddr_storage dst;      /* first destination (the key) */
	uint16_t pub_port;
	uint64_t last;
	struct sockaddr_storage permit[SIM_PERMITS_MAX];
	size_t n_permit;
};

struct sim_pkt {
	int to_server;                    /* else to the NAT's public side */
	struct sockaddr_storage src, dst;
	uint8_t buf[600];
	size_t len;
	uint64_t at;
};

static struct {
	/* the NAT */
	int no_nat;         /* the host has a public address, no filter */
	enum natcheck_behaviour mapping, filtering;
	enum sim_alloc alloc;
	int step;
	int hairpin;
	uint64_t lifetime_ms;
	int drop_all;                     /* UDP blocked */
	int drop_sock;                    /* 1 + a socket whose datagrams are lost */
	uint16_t next_port;
	uint32_t rng;
	struct sim_map map[SIM_MAPS_MAX];
	/* the server */
	struct binding_service svc;
	int ignore_change;                /* answers CHANGE-REQUEST from where it was asked */
	/* the wire */
	struct sim_pkt q[SIM_QUEUE_MAX];
	size_t nq;
	uint64_t now;
	struct natcheck nc;
	size_t sent;
} sim;


static inline struct sockaddr_storage sim_addr(const char *s)
{
	struct sockaddr_storage a = { .ss_family = AF_INET };

	assert_int_equal(addr_parse(&a, s), 0);
	return a;
}

static inline uint32_t sim_rnd(void)
{
	sim.rng ^= sim.rng << 13;
	sim.rng ^= sim.rng >> 17;
	sim.rng ^= sim.rng << 5;
	return sim.rng;
}

/* A NAT of the given behaviour, and a server with (alt) or without an
 * alternate address. */
static inline void sim_init(enum natcheck_behaviour mapping,
                            enum natcheck_behaviour filtering, int alt)
{
	static const char *const local[4] = {
		"198.51.100.10:3478", "198.51.100.10:3479",
		"198.51.100.11:3478", "198.51.100.11:3479"
	};

	memset(&sim, 0, sizeof(sim));
	sim.mapping = mapping;
	sim.filtering = filtering;
	sim.lifetime_ms = 120000;
	sim.rng = 0x2545f491;
	sim.next_port = SIM_PUBLIC_PORT0;
	sim.step = 1;
	sim.now = 1000;
	for (int i = 0; i < (alt ? 4 : 1); i++) {
		sim.svc.local[i] = sim_addr(local[i]);
		sim.svc.have[i] = 1;
	}
	sim.svc.rfc5780 = alt;
}

static inline struct sockaddr_storage sim_public(uint16_t port)
{
	struct sockaddr_storage a = sim_addr("203.0.113.10:0");

	addr_set_port((struct sockaddr *)&a, port);
	return a;
}

static inline int sim_port_taken(uint16_t port)
{
	for (int i = 0; i < SIM_MAPS_MAX; i++)
		if (sim.map[i].used && sim.map[i].pub_port == port)
			return 1;
	return 0;
}

static inline uint16_t sim_alloc_port(uint16_t in_port)
{
	uint16_t p;

	switch (sim.alloc) {
	case SIM_PRESERVE:
		p = in_port;
		while (sim_port_taken(p))
			p++;
		return p;
	case SIM_SEQUENTIAL:
		do {
			p = sim.next_port;
			sim.next_port = (uint16_t)(sim.next_port + sim.step);
		} while (sim_port_taken(p));
		return p;
	default:
		do {
			p = (uint16_t)(1024 + sim_rnd() % 64000);
		} while (sim_port_taken(p));
		return p;
	}
}

/* Forget mappings idle longer than the lifetime. */
static inline void sim_expire(void)
{
	for (int i = 0; i < SIM_MAPS_MAX; i++)
		if (sim.map[i].used && sim.now - sim.map[i].last >= sim.lifetime_ms)
			sim.map[i].used = 0;
}

static inline int sim_map_matches(const struct sim_map *m, uint16_t in_port,
                                  const struct sockaddr *dst)
{
	if (!m->used || m->in_port != in_port)
		return 0;
	switch (sim.mapping) {
	case NATCHECK_ADDRESS:
		return addr_same_ip(SA(m->dst), dst);
	case NATCHECK_ADDRESS_PORT:
		return addr_equal(SA(m->dst), dst);
	default:
		return 1;
	}
}

/* The mapping for an outbound datagram, made if needed, with dst added
 * to what its filter admits. */
static inline struct sim_map *sim_outbound(uint16_t in_port,
                                           const struct sockaddr *dst)
{
	struct sim_map *m = NULL;
	int i;

	sim_expire();
	for (i = 0; i < SIM_MAPS_MAX; i++)
		if (sim_map_matches(&sim.map[i], in_port, dst)) {
			m = &sim.map[i];
			break;
		}
	if (!m) {
		for (i = 0; i < SIM_MAPS_MAX && sim.map[i].used; i++)
			;
		assert_true(i < SIM_MAPS_MAX);
		m = &sim.map[i];
		memset(m, 0, sizeof(*m));
		m->used = 1;
		m->in_port = in_port;
		memcpy(&m->dst, dst, addr_len(dst));
		m->pub_port = sim_alloc_port(in_port);
	}
	m->last = sim.now;
	for (size_t k = 0; k < m->n_permit; k++)
		if (addr_equal(SA(m->permit[k]), dst))
			return m;
	if (m->n_permit < SIM_PERMITS_MAX)
		memcpy(&m->permit[m->n_permit++], dst, addr_len(dst));
	return m;
}

static inline int sim_admits(const struct sim_map *m, const struct sockaddr *from)
{
	for (size_t k = 0; k < m->n_permit; k++) {
		if (sim.filtering == NATCHECK_ADDRESS &&
		    addr_same_ip(SA(m->permit[k]), from))
			return 1;
		if (addr_equal(SA(m->permit[k]), from))
			return 1;
	}
	return sim.filtering == NATCHECK_INDEPENDENT;
}

static inline void sim_queue(int to_server, const struct sockaddr *src,
                             const struct sockaddr *dst, const uint8_t *buf,
                             size_t len)
{
	struct sim_pkt *p;

	assert_true(sim.nq < SIM_QUEUE_MAX);
	assert_true(len <= sizeof(p->buf));
	p = &sim.q[sim.nq++];
	memset(p, 0, sizeof(*p));
	p->to_server = to_server;
	memcpy(&p->src, src, addr_len(src));
	memcpy(&p->dst, dst, addr_len(dst));
	memcpy(p->buf, buf, len);
	p->len = len;
	p->at = sim.now + SIM_DELAY_MS;
}

static inline uint16_t sim_local_port(int s)
{
	return (uint16_t)(SIM_LOCAL_PORT0 + 2 * s);
}

static inline struct sockaddr_storage sim_host(uint16_t port)
{
	struct sockaddr_storage a = sim_addr(sim.no_nat ? "203.0.113.10:0" : "10.0.0.2:0");

	addr_set_port((struct sockaddr *)&a, port);
	return a;
}

/* A datagram from the host's socket s leaves through the NAT. */
static inline void sim_send(int s, const struct sockaddr *to,
                            const uint8_t *buf, size_t len)
{
	struct sockaddr_storage src = sim_host(sim_local_port(s));
	struct sockaddr_storage pub = sim_public(0);
	int hairpin = addr_same_ip(to, SA(pub));

	sim.sent++;
	if (sim.drop_all || sim.drop_sock == s + 1)
		return;
	if (!sim.no_nat) {
		struct sim_map *m = sim_outbound(sim_local_port(s), to);

		src = sim_public(m->pub_port);
		if (hairpin && !sim.hairpin)
			return;
	}
	/* hairpinned traffic comes back to the NAT's public side */
	sim_queue(!hairpin, SA(src), to, buf, len);
}

static inline void sim_at_server(const struct sim_pkt *p)
{
	uint8_t out[BINDING_RESPONSE_MAX];
	struct binding_reply reply;
	int sock = -1;

	for (int i = 0; i < BINDING_SOCKETS_MAX; i++)
		if (sim.svc.have[i] && addr_equal(SA(sim.svc.local[i]), SA(p->dst)))
			sock = i;
	if (sock < 0)
		return; /* nobody there */
	if (binding_handle(&sim.svc, sock, p->buf, p->len, SA(p->src), out,
	                   sizeof(out), &reply, NULL) != BINDING_REPLY)
		return;
	if (sim.ignore_change)
		reply.sock = sock;
	sim_queue(0, SA(sim.svc.local[reply.sock]), SA(reply.to), out,
	          reply.len);
}

/* A datagram reaches the NAT's public side (or the host, without NAT). */
static inline void sim_inbound(const struct sim_pkt *p)
{
	uint16_t port = addr_port(SA(p->dst)), in_port = port;

	if (sim.drop_all)
		return;
	if (!sim.no_nat) {
		struct sim_map *m = NULL;

		sim_expire();
		for (int i = 0; i < SIM_MAPS_MAX; i++)
			if (sim.map[i].used && sim.map[i].pub_port == port)
				m = &sim.map[i];
		/* hairpinned: the NAT's own address, admitted */
		if (!m || (!addr_same_ip(SA(p->src), SA(p->dst)) &&
		           !sim_admits(m, SA(p->src))))
			return;
		m->last = sim.now; /* inbound refreshes too (RFC 4787 REQ-6) */
		in_port = m->in_port;
	}
	for (int s = 0; s < NATCHECK_SOCK_MAX; s++)
		if (sim_local_port(s) == in_port)
			natcheck_on_recv(&sim.nc, s, SA(p->src), p->buf, p->len,
			                 sim.now);
}

static inline void sim_deliver_due(void)
{
	size_t i = 0;

	while (i < sim.nq) {
		struct sim_pkt p;

		if (sim.q[i].at > sim.now) {
			i++;
			continue;
		}
		p = sim.q[i];
		memmove(&sim.q[i], &sim.q[i + 1], (sim.nq - i - 1) * sizeof(p));
		sim.nq--;
		if (p.to_server)
			sim_at_server(&p);
		else
			sim_inbound(&p);
	}
}

/* Run natcheck to the end; returns the simulated time it took. */
static inline uint64_t sim_run(int flags)
{
	static const uint8_t rnd[16] = "0123456789abcdef";
	struct sockaddr_storage s4 = sim_addr("198.51.100.10:3478");
	uint64_t start = sim.now;
	struct natcheck_tx tx;

	assert_int_equal(natcheck_init(&sim.nc, SA(s4), NULL, flags, rnd, sim.now), 0);
	for (int s = 0; s < NATCHECK_SOCK_MAX; s++)
		if (natcheck_sock_family(&sim.nc, s) == AF_INET) {
			struct sockaddr_storage l = sim_host(sim_local_port(s));

			natcheck_set_local(&sim.nc, s, SA(l));
		}
	for (int rounds = 0; rounds < 1000000; rounds++) {
		uint64_t next;

		sim_deliver_due();
		while (natcheck_poll_send(&sim.nc, sim.now, &tx))
			sim_send(tx.sock, SA(tx.to), tx.buf, tx.len);
		next = natcheck_next(&sim.nc, sim.now);
		if (natcheck_done(&sim.nc))
			return sim.now - start;
		assert_true(next > sim.now);
		for (size_t i = 0; i < sim.nq; i++)
			if (sim.q[i].at < next)
				next = sim.q[i].at;
		sim.now = next;
	}
	fail_msg("natcheck did not finish");
	return 0;
}

#endif
