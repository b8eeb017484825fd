/*
 * Unit tests for the pure parts of the shared registry: -registry URL
 * parsing (registry_url.c), and a registration's value as stored in Redis
 * and read back, with every check a registration here passes
 * (registry_value.c).
 */
#include "rendezvous_unit.h"

#include "registry_url.h"
#include "registry_value.h"

static void url_ok(const char *s, const char *env, int is_unix,
                   const char *host, unsigned port, const char *path,
                   const char *password, unsigned db)
{
	struct registry_url u;
	char err[512];

	assert_int_equal(registry_url_parse(s, env, &u, err, sizeof(err)), 0);
	assert_int_equal(u.is_unix, is_unix);
	assert_string_equal(u.host, host);
	assert_int_equal(u.port, port);
	assert_string_equal(u.path, path);
	assert_string_equal(u.password, password);
	assert_int_equal(u.db, db);
}

static void url_bad(const char *s, const char *why)
{
	struct registry_url u;
	char err[512];

	assert_int_equal(registry_url_parse(s, NULL, &u, err, sizeof(err)), -1);
	if (!strstr(err, why))
		fail_msg("%s: expected '%s' in '%s'", s, why, err);
}

static void test_url(void **state)
{
	char big[400];

	(void)state;
	url_ok("redis://127.0.0.1", NULL, 0, "127.0.0.1", 6379, "", "", 0);
	url_ok("redis://127.0.0.1:7000/3", NULL, 0, "127.0.0.1", 7000, "", "", 3);
	url_ok("redis://redis.example/", NULL, 0, "redis.example", 6379, "", "", 0);
	url_ok("redis://[::1]:6380/1", NULL, 0, "::1", 6380, "", "", 1);
	url_ok("redis://:s3cret@h:1", NULL, 0, "h", 1, "", "s3cret", 0);
	url_ok("redis://user:pw@h", NULL, 0, "h", 6379, "", "pw", 0);
	url_ok("redis://:p@ss/w@h/2", NULL, 0, "h", 6379, "", "p@ss/w", 2);
	/* the URL's password wins; the environment fills in */
	url_ok("redis://:a@h", "b", 0, "h", 6379, "", "a", 0);
	url_ok("redis://h", "b", 0, "h", 6379, "", "b", 0);
	url_ok("unix:///run/redis/redis.sock", "pw", 1, "", 0,
	       "/run/redis/redis.sock", "pw", 0);
	url_bad("http://h", "neither redis:// nor unix://");
	url_bad("redis://", "no host");
	url_bad("redis://:6379", "no host");
	url_bad("redis://h:0", "port");
	url_bad("redis://h:65536", "port");
	url_bad("redis://h:12ab", "port");
	url_bad("redis://h/x", "database");
	url_bad("redis://h/99999999", "database");
	url_bad("redis://[::1", "closing ']'");
	url_bad("redis://[::1]x", "not :PORT");
	url_bad("redis://h?db=1", "options");
	url_bad("redis://user@h", "password");
	url_bad("unix://relative", "absolute path");
	url_bad("redis://h_st", "neither a name nor an IP address");
	url_bad("redis://[::1%lo]", "neither a name nor an IP address");
	url_bad("redis://:pw@127\354\n/2", "neither a name nor an IP address");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "unix:///", 8);
	url_bad(big, "longer than 107");
	memcpy(big, "redis://", 8);
	url_bad(big, "longer than 255");
}

static void test_url_str_hides_password(void **state)
{
	struct registry_url u;
	char err[256], s[300];

	(void)state;
	assert_int_equal(registry_url_parse("redis://:secret@[::1]:7/2", NULL, &u,
	                                    err, sizeof(err)),
	                 0);
	registry_url_str(&u, s, sizeof(s));
	assert_string_equal(s, "redis://[::1]:7/2");
}

/* A REGISTER as a client signs it (rendezvous_unit.h), encoded as a value. */
static size_t make_value(uint8_t *v, size_t vcap, const char *id,
                         const char *peer, int key, struct raw *r)
{
	struct reg_req q = req_make(id, peer, 77);
	struct sockaddr_storage from = sa_make("198.51.100.7", 4242);
	size_t len;

	q.key = key;
	q.nonce = "0000000100112233445566778899aabb";
	build_register(r, &q);
	assert_int_equal(regval_encode(v, vcap, &len,
	                               (const struct sockaddr *)&from, r->b,
	                               r->len),
	                 0);
	return len;
}

static void test_value_round_trip(void **state)
{
	uint8_t v[REGVAL_MAX], pk[32], sk[64], fp[32];
	struct sockaddr_storage want = sa_make("198.51.100.7", 4242);
	struct punch_peer p;
	const char *why = NULL;
	struct raw r;
	size_t len = make_value(v, sizeof(v), "alice", "bob", 3, &r);

	(void)state;
	assert_int_equal(regval_decode(v, len, &p, &why), 0);
	assert_string_equal(p.id, "alice");
	assert_string_equal(p.peer_id, "bob");
	assert_int_equal(p.session, 77);
	assert_int_equal(p.n_cand, 3);
	/* the fingerprint is the signing key's, computed, not claimed */
	test_key(3, pk, sk, fp);
	assert_true(p.has_key_fp);
	assert_memory_equal(p.key_fp, fp, 32);
	assert_true(p.has_observed);
	assert_true(addr_equal((const struct sockaddr *)&p.observed,
	                       (const struct sockaddr *)&want));
}

static void test_value_rejects(void **state)
{
	uint8_t v[REGVAL_MAX], w[REGVAL_MAX];
	struct punch_peer p;
	const char *why;
	struct raw r;
	size_t len = make_value(v, sizeof(v), "alice", "bob", 0, &r);
	struct reg_req q;
	size_t n;

	(void)state;
	/* every prefix of it is refused, the empty one included */
	for (size_t i = 0; i < len; i++) {
		why = NULL;
		assert_int_equal(regval_decode(v, i, &p, &why), -1);
		assert_non_null(why);
	}
	/* a flipped byte anywhere: a bad header, a bad message, or a
	 * signature that no longer verifies */
	for (size_t i = 0; i < len; i++) {
		memcpy(w, v, len);
		w[i] ^= 0x40;
		if (i >= 4 && i < 6 + 4)
			continue; /* the address: not signed (the server's word) */
		assert_int_equal(regval_decode(w, len, &p, &why), -1);
	}
	/* unsigned */
	q = req_make("alice", "bob", 1);
	q.unsigned_req = 1;
	build_register(&r, &q);
	assert_int_equal(regval_encode(w, sizeof(w), &n,
	                               (const struct sockaddr *)&(struct sockaddr_storage){ .ss_family = AF_INET },
	                               r.b, r.len),
	                 0);
	assert_int_equal(regval_decode(w, n, &p, &why), -1);
	/* no peer id, or the id's own */
	len = make_value(w, sizeof(w), "alice", NULL, 0, &r);
	assert_int_equal(regval_decode(w, len, &p, &why), -1);
	len = make_value(w, sizeof(w), "alice", "alice", 0, &r);
	assert_int_equal(regval_decode(w, len, &p, &why), -1);
	/* not an address the encoder takes */
	assert_int_equal(regval_encode(w, sizeof(w), &n,
	                               (const struct sockaddr *)&(struct sockaddr_storage){ .ss_family = AF_UNIX },
	                               r.b, r.len),
	                 -1);
	/* too small an output */
	assert_int_equal(regval_encode(w, 10, &n,
	                               (const struct sockaddr *)&(struct sockaddr_storage){ .ss_family = AF_INET },
	                               r.b, r.len),
	                 -1);
}

static void test_message(void **state)
{
	uint8_t m[REGMSG_MAX], v[8] = "valuev\n";
	char target[PUNCH_ID_MAX + 1];
	const uint8_t *val;
	size_t n, vlen;
	const char *why;

	(void)state;
	assert_int_equal(regmsg_encode(m, sizeof(m), &n, "bob", v, sizeof(v)), 0);
	assert_int_equal(regmsg_split(m, n, target, &val, &vlen, &why), 0);
	assert_string_equal(target, "bob");
	assert_int_equal(vlen, sizeof(v));
	assert_memory_equal(val, v, sizeof(v));
	assert_int_equal(regmsg_split((const uint8_t *)"\nx", 2, target, &val,
	                              &vlen, &why),
	                 -1);
	assert_int_equal(regmsg_split((const uint8_t *)"no newline", 10, target,
	                              &val, &vlen, &why),
	                 -1);
	assert_int_equal(regmsg_split((const uint8_t *)"a b\nx", 5, target, &val,
	                              &vlen, &why),
	                 -1);
	memset(m, 'a', 80);
	m[70] = '\n';
	assert_int_equal(regmsg_split(m, 80, target, &val, &vlen, &why), -1);
	assert_true(regval_server_id_ok("0123456789abcdef", 16));
	assert_false(regval_server_id_ok("0123456789abcdeF", 16));
	assert_false(regval_server_id_ok("0123456789abcde", 15));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_url_str_hides_password),
		cmocka_unit_test(test_value_round_trip),
		cmocka_unit_test(test_value_rejects),
		cmocka_unit_test(test_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
