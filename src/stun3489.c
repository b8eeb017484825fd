#include "stun3489.h"

#include <string.h>

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* RFC 3489 11.2: the types a Binding request may carry.  MAPPED-ADDRESS and
 * the other response attributes are "understood" too: a server ignores
 * them in a request rather than refusing it. */
static int known_type(uint16_t type)
{
	return type >= STUN_ATTR_MAPPED_ADDRESS &&
	       type <= STUN3489_ATTR_REFLECTED_FROM;
}

static int decode_attr(struct stun3489_msg *m, uint16_t type,
                       const uint8_t *v, uint16_t len)
{
	if (type == STUN_ATTR_CHANGE_REQUEST) {
		if (len != 4)
			return STUN_ERR_ATTR_VALUE;
		if (!(m->present & STUN3489_HAS_CHANGE_REQUEST))
			m->change_request = get32(v) &
			                    (STUN_CHANGE_IP | STUN_CHANGE_PORT);
		m->present |= STUN3489_HAS_CHANGE_REQUEST;
	} else if (type == STUN3489_ATTR_RESPONSE_ADDRESS) {
		m->present |= STUN3489_HAS_RESPONSE_ADDRESS;
	} else if (type < 0x8000 && !known_type(type) &&
	           m->unknown_required_count < STUN_MAX_UNKNOWN) {
		m->unknown_required[m->unknown_required_count++] = type;
	}
	return STUN_OK;
}

int stun3489_decode(struct stun3489_msg *m, const uint8_t *buf, size_t len)
{
	size_t off = STUN_HEADER_LEN;
	uint16_t type;

	memset(m, 0, sizeof(*m));
	if (len < STUN_HEADER_LEN)
		return STUN_ERR_SHORT;
	if (buf[0] & 0xC0)
		return STUN_ERR_NOT_STUN;
	/* RFC 3489 11.1: the length excludes the 20-byte header; attributes
	 * are 4-byte aligned, so the length is too. */
	if (get16(buf + 2) % 4 || (size_t)get16(buf + 2) + STUN_HEADER_LEN != len)
		return STUN_ERR_LENGTH;
	type = get16(buf);
	m->method = (uint16_t)((type & 0x000F) | ((type & 0x00E0) >> 1) |
	                       ((type & 0x3E00) >> 2));
	m->cls = (uint8_t)(((type >> 4) & 1) | ((type >> 7) & 2));
	memcpy(m->txid, buf + 4, STUN3489_TXID_LEN);

	while (off < len) {
		uint16_t alen;
		int rc;

		if (len - off < 4)
			return STUN_ERR_ATTR_TRUNCATED;
		type = get16(buf + off);
		alen = get16(buf + off + 2);
		if (stun_attr_size(alen) > len - off)
			return STUN_ERR_ATTR_TRUNCATED;
		if (m->attrs_count == STUN_MAX_ATTRS)
			return STUN_ERR_TOO_MANY_ATTRS;
		m->attrs_count++;
		if ((rc = decode_attr(m, type, buf + off + 4, alen)))
			return rc;
		off += stun_attr_size(alen);
	}
	return STUN_OK;
}

void stun3489_writer_init(struct stun_writer *w, uint8_t *buf, size_t cap,
                          uint16_t method, uint8_t cls,
                          const uint8_t txid[STUN3489_TXID_LEN])
{
	stun_writer_init(w, buf, cap, method, cls, txid + 4);
	if (w->err == STUN_OK)
		memcpy(buf + 4, txid, 4); /* the id's first word, not the cookie */
}
