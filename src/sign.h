/*
 * Ed25519 signatures on STUN messages: how a client proves the key behind
 * a REGISTER or RELEASE, and how the server signs what it says
 * (docs/protocol.md, "Signatures").
 *
 * A signed message carries a key attribute (the raw 32-byte Ed25519 public
 * key) and PUNCH-SIGNATURE (64 bytes), the last attribute before
 * FINGERPRINT.  The signature is computed as MESSAGE-INTEGRITY is
 * (RFC 8489 14.5): over the message up to the signature attribute, with
 * the header's length field rewritten to end just after it, and prefixed
 * with a context string so that the identity key's signatures here can
 * never be taken for its signatures anywhere else (TLS).
 *
 * Pure: no sockets, no files.  libsodium does the arithmetic.
 */
#ifndef PUNCH_SIGN_H
#define PUNCH_SIGN_H

#include <stddef.h>
#include <stdint.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "stun.h"

enum {
	SIGN_PK_LEN = 32,
	SIGN_SK_LEN = 64,   /* libsodium's form: seed || public key */
	SIGN_SEED_LEN = 32,
	SIGN_SIG_LEN = 64,
	SIGN_FP_LEN = 32,   /* SHA-256 of the SubjectPublicKeyInfo */
	SIGN_MSG_MAX = 2048, /* longer messages are never signed or checked */
};

#define SIGN_CONTEXT "punch-rendezvous-v1"

struct sign_key {
	uint8_t pk[SIGN_PK_LEN];
	uint8_t sk[SIGN_SK_LEN];
};

enum sign_err {
	SIGN_OK = 0,
	SIGN_ERR_MISSING = -1,  /* no signature, or no key */
	SIGN_ERR_PLACE = -2,    /* not last before FINGERPRINT, or the key after it */
	SIGN_ERR_FORMAT = -3,   /* wrong lengths, or a bad public key */
	SIGN_ERR_BAD = -4,      /* the signature does not verify */
};

/* A key from a 32-byte seed; a fresh one with seed NULL.  Returns 0/-1. */
int sign_key_from_seed(struct sign_key *k, const uint8_t *seed);
/* The key of a GnuTLS Ed25519 private key (the identity key).  0 or -1. */
int sign_key_from_x509(struct sign_key *k, gnutls_x509_privkey_t key);
void sign_key_wipe(struct sign_key *k);

/* SHA-256 of the Ed25519 SubjectPublicKeyInfo (RFC 8410), the fingerprint
 * identity.c computes from a certificate. */
void sign_fp(const uint8_t pk[SIGN_PK_LEN], uint8_t fp[SIGN_FP_LEN]);

/* Append key_attr (k's public key) and PUNCH-SIGNATURE.  Call it last,
 * before stun_put_fingerprint(). */
void sign_put(struct stun_writer *w, uint16_t key_attr,
              const struct sign_key *k);

/* Check the signature of decoded message m (buf, len as received) under
 * the key in key_attr, which is copied to pk.  Returns an enum sign_err. */
int sign_verify(const struct stun_msg *m, const uint8_t *buf, size_t len,
                uint16_t key_attr, uint8_t pk[SIGN_PK_LEN]);
const char *sign_err_str(int err);
/* Sign a small message and check it: 0 if the key works.  (Run once at
 * start, it also brings the code in before any traffic.) */
int sign_self_test(const struct sign_key *k);

#endif
