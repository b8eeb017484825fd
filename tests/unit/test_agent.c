/*
 * Unit tests for the connectivity agent (src/agent.c): pair priorities,
 * checks and their authentication, peer-reflexive candidates, triggered
 * checks, nomination, consent, and the opening probes, driven on the
 * in-memory network of agent_net.h with a fake clock.
 */
#include "agent_net.h"

/* ---- pair priority ---------------------------------------------------- */

static void test_pair_priority_formula(void **state)
{
	(void)state;
	/* RFC 8445 6.1.2.3: 2^32 MIN(G,D) + 2 MAX(G,D) + (G > D ? 1 : 0),
	 * G the controlling agent's candidate, D the controlled's. */
	assert_u64(agent_pair_priority(1, 100, 200), (100ull << 32) + 400);
	assert_u64(agent_pair_priority(1, 200, 100), (100ull << 32) + 401);
	assert_u64(agent_pair_priority(0, 200, 100), (100ull << 32) + 400);
	assert_u64(agent_pair_priority(0, 100, 200), (100ull << 32) + 401);
	assert_u64(agent_pair_priority(1, 7, 7), (7ull << 32) + 14);
	assert_u64(agent_pair_priority(1, 0x7EFFFFFF, 0x64FFFFFF),
	           (0x64FFFFFFull << 32) + 2 * 0x7EFFFFFFull + 1);
	/* both sides compute the same number for the same pair */
	for (uint32_t x = 1; x < 0x7F000000u; x = x * 3 + 17)
		for (uint32_t y = 5; y < 0x7F000000u; y = y * 5 + 1)
			assert_u64(agent_pair_priority(1, x, y),
			           agent_pair_priority(0, y, x));
}

static void test_pair_priority_order(void **state)
{
	uint32_t host = punch_cand_priority(CAND_HOST, 65279);
	uint32_t host6 = punch_cand_priority(CAND_HOST, 65535);
	uint32_t prflx = punch_cand_priority(CAND_PRFLX, 65535);
	uint32_t srflx = punch_cand_priority(CAND_SRFLX, 65535);
	uint32_t observed = punch_cand_priority(CAND_SRFLX, 0);

	(void)state;
	for (int ctl = 0; ctl <= 1; ctl++) {
		uint64_t hh = agent_pair_priority(ctl, host, host);
		uint64_t hp = agent_pair_priority(ctl, host, prflx);
		uint64_t hs = agent_pair_priority(ctl, host, srflx);
		uint64_t ho = agent_pair_priority(ctl, host, observed);

		/* a LAN path beats a NAT path */
		assert_true(hh > hp);
		assert_true(hp > hs);
		assert_true(hs > ho);
		assert_true(agent_pair_priority(ctl, host6, host6) > hh);
	}
}

/* The pairs agent_set_remote() builds, and their priorities. */
static void test_pairs_built(void **state)
{
	struct agent *a;
	int ih, is;

	(void)state;
	nodes_lan_nat();
	introduce();
	a = &net.n[ALICE].a;
	assert_state(a, AGENT_STATE_CHECKING);
	/* bob's host and srflx; the observed address is the srflx one */
	assert_size(a->n_remote, 2);
	assert_size(a->n_pairs, 2);
	ih = pair_to(a, &net.n[BOB].host);
	is = pair_to(a, &net.n[BOB].pub);
	assert_true(ih >= 0 && is >= 0);
	assert_true(a->pairs[ih].priority > a->pairs[is].priority);
	assert_u64(a->pairs[ih].priority,
	           agent_pair_priority(1, net.n[ALICE].self.cand[0].priority,
	                               net.n[BOB].self.cand[0].priority));
	/* the host pair is checked at once, the srflx one after the
	 * opening probe's head start */
	assert_u64(a->pairs[ih].rtx.next_ms, net.now);
	assert_u64(a->pairs[is].rtx.next_ms, net.now + AGENT_OPEN_DELAY_MS);

	/* the observed address alone, when it is not among the candidates */
	net.n[BOB].self.n_cand = 1;
	net.n[BOB].self.session = 99;
	net.n[BOB].self.observed = sa_make("198.51.100.7", 7000);
	agent_set_remote(a, &net.n[BOB].self, net.now);
	assert_size(a->n_remote, 2);
	is = pair_to(a, &net.n[BOB].self.observed);
	assert_true(is >= 0);
	assert_int_equal(a->remote[a->pairs[is].remote].type, CAND_SRFLX);
	/* an IPv6 candidate and no IPv6 socket: no pair */
	net.n[BOB].self.cand[1].type = CAND_HOST;
	net.n[BOB].self.cand[1].priority = 1;
	net.n[BOB].self.cand[1].addr = sa_make("2001:db8::2", 5000);
	net.n[BOB].self.n_cand = 2;
	net.n[BOB].self.session = 100;
	agent_set_remote(a, &net.n[BOB].self, net.now);
	assert_size(a->n_remote, 3);
	assert_size(a->n_pairs, 2);
	assert_true(pair_to(a, &net.n[BOB].self.cand[1].addr) < 0);
}

/* ---- connecting ------------------------------------------------------- */

static void test_connect_lan(void **state)
{
	uint64_t t0;

	(void)state;
	nodes_lan_nat();
	t0 = net.now;
	introduce();
	run_until_both(AGENT_STATE_CONNECTED, 1000);
	/* a few round trips of 2 ms: check, nominate */
	assert_true(net.now - t0 < 20);
	assert_addr(&selected_remote(ALICE)->addr, &net.n[BOB].host);
	assert_addr(&selected_remote(BOB)->addr, &net.n[ALICE].host);
	assert_int_equal(selected_remote(ALICE)->type, CAND_HOST);
	assert_u64(net.n[ALICE].a.dropped, 0);
	assert_u64(net.n[BOB].a.dropped, 0);
	/* each went checking -> connected, reported through on_state */
	for (int i = 0; i < 2; i++) {
		assert_size(net.n[i].n_states, 2);
		assert_int_equal(net.n[i].states[0], AGENT_STATE_CHECKING);
		assert_int_equal(net.n[i].states[1], AGENT_STATE_CONNECTED);
	}
	/* and stays connected for a minute of keepalives */
	run_until(net.now + 60000);
	assert_true(both(AGENT_STATE_CONNECTED));
	assert_size(net.n[ALICE].n_states, 2);
}

/* Drop datagrams on the LAN (host to host) before `host_open_at`. */
static uint64_t host_open_at;

static int filter_host_late(const struct dgram *d, int to,
                            struct sockaddr_storage *src, int *dup)
{
	(void)src;
	(void)dup;
	if (addr_equal(SA(d->dst), SA(net.n[to].host)))
		return net.now >= host_open_at;
	return 1;
}

/* Both the host and the srflx pair work, and the srflx one answers first:
 * the controlling side still waits for the host pair, and both choose it. */
static void test_host_pair_beats_srflx(void **state)
{
	struct agent *a = &net.n[ALICE].a;
	int ih, is;

	(void)state;
	nodes_lan_nat();
	host_open_at = net.now + 40; /* the first host checks are lost */
	net.filter = filter_host_late;
	introduce();
	run_until_both(AGENT_STATE_CONNECTED, 2000);
	ih = pair_to(a, &net.n[BOB].host);
	is = pair_to(a, &net.n[BOB].pub);
	assert_true(ih >= 0 && is >= 0);
	/* the srflx pair worked, and first */
	assert_int_equal(a->pairs[is].state, PAIR_SUCCEEDED);
	assert_int_equal(a->pairs[ih].state, PAIR_SUCCEEDED);
	assert_int_equal(a->selected, ih);
	assert_addr(&selected_remote(BOB)->addr, &net.n[ALICE].host);
	assert_int_equal(selected_remote(ALICE)->type, CAND_HOST);
	assert_int_equal(selected_remote(BOB)->type, CAND_HOST);
	/* nothing was nominated but the host pair */
	for (size_t i = 0; i < net.nlog; i++)
		if (net.log[i].use_candidate)
			assert_addr(&net.log[i].dst, &net.n[BOB].host);
}

/* The LAN path never works: the srflx pair is nominated, but only once
 * AGENT_NOMINATE_WAIT_MS has passed since the first success. */
static void test_nominate_waits_then_srflx(void **state)
{
	struct agent *a = &net.n[ALICE].a;
	uint64_t first_nomination = 0;

	(void)state;
	nodes_lan_nat();
	net.lan = 0;
	introduce();
	run_until_both(AGENT_STATE_CONNECTED, 2000);
	assert_addr(&selected_remote(ALICE)->addr, &net.n[BOB].pub);
	assert_addr(&selected_remote(BOB)->addr, &net.n[ALICE].pub);
	assert_true(a->first_success_ms > 0);
	for (size_t i = 0; i < net.nlog && !first_nomination; i++)
		if (net.log[i].use_candidate && net.log[i].from == ALICE)
			first_nomination = net.log[i].at;
	assert_true(first_nomination > 0);
	assert_u64(first_nomination,
	           a->first_success_ms + AGENT_NOMINATE_WAIT_MS);
	/* the controlled side never nominates */
	for (size_t i = 0; i < net.nlog; i++)
		assert_false(net.log[i].use_candidate &&
		             net.log[i].from == BOB);
}

static void test_no_path_fails(void **state)
{
	uint64_t t0;

	(void)state;
	node_init(ALICE, "10.0.0.1:5000", "203.0.113.1:6000", 1);
	node_init(BOB, "10.1.0.2:5000", "203.0.113.2:6000", 2);
	net.n[BOB].pub = sa_make("203.0.113.99", 1); /* unreachable */
	net.n[ALICE].pub = sa_make("203.0.113.98", 1);
	t0 = net.now;
	introduce();
	run_until(t0 + AGENT_CHECK_TIMEOUT_MS - 1);
	assert_true(both(AGENT_STATE_CHECKING));
	run_until(t0 + AGENT_CHECK_TIMEOUT_MS);
	assert_true(both(AGENT_STATE_FAILED));
	assert_int_equal(agent_tick(&net.n[ALICE].a, net.now), UINT64_MAX);
	assert_null(agent_selected(&net.n[ALICE].a));
	/* checks were retransmitted with backoff up to the cap, not more
	 * often: from 50 ms doubling to 800 ms, for 10 s, two pairs */
	{
		size_t checks = 0;

		for (size_t i = 0; i < net.nlog; i++)
			if (net.log[i].from == ALICE && !net.log[i].ttl)
				checks++;
		assert_true(checks >= 2 * 14 && checks <= 2 * 18);
	}
}

/* ---- authentication --------------------------------------------------- */

static void test_check_authentication(void **state)
{
	struct agent *b = &net.n[BOB].a;
	struct sockaddr_storage from;
	char user[80], wrong_user[80];
	const char *pwd = net.n[BOB].self.pwd;
	uint8_t buf[PUNCH_MSG_MAX];
	size_t len;

	(void)state;
	nodes_lan_nat();
	from = net.n[ALICE].host;
	introduce();
	net.nq = net.nlog = 0;
	snprintf(user, sizeof(user), "%s:%s", b->ufrag, net.n[ALICE].a.ufrag);

	/* wrong password, no password, wrong or partial username */
	len = forge_check(buf, user, "not-the-password", 0);
	assert_int_equal(feed_check(b, buf, len, &from), 1);
	assert_u64(b->dropped, 1);
	len = forge_check(buf, user, NULL, 0);
	assert_int_equal(feed_check(b, buf, len, &from), 1);
	assert_u64(b->dropped, 2);
	snprintf(wrong_user, sizeof(wrong_user), "%s:%s", net.n[ALICE].a.ufrag,
	         b->ufrag); /* the sender's view swapped */
	len = forge_check(buf, wrong_user, pwd, 0);
	assert_int_equal(feed_check(b, buf, len, &from), 1);
	assert_u64(b->dropped, 3);
	len = forge_check(buf, b->ufrag, pwd, 0); /* no ':' */
	feed_check(b, buf, len, &from);
	assert_u64(b->dropped, 4);
	snprintf(wrong_user, sizeof(wrong_user), "%sx:%s", b->ufrag,
	         net.n[ALICE].a.ufrag); /* our ufrag is a prefix */
	len = forge_check(buf, wrong_user, pwd, 0);
	feed_check(b, buf, len, &from);
	assert_u64(b->dropped, 5);
	len = forge_check(buf, NULL, pwd, 0);
	feed_check(b, buf, len, &from);
	assert_u64(b->dropped, 6);
	/* alice's password is not bob's */
	len = forge_check(buf, user, net.n[ALICE].self.pwd, 0);
	feed_check(b, buf, len, &from);
	assert_u64(b->dropped, 7);
	/* the username is exactly our ufrag, and the padding byte after it
	 * happens to be ':' (padding content is the sender's choice) */
	{
		struct stun_writer w;
		size_t ul = strlen(b->ufrag);
		int n;

		assert_true(ul % 4 != 0);
		stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING,
		                 STUN_REQUEST, (const uint8_t *)"abcdefghijkl");
		stun_put_bytes(&w, STUN_ATTR_USERNAME, b->ufrag, ul);
		buf[w.len - (4 - ul % 4)] = ':';
		stun_put_integrity(&w, (const uint8_t *)pwd, strlen(pwd));
		stun_put_fingerprint(&w);
		n = stun_writer_finish(&w);
		assert_true(n > 0);
		feed_check(b, buf, (size_t)n, &from);
		assert_u64(b->dropped, 8);
	}
	/* none of them was answered, nominated, or learned from */
	assert_size(net.nq, 0);
	assert_size(b->n_remote, 2);
	assert_state(b, AGENT_STATE_CHECKING);

	/* the right one is answered, from where it came */
	len = forge_check(buf, user, pwd, 0);
	assert_int_equal(feed_check(b, buf, len, &from), 1);
	assert_u64(b->dropped, 8);
	assert_size(net.nq, 1);
	{
		struct stun_msg r, q;

		decode_ok(&q, buf, len);
		decode_ok(&r, net.q[0].buf, net.q[0].len);
		assert_int_equal(r.cls, STUN_SUCCESS);
		assert_int_equal(r.method, STUN_BINDING);
		assert_memory_equal(r.txid, q.txid, STUN_TXID_LEN);
		assert_addr(&net.q[0].dst, &from);
		assert_true(r.present & STUN_HAS_XOR_MAPPED);
		assert_addr(&r.xor_mapped, &from);
		/* keyed with the responder's own password */
		assert_stun_rc(stun_check_integrity(&r, net.q[0].buf,
		                                    net.q[0].len,
		                                    (const uint8_t *)pwd,
		                                    strlen(pwd)),
		               STUN_OK);
		assert_int_equal(net.q[0].ttl, 0);
	}
}

/* The checks the agents send are what RFC 8445 7.2.2 says. */
static void test_check_contents(void **state)
{
	struct node *a = &net.n[ALICE], *b = &net.n[BOB];
	struct stun_msg m;
	char user[80];

	(void)state;
	nodes_lan_nat();
	introduce();
	step();
	assert_true(net.nq >= 1);
	decode_ok(&m, net.q[0].buf, net.q[0].len);
	assert_int_equal(m.cls, STUN_REQUEST);
	snprintf(user, sizeof(user), "%s:%s", b->a.ufrag, a->a.ufrag);
	assert_bytes_str(m.username, user);
	assert_true(m.present & STUN_HAS_PRIORITY);
	assert_int_equal(m.priority, punch_cand_priority(CAND_PRFLX, 65279));
	assert_true(m.present & STUN_HAS_ICE_CONTROLLING);
	assert_false(m.present & STUN_HAS_ICE_CONTROLLED);
	assert_true(m.tiebreaker == a->a.tiebreaker);
	assert_false(m.present & STUN_HAS_USE_CANDIDATE);
	assert_stun_rc(stun_check_integrity(&m, net.q[0].buf, net.q[0].len,
	                                    (const uint8_t *)b->self.pwd,
	                                    strlen(b->self.pwd)),
	               STUN_OK);
	assert_true(agent_auth_request(&b->a, &m, net.q[0].buf, net.q[0].len));
	assert_false(agent_auth_request(&a->a, &m, net.q[0].buf, net.q[0].len));
	/* bob's say "controlled" */
	for (size_t i = 0; i < net.nq; i++) {
		if (net.q[i].from != BOB)
			continue;
		decode_ok(&m, net.q[i].buf, net.q[i].len);
		assert_true(m.present & STUN_HAS_ICE_CONTROLLED);
		assert_false(m.present & STUN_HAS_ICE_CONTROLLING);
	}
}

/* A response that is not keyed with the peer's password does not count. */
static void test_response_authentication(void **state)
{
	struct node *a = &net.n[ALICE], *b = &net.n[BOB];
	struct stun_writer w;
	uint8_t buf[PUNCH_MSG_MAX];
	struct stun_msg m;
	int ih, n;

	(void)state;
	nodes_lan_nat();
	introduce();
	agent_tick(&a->a, net.now); /* the host check goes out */
	ih = pair_to(&a->a, &b->host);
	assert_int_equal(a->a.pairs[ih].state, PAIR_IN_PROGRESS);

	stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING, STUN_SUCCESS,
	                 a->a.pairs[ih].txid);
	stun_put_xor_addr(&w, STUN_ATTR_XOR_MAPPED_ADDRESS, SA(a->host));
	stun_put_integrity(&w, (const uint8_t *)"guess", 5);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	decode_ok(&m, buf, (size_t)n);
	assert_int_equal(agent_on_stun(&a->a, 0, SA(b->host), buf, (size_t)n,
	                               &m, net.now),
	                 1);
	assert_u64(a->a.dropped, 1);
	assert_int_equal(a->a.pairs[ih].state, PAIR_IN_PROGRESS);
	assert_u64(a->a.first_success_ms, 0);

	/* keyed with alice's own password (a reflected check): no good */
	stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING, STUN_SUCCESS,
	                 a->a.pairs[ih].txid);
	stun_put_integrity(&w, (const uint8_t *)a->self.pwd,
	                   strlen(a->self.pwd));
	n = stun_writer_finish(&w);
	decode_ok(&m, buf, (size_t)n);
	agent_on_stun(&a->a, 0, SA(b->host), buf, (size_t)n, &m, net.now);
	assert_u64(a->a.dropped, 2);
	assert_int_equal(a->a.pairs[ih].state, PAIR_IN_PROGRESS);

	/* keyed with bob's: the pair works */
	stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING, STUN_SUCCESS,
	                 a->a.pairs[ih].txid);
	stun_put_integrity(&w, (const uint8_t *)b->self.pwd,
	                   strlen(b->self.pwd));
	n = stun_writer_finish(&w);
	decode_ok(&m, buf, (size_t)n);
	assert_int_equal(agent_on_stun(&a->a, 0, SA(b->host), buf, (size_t)n,
	                               &m, net.now),
	                 1);
	assert_u64(a->a.dropped, 2);
	assert_int_equal(a->a.pairs[ih].state, PAIR_SUCCEEDED);
	assert_u64(a->a.first_success_ms, net.now);

	/* a response to no transaction of ours is not the agent's */
	m.txid[0] ^= 0xFF;
	assert_int_equal(agent_on_stun(&a->a, 0, SA(b->host), buf, (size_t)n,
	                               &m, net.now),
	                 0);
	/* nor is another method */
	m.method = 0x07F;
	assert_int_equal(agent_on_stun(&a->a, 0, SA(b->host), buf, (size_t)n,
	                               &m, net.now),
	                 0);
}

/* An authenticated error response fails the pair. */
static void test_error_response_fails_pair(void **state)
{
	struct node *a = &net.n[ALICE], *b = &net.n[BOB];
	struct stun_writer w;
	uint8_t buf[PUNCH_MSG_MAX];
	struct stun_msg m;
	int ih, n;

	(void)state;
	nodes_lan_nat();
	introduce();
	agent_tick(&a->a, net.now);
	ih = pair_to(&a->a, &b->host);
	stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING, STUN_ERROR,
	                 a->a.pairs[ih].txid);
	stun_put_error(&w, 487, "Role Conflict");
	stun_put_integrity(&w, (const uint8_t *)b->self.pwd,
	                   strlen(b->self.pwd));
	n = stun_writer_finish(&w);
	decode_ok(&m, buf, (size_t)n);
	assert_int_equal(agent_on_stun(&a->a, 0, SA(b->host), buf, (size_t)n,
	                               &m, net.now),
	                 1);
	assert_int_equal(a->a.pairs[ih].state, PAIR_FAILED);
	assert_u64(a->a.first_success_ms, 0);
}

/* ---- peer-reflexive candidates --------------------------------------- */

/* Bob sits behind a symmetric NAT: toward alice it uses a mapping the
 * server never saw, and it filters everything else. */
static int filter_symmetric(const struct dgram *d, int to,
                            struct sockaddr_storage *src, int *dup)
{
	(void)dup;
	if (d->from == BOB && to == ALICE)
		*src = net.bob_sym;
	if (to == BOB && !addr_equal(SA(d->dst), SA(net.bob_sym)))
		return 0;
	return 1;
}

static void test_prflx_learned(void **state)
{
	struct agent *a = &net.n[ALICE].a;
	const struct punch_candidate *r;
	int ip;

	(void)state;
	node_init(ALICE, "192.0.2.1:5000", NULL, 1);       /* public */
	node_init(BOB, "10.0.0.2:5000", "203.0.113.2:6000", 2);
	net.bob_symmetric = 1;
	net.bob_sym = sa_make("198.51.100.99", 7777);
	net.filter = filter_symmetric;
	introduce();
	assert_true(pair_to(a, &net.bob_sym) < 0);
	run_until_both(AGENT_STATE_CONNECTED, 2000);
	ip = pair_to(a, &net.bob_sym);
	assert_true(ip >= 0);
	r = &a->remote[a->pairs[ip].remote];
	assert_int_equal(r->type, CAND_PRFLX);
	/* its priority is the one bob's check announced (RFC 8445 7.3.1.3) */
	assert_int_equal(r->priority, punch_cand_priority(CAND_PRFLX, 65279));
	assert_u64(a->pairs[ip].priority,
	           agent_pair_priority(1, net.n[ALICE].self.cand[0].priority,
	                               r->priority));
	assert_int_equal(a->selected, ip);
	assert_addr(&selected_remote(BOB)->addr, &net.n[ALICE].host);
	/* the pair to the srflx address bob registered is still unanswered */
	assert_int_not_equal(a->pairs[pair_to(a, &net.n[BOB].pub)].state,
	                     PAIR_SUCCEEDED);
}

/* RFC 8445 7.3.1.4: a check received triggers a check back at once, even
 * on a pair that was to wait (srflx, before the opening delay) or that had
 * failed. */
static void test_triggered_check(void **state)
{
	struct node *a = &net.n[ALICE], *b = &net.n[BOB];
	uint8_t buf[PUNCH_MSG_MAX];
	char user[80];
	size_t len;
	int is;

	(void)state;
	nodes_lan_nat();
	introduce();
	is = pair_to(&b->a, &a->pub);
	assert_true(b->a.pairs[is].rtx.next_ms > net.now);
	snprintf(user, sizeof(user), "%s:%s", b->a.ufrag, a->a.ufrag);
	len = forge_check(buf, user, b->self.pwd, 0);
	net.nq = net.nlog = 0;
	feed_check(&b->a, buf, len, &a->pub);
	agent_tick(&b->a, net.now);
	/* the answer, and a check back to where the check came from */
	assert_size(net.nlog, 3); /* answer, host check, triggered check */
	assert_int_equal(net.log[0].cls, STUN_SUCCESS);
	{
		int found = 0;

		for (size_t i = 1; i < net.nlog; i++)
			found |= net.log[i].cls == STUN_REQUEST &&
			         addr_equal(SA(net.log[i].dst), SA(a->pub));
		assert_true(found);
	}
	/* a failed pair is revived by a check on it */
	b->a.pairs[is].state = PAIR_FAILED;
	b->a.pairs[is].rtx.next_ms = net.now + 100000;
	net.now += 10;
	net.nlog = 0;
	feed_check(&b->a, buf, len, &a->pub);
	assert_int_equal(b->a.pairs[is].state, PAIR_WAITING);
	agent_tick(&b->a, net.now);
	assert_int_equal(b->a.pairs[is].state, PAIR_IN_PROGRESS);
	assert_true(net.nlog >= 2);
	assert_addr(&net.log[net.nlog - 1].dst, &a->pub);
	assert_int_equal(net.log[net.nlog - 1].cls, STUN_REQUEST);
}

/* Checks from more addresses than the tables hold: each is answered, the
 * tables stop at their limits. */
static void test_remote_table_full(void **state)
{
	struct node *a = &net.n[ALICE], *b = &net.n[BOB];
	uint8_t buf[PUNCH_MSG_MAX];
	char user[80];
	size_t len;

	(void)state;
	nodes_lan_nat();
	introduce();
	net.nq = net.nlog = 0;
	snprintf(user, sizeof(user), "%s:%s", b->a.ufrag, a->a.ufrag);
	len = forge_check(buf, user, b->self.pwd, 0);
	for (int k = 0; k < 2 * AGENT_REMOTE_MAX; k++) {
		char ip[32];
		struct sockaddr_storage from;

		snprintf(ip, sizeof(ip), "198.51.100.%d", k + 1);
		from = sa_make(ip, 7000);
		assert_int_equal(feed_check(&b->a, buf, len, &from), 1);
		assert_true(b->a.n_remote <= AGENT_REMOTE_MAX);
		assert_true(b->a.n_pairs <= AGENT_PAIRS_MAX);
	}
	assert_size(b->a.n_remote, AGENT_REMOTE_MAX);
	assert_size(b->a.n_pairs, AGENT_REMOTE_MAX);
	assert_size(net.nlog, 2 * AGENT_REMOTE_MAX);
	for (size_t i = 0; i < b->a.n_pairs; i++)
		assert_true(b->a.pairs[i].remote < AGENT_REMOTE_MAX);
}

/* ---- candidates that lead nowhere but here ---------------------------- */

static const char *const local_cands[] = {
	"127.0.0.1", "224.0.0.1", "0.0.0.0", "169.254.1.2", "255.255.255.255",
	"::1", "fe80::1", "::ffff:127.0.0.1", "ff02::1", "::"
};
enum { N_LOCAL = sizeof(local_cands) / sizeof(local_cands[0]) };

/* bob's PEER-INFO lists, after his host and srflx candidates, every
 * address above (port 5000), and the server "saw" him at 127.0.0.1. */
static void list_local_cands(int observed_loopback)
{
	struct punch_peer *p = &net.n[BOB].self;

	assert_true(p->n_cand + N_LOCAL <= PUNCH_CANDIDATES_MAX);
	for (size_t i = 0; i < N_LOCAL; i++) {
		struct punch_candidate *c = &p->cand[p->n_cand++];

		c->type = CAND_HOST;
		c->priority = punch_cand_priority(CAND_HOST, (uint16_t)(60000 + i));
		c->addr = sa_make(local_cands[i], 5000);
	}
	if (observed_loopback)
		p->observed = sa_make("127.0.0.1", 6000);
}

/* Was anything sent to one of local_cands, or to 127.0.0.1:6000? */
static size_t sent_to_local(void)
{
	size_t n = 0;

	for (size_t i = 0; i < net.nlog; i++)
		if (addr_classify(SA(net.log[i].dst)) != ADDR_CLASS_ROUTABLE)
			n++;
	return n;
}

/* A PEER-INFO (from a hostile server, or a peer that lists what it
 * likes) cannot aim our checks at this host, this link or a multicast
 * group: those candidates are skipped and counted, and the real path
 * still connects. */
static void test_local_candidates_skipped(void **state)
{
	struct agent *a = &net.n[ALICE].a;

	(void)state;
	nodes_lan_nat();
	agent_set_socket(a, 1, punch_cand_priority(CAND_HOST, 65535));
	list_local_cands(1);
	introduce();
	run_until_both(AGENT_STATE_CONNECTED, 1000);
	run_until(net.now + 30000);            /* retransmissions, consent */
	assert_size(sent_to_local(), 0);
	assert_u64(a->skipped, N_LOCAL + 1);   /* and the observed address */
	assert_size(a->n_remote, 2);           /* bob's host and srflx */
	assert_addr(&selected_remote(ALICE)->addr, &net.n[BOB].host);
}

/* With the server on loopback (both peers on one machine) they are
 * checked as any other. */
static void test_local_candidates_allowed(void **state)
{
	struct agent *a = &net.n[ALICE].a;

	(void)state;
	nodes_lan_nat();
	agent_set_socket(a, 1, punch_cand_priority(CAND_HOST, 65535));
	a->allow_local = 1;
	list_local_cands(1);
	introduce();
	assert_u64(a->skipped, 0);
	assert_size(a->n_remote, 2 + N_LOCAL + 1);
	run_until(net.now + 100);
	assert_true(sent_to_local() >= N_LOCAL + 1);
}

/* ---- nomination, controlled side -------------------------------------- */

static uint64_t nominations_from;

static int filter_hold_nomination(const struct dgram *d, int to,
                                  struct sockaddr_storage *src, int *dup)
{
	struct stun_msg m;

	(void)src;
	(void)dup;
	decode_ok(&m, d->buf, d->len);
	if (to == BOB && (m.present & STUN_HAS_USE_CANDIDATE))
		return net.now >= nominations_from;
	return 1;
}

static void test_controlled_waits_for_use_candidate(void **state)
{
	struct agent *b = &net.n[BOB].a;
	size_t succeeded = 0;
	uint64_t connected_at;

	(void)state;
	nodes_lan_nat();
	nominations_from = net.now + 500;
	net.filter = filter_hold_nomination;
	introduce();
	run_until(nominations_from - 1);
	/* bob's own checks worked, but he has not chosen */
	for (size_t i = 0; i < b->n_pairs; i++)
		succeeded += b->pairs[i].state == PAIR_SUCCEEDED;
	assert_true(succeeded >= 1);
	assert_state(b, AGENT_STATE_CHECKING);
	assert_null(agent_selected(b));
	assert_state(&net.n[ALICE].a, AGENT_STATE_CHECKING);
	run_until_both(AGENT_STATE_CONNECTED, 2000);
	assert_size(net.n[BOB].n_states, 2);
	connected_at = net.n[BOB].state_at[1];
	assert_true(connected_at >= nominations_from);
	/* he chose the pair alice nominated */
	assert_addr(&selected_remote(BOB)->addr, &net.n[ALICE].host);
	assert_true(agent_selected(b)->nominated);
	assert_addr(&selected_remote(ALICE)->addr, &net.n[BOB].host);
}

/* USE-CANDIDATE on a pair whose check has not succeeded yet: the
 * controlled side chooses when its triggered check succeeds. */
static void test_use_candidate_before_own_success(void **state)
{
	struct node *a = &net.n[ALICE], *b = &net.n[BOB];
	uint8_t buf[PUNCH_MSG_MAX];
	char user[80];
	size_t len;
	int ip;

	(void)state;
	nodes_lan_nat();
	introduce();
	net.nq = 0;
	snprintf(user, sizeof(user), "%s:%s", b->a.ufrag, a->a.ufrag);
	len = forge_check(buf, user, b->self.pwd, 1);
	assert_int_equal(feed_check(&b->a, buf, len, &a->host), 1);
	ip = pair_to(&b->a, &a->host);
	assert_true(ip >= 0);
	assert_true(b->a.pairs[ip].nominated);
	assert_state(&b->a, AGENT_STATE_CHECKING);
	/* alice never got PEER-INFO here: only bob's check can answer */
	agent_tick(&b->a, net.now);
	{
		/* answer bob's check on that pair as alice would */
		struct stun_writer w;
		struct stun_msg m;
		int n;

		stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING,
		                 STUN_SUCCESS, b->a.pairs[ip].txid);
		stun_put_xor_addr(&w, STUN_ATTR_XOR_MAPPED_ADDRESS,
		                  SA(b->host));
		stun_put_integrity(&w, (const uint8_t *)a->self.pwd,
		                   strlen(a->self.pwd));
		n = stun_writer_finish(&w);
		decode_ok(&m, buf, (size_t)n);
		agent_on_stun(&b->a, 0, SA(a->host), buf, (size_t)n, &m,
		              net.now);
	}
	assert_state(&b->a, AGENT_STATE_CONNECTED);
	assert_int_equal(b->a.selected, ip);
}

/* ---- consent ------------------------------------------------------------ */
static void test_consent_and_gone(void **state)
{
	struct agent *a = &net.n[ALICE].a;
	uint64_t t_conn, last = 0, ok_ms, min_gap = UINT64_MAX, max_gap = 0;
	size_t consent = 0, retrans = 0;

	(void)state;
	nodes_lan_nat();
	net.filter = filter_drop_all;
	introduce();
	run_until_both(AGENT_STATE_CONNECTED, 1000);
	t_conn = a->connected_ms;
	net.nlog = 0;
	run_until(t_conn + 60000);
	assert_true(both(AGENT_STATE_CONNECTED));
	/* a check every 5 s +-20 % (RFC 7675), from each side */
	for (size_t i = 0; i < net.nlog; i++) {
		if (net.log[i].from != ALICE || net.log[i].cls != STUN_REQUEST)
			continue;
		if (consent) {
			uint64_t gap = net.log[i].at - last;

			assert_true(gap >= AGENT_CONSENT_MS * 8 / 10 &&
			            gap <= AGENT_CONSENT_MS * 12 / 10 + 2);
			min_gap = gap < min_gap ? gap : min_gap;
			max_gap = gap > max_gap ? gap : max_gap;
		} else /* the first one is jittered too, so peers do not fall into step */
			assert_true(net.log[i].at - t_conn >= AGENT_CONSENT_MS * 8 / 10 &&
			            net.log[i].at - t_conn <= AGENT_CONSENT_MS * 12 / 10);
		last = net.log[i].at;
		consent++;
		assert_addr(&net.log[i].dst, &net.n[BOB].host);
		assert_false(net.log[i].use_candidate);
	}
	/* randomized: not all the same */
	assert_true(min_gap + 100 < max_gap);
	assert_true(consent >= 60000 / (AGENT_CONSENT_MS * 12 / 10) &&
	            consent <= 60000 / (AGENT_CONSENT_MS * 8 / 10));

	/* the peer goes quiet */
	drop_all = 1;
	ok_ms = a->consent_ok_ms;
	net.nlog = 0;
	run_until(ok_ms + AGENT_CONSENT_LOST_MS - 1);
	assert_state(a, AGENT_STATE_CONNECTED);
	step();
	assert_state(a, AGENT_STATE_GONE);
	assert_int_equal(net.n[ALICE].states[net.n[ALICE].n_states - 1],
	                 AGENT_STATE_GONE);
	assert_int_equal(agent_tick(a, net.now), UINT64_MAX);
	/* unanswered consent checks went out every 500 ms, one transaction */
	last = 0;
	for (size_t i = 0, first = 0; i < net.nlog; i++) {
		if (net.log[i].from != ALICE)
			continue;
		if (retrans) {
			assert_u64(net.log[i].at - last, AGENT_CONSENT_RTO_MS);
			assert_memory_equal(net.log[i].txid,
			                    net.log[first].txid, STUN_TXID_LEN);
		} else {
			first = i;
		}
		last = net.log[i].at;
		retrans++;
	}
	assert_true(retrans >= 18);
	drop_all = 0;
}

/* A late answer restores consent before the deadline. */
static void test_consent_recovers(void **state)
{
	struct agent *a = &net.n[ALICE].a;
	uint64_t ok_ms;

	(void)state;
	nodes_lan_nat();
	net.filter = filter_drop_all;
	introduce();
	run_until_both(AGENT_STATE_CONNECTED, 1000);
	drop_all = 1;
	ok_ms = a->consent_ok_ms < net.n[BOB].a.consent_ok_ms ?
	                a->consent_ok_ms :
	                net.n[BOB].a.consent_ok_ms;
	run_until(ok_ms + AGENT_CONSENT_LOST_MS - 600);
	drop_all = 0;
	run_until(ok_ms + AGENT_CONSENT_LOST_MS + 20000);
	assert_true(both(AGENT_STATE_CONNECTED));
	assert_true(a->consent_ok_ms > ok_ms);
}

/* ---- opening probes --------------------------------------------------- */

static void count_probes(int from, size_t *host, size_t *other)
{
	*host = *other = 0;
	for (size_t i = 0; i < net.nlog; i++) {
		if (net.log[i].from != from || !net.log[i].ttl)
			continue;
		assert_int_equal(net.log[i].ttl, AGENT_OPEN_TTL);
		if (addr_equal(SA(net.log[i].dst), SA(net.n[!from].host)))
			(*host)++;
		else
			(*other)++;
	}
}

static void test_open_probes_when_natted(void **state)
{
	size_t host, other;
	uint64_t t0, probe_at = 0, first_check = 0;

	(void)state;
	nodes_lan_nat();
	net.lan = 0;
	t0 = net.now;
	introduce();
	/* at once, one per non-host candidate (srflx = observed: one) */
	count_probes(ALICE, &host, &other);
	assert_size(host, 0);
	assert_size(other, 1);
	run_until_both(AGENT_STATE_CONNECTED, 2000);
	run_until(net.now + 20000);
	count_probes(ALICE, &host, &other);
	assert_size(host, 0);
	assert_size(other, 1);
	count_probes(BOB, &host, &other);
	assert_size(other, 1);
	for (size_t i = 0; i < net.nlog; i++) {
		if (net.log[i].from != ALICE ||
		    !addr_equal(SA(net.log[i].dst), SA(net.n[BOB].pub)))
			continue;
		if (net.log[i].ttl && !probe_at)
			probe_at = net.log[i].at;
		if (!net.log[i].ttl && !first_check)
			first_check = net.log[i].at;
	}
	/* the probe opens our NAT before the first normal check */
	assert_u64(probe_at, t0);
	assert_true(first_check >= t0 + AGENT_OPEN_DELAY_MS);
	/* it is a real check, authenticated for bob */
	for (size_t i = 0; i < net.nlog; i++)
		if (net.log[i].ttl)
			assert_int_equal(net.log[i].cls, STUN_REQUEST);
}

static void test_no_open_probes_without_nat(void **state)
{
	size_t host, other;

	(void)state;
	node_init(ALICE, "192.0.2.1:5000", NULL, 1);
	node_init(BOB, "10.0.0.2:5000", "203.0.113.2:6000", 2);
	introduce();
	run_until_both(AGENT_STATE_CONNECTED, 2000);
	run_until(net.now + 20000);
	/* alice is not natted: no small-TTL datagram at all */
	count_probes(ALICE, &host, &other);
	assert_size(host + other, 0);
	/* bob is, and probes alice's only candidate only if it is not a
	 * host one: it is, so nothing either */
	count_probes(BOB, &host, &other);
	assert_size(host + other, 0);
}

/* ---- restarts ------------------------------------------------------------ */

static void test_peer_restart(void **state)
{
	struct agent *a = &net.n[ALICE].a;
	struct punch_peer same;

	(void)state;
	nodes_lan_nat();
	introduce();
	run_until_both(AGENT_STATE_CONNECTED, 1000);
	/* a repeated PEER-INFO (same session) changes nothing */
	same = net.n[BOB].self;
	agent_set_remote(a, &same, net.now);
	assert_state(a, AGENT_STATE_CONNECTED);
	assert_non_null(agent_selected(a));
	/* bob restarts: new session, new credentials */
	node_init(BOB, "10.0.0.2:5000", "203.0.113.2:6000", 3);
	agent_set_remote(a, &net.n[BOB].self, net.now);
	assert_state(a, AGENT_STATE_CHECKING);
	assert_null(agent_selected(a));
	agent_set_remote(&net.n[BOB].a, &net.n[ALICE].self, net.now);
	run_until_both(AGENT_STATE_CONNECTED, 1000);
	assert_addr(&selected_remote(ALICE)->addr, &net.n[BOB].host);
}

/* A check that arrives before PEER-INFO is answered (the peer's pair
 * works), though nothing is learned from it. */
static void test_check_before_peer_info(void **state)
{
	struct node *a = &net.n[ALICE], *b = &net.n[BOB];
	uint8_t buf[PUNCH_MSG_MAX];
	char user[80];
	size_t len;

	(void)state;
	nodes_lan_nat();
	agent_set_remote(&a->a, &b->self, net.now);
	net.nq = 0;
	snprintf(user, sizeof(user), "%s:%s", b->a.ufrag, a->a.ufrag);
	len = forge_check(buf, user, b->self.pwd, 0);
	assert_int_equal(feed_check(&b->a, buf, len, &a->host), 1);
	assert_size(net.nq, 1);
	assert_size(b->a.n_remote, 0);
	assert_state(&b->a, AGENT_STATE_IDLE);
	assert_int_equal(agent_tick(&b->a, net.now), UINT64_MAX);
}


/* ---- relayed candidates ------------------------------------------------ */

/* Two NATs with no direct path (the filter), each peer with a relayed
 * address: a relayed pair is chosen, by both, and not before
 * AGENT_RELAY_WAIT_MS while direct pairs are still being checked. */
static void test_relay_when_direct_blocked(void **state)
{
	const struct agent_pair *pa, *pb;
	uint64_t t0;

	(void)state;
	node_init(ALICE, "10.0.0.1:5000", "203.0.113.1:6000", 1);
	node_init(BOB, "10.1.0.2:5000", "192.0.2.2:6000", 2);
	node_relay(ALICE, "198.51.100.10:50001");
	node_relay(BOB, "198.51.100.10:50002");
	net.filter = filter_direct_blocked;
	t0 = net.now;
	introduce();
	run_until_both(AGENT_STATE_CONNECTED, 2000);
	pa = agent_selected(&net.n[ALICE].a);
	pb = agent_selected(&net.n[BOB].a);
	assert_true(agent_pair_is_relayed(&net.n[ALICE].a, pa));
	assert_true(agent_pair_is_relayed(&net.n[BOB].a, pb));
	assert_true(net.n[ALICE].a.connected_ms >= t0 + AGENT_RELAY_WAIT_MS);
	/* well before the direct checks would have given up */
	assert_true(net.n[ALICE].a.connected_ms < t0 + AGENT_RELAY_WAIT_MS + 100);
	/* the best relayed pair: one relay hop, from our host socket to the
	 * peer's relayed address, or from ours to the peer's NAT */
	assert_true(pa->sock == AGENT_SOCK_RELAY ||
	            agent_pair_remote(&net.n[ALICE].a, pa)->type == CAND_RELAY);
}

/* With a direct path, the relayed candidates change nothing: a direct pair,
 * as quickly as without them. */
static void test_direct_beats_relay(void **state)
{
	const struct agent_pair *p;

	(void)state;
	node_init(ALICE, "10.0.0.1:5000", "203.0.113.1:6000", 1);
	node_init(BOB, "10.1.0.2:5000", "192.0.2.2:6000", 2);
	node_relay(ALICE, "198.51.100.10:50001");
	node_relay(BOB, "198.51.100.10:50002");
	introduce();
	run_until_both(AGENT_STATE_CONNECTED, 2000);
	p = agent_selected(&net.n[ALICE].a);
	assert_false(agent_pair_is_relayed(&net.n[ALICE].a, p));
	assert_false(agent_pair_is_relayed(&net.n[BOB].a,
	                                   agent_selected(&net.n[BOB].a)));
	assert_addr(&selected_remote(ALICE)->addr, &net.n[BOB].pub);
	assert_true(net.n[ALICE].a.connected_ms < net.n[ALICE].a.checks_ms +
	                                                  AGENT_RELAY_WAIT_MS);
}

/* -relay-only: only relayed pairs exist, and one is chosen though the
 * direct path works. */
static void test_relay_only(void **state)
{
	(void)state;
	node_init(ALICE, "10.0.0.1:5000", "203.0.113.1:6000", 1);
	node_init(BOB, "10.1.0.2:5000", "192.0.2.2:6000", 2);
	agent_set_path_policy(&net.n[ALICE].a, AGENT_PATH_RELAY_ONLY);
	agent_set_path_policy(&net.n[BOB].a, AGENT_PATH_RELAY_ONLY);
	node_relay(ALICE, "198.51.100.10:50001");
	node_relay(BOB, "198.51.100.10:50002");
	introduce();
	assert_true(net.n[ALICE].a.n_pairs > 0);
	for (size_t i = 0; i < net.n[ALICE].a.n_pairs; i++)
		assert_true(agent_pair_is_relayed(&net.n[ALICE].a,
		                                  &net.n[ALICE].a.pairs[i]));
	run_until_both(AGENT_STATE_CONNECTED, 2000);
	assert_true(agent_pair_is_relayed(&net.n[ALICE].a,
	                                  agent_selected(&net.n[ALICE].a)));
	assert_true(agent_pair_is_relayed(&net.n[BOB].a,
	                                  agent_selected(&net.n[BOB].a)));
	/* nothing went straight from host to host or NAT to NAT */
	for (size_t i = 0; i < net.nlog; i++) {
		int to = !net.log[i].from;

		assert_true(addr_equal(SA(net.log[i].dst), SA(net.n[to].relay)) ||
		            !addr_equal(SA(net.log[i].dst), SA(net.n[to].pub)) ||
		            net.log[i].ttl == 0);
	}
}

/* -relay-only, and PEER-INFO comes before our relayed address (the
 * allocation takes two round trips after registering): no pair yet is not
 * a failure; once the relays exist the relayed pairs connect. */
static void test_relay_only_before_relay(void **state)
{
	(void)state;
	node_init(ALICE, "10.0.0.1:5000", "203.0.113.1:6000", 1);
	node_init(BOB, "10.1.0.2:5000", "192.0.2.2:6000", 2);
	agent_set_path_policy(&net.n[ALICE].a, AGENT_PATH_RELAY_ONLY);
	agent_set_path_policy(&net.n[BOB].a, AGENT_PATH_RELAY_ONLY);
	introduce();
	assert_size(net.n[ALICE].a.n_pairs, 0);
	run_until(net.now + 50);
	assert_true(both(AGENT_STATE_CHECKING));
	node_relay(ALICE, "198.51.100.10:50001");
	node_relay(BOB, "198.51.100.10:50002");
	assert_size(agent_add_candidates(&net.n[BOB].a, &net.n[ALICE].self,
	                                 net.now),
	            1);
	assert_size(agent_add_candidates(&net.n[ALICE].a, &net.n[BOB].self,
	                                 net.now),
	            1);
	run_until_both(AGENT_STATE_CONNECTED, 2000);
	assert_true(agent_pair_is_relayed(&net.n[ALICE].a,
	                                  agent_selected(&net.n[ALICE].a)));
}

/* -direct-only: with no direct path, the relayed candidates are not used
 * and the checks fail. */
static void test_direct_only_fails(void **state)
{
	uint64_t t0;

	(void)state;
	node_init(ALICE, "10.0.0.1:5000", "203.0.113.1:6000", 1);
	node_init(BOB, "10.1.0.2:5000", "192.0.2.2:6000", 2);
	agent_set_path_policy(&net.n[ALICE].a, AGENT_PATH_DIRECT_ONLY);
	agent_set_path_policy(&net.n[BOB].a, AGENT_PATH_DIRECT_ONLY);
	node_relay(ALICE, "198.51.100.10:50001");
	node_relay(BOB, "198.51.100.10:50002");
	net.filter = filter_direct_blocked;
	t0 = net.now;
	introduce();
	for (size_t i = 0; i < net.n[ALICE].a.n_pairs; i++)
		assert_false(agent_pair_is_relayed(&net.n[ALICE].a,
		                                   &net.n[ALICE].a.pairs[i]));
	run_until(t0 + AGENT_CHECK_TIMEOUT_MS);
	assert_true(both(AGENT_STATE_FAILED));
}

/* The relayed candidates come after PEER-INFO (the peers allocate once
 * registered): the new ones are paired and checked, and connect. */
static void test_relay_trickled(void **state)
{
	struct agent *a = &net.n[ALICE].a, *b = &net.n[BOB].a;
	size_t pairs;

	(void)state;
	node_init(ALICE, "10.0.0.1:5000", "203.0.113.1:6000", 1);
	node_init(BOB, "10.1.0.2:5000", "192.0.2.2:6000", 2);
	net.filter = filter_direct_blocked;
	introduce();
	run_until(net.now + 300);
	assert_true(both(AGENT_STATE_CHECKING));
	pairs = b->n_pairs;
	/* alice's relay: her agent pairs it, then bob hears of it */
	node_relay(ALICE, "198.51.100.10:50001");
	assert_true(a->n_pairs > pairs);
	assert_size(agent_add_candidates(b, &net.n[ALICE].self, net.now), 1);
	assert_true(b->n_pairs > pairs);
	/* the same list again adds nothing */
	assert_size(agent_add_candidates(b, &net.n[ALICE].self, net.now), 0);
	run_until_both(AGENT_STATE_CONNECTED, 2000);
	assert_true(agent_pair_is_relayed(a, agent_selected(a)));
	assert_true(agent_pair_is_relayed(b, agent_selected(b)));
}

/* bob's relayed checks reach alice before the PEER-INFO that lists his
 * relayed candidate: she learns the address as peer-reflexive, and, the
 * direct path blocked, connects on it.  Once the list arrives, the pair is
 * known as relayed, so the direct path takes over when it opens. */
static void test_relay_learned_before_listed(void **state)
{
	struct agent *a = &net.n[ALICE].a, *b = &net.n[BOB].a;

	(void)state;
	node_init(ALICE, "10.0.0.1:5000", "203.0.113.1:6000", 1);
	node_init(BOB, "10.1.0.2:5000", "192.0.2.2:6000", 2);
	net.filter = filter_direct_blocked;
	introduce();
	node_relay(BOB, "198.51.100.10:50002"); /* alice is not told */
	run_until_both(AGENT_STATE_CONNECTED, 2000);
	assert_true(agent_pair_is_relayed(b, agent_selected(b)));
	assert_int_equal(selected_remote(ALICE)->type, CAND_PRFLX);
	assert_false(agent_pair_is_relayed(a, agent_selected(a)));

	agent_add_candidates(a, &net.n[BOB].self, net.now);
	assert_int_equal(selected_remote(ALICE)->type, CAND_RELAY);
	assert_true(agent_pair_is_relayed(a, agent_selected(a)));
	direct_open = 1;
	run_until(net.now + 2000);
	assert_size(net.n[ALICE].n_switches, 1);
	assert_false(agent_pair_is_relayed(a, agent_selected(a)));
	assert_false(agent_pair_is_relayed(b, agent_selected(b)));
}

/* Connected through the relay, then the direct path opens: the direct
 * checks go on in the background, and within a check interval both sides
 * move to a direct pair (on_switch).  When that path dies, both fall back
 * to the relay once consent is lost, rather than giving up. */
static void test_upgrade_and_fall_back(void **state)
{
	struct agent *a = &net.n[ALICE].a, *b = &net.n[BOB].a;
	uint64_t opened, closed;

	(void)state;
	node_init(ALICE, "10.0.0.1:5000", "203.0.113.1:6000", 1);
	node_init(BOB, "10.1.0.2:5000", "192.0.2.2:6000", 2);
	node_relay(ALICE, "198.51.100.10:50001");
	node_relay(BOB, "198.51.100.10:50002");
	net.filter = filter_direct_blocked;
	introduce();
	run_until_both(AGENT_STATE_CONNECTED, 2000);
	assert_true(agent_pair_is_relayed(a, agent_selected(a)));
	run_until(net.now + 3000);
	assert_size(net.n[ALICE].n_switches, 0);
	assert_size(net.n[BOB].n_switches, 0);

	direct_open = 1;
	opened = net.now;
	run_until(net.now + 2000);
	assert_size(net.n[ALICE].n_switches, 1);
	assert_size(net.n[BOB].n_switches, 1);
	assert_false(agent_pair_is_relayed(a, agent_selected(a)));
	assert_false(agent_pair_is_relayed(b, agent_selected(b)));
	assert_addr(&selected_remote(ALICE)->addr, &net.n[BOB].pub);
	/* within one check interval (AGENT_CHECK_RTO_MAX_MS, jittered) and a
	 * few round trips */
	assert_true(net.n[ALICE].switch_at - opened <
	            AGENT_CHECK_RTO_MAX_MS * 11 / 10 + 20);
	assert_state(a, AGENT_STATE_CONNECTED);

	direct_open = 0;
	closed = net.now;
	run_until(net.now + AGENT_CONSENT_LOST_MS + 2000);
	assert_state(a, AGENT_STATE_CONNECTED);
	assert_state(b, AGENT_STATE_CONNECTED);
	assert_size(net.n[ALICE].n_switches, 2);
	assert_size(net.n[BOB].n_switches, 2);
	assert_true(agent_pair_is_relayed(a, agent_selected(a)));
	assert_true(agent_pair_is_relayed(b, agent_selected(b)));
	/* once consent was lost: 15 s after the last answer, which came at
	 * most a consent interval (+20%) before the path died */
	assert_true(net.n[ALICE].switch_at - closed >=
	            AGENT_CONSENT_LOST_MS - AGENT_CONSENT_MS * 12 / 10);
	/* and the relay keeps consent: still connected much later */
	run_until(net.now + 3 * AGENT_CONSENT_LOST_MS);
	assert_true(both(AGENT_STATE_CONNECTED));
	assert_true(agent_pair_is_relayed(a, agent_selected(a)));
}

/* -relay-only never upgrades. */
static void test_relay_only_stays(void **state)
{
	struct agent *a = &net.n[ALICE].a;

	(void)state;
	node_init(ALICE, "10.0.0.1:5000", "203.0.113.1:6000", 1);
	node_init(BOB, "10.1.0.2:5000", "192.0.2.2:6000", 2);
	agent_set_path_policy(a, AGENT_PATH_RELAY_ONLY);
	agent_set_path_policy(&net.n[BOB].a, AGENT_PATH_RELAY_ONLY);
	node_relay(ALICE, "198.51.100.10:50001");
	node_relay(BOB, "198.51.100.10:50002");
	introduce();
	run_until_both(AGENT_STATE_CONNECTED, 2000);
	run_until(net.now + 5000);
	assert_size(net.n[ALICE].n_switches, 0);
	assert_true(agent_pair_is_relayed(a, agent_selected(a)));
}

/* A candidate list of another session is not a trickle. */
static void test_add_candidates_other_session(void **state)
{
	struct punch_peer other;

	(void)state;
	nodes_lan_nat();
	introduce();
	other = net.n[ALICE].self;
	other.session++;
	other.cand[other.n_cand].type = CAND_RELAY;
	other.cand[other.n_cand].priority = punch_cand_priority(CAND_RELAY, 1);
	other.cand[other.n_cand++].addr = sa_make("198.51.100.10", 50001);
	assert_size(agent_add_candidates(&net.n[BOB].a, &other, net.now), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, net_setup)
	const struct CMUnitTest tests[] = {
		T(test_pair_priority_formula),
		T(test_pair_priority_order),
		T(test_pairs_built),
		T(test_connect_lan),
		T(test_host_pair_beats_srflx),
		T(test_nominate_waits_then_srflx),
		T(test_no_path_fails),
		T(test_check_authentication),
		T(test_check_contents),
		T(test_response_authentication),
		T(test_error_response_fails_pair),
		T(test_prflx_learned),
		T(test_triggered_check),
		T(test_remote_table_full),
		T(test_local_candidates_skipped),
		T(test_local_candidates_allowed),
		T(test_controlled_waits_for_use_candidate),
		T(test_use_candidate_before_own_success),
		T(test_consent_and_gone),
		T(test_consent_recovers),
		T(test_open_probes_when_natted),
		T(test_no_open_probes_without_nat),
		T(test_peer_restart),
		T(test_check_before_peer_info),
		T(test_relay_when_direct_blocked),
		T(test_direct_beats_relay),
		T(test_relay_only),
		T(test_relay_only_before_relay),
		T(test_direct_only_fails),
		T(test_relay_trickled),
		T(test_add_candidates_other_session),
		T(test_relay_learned_before_listed),
		T(test_upgrade_and_fall_back),
		T(test_relay_only_stays),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
