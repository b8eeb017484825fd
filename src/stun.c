/*
 * STUN message codec: RFC 8489 framing and attributes, RFC 5780's NAT
 * behaviour discovery attributes and RFC 8445's ICE attributes.
 *
 * RFC 8489 5, the header:
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |0 0|     STUN Message Type     |         Message Length        |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                         Magic Cookie                          |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                     Transaction ID (96 bits)                  |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * RFC 8489 14, each attribute (value padded to a multiple of 4 bytes):
 *
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |         Type                  |            Length             |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                         Value (variable)                ....
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
#include "stun.h"

#include <stddef.h>
#include <string.h>
#include <netinet/in.h>
#include <gnutls/crypto.h>
#include <zlib.h>

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

size_t stun_attr_size(size_t len)
{
	return 4 + ((len + 3) & ~(size_t)3);
}

/* RFC 8489 5: the class bits C1 C0 sit at bits 8 and 4 of the type. */
static void type_split(uint16_t t, uint16_t *method, uint8_t *cls)
{
	*method = (uint16_t)((t & 0x000F) | ((t & 0x00E0) >> 1) |
	                     ((t & 0x3E00) >> 2));
	*cls = (uint8_t)(((t & 0x0010) >> 4) | ((t & 0x0100) >> 7));
}

static uint16_t type_join(uint16_t method, uint8_t cls)
{
	return (uint16_t)((method & 0x000F) | ((method & 0x0070) << 1) |
	                  ((method & 0x0F80) << 2) | ((cls & 1) << 4) |
	                  ((cls & 2) << 7));
}

int stun_is_stun(const uint8_t *buf, size_t len)
{
	return len >= STUN_HEADER_LEN && buf[0] < 4 &&
	       get32(buf + 4) == STUN_MAGIC_COOKIE;
}

int stun_peek_method(const uint8_t *buf, size_t len)
{
	uint16_t method;
	uint8_t cls;

	if (!stun_is_stun(buf, len))
		return -1;
	type_split(get16(buf), &method, &cls);
	return method;
}

static int ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint8_t diff = 0;

	for (size_t i = 0; i < n; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

/*
 * RFC 8489 14.1/14.2, (XOR-)MAPPED-ADDRESS:
 *
 *  |0 0 0 0 0 0 0 0|    Family     |         (X-)Port              |
 *  |                 (X-)Address (32 bits or 128 bits)             |
 *
 * The XOR form XORs the port with the cookie's top half, an IPv4 address
 * with the cookie, and an IPv6 address with the cookie and transaction id.
 */
static int decode_addr(struct sockaddr_storage *out, const uint8_t *v,
                       size_t len, const uint8_t *xor_key)
{
	uint8_t ip[16];
	uint16_t port;

	if (len < 4)
		return STUN_ERR_ATTR_VALUE;
	port = get16(v + 2);
	if (xor_key)
		port ^= (uint16_t)(STUN_MAGIC_COOKIE >> 16);
	memset(out, 0, sizeof(*out));
	if (v[1] == 0x01 && len == 8) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;

		memcpy(ip, v + 4, 4);
		for (int i = 0; xor_key && i < 4; i++)
			ip[i] ^= xor_key[i];
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, ip, 4);
		return STUN_OK;
	}
	if (v[1] == 0x02 && len == 20) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

		memcpy(ip, v + 4, 16);
		for (int i = 0; xor_key && i < 16; i++)
			ip[i] ^= xor_key[i];
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, ip, 16);
		return STUN_OK;
	}
	return STUN_ERR_ATTR_VALUE;
}

/* The 16 bytes an XOR address is masked with: cookie, then transaction id. */
static void xor_key_make(uint8_t key[16], const uint8_t *txid)
{
	put32(key, STUN_MAGIC_COOKIE);
	memcpy(key + 4, txid, STUN_TXID_LEN);
}

int stun_addr_decode(struct sockaddr_storage *out, const uint8_t *v,
                     size_t len, const uint8_t *txid)
{
	uint8_t key[16];

	if (!txid)
		return decode_addr(out, v, len, NULL);
	xor_key_make(key, txid);
	return decode_addr(out, v, len, key);
}

int stun_addr_encode(uint8_t *out, size_t cap, const struct sockaddr *sa,
                     const uint8_t *txid)
{
	size_t n = sa->sa_family == AF_INET6 ? 20 : 8;
	uint8_t key[16];
	uint16_t port;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return STUN_ERR_ARG;
	if (cap < n)
		return STUN_ERR_NOSPACE;
	if (txid)
		xor_key_make(key, txid);
	out[0] = 0;
	out[1] = sa->sa_family == AF_INET ? 0x01 : 0x02;
	if (sa->sa_family == AF_INET) {
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
		memcpy(out + 4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else {
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
		memcpy(out + 4, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
	for (size_t i = 0; txid && i < n - 4; i++)
		out[4 + i] ^= key[i];
	if (txid)
		port ^= (uint16_t)(STUN_MAGIC_COOKIE >> 16);
	put16(out + 2, port);
	return (int)n;
}

static int decode_error_code(struct stun_msg *m, const uint8_t *v, size_t len)
{
	/* RFC 8489 14.8: 21 reserved bits, class (3..6), number (0..99). */
	unsigned cls, num;

	if (len < 4 || len - 4 > STUN_MAX_REASON)
		return STUN_ERR_ATTR_VALUE;
	cls = v[2] & 0x7;
	num = v[3];
	if (cls < 3 || cls > 6 || num > 99)
		return STUN_ERR_ATTR_VALUE;
	m->error_code = (uint16_t)(cls * 100 + num);
	m->reason.ptr = v + 4;
	m->reason.len = len - 4;
	return STUN_OK;
}

static int decode_unknown_list(struct stun_msg *m, const uint8_t *v,
                               size_t len)
{
	if (len % 2)
		return STUN_ERR_ATTR_VALUE;
	m->unknown_attrs_count = 0;
	for (size_t i = 0; i + 1 < len; i += 2) {
		if (m->unknown_attrs_count == STUN_MAX_UNKNOWN)
			break;
		m->unknown_attrs[m->unknown_attrs_count++] = get16(v + i);
	}
	return STUN_OK;
}

static int decode_bytes(struct stun_bytes *out, const uint8_t *v, size_t len,
                        size_t max)
{
	if (len > max)
		return STUN_ERR_ATTR_VALUE;
	out->ptr = v;
	out->len = len;
	return STUN_OK;
}

static void note_unknown(struct stun_msg *m, uint16_t type)
{
	/* RFC 8489 7.3.1: only comprehension-required ones matter. */
	if (type >= 0x8000)
		return;
	for (size_t i = 0; i < m->unknown_required_count; i++)
		if (m->unknown_required[i] == type)
			return;
	if (m->unknown_required_count < STUN_MAX_UNKNOWN)
		m->unknown_required[m->unknown_required_count++] = type;
}

/* Decode one known attribute into m.  Unknown types are noted, not errors. */
static int decode_attr(struct stun_msg *m, uint16_t type, const uint8_t *v,
                       size_t len, const uint8_t *xor_key)
{
	switch (type) {
	case STUN_ATTR_MAPPED_ADDRESS:
		return decode_addr(&m->mapped, v, len, NULL);
	case STUN_ATTR_XOR_MAPPED_ADDRESS:
		return decode_addr(&m->xor_mapped, v, len, xor_key);
	case STUN_ATTR_RESPONSE_ORIGIN:
		return decode_addr(&m->response_origin, v, len, NULL);
	case STUN_ATTR_OTHER_ADDRESS:
		return decode_addr(&m->other_address, v, len, NULL);
	case STUN_ATTR_USERNAME:
		return decode_bytes(&m->username, v, len, STUN_MAX_USERNAME);
	case STUN_ATTR_SOFTWARE:
		return decode_bytes(&m->software, v, len, STUN_MAX_SOFTWARE);
	case STUN_ATTR_REALM:
		return decode_bytes(&m->realm, v, len, STUN_MAX_REASON);
	case STUN_ATTR_NONCE:
		return decode_bytes(&m->nonce, v, len, STUN_MAX_REASON);
	case STUN_ATTR_PADDING:
		return decode_bytes(&m->padding, v, len, 0xFFFF);
	case STUN_ATTR_ERROR_CODE:
		return decode_error_code(m, v, len);
	case STUN_ATTR_UNKNOWN_ATTRIBUTES:
		return decode_unknown_list(m, v, len);
	case STUN_ATTR_CHANGE_REQUEST:
		if (len != 4)
			return STUN_ERR_ATTR_VALUE;
		m->change_request = get32(v);
		return STUN_OK;
	case STUN_ATTR_RESPONSE_PORT:
		if (len != 4)
			return STUN_ERR_ATTR_VALUE;
		m->response_port = get16(v);
		return STUN_OK;
	case STUN_ATTR_PRIORITY:
		if (len != 4)
			return STUN_ERR_ATTR_VALUE;
		m->priority = get32(v);
		return STUN_OK;
	case STUN_ATTR_USE_CANDIDATE:
		return len == 0 ? STUN_OK : STUN_ERR_ATTR_VALUE;
	case STUN_ATTR_ICE_CONTROLLED:
	case STUN_ATTR_ICE_CONTROLLING:
		if (len != 8)
			return STUN_ERR_ATTR_VALUE;
		/* Both roles in one message is the peer's bug (RFC 8445 7.3.1.1
		 * resolves it); keep the first tie-breaker seen. */
		if (!(m->present &
		      (STUN_HAS_ICE_CONTROLLED | STUN_HAS_ICE_CONTROLLING)))
			m->tiebreaker = (uint64_t)get32(v) << 32 | get32(v + 4);
		return STUN_OK;
	default:
		note_unknown(m, type);
		return STUN_OK;
	}
}

static uint32_t present_bit(uint16_t type)
{
	switch (type) {
	case STUN_ATTR_MAPPED_ADDRESS: return STUN_HAS_MAPPED;
	case STUN_ATTR_XOR_MAPPED_ADDRESS: return STUN_HAS_XOR_MAPPED;
	case STUN_ATTR_USERNAME: return STUN_HAS_USERNAME;
	case STUN_ATTR_MESSAGE_INTEGRITY: return STUN_HAS_INTEGRITY;
	case STUN_ATTR_MESSAGE_INTEGRITY_SHA256: return STUN_HAS_INTEGRITY_SHA256;
	case STUN_ATTR_FINGERPRINT: return STUN_HAS_FINGERPRINT;
	case STUN_ATTR_ERROR_CODE: return STUN_HAS_ERROR_CODE;
	case STUN_ATTR_UNKNOWN_ATTRIBUTES: return STUN_HAS_UNKNOWN_ATTRS;
	case STUN_ATTR_SOFTWARE: return STUN_HAS_SOFTWARE;
	case STUN_ATTR_CHANGE_REQUEST: return STUN_HAS_CHANGE_REQUEST;
	case STUN_ATTR_RESPONSE_ORIGIN: return STUN_HAS_RESPONSE_ORIGIN;
	case STUN_ATTR_OTHER_ADDRESS: return STUN_HAS_OTHER_ADDRESS;
	case STUN_ATTR_RESPONSE_PORT: return STUN_HAS_RESPONSE_PORT;
	case STUN_ATTR_PRIORITY: return STUN_HAS_PRIORITY;
	case STUN_ATTR_USE_CANDIDATE: return STUN_HAS_USE_CANDIDATE;
	case STUN_ATTR_ICE_CONTROLLED: return STUN_HAS_ICE_CONTROLLED;
	case STUN_ATTR_ICE_CONTROLLING: return STUN_HAS_ICE_CONTROLLING;
	case STUN_ATTR_REALM: return STUN_HAS_REALM;
	case STUN_ATTR_NONCE: return STUN_HAS_NONCE;
	case STUN_ATTR_PADDING: return STUN_HAS_PADDING;
	default: return 0;
	}
}

/* RFC 8489 14.7: CRC-32 of everything before FINGERPRINT, XOR 0x5354554E. */
static uint32_t fingerprint_of(const uint8_t *buf, size_t len)
{
	return (uint32_t)crc32(0, buf, (uInt)len) ^ STUN_FINGERPRINT_XOR;
}

/*
 * Integrity attributes: RFC 8489 14.5 says that after MESSAGE-INTEGRITY only
 * MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count, and 14.6 that after
 * MESSAGE-INTEGRITY-SHA256 only FINGERPRINT does.  Others are skipped.
 */
static int decode_integrity(struct stun_msg *m, uint16_t type,
                            const uint8_t *v, size_t len, size_t offset)
{
	if (type == STUN_ATTR_MESSAGE_INTEGRITY) {
		if (len != STUN_HMAC_SHA1_LEN)
			return STUN_ERR_ATTR_VALUE;
		memcpy(m->integrity, v, len);
		m->integrity_offset = offset;
		return STUN_OK;
	}
	/* 14.6: 16 to 32 bytes, a multiple of 4 */
	if (len < 16 || len > STUN_HMAC_SHA256_LEN || len % 4)
		return STUN_ERR_ATTR_VALUE;
	memcpy(m->integrity_sha256, v, len);
	m->integrity_sha256_len = len;
	m->integrity_sha256_offset = offset;
	return STUN_OK;
}

static int decode_header(struct stun_msg *m, const uint8_t *buf, size_t len)
{
	if (len < STUN_HEADER_LEN)
		return STUN_ERR_SHORT;
	if (buf[0] & 0xC0)
		return STUN_ERR_NOT_STUN;
	if (get32(buf + 4) != STUN_MAGIC_COOKIE)
		return STUN_ERR_COOKIE;
	/* RFC 8489 5: the length excludes the header and is a multiple of 4;
	 * over UDP the datagram holds exactly one message. */
	if (get16(buf + 2) % 4 || (size_t)get16(buf + 2) + STUN_HEADER_LEN != len)
		return STUN_ERR_LENGTH;
	type_split(get16(buf), &m->method, &m->cls);
	memcpy(m->txid, buf + 8, STUN_TXID_LEN);
	return STUN_OK;
}

int stun_decode(struct stun_msg *m, const uint8_t *buf, size_t len)
{
	uint8_t xor_key[16];
	size_t off = STUN_HEADER_LEN;
	int after_integrity = 0;
	int rc;

	memset(m, 0, offsetof(struct stun_msg, mapped));
	rc = decode_header(m, buf, len);
	if (rc)
		return rc;
	xor_key_make(xor_key, m->txid);

	while (off < len) {
		uint16_t type, alen;
		const uint8_t *v;
		uint32_t bit;

		if (m->present & STUN_HAS_FINGERPRINT)
			return STUN_ERR_AFTER_FINGERPRINT;
		if (len - off < 4)
			return STUN_ERR_ATTR_TRUNCATED;
		type = get16(buf + off);
		alen = get16(buf + off + 2);
		if (stun_attr_size(alen) > len - off)
			return STUN_ERR_ATTR_TRUNCATED;
		if (m->attrs_count == STUN_MAX_ATTRS)
			return STUN_ERR_TOO_MANY_ATTRS;
		v = buf + off + 4;
		m->attrs[m->attrs_count++] =
			(struct stun_attr){ .type = type, .len = alen, .value = v };
		bit = present_bit(type);

		if (type == STUN_ATTR_FINGERPRINT) {
			if (alen != 4)
				return STUN_ERR_ATTR_VALUE;
			m->fingerprint = get32(v);
			if (m->fingerprint != fingerprint_of(buf, off))
				return STUN_ERR_FINGERPRINT;
		} else if (type == STUN_ATTR_MESSAGE_INTEGRITY ||
		           type == STUN_ATTR_MESSAGE_INTEGRITY_SHA256) {
			if (after_integrity == 2 ||
			    (after_integrity == 1 &&
			     type == STUN_ATTR_MESSAGE_INTEGRITY))
				bit = 0; /* ignored, 14.5/14.6 */
			else if ((rc = decode_integrity(m, type, v, alen, off)))
				return rc;
			else
				after_integrity =
					type == STUN_ATTR_MESSAGE_INTEGRITY ? 1 : 2;
		} else if (after_integrity) {
			bit = 0; /* ignored, 14.5/14.6 */
		} else if (!(m->present & bit) || !bit) {
			/* RFC 8489 14: only the first of duplicates counts */
			if ((rc = decode_attr(m, type, v, alen, xor_key)))
				return rc;
		}
		m->present |= bit;
		off += stun_attr_size(alen);
	}
	/* RFC 8489 6.3.4: an error response carries ERROR-CODE */
	if (m->cls == STUN_ERROR && !(m->present & STUN_HAS_ERROR_CODE))
		return STUN_ERR_CLASS;
	return STUN_OK;
}

/* HMAC over buf[0..off) with the header length rewritten to end at
 * off + 4 + mac_len, as RFC 8489 14.5/14.6 prescribe. */
static int integrity_mac(gnutls_mac_algorithm_t alg, const uint8_t *buf,
                         size_t off, size_t mac_len, const uint8_t *key,
                         size_t key_len, uint8_t *out)
{
	gnutls_hmac_hd_t h;
	uint8_t first[4];
	int rc = -1;

	memcpy(first, buf, 2);
	put16(first + 2, (uint16_t)(off + 4 + mac_len - STUN_HEADER_LEN));
	if (gnutls_hmac_init(&h, alg, key, key_len) < 0)
		return -1;
	if (gnutls_hmac(h, first, 4) < 0 || gnutls_hmac(h, buf + 4, off - 4) < 0)
		goto out;
	rc = 0;
out:
	gnutls_hmac_deinit(h, out);
	return rc;
}

int stun_check_integrity(const struct stun_msg *m, const uint8_t *buf,
                         size_t len, const uint8_t *key, size_t key_len)
{
	uint8_t mac[STUN_HMAC_SHA256_LEN];
	int ok;

	if (m->present & STUN_HAS_INTEGRITY_SHA256) {
		size_t n = m->integrity_sha256_len;

		if (m->integrity_sha256_offset + 4 + n > len ||
		    integrity_mac(GNUTLS_MAC_SHA256, buf,
		                  m->integrity_sha256_offset, n, key, key_len, mac))
			return STUN_ERR_INTEGRITY;
		ok = ct_equal(mac, m->integrity_sha256, n);
	} else if (m->present & STUN_HAS_INTEGRITY) {
		if (m->integrity_offset + 4 + STUN_HMAC_SHA1_LEN > len ||
		    integrity_mac(GNUTLS_MAC_SHA1, buf, m->integrity_offset,
		                  STUN_HMAC_SHA1_LEN, key, key_len, mac))
			return STUN_ERR_INTEGRITY;
		ok = ct_equal(mac, m->integrity, STUN_HMAC_SHA1_LEN);
	} else {
		return STUN_ERR_NO_INTEGRITY;
	}
	gnutls_memset(mac, 0, sizeof(mac));
	return ok ? STUN_OK : STUN_ERR_INTEGRITY;
}

/* ---- encoding ---------------------------------------------------------- */

static void writer_set_length(struct stun_writer *w, size_t body_len)
{
	put16(w->buf + 2, (uint16_t)body_len);
}

void stun_writer_init(struct stun_writer *w, uint8_t *buf, size_t cap,
                      uint16_t method, uint8_t cls,
                      const uint8_t txid[STUN_TXID_LEN])
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->err = STUN_OK;
	if (cap < STUN_HEADER_LEN) {
		w->err = STUN_ERR_NOSPACE;
		return;
	}
	if (method > 0xFFF || cls > 3) {
		w->err = STUN_ERR_ARG;
		return;
	}
	put16(buf, type_join(method, cls));
	put16(buf + 2, 0);
	put32(buf + 4, STUN_MAGIC_COOKIE);
	memcpy(buf + 8, txid, STUN_TXID_LEN);
	w->len = STUN_HEADER_LEN;
}

/* Reserve an attribute of value length len; returns where the value goes. */
static uint8_t *writer_reserve(struct stun_writer *w, uint16_t type,
                               size_t len)
{
	size_t size = stun_attr_size(len);
	uint8_t *p;

	if (w->err)
		return NULL;
	if (len > 0xFFFF) {
		w->err = STUN_ERR_ARG;
		return NULL;
	}
	if (size > w->cap - w->len || w->len + size - STUN_HEADER_LEN > 0xFFFF) {
		w->err = STUN_ERR_NOSPACE;
		return NULL;
	}
	p = w->buf + w->len;
	put16(p, type);
	put16(p + 2, (uint16_t)len);
	memset(p + 4 + len, 0, size - 4 - len); /* RFC 8489 14: zero padding */
	w->len += size;
	writer_set_length(w, w->len - STUN_HEADER_LEN);
	return p + 4;
}

void stun_put_bytes(struct stun_writer *w, uint16_t type, const void *v,
                    size_t len)
{
	uint8_t *p = writer_reserve(w, type, len);

	if (p && len)
		memcpy(p, v, len);
}

void stun_put_u32(struct stun_writer *w, uint16_t type, uint32_t v)
{
	uint8_t *p = writer_reserve(w, type, 4);

	if (p)
		put32(p, v);
}

void stun_put_u64(struct stun_writer *w, uint16_t type, uint64_t v)
{
	uint8_t *p = writer_reserve(w, type, 8);

	if (p) {
		put32(p, (uint32_t)(v >> 32));
		put32(p + 4, (uint32_t)v);
	}
}

static void put_addr(struct stun_writer *w, uint16_t type,
                     const struct sockaddr *sa, int xor)
{
	uint8_t v[20];
	int n;

	if (w->err)
		return;
	if (!sa) {
		w->err = STUN_ERR_ARG;
		return;
	}
	n = stun_addr_encode(v, sizeof(v), sa, xor? w->buf + 8 : NULL);
	if (n < 0)
		w->err = n;
	else
		stun_put_bytes(w, type, v, (size_t)n);
}

void stun_put_addr(struct stun_writer *w, uint16_t type,
                   const struct sockaddr *sa)
{
	put_addr(w, type, sa, 0);
}

void stun_put_xor_addr(struct stun_writer *w, uint16_t type,
                       const struct sockaddr *sa)
{
	put_addr(w, type, sa, 1);
}

/* ERROR-CODE from a reason of rlen bytes (not NUL-terminated). */
static void put_error(struct stun_writer *w, uint16_t code, const void *reason,
                      size_t rlen)
{
	uint8_t *p;

	if (code < 300 || code > 699 || rlen > STUN_MAX_REASON) {
		if (!w->err)
			w->err = STUN_ERR_ARG;
		return;
	}
	if (!(p = writer_reserve(w, STUN_ATTR_ERROR_CODE, 4 + rlen)))
		return;
	p[0] = p[1] = 0;
	p[2] = (uint8_t)(code / 100);
	p[3] = (uint8_t)(code % 100);
	if (rlen)
		memcpy(p + 4, reason, rlen);
}

void stun_put_error(struct stun_writer *w, uint16_t code, const char *reason)
{
	put_error(w, code, reason, reason ? strlen(reason) : 0);
}

void stun_put_unknown(struct stun_writer *w, const uint16_t *types, size_t n)
{
	uint8_t *p = writer_reserve(w, STUN_ATTR_UNKNOWN_ATTRIBUTES, 2 * n);

	for (size_t i = 0; p && i < n; i++)
		put16(p + 2 * i, types[i]);
}

static void put_integrity(struct stun_writer *w, uint16_t type,
                          gnutls_mac_algorithm_t alg, size_t mac_len,
                          const uint8_t *key, size_t key_len)
{
	size_t off = w->len;
	uint8_t *p = writer_reserve(w, type, mac_len);

	/* The length field already covers this attribute, as 14.5 wants. */
	if (p && integrity_mac(alg, w->buf, off, mac_len, key, key_len, p))
		w->err = STUN_ERR_ARG;
}

void stun_put_integrity(struct stun_writer *w, const uint8_t *key,
                        size_t key_len)
{
	put_integrity(w, STUN_ATTR_MESSAGE_INTEGRITY, GNUTLS_MAC_SHA1,
	              STUN_HMAC_SHA1_LEN, key, key_len);
}

void stun_put_integrity_sha256(struct stun_writer *w, const uint8_t *key,
                               size_t key_len)
{
	put_integrity(w, STUN_ATTR_MESSAGE_INTEGRITY_SHA256, GNUTLS_MAC_SHA256,
	              STUN_HMAC_SHA256_LEN, key, key_len);
}

void stun_put_fingerprint(struct stun_writer *w)
{
	size_t off = w->len;
	uint8_t *p = writer_reserve(w, STUN_ATTR_FINGERPRINT, 4);

	if (p)
		put32(p, fingerprint_of(w->buf, off));
}

const struct stun_attr *stun_attr_find(const struct stun_msg *m,
                                       uint16_t type)
{
	for (size_t i = 0; i < m->attrs_count; i++) {
		uint16_t at = m->attrs[i].type;

		if (at == STUN_ATTR_MESSAGE_INTEGRITY ||
		    at == STUN_ATTR_MESSAGE_INTEGRITY_SHA256 ||
		    at == STUN_ATTR_FINGERPRINT)
			break;
		if (at == type)
			return &m->attrs[i];
	}
	return NULL;
}

int stun_writer_finish(struct stun_writer *w)
{
	return w->err ? w->err : (int)w->len;
}

static void put_bytes_if(struct stun_writer *w, const struct stun_msg *m,
                         uint32_t bit, uint16_t type,
                         const struct stun_bytes *b)
{
	if (m->present & bit)
		stun_put_bytes(w, type, b->ptr, b->len);
}

static void put_addr_if(struct stun_writer *w, const struct stun_msg *m,
                        uint32_t bit, uint16_t type,
                        const struct sockaddr_storage *ss, int xor)
{
	if (m->present & bit)
		put_addr(w, type, (const struct sockaddr *)ss, xor);
}

int stun_encode(const struct stun_msg *m, uint8_t *buf, size_t cap,
                const uint8_t *key, size_t key_len)
{
	struct stun_writer w;

	stun_writer_init(&w, buf, cap, m->method, m->cls, m->txid);
	put_addr_if(&w, m, STUN_HAS_XOR_MAPPED, STUN_ATTR_XOR_MAPPED_ADDRESS,
	            &m->xor_mapped, 1);
	put_addr_if(&w, m, STUN_HAS_MAPPED, STUN_ATTR_MAPPED_ADDRESS,
	            &m->mapped, 0);
	put_addr_if(&w, m, STUN_HAS_RESPONSE_ORIGIN, STUN_ATTR_RESPONSE_ORIGIN,
	            &m->response_origin, 0);
	put_addr_if(&w, m, STUN_HAS_OTHER_ADDRESS, STUN_ATTR_OTHER_ADDRESS,
	            &m->other_address, 0);
	put_bytes_if(&w, m, STUN_HAS_USERNAME, STUN_ATTR_USERNAME, &m->username);
	put_bytes_if(&w, m, STUN_HAS_REALM, STUN_ATTR_REALM, &m->realm);
	put_bytes_if(&w, m, STUN_HAS_NONCE, STUN_ATTR_NONCE, &m->nonce);
	if (m->present & STUN_HAS_ERROR_CODE)
		put_error(&w, m->error_code, m->reason.ptr, m->reason.len);
	if (m->present & STUN_HAS_UNKNOWN_ATTRS)
		stun_put_unknown(&w, m->unknown_attrs, m->unknown_attrs_count);
	if (m->present & STUN_HAS_CHANGE_REQUEST)
		stun_put_u32(&w, STUN_ATTR_CHANGE_REQUEST, m->change_request);
	if (m->present & STUN_HAS_RESPONSE_PORT)
		stun_put_u32(&w, STUN_ATTR_RESPONSE_PORT,
		             (uint32_t)m->response_port << 16);
	if (m->present & STUN_HAS_PRIORITY)
		stun_put_u32(&w, STUN_ATTR_PRIORITY, m->priority);
	if (m->present & STUN_HAS_USE_CANDIDATE)
		stun_put_bytes(&w, STUN_ATTR_USE_CANDIDATE, NULL, 0);
	if (m->present & STUN_HAS_ICE_CONTROLLED)
		stun_put_u64(&w, STUN_ATTR_ICE_CONTROLLED, m->tiebreaker);
	if (m->present & STUN_HAS_ICE_CONTROLLING)
		stun_put_u64(&w, STUN_ATTR_ICE_CONTROLLING, m->tiebreaker);
	put_bytes_if(&w, m, STUN_HAS_PADDING, STUN_ATTR_PADDING, &m->padding);
	put_bytes_if(&w, m, STUN_HAS_SOFTWARE, STUN_ATTR_SOFTWARE, &m->software);
	if (key && (m->present & STUN_HAS_INTEGRITY))
		stun_put_integrity(&w, key, key_len);
	if (key && (m->present & STUN_HAS_INTEGRITY_SHA256))
		stun_put_integrity_sha256(&w, key, key_len);
	if (m->present & STUN_HAS_FINGERPRINT)
		stun_put_fingerprint(&w);
	return stun_writer_finish(&w);
}

const char *stun_err_str(int err)
{
	switch (err) {
	case STUN_OK: return "ok";
	case STUN_ERR_SHORT: return "shorter than a STUN header";
	case STUN_ERR_NOT_STUN: return "not STUN (first two bits set)";
	case STUN_ERR_COOKIE: return "wrong magic cookie";
	case STUN_ERR_LENGTH: return "length field disagrees with datagram";
	case STUN_ERR_ATTR_TRUNCATED: return "attribute runs past the end";
	case STUN_ERR_ATTR_VALUE: return "attribute has a bad value";
	case STUN_ERR_TOO_MANY_ATTRS: return "too many attributes";
	case STUN_ERR_FINGERPRINT: return "FINGERPRINT mismatch";
	case STUN_ERR_AFTER_FINGERPRINT: return "attribute after FINGERPRINT";
	case STUN_ERR_CLASS: return "error response without ERROR-CODE";
	case STUN_ERR_INTEGRITY: return "MESSAGE-INTEGRITY mismatch";
	case STUN_ERR_NO_INTEGRITY: return "no MESSAGE-INTEGRITY";
	case STUN_ERR_NOSPACE: return "buffer too small";
	case STUN_ERR_ARG: return "bad argument";
	default: return "unknown error";
	}
}

const char *stun_class_str(uint8_t cls)
{
	static const char *names[] = { "request", "indication", "success",
		                       "error" };

	return cls < 4 ? names[cls] : "?";
}
