/*
 * retransmit.c: RFC 8489 6.2.1's schedule, its jitter bounds, the give-up,
 * the capped and time-bounded schedule of the agent's checks, and a
 * triggered check.  The random bits are the test's, so every time is exact.
 */
#include "unit.h"

#include "retransmit.h"

enum { RND_MAX = 0xffffffffu };

/* Run a transaction from t0, every ms, transmitting whenever it is due
 * with the random bits rnd; record when.  Returns the transmissions, and
 * the time of the give-up in *gave_up. */
static size_t run(const struct rtx_params *p, uint64_t t0, uint32_t rnd,
                  uint64_t *at, size_t cap, uint64_t *gave_up)
{
	struct rtx t;
	size_t n = 0;

	rtx_start(&t, p, t0);
	*gave_up = 0;
	for (uint64_t now = t0; now < t0 + 200000; now++) {
		uint64_t deadline = rtx_deadline(&t, p);
		enum rtx_due due = rtx_poll(&t, p, now);

		/* nothing happens before the deadline it gave */
		if (now < deadline)
			assert_int_equal(due, RTX_WAIT);
		else
			assert_int_not_equal(due, RTX_WAIT);
		if (due == RTX_GIVE_UP) {
			*gave_up = now;
			return n;
		}
		if (due == RTX_SEND) {
			assert_true(n < cap);
			at[n++] = now;
			rtx_sent(&t, p, now, rnd);
			assert_size(t.sent, n);
		}
	}
	fail_msg("never gave up");
	return n;
}

/* RFC 8489 6.2.1's example: 0, 500, 1500, ..., 31500, failed at 39500. */
static void test_schedule(void **state)
{
	static const uint64_t want[RTX_RC] = { 0, 500, 1500, 3500, 7500,
		                               15500, 31500 };
	uint64_t at[16], gave_up;

	(void)state;
	assert_size(run(&rtx_stun, 1000, 0, at, 16, &gave_up), RTX_RC);
	for (size_t i = 0; i < RTX_RC; i++)
		assert_u64(at[i] - 1000, want[i]);
	assert_u64(gave_up - 1000, 31500 + RTX_RM * RTX_RTO_MS);
}

/* The largest jitter lengthens every wait by just under 10 %, never
 * shortens one. */
static void test_jitter_bounds(void **state)
{
	static const uint64_t wait[RTX_RC] = { 0, 500, 1000, 2000, 4000,
		                               8000, 16000 };
	uint64_t at[16], gave_up;

	(void)state;
	assert_size(run(&rtx_stun, 0, RND_MAX, at, 16, &gave_up), RTX_RC);
	for (size_t i = 1; i < RTX_RC; i++) {
		assert_true(at[i] - at[i - 1] > wait[i]);
		assert_true(at[i] - at[i - 1] < wait[i] * 110 / 100);
		assert_u64(at[i] - at[i - 1], wait[i] + wait[i] / 10 - 1);
	}
	assert_u64(gave_up - at[RTX_RC - 1], 8000 + 800 - 1);

	assert_u64(rtx_jitter(500, 0), 500);
	assert_u64(rtx_jitter(500, RND_MAX / 2 + 1), 525);
	assert_u64(rtx_jitter(500, RND_MAX), 549);
	assert_u64(rtx_jitter(0, RND_MAX), 0);
	/* no overflow for the longest wait a schedule could ask for */
	assert_u64(rtx_jitter(16ull * 0xffffffffu, 0), 16ull * 0xffffffffu);
	assert_true(rtx_jitter(16ull * 0xffffffffu, RND_MAX) >
	            16ull * 0xffffffffu);
	/* every value in range, for a spread of rnd */
	for (uint64_t r = 0; r <= RND_MAX; r += 0x01000193u) {
		uint64_t j = rtx_jitter(16000, (uint32_t)r);

		assert_in_range(j, 16000, 16000 + 1600 - 1);
	}
}

/* The agent's kind: 50 ms doubling to a cap of 800, no count, failed 10 s
 * after the first transmission. */
static void test_capped_and_timed(void **state)
{
	static const struct rtx_params p = {
		.rto_ms = 50, .rto_max_ms = 800, .timeout_ms = 10000
	};
	static const uint64_t want[] = { 0, 50, 150, 350, 750, 1550, 2350 };
	uint64_t at[64], gave_up;
	size_t n;

	(void)state;
	n = run(&p, 30, 0, at, 64, &gave_up);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_u64(at[i] - 30, want[i]);
	for (size_t i = 6; i < n; i++)
		assert_u64(at[i] - at[i - 1], 800);
	assert_u64(gave_up - 30, 10000);
	assert_true(at[n - 1] - 30 < 10000);
	assert_size(n, 6 + (10000 - 1550 - 1) / 800);
}

/* A triggered check goes at once and paces from the first wait again,
 * within the same transaction; it does not revive a finished one. */
static void test_trigger(void **state)
{
	struct rtx t;

	(void)state;
	rtx_start(&t, &rtx_stun, 0);
	assert_int_equal(rtx_poll(&t, &rtx_stun, 0), RTX_SEND);
	rtx_sent(&t, &rtx_stun, 0, 0);
	rtx_sent(&t, &rtx_stun, 500, 0);
	rtx_sent(&t, &rtx_stun, 1500, 0);
	assert_u64(t.next_ms, 3500);
	rtx_trigger(&t, &rtx_stun, 1600);
	assert_u64(t.next_ms, 1600);
	assert_int_equal(rtx_poll(&t, &rtx_stun, 1600), RTX_SEND);
	rtx_sent(&t, &rtx_stun, 1600, 0);
	assert_u64(t.next_ms, 2100);
	assert_u64(t.first_ms, 0);
	assert_size(t.sent, 4);
	/* already due: nothing changes */
	rtx_trigger(&t, &rtx_stun, 2200);
	assert_u64(t.next_ms, 2100);
	/* past the last transmission: only the give-up is left */
	while (t.sent < RTX_RC)
		rtx_sent(&t, &rtx_stun, 3000, 0);
	assert_u64(t.next_ms, UINT64_MAX);
	rtx_trigger(&t, &rtx_stun, 3100);
	assert_u64(t.next_ms, UINT64_MAX);
	assert_u64(rtx_deadline(&t, &rtx_stun), 3000 + 8000);
	assert_int_equal(rtx_poll(&t, &rtx_stun, 10999), RTX_WAIT);
	assert_int_equal(rtx_poll(&t, &rtx_stun, 11000), RTX_GIVE_UP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schedule),
		cmocka_unit_test(test_jitter_bounds),
		cmocka_unit_test(test_capped_and_timed),
		cmocka_unit_test(test_trigger),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
