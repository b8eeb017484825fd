/*
 * Unit tests for the rendezvous server (src/rendezvous_server.c), with a
 * fake clock and no sockets.
 *
 * rdv_handle() gets REGISTER requests built by the raw builder in unit.h
 * (so that a bug in punch_peer_put() cannot hide one in the server), and
 * the PEER-INFO requests the server sends through its callback are
 * captured and decoded.
 */
#include "rendezvous_unit.h"
#include "retransmit.h"

/* ---- REGISTER and the nonce ------------------------------------------ */

static void test_first_register_gets_438(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	struct reg_req q = req_make("alice", "bob", 1);
	struct result res;
	char nonce[33], nonce2[33];

	(void)state;
	/* The times here go back and forth, as no clock does: a time behind
	 * a prefix's bucket finds it full (test_registry.c has the limit). */
	registry_set_rate(rdv_registry(srv), 0, 0);
	feed_req(&res, &q, &from, T0);
	expect_438(&res, nonce);
	assert_size(registry_count(rdv_registry(srv)), 0);
	assert_size(cap.n, 0);
	assert_u64(rdv_stats(srv)->registered, 0);
	/* the same address in the same bucket gets the same nonce */
	fresh_txid(q.txid);
	feed_req(&res, &q, &from, T0 + 5000);
	expect_438(&res, nonce2);
	assert_str(nonce2, nonce);
	/* another port gets another one */
	from = sa_make("198.51.100.1", 40001);
	feed_req(&res, &q, &from, T0);
	expect_438(&res, nonce2);
	assert_true(strcmp(nonce, nonce2) != 0);
	/* the nonce starts with the time bucket, in hex */
	assert_memory_equal(nonce, "00000000", 8);
	feed_req(&res, &q, &from, 5 * (uint64_t)NONCE_BUCKET_MS + 1);
	expect_438(&res, nonce2);
	assert_memory_equal(nonce2, "00000005", 8);
}

static void test_register_with_nonce(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	struct reg_req q = req_make("alice", "bob", 0x1122334455667788ull);
	const struct reg_entry *e;
	struct punch_peer seen;
	struct result res;
	char nonce[33];

	(void)state;
	do_register(&res, &q, &from, T0, nonce);
	expect_registered(&res, &from, PUNCH_STATUS_WAITING);
	assert_size(registry_count(rdv_registry(srv)), 1);
	assert_u64(rdv_stats(srv)->registered, 1);
	e = registry_find(rdv_registry(srv), "alice");
	assert_non_null(e);
	registry_entry_peer(e, &seen);
	assert_string_equal(seen.peer_id, "bob");
	assert_true(seen.session == 0x1122334455667788ull);
	assert_size(seen.n_cand, 3);
	assert_addr(&seen.cand[1].addr, &q.cand[1].addr);
	assert_addr(&seen.observed, &from);
	assert_size(cap.n, 0);

	/* IPv6, on another socket */
	{
		struct sockaddr_storage from6 = sa_make("2001:db8::7", 40000);
		struct reg_req q6 = req_make("carol", "dave", 3);
		struct raw r;
		char nonce6[33];

		build_register(&r, &q6);
		feed(&res, 1, r.b, r.len, &from6, T0);
		expect_438(&res, nonce6);
		q6.nonce = nonce6;
		fresh_txid(q6.txid);
		build_register(&r, &q6);
		feed(&res, 1, r.b, r.len, &from6, T0);
		expect_registered(&res, &from6, PUNCH_STATUS_WAITING);
		assert_int_equal(registry_entry_sock(registry_find(
					 rdv_registry(srv), "carol")),
		                 1);
	}
}

static void test_nonce_bound_to_address(void **state)
{
	struct sockaddr_storage a = sa_make("198.51.100.1", 40000);
	struct sockaddr_storage other_port = sa_make("198.51.100.1", 40001);
	struct sockaddr_storage other_ip = sa_make("198.51.100.2", 40000);
	struct reg_req q = req_make("alice", "bob", 1);
	struct result res;
	char nonce[33], fresh[33];

	(void)state;
	feed_req(&res, &q, &a, T0);
	expect_438(&res, nonce);
	/* a spoofer that did not see the nonce at its own address */
	q.nonce = nonce;
	feed_req(&res, &q, &other_port, T0);
	expect_438(&res, fresh);
	feed_req(&res, &q, &other_ip, T0);
	expect_438(&res, fresh);
	assert_size(registry_count(rdv_registry(srv)), 0);
	/* one wrong digit, anywhere */
	for (size_t i = 0; i < 32; i += 5) {
		char bad[33];

		memcpy(bad, nonce, sizeof(bad));
		bad[i] = bad[i] == '0' ? '1' : '0';
		q.nonce = bad;
		feed_req(&res, &q, &a, T0);
		expect_438(&res, fresh);
	}
	/* wrong lengths */
	q.nonce = "0000000";
	feed_req(&res, &q, &a, T0);
	expect_438(&res, fresh);
	{
		char longer[40];

		snprintf(longer, sizeof(longer), "%s0", nonce);
		q.nonce = longer;
		feed_req(&res, &q, &a, T0);
		expect_438(&res, fresh);
	}
	/* a nonce from another server (restarted: another secret) */
	srv_new(64);
	q.nonce = nonce;
	feed_req(&res, &q, &a, T0);
	expect_438(&res, fresh);
	assert_true(strcmp(fresh, nonce) != 0);
	q.nonce = fresh;
	feed_req(&res, &q, &a, T0);
	expect_registered(&res, &a, PUNCH_STATUS_WAITING);
}

/* A nonce is good in its own bucket and the next: 60 to 120 s. */
static void test_nonce_lifetime(void **state)
{
	struct sockaddr_storage a = sa_make("198.51.100.1", 40000);
	struct reg_req q = req_make("alice", "bob", 1);
	const uint64_t b =
		10 * (uint64_t)NONCE_BUCKET_MS; /* start of bucket 10 */
	struct result res;
	char nonce[33], fresh[33];

	(void)state;
	registry_set_rate(rdv_registry(srv), 0, 0); /* times go back: above */
	feed_req(&res, &q, &a, b + NONCE_BUCKET_MS - 1); /* end of bucket 10 */
	expect_438(&res, nonce);
	q.nonce = nonce;
	feed_req(&res, &q, &a, b);
	expect_registered(&res, &a, PUNCH_STATUS_WAITING);
	feed_req(&res, &q, &a, b + 2 * NONCE_BUCKET_MS - 1);
	expect_registered(&res, &a, PUNCH_STATUS_WAITING);
	feed_req(&res, &q, &a, b + 2 * NONCE_BUCKET_MS);
	expect_438(&res, fresh);
	assert_memory_equal(fresh, "0000000c", 8);
	/* a nonce from the future is no good either */
	feed_req(&res, &q, &a, b - 1);
	expect_438(&res, fresh);
}

static void test_unknown_attribute_420(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	struct reg_req q = req_make("alice", "bob", 1);
	struct result res;
	struct raw r;

	(void)state;
	build_register(&r, &q);
	r.len -= 8; /* drop the FINGERPRINT, add attributes, add it again */
	raw_fix_length(&r);
	raw_attr(&r, 0x7ABC, "x", 1);
	raw_attr(&r, 0x4F0F, "y", 1);  /* next to ours, but not ours */
	raw_attr(&r, 0xC0DE, "z", 1);  /* comprehension-optional: fine */
	raw_fingerprint(&r);
	/* 420 comes before the nonce check: no NONCE in it */
	feed(&res, 0, r.b, r.len, &from, T0);
	assert_error_reply(&res, 420, "Unknown Attribute");
	assert_false(res.m.present & STUN_HAS_NONCE);
	assert_true(res.m.present & STUN_HAS_UNKNOWN_ATTRS);
	assert_size(res.m.unknown_attrs_count, 2);
	assert_int_equal(res.m.unknown_attrs[0], 0x7ABC);
	assert_int_equal(res.m.unknown_attrs[1], 0x4F0F);
	assert_size(registry_count(rdv_registry(srv)), 0);
}

struct bad_case {
	const char *id, *peer;
	const char *reason;
};

static void test_bad_ids_400(void **state)
{
	static const struct bad_case cases[] = {
		{ "al ice", "bob",
		  "Bad Request: id contains a space or control character" },
		{ "alice", "bo\tb",
		  "Bad Request: id contains a space or control character" },
		{ "alice\x7f", "bob",
		  "Bad Request: id contains a space or control character" },
		{ "\xC0\xAF", "bob", "Bad Request: id is not valid UTF-8" },
		{ "\xED\xA0\x80", "bob", "Bad Request: id is not valid UTF-8" },
		{ "alice", "\xF4\x90\x80\x80",
		  "Bad Request: id is not valid UTF-8" },
		{ "", "bob", "Bad Request: id is empty" },
		{ "alice", "", "Bad Request: id is empty" },
		{ NULL, "bob", "Bad Request: id missing" },
		{ "alice", NULL, "Bad Request: peer id missing" },
		{ "#alice", "bob", "Bad Request: id starts with '#'" },
		{ "alice", "bob\xE2\x80\xAE",
		  "Bad Request: id contains a bidi control or an invisible character" },
		{ "al\xE2\x80\x8Bice", "bob",
		  "Bad Request: id contains a bidi control or an invisible character" },
		{ "012345678901234567890123456789012345678901234567890123456789"
		  "0123X",
		  "bob", "Bad Request: id is longer than 64 bytes" },
		{ "alice", "alice",
		  "Bad Request: id and peer id are the same" },
	};
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	struct result res;
	char nonce[33];

	(void)state;
	{
		struct reg_req q = req_make("alice", "bob", 1);

		feed_req(&res, &q, &from, T0);
		expect_438(&res, nonce);
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct reg_req q = req_make(cases[i].id, cases[i].peer, 1);

		q.nonce = nonce;
		feed_req(&res, &q, &from, T0);
		if (res.verdict != BINDING_REPLY || res.m.error_code != 400)
			print_error("case %zu: %s\n", i, cases[i].reason);
		assert_error_reply(&res, 400, cases[i].reason);
		assert_u64(rdv_stats(srv)->rejected, i + 1);
	}
	assert_size(registry_count(rdv_registry(srv)), 0);
	assert_u64(rdv_stats(srv)->registered, 0);

	/* the other parse failures carry their reasons too */
	{
		struct reg_req q = req_make("alice", "bob", 1);
		struct raw r;

		q.nonce = nonce;
		build_register(&r, &q);
		r.len -= 8;
		raw_fix_length(&r);
		raw_attr(&r, PUNCH_ATTR_KEY_FP, "short", 5);
		raw_fingerprint(&r);
		feed(&res, 0, r.b, r.len, &from, T0);
		/* after the signature: not covered by it */
		assert_error_reply(&res, 401,
		                   "Unauthorized: signature not last before FINGERPRINT");
	}
	/* a valid request from the same address still works */
	{
		struct reg_req q = req_make("alice", "bob", 1);

		q.nonce = nonce;
		feed_req(&res, &q, &from, T0);
		expect_registered(&res, &from, PUNCH_STATUS_WAITING);
	}
}

static void test_not_register(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	struct result res;
	struct raw r;

	(void)state;
	/* a PEER-INFO request to the server: a request it does not serve */
	raw_init(&r, T_PEER_INFO);
	feed(&res, 0, r.b, r.len, &from, T0);
	assert_error_reply(&res, 400, "Bad Request: unknown method");
	/* a Binding request is not the rendezvous service's either */
	raw_init(&r, T_BINDING);
	feed(&res, 0, r.b, r.len, &from, T0);
	assert_error_reply(&res, 400, "Bad Request: unknown method");
	/* an indication, or a response that matches nothing: ignored */
	raw_init(&r, 0x00FD); /* REGISTER indication */
	feed(&res, 0, r.b, r.len, &from, T0);
	assert_int_equal(res.verdict, BINDING_IGNORE);
	raw_init(&r, T_REGISTER_OK);
	feed(&res, 0, r.b, r.len, &from, T0);
	assert_int_equal(res.verdict, BINDING_IGNORE);
	raw_init(&r, T_PEER_INFO_OK);
	feed(&res, 0, r.b, r.len, &from, T0);
	assert_int_equal(res.verdict, BINDING_IGNORE);
	assert_u64(rdv_stats(srv)->acked, 0);
	/* malformed: dropped with a reason */
	raw_init(&r, T_REGISTER);
	r.b[4] ^= 1; /* cookie */
	feed(&res, 0, r.b, r.len, &from, T0);
	assert_int_equal(res.verdict, BINDING_DROP);
	assert_str(res.why, stun_err_str(STUN_ERR_COOKIE));
	feed(&res, 0, r.b, 10, &from, T0);
	assert_int_equal(res.verdict, BINDING_DROP);
	assert_str(res.why, stun_err_str(STUN_ERR_SHORT));
	assert_size(cap.n, 0);
}

static void test_pair_introduces_both(void **state)
{
	struct pair_fixture f;

	(void)state;
	pair_up(&f);
}

static void test_refresh_does_not_reintroduce(void **state)
{
	struct pair_fixture f;
	struct result res;

	(void)state;
	pair_up(&f);
	cap.n = 0;
	fresh_txid(f.a.txid);
	feed_req(&res, &f.a, &f.a_from, T0 + 200);
	expect_registered(&res, &f.a_from, PUNCH_STATUS_PAIRED);
	assert_size(cap.n, 0);
	assert_u64(rdv_stats(srv)->introduced, 1);
	assert_u64(rdv_stats(srv)->registered, 3);
}

/* A refresh that brings a new candidate (the relayed address gathered
 * after the first REGISTER): only the peer hears, with the whole list. */
static void test_new_candidate_updates_peer(void **state)
{
	struct pair_fixture f;
	struct result res;
	struct stun_msg to_b;

	(void)state;
	pair_up(&f);
	cap.n = 0;
	f.a.cand[f.a.n_cand].type = CAND_RELAY;
	f.a.cand[f.a.n_cand].priority = punch_cand_priority(CAND_RELAY, 65535);
	f.a.cand[f.a.n_cand++].addr = sa_make("198.51.100.10", 50001);
	fresh_txid(f.a.txid);
	feed_req(&res, &f.a, &f.a_from, T0 + 200);
	expect_registered(&res, &f.a_from, PUNCH_STATUS_PAIRED);
	assert_size(cap.n, 1);
	expect_peer_info(&cap.s[0], 1, &f.b_from, &f.a, &f.a_from, &to_b);
	assert_u64(rdv_stats(srv)->updated, 1);
	assert_u64(rdv_stats(srv)->introduced, 1);
	/* the same list again is a plain refresh */
	cap.n = 0;
	fresh_txid(f.a.txid);
	feed_req(&res, &f.a, &f.a_from, T0 + 300);
	expect_registered(&res, &f.a_from, PUNCH_STATUS_PAIRED);
	assert_size(cap.n, 0);
	assert_u64(rdv_stats(srv)->updated, 1);
}

static void test_new_session_reintroduces(void **state)
{
	struct pair_fixture f;
	struct result res;
	struct stun_msg to_a, to_b;

	(void)state;
	pair_up(&f);
	cap.n = 0;
	/* alice restarts: same address, same nonce, new session */
	f.a.session = 0xA11CE2;
	fresh_txid(f.a.txid);
	feed_req(&res, &f.a, &f.a_from, T0 + 300);
	expect_registered(&res, &f.a_from, PUNCH_STATUS_PAIRED);
	assert_u64(rdv_stats(srv)->introduced, 2);
	assert_size(cap.n, 2);
	/* the order is not part of the contract */
	if (cap.s[0].to.ss_family == AF_INET) {
		expect_peer_info(&cap.s[0], 0, &f.a_from, &f.b, &f.b_from,
		                 &to_a);
		expect_peer_info(&cap.s[1], 1, &f.b_from, &f.a, &f.a_from,
		                 &to_b);
	} else {
		expect_peer_info(&cap.s[1], 0, &f.a_from, &f.b, &f.b_from,
		                 &to_a);
		expect_peer_info(&cap.s[0], 1, &f.b_from, &f.a, &f.a_from,
		                 &to_b);
	}
}

/* RFC 8489 6.2.1: RTO 500 ms, doubling, 7 transmissions in all, each wait
 * lengthened by up to RTX_JITTER_PCT percent (retransmit.h). */
static void test_peer_info_retransmissions(void **state)
{
	static const uint64_t wait[RTX_RC] = { 0, 500, 1000, 2000, 4000,
		                               8000, 16000 };
	struct pair_fixture f;
	const uint64_t t_pair = T0 + 100;
	size_t n_a = 0, n_b = 0;
	uint64_t last_a = t_pair, last_b = t_pair, next_want = UINT64_MAX;

	(void)state;
	pair_up(&f);
	/* every millisecond for 100 s */
	for (uint64_t t = t_pair; t <= t_pair + 100000; t++) {
		size_t before = cap.n;
		uint64_t next;

		cap.now = t;
		next = rdv_tick(srv, t);
		assert_true(next > t);
		for (size_t i = before; i < cap.n; i++) {
			const struct sent *s = &cap.s[i];
			int to_a = s->to.ss_family == AF_INET;
			size_t k = to_a ? ++n_a : ++n_b;
			const struct sent *first = &cap.s[to_a ? f.i_a : f.i_b];

			uint64_t *last = to_a ? &last_a : &last_b;

			/* the same message, the same transaction */
			assert_true(k < RTX_RC);
			assert_in_range(t - *last, wait[k],
			                wait[k] * (100 + RTX_JITTER_PCT) / 100);
			assert_true(t <= next_want);
			*last = t;
			assert_size(s->len, first->len);
			assert_memory_equal(s->buf, first->buf, s->len);
			assert_int_equal(s->sock, first->sock);
			assert_addr(&s->to, &first->to);
		}
		/* the deadline rdv_tick returns is no later than the next
		 * retransmission */
		next_want = next;
	}
	assert_size(n_a, RTX_RC - 1);
	assert_size(n_b, RTX_RC - 1);
	assert_u64(rdv_stats(srv)->gave_up, 2);
	assert_u64(rdv_stats(srv)->acked, 0);
}

static void test_ack_stops_retransmission(void **state)
{
	struct pair_fixture f;
	const uint64_t t_pair = T0 + 100;
	struct stun_msg other;

	(void)state;
	pair_up(&f);
	/* an answer to some other transaction changes nothing */
	other = f.to_a;
	other.txid[0] ^= 1;
	ack(&other, T_PEER_INFO_OK, &f.a_from, t_pair + 10);
	assert_u64(rdv_stats(srv)->acked, 0);
	/* alice answers */
	ack(&f.to_a, T_PEER_INFO_OK, &f.a_from, t_pair + 10);
	assert_u64(rdv_stats(srv)->acked, 1);
	cap.n = 0;
	for (uint64_t t = t_pair + 10; t <= t_pair + 4000; t += 10) {
		cap.now = t;
		rdv_tick(srv, t);
	}
	/* only bob's went out again: at 500, 1500 and 3500 */
	assert_size(cap.n, 3);
	for (size_t i = 0; i < cap.n; i++)
		assert_addr(&cap.s[i].to, &f.b_from);
	/* bob's error response is an answer too */
	ack(&f.to_b, T_PEER_INFO_ERR, &f.b_from, t_pair + 4000);
	assert_u64(rdv_stats(srv)->acked, 2);
	/* a late duplicate answer changes nothing */
	ack(&f.to_b, T_PEER_INFO_OK, &f.b_from, t_pair + 4001);
	assert_u64(rdv_stats(srv)->acked, 2);
	cap.n = 0;
	for (uint64_t t = t_pair + 4000; t <= t_pair + 100000; t += 10) {
		cap.now = t;
		rdv_tick(srv, t);
	}
	assert_size(cap.n, 0);
	assert_u64(rdv_stats(srv)->gave_up, 0);
}

/* A second introduction of the same receiver replaces the first. */
static void test_newer_peer_info_replaces(void **state)
{
	struct pair_fixture f;
	struct result res;
	size_t to_a = 0;

	(void)state;
	pair_up(&f);
	f.b.session = 0xB0B2;
	f.b.nonce = f.b_nonce;
	fresh_txid(f.b.txid);
	{
		struct raw r;

		build_register(&r, &f.b);
		feed(&res, 1, r.b, r.len, &f.b_from, T0 + 200);
	}
	expect_registered(&res, &f.b_from, PUNCH_STATUS_PAIRED);
	assert_size(cap.n, 4);
	cap.n = 0;
	for (uint64_t t = T0 + 200; t <= T0 + 100000; t += 10) {
		cap.now = t;
		rdv_tick(srv, t);
	}
	for (size_t i = 0; i < cap.n; i++) {
		struct stun_msg m;
		struct punch_peer p;
		const char *why;

		if (cap.s[i].to.ss_family != AF_INET)
			continue;
		to_a++;
		decode_ok(&m, cap.s[i].buf, cap.s[i].len);
		assert_int_equal(punch_peer_parse(&p, &m, &why), 0);
		assert_true(p.session == 0xB0B2);
	}
	assert_size(to_a, RTX_RC - 1);
}

/* The server restarts: it forgot everything, and the clients' next
 * refreshes (with their old nonces) are turned into a fresh dance and a
 * fresh introduction with the same sessions. */
static void test_server_restart(void **state)
{
	struct pair_fixture f;
	struct result res;
	char a_nonce[33], b_nonce[33];
	struct raw r;

	(void)state;
	pair_up(&f);
	ack(&f.to_a, T_PEER_INFO_OK, &f.a_from, T0 + 150);
	ack(&f.to_b, T_PEER_INFO_OK, &f.b_from, T0 + 150);
	srv_new(64);
	cap.n = 0;
	assert_size(registry_count(rdv_registry(srv)), 0);
	fresh_txid(f.a.txid);
	feed_req(&res, &f.a, &f.a_from, T0 + 10000);
	expect_438(&res, a_nonce);
	assert_true(strcmp(a_nonce, f.a_nonce) != 0);
	f.a.nonce = a_nonce;
	fresh_txid(f.a.txid);
	feed_req(&res, &f.a, &f.a_from, T0 + 10000);
	expect_registered(&res, &f.a_from, PUNCH_STATUS_WAITING);
	assert_size(cap.n, 0);

	fresh_txid(f.b.txid);
	build_register(&r, &f.b);
	feed(&res, 1, r.b, r.len, &f.b_from, T0 + 10100);
	expect_438(&res, b_nonce);
	f.b.nonce = b_nonce;
	fresh_txid(f.b.txid);
	build_register(&r, &f.b);
	feed(&res, 1, r.b, r.len, &f.b_from, T0 + 10100);
	expect_registered(&res, &f.b_from, PUNCH_STATUS_PAIRED);
	assert_size(cap.n, 2);
	{
		struct stun_msg ma, mb;
		int ia = cap.s[0].to.ss_family == AF_INET ? 0 : 1;

		expect_peer_info(&cap.s[ia], 0, &f.a_from, &f.b, &f.b_from,
		                 &ma);
		expect_peer_info(&cap.s[!ia], 1, &f.b_from, &f.a, &f.a_from,
		                 &mb);
	}
}

static void test_expiry_by_tick(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	struct reg_req q = req_make("alice", "bob", 1);
	struct result res;
	char nonce[33];

	(void)state;
	do_register(&res, &q, &from, T0, nonce);
	expect_registered(&res, &from, PUNCH_STATUS_WAITING);
	/* rdv_tick() expires once a second: gone within a second of the
	 * lifetime, and not before it */
	for (uint64_t t = T0; t < T0 + REGISTRY_LIFETIME_MS; t += 7) {
		rdv_tick(srv, t);
		assert_size(registry_count(rdv_registry(srv)), 1);
	}
	rdv_tick(srv, T0 + REGISTRY_LIFETIME_MS + 1000);
	assert_size(registry_count(rdv_registry(srv)), 0);
}

static void test_capacity_508(void **state)
{
	struct result res;
	char nonce[33];

	(void)state;
	srv_new(2);
	for (int i = 0; i < 3; i++) {
		char id[8];
		struct sockaddr_storage from = sa_make("198.51.100.1",
		                                       (uint16_t)(40000 + i));
		struct reg_req q;

		snprintf(id, sizeof(id), "id%d", i);
		q = req_make(id, "nobody", (uint64_t)i);
		do_register(&res, &q, &from, T0, nonce);
		if (i < 2) {
			expect_registered(&res, &from, PUNCH_STATUS_WAITING);
		} else {
			assert_error_reply(&res, 508,
			                   "Insufficient Capacity: server is "
			                   "full");
			assert_u64(rdv_stats(srv)->rejected, 1);
		}
	}
	assert_size(registry_count(rdv_registry(srv)), 2);
}

/* The cap counts a source's prefix: distinct addresses of one /24 share
 * it (on main they did not, and one /24 or /64 could fill the table). */
static void test_per_prefix_cap_508(void **state)
{
	struct result res;
	char nonce[33];

	(void)state;
	srv_new(REGISTRY_PER_PREFIX_MAX + 10);
	/* this test is about the cap, not the REGISTER rate */
	registry_set_rate(rdv_registry(srv), 0, 0);
	for (int i = 0; i <= REGISTRY_PER_PREFIX_MAX; i++) {
		char id[8], ip[32];
		struct sockaddr_storage from;
		struct reg_req q;

		snprintf(id, sizeof(id), "id%d", i);
		snprintf(ip, sizeof(ip), "198.51.100.%d", 1 + i);
		from = sa_make(ip, 40000);
		q = req_make(id, "nobody", (uint64_t)i);
		do_register(&res, &q, &from, T0, nonce);
		if (i < REGISTRY_PER_PREFIX_MAX)
			expect_registered(&res, &from, PUNCH_STATUS_WAITING);
		else
			assert_error_reply(&res, 508,
			                   "Insufficient Capacity: server is "
			                   "full");
	}
	/* another /24 still gets in */
	{
		struct sockaddr_storage from = sa_make("198.51.101.2", 40000);
		struct reg_req q = req_make("other", "nobody", 1);

		do_register(&res, &q, &from, T0, nonce);
		expect_registered(&res, &from, PUNCH_STATUS_WAITING);
	}
}

/* A flood of REGISTERs from one prefix, as from spoofed sources: past the
 * burst, nothing is answered (so nothing is amplified) and the drops are
 * counted.  The rate then lets one through per interval. */
static void test_register_flood_unanswered(void **state)
{
	struct reg_req q = req_make("alice", "bob", 1);
	struct result res;
	char nonce[33];
	int answered = 0;

	(void)state;
	for (int i = 0; i < 200; i++) {
		char ip[48];
		struct sockaddr_storage from;

		snprintf(ip, sizeof(ip), "2001:db8:6:6:%x::1", i);
		from = sa_make(ip, 40000);
		fresh_txid(q.txid);
		feed_req(&res, &q, &from, T0);
		if (res.verdict == BINDING_REPLY) {
			expect_438(&res, nonce);
			answered++;
		} else {
			assert_int_equal(res.verdict, BINDING_IGNORE);
			assert_int_equal(res.reply.len, 0);
		}
	}
	assert_int_equal(answered, REGISTRY_RATE_BURST);
	assert_u64(rdv_stats(srv)->rate_limited, 200 - REGISTRY_RATE_BURST);
	assert_size(cap.n, 0);
	/* another prefix is not held back by it */
	{
		struct sockaddr_storage from = sa_make("198.51.100.1", 40000);

		do_register(&res, &q, &from, T0, nonce);
		expect_registered(&res, &from, PUNCH_STATUS_WAITING);
	}
	/* the flooded /64 gets one answer per interval again */
	{
		struct sockaddr_storage from = sa_make("2001:db8:6:6::9", 40000);

		fresh_txid(q.txid);
		feed_req(&res, &q, &from, T0 + 1000 / REGISTRY_RATE_PER_S);
		expect_438(&res, nonce);
		fresh_txid(q.txid);
		feed_req(&res, &q, &from, T0 + 1000 / REGISTRY_RATE_PER_S);
		assert_int_equal(res.verdict, BINDING_IGNORE);
	}
}
#define BOUND_REASON "Forbidden: this id is bound to another key; its holder can release it with punch release"

static void test_key_binding_403(void **state)
{
	struct sockaddr_storage a = sa_make("198.51.100.1", 40000);
	struct sockaddr_storage evil = sa_make("203.0.113.66", 6666);
	struct reg_req q = req_make("alice", "bob", 1);
	struct result res;
	char nonce[33], evil_nonce[33];

	(void)state;
	q.key = 0xA1;
	do_register(&res, &q, &a, T0, nonce);
	expect_registered(&res, &a, PUNCH_STATUS_WAITING);
	q.key = 0xEE;
	q.session = 666;
	do_register(&res, &q, &evil, T0 + 10, evil_nonce);
	assert_error_reply(&res, 403, BOUND_REASON);
	q.key = 0;
	fresh_txid(q.txid);
	feed_req(&res, &q, &evil, T0 + 20);
	assert_error_reply(&res, 403, BOUND_REASON);
	assert_true(registry_entry_session(registry_find(rdv_registry(srv),
	                                                 "alice")) == 1);
	assert_u64(rdv_stats(srv)->rejected, 2);
}


/* Every answer of the rendezvous is signed by the server's key. */
static void assert_server_signed(const struct result *res)
{
	uint8_t pk[32];

	assert_int_equal(sign_verify(&res->m, res->out, res->reply.len,
	                             PUNCH_ATTR_SERVER_KEY, pk),
	                 SIGN_OK);
	assert_memory_equal(pk, rdv_server_pk(srv), sizeof(pk));
}

/* The attack the signature stops: mallory registers alice's live id
 * with alice's public fingerprint as a claim. */
static void test_hijack_with_fingerprint_403(void **state)
{
	struct sockaddr_storage a = sa_make("198.51.100.1", 40000);
	struct sockaddr_storage evil = sa_make("203.0.113.66", 6666);
	struct reg_req q = req_make("alice", "bob", 1);
	uint8_t pk[32], sk[64], alice_fp[32];
	const struct reg_entry *e;
	struct punch_peer held;
	struct result res;
	char nonce[33], evil_nonce[33];
	struct raw r;

	(void)state;
	q.key = 0xA1;
	do_register(&res, &q, &a, T0, nonce);
	expect_registered(&res, &a, PUNCH_STATUS_WAITING);
	assert_server_signed(&res);
	test_key(0xA1, pk, sk, alice_fp);
	/* signed with mallory's key, claiming alice's fingerprint */
	q.key = 0xEE;
	q.session = 666;
	do_register(&res, &q, &evil, T0 + 10, evil_nonce);
	assert_error_reply(&res, 403, BOUND_REASON);
	assert_server_signed(&res);
	/* the same with the claim attribute carrying alice's bytes */
	fresh_txid(q.txid);
	q.nonce = evil_nonce;
	build_register(&r, &q);
	r.len -= 8 + 68 + 36; /* FINGERPRINT, signature, key */
	raw_fix_length(&r);
	raw_attr(&r, PUNCH_ATTR_KEY_FP, alice_fp, sizeof(alice_fp));
	raw_sign(&r, 0xEE);
	raw_fingerprint(&r);
	feed(&res, 0, r.b, r.len, &evil, T0 + 20);
	assert_error_reply(&res, 403, BOUND_REASON);
	/* and unsigned, the claim alone */
	q.unsigned_req = 1;
	fresh_txid(q.txid);
	feed_req(&res, &q, &evil, T0 + 30);
	assert_error_reply(&res, 401, "Unauthorized: not signed");
	assert_server_signed(&res);
	e = registry_find(rdv_registry(srv), "alice");
	registry_entry_peer(e, &held);
	assert_true(held.session == 1);
	assert_memory_equal(held.key_fp, alice_fp, 32);
	assert_size(cap.n, 0); /* nobody was introduced to mallory */
}

/* A captured REGISTER replayed from another address meets a nonce bound
 * to the first; the nonce cannot be swapped, it is signed. */
static void test_replay_from_elsewhere(void **state)
{
	struct sockaddr_storage a = sa_make("198.51.100.1", 40000);
	struct sockaddr_storage evil = sa_make("203.0.113.66", 6666), was;
	struct reg_req q = req_make("alice", "bob", 1);
	struct result res;
	char nonce[33], evil_nonce[33];
	struct raw r;
	size_t at;

	(void)state;
	do_register(&res, &q, &a, T0, nonce);
	expect_registered(&res, &a, PUNCH_STATUS_WAITING);
	build_register(&r, &q);
	feed(&res, 0, r.b, r.len, &evil, T0 + 5);
	expect_438(&res, evil_nonce);
	/* mallory puts its own nonce in: the signature breaks */
	at = (size_t)((uint8_t *)memmem(r.b, r.len, nonce, 32) - r.b);
	memcpy(r.b + at, evil_nonce, 32);
	r.len -= 8;
	raw_fingerprint(&r);
	feed(&res, 0, r.b, r.len, &evil, T0 + 6);
	assert_error_reply(&res, 401, "Unauthorized: bad signature");
	assert_u64(rdv_stats(srv)->bad_signature, 1);
	registry_entry_from(registry_find(rdv_registry(srv), "alice"), &was);
	assert_addr(&was, &a);
}

/* An id that is a key fingerprint (as `punch id` prints it) belongs to
 * that key alone. */
static void test_fingerprint_id(void **state)
{
	struct sockaddr_storage a = sa_make("198.51.100.1", 40000);
	uint8_t pk[32], sk[64], fp[32];
	char id[IDENTITY_FP_STRLEN], nonce[33];
	struct reg_req q;
	struct result res;

	(void)state;
	test_key(0x22, pk, sk, fp);
	identity_fp_str(fp, id);
	q = req_make(id, "bob", 1);
	q.key = 0x33;
	do_register(&res, &q, &a, T0, nonce);
	assert_error_reply(&res, 403,
	                   "Forbidden: this id is a key fingerprint, and only that key may use it");
	q.key = 0x22;
	fresh_txid(q.txid);
	feed_req(&res, &q, &a, T0 + 1);
	expect_registered(&res, &a, PUNCH_STATUS_WAITING);
}

static void feed_release(struct result *res, const char *id, int key,
                         const char *nonce, const struct sockaddr_storage *from,
                         uint64_t now)
{
	uint8_t txid[STUN_TXID_LEN];
	struct raw r;

	fresh_txid(txid);
	raw_init(&r, T_RELEASE);
	raw_set_txid(&r, txid);
	raw_attr(&r, PUNCH_ATTR_ID, id, strlen(id));
	if (nonce)
		raw_attr(&r, STUN_ATTR_NONCE, nonce, strlen(nonce));
	raw_sign(&r, key);
	raw_fingerprint(&r);
	feed(res, 0, r.b, r.len, from, now);
}

/* RELEASE: a nonce first, then only the holder's key drops the binding;
 * a repeat (a retransmission) succeeds too. */
static void test_release(void **state)
{
	struct sockaddr_storage a = sa_make("198.51.100.1", 40000);
	struct sockaddr_storage m = sa_make("203.0.113.66", 6666);
	struct reg_req q = req_make("alice", "bob", 1);
	struct result res;
	char nonce[33], m_nonce[33];
	uint8_t pk[32], sk[64], fp[32];

	(void)state;
	q.key = 0xA1;
	do_register(&res, &q, &a, T0, nonce);
	expect_registered(&res, &a, PUNCH_STATUS_WAITING);
	feed_release(&res, "alice", 0xEE, NULL, &m, T0 + 1);
	expect_438(&res, m_nonce);
	assert_server_signed(&res);
	feed_release(&res, "alice", 0xEE, m_nonce, &m, T0 + 2);
	assert_error_reply(&res, 403, "Forbidden: this id is bound to another key");
	assert_server_signed(&res);
	assert_non_null(registry_find(rdv_registry(srv), "alice"));
	test_key(0xA1, pk, sk, fp);
	assert_int_equal(idbind_check(rdv_idbind(srv), "alice", fp, 10), IDBIND_OK);
	test_key(0xEE, pk, sk, fp);
	assert_int_equal(idbind_check(rdv_idbind(srv), "alice", fp, 10), IDBIND_OTHER);
	feed_release(&res, "alice", 0xA1, nonce, &a, T0 + 3);
	assert_int_equal(res.verdict, BINDING_REPLY);
	assert_false(res.reply.is_error);
	assert_server_signed(&res);
	assert_int_equal(idbind_check(rdv_idbind(srv), "alice", fp, 10), IDBIND_OK);
	/* the live registration went with the binding */
	assert_null(registry_find(rdv_registry(srv), "alice"));
	feed_release(&res, "alice", 0xA1, nonce, &a, T0 + 4);
	assert_false(res.reply.is_error);
	assert_u64(rdv_stats(srv)->released, 2);
}

/* The signed 438 stays within 4x the smallest signed REGISTER a client
 * sends; a bare unsigned REGISTER gets nothing bigger than itself x4. */
static void test_signed_438_amplification(void **state)
{
	struct sockaddr_storage a = sa_make("198.51.100.1", 40000);
	struct reg_req q = req_make("a", "b", 1);
	struct result res;
	struct raw r;

	(void)state;
	q.n_cand = 1;
	build_register(&r, &q);
	feed(&res, 0, r.b, r.len, &a, T0);
	assert_error_reply(&res, 438, "Stale Nonce");
	assert_server_signed(&res);
	assert_true(res.reply.len <= r.len * BINDING_AMPLIFICATION_MAX);
	print_message("smallest signed REGISTER %zu bytes, its 438 %zu bytes\n",
	              r.len, res.reply.len);
	/* a header and FINGERPRINT only: the 438 would be too big; dropped */
	raw_init(&r, T_REGISTER);
	raw_fingerprint(&r);
	feed(&res, 0, r.b, r.len, &a, T0);
	assert_int_equal(res.verdict, BINDING_DROP);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_first_register_gets_438),
		T(test_register_with_nonce),
		T(test_nonce_bound_to_address),
		T(test_nonce_lifetime),
		T(test_unknown_attribute_420),
		T(test_bad_ids_400),
		T(test_not_register),
		T(test_pair_introduces_both),
		T(test_refresh_does_not_reintroduce),
		T(test_new_candidate_updates_peer),
		T(test_new_session_reintroduces),
		T(test_peer_info_retransmissions),
		T(test_ack_stops_retransmission),
		T(test_newer_peer_info_replaces),
		T(test_server_restart),
		T(test_expiry_by_tick),
		T(test_capacity_508),
		T(test_per_prefix_cap_508),
		T(test_register_flood_unanswered),
		T(test_key_binding_403),
		T(test_hijack_with_fingerprint_403),
		T(test_replay_from_elsewhere),
		T(test_fingerprint_id),
		T(test_release),
		T(test_signed_438_amplification),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
