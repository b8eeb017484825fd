#include "sign.h"

#include <gnutls/crypto.h>
#include <sodium.h>
#include <string.h>

#include "punch_attr.h"

/* RFC 8410 4: the DER of an Ed25519 SubjectPublicKeyInfo, before the key. */
static const uint8_t spki_prefix[12] = {
	0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00
};

int sign_key_from_seed(struct sign_key *k, const uint8_t *seed)
{
	if (sodium_init() < 0)
		return -1;
	if (seed)
		return crypto_sign_seed_keypair(k->pk, k->sk, seed) ? -1 : 0;
	return crypto_sign_keypair(k->pk, k->sk) ? -1 : 0;
}

int sign_key_from_x509(struct sign_key *k, gnutls_x509_privkey_t key)
{
	gnutls_datum_t x = { NULL, 0 }, y = { NULL, 0 }, priv = { NULL, 0 };
	gnutls_ecc_curve_t curve;
	int rc = -1;

	/* For EdDSA, x is the public key and k the 32-byte seed (RFC 8032
	 * 5.1.5), both in their native form. */
	if (gnutls_x509_privkey_export_ecc_raw(key, &curve, &x, &y, &priv) < 0)
		return -1;
	if (curve != GNUTLS_ECC_CURVE_ED25519 || priv.size != SIGN_SEED_LEN ||
	    x.size != SIGN_PK_LEN)
		goto out;
	if (sign_key_from_seed(k, priv.data))
		goto out;
	/* The seed must give back the key the certificate carries. */
	rc = sodium_memcmp(k->pk, x.data, SIGN_PK_LEN) ? -1 : 0;
out:
	if (priv.data) {
		gnutls_memset(priv.data, 0, priv.size);
		gnutls_free(priv.data);
	}
	gnutls_free(x.data);
	gnutls_free(y.data);
	if (rc)
		sign_key_wipe(k);
	return rc;
}

void sign_key_wipe(struct sign_key *k)
{
	sodium_memzero(k, sizeof(*k));
}

void sign_fp(const uint8_t pk[SIGN_PK_LEN], uint8_t fp[SIGN_FP_LEN])
{
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, spki_prefix, sizeof(spki_prefix));
	crypto_hash_sha256_update(&st, pk, SIGN_PK_LEN);
	crypto_hash_sha256_final(&st, fp);
}

/* The signed bytes: the context, then buf[0..off) with the length field
 * rewritten to end after a signature attribute at off (RFC 8489 14.5's
 * rule for MESSAGE-INTEGRITY).  Returns the length, or 0 if too long. */
static size_t signed_input(uint8_t *out, const uint8_t *buf, size_t off)
{
	size_t ctx = sizeof(SIGN_CONTEXT) - 1;
	size_t body = off + 4 + SIGN_SIG_LEN - STUN_HEADER_LEN;

	if (off < STUN_HEADER_LEN || off > SIGN_MSG_MAX)
		return 0;
	memcpy(out, SIGN_CONTEXT, ctx);
	memcpy(out + ctx, buf, off);
	out[ctx + 2] = (uint8_t)(body >> 8);
	out[ctx + 3] = (uint8_t)body;
	return ctx + off;
}

void sign_put(struct stun_writer *w, uint16_t key_attr,
              const struct sign_key *k)
{
	uint8_t in[sizeof(SIGN_CONTEXT) + SIGN_MSG_MAX], sig[SIGN_SIG_LEN];
	size_t off, n;

	stun_put_bytes(w, key_attr, k->pk, SIGN_PK_LEN);
	if (w->err)
		return;
	off = w->len;
	n = signed_input(in, w->buf, off);
	if (!n || crypto_sign_detached(sig, NULL, in, n, k->sk)) {
		w->err = STUN_ERR_ARG;
		return;
	}
	stun_put_bytes(w, PUNCH_ATTR_SIGNATURE, sig, sizeof(sig));
}

/* Where the signature is: the last attribute, or the last before
 * FINGERPRINT; and the key attribute somewhere before it. */
static int sign_locate(const struct stun_msg *m, uint16_t key_attr,
                       size_t *sig_i, size_t *key_i)
{
	size_t n = m->attrs_count, i;

	if (n && m->attrs[n - 1].type == STUN_ATTR_FINGERPRINT)
		n--;
	for (i = 0; i < n; i++)
		if (m->attrs[i].type == PUNCH_ATTR_SIGNATURE)
			break;
	if (i == n)
		return SIGN_ERR_MISSING;
	if (i != n - 1)
		return SIGN_ERR_PLACE;
	*sig_i = i;
	for (i = 0; i < *sig_i; i++)
		if (m->attrs[i].type == key_attr)
			break;
	if (i == *sig_i) {
		for (i = 0; i < m->attrs_count; i++)
			if (m->attrs[i].type == key_attr)
				return SIGN_ERR_PLACE;
		return SIGN_ERR_MISSING;
	}
	*key_i = i;
	return SIGN_OK;
}

int sign_verify(const struct stun_msg *m, const uint8_t *buf, size_t len,
                uint16_t key_attr, uint8_t pk[SIGN_PK_LEN])
{
	uint8_t in[sizeof(SIGN_CONTEXT) + SIGN_MSG_MAX];
	const struct stun_attr *sig, *key;
	size_t si = 0, ki = 0, off, n;
	int rc = sign_locate(m, key_attr, &si, &ki);

	if (rc)
		return rc;
	sig = &m->attrs[si];
	key = &m->attrs[ki];
	if (sig->len != SIGN_SIG_LEN || key->len != SIGN_PK_LEN)
		return SIGN_ERR_FORMAT;
	/* attrs point into buf: the attribute header is 4 bytes before */
	if (sig->value < buf + STUN_HEADER_LEN + 4 || sig->value > buf + len)
		return SIGN_ERR_FORMAT;
	off = (size_t)(sig->value - buf) - 4;
	if (!(n = signed_input(in, buf, off)))
		return SIGN_ERR_FORMAT;
	if (sodium_init() < 0)
		return SIGN_ERR_BAD;
	memcpy(pk, key->value, SIGN_PK_LEN);
	if (crypto_sign_verify_detached(sig->value, in, n, pk))
		return SIGN_ERR_BAD;
	return SIGN_OK;
}

const char *sign_err_str(int err)
{
	switch (err) {
	case SIGN_OK: return "ok";
	case SIGN_ERR_MISSING: return "not signed";
	case SIGN_ERR_PLACE: return "signature not last before FINGERPRINT";
	case SIGN_ERR_FORMAT: return "malformed key or signature";
	case SIGN_ERR_BAD: return "bad signature";
	default: return "?";
	}
}

int sign_self_test(const struct sign_key *k)
{
	uint8_t buf[256], txid[STUN_TXID_LEN] = { 0 }, pk[SIGN_PK_LEN];
	struct stun_writer w;
	struct stun_msg m;
	int n;

	stun_writer_init(&w, buf, sizeof(buf), PUNCH_REGISTER, STUN_SUCCESS,
	                 txid);
	sign_put(&w, PUNCH_ATTR_SERVER_KEY, k);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	if (n < 0 || stun_decode(&m, buf, (size_t)n))
		return -1;
	return sign_verify(&m, buf, (size_t)n, PUNCH_ATTR_SERVER_KEY, pk) ||
	                       memcmp(pk, k->pk, SIGN_PK_LEN) ?
	               -1 :
	               0;
}
