/*
 * punch natcheck's state machine: see natcheck.h for the sockets and the
 * calling loop.  RFC 5780 gives the tests; RFC 4787 the words for what they
 * find.
 *
 * The plan.  At the start, every socket that needs a mapping sends one
 * Binding request to the server's primary address (MAP, FILT, PAT0..3 a few
 * ms apart, LIFE0.., V6).  When MAP's answer names the server's
 * OTHER-ADDRESS, mapping tests II and III and the hairpin probe go out; when
 * FILT's does, filtering tests II and III.  Tests II and III are sent
 * together rather than one after the other (as RFC 5780 describes them):
 * the answers say the same, one round trip sooner, which is how the whole
 * run fits in about 1.5 s.
 */
#include "natcheck.h"

#include <netinet/in.h>
#include <string.h>

#include "addr.h"

enum req_kind {
	REQ_MAP1 = 1,   /* 4.3 test I: primary address */
	REQ_MAP2,       /* 4.3 test II: alternate IP, primary port */
	REQ_MAP3,       /* 4.3 test III: alternate IP and port */
	REQ_HAIRPIN,    /* 4.5: to MAP's own mapped address */
	REQ_FILT1,      /* 4.4 test I */
	REQ_FILT2,      /* 4.4 test II: CHANGE-REQUEST IP and port */
	REQ_FILT3,      /* 4.4 test III: CHANGE-REQUEST port */
	REQ_PAT,        /* one more mapping, for the allocation pattern */
	REQ_LIFE_OPEN,  /* 4.6: a mapping to let idle */
	REQ_LIFE_PROBE, /* 4.6: RESPONSE-PORT aimed at that mapping */
	REQ_V6,         /* the IPv6 mapping */
};

enum {
	/* natcheck_req.error when an answer came from the wrong address; a
	 * STUN error code is 300..699 (RFC 8489 14.8). */
	NATCHECK_ERR_ORIGIN = 1,
};

/* RFC 5780 4.6: idle times to try, in seconds.  Linux's conntrack forgets
 * a UDP flow with one reply after 30 s; RFC 4787 REQ-5 asks for at least
 * 2 min; past 130 s the answer no longer changes what punch does (its
 * keepalives run every 15 s). */
static const unsigned life_steps_s[NATCHECK_LIFE_MAX] = {
	2, 4, 8, 15, 25, 35, 50, 70, 100, 130
};

int natcheck_sock_family(const struct natcheck *nc, int s)
{
	int fam = nc->server.ss_family;

	if (s == NATCHECK_SOCK_V6)
		return nc->has_server6 ? AF_INET6 : -1;
	if (s < 0 || s >= NATCHECK_SOCK_MAX)
		return -1;
	if (s == NATCHECK_SOCK_LIFE_Y || s >= NATCHECK_SOCK_LIFE0)
		return (nc->flags & NATCHECK_LIFETIME) ? fam : -1;
	return fam;
}

void natcheck_set_local(struct natcheck *nc, int s,
                        const struct sockaddr *local)
{
	if (s < 0 || s >= NATCHECK_SOCK_MAX)
		return;
	memset(&nc->local[s], 0, sizeof(nc->local[s]));
	memcpy(&nc->local[s], local, addr_len(local));
	nc->has_local[s] = 1;
}

/* A new transaction; NULL when the table is full (it is sized for the
 * whole plan, so that would be a bug, and the test is then skipped). */
static struct natcheck_req *req_add(struct natcheck *nc, int kind, int sock,
                                    const struct sockaddr *to,
                                    uint64_t start_at, unsigned timeout_ms)
{
	struct natcheck_req *r;
	size_t i = nc->n_req;

	if (i >= NATCHECK_REQ_MAX)
		return NULL;
	r = &nc->req[nc->n_req++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->sock = sock;
	r->answer_sock = sock;
	memcpy(&r->to, to, addr_len(to));
	r->start_at = start_at;
	r->timeout_ms = timeout_ms;
	/* RFC 8489 6: ids the caller's random bytes make unpredictable; the
	 * index keeps them distinct. */
	memcpy(r->txid, nc->txid_base, STUN_TXID_LEN);
	r->txid[STUN_TXID_LEN - 1] ^= (uint8_t)i;
	return r;
}

int natcheck_init(struct natcheck *nc, const struct sockaddr *server,
                  const struct sockaddr *server6, int flags,
                  const uint8_t rnd[16], uint64_t now)
{
	const unsigned first = NATCHECK_FIRST_TIMEOUT_MS;
	uint64_t t = now;

	memset(nc, 0, sizeof(*nc));
	if (!server || (server->sa_family != AF_INET &&
	                server->sa_family != AF_INET6))
		return -1;
	nc->flags = flags;
	nc->started = now;
	memcpy(nc->txid_base, rnd, STUN_TXID_LEN);
	nc->res.hairpin = -1;
	nc->res.nat = -1;
	memcpy(&nc->server, server, addr_len(server));
	/* Sent in this order, a few ms apart, so that the NAT allocates the
	 * mappings in a known order (the pattern test reads their ports). */
	req_add(nc, REQ_MAP1, NATCHECK_SOCK_MAP, server, t, first);
	t += NATCHECK_STAGGER_MS;
	req_add(nc, REQ_FILT1, NATCHECK_SOCK_FILT, server, t, first);
	for (int i = 0; i < NATCHECK_PAT_MAX; i++) {
		t += NATCHECK_STAGGER_MS;
		req_add(nc, REQ_PAT, NATCHECK_SOCK_PAT0 + i, server, t, first);
	}
	if (flags & NATCHECK_LIFETIME)
		for (int i = 0; i < NATCHECK_LIFE_MAX; i++)
			req_add(nc, REQ_LIFE_OPEN, NATCHECK_SOCK_LIFE0 + i,
			        server, now, first);
	if (server->sa_family == AF_INET && server6 &&
	    server6->sa_family == AF_INET6) {
		memcpy(&nc->server6, server6, sizeof(struct sockaddr_in6));
		nc->has_server6 = 1;
		req_add(nc, REQ_V6, NATCHECK_SOCK_V6, server6, now, first);
	}
	return 0;
}

static int req_encode(const struct natcheck_req *r, struct natcheck_tx *tx)
{
	struct stun_writer w;
	int n;

	stun_writer_init(&w, tx->buf, sizeof(tx->buf), STUN_BINDING,
	                 STUN_REQUEST, r->txid);
	if (r->change)
		stun_put_u32(&w, STUN_ATTR_CHANGE_REQUEST, r->change);
	if (r->response_port)
		stun_put_u32(&w, STUN_ATTR_RESPONSE_PORT,
		             (uint32_t)r->response_port << 16);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	if (n < 0)
		return -1;
	tx->len = (size_t)n;
	tx->sock = r->sock;
	memset(&tx->to, 0, sizeof(tx->to));
	memcpy(&tx->to, &r->to, addr_len((const struct sockaddr *)&r->to));
	return 0;
}

int natcheck_poll_send(struct natcheck *nc, uint64_t now,
                       struct natcheck_tx *tx)
{
	for (size_t i = 0; i < nc->n_req; i++) {
		struct natcheck_req *r = &nc->req[i];

		if (r->state == NATCHECK_REQ_WAITING && now >= r->start_at) {
			r->state = NATCHECK_REQ_PENDING;
			r->give_up_at = now + r->timeout_ms;
		} else if (r->state != NATCHECK_REQ_PENDING ||
		           now < r->next_at || now >= r->give_up_at) {
			continue;
		}
		r->next_at = now + NATCHECK_RTO_MS;
		if (req_encode(r, tx) == 0)
			return 1;
	}
	return 0;
}

static struct natcheck_req *req_find(struct natcheck *nc, int kind)
{
	for (size_t i = 0; i < nc->n_req; i++)
		if (nc->req[i].kind == kind)
			return &nc->req[i];
	return NULL;
}

/* The server names where natcheck sends next (OTHER-ADDRESS, and the
 * mapped address for hairpinning): only where a server or a NAT can be,
 * routable or of the server's own class (loopback for a local server), so
 * that a hostile server cannot aim the requests at this host's or this
 * link's services. */
static int target_ok(const struct natcheck *nc, const struct sockaddr *t)
{
	const struct sockaddr *s = (const struct sockaddr *)&nc->server;

	return t->sa_family == s->sa_family && addr_port(t) != 0 &&
	       (addr_classify(t) == ADDR_CLASS_ROUTABLE ||
	        addr_classify(t) == addr_classify(s));
}

/* OTHER-ADDRESS is usable for RFC 5780's tests only with another IP and
 * port (4.3 test II needs the IP, 4.4 test III the port). */
static int other_usable(const struct natcheck *nc)
{
	const struct sockaddr *o = (const struct sockaddr *)&nc->res.other;
	const struct sockaddr *s = (const struct sockaddr *)&nc->server;

	return nc->res.has_other && target_ok(nc, o) && !addr_same_ip(o, s) &&
	       addr_port(o) != addr_port(s);
}

/* What an answer makes possible next. */
static void plan_after(struct natcheck *nc, struct natcheck_req *r,
                       uint64_t now)
{
	const struct sockaddr *srv = (const struct sockaddr *)&nc->server;
	struct sockaddr_storage to;
	struct natcheck_req *n;

	switch (r->kind) {
	case REQ_MAP1:
		/* 4.5: the NAT hairpins if our own request comes back. */
		if (target_ok(nc, (const struct sockaddr *)&r->mapped) &&
		    (n = req_add(nc, REQ_HAIRPIN, NATCHECK_SOCK_MAP,
		                 (const struct sockaddr *)&r->mapped, now,
		                 NATCHECK_TIMEOUT_MS)))
			n->is_hairpin = 1;
		if (!other_usable(nc))
			break;
		to = nc->res.other;
		addr_set_port((struct sockaddr *)&to, addr_port(srv));
		req_add(nc, REQ_MAP2, NATCHECK_SOCK_MAP,
		        (const struct sockaddr *)&to, now, NATCHECK_TIMEOUT_MS);
		req_add(nc, REQ_MAP3, NATCHECK_SOCK_MAP,
		        (const struct sockaddr *)&nc->res.other, now,
		        NATCHECK_TIMEOUT_MS);
		break;
	case REQ_FILT1:
		if (!other_usable(nc))
			break;
		if ((n = req_add(nc, REQ_FILT2, NATCHECK_SOCK_FILT, srv, now,
		                 NATCHECK_TIMEOUT_MS)))
			n->change = STUN_CHANGE_IP | STUN_CHANGE_PORT;
		if ((n = req_add(nc, REQ_FILT3, NATCHECK_SOCK_FILT, srv, now,
		                 NATCHECK_TIMEOUT_MS)))
			n->change = STUN_CHANGE_PORT;
		break;
	case REQ_LIFE_OPEN: {
		/* 4.6: LIFE_Y asks the server to answer this mapping after
		 * the idle time of this socket's step. */
		int step = r->sock - NATCHECK_SOCK_LIFE0;

		n = req_add(nc, REQ_LIFE_PROBE, NATCHECK_SOCK_LIFE_Y, srv,
		            now + life_steps_s[step] * 1000ull,
		            NATCHECK_TIMEOUT_MS);
		if (n) {
			n->answer_sock = r->sock;
			n->response_port =
				addr_port((const struct sockaddr *)&r->mapped);
			n->life_s = life_steps_s[step];
		}
		break;
	}
	default:
		break;
	}
}

/* Where the answer to r must come from: RFC 5780 4.4 reads the filter
 * from the source, so an answer from elsewhere proves nothing. */
static int from_ok(const struct natcheck *nc, const struct natcheck_req *r,
                   const struct sockaddr *from)
{
	const struct sockaddr *other = (const struct sockaddr *)&nc->res.other;
	const struct sockaddr *srv = (const struct sockaddr *)&nc->server;

	switch (r->kind) {
	case REQ_FILT2:
		return addr_equal(from, other);
	case REQ_FILT3:
		return addr_same_ip(from, srv) &&
		       addr_port(from) == addr_port(other);
	default:
		return addr_equal(from, (const struct sockaddr *)&r->to);
	}
}

static int drop(struct natcheck *nc)
{
	nc->dropped++;
	return -1;
}

static struct natcheck_req *req_by_txid(struct natcheck *nc, const uint8_t *id)
{
	for (size_t i = 0; i < nc->n_req; i++)
		if (!memcmp(nc->req[i].txid, id, STUN_TXID_LEN))
			return &nc->req[i];
	return NULL;
}

/* A response's mapped address: XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from
 * an RFC 3489 server; of the family asked about. */
static int take_mapped(struct natcheck_req *r, const struct stun_msg *m)
{
	const struct sockaddr_storage *a = NULL;

	if (m->present & STUN_HAS_XOR_MAPPED)
		a = &m->xor_mapped;
	else if (m->present & STUN_HAS_MAPPED)
		a = &m->mapped;
	if (!a || a->ss_family != r->to.ss_family)
		return -1;
	r->mapped = *a;
	r->has_mapped = 1;
	return 0;
}

int natcheck_on_recv(struct natcheck *nc, int s, const struct sockaddr *from,
                     const uint8_t *buf, size_t len, uint64_t now)
{
	struct natcheck_req *r;
	struct stun_msg m;

	if (nc->finished || s < 0 || s >= NATCHECK_SOCK_MAX ||
	    stun_decode(&m, buf, len) != STUN_OK || m.method != STUN_BINDING)
		return drop(nc);
	r = req_by_txid(nc, m.txid);
	if (!r || r->state != NATCHECK_REQ_PENDING || r->answer_sock != s)
		return drop(nc);
	if (r->is_hairpin) {
		/* 4.5: our own request, back through the NAT. */
		if (m.cls != STUN_REQUEST)
			return drop(nc);
		r->state = NATCHECK_REQ_ANSWERED;
		return 0;
	}
	if (m.cls != STUN_SUCCESS && m.cls != STUN_ERROR)
		return drop(nc);
	if (!from_ok(nc, r, from)) {
		/* A filtering test answered from where it was asked: the
		 * server did not change its address, so the test proves
		 * nothing (RFC 5780 4.4).  It is settled, as unknown. */
		if (r->kind != REQ_FILT2 && r->kind != REQ_FILT3)
			return drop(nc);
		r->error = NATCHECK_ERR_ORIGIN;
		r->state = NATCHECK_REQ_ANSWERED;
		return 0;
	}
	if (m.cls == STUN_ERROR) {
		r->error = m.error_code;
		r->state = NATCHECK_REQ_ANSWERED;
		return 0;
	}
	if (take_mapped(r, &m))
		return drop(nc);
	if (!nc->res.has_other && (m.present & STUN_HAS_OTHER_ADDRESS) &&
	    r->kind != REQ_V6) {
		nc->res.other = m.other_address;
		nc->res.has_other = 1;
	}
	r->state = NATCHECK_REQ_ANSWERED;
	plan_after(nc, r, now);
	return 0;
}

/* A lifetime probe that got no answer: every longer idle time would fail
 * too (all the mappings were made at the start), so they are not tried. */
static void life_failed(struct natcheck *nc, const struct natcheck_req *r)
{
	for (size_t i = 0; i < nc->n_req; i++) {
		struct natcheck_req *o = &nc->req[i];

		if (o->kind == REQ_LIFE_PROBE && o->life_s > r->life_s &&
		    o->state == NATCHECK_REQ_WAITING)
			o->state = NATCHECK_REQ_SKIPPED;
	}
}

static void expire(struct natcheck *nc, uint64_t now)
{
	for (size_t i = 0; i < nc->n_req; i++) {
		struct natcheck_req *r = &nc->req[i];

		if (r->state != NATCHECK_REQ_PENDING || now < r->give_up_at)
			continue;
		r->state = NATCHECK_REQ_TIMEDOUT;
		if (r->kind == REQ_LIFE_PROBE)
			life_failed(nc, r);
	}
}

static void natcheck_finish(struct natcheck *nc);

uint64_t natcheck_next(struct natcheck *nc, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	if (nc->finished)
		return UINT64_MAX;
	expire(nc, now);
	for (size_t i = 0; i < nc->n_req; i++) {
		const struct natcheck_req *r = &nc->req[i];
		uint64_t t = UINT64_MAX;

		if (r->state == NATCHECK_REQ_WAITING)
			t = r->start_at;
		else if (r->state == NATCHECK_REQ_PENDING)
			t = r->next_at < r->give_up_at ? r->next_at : r->give_up_at;
		if (t < next)
			next = t;
	}
	if (next == UINT64_MAX)
		natcheck_finish(nc);
	return next;
}

int natcheck_done(const struct natcheck *nc)
{
	return nc->finished;
}

const struct natcheck_result *natcheck_result(const struct natcheck *nc)
{
	return &nc->res;
}

/* ---- reading the answers ------------------------------------------------ */

static const struct natcheck_req *answered(const struct natcheck *nc,
                                           int kind)
{
	const struct natcheck_req *r = req_find((struct natcheck *)nc, kind);

	return r && r->state == NATCHECK_REQ_ANSWERED && !r->error ? r : NULL;
}

static int same_mapping(const struct natcheck_req *a,
                        const struct natcheck_req *b)
{
	return addr_equal((const struct sockaddr *)&a->mapped,
	                  (const struct sockaddr *)&b->mapped);
}

/* RFC 5780 4.3: test II's mapping equal to test I's: endpoint-independent;
 * else test III's equal to test II's: address-dependent; else address-
 * and port-dependent. */
static enum natcheck_behaviour read_mapping(const struct natcheck *nc)
{
	const struct natcheck_req *t1 = answered(nc, REQ_MAP1);
	const struct natcheck_req *t2 = answered(nc, REQ_MAP2);
	const struct natcheck_req *t3 = answered(nc, REQ_MAP3);

	if (!t1 || !t2)
		return NATCHECK_UNKNOWN;
	if (same_mapping(t1, t2))
		return NATCHECK_INDEPENDENT;
	if (!t3)
		return NATCHECK_UNKNOWN;
	return same_mapping(t2, t3) ? NATCHECK_ADDRESS : NATCHECK_ADDRESS_PORT;
}

/* RFC 5780 4.4: an answer from the other IP and port gets through:
 * endpoint-independent; else one from the same IP, other port:
 * address-dependent; neither: address- and port-dependent.  A test that
 * was refused (420: the server cannot change its address) or never sent
 * leaves it unknown. */
static enum natcheck_behaviour read_filtering(const struct natcheck *nc)
{
	const struct natcheck_req *t2 = req_find((struct natcheck *)nc, REQ_FILT2);
	const struct natcheck_req *t3 = req_find((struct natcheck *)nc, REQ_FILT3);

	if (!answered(nc, REQ_FILT1) || !t2 || !t3 || t2->error || t3->error)
		return NATCHECK_UNKNOWN;
	if (t2->state == NATCHECK_REQ_ANSWERED)
		return NATCHECK_INDEPENDENT;
	if (t3->state == NATCHECK_REQ_ANSWERED)
		return NATCHECK_ADDRESS;
	if (t2->state == NATCHECK_REQ_TIMEDOUT &&
	    t3->state == NATCHECK_REQ_TIMEDOUT)
		return NATCHECK_ADDRESS_PORT;
	return NATCHECK_UNKNOWN;
}

/* The first mappings of MAP, FILT and PAT0..3, in the order they were
 * sent: all ports kept, preserving; else the deltas between consecutive
 * public ports, all small and non-zero: sequential; else random. */
static void read_pattern(const struct natcheck *nc, struct natcheck_result *res)
{
	int pub[NATCHECK_SAMPLES_MAX];
	size_t n = 0;
	int kept = 1, small = 1;

	for (size_t i = 0; i < nc->n_req && n < NATCHECK_SAMPLES_MAX; i++) {
		const struct natcheck_req *r = &nc->req[i];
		const struct sockaddr *m = (const struct sockaddr *)&r->mapped;

		if ((r->kind != REQ_MAP1 && r->kind != REQ_FILT1 &&
		     r->kind != REQ_PAT) ||
		    r->state != NATCHECK_REQ_ANSWERED || !r->has_mapped)
			continue;
		pub[n] = addr_port(m);
		kept &= nc->has_local[r->sock] &&
		        addr_port(m) ==
		                addr_port((const struct sockaddr *)&nc->local[r->sock]);
		n++;
	}
	res->n_deltas = 0;
	if (n < 2) {
		res->pattern = NATCHECK_PAT_UNKNOWN;
		return;
	}
	for (size_t i = 1; i < n; i++) {
		int d = pub[i] - pub[i - 1];

		res->deltas[res->n_deltas++] = d;
		if (d == 0 || d > NATCHECK_SEQ_DELTA_MAX ||
		    d < -NATCHECK_SEQ_DELTA_MAX)
			small = 0;
	}
	res->pattern = kept ? NATCHECK_PAT_PRESERVING : small ? NATCHECK_PAT_SEQUENTIAL :
	                                                        NATCHECK_PAT_RANDOM;
}

static void read_lifetime(const struct natcheck *nc,
                          struct natcheck_result *res)
{
	res->lifetime_checked = (nc->flags & NATCHECK_LIFETIME) != 0;
	for (size_t i = 0; i < nc->n_req; i++) {
		const struct natcheck_req *r = &nc->req[i];

		if (r->kind != REQ_LIFE_PROBE)
			continue;
		if (r->state == NATCHECK_REQ_ANSWERED && r->life_s > res->lifetime_s)
			res->lifetime_s = r->life_s;
		if (r->state == NATCHECK_REQ_TIMEDOUT &&
		    (!res->lifetime_max_s || r->life_s < res->lifetime_max_s))
			res->lifetime_max_s = r->life_s;
	}
}

static void natcheck_finish(struct natcheck *nc)
{
	struct natcheck_result *res = &nc->res;
	const struct natcheck_req *map1 = answered(nc, REQ_MAP1);
	const struct natcheck_req *v6 = answered(nc, REQ_V6);
	const struct natcheck_req *hp = req_find(nc, REQ_HAIRPIN);

	nc->finished = 1;
	/* The public address is MAP's mapping, or FILT's when MAP's answers
	 * were all lost. */
	if (!map1)
		map1 = answered(nc, REQ_FILT1);
	res->udp = map1 != NULL || v6 != NULL;
	for (size_t i = 0; i < nc->n_req; i++)
		if (nc->req[i].state == NATCHECK_REQ_ANSWERED)
			res->udp = 1;
	if (map1) {
		const struct sockaddr *m = (const struct sockaddr *)&map1->mapped;
		const struct sockaddr *l =
			(const struct sockaddr *)&nc->local[map1->sock];

		if (m->sa_family == AF_INET) {
			res->public_v4 = map1->mapped;
			res->has_public_v4 = 1;
		} else {
			res->public_v6 = map1->mapped;
			res->has_public_v6 = 1;
		}
		if (nc->has_local[map1->sock]) {
			res->nat = !addr_equal(m, l);
			res->port_preserved = addr_port(m) == addr_port(l);
		}
	}
	if (v6) {
		res->public_v6 = v6->mapped;
		res->has_public_v6 = 1;
	}
	res->mapping = read_mapping(nc);
	res->filtering = read_filtering(nc);
	if (hp && hp->state == NATCHECK_REQ_ANSWERED)
		res->hairpin = 1;
	else if (hp && hp->state == NATCHECK_REQ_TIMEDOUT)
		res->hairpin = 0;
	read_pattern(nc, res);
	read_lifetime(nc, res);
}

/* ---- words ---------------------------------------------------------------- */

const char *natcheck_behaviour_str(enum natcheck_behaviour b)
{
	switch (b) {
	case NATCHECK_INDEPENDENT:
		return "endpoint-independent";
	case NATCHECK_ADDRESS:
		return "address-dependent";
	case NATCHECK_ADDRESS_PORT:
		return "address-and-port-dependent";
	default:
		return NULL;
	}
}

const char *natcheck_pattern_str(enum natcheck_pattern p)
{
	switch (p) {
	case NATCHECK_PAT_PRESERVING:
		return "preserving";
	case NATCHECK_PAT_SEQUENTIAL:
		return "sequential";
	case NATCHECK_PAT_RANDOM:
		return "random";
	default:
		return NULL;
	}
}

/* RFC 3489's names (the task's), which RFC 4787 4.1/5 replaced: any
 * endpoint-dependent mapping is "symmetric"; with endpoint-independent
 * mapping the filter names the cone. */
const char *natcheck_type_str(const struct natcheck_result *r)
{
	if (!r->udp)
		return NULL;
	if (r->nat == 0)
		return r->filtering == NATCHECK_INDEPENDENT ? "no NAT" : r->filtering ? "no NAT, firewall" :
		                                                                        "no NAT";
	if (r->mapping == NATCHECK_ADDRESS || r->mapping == NATCHECK_ADDRESS_PORT)
		return "symmetric";
	if (r->mapping != NATCHECK_INDEPENDENT)
		return NULL;
	switch (r->filtering) {
	case NATCHECK_INDEPENDENT:
		return "full cone";
	case NATCHECK_ADDRESS:
		return "restricted cone";
	case NATCHECK_ADDRESS_PORT:
		return "port-restricted cone";
	default:
		return NULL;
	}
}

int natcheck_exit_status(const struct natcheck_result *r)
{
	if (!r->udp)
		return NATCHECK_EXIT_NO_UDP;
	if (r->mapping == NATCHECK_ADDRESS || r->mapping == NATCHECK_ADDRESS_PORT)
		return NATCHECK_EXIT_HARD;
	if (r->mapping == NATCHECK_INDEPENDENT)
		return NATCHECK_EXIT_EASY;
	return NATCHECK_EXIT_UNKNOWN;
}
