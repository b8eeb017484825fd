/*
 * Classic STUN (RFC 3489) Binding requests: the wire format before RFC 5389
 * added the magic cookie.  Bytes 4..19 of the header are one 128-bit
 * transaction id, so the cookie check of stun_decode() refuses them.
 *
 *	 0                   1                   2                   3
 *	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *	|      STUN Message Type        |         Message Length        |
 *	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *	|                     Transaction ID (128 bits)                 |
 *	|                                                               |
 *	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Pure, like stun.c: only the Binding service reads it, and only after
 * stun_decode() said STUN_ERR_COOKIE.  Replies are written with the ordinary
 * stun_writer, started by stun3489_writer_init() so that the header carries
 * the whole 128-bit id instead of the cookie.
 */
#ifndef PUNCH_STUN3489_H
#define PUNCH_STUN3489_H

#include <stddef.h>
#include <stdint.h>

#include "stun.h"

enum {
	STUN3489_TXID_LEN = 16,
	/* RFC 3489 11.2 attributes a request may carry; all other
	 * comprehension-required types get a 420. */
	STUN3489_ATTR_RESPONSE_ADDRESS = 0x0002,
	STUN3489_ATTR_SOURCE_ADDRESS = 0x0004,
	STUN3489_ATTR_CHANGED_ADDRESS = 0x0005,
	STUN3489_ATTR_PASSWORD = 0x0007,
	STUN3489_ATTR_REFLECTED_FROM = 0x000B,
};

/* Bits of stun3489_msg.present */
enum {
	STUN3489_HAS_CHANGE_REQUEST = 1u << 0,
	STUN3489_HAS_RESPONSE_ADDRESS = 1u << 1,
};

struct stun3489_msg {
	uint16_t method;
	uint8_t cls; /* enum stun_class */
	uint8_t txid[STUN3489_TXID_LEN];
	uint32_t present;        /* STUN3489_HAS_* */
	uint32_t change_request; /* STUN_CHANGE_* */
	size_t attrs_count;
	size_t unknown_required_count;
	uint16_t unknown_required[STUN_MAX_UNKNOWN];
};

/* Decode buf as an RFC 3489 message.  Returns STUN_OK or a negative enum
 * stun_err: the header checks of RFC 8489 except the cookie, every attribute
 * inside the message, CHANGE-REQUEST exactly 4 bytes. */
int stun3489_decode(struct stun3489_msg *m, const uint8_t *buf, size_t len);

/* Start a reply that echoes the 128-bit transaction id (no cookie).  Use
 * only plain attributes afterwards: no XOR addresses, no FINGERPRINT. */
void stun3489_writer_init(struct stun_writer *w, uint8_t *buf, size_t cap,
                          uint16_t method, uint8_t cls,
                          const uint8_t txid[STUN3489_TXID_LEN]);

#endif
