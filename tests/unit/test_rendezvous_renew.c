/*
 * Unit tests for RENEW (docs/protocol.md, "RENEW"): a registration kept
 * alive by a MAC under the key its signed REGISTER's success gave, with no
 * signature.  Most tests are attacks: a RENEW with a wrong MAC, a replayed
 * one, one for another id, one after expiry, one from another address, one
 * under the key of an older registration.  Each must be refused and leave
 * the registration to expire when it would have.
 */
#include "rendezvous_unit.h"

enum { T_RENEW = 0x00EC,
       LIFE = REGISTRY_LIFETIME_MS };

/* Register id (looking for peer) from `from` at `now`; the RENEW key of
 * the success in k. */
static void reg_with_key(const char *id, const char *peer, uint64_t session,
                         const struct sockaddr_storage *from, uint64_t now,
                         uint8_t k[PUNCH_RENEW_KEY_LEN])
{
	struct reg_req q = req_make(id, peer, session);
	const struct stun_attr *a;
	struct result res;
	char nonce[33];

	do_register(&res, &q, from, now, nonce);
	expect_registered(&res, from, PUNCH_STATUS_WAITING);
	a = punch_attr_find(&res.m, PUNCH_ATTR_RENEW_KEY);
	assert_non_null(a);
	assert_int_equal(a->len, PUNCH_RENEW_KEY_LEN);
	memcpy(k, a->value, PUNCH_RENEW_KEY_LEN);
}

/* A RENEW as rendezvous_client.c builds it, MAC under k. */
static size_t renew_build(uint8_t *buf, size_t size, const char *id,
                          uint64_t session, uint32_t seq,
                          const uint8_t k[PUNCH_RENEW_KEY_LEN])
{
	uint8_t txid[STUN_TXID_LEN], s[8];
	struct stun_writer w;
	int n;

	fresh_txid(txid);
	for (int i = 0; i < 8; i++)
		s[i] = (uint8_t)(session >> (56 - 8 * i));
	stun_writer_init(&w, buf, size, PUNCH_RENEW, STUN_REQUEST, txid);
	stun_put_bytes(&w, PUNCH_ATTR_ID, id, strlen(id));
	stun_put_bytes(&w, PUNCH_ATTR_SESSION, s, sizeof(s));
	stun_put_u32(&w, PUNCH_ATTR_RENEW_SEQ, seq);
	stun_put_integrity_sha256(&w, k, PUNCH_RENEW_KEY_LEN);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	assert_true(n > 0);
	return (size_t)n;
}

static void renew_feed(struct result *res, const char *id, uint64_t session,
                       uint32_t seq, const uint8_t k[PUNCH_RENEW_KEY_LEN],
                       const struct sockaddr_storage *from, uint64_t now)
{
	uint8_t buf[512];
	size_t len = renew_build(buf, sizeof(buf), id, session, seq, k);

	assert_int_equal(buf[0] << 8 | buf[1], T_RENEW);
	feed(res, 0, buf, len, from, now);
}

/* Refused: a 401, unsigned and without MAC, and nothing renewed. */
static void expect_refused(const struct result *res, const char *reason)
{
	assert_error_reply(res, 401, reason);
	assert_null(punch_attr_find(&res->m, PUNCH_ATTR_SIGNATURE));
	assert_false(res->m.present & STUN_HAS_INTEGRITY_SHA256);
	assert_u64(rdv_stats(srv)->renewed, 0);
}

/* Is id still registered at `at`, after the expiry rdv_tick() does? */
static int alive_at(const char *id, uint64_t at)
{
	rdv_tick(srv, at);
	return registry_find(rdv_registry(srv), id) != NULL;
}

static void test_renew_keeps_registration(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	uint8_t k[PUNCH_RENEW_KEY_LEN];
	struct result res;

	(void)state;
	reg_with_key("alice", "bob", 7, &from, T0, k);
	renew_feed(&res, "alice", 7, 1, k, &from, T0 + LIFE - 1000);
	assert_int_equal(res.verdict, BINDING_REPLY);
	assert_false(res.reply.is_error);
	/* the answer: our MAC, no signature, the registration's terms */
	assert_int_equal(stun_check_integrity(&res.m, res.out, res.reply.len, k,
	                                      sizeof(k)),
	                 STUN_OK);
	assert_null(punch_attr_find(&res.m, PUNCH_ATTR_SIGNATURE));
	assert_addr(&res.m.xor_mapped, &from);
	assert_int_equal(u32_attr(&res.m, PUNCH_ATTR_STATUS),
	                 PUNCH_STATUS_WAITING);
	assert_int_equal(u32_attr(&res.m, PUNCH_ATTR_LIFETIME), LIFE / 1000);
	assert_u64(rdv_stats(srv)->renewed, 1);
	/* alive a lifetime after the RENEW, not after the REGISTER */
	assert_true(alive_at("alice", T0 + LIFE + 1000));
	assert_true(alive_at("alice", T0 + 2 * LIFE - 2000));
	assert_false(alive_at("alice", T0 + 2 * LIFE));
}

static void test_renew_bad_mac_refused(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	uint8_t k[PUNCH_RENEW_KEY_LEN];
	struct result res;

	(void)state;
	reg_with_key("alice", "bob", 7, &from, T0, k);
	k[5] ^= 1;
	renew_feed(&res, "alice", 7, 1, k, &from, T0 + 1000);
	expect_refused(&res, "Unauthorized: bad MAC");
	assert_false(alive_at("alice", T0 + LIFE + 1000));
}

/* The same RENEW again (captured on the path and sent from the same
 * address), and an older sequence number: refused. */
static void test_renew_replay_refused(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	uint8_t k[PUNCH_RENEW_KEY_LEN], buf[512];
	struct result res;
	size_t len;

	(void)state;
	reg_with_key("alice", "bob", 7, &from, T0, k);
	len = renew_build(buf, sizeof(buf), "alice", 7, 5, k);
	feed(&res, 0, buf, len, &from, T0 + 1000);
	assert_false(res.reply.is_error);
	feed(&res, 0, buf, len, &from, T0 + LIFE);
	assert_error_reply(&res, 401,
	                   "Unauthorized: sequence number not above the last");
	renew_feed(&res, "alice", 7, 4, k, &from, T0 + LIFE);
	assert_error_reply(&res, 401,
	                   "Unauthorized: sequence number not above the last");
	assert_u64(rdv_stats(srv)->renewed, 1);
	/* the replays kept nothing alive */
	assert_false(alive_at("alice", T0 + 1000 + LIFE + 1000));
}

/* carol's key, for alice's registration (the MAC is carol's own, right
 * for carol): refused, so one client cannot keep another's id alive. */
static void test_renew_other_id_refused(void **state)
{
	struct sockaddr_storage a = sa_make("198.51.100.1", 40000);
	uint8_t ka[PUNCH_RENEW_KEY_LEN], kc[PUNCH_RENEW_KEY_LEN];
	struct result res;

	(void)state;
	reg_with_key("alice", "bob", 7, &a, T0, ka);
	reg_with_key("carol", "dave", 7, &a, T0, kc);
	assert_memory_not_equal(ka, kc, sizeof(ka));
	renew_feed(&res, "alice", 7, 1, kc, &a, T0 + 1000);
	expect_refused(&res, "Unauthorized: bad MAC");
	assert_false(alive_at("alice", T0 + LIFE + 1000));
}

static void test_renew_after_expiry_refused(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	uint8_t k[PUNCH_RENEW_KEY_LEN];
	struct result res;

	(void)state;
	reg_with_key("alice", "bob", 7, &from, T0, k);
	assert_false(alive_at("alice", T0 + LIFE + 1000));
	renew_feed(&res, "alice", 7, 1, k, &from, T0 + LIFE + 1000);
	expect_refused(&res,
	               "Unauthorized: no such registration from this address; REGISTER");
	assert_null(registry_find(rdv_registry(srv), "alice"));
}

/* The right MAC from another address (a spoofer on the path, or a NAT
 * that moved us): refused; a signed REGISTER proves the new address. */
static void test_renew_other_address_refused(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	struct sockaddr_storage other = sa_make("198.51.100.1", 40001);
	uint8_t k[PUNCH_RENEW_KEY_LEN];
	struct result res;

	(void)state;
	reg_with_key("alice", "bob", 7, &from, T0, k);
	renew_feed(&res, "alice", 7, 1, k, &other, T0 + 1000);
	expect_refused(&res,
	               "Unauthorized: no such registration from this address; REGISTER");
	renew_feed(&res, "alice", 8, 2, k, &from, T0 + 1000);
	expect_refused(&res,
	               "Unauthorized: no such registration from this address; REGISTER");
	assert_false(alive_at("alice", T0 + LIFE + 1000));
}

/* A signed REGISTER of a new session (a restart) or from a new address
 * gives a new key: the old one (perhaps seen on the path) is useless, even
 * with a sequence number the new count has not reached. */
static void test_renew_old_key_refused(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	struct sockaddr_storage moved = sa_make("198.51.100.1", 40002);
	uint8_t k1[PUNCH_RENEW_KEY_LEN], k2[PUNCH_RENEW_KEY_LEN];
	uint8_t k3[PUNCH_RENEW_KEY_LEN];
	struct result res;

	(void)state;
	reg_with_key("alice", "bob", 7, &from, T0, k1);
	reg_with_key("alice", "bob", 8, &from, T0 + 100, k2);
	assert_memory_not_equal(k1, k2, sizeof(k1));
	renew_feed(&res, "alice", 8, 9, k1, &from, T0 + 1000);
	expect_refused(&res, "Unauthorized: bad MAC");
	reg_with_key("alice", "bob", 8, &moved, T0 + 1100, k3);
	assert_memory_not_equal(k2, k3, sizeof(k2));
	renew_feed(&res, "alice", 8, 9, k2, &moved, T0 + 2000);
	expect_refused(&res, "Unauthorized: bad MAC");
	renew_feed(&res, "alice", 8, 1, k3, &moved, T0 + 2000);
	assert_false(res.reply.is_error);
}

/* A signed REGISTER of the same session from the same address (a refresh
 * from a client that has no key, or a retransmission whose first answer
 * the client took) keeps the key the client holds, and its count: a RENEW
 * seen before it is still a replay after it. */
static void test_renew_same_session_keeps_key(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	uint8_t k1[PUNCH_RENEW_KEY_LEN], k2[PUNCH_RENEW_KEY_LEN], buf[512];
	struct result res;
	size_t len;

	(void)state;
	reg_with_key("alice", "bob", 7, &from, T0, k1);
	len = renew_build(buf, sizeof(buf), "alice", 7, 1, k1);
	feed(&res, 0, buf, len, &from, T0 + 1000);
	assert_false(res.reply.is_error);
	reg_with_key("alice", "bob", 7, &from, T0 + 2000, k2);
	assert_memory_equal(k1, k2, sizeof(k1));
	feed(&res, 0, buf, len, &from, T0 + 3000);
	assert_error_reply(&res, 401,
	                   "Unauthorized: sequence number not above the last");
	renew_feed(&res, "alice", 7, 2, k1, &from, T0 + 3000);
	assert_false(res.reply.is_error);
}

/* punch server -lifetime: the answers say it, and registrations live it. */
static void test_lifetime_set(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	struct reg_req q = req_make("alice", "bob", 7);
	const struct stun_attr *a;
	struct result res;
	char nonce[33];

	(void)state;
	rdv_server_set_lifetime(srv, 600000);
	do_register(&res, &q, &from, T0, nonce);
	assert_false(res.reply.is_error);
	assert_int_equal(u32_attr(&res.m, PUNCH_ATTR_LIFETIME), 600);
	a = punch_attr_find(&res.m, PUNCH_ATTR_RENEW_KEY);
	assert_non_null(a);
	renew_feed(&res, "alice", 7, 1, a->value, &from, T0 + 1000);
	assert_false(res.reply.is_error);
	assert_int_equal(u32_attr(&res.m, PUNCH_ATTR_LIFETIME), 600);
	assert_true(alive_at("alice", T0 + 600000));
	assert_false(alive_at("alice", T0 + 1000 + 600000));
}

static void test_renew_malformed_400(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	uint8_t txid[STUN_TXID_LEN], buf[256];
	struct stun_writer w;
	struct result res;
	int n;

	(void)state;
	fresh_txid(txid);
	stun_writer_init(&w, buf, sizeof(buf), PUNCH_RENEW, STUN_REQUEST, txid);
	stun_put_bytes(&w, PUNCH_ATTR_ID, "alice", 5);
	stun_put_u32(&w, PUNCH_ATTR_RENEW_SEQ, 1);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	assert_true(n > 0);
	feed(&res, 0, buf, (size_t)n, &from, T0);
	assert_error_reply(&res, 400,
	                   "Bad Request: session missing or malformed");
	assert_true(res.reply.len <= (size_t)n * BINDING_AMPLIFICATION_MAX);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_renew_keeps_registration),
		T(test_renew_bad_mac_refused),
		T(test_renew_replay_refused),
		T(test_renew_other_id_refused),
		T(test_renew_after_expiry_refused),
		T(test_renew_other_address_refused),
		T(test_renew_old_key_refused),
		T(test_renew_same_session_keeps_key),
		T(test_renew_malformed_400),
		T(test_lifetime_set),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
