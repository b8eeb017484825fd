/*
 * CPace (pake.c) against the ristretto255 test vectors of
 * draft-irtf-cfrg-cpace (appendix "Test vector for CPace using group
 * ristretto255 and hash SHA-512"), then punch's own use of it: two honest
 * parties agree, a wrong code or a wrong fingerprint does not, shares that
 * do not decode or are the identity are refused, and the code and stream
 * parsers take exactly what they should.
 */
#include "unit.h"

#include <ctype.h>
#include <stdio.h>

#include "pake.h"

/* Hex to bytes; the vectors are written as the draft prints them. */
static size_t unhex(const char *s, uint8_t *out, size_t max)
{
	size_t n = 0;

	for (; s[0] && s[1]; s += 2) {
		unsigned v;

		while (*s == ' ')
			s++;
		if (!s[0] || sscanf(s, "%2x", &v) != 1)
			break;
		assert_true(n < max);
		out[n++] = (uint8_t)v;
	}
	return n;
}

static void assert_hex(const uint8_t *seen, size_t len, const char *want_hex)
{
	uint8_t want[128];
	size_t n = unhex(want_hex, want, sizeof(want));

	assert_size(n, len);
	if (memcmp(seen, want, len)) {
		char s[2 * 128 + 1];

		for (size_t i = 0; i < len; i++)
			snprintf(s + 2 * i, 3, "%02x", seen[i]);
		print_error("expected %s\n    seen %s\n", want_hex, s);
		fail();
	}
}

/* The draft's inputs. */
static const char v_ci[] = "0b415f696e69746961746f720b425f726573706f6e646572";
static const char v_sid[] = "7e4b4791d6a8ef019b936c79fb7f2c57";
static const char v_ya[] =
	"da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08";
static const char v_yb[] =
	"d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d";

static void test_generator_vector(void **state)
{
	uint8_t ci[64], sid[16], g[PAKE_SHARE_LEN];
	size_t ci_len = unhex(v_ci, ci, sizeof(ci));

	(void)state;
	assert_size(unhex(v_sid, sid, sizeof(sid)), 16);
	assert_int_equal(pake_generator((const uint8_t *)"Password", 8, ci,
	                                ci_len, sid, sizeof(sid), g),
	                 0);
	assert_hex(g, sizeof(g),
	           "222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56");
}

/* Both messages, K and the initiator-responder ISK of the draft. */
static void test_isk_vector(void **state)
{
	uint8_t ci[64], sid[16], ya[32], yb[32];
	size_t ci_len = unhex(v_ci, ci, sizeof(ci));
	struct pake a, b;
	static const char isk[] =
		"b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dcae7b35cd"
		"2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c3fa2068af7900447";

	(void)state;
	unhex(v_sid, sid, sizeof(sid));
	unhex(v_ya, ya, sizeof(ya));
	unhex(v_yb, yb, sizeof(yb));
	assert_int_equal(pake_start(&a, 1, "Password", ci, ci_len, sid, 16,
	                            (const uint8_t *)"ADa", 3, ya),
	                 0);
	assert_int_equal(pake_start(&b, 0, "Password", ci, ci_len, sid, 16,
	                            (const uint8_t *)"ADb", 3, yb),
	                 0);
	assert_hex(a.own, 32,
	           "d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157");
	assert_hex(b.own, 32,
	           "3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258");
	assert_int_equal(pake_finish(&a, b.own, (const uint8_t *)"ADb", 3), 0);
	assert_int_equal(pake_finish(&b, a.own, (const uint8_t *)"ADa", 3), 0);
	assert_hex(a.isk, 64, isk);
	assert_hex(b.isk, 64, isk);
	pake_wipe(&a);
	pake_wipe(&b);
}

/* The draft's scalar_mult_vfy cases: an encoding that does not decode and
 * the identity element both abort. */
static void test_invalid_shares(void **state)
{
	uint8_t ci[PAKE_CI_MAX], sid[PAKE_SID_LEN] = { 1 }, fa[32] = { 1 },
				 fb[32] = { 2 }, bad[32], ones[32];
	size_t ci_len = pake_ci(fa, fb, ci);
	struct pake a;

	(void)state;
	unhex("2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c",
	      bad, sizeof(bad));
	memset(ones, 0xFF, sizeof(ones));
	assert_int_equal(pake_start(&a, 1, "7-amber-falcon", ci, ci_len, sid,
	                            sizeof(sid), NULL, 0, NULL),
	                 0);
	assert_int_equal(pake_finish(&a, bad, NULL, 0), -1);
	static const uint8_t identity[32];
	assert_int_equal(pake_finish(&a, identity, NULL, 0), -1);
	assert_int_equal(pake_finish(&a, ones, NULL, 0), -1);
	/* Nothing was derived: a confirmation cannot pass. */
	uint8_t mac[PAKE_MAC_LEN] = { 0 };
	assert_int_equal(pake_mac_check(&a, mac), -1);
	pake_wipe(&a);
}

/* Someone in the middle without the code sends alice her own share back,
 * then her own confirmation: with empty associated data both MACs would
 * cover the same bytes under the same key, so the share is refused. */
static void test_reflection_refused(void **state)
{
	uint8_t ci[PAKE_CI_MAX], sid[PAKE_SID_LEN] = { 4 }, fa[32] = { 1 },
				 fb[32] = { 2 }, ta[PAKE_MAC_LEN];
	size_t ci_len = pake_ci(fa, fb, ci);
	struct pake a;

	(void)state;
	assert_int_equal(pake_start(&a, 1, "7-amber-falcon", ci, ci_len, sid,
	                            sizeof(sid), NULL, 0, NULL),
	                 0);
	if (pake_finish(&a, a.own, NULL, 0) == 0) {
		pake_mac_own(&a, ta);
		if (pake_mac_check(&a, ta) == 0)
			print_error("a reflected share and confirmation pass\n");
		fail();
	}
	pake_wipe(&a);
}

/* Two runs as punch makes them: same code, fingerprints and sid. */
static int run_pair(const char *code_a, const char *code_b,
                    const uint8_t fp_b_seen_by_a[32], uint8_t isk_a[64],
                    uint8_t isk_b[64])
{
	uint8_t fa[32], fb[32], sid[PAKE_SID_LEN], ci_a[PAKE_CI_MAX],
		ci_b[PAKE_CI_MAX], ta[PAKE_MAC_LEN], tb[PAKE_MAC_LEN];
	struct pake a, b;
	size_t la, lb;
	int ok;

	memset(fa, 0xA1, sizeof(fa));
	memset(fb, 0xB2, sizeof(fb));
	memset(sid, 0x5D, sizeof(sid));
	la = pake_ci(fa, fp_b_seen_by_a ? fp_b_seen_by_a : fb, ci_a);
	lb = pake_ci(fa, fb, ci_b);
	assert_int_equal(pake_start(&a, 1, code_a, ci_a, la, sid, sizeof(sid),
	                            NULL, 0, NULL),
	                 0);
	assert_int_equal(pake_start(&b, 0, code_b, ci_b, lb, sid, sizeof(sid),
	                            NULL, 0, NULL),
	                 0);
	assert_int_equal(pake_finish(&a, b.own, NULL, 0), 0);
	assert_int_equal(pake_finish(&b, a.own, NULL, 0), 0);
	pake_mac_own(&a, ta);
	pake_mac_own(&b, tb);
	/* Each side's confirmation either passes on both sides or on none. */
	ok = pake_mac_check(&a, tb) == 0;
	assert_int_equal(pake_mac_check(&b, ta) == 0, ok);
	/* A reflected confirmation never passes: the MACs cover the sender's
	 * own share. */
	assert_int_equal(pake_mac_check(&a, ta), -1);
	memcpy(isk_a, a.isk, 64);
	memcpy(isk_b, b.isk, 64);
	pake_wipe(&a);
	pake_wipe(&b);
	return ok;
}

static void test_honest_parties_agree(void **state)
{
	uint8_t ka[64], kb[64];

	(void)state;
	assert_true(run_pair("7-amber-falcon", "7-amber-falcon", NULL, ka, kb));
	assert_memory_equal(ka, kb, 64);
}

static void test_wrong_code_fails(void **state)
{
	uint8_t ka[64], kb[64];

	(void)state;
	assert_false(run_pair("7-amber-falcon", "8-amber-falcon", NULL, ka, kb));
	assert_memory_not_equal(ka, kb, 64);
	assert_false(run_pair("7-amber-falcon", "7-amber-fossil", NULL, ka, kb));
	assert_memory_not_equal(ka, kb, 64);
}

/* A man in the middle shows alice another key than bob's own: the
 * channel identifiers differ, and so do the keys. */
static void test_other_fingerprint_fails(void **state)
{
	uint8_t ka[64], kb[64], mallory[32];

	(void)state;
	memset(mallory, 0x66, sizeof(mallory));
	assert_false(run_pair("7-amber-falcon", "7-amber-falcon", mallory, ka, kb));
	assert_memory_not_equal(ka, kb, 64);
}

/* The generator is a function of its inputs alone, and each input
 * matters. */
static void test_generator_deterministic(void **state)
{
	uint8_t ci[PAKE_CI_MAX], sid[PAKE_SID_LEN] = { 9 }, f1[32] = { 1 },
				 f2[32] = { 2 }, g1[32], g2[32];
	size_t n = pake_ci(f1, f2, ci);
	const uint8_t *code = (const uint8_t *)"7-amber-falcon";

	(void)state;
	assert_int_equal(pake_generator(code, 14, ci, n, sid, sizeof(sid), g1), 0);
	assert_int_equal(pake_generator(code, 14, ci, n, sid, sizeof(sid), g2), 0);
	assert_memory_equal(g1, g2, 32);
	assert_int_equal(pake_generator(code, 13, ci, n, sid, sizeof(sid), g2), 0);
	assert_memory_not_equal(g1, g2, 32);
	sid[0] ^= 1;
	assert_int_equal(pake_generator(code, 14, ci, n, sid, sizeof(sid), g2), 0);
	assert_memory_not_equal(g1, g2, 32);
	sid[0] ^= 1;
	n = pake_ci(f2, f1, ci);
	assert_int_equal(pake_generator(code, 14, ci, n, sid, sizeof(sid), g2), 0);
	assert_memory_not_equal(g1, g2, 32);
	/* Fresh scalars: the same inputs give a different share each run. */
	struct pake a, b;
	assert_int_equal(pake_start(&a, 1, "1-acorn-acorn", ci, n, sid, 32, NULL, 0, NULL), 0);
	assert_int_equal(pake_start(&b, 1, "1-acorn-acorn", ci, n, sid, 32, NULL, 0, NULL), 0);
	assert_memory_not_equal(a.own, b.own, 32);
	pake_wipe(&a);
	pake_wipe(&b);
}

static void test_word_list(void **state)
{
	(void)state;
	for (unsigned i = 0; i < PAKE_CODE_WORDS; i++) {
		const char *w = pake_code_word(i);
		size_t n = strlen(w);

		assert_true(n >= 3 && n <= 8);
		for (size_t k = 0; k < n; k++)
			assert_true(islower((unsigned char)w[k]));
		if (i)
			assert_true(strcmp(pake_code_word(i - 1), w) < 0);
	}
}

static void test_code_parse(void **state)
{
	char c[PAKE_CODE_MAX], d[PAKE_CODE_MAX];

	(void)state;
	assert_int_equal(pake_code_parse("7-amber-falcon", c), 0);
	assert_string_equal(c, "7-amber-falcon");
	assert_int_equal(pake_code_parse("007-Amber-FALCON", c), 0);
	assert_string_equal(c, "7-amber-falcon");
	assert_int_equal(pake_code_parse("999-zipper-acorn", c), 0);
	assert_string_equal(c, "999-zipper-acorn");
	static const char *const bad[] = {
		"", "7", "7-amber", "7-amber-", "-amber-falcon", "1000-amber-falcon",
		"0007-amber-falcon", "7-amber-falcon-", "7-amber-falconx",
		"7-ambe-falcon", "7 amber falcon", "7-amber-falcon ", "x-amber-falcon",
		"7--falcon", "7-amber--falcon", "7-amber-fal\xc3\xa7on",
		"7-amberamberamberamber-falcon", "new"
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (pake_code_parse(bad[i], c) == 0) {
			print_error("'%s' parsed as '%s'\n", bad[i], c);
			fail();
		}
	}
	/* A new code parses back to itself. */
	for (int i = 0; i < 100; i++) {
		pake_code_new(c);
		assert_int_equal(pake_code_parse(c, d), 0);
		assert_string_equal(c, d);
	}
}

static void test_stream_parser(void **state)
{
	uint8_t msg[PAKE_STREAM_LEN];
	struct pake_rx rx;

	(void)state;
	memcpy(msg, PAKE_STREAM_HEADER, PAKE_HEADER_LEN);
	for (size_t i = PAKE_HEADER_LEN; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	/* Byte by byte: the share, then the MAC, then FIN. */
	memset(&rx, 0, sizeof(rx));
	for (size_t i = 0; i < sizeof(msg); i++) {
		assert_int_equal(pake_rx_feed(&rx, msg + i, 1, 0), PAKE_RX_MORE);
		assert_true((pake_rx_share(&rx) != NULL) ==
		            (i + 1 >= PAKE_HEADER_LEN + PAKE_SHARE_LEN));
		assert_true((pake_rx_mac(&rx) != NULL) == (i + 1 == sizeof(msg)));
	}
	assert_int_equal(pake_rx_feed(&rx, NULL, 0, 1), PAKE_RX_MORE);
	assert_memory_equal(pake_rx_mac(&rx), msg + PAKE_HEADER_LEN + 32, 64);
	/* Anything after FIN, or past the end. */
	assert_int_equal(pake_rx_feed(&rx, msg, 1, 0), PAKE_RX_BAD);
	memset(&rx, 0, sizeof(rx));
	assert_int_equal(pake_rx_feed(&rx, msg, sizeof(msg), 0), PAKE_RX_MORE);
	assert_int_equal(pake_rx_feed(&rx, msg, 1, 0), PAKE_RX_BAD);
	/* FIN before the end. */
	memset(&rx, 0, sizeof(rx));
	assert_int_equal(pake_rx_feed(&rx, msg, 50, 1), PAKE_RX_BAD);
	/* Another header: refused at the first wrong byte. */
	memset(&rx, 0, sizeof(rx));
	assert_int_equal(pake_rx_feed(&rx, (const uint8_t *)"punch/1 chat\n", 13, 0),
	                 PAKE_RX_BAD);
	memset(&rx, 0, sizeof(rx));
	assert_int_equal(pake_rx_feed(&rx, (const uint8_t *)"punch/1 pair X", 14, 0),
	                 PAKE_RX_BAD);
	/* The prefix test a side without a code uses. */
	assert_int_equal(pake_prefix_match(0, (const uint8_t *)"punch/1 pair ", 13), 1);
	assert_int_equal(pake_prefix_match(0, (const uint8_t *)"punch/1 chat\n", 13), 0);
	assert_int_equal(pake_prefix_match(8, (const uint8_t *)"pa", 2), 1);
	assert_int_equal(pake_prefix_match(8, (const uint8_t *)"ch", 2), 0);
	assert_int_equal(pake_prefix_match(13, (const uint8_t *)"anything", 8), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generator_vector),
		cmocka_unit_test(test_isk_vector),
		cmocka_unit_test(test_invalid_shares),
		cmocka_unit_test(test_reflection_refused),
		cmocka_unit_test(test_honest_parties_agree),
		cmocka_unit_test(test_wrong_code_fails),
		cmocka_unit_test(test_other_fingerprint_fails),
		cmocka_unit_test(test_generator_deterministic),
		cmocka_unit_test(test_word_list),
		cmocka_unit_test(test_code_parse),
		cmocka_unit_test(test_stream_parser),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
