/*
 * What the shared registry (registry_redis.c) keeps of a registration, and
 * what one server tells another: pure encoding and decoding, no sockets.
 *
 * A registration's value is the REGISTER request as the client signed it,
 * behind where the server saw it:
 *
 *   "PR1" | family (4 or 6) | port (2, network order) | address (4 or 16)
 *   | the REGISTER message, FINGERPRINT included
 *
 * Whoever reads it back checks it as the first server did: the message
 * must decode, be a REGISTER, carry a signature that verifies under its
 * PUNCH-PUBKEY, and parse within every limit of punch_peer_parse().  The
 * key's fingerprint is computed from that key, never read from the
 * store; so a value written into Redis by anyone without the client's
 * key introduces nobody.
 *
 * A server tells another (on that server's pub/sub channel) to introduce
 * its client TARGET to a peer with: TARGET | '\n' | the peer's value.
 * Ids never hold a control character (punch_id_check()).
 */
#ifndef PUNCH_REGISTRY_VALUE_H
#define PUNCH_REGISTRY_VALUE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "punch_attr.h"

enum {
	REGVAL_HEAD_MAX = 3 + 1 + 2 + 16,
	REGVAL_MAX = REGVAL_HEAD_MAX + PUNCH_MSG_MAX,
	REGMSG_MAX = PUNCH_ID_MAX + 1 + REGVAL_MAX,
};

/* The value of a registration: 0 and its length in *len, or -1 if from
 * is neither IPv4 nor IPv6 or msg does not fit. */
int regval_encode(uint8_t *out, size_t cap, size_t *len,
                  const struct sockaddr *from, const uint8_t *msg,
                  size_t msg_len);

/* Check and read a value back into p, with p->key_fp the fingerprint of
 * the key that signed it and p->observed where its server saw it.
 * 0, or -1 with the reason in *why. */
int regval_decode(const uint8_t *v, size_t len, struct punch_peer *p,
                  const char **why);

/* A message for another server: 0 and its length, or -1 if too long. */
int regmsg_encode(uint8_t *out, size_t cap, size_t *len, const char *target,
                  const uint8_t *value, size_t value_len);
/* Split one: the target (NUL-terminated) and the value (within msg).
 * 0, or -1 with the reason; the value is not checked here. */
int regmsg_split(const uint8_t *msg, size_t len,
                 char target[PUNCH_ID_MAX + 1], const uint8_t **value,
                 size_t *value_len, const char **why);

/* A server's name on the shared registry: 16 lowercase hex digits. */
enum { REGISTRY_SERVER_ID_LEN = 16 };
int regval_server_id_ok(const char *s, size_t len);

#endif
