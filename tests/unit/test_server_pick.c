/*
 * server_list.c and server_pick.c: the -server list's parser, and the
 * pick's round: requests to every server at once, the fastest answer
 * wins, ties within PICK_TIE_MS go to the one listed first, the lost
 * server is left out, and a round nobody answers ends with no pick.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <string.h>

#include "server_pick.h"
#include "stun.h"

/* ---- the list -------------------------------------------------------- */

static void test_list(void **state)
{
	struct server_list l = { 0 };
	char why[256];

	(void)state;
	assert_int_equal(server_list_add(&l, "a.example:3478,[::1]:5,10.0.0.1:1", why, sizeof(why)), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.name[1], "[::1]:5");
	assert_int_equal(server_list_add(&l, "b.example:65535", why, sizeof(why)), 0);
	assert_int_equal(l.n, 4);
	/* each bad entry, and the list is as it was */
	assert_int_equal(server_list_add(&l, "c:1,,d:2", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "empty entry"));
	assert_int_equal(server_list_add(&l, "c:1,d:0", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "'d:0': PORT must be a number 1-65535"));
	assert_int_equal(server_list_add(&l, "c:1,::1:5", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "an IPv6 HOST in brackets"));
	assert_int_equal(server_list_add(&l, "c", why, sizeof(why)), -1);
	assert_int_equal(server_list_add(&l, ":5", why, sizeof(why)), -1);
	assert_int_equal(server_list_add(&l, "[]:5", why, sizeof(why)), -1);
	assert_int_equal(server_list_add(&l, "a b:5", why, sizeof(why)), -1);
	assert_int_equal(server_list_add(&l, "c:1,a.example:3478", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "twice"));
	assert_int_equal(l.n, 4);
	/* at most SERVER_LIST_MAX in all */
	assert_int_equal(server_list_add(&l, "e:1,f:1,g:1,h:1", why, sizeof(why)), 0);
	assert_int_equal(l.n, SERVER_LIST_MAX);
	assert_int_equal(server_list_add(&l, "i:1", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "at most 8"));
	assert_int_equal(l.n, SERVER_LIST_MAX);
}

static void test_list_long(void **state)
{
	struct server_list l = { 0 };
	char why[256], big[600];

	(void)state;
	memset(big, 'a', sizeof(big));
	strcpy(big + sizeof(big) - 3, ":1");
	assert_int_equal(server_list_add(&l, big, why, sizeof(why)), -1);
	memset(big, 'a', SERVER_HOST_MAX + 1);
	strcpy(big + SERVER_HOST_MAX + 1, ":1");
	assert_int_equal(server_list_add(&l, big, why, sizeof(why)), -1);
	memset(big, 'a', SERVER_HOST_MAX);
	strcpy(big + SERVER_HOST_MAX, ":1");
	assert_int_equal(server_list_add(&l, big, why, sizeof(why)), 0);
	assert_int_equal(l.n, 1);
}

/* ---- the pick -------------------------------------------------------- */

struct sent {
	int n[SERVER_LIST_MAX];
	uint8_t txid[SERVER_LIST_MAX][STUN_TXID_LEN];
};

static struct sockaddr_storage addrs[SERVER_LIST_MAX];

static int index_of(const struct sockaddr *to)
{
	for (int i = 0; i < SERVER_LIST_MAX; i++)
		if (((const struct sockaddr_in *)to)->sin_port ==
		    ((struct sockaddr_in *)&addrs[i])->sin_port)
			return i;
	fail();
	return -1;
}

static void on_send(void *ctx, const struct sockaddr *to, const uint8_t *buf,
                    size_t len)
{
	struct sent *s = ctx;
	struct stun_msg m;
	int i = index_of(to);

	assert_int_equal(stun_decode(&m, buf, len), STUN_OK);
	assert_int_equal(m.method, STUN_BINDING);
	assert_int_equal(m.cls, STUN_REQUEST);
	s->n[i]++;
	memcpy(s->txid[i], m.txid, STUN_TXID_LEN);
}

static void setup_addrs(void)
{
	for (int i = 0; i < SERVER_LIST_MAX; i++) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&addrs[i];

		memset(sin, 0, sizeof(addrs[i]));
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)(3478 + i));
		sin->sin_addr.s_addr = htonl(0x7f000001);
	}
}

/* Server i answers at now_us (a success with a mapped address). */
static int answer(struct server_pick *p, const struct sent *s, int i,
                  uint64_t now_us)
{
	struct stun_msg m;

	memset(&m, 0, sizeof(m));
	m.method = STUN_BINDING;
	m.cls = STUN_SUCCESS;
	m.present = STUN_HAS_XOR_MAPPED;
	memcpy(m.txid, s->txid[i], STUN_TXID_LEN);
	return pick_on_stun(p, (const struct sockaddr *)&addrs[i], &m, now_us);
}

static void test_fastest(void **state)
{
	struct server_pick p;
	struct sent s = { 0 };
	struct stun_msg m;

	(void)state;
	setup_addrs();
	pick_init(&p, addrs, 3, on_send, &s);
	assert_int_equal(pick_start(&p, 0, 1000000), 3);
	assert_u64(pick_tick(&p, 1000000), 1000000 + PICK_RTO_MS * 1000);
	assert_int_equal(s.n[0] + s.n[1] + s.n[2], 3);
	/* a wrong txid, or from another address: not ours */
	memset(&m, 0, sizeof(m));
	m.method = STUN_BINDING;
	m.cls = STUN_SUCCESS;
	m.present = STUN_HAS_XOR_MAPPED;
	assert_int_equal(pick_on_stun(&p, (const struct sockaddr *)&addrs[2], &m, 1001000), 0);
	memcpy(m.txid, s.txid[2], STUN_TXID_LEN);
	assert_int_equal(pick_on_stun(&p, (const struct sockaddr *)&addrs[1], &m, 1001000), 0);
	/* server 2 answers first (2 ms), server 0 40 ms later than that:
	 * the grace ends the round at 2 + PICK_GRACE_MS ms */
	assert_int_equal(answer(&p, &s, 2, 1002000), 1);
	assert_int_equal(answer(&p, &s, 2, 1002500), 0); /* a repeat */
	assert_int_equal(answer(&p, &s, 0, 1042000), 1);
	assert_int_equal(p.state, PICK_ASKING);
	/* the round ends at the grace's end, before the next request */
	assert_u64(pick_tick(&p, 1042000), 1002000 + PICK_GRACE_MS * 1000);
	assert_int_equal(s.n[1], 1);
	pick_tick(&p, 1002000 + PICK_GRACE_MS * 1000);
	assert_int_equal(p.state, PICK_DONE);
	assert_int_equal(pick_result(&p), 2);
	assert_u64(p.rtt_us[2], 2000);
	assert_u64(p.rtt_us[0], 42000);
	pick_clear(&p);
	assert_int_equal(p.state, PICK_IDLE);
}

/* Within PICK_TIE_MS the one listed first wins; all answered ends the
 * round at once. */
static void test_tie(void **state)
{
	struct server_pick p;
	struct sent s = { 0 };

	(void)state;
	setup_addrs();
	pick_init(&p, addrs, 3, on_send, &s);
	pick_start(&p, 0, 0);
	pick_tick(&p, 0);
	assert_int_equal(answer(&p, &s, 2, 1000), 1);
	assert_int_equal(answer(&p, &s, 1, 1000 + PICK_TIE_MS * 1000), 1);
	assert_int_equal(answer(&p, &s, 0, 1001 + PICK_TIE_MS * 1000), 1);
	assert_int_equal(p.state, PICK_DONE);
	assert_int_equal(pick_result(&p), 1);
}

/* The lost server is left out; an error answer is no pick; nobody
 * answering ends the round at PICK_TIMEOUT_MS with none. */
static void test_skip_and_silence(void **state)
{
	struct server_pick p;
	struct sent s = { 0 };
	struct stun_msg m;
	uint64_t t = 0, next;
	int rounds = 0;

	(void)state;
	setup_addrs();
	pick_init(&p, addrs, 3, on_send, &s);
	assert_int_equal(pick_start(&p, 1u << 0, 0), 2);
	while ((next = pick_tick(&p, t)) != UINT64_MAX && rounds++ < 100)
		t = next;
	assert_u64(t, PICK_TIMEOUT_MS * 1000);
	assert_int_equal(s.n[0], 0);
	assert_int_equal(s.n[1], PICK_SENDS);
	assert_int_equal(s.n[2], PICK_SENDS);
	assert_int_equal(p.state, PICK_DONE);
	assert_int_equal(pick_result(&p), -1);
	/* an error answer from the only one asked: done, no pick */
	pick_start(&p, 1u << 0 | 1u << 1, 0);
	pick_tick(&p, 0);
	memset(&m, 0, sizeof(m));
	m.method = STUN_BINDING;
	m.cls = STUN_ERROR;
	memcpy(m.txid, s.txid[2], STUN_TXID_LEN);
	assert_int_equal(pick_on_stun(&p, (const struct sockaddr *)&addrs[2], &m, 100), 1);
	assert_int_equal(p.state, PICK_DONE);
	assert_int_equal(pick_result(&p), -1);
	/* all left out: done at once */
	assert_int_equal(pick_start(&p, 7, 0), 0);
	assert_int_equal(p.state, PICK_DONE);
	assert_int_equal(pick_result(&p), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_list_long),
		cmocka_unit_test(test_fastest),
		cmocka_unit_test(test_tie),
		cmocka_unit_test(test_skip_and_silence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
