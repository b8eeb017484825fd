/*
 * TURN request attributes, and which peers a relay may reach.
 */
#include "turn_req.h"

#include <string.h>
#include <netinet/in.h>

#include "addr.h"

static int type_is_turn(uint16_t type)
{
	switch (type) {
	case STUN_ATTR_CHANNEL_NUMBER:
	case STUN_ATTR_LIFETIME:
	case STUN_ATTR_XOR_PEER_ADDRESS:
	case STUN_ATTR_DATA:
	case STUN_ATTR_XOR_RELAYED_ADDRESS:
	case STUN_ATTR_REQUESTED_ADDRESS_FAMILY:
	case STUN_ATTR_EVEN_PORT:
	case STUN_ATTR_REQUESTED_TRANSPORT:
	case STUN_ATTR_DONT_FRAGMENT:
	case STUN_ATTR_RESERVATION_TOKEN:
		return 1;
	default:
		return 0;
	}
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* One TURN attribute; -1 when its value is malformed (400). */
static int req_attr(struct turn_req *r, const struct stun_attr *at)
{
	switch (at->type) {
	case STUN_ATTR_CHANNEL_NUMBER:   /* RFC 8656 18.1 */
		if (at->len != 4)
			return -1;
		r->channel = (uint16_t)(at->value[0] << 8 | at->value[1]);
		r->has_channel = 1;
		return 0;
	case STUN_ATTR_LIFETIME:         /* 18.2 */
		if (at->len != 4)
			return -1;
		r->lifetime = get32(at->value);
		r->has_lifetime = 1;
		return 0;
	case STUN_ATTR_XOR_PEER_ADDRESS: /* 18.3: may repeat */
		if (r->n_peers == TURN_PERMS_MAX)
			return -1;
		if (stun_addr_decode(&r->peers[r->n_peers], at->value, at->len,
		                     r->m.txid))
			return -1;
		r->n_peers++;
		return 0;
	case STUN_ATTR_DATA:             /* 18.4 */
		r->data = at->value;
		r->data_len = at->len;
		r->has_data = 1;
		return 0;
	case STUN_ATTR_REQUESTED_ADDRESS_FAMILY: /* 18.6 */
		if (at->len != 4)
			return -1;
		r->family = at->value[0];
		r->has_family = 1;
		return 0;
	case STUN_ATTR_EVEN_PORT:        /* 18.7 */
		if (at->len != 1)
			return -1;
		r->has_even_port = 1;
		return 0;
	case STUN_ATTR_REQUESTED_TRANSPORT: /* 18.8 */
		if (at->len != 4)
			return -1;
		r->transport = at->value[0];
		r->has_transport = 1;
		return 0;
	case STUN_ATTR_DONT_FRAGMENT:    /* 18.9 */
		r->has_dont_fragment = 1;
		return at->len ? -1 : 0;
	case STUN_ATTR_RESERVATION_TOKEN: /* 18.10 */
		r->has_reservation = 1;
		return at->len == 8 ? 0 : -1;
	default:
		return 0;
	}
}

/* Read TURN's attributes, in order, up to the integrity attributes (RFC
 * 8489 14.5: what follows them does not count); -1 on a malformed one. */
int turn_req_parse(struct turn_req *r)
{
	const struct stun_msg *m = &r->m;

	r->has_lifetime = r->has_transport = r->has_family = 0;
	r->has_channel = r->has_data = r->has_even_port = 0;
	r->has_reservation = r->has_dont_fragment = 0;
	r->n_peers = r->n_unknown = 0;
	for (size_t i = 0; i < m->attrs_count; i++) {
		uint16_t type = m->attrs[i].type;

		if (type == STUN_ATTR_MESSAGE_INTEGRITY ||
		    type == STUN_ATTR_MESSAGE_INTEGRITY_SHA256 ||
		    type == STUN_ATTR_FINGERPRINT)
			break;
		if (req_attr(r, &m->attrs[i]))
			return -1;
	}
	/* stun.c's unknown list, less the attributes known here */
	for (size_t i = 0; i < m->unknown_required_count; i++)
		if (!type_is_turn(m->unknown_required[i]))
			r->unknown[r->n_unknown++] = m->unknown_required[i];
	return 0;
}

/* Addresses a relay must not reach unless the operator says so: this
 * host, private networks (RFC 1918, RFC 6598, RFC 4193), and what no peer
 * can be (unspecified, link-local, multicast). */
int turn_peer_allowed(const struct sockaddr *sa, int allow_private)
{
	enum addr_class c = addr_classify(sa);

	if (c == ADDR_CLASS_UNSPECIFIED || c == ADDR_CLASS_MULTICAST ||
	    c == ADDR_CLASS_OTHER || addr_port(sa) == 0)
		return 0;
	if (allow_private)
		return 1;
	return c == ADDR_CLASS_ROUTABLE && !addr_is_private(sa);
}
