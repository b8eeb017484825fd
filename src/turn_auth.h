/*
 * TURN's long-term credentials and nonces, for turn_server.c.  Pure: a
 * secret, a username and the time go in, a key comes out.
 */
#ifndef PUNCH_TURN_AUTH_H
#define PUNCH_TURN_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sodium.h>

#include "turn_server.h"

enum {
	TURN_KEY_LEN = 16,   /* MD5 */
	TURN_NONCE_LEN = 24, /* hex of 4 bytes of time and an 8-byte hash */
};

struct turn_auth {
	uint8_t secret[256];
	size_t secret_len;
	char realm[TURN_REALM_MAX + 1];
	uint8_t nonce_key[crypto_shorthash_KEYBYTES];
};

/* The long-term key for a REST username, or -1 when the username is not
 * "EXPIRY[:NAME]", has expired at wall_s, or is too long.  A minted
 * username ("rdv:...") is taken without an expiry: ask the rendezvous. */
int turn_auth_key(const struct turn_auth *a, const uint8_t *user,
                  size_t user_len, uint64_t wall_s, uint8_t key[TURN_KEY_LEN]);

/* Does the username start "rdv:" (minted by the rendezvous)? */
int turn_is_minted(const uint8_t *user, size_t len);

void turn_nonce_make(const struct turn_auth *a, const struct sockaddr *from,
                     uint64_t now_ms, char out[TURN_NONCE_LEN + 1]);
/* 0 if nonce is one of ours, for this IP, and not stale. */
int turn_nonce_check(const struct turn_auth *a, const struct sockaddr *from,
                     uint64_t now_ms, const uint8_t *nonce, size_t len);

#endif
