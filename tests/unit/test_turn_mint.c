/*
 * Relay credentials the rendezvous mints for each signed registration
 * (PUNCH-RELAY in the REGISTER success), and the rule that such an
 * allocation reaches only the peer it was introduced to.
 */
#include "rendezvous_unit.h"

#include <gnutls/crypto.h>

#include "turn_server.h"

static const uint8_t secret[] = "mint-secret";

/* PUNCH-RELAY's username and password, from a REGISTER success. */
static void relay_of(const struct stun_msg *m, char *user, char *pass)
{
	const struct stun_attr *a = punch_attr_find(m, PUNCH_ATTR_RELAY);
	size_t ulen;

	assert_non_null(a);
	assert_true(a->len > 1);
	ulen = a->value[0];
	assert_true(1 + ulen < a->len);
	memcpy(user, a->value + 1, ulen);
	user[ulen] = '\0';
	memcpy(pass, a->value + 1 + ulen, a->len - 1 - ulen);
	pass[a->len - 1 - ulen] = '\0';
}

static void test_register_carries_credentials(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 40000);
	struct reg_req q = req_make("alice", "bob", 0xA11CE);
	char nonce[33], user[256], pass[64], want[64];
	struct result res;

	(void)state;
	/* Without the relay: no credentials */
	do_register(&res, &q, &from, T0, nonce);
	expect_registered(&res, &from, PUNCH_STATUS_WAITING);
	assert_null(punch_attr_find(&res.m, PUNCH_ATTR_RELAY));

	assert_int_equal(rdv_server_set_relay_secret(srv, secret,
	                                             sizeof(secret) - 1),
	                 0);
	fresh_txid(q.txid);
	feed_req(&res, &q, &from, T0 + 10);
	expect_registered(&res, &from, PUNCH_STATUS_WAITING);
	relay_of(&res.m, user, pass);
	assert_string_equal(user, "rdv:00000000000a11ce:alice");
	assert_int_equal(turn_rest_password(secret, sizeof(secret) - 1, user,
	                                    want, sizeof(want)),
	                 0);
	assert_string_equal(pass, want);

	/* Good while the registration lives, for that session only */
	assert_int_equal(rdv_minted_check(srv, user, NULL), 0);
	assert_int_equal(rdv_minted_check(srv, "rdv:00000000000a11cf:alice",
	                                  NULL),
	                 -1);
	assert_int_equal(rdv_minted_check(srv, "rdv:00000000000a11ce:eve",
	                                  NULL),
	                 -1);
	assert_int_equal(rdv_minted_check(srv, "1800000000:alice", NULL), -1);
	rdv_tick(srv, T0 + 10 + REGISTRY_LIFETIME_MS + 1);
	assert_int_equal(rdv_minted_check(srv, user, NULL), -1);
}

static void test_mint_parse(void **state)
{
	char id[PUNCH_ID_MAX + 1], user[256], pass[64];
	uint64_t session;

	(void)state;
	assert_int_equal(turn_mint(secret, 11, "a:b", 0x1234, user,
	                           sizeof(user), pass, sizeof(pass)),
	                 0);
	assert_string_equal(user, "rdv:0000000000001234:a:b");
	assert_int_equal(turn_mint_parse(user, id, sizeof(id), &session), 0);
	assert_string_equal(id, "a:b");
	assert_u64(session, 0x1234);
	assert_int_equal(turn_mint_parse("rdv:123:alice", id, sizeof(id),
	                                 &session),
	                 -1);
	assert_int_equal(turn_mint_parse("rdv:000000000000123g:alice", id,
	                                 sizeof(id), &session),
	                 -1);
	assert_int_equal(turn_mint_parse("rdv:0000000000001234:", id,
	                                 sizeof(id), &session),
	                 -1);
	assert_int_equal(turn_mint_parse("rdv:0000000000001234", id,
	                                 sizeof(id), &session),
	                 -1);
}

/* alice's credentials permit bob where bob said he was or was seen, and
 * nowhere else; and nothing once alice's registration is gone. */
static void test_minted_peer_rule(void **state)
{
	struct pair_fixture f;
	struct sockaddr_storage ok1 = sa_make("10.0.0.2", 9);
	struct sockaddr_storage ok2 = sa_make("2001:db8:b::2", 9);
	struct sockaddr_storage bad = sa_make("203.0.113.9", 6000);
	struct sockaddr_storage self = sa_make("198.51.100.1", 40000);
	char user[256], pass[64];

	(void)state;
	rdv_server_set_relay_secret(srv, secret, sizeof(secret) - 1);
	pair_up(&f);
	assert_int_equal(turn_mint(secret, sizeof(secret) - 1, "alice", 0xA11CE,
	                           user, sizeof(user), pass, sizeof(pass)),
	                 0);
	assert_int_equal(rdv_minted_check(srv, user, SA(ok1)), 0);
	assert_int_equal(rdv_minted_check(srv, user, SA(ok2)), 0);
	/* alice's own srflx candidate, and alice herself: not bob */
	assert_int_equal(rdv_minted_check(srv, user, SA(bad)), -1);
	assert_int_equal(rdv_minted_check(srv, user, SA(self)), -1);
}

/* The whole path: turn_server asks the rendezvous through turn_ops. */
static int fake_open(void *ctx, int slot, const struct sockaddr *addr)
{
	(void)ctx;
	(void)slot;
	(void)addr;
	return 0;
}

static void fake_close(void *ctx, int slot)
{
	(void)ctx;
	(void)slot;
}

static size_t turn_request(uint16_t method, const char *user,
                           const char *pass, const char *nonce,
                           const struct sockaddr_storage *peer, uint8_t *buf,
                           size_t buf_cap)
{
	static uint8_t txid[STUN_TXID_LEN];
	uint8_t key[16];
	char k[512];
	struct stun_writer w;
	int n;

	txid[0]++;
	snprintf(k, sizeof(k), "%s:punch:%s", user, pass);
	gnutls_hash_fast(GNUTLS_DIG_MD5, k, strlen(k), key);
	stun_writer_init(&w, buf, buf_cap, method, STUN_REQUEST, txid);
	if (method == STUN_ALLOCATE)
		stun_put_u32(&w, STUN_ATTR_REQUESTED_TRANSPORT, 17u << 24);
	if (peer)
		stun_put_xor_addr(&w, STUN_ATTR_XOR_PEER_ADDRESS, SA(*peer));
	stun_put_bytes(&w, STUN_ATTR_USERNAME, user, strlen(user));
	stun_put_bytes(&w, STUN_ATTR_REALM, "punch", 5);
	stun_put_bytes(&w, STUN_ATTR_NONCE, nonce, strlen(nonce));
	stun_put_integrity(&w, key, sizeof(key));
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	assert_true(n > 0);
	return (size_t)n;
}

static int turn_code(struct turn_server *t, const struct sockaddr_storage *c,
                     const uint8_t *buf, size_t len, uint64_t now,
                     char *nonce)
{
	static uint8_t out[TURN_OUT_MAX];
	struct stun_msg m;
	struct turn_out o;

	assert_int_equal(turn_handle_client(t, 0, buf, len, SA(*c), now, out,
	                                    sizeof(out), &o),
	                 TURN_TO_CLIENT);
	decode_ok(&m, out, o.len);
	if (m.present & STUN_HAS_NONCE) {
		memcpy(nonce, m.nonce.ptr, m.nonce.len);
		nonce[m.nonce.len] = '\0';
	}
	return m.cls == STUN_SUCCESS ? 0 : m.error_code;
}

static void test_minted_allocation(void **state)
{
	struct turn_ops ops = { fake_open, fake_close, rdv_minted_check, NULL };
	struct turn_config cfg = { 0 };
	struct sockaddr_storage alice = sa_make("198.51.100.1", 40000);
	struct sockaddr_storage bob_host = sa_make("10.0.0.2", 7000);
	struct sockaddr_storage stranger = sa_make("192.0.2.99", 7000);
	struct turn_server *t;
	struct pair_fixture f;
	char user[256], pass[64], nonce[64] = "none";
	uint8_t buf[512];
	size_t n;

	(void)state;
	rdv_server_set_relay_secret(srv, secret, sizeof(secret) - 1);
	pair_up(&f);
	ops.ctx = srv;
	cfg.secret = secret;
	cfg.secret_len = sizeof(secret) - 1;
	cfg.relay4 = sa_make("192.0.2.1", 0);
	cfg.port_lo = cfg.port_hi = 50000;
	cfg.allow_private = 1;
	t = turn_server_new(&cfg, &ops);
	assert_non_null(t);
	turn_mint(secret, sizeof(secret) - 1, "alice", 0xA11CE, user,
	          sizeof(user), pass, sizeof(pass));

	n = turn_request(STUN_ALLOCATE, user, pass, nonce, NULL, buf,
	                 sizeof(buf));
	assert_int_equal(turn_code(t, &alice, buf, n, T0 + 200, nonce), 438);
	n = turn_request(STUN_ALLOCATE, user, pass, nonce, NULL, buf,
	                 sizeof(buf));
	assert_int_equal(turn_code(t, &alice, buf, n, T0 + 200, nonce), 0);
	n = turn_request(STUN_CREATE_PERMISSION, user, pass, nonce, &bob_host,
	                 buf, sizeof(buf));
	assert_int_equal(turn_code(t, &alice, buf, n, T0 + 300, nonce), 0);
	n = turn_request(STUN_CREATE_PERMISSION, user, pass, nonce, &stranger,
	                 buf, sizeof(buf));
	assert_int_equal(turn_code(t, &alice, buf, n, T0 + 300, nonce), 403);

	/* A session that is not the registration's: 401 */
	turn_mint(secret, sizeof(secret) - 1, "alice", 0xBAD, user,
	          sizeof(user), pass, sizeof(pass));
	n = turn_request(STUN_ALLOCATE, user, pass, nonce, NULL, buf,
	                 sizeof(buf));
	assert_int_equal(turn_code(t, &stranger, buf, n, T0 + 300, nonce), 438);
	n = turn_request(STUN_ALLOCATE, user, pass, nonce, NULL, buf,
	                 sizeof(buf));
	assert_int_equal(turn_code(t, &stranger, buf, n, T0 + 300, nonce), 401);
	assert_size(turn_alloc_count(t), 1);
	turn_server_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_carries_credentials,
		                                setup, teardown),
		cmocka_unit_test(test_mint_parse),
		cmocka_unit_test_setup_teardown(test_minted_peer_rule, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_minted_allocation, setup,
		                                teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
