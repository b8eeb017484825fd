/*
 * The rendezvous server's counters and its story (src/rendezvous_log.c):
 * what `punch server -log info` prints for each event, what only -v
 * adds, and that the stop line's counters keep a 438 challenge, each kind
 * of refusal and an expiry apart.  stderr is captured into a temporary
 * file around each call.
 */
#include "rendezvous_unit.h"

#include <unistd.h>

static struct {
	FILE *f;
	int saved_fd;
	char text[8192];
} err = { NULL, -1, "" };

static void err_start(enum log_level level)
{
	log_set_level(level);
	fflush(stderr);
	err.f = tmpfile();
	assert_non_null(err.f);
	err.saved_fd = dup(2);
	assert_true(err.saved_fd >= 0);
	assert_true(dup2(fileno(err.f), 2) >= 0);
}

/* Restores stderr and returns what was written to it since err_start(). */
static const char *err_stop(void)
{
	size_t n;

	if (!err.f)
		return err.text;
	fflush(stderr);
	dup2(err.saved_fd, 2);
	close(err.saved_fd);
	rewind(err.f);
	n = fread(err.text, 1, sizeof(err.text) - 1, err.f);
	err.text[n] = '\0';
	fclose(err.f);
	err.f = NULL;
	log_set_level(LOG_WARN);
	return err.text;
}

static int teardown_err(void **state)
{
	err_stop();
	return teardown(state);
}

/* seen contains want as a whole line */
#define expect_line(seen, want)                                               \
	do {                                                                  \
		char w_[512];                                                 \
		snprintf(w_, sizeof(w_), "%s\n", (want));                     \
		if (!strstr((seen), w_))                                      \
			fail_msg("expected the line '%s'; seen:\n%s", (want), \
			         (seen));                                     \
	} while (0)

#define expect_no(seen, part)                                           \
	do {                                                            \
		if (strstr((seen), (part)))                             \
			fail_msg("expected no '%s'; seen:\n%s", (part), \
			         (seen));                               \
	} while (0)

static void test_story_at_info(void **state)
{
	struct pair_fixture f;
	const char *seen;
	struct result res;

	(void)state;
	err_start(LOG_EVENT);
	pair_up(&f);
	/* alice refreshes: a packet, not an event */
	fresh_txid(f.a.txid);
	feed_req(&res, &f.a, &f.a_from, T0 + 5000);
	expect_registered(&res, &f.a_from, PUNCH_STATUS_PAIRED);
	seen = err_stop();
	expect_line(seen, "punch: Step 2: alice registered from 198.51.100.1:40000, looking for bob (3 candidates)");
	expect_line(seen, "punch: Step 3: alice is ready; waiting for bob");
	expect_line(seen, "punch: Step 2: bob registered from [2001:db8:b::2]:50000, looking for alice (1 candidate)");
	expect_line(seen, "punch: Step 4: introduced bob at [2001:db8:b::2]:50000 and alice at 198.51.100.1:40000: each gets the other's candidates and address (PEER-INFO)");
	expect_no(seen, "bob is ready");  /* bob did not wait */
	expect_no(seen, "438");           /* challenges are -v detail */
	expect_no(seen, "refreshed");
	expect_no(seen, "debug:");
	/* four lines, no more */
	{
		int lines = 0;

		for (const char *p = seen; *p; p++)
			lines += *p == '\n';
		assert_int_equal(lines, 4);
	}
	assert_u64(rdv_stats(srv)->challenged, 2);
	assert_u64(rdv_stats(srv)->rejected, 0);
	assert_u64(rdv_stats(srv)->registered, 3);
	assert_u64(rdv_stats(srv)->refreshed, 1);
}

static void test_debug_adds_packets(void **state)
{
	struct pair_fixture f;
	const char *seen;
	struct result res;

	(void)state;
	err_start(LOG_DEBUG);
	pair_up(&f);
	fresh_txid(f.a.txid);
	feed_req(&res, &f.a, &f.a_from, T0 + 5000);
	ack(&f.to_a, T_PEER_INFO_OK, &f.a_from, T0 + 200);
	seen = err_stop();
	expect_line(seen, "punch: debug: Step 2: nonce challenge (438) to 198.51.100.1:40000");
	expect_line(seen, "punch: debug: alice refreshed its registration from 198.51.100.1:40000");
	expect_line(seen, "punch: debug: Step 4: alice acknowledged its peer info");
	expect_line(seen, "punch: Step 3: alice is ready; waiting for bob");
}

static void test_quiet_says_nothing(void **state)
{
	struct pair_fixture f;

	(void)state;
	err_start(LOG_INFO);
	pair_up(&f);
	rdv_tick(srv, T0 + REGISTRY_LIFETIME_MS + 2000);
	assert_str(err_stop(), "");
	assert_u64(rdv_stats(srv)->expired, 2);
}

static void test_restart_and_move(void **state)
{
	struct sockaddr_storage moved = sa_make("198.51.100.1", 40001);
	struct pair_fixture f;
	const char *seen;
	struct result res;
	char nonce[33];

	(void)state;
	pair_up(&f);
	err_start(LOG_EVENT);
	/* the NAT gives alice a new mapping: same session, new address */
	do_register(&res, &f.a, &moved, T0 + 1000, nonce);
	expect_registered(&res, &moved, PUNCH_STATUS_PAIRED);
	/* alice restarts: a new session */
	f.a.session = 0xA11CE2;
	do_register(&res, &f.a, &moved, T0 + 2000, nonce);
	expect_registered(&res, &moved, PUNCH_STATUS_PAIRED);
	seen = err_stop();
	expect_line(seen, "punch: alice now comes from 198.51.100.1:40001 (was 198.51.100.1:40000): its NAT gave it a new mapping");
	expect_line(seen, "punch: Step 2: alice registered again from 198.51.100.1:40001, looking for bob (3 candidates; it restarted)");
	expect_line(seen, "punch: Step 4: introduced alice at 198.51.100.1:40001 and bob at [2001:db8:b::2]:50000: each gets the other's candidates and address (PEER-INFO)");
	assert_u64(rdv_stats(srv)->refreshed, 0);
}

static void test_expiry_and_gave_up(void **state)
{
	struct pair_fixture f;
	const char *seen;

	(void)state;
	pair_up(&f);
	err_start(LOG_EVENT);
	/* nobody acknowledges; nobody refreshes.  RFC 8489's schedule ends
	 * 39.5 s after the first PEER-INFO. */
	for (uint64_t t = T0 + 100; t <= T0 + 45000; t += 100)
		rdv_tick(srv, t);
	seen = err_stop();
	expect_line(seen, "punch: Step 4: alice did not acknowledge its peer info (7 tries); it may have gone");
	expect_line(seen, "punch: Step 4: bob did not acknowledge its peer info (7 tries); it may have gone");
	expect_line(seen, "punch: alice's registration expired: no refresh for 30 s");
	expect_line(seen, "punch: bob's registration expired: no refresh for 30 s");
	assert_u64(rdv_stats(srv)->expired, 2);
	assert_u64(rdv_stats(srv)->gave_up, 2);
}

/* Each refusal counted under its own reason, and told with it. */
static void test_refusals_by_reason(void **state)
{
	struct sockaddr_storage a = sa_make("198.51.100.1", 40000);
	struct sockaddr_storage b = sa_make("198.51.100.2", 40000);
	struct sockaddr_storage c = sa_make("198.51.100.3", 40000);
	struct reg_req q = req_make("alice", "bob", 1);
	const struct rdv_stats *st;
	const char *seen;
	struct result res;
	char nonce[33];
	struct raw r;

	(void)state;
	srv_new(2);
	err_start(LOG_EVENT);
	q.key = 0xA1;
	do_register(&res, &q, &a, T0, nonce);
	expect_registered(&res, &a, PUNCH_STATUS_WAITING);
	/* another key for alice: 403 */
	q.key = 0xEE;
	do_register(&res, &q, &b, T0, nonce);
	assert_error_reply(&res, 403, "Forbidden: this id is bound to another key; its holder can release it with punch release");
	/* same id twice: 400 */
	q = req_make("carol", "carol", 2);
	do_register(&res, &q, &b, T0, nonce);
	assert_error_reply(&res, 400, "Bad Request: id and peer id are the same");
	/* no peer id: 400 before the registry */
	q = req_make("carol", NULL, 2);
	do_register(&res, &q, &b, T0, nonce);
	assert_error_reply(&res, 400, "Bad Request: peer id missing");
	/* full: 508 */
	q = req_make("dave", "erin", 3);
	do_register(&res, &q, &b, T0, nonce);
	expect_registered(&res, &b, PUNCH_STATUS_WAITING);
	q = req_make("frank", "erin", 4);
	do_register(&res, &q, &c, T0, nonce);
	assert_error_reply(&res, 508, "Insufficient Capacity: server is full");
	/* an unknown comprehension-required attribute: 420 */
	q = req_make("gina", "bob", 5);
	build_register(&r, &q);
	r.len -= 8;
	raw_fix_length(&r);
	raw_attr(&r, 0x7ABC, "x", 1);
	raw_fingerprint(&r);
	feed(&res, 0, r.b, r.len, &c, T0);
	assert_error_reply(&res, 420, "Unknown Attribute");
	seen = err_stop();

	st = rdv_stats(srv);
	assert_u64(st->refused[RDV_REFUSED_BOUND], 1);
	assert_u64(st->refused[RDV_REFUSED_SAME_ID], 1);
	assert_u64(st->refused[RDV_REFUSED_BAD_REQUEST], 1);
	assert_u64(st->refused[RDV_REFUSED_FULL], 1);
	assert_u64(st->refused[RDV_REFUSED_UNKNOWN_ATTR], 1);
	assert_u64(st->rejected, 5);
	assert_u64(st->challenged, 6);
	assert_u64(st->registered, 2);
	expect_line(seen, "punch: refused alice (looking for bob) from 198.51.100.2:40000: 403 Forbidden: this id is bound to another key; its holder can release it with punch release");
	expect_line(seen, "punch: refused carol (looking for carol) from 198.51.100.2:40000: 400 id and peer id are the same");
	expect_line(seen, "punch: refused a registration from 198.51.100.2:40000: 400 Bad Request: peer id missing");
	expect_line(seen, "punch: refused frank (looking for erin) from 198.51.100.3:40000: 508 server is full");
	expect_line(seen, "punch: refused a registration from 198.51.100.3:40000: 420 Unknown Attribute");
	assert_str(rdv_refusal_name(RDV_REFUSED_KEY), "key");
	assert_str(rdv_refusal_name(RDV_REFUSED_UNKNOWN_ATTR), "unknown_attribute");
}

/* A 438 that the amplification bound keeps from going out is not counted
 * as a challenge sent. */
static void test_unsent_challenge_not_counted(void **state)
{
	struct sockaddr_storage a = sa_make("198.51.100.1", 40000);
	struct raw r;
	struct result res;

	(void)state;
	raw_init(&r, T_REGISTER); /* 20 bytes: a 438 would be 4 times that */
	fresh_txid(r.b + 8);
	feed(&res, 0, r.b, r.len, &a, T0);
	assert_int_equal(res.verdict, BINDING_DROP);
	assert_u64(rdv_stats(srv)->challenged, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_story_at_info, setup, teardown_err),
		cmocka_unit_test_setup_teardown(test_debug_adds_packets, setup, teardown_err),
		cmocka_unit_test_setup_teardown(test_quiet_says_nothing, setup, teardown_err),
		cmocka_unit_test_setup_teardown(test_restart_and_move, setup, teardown_err),
		cmocka_unit_test_setup_teardown(test_expiry_and_gave_up, setup, teardown_err),
		cmocka_unit_test_setup_teardown(test_refusals_by_reason, setup, teardown_err),
		cmocka_unit_test_setup_teardown(test_unsent_challenge_not_counted, setup, teardown_err)
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
