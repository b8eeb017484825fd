#include "agent.h"

#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "retransmit.h"
#include "rnd.h"

/* The checks' pace (agent.h): faster than RFC 8489's, to punch quickly,
 * and bounded by time rather than by count. */
static const struct rtx_params check_rtx = {
	.rto_ms = AGENT_CHECK_RTO_MS,
	.rto_max_ms = AGENT_CHECK_RTO_MAX_MS,
	.timeout_ms = AGENT_CHECK_TIMEOUT_MS,
};

const char *agent_state_str(int state)
{
	static const char *names[] = { "idle", "checking", "connected",
		                       "failed", "gone" };

	return state >= 0 && state <= AGENT_STATE_GONE ? names[state] : "?";
}

/* Every state change goes through here, and is logged old -> new. */
static void set_state(struct agent *a, enum agent_state state)
{
	enum agent_state old = a->state;

	if (old == state)
		return;
	log_debug("agent: %s -> %s", agent_state_str(old),
	          agent_state_str(state));
	a->state = state;
	if (a->on_state)
		a->on_state(a->ctx, old, state);
}

static const char *pair_state_str(enum agent_pair_state s)
{
	switch (s) {
	case PAIR_WAITING: return "waiting";
	case PAIR_IN_PROGRESS: return "in progress";
	case PAIR_SUCCEEDED: return "succeeded";
	case PAIR_FAILED: return "failed";
	}
	return "?";
}

/* A pair's state changes go through here, and are logged old -> new. */
static void pair_set_state(struct agent *a, struct agent_pair *p,
                           enum agent_pair_state s)
{
	char r[ADDR_STRLEN];

	if (p->state == s)
		return;
	log_debug("agent: pair to %s: %s -> %s",
	          addr_str((const struct sockaddr *)&a->remote[p->remote].addr,
	                   r, sizeof(r)),
	          pair_state_str(p->state), pair_state_str(s));
	p->state = s;
}

static void consent_answered(struct agent *a, uint64_t now_ms);
static void learn_check(struct agent *a, int sock, const struct sockaddr *from,
                        uint32_t priority, int use_candidate, uint64_t now_ms);

static int sock_of_family(int family)
{
	return family == AF_INET6 ? 1 : 0;
}

uint64_t agent_pair_priority(int controlling, uint32_t local, uint32_t remote)
{
	/* RFC 8445 6.1.2.3: G is the controlling side's, D the other's. */
	uint64_t g = controlling ? local : remote;
	uint64_t d = controlling ? remote : local;

	return ((g < d ? g : d) << 32) + 2 * (g > d ? g : d) + (g > d ? 1 : 0);
}

void agent_init(struct agent *a, int controlling, const char *ufrag,
                const char *pwd, agent_send_fn *send, void *ctx)
{
	memset(a, 0, sizeof(*a));
	a->controlling = controlling;
	rnd_nonce(&a->tiebreaker, sizeof(a->tiebreaker));
	snprintf(a->ufrag, sizeof(a->ufrag), "%s", ufrag);
	snprintf(a->pwd, sizeof(a->pwd), "%s", pwd);
	a->send = send;
	a->ctx = ctx;
	a->selected = -1;
}

void agent_set_socket(struct agent *a, int sock, uint32_t host_priority)
{
	a->have_sock[sock] = 1;
	a->local_priority[sock] = host_priority;
}

static void add_pairs(struct agent *a, int remote, uint64_t now_ms);

void agent_set_relay(struct agent *a, int family, uint32_t priority,
                     int reaches_private, uint64_t now_ms)
{
	a->relay_family = family;
	a->relay_private = reaches_private;
	agent_set_socket(a, AGENT_SOCK_RELAY, priority);
	if (a->state != AGENT_STATE_CHECKING)
		return;
	for (size_t i = 0; i < a->n_remote; i++)
		add_pairs(a, (int)i, now_ms);
}

void agent_set_path_policy(struct agent *a, enum agent_path_policy policy)
{
	a->policy = policy;
}

/* ---- accessors ---------------------------------------------------------- */

void agent_set_on_state(struct agent *a,
                        void (*fn)(void *ctx, int old_state, int new_state))
{
	a->on_state = fn;
}

void agent_set_on_switch(struct agent *a, void (*fn)(void *ctx, int old_pair))
{
	a->on_switch = fn;
}

const struct agent_pair *agent_pair_at(const struct agent *a, int i)
{
	return i >= 0 && (size_t)i < a->n_pairs ? &a->pairs[i] : NULL;
}

void agent_set_natted(struct agent *a, int natted)
{
	a->natted = natted;
}

void agent_set_allow_local(struct agent *a, int allow)
{
	a->allow_local = allow;
}

int agent_is_controlling(const struct agent *a)
{
	return a->controlling;
}

int agent_has_socket(const struct agent *a, int sock)
{
	return sock >= 0 && sock < AGENT_SOCKETS && a->have_sock[sock];
}

int agent_has_remote(const struct agent *a)
{
	return a->have_remote;
}

const struct punch_peer *agent_peer(const struct agent *a)
{
	return &a->peer;
}

size_t agent_pair_count(const struct agent *a)
{
	return a->n_pairs;
}

int agent_is_remote_addr(const struct agent *a, const struct sockaddr *from)
{
	for (size_t i = 0; i < a->n_remote; i++)
		if (addr_equal(from, (const struct sockaddr *)&a->remote[i].addr))
			return 1;
	return 0;
}

/* ---- authentication ---------------------------------------------------- */

void agent_put_username(const struct agent *a, struct stun_writer *w)
{
	char user[2 * PUNCH_UFRAG_MAX + 2];
	int n = snprintf(user, sizeof(user), "%s:%s", a->peer.ufrag, a->ufrag);

	stun_put_bytes(w, STUN_ATTR_USERNAME, user, (size_t)n);
}

void agent_put_request_integrity(const struct agent *a, struct stun_writer *w)
{
	stun_put_integrity(w, (const uint8_t *)a->peer.pwd, strlen(a->peer.pwd));
}

void agent_put_response_integrity(const struct agent *a, struct stun_writer *w)
{
	stun_put_integrity(w, (const uint8_t *)a->pwd, strlen(a->pwd));
}

int agent_auth_request(const struct agent *a, const struct stun_msg *m,
                       const uint8_t *buf, size_t len)
{
	size_t ul = strlen(a->ufrag);

	/* RFC 8445 7.3: USERNAME is "ours:theirs", keyed with our pwd. */
	if (!(m->present & STUN_HAS_USERNAME) || m->username.len <= ul ||
	    memcmp(m->username.ptr, a->ufrag, ul) || m->username.ptr[ul] != ':')
		return 0;
	return stun_check_integrity(m, buf, len, (const uint8_t *)a->pwd,
	                            strlen(a->pwd)) == STUN_OK;
}

int agent_auth_response(const struct agent *a, const struct stun_msg *m,
                        const uint8_t *buf, size_t len)
{
	return a->have_remote &&
	       stun_check_integrity(m, buf, len, (const uint8_t *)a->peer.pwd,
	                            strlen(a->peer.pwd)) == STUN_OK;
}

/* ---- candidates and pairs ---------------------------------------------- */

static int find_remote(const struct agent *a, const struct sockaddr *addr)
{
	for (size_t i = 0; i < a->n_remote; i++)
		if (addr_equal((const struct sockaddr *)&a->remote[i].addr, addr))
			return (int)i;
	return -1;
}

static int add_remote(struct agent *a, const struct punch_candidate *c)
{
	int i = find_remote(a, (const struct sockaddr *)&c->addr);

	if (i >= 0)
		return i;
	if (a->n_remote == AGENT_REMOTE_MAX)
		return -1;
	a->remote[a->n_remote] = *c;
	return (int)a->n_remote++;
}

/* A candidate the peer listed (or the server saw): loopback, multicast,
 * unspecified and link-local addresses lead to this host or this link, not
 * to the peer, so they get no check. */
static void add_listed(struct agent *a, const struct punch_candidate *c)
{
	enum addr_class k = addr_classify((const struct sockaddr *)&c->addr);
	char s[ADDR_STRLEN];

	if (k != ADDR_CLASS_ROUTABLE && !a->allow_local) {
		a->skipped++;
		log_debug("agent: skipping the peer's %s candidate %s (%s)",
		          punch_cand_type_str(c->type),
		          addr_str((const struct sockaddr *)&c->addr, s, sizeof(s)),
		          addr_class_str(k));
		return;
	}
	add_remote(a, c);
}

static int find_pair(const struct agent *a, int sock, int remote)
{
	for (size_t i = 0; i < a->n_pairs; i++)
		if (a->pairs[i].sock == sock && a->pairs[i].remote == remote)
			return (int)i;
	return -1;
}

int agent_pair_is_relayed(const struct agent *a, const struct agent_pair *p)
{
	return p->sock == AGENT_SOCK_RELAY ||
	       a->remote[p->remote].type == CAND_RELAY;
}

/* May a pair from our `sock` to remote candidate c be chosen at all? */
static int pair_allowed(const struct agent *a, int sock,
                        const struct punch_candidate *c)
{
	int relayed = sock == AGENT_SOCK_RELAY || c->type == CAND_RELAY;

	switch (a->policy) {
	case AGENT_PATH_RELAY_ONLY: return relayed;
	case AGENT_PATH_DIRECT_ONLY: return !relayed;
	case AGENT_PATH_ANY: break;
	}
	return 1;
}

/* Our socket `sock` with remote candidate `remote`; -1 if there is no such
 * socket, the pair is not allowed, or the table is full. */
static int add_pair(struct agent *a, int sock, int remote, uint64_t now_ms)
{
	const struct punch_candidate *c = &a->remote[remote];
	struct agent_pair *p;
	int i = find_pair(a, sock, remote);

	if (i >= 0)
		return i;
	if (!a->have_sock[sock] || a->n_pairs == AGENT_PAIRS_MAX ||
	    !pair_allowed(a, sock, c))
		return -1;
	if (sock == AGENT_SOCK_RELAY &&
	    (c->addr.ss_family != a->relay_family ||
	     (addr_is_private((const struct sockaddr *)&c->addr) &&
	      !a->relay_private)))
		return -1;
	p = &a->pairs[a->n_pairs];
	memset(p, 0, sizeof(*p));
	p->sock = sock;
	p->remote = remote;
	p->priority = agent_pair_priority(a->controlling,
	                                  a->local_priority[sock], c->priority);
	p->state = PAIR_WAITING;
	/* A check to a host address goes at once.  Others wait until our
	 * own NAT has been opened (see send_open_probes()). */
	rtx_start(&p->rtx, &check_rtx,
	          c->type == CAND_HOST ? now_ms : a->open_at_ms);
	return (int)a->n_pairs++;
}

/* Every pair of remote candidate `remote`: from the host socket of its
 * family, and from our relayed address. */
static void add_pairs(struct agent *a, int remote, uint64_t now_ms)
{
	add_pair(a, sock_of_family(a->remote[remote].addr.ss_family), remote,
	         now_ms);
	add_pair(a, AGENT_SOCK_RELAY, remote, now_ms);
}

const struct agent_pair *agent_selected(const struct agent *a)
{
	return a->selected >= 0 ? &a->pairs[a->selected] : NULL;
}

const struct punch_candidate *agent_remote(const struct agent *a, size_t i)
{
	return i < a->n_remote ? &a->remote[i] : NULL;
}

const struct punch_candidate *agent_pair_remote(const struct agent *a,
                                                const struct agent_pair *p)
{
	return &a->remote[p->remote];
}

/* ---- sending ----------------------------------------------------------- */

static int build_check(const struct agent *a, int sock, const uint8_t *txid,
                       int use_candidate, uint8_t *buf, size_t cap)
{
	struct stun_writer w;

	stun_writer_init(&w, buf, cap, STUN_BINDING, STUN_REQUEST, txid);
	agent_put_username(a, &w);
	/* RFC 8445 7.1.1: the priority a peer-reflexive candidate would get.
	 * From our relayed address, local preference 0: the peer learns it
	 * as prflx (a check through a peer's mapped port arrives so), and it
	 * must not outrank the peer-reflexive candidates of direct paths. */
	stun_put_u32(&w, STUN_ATTR_PRIORITY,
	             punch_cand_priority(CAND_PRFLX,
	                                 sock == AGENT_SOCK_RELAY ?
	                                         0 :
	                                         (uint16_t)(a->local_priority[sock] >> 8)));
	stun_put_u64(&w, a->controlling ? STUN_ATTR_ICE_CONTROLLING : STUN_ATTR_ICE_CONTROLLED,
	             a->tiebreaker);
	if (use_candidate)
		stun_put_bytes(&w, STUN_ATTR_USE_CANDIDATE, NULL, 0);
	agent_put_request_integrity(a, &w);
	stun_put_fingerprint(&w);
	return stun_writer_finish(&w);
}

int agent_build_check(const struct agent *a, const uint8_t *txid,
                      uint8_t *buf, size_t cap)
{
	return build_check(a, 0, txid, 0, buf, cap);
}

/* Send a check on pair p with transaction id txid.  Retransmissions of one
 * transaction reuse its id (RFC 8489 6.2.1), so a late answer still counts. */
static void send_check(struct agent *a, struct agent_pair *p,
                       const uint8_t *txid, int use_candidate, int ttl)
{
	uint8_t buf[PUNCH_MSG_MAX];
	int n = build_check(a, p->sock, txid, use_candidate, buf, sizeof(buf));

	if (n > 0)
		a->send(a->ctx, p->sock,
		        (const struct sockaddr *)&a->remote[p->remote].addr, buf,
		        (size_t)n, ttl);
}

/*
 * A Linux NAT without a filter (plain MASQUERADE) keeps a conntrack entry
 * for the peer's first probe if it arrives before we have sent anything to
 * the peer, and then gives our own outgoing packets to the peer a new port:
 * the hole never lines up.  So before any normal check, we send one probe
 * to each of the peer's non-host candidates with a TTL so small that it
 * leaves our NAT (creating our mapping) but dies before the peer's NAT.
 * Only when we are behind a NAT ourselves: otherwise there is nothing to
 * open, and a small-TTL probe could reach the peer's NAT.
 */
static void send_open_probes(struct agent *a)
{
	uint8_t txid[STUN_TXID_LEN];

	if (!a->natted)
		return;
	rnd_nonce(txid, sizeof(txid));
	for (size_t i = 0; i < a->n_pairs; i++)
		if (a->remote[a->pairs[i].remote].type != CAND_HOST &&
		    a->pairs[i].sock != AGENT_SOCK_RELAY)
			send_check(a, &a->pairs[i], txid, 0, AGENT_OPEN_TTL);
}

void agent_set_remote(struct agent *a, const struct punch_peer *peer,
                      uint64_t now_ms)
{
	if (a->have_remote && a->peer.session == peer->session)
		return; /* a retransmitted PEER-INFO */
	if (a->have_remote)
		log_debug("agent: peer %s restarted; checking again", peer->id);
	a->peer = *peer;
	a->have_remote = 1;
	a->n_remote = a->n_pairs = 0;
	a->selected = -1;
	a->first_success_ms = 0;
	a->consent_pending = 0;
	a->checks_ms = now_ms;
	a->open_at_ms = now_ms + AGENT_OPEN_DELAY_MS;
	for (size_t i = 0; i < peer->n_cand; i++)
		add_listed(a, &peer->cand[i]);
	if (peer->has_observed) {
		struct punch_candidate c = {
			.type = CAND_SRFLX,
			.priority = punch_cand_priority(CAND_SRFLX, 0),
			.addr = peer->observed,
		};
		add_listed(a, &c);
	}
	for (size_t i = 0; i < a->n_remote; i++)
		add_pairs(a, (int)i, now_ms);
	a->state = AGENT_STATE_IDLE;
	set_state(a, AGENT_STATE_CHECKING);
	send_open_probes(a);
	for (int i = 0; i < a->n_early; i++)
		learn_check(a, a->early[i].sock,
		            (struct sockaddr *)&a->early[i].from,
		            a->early[i].priority, a->early[i].use_candidate, now_ms);
	a->n_early = 0;
}

/* A candidate the peer lists now that we had already learned from a check
 * as peer-reflexive: the peer's relayed address, whose checks came through
 * the relay before the PEER-INFO that lists it.  It is a relayed
 * candidate, so that a pair on it is known as relayed: nominated after the
 * direct pairs, and, if already chosen, upgraded from (RFC 8838 11: the
 * listed type replaces peer-reflexive). */
static void relisted(struct agent *a, int r, const struct punch_candidate *c)
{
	char s[ADDR_STRLEN];

	if (a->remote[r].type != CAND_PRFLX || c->type != CAND_RELAY)
		return;
	a->remote[r].type = CAND_RELAY;
	log_debug("agent: %s, learned from a check, is the peer's relayed address",
	          addr_str((const struct sockaddr *)&c->addr, s, sizeof(s)));
}

size_t agent_add_candidates(struct agent *a, const struct punch_peer *peer,
                            uint64_t now_ms)
{
	size_t before = a->n_remote;

	if (!a->have_remote || a->peer.session != peer->session)
		return 0;
	for (size_t i = 0; i < peer->n_cand; i++) {
		int r = find_remote(a, (const struct sockaddr *)&peer->cand[i].addr);

		if (r < 0)
			add_listed(a, &peer->cand[i]);
		else
			relisted(a, r, &peer->cand[i]);
	}
	if (a->state == AGENT_STATE_CHECKING)
		for (size_t i = before; i < a->n_remote; i++)
			add_pairs(a, (int)i, now_ms);
	if (a->n_remote > before)
		a->peer = *peer; /* the same session: only the list grew */
	return a->n_remote - before;
}

/* ---- receiving --------------------------------------------------------- */

static void select_pair(struct agent *a, int i, uint64_t now_ms)
{
	char r[ADDR_STRLEN];

	a->selected = i;
	a->connected_ms = now_ms;
	consent_answered(a, now_ms); /* the first consent check, jittered */
	log_debug("agent: chose %s", addr_str((const struct sockaddr *)&a->remote[a->pairs[i].remote].addr,
	                                      r, sizeof(r)));
	set_state(a, AGENT_STATE_CONNECTED);
}

/* Connected on a relayed pair, and a direct one may still replace it. */
static int upgrading(const struct agent *a)
{
	return a->state == AGENT_STATE_CONNECTED && a->selected >= 0 &&
	       a->policy != AGENT_PATH_RELAY_ONLY &&
	       agent_pair_is_relayed(a, &a->pairs[a->selected]);
}

/* Connected already: pair i takes over from the chosen one. */
static void switch_pair(struct agent *a, int i, uint64_t now_ms)
{
	char r[ADDR_STRLEN];
	int old = a->selected;

	if (old == i)
		return;
	a->selected = i;
	a->pairs[i].nominating = 0;
	consent_answered(a, now_ms);
	log_debug("agent: switched to %s%s",
	          addr_str((const struct sockaddr *)&a->remote[a->pairs[i].remote].addr,
	                   r, sizeof(r)),
	          agent_pair_is_relayed(a, &a->pairs[i]) ? " (relayed)" : "");
	if (a->on_switch)
		a->on_switch(a->ctx, old);
}

static void respond_check(struct agent *a, int sock, const struct sockaddr *from,
                          const struct stun_msg *m)
{
	uint8_t buf[PUNCH_MSG_MAX];
	struct stun_writer w;
	int n;

	stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING, STUN_SUCCESS,
	                 m->txid);
	stun_put_xor_addr(&w, STUN_ATTR_XOR_MAPPED_ADDRESS, from);
	agent_put_response_integrity(a, &w);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	if (n > 0)
		a->send(a->ctx, sock, from, buf, (size_t)n, 0);
}

/* What a check that reached us means, once we know the peer: a pair (with
 * a peer-reflexive candidate if the source is new), a triggered check, and
 * perhaps the peer's nomination. */
static void learn_check(struct agent *a, int sock, const struct sockaddr *from,
                        uint32_t priority, int use_candidate, uint64_t now_ms)
{
	struct agent_pair *p;
	int r, i;

	r = find_remote(a, from);
	if (r < 0) {
		/* RFC 8445 7.3.1.3: a peer-reflexive candidate */
		struct punch_candidate c = { .type = CAND_PRFLX };

		memcpy(&c.addr, from, addr_len(from));
		c.priority = priority ? priority : punch_cand_priority(CAND_PRFLX, 0);
		if ((r = add_remote(a, &c)) < 0)
			return;
	}
	if ((i = add_pair(a, sock, r, now_ms)) < 0)
		return;
	p = &a->pairs[i];
	if (!a->controlling && use_candidate) {
		p->nominated = 1;
		if (p->state == PAIR_SUCCEEDED && a->state == AGENT_STATE_CHECKING)
			select_pair(a, i, now_ms);
		else if (p->state == PAIR_SUCCEEDED && upgrading(a) &&
		         !agent_pair_is_relayed(a, p))
			switch_pair(a, i, now_ms);
	}
	/* RFC 8445 7.3.1.4: a triggered check, at once.  This is what makes
	 * punching quick: the peer's check just opened its NAT for us. */
	if (p->state != PAIR_SUCCEEDED &&
	    (a->state == AGENT_STATE_CHECKING ||
	     (upgrading(a) && !agent_pair_is_relayed(a, p)))) {
		if (p->state == PAIR_FAILED) {
			pair_set_state(a, p, PAIR_WAITING); /* a new transaction */
			rtx_start(&p->rtx, &check_rtx, now_ms);
		} else {
			rtx_trigger(&p->rtx, &check_rtx, now_ms);
		}
	}
}

int agent_learn_addr(struct agent *a, int sock, const struct sockaddr *addr,
                     uint64_t now_ms)
{
	struct punch_candidate c = { .type = CAND_PRFLX };
	struct agent_pair *p;
	int r, i;

	if (!a->have_remote || sock < 0 || sock >= AGENT_SOCKETS ||
	    sock == AGENT_SOCK_RELAY ||
	    !(a->state == AGENT_STATE_CHECKING || upgrading(a)))
		return -1;
	if ((r = find_remote(a, addr)) < 0) {
		memcpy(&c.addr, addr, addr_len(addr));
		c.priority = punch_cand_priority(CAND_PRFLX, 0);
		if ((r = add_remote(a, &c)) < 0)
			return -1;
	}
	if ((i = add_pair(a, sock, r, now_ms)) < 0)
		return -1;
	p = &a->pairs[i];
	if (p->state == PAIR_FAILED || p->state == PAIR_WAITING) {
		pair_set_state(a, p, PAIR_WAITING); /* a new transaction */
		rtx_start(&p->rtx, &check_rtx, now_ms);
	}
	return i;
}

static void on_check(struct agent *a, int sock, const struct sockaddr *from,
                     const struct stun_msg *m, uint64_t now_ms)
{
	uint32_t priority = (m->present & STUN_HAS_PRIORITY) ? m->priority : 0;
	int use = !!(m->present & STUN_HAS_USE_CANDIDATE);
	char f[ADDR_STRLEN];

	log_debug("agent: check from %s%s", addr_str(from, f, sizeof(f)),
	          use ? " with USE-CANDIDATE" : "");
	respond_check(a, sock, from, m);
	if (a->have_remote) {
		learn_check(a, sock, from, priority, use, now_ms);
		return;
	}
	/* The peer was quicker than our PEER-INFO.  Its check has been
	 * answered, so it may even have nominated this pair already: keep
	 * what the check said, for agent_set_remote(). */
	for (int i = 0; i < a->n_early; i++) {
		if (a->early[i].sock == sock &&
		    addr_equal((struct sockaddr *)&a->early[i].from, from)) {
			a->early[i].use_candidate |= use;
			return;
		}
	}
	if (a->n_early < AGENT_EARLY_MAX) {
		a->early[a->n_early].sock = sock;
		memcpy(&a->early[a->n_early].from, from, addr_len(from));
		a->early[a->n_early].priority = priority;
		a->early[a->n_early].use_candidate = use;
		a->n_early++;
	}
}

static void on_response(struct agent *a, int i, const struct stun_msg *m,
                        uint64_t now_ms)
{
	struct agent_pair *p = &a->pairs[i];
	char r[ADDR_STRLEN];

	log_debug("agent: %s from %s%s",
	          m->cls == STUN_ERROR ? "error response" : "check answered",
	          addr_str((const struct sockaddr *)&a->remote[p->remote].addr,
	                   r, sizeof(r)),
	          p->nominating ? " (nominating)" : "");
	if (m->cls == STUN_ERROR) {
		pair_set_state(a, p, PAIR_FAILED);
		return;
	}
	pair_set_state(a, p, PAIR_SUCCEEDED);
	if (!a->first_success_ms)
		a->first_success_ms = now_ms;
	if (upgrading(a) && !agent_pair_is_relayed(a, p)) {
		if ((a->controlling && p->nominating) ||
		    (!a->controlling && p->nominated))
			switch_pair(a, i, now_ms);
		return;
	}
	if (a->state != AGENT_STATE_CHECKING)
		return;
	if ((a->controlling && p->nominating) ||
	    (!a->controlling && p->nominated))
		select_pair(a, i, now_ms);
}

int agent_on_stun(struct agent *a, int sock, const struct sockaddr *from,
                  const uint8_t *buf, size_t len, const struct stun_msg *m,
                  uint64_t now_ms)
{
	if (m->method != STUN_BINDING)
		return 0;
	if (m->cls == STUN_REQUEST) {
		if (!agent_auth_request(a, m, buf, len)) {
			a->dropped++;
			log_debug("agent: dropped a check that failed authentication");
			return 1;
		}
		on_check(a, sock, from, m, now_ms);
		return 1;
	}
	if (m->cls != STUN_SUCCESS && m->cls != STUN_ERROR)
		return 0;
	if (a->consent_pending &&
	    !memcmp(m->txid, a->consent_txid, STUN_TXID_LEN)) {
		if (agent_auth_response(a, m, buf, len) && m->cls == STUN_SUCCESS)
			consent_answered(a, now_ms);
		return 1;
	}
	for (size_t i = 0; i < a->n_pairs; i++) {
		if (memcmp(a->pairs[i].txid, m->txid, STUN_TXID_LEN))
			continue;
		if (!agent_auth_response(a, m, buf, len)) {
			a->dropped++;
			return 1;
		}
		/* RFC 8445 7.2.5.2.1: only an answer from where the check
		 * went proves the pair */
		if (!addr_equal(from, (const struct sockaddr *)&a->remote[a->pairs[i].remote].addr) ||
		    sock != a->pairs[i].sock) {
			log_debug("agent: answer from an unexpected address dropped");
			return 1;
		}
		on_response(a, (int)i, m, now_ms);
		return 1;
	}
	return 0;
}

/* ---- timers ------------------------------------------------------------ */

static uint64_t min_u64(uint64_t x, uint64_t y)
{
	return x < y ? x : y;
}

/* One pair's check transaction at now_ms: sent, or retransmitted with
 * the same id (RFC 8489 6.2.1), when due; or given up (PAIR_FAILED, and 0
 * is returned).  *next gets its deadline. */
static int poll_pair(struct agent *a, struct agent_pair *p, uint64_t now_ms,
                     uint64_t *next)
{
	switch (rtx_poll(&p->rtx, &check_rtx, now_ms)) {
	case RTX_GIVE_UP:
		pair_set_state(a, p, PAIR_FAILED);
		return 0;
	case RTX_SEND:
		if (!p->rtx.sent)
			rnd_nonce(p->txid, STUN_TXID_LEN);
		if (p->state == PAIR_WAITING)
			pair_set_state(a, p, PAIR_IN_PROGRESS);
		send_check(a, p, p->txid, p->nominating, 0);
		rtx_sent(&p->rtx, &check_rtx, now_ms, rnd_u32());
		break;
	case RTX_WAIT:
		break;
	}
	*next = min_u64(*next, rtx_deadline(&p->rtx, &check_rtx));
	return 1;
}

/* When may the controlling side nominate succeeded pair `best`?  At once
 * if no better pair is still in play; else AGENT_NOMINATE_WAIT_MS after
 * the first success; and a relayed pair, while a direct one is still in
 * play, not before AGENT_RELAY_WAIT_MS after the checks began. */
static uint64_t nominate_at(const struct agent *a, int best)
{
	int better_pending = 0, direct_pending = 0;
	uint64_t at = 0;

	for (size_t i = 0; i < a->n_pairs; i++) {
		const struct agent_pair *p = &a->pairs[i];

		if (p->state == PAIR_FAILED)
			continue;
		if (p->priority > a->pairs[best].priority)
			better_pending = 1;
		if (!agent_pair_is_relayed(a, p) && p->state != PAIR_SUCCEEDED)
			direct_pending = 1;
	}
	if (better_pending)
		at = a->first_success_ms + AGENT_NOMINATE_WAIT_MS;
	if (agent_pair_is_relayed(a, &a->pairs[best]) && direct_pending &&
	    at < a->checks_ms + AGENT_RELAY_WAIT_MS)
		at = a->checks_ms + AGENT_RELAY_WAIT_MS;
	return at;
}

/* The best pair that works, or -1. */
static int best_succeeded(const struct agent *a)
{
	int best = -1;

	for (size_t i = 0; i < a->n_pairs; i++)
		if (a->pairs[i].state == PAIR_SUCCEEDED &&
		    (best < 0 || a->pairs[i].priority > a->pairs[best].priority))
			best = (int)i;
	return best;
}

/* Controlling side: nominate the best pair that works, when nominate_at()
 * says.  Returns when to look again (UINT64_MAX: not for this). */
static uint64_t maybe_nominate(struct agent *a, uint64_t now_ms)
{
	char r[ADDR_STRLEN];
	uint64_t at;
	int best;

	for (size_t i = 0; i < a->n_pairs; i++)
		if (a->pairs[i].nominating)
			return UINT64_MAX;
	if ((best = best_succeeded(a)) < 0)
		return UINT64_MAX;
	if ((at = nominate_at(a, best)) > now_ms)
		return at;
	log_debug("agent: nominating the pair to %s%s",
	          addr_str((const struct sockaddr *)&a->remote[a->pairs[best].remote].addr,
	                   r, sizeof(r)),
	          agent_pair_is_relayed(a, &a->pairs[best]) ? " (relayed)" : "");
	a->pairs[best].nominating = 1;
	/* a new transaction */
	rtx_start(&a->pairs[best].rtx, &check_rtx, now_ms);
	return UINT64_MAX;
}

static uint64_t tick_checks(struct agent *a, uint64_t now_ms)
{
	uint64_t next = UINT64_MAX;
	int alive = 0;

	if (a->controlling)
		next = maybe_nominate(a, now_ms);
	for (size_t i = 0; i < a->n_pairs; i++) {
		struct agent_pair *p = &a->pairs[i];

		if (p->state == PAIR_FAILED)
			continue;
		alive = 1;
		/* A succeeded pair is checked again only to nominate it. */
		if (p->state == PAIR_SUCCEEDED && !p->nominating)
			continue;
		poll_pair(a, p, now_ms, &next);
	}
	/* Give up when every pair has failed, or when nothing was chosen in
	 * time (a controlled agent waits for the peer to nominate).  No pair
	 * at all is not failure yet: candidates may still come (our relayed
	 * one, under -relay-only, or the peer's, trickled). */
	if ((!alive && a->n_pairs) ||
	    now_ms - a->checks_ms >= AGENT_CHECK_TIMEOUT_MS) {
		log_debug("agent: giving up: %s", alive ? "no pair chosen in time" :
		                                          "every pair failed");
		set_state(a, AGENT_STATE_FAILED);
		return UINT64_MAX;
	}
	return min_u64(next, a->checks_ms + AGENT_CHECK_TIMEOUT_MS);
}

/* RFC 7675 consent freshness, which doubles as the NAT keepalive: a check
 * on the chosen pair, again every AGENT_CONSENT_RTO_MS until answered. */
/* A relayed pair that worked, to fall back on: the best, or -1. */
static int relayed_fallback(const struct agent *a)
{
	int best = -1;

	for (size_t i = 0; i < a->n_pairs; i++)
		if ((int)i != a->selected &&
		    agent_pair_is_relayed(a, &a->pairs[i]) &&
		    a->pairs[i].state == PAIR_SUCCEEDED &&
		    (best < 0 || a->pairs[i].priority > a->pairs[best].priority))
			best = (int)i;
	return best;
}

static uint64_t upgrade_backoff(unsigned rounds)
{
	uint64_t ms = AGENT_UPGRADE_RETRY_MS;

	for (unsigned k = 0; k < rounds && ms < AGENT_UPGRADE_RETRY_MAX_MS; k++)
		ms *= 2;
	return ms < AGENT_UPGRADE_RETRY_MAX_MS ? ms : AGENT_UPGRADE_RETRY_MAX_MS;
}

/* On a relayed pair: the direct pairs are checked on, a failed one again
 * after upgrade_backoff(); the controlling side nominates one that works
 * (one at a time), and on_response() or learn_check() switches to it. */
static uint64_t tick_upgrade(struct agent *a, uint64_t now_ms)
{
	uint64_t next = UINT64_MAX;
	int nominating = 0;

	for (size_t i = 0; i < a->n_pairs; i++)
		if (a->pairs[i].nominating &&
		    !agent_pair_is_relayed(a, &a->pairs[i]))
			nominating = 1;
	for (size_t i = 0; i < a->n_pairs; i++) {
		struct agent_pair *p = &a->pairs[i];

		if (agent_pair_is_relayed(a, p))
			continue;
		if (p->state == PAIR_FAILED) {
			if (now_ms < p->retry_ms) {
				next = min_u64(next, p->retry_ms);
				continue;
			}
			pair_set_state(a, p, PAIR_WAITING);
			p->nominating = 0;
			rtx_start(&p->rtx, &check_rtx, now_ms);
		}
		if (p->state == PAIR_SUCCEEDED && !p->nominating) {
			if (!a->controlling || nominating)
				continue;
			nominating = 1;
			p->nominating = 1;
			rtx_start(&p->rtx, &check_rtx, now_ms);
		}
		if (!poll_pair(a, p, now_ms, &next)) {
			p->nominating = 0;
			p->retry_ms = now_ms + upgrade_backoff(p->rounds++);
			next = min_u64(next, p->retry_ms);
		}
	}
	return next;
}

static uint64_t tick_consent(struct agent *a, uint64_t now_ms)
{
	if (now_ms - a->consent_ok_ms >= AGENT_CONSENT_LOST_MS) {
		int fb = relayed_fallback(a);

		if (fb < 0 || a->policy == AGENT_PATH_DIRECT_ONLY) {
			set_state(a, AGENT_STATE_GONE);
			return UINT64_MAX;
		}
		/* The direct pair died: back to the relay, and the direct
		 * pairs are tried again later. */
		pair_set_state(a, &a->pairs[a->selected], PAIR_FAILED);
		a->pairs[a->selected].retry_ms = now_ms + upgrade_backoff(0);
		switch_pair(a, fb, now_ms);
	}
	if (now_ms >= a->consent_next_ms) {
		if (!a->consent_pending)
			rnd_nonce(a->consent_txid, STUN_TXID_LEN);
		send_check(a, &a->pairs[a->selected], a->consent_txid, 0, 0);
		a->consent_pending = 1;
		a->consent_next_ms = now_ms + AGENT_CONSENT_RTO_MS;
	}
	return min_u64(a->consent_next_ms, a->consent_ok_ms + AGENT_CONSENT_LOST_MS);
}

/* The next consent check, AGENT_CONSENT_MS +-20% from now (RFC 7675 5.1:
 * randomized, so that many peers do not fall into step). */
static void consent_answered(struct agent *a, uint64_t now_ms)
{
	uint32_t r = rnd_u32();

	a->consent_pending = 0;
	a->consent_ok_ms = now_ms;
	a->consent_next_ms = now_ms + AGENT_CONSENT_MS * 8 / 10 +
	                     r % (AGENT_CONSENT_MS * 4 / 10);
}

uint64_t agent_tick(struct agent *a, uint64_t now_ms)
{
	switch (a->state) {
	case AGENT_STATE_CHECKING:
		return tick_checks(a, now_ms);
	case AGENT_STATE_CONNECTED: {
		uint64_t next = tick_consent(a, now_ms);

		if (upgrading(a))
			next = min_u64(next, tick_upgrade(a, now_ms));
		return next;
	}
	case AGENT_STATE_IDLE:
	case AGENT_STATE_FAILED:
	case AGENT_STATE_GONE:
		break;
	}
	return UINT64_MAX;
}
