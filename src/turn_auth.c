/*
 * TURN long-term credentials (RFC 8489 9.2) from coturn's REST secret,
 * and the server's stateless nonces.
 */
#include "turn_auth.h"

#include <stdio.h>
#include <string.h>
#include <gnutls/crypto.h>
#include <netinet/in.h>
#include <sodium.h>

int turn_rest_password(const uint8_t *secret, size_t secret_len,
                       const char *username, char *out, size_t cap)
{
	uint8_t mac[20];

	if (cap < sodium_base64_ENCODED_LEN(sizeof(mac),
	                                    sodium_base64_VARIANT_ORIGINAL))
		return -1;
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA1, secret, secret_len, username,
	                     strlen(username), mac) < 0)
		return -1;
	sodium_bin2base64(out, cap, mac, sizeof(mac),
	                  sodium_base64_VARIANT_ORIGINAL);
	return 0;
}

int turn_is_minted(const uint8_t *user, size_t len)
{
	return len > 4 && !memcmp(user, "rdv:", 4);
}

int turn_mint(const uint8_t *secret, size_t secret_len, const char *id,
              uint64_t session, char *user, size_t user_cap, char *pass,
              size_t pass_cap)
{
	int n = snprintf(user, user_cap, "rdv:%016llx:%s",
	                 (unsigned long long)session, id);

	if (n < 0 || (size_t)n >= user_cap || n > TURN_USERNAME_MAX)
		return -1;
	return turn_rest_password(secret, secret_len, user, pass, pass_cap);
}

int turn_mint_parse(const char *user, char *id, size_t id_cap,
                    uint64_t *session)
{
	uint64_t v = 0;
	size_t n;

	if (strncmp(user, "rdv:", 4))
		return -1;
	user += 4;
	for (int i = 0; i < 16; i++) {
		char c = user[i];
		int d = c >= '0' && c <= '9' ? c - '0' :
		        c >= 'a' && c <= 'f' ? c - 'a' + 10 :
		                               -1;

		if (d < 0)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	if (user[16] != ':' || !(n = strlen(user + 17)) || n >= id_cap)
		return -1;
	memcpy(id, user + 17, n + 1);
	*session = v;
	return 0;
}

/* "EXPIRY" or "EXPIRY:NAME": the leading decimal Unix time. */
static int rest_expiry(const uint8_t *u, size_t len, uint64_t *expiry)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len && u[i] != ':'; i++) {
		if (u[i] < '0' || u[i] > '9' || i >= 19)
			return -1;
		v = v * 10 + (uint64_t)(u[i] - '0');
	}
	if (i == 0)
		return -1;
	*expiry = v;
	return 0;
}

int turn_auth_key(const struct turn_auth *a, const uint8_t *user,
                  size_t user_len, uint64_t wall_s, uint8_t key[TURN_KEY_LEN])
{
	char name[TURN_USERNAME_MAX + 1], pass[64];
	char buf[TURN_USERNAME_MAX + TURN_REALM_MAX + sizeof(pass) + 3];
	uint64_t expiry;
	int n, rc = -1;

	if (!a->secret_len || user_len > TURN_USERNAME_MAX)
		return -1;
	/* A minted username has no expiry of its own: the caller has asked
	 * the rendezvous that its registration is live. */
	if (!turn_is_minted(user, user_len) &&
	    (rest_expiry(user, user_len, &expiry) || expiry < wall_s))
		return -1;
	memcpy(name, user, user_len);
	name[user_len] = '\0';
	if (memchr(name, '\0', user_len))
		return -1;
	if (turn_rest_password(a->secret, a->secret_len, name, pass,
	                       sizeof(pass)))
		goto out;
	/* RFC 8489 9.2.2: key = MD5(username ":" OpaqueString(realm) ":"
	 * OpaqueString(password)); the realm is ours and ASCII. */
	n = snprintf(buf, sizeof(buf), "%s:%s:%s", name, a->realm, pass);
	if (n < 0 || (size_t)n >= sizeof(buf))
		goto out;
	if (gnutls_hash_fast(GNUTLS_DIG_MD5, buf, (size_t)n, key) < 0)
		goto out;
	rc = 0;
out:
	sodium_memzero(pass, sizeof(pass));
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

/* The IP address bytes a nonce is bound to: not the port, which a NAT may
 * change between a client's requests. */
static size_t ip_bytes(const struct sockaddr *sa, const uint8_t **p)
{
	if (sa->sa_family == AF_INET) {
		*p = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		*p = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		return 16;
	}
	*p = NULL;
	return 0;
}

static void nonce_mac(const struct turn_auth *a, uint32_t t,
                      const struct sockaddr *from, uint8_t mac[8])
{
	uint8_t in[4 + 16];
	const uint8_t *ip;
	size_t n = ip_bytes(from, &ip);

	in[0] = (uint8_t)(t >> 24);
	in[1] = (uint8_t)(t >> 16);
	in[2] = (uint8_t)(t >> 8);
	in[3] = (uint8_t)t;
	if (n)
		memcpy(in + 4, ip, n);
	crypto_shorthash(mac, in, 4 + n, a->nonce_key);
}

/* NONCE: hex of the time it was made (s on the monotonic clock) and a
 * keyed hash of that time and the client's IP. */
void turn_nonce_make(const struct turn_auth *a, const struct sockaddr *from,
                     uint64_t now_ms, char out[TURN_NONCE_LEN + 1])
{
	uint32_t t = (uint32_t)(now_ms / 1000);
	uint8_t raw[12];

	raw[0] = (uint8_t)(t >> 24);
	raw[1] = (uint8_t)(t >> 16);
	raw[2] = (uint8_t)(t >> 8);
	raw[3] = (uint8_t)t;
	nonce_mac(a, t, from, raw + 4);
	sodium_bin2hex(out, TURN_NONCE_LEN + 1, raw, sizeof(raw));
}

int turn_nonce_check(const struct turn_auth *a, const struct sockaddr *from,
                     uint64_t now_ms, const uint8_t *nonce, size_t len)
{
	uint8_t raw[12], mac[8];
	size_t got;
	uint32_t t;

	if (len != TURN_NONCE_LEN ||
	    sodium_hex2bin(raw, sizeof(raw), (const char *)nonce, len, NULL,
	                   &got, NULL) ||
	    got != sizeof(raw))
		return -1;
	t = (uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 |
	    (uint32_t)raw[2] << 8 | raw[3];
	nonce_mac(a, t, from, mac);
	if (sodium_memcmp(mac, raw + 4, sizeof(mac)))
		return -1;
	if (t > now_ms / 1000 || now_ms / 1000 - t > TURN_NONCE_S)
		return -1;
	return 0;
}
