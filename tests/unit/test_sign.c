/*
 * Unit tests for src/sign.c: the fingerprint of a raw key, signatures put
 * and checked on STUN messages, and every way a signature can be wrong.
 * The identity key path (GnuTLS to libsodium) is checked against the
 * certificate's fingerprint.
 */
#include "unit.h"

#include <gnutls/crypto.h>
#include <zlib.h>

#include "identity.h"
#include "punch_attr.h"
#include "sign.h"

static const uint8_t txid[STUN_TXID_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };

static struct sign_key seeded(uint8_t fill)
{
	struct sign_key k;
	uint8_t seed[SIGN_SEED_LEN];

	memset(seed, fill, sizeof(seed));
	assert_int_equal(sign_key_from_seed(&k, seed), 0);
	return k;
}

/* A signed REGISTER-like message: id, nonce, key, signature, FINGERPRINT. */
static size_t build(uint8_t *buf, size_t cap, const struct sign_key *k,
                    uint16_t key_attr)
{
	struct stun_writer w;
	int n;

	stun_writer_init(&w, buf, cap, PUNCH_REGISTER, STUN_REQUEST, txid);
	stun_put_bytes(&w, PUNCH_ATTR_ID, "alice", 5);
	stun_put_bytes(&w, STUN_ATTR_NONCE, "0000000aabbccddeeff00112233445566", 32);
	sign_put(&w, key_attr, k);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	assert_true(n > 0);
	return (size_t)n;
}

static void refinger(uint8_t *buf, size_t len)
{
	uint32_t crc = (uint32_t)crc32(0, buf, (uInt)(len - 8)) ^
	               STUN_FINGERPRINT_XOR;

	raw_put32(buf + len - 4, crc);
}

static int verify(const uint8_t *buf, size_t len, uint16_t key_attr,
                  uint8_t pk[SIGN_PK_LEN])
{
	struct stun_msg m;

	decode_ok(&m, buf, len);
	return sign_verify(&m, buf, len, key_attr, pk);
}

static void test_round_trip(void **state)
{
	struct sign_key k = seeded(0x42);
	uint8_t buf[512], pk[SIGN_PK_LEN];
	size_t len = build(buf, sizeof(buf), &k, PUNCH_ATTR_PUBKEY);

	(void)state;
	assert_int_equal(verify(buf, len, PUNCH_ATTR_PUBKEY, pk), SIGN_OK);
	assert_memory_equal(pk, k.pk, SIGN_PK_LEN);
	/* the signature is the last attribute before FINGERPRINT, 64 bytes */
	assert_int_equal(buf[len - 8 - 68] << 8 | buf[len - 8 - 67],
	                 PUNCH_ATTR_SIGNATURE);
	/* deterministic (RFC 8032): the same key and bytes sign alike */
	{
		uint8_t again[512];

		assert_size(build(again, sizeof(again), &k, PUNCH_ATTR_PUBKEY), len);
		assert_memory_equal(again, buf, len);
	}
	assert_int_equal(sign_self_test(&k), 0);
}

/* Flip each byte before the signature in turn: every one is covered. */
static void test_every_byte_covered(void **state)
{
	struct sign_key k = seeded(0x42);
	uint8_t buf[512], pk[SIGN_PK_LEN];
	size_t len = build(buf, sizeof(buf), &k, PUNCH_ATTR_PUBKEY);
	size_t sig_off = len - 8 - 68;

	(void)state;
	for (size_t i = 0; i < sig_off + 4 + SIGN_SIG_LEN; i++) {
		struct stun_msg m;

		if (i >= 2 && i < 4)
			continue; /* the length field: the decoder refuses it */
		if (i < 2 || (i >= sig_off && i < sig_off + 4))
			continue; /* the type and the attribute header: decode fails */
		buf[i] ^= 0x01;
		refinger(buf, len);
		if (stun_decode(&m, buf, len) == STUN_OK)
			assert_int_not_equal(sign_verify(&m, buf, len,
			                                 PUNCH_ATTR_PUBKEY, pk),
			                     SIGN_OK);
		buf[i] ^= 0x01;
	}
	refinger(buf, len);
	assert_int_equal(verify(buf, len, PUNCH_ATTR_PUBKEY, pk), SIGN_OK);
}

static void test_wrong_shapes(void **state)
{
	struct sign_key k = seeded(0x42), other = seeded(0x43);
	uint8_t buf[512], pk[SIGN_PK_LEN];
	struct stun_writer w;
	size_t len;
	int n;

	(void)state;
	/* no signature at all */
	stun_writer_init(&w, buf, sizeof(buf), PUNCH_REGISTER, STUN_REQUEST, txid);
	stun_put_bytes(&w, PUNCH_ATTR_ID, "alice", 5);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	assert_int_equal(verify(buf, (size_t)n, PUNCH_ATTR_PUBKEY, pk),
	                 SIGN_ERR_MISSING);
	/* an attribute after the signature (not covered) */
	stun_writer_init(&w, buf, sizeof(buf), PUNCH_REGISTER, STUN_REQUEST, txid);
	stun_put_bytes(&w, PUNCH_ATTR_ID, "alice", 5);
	sign_put(&w, PUNCH_ATTR_PUBKEY, &k);
	stun_put_bytes(&w, PUNCH_ATTR_PEER_ID, "bob", 3);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	assert_int_equal(verify(buf, (size_t)n, PUNCH_ATTR_PUBKEY, pk),
	                 SIGN_ERR_PLACE);
	/* the key asked for is not the one that signed (server vs client) */
	len = build(buf, sizeof(buf), &k, PUNCH_ATTR_PUBKEY);
	assert_int_equal(verify(buf, len, PUNCH_ATTR_SERVER_KEY, pk),
	                 SIGN_ERR_MISSING);
	/* another key swapped in: the signature no longer verifies */
	memcpy(buf + len - 8 - 68 - 32, other.pk, SIGN_PK_LEN);
	refinger(buf, len);
	assert_int_equal(verify(buf, len, PUNCH_ATTR_PUBKEY, pk), SIGN_ERR_BAD);
	/* without FINGERPRINT the signature still stands */
	stun_writer_init(&w, buf, sizeof(buf), PUNCH_REGISTER, STUN_REQUEST, txid);
	stun_put_bytes(&w, PUNCH_ATTR_ID, "alice", 5);
	sign_put(&w, PUNCH_ATTR_SERVER_KEY, &k);
	n = stun_writer_finish(&w);
	assert_int_equal(verify(buf, (size_t)n, PUNCH_ATTR_SERVER_KEY, pk),
	                 SIGN_OK);
	/* a short signature */
	stun_writer_init(&w, buf, sizeof(buf), PUNCH_REGISTER, STUN_REQUEST, txid);
	stun_put_bytes(&w, PUNCH_ATTR_PUBKEY, k.pk, SIGN_PK_LEN);
	stun_put_bytes(&w, PUNCH_ATTR_SIGNATURE, k.pk, SIGN_PK_LEN);
	n = stun_writer_finish(&w);
	assert_int_equal(verify(buf, (size_t)n, PUNCH_ATTR_PUBKEY, pk),
	                 SIGN_ERR_FORMAT);
	/* no room: the writer reports it */
	stun_writer_init(&w, buf, 100, PUNCH_REGISTER, STUN_REQUEST, txid);
	sign_put(&w, PUNCH_ATTR_PUBKEY, &k);
	assert_true(stun_writer_finish(&w) < 0);
}

/* The fingerprint of a raw key is the one identity.c takes from the
 * certificate, and the identity key signs as libsodium's key would. */
static void test_fp_matches_identity(void **state)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	uint8_t der[512], fp_cert[IDENTITY_FP_LEN], fp_raw[SIGN_FP_LEN];
	size_t der_len = sizeof(der);
	gnutls_datum_t d;
	struct sign_key k;

	(void)state;
	assert_true(gnutls_x509_privkey_init(&key) >= 0);
	assert_true(gnutls_x509_privkey_generate(key, GNUTLS_PK_EDDSA_ED25519, 0, 0) >= 0);
	assert_int_equal(sign_key_from_x509(&k, key), 0);
	assert_true(gnutls_x509_crt_init(&crt) >= 0);
	assert_true(gnutls_x509_crt_set_key(crt, key) >= 0);
	assert_true(gnutls_x509_crt_set_version(crt, 3) >= 0);
	assert_true(gnutls_x509_crt_set_serial(crt, "\x01", 1) >= 0);
	assert_true(gnutls_x509_crt_set_activation_time(crt, 0) >= 0);
	assert_true(gnutls_x509_crt_set_expiration_time(crt, 86400) >= 0);
	assert_true(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_UNKNOWN, 0) >= 0);
	assert_true(gnutls_x509_crt_export(crt, GNUTLS_X509_FMT_DER, der, &der_len) >= 0);
	d.data = der;
	d.size = (unsigned)der_len;
	assert_int_equal(identity_fp_of_cert(&d, fp_cert), 0);
	sign_fp(k.pk, fp_raw);
	assert_memory_equal(fp_raw, fp_cert, SIGN_FP_LEN);
	assert_int_equal(sign_self_test(&k), 0);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	sign_key_wipe(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_every_byte_covered),
		cmocka_unit_test(test_wrong_shapes),
		cmocka_unit_test(test_fp_matches_identity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
