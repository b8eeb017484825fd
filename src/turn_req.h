/*
 * TURN's attributes of one request (RFC 8656 18), read from a decoded
 * stun_msg's attribute list: stun.c leaves them unknown so that other
 * services (Binding) still answer them with 420.  Pure.
 */
#ifndef PUNCH_TURN_REQ_H
#define PUNCH_TURN_REQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "stun.h"
#include "turn_server.h"

enum {
	TURN_REQUESTED_UDP = 17,  /* RFC 8656 18.8: IANA protocol number */
	TURN_FAMILY_IPV4 = 0x01,  /* RFC 8656 18.6 */
	TURN_FAMILY_IPV6 = 0x02,
};

/* m is decoded by the caller; the rest by turn_req_parse(). */
struct turn_req {
	struct stun_msg m;
	uint32_t lifetime;
	int has_lifetime, has_transport, has_family, has_channel, has_data;
	int has_even_port, has_reservation, has_dont_fragment;
	uint8_t transport, family;
	uint16_t channel;
	size_t n_peers;
	struct sockaddr_storage peers[TURN_PERMS_MAX];
	const uint8_t *data;
	size_t data_len;
	uint16_t unknown[STUN_MAX_UNKNOWN];
	size_t n_unknown;
};

/* Fill r from r->m, up to the integrity attributes; -1 when a TURN
 * attribute is malformed (400).  r->unknown lists the comprehension-
 * required attributes neither stun.c nor TURN knows (420). */
int turn_req_parse(struct turn_req *r);

/* May the relay send to this peer?  Never to unspecified, multicast or
 * port 0; to loopback, link-local and private addresses only when
 * allow_private. */
int turn_peer_allowed(const struct sockaddr *sa, int allow_private);

#endif
