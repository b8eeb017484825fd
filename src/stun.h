/*
 * STUN message codec (RFC 8489, with RFC 5780 and RFC 8445 attributes).
 *
 * Pure: it reads and writes byte buffers and never touches a socket.  The
 * decoder trusts nothing in its input: every length is checked before it is
 * read, and a message it cannot vouch for is rejected with a reason code.
 *
 * A decoded struct stun_msg points into the buffer it was decoded from
 * (USERNAME, SOFTWARE, reason phrase, raw attributes), so it is valid only
 * while that buffer is.
 */
#ifndef PUNCH_STUN_H
#define PUNCH_STUN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum {
	STUN_HEADER_LEN = 20,
	STUN_TXID_LEN = 12,
	STUN_MAGIC_COOKIE = 0x2112A442,
	STUN_FINGERPRINT_XOR = 0x5354554E,
	STUN_MAX_ATTRS = 32,       /* more than this in one message: malformed */
	STUN_MAX_UNKNOWN = 16,     /* unknown comprehension-required types kept */
	STUN_MAX_USERNAME = 513,   /* RFC 8489 14.3 */
	STUN_MAX_SOFTWARE = 763,   /* RFC 8489 14.14: 128 characters */
	STUN_MAX_REASON = 763,     /* RFC 8489 14.8 */
	STUN_HMAC_SHA1_LEN = 20,
	STUN_HMAC_SHA256_LEN = 32,
};

/* Message classes, already shifted out of the type field (RFC 8489 5). */
enum stun_class {
	STUN_REQUEST = 0,
	STUN_INDICATION = 1,
	STUN_SUCCESS = 2,
	STUN_ERROR = 3,
};

enum stun_method {
	STUN_BINDING = 0x001,
	/* TURN, RFC 8656 17 */
	STUN_ALLOCATE = 0x003,
	STUN_REFRESH = 0x004,
	STUN_SEND = 0x006,             /* indication only */
	STUN_DATA = 0x007,             /* indication only */
	STUN_CREATE_PERMISSION = 0x008,
	STUN_CHANNEL_BIND = 0x009,
};

enum stun_attr_type {
	/* Comprehension-required (0x0000-0x7FFF) */
	STUN_ATTR_MAPPED_ADDRESS = 0x0001,
	STUN_ATTR_CHANGE_REQUEST = 0x0003,          /* RFC 5780 7.2 */
	STUN_ATTR_USERNAME = 0x0006,
	STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,
	STUN_ATTR_ERROR_CODE = 0x0009,
	STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
	STUN_ATTR_REALM = 0x0014,
	STUN_ATTR_NONCE = 0x0015,
	STUN_ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001C,
	STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
	STUN_ATTR_PRIORITY = 0x0024,                /* RFC 8445 16.1 */
	STUN_ATTR_USE_CANDIDATE = 0x0025,
	STUN_ATTR_PADDING = 0x0026,                 /* RFC 5780 7.6 */
	STUN_ATTR_RESPONSE_PORT = 0x0027,           /* RFC 5780 7.5 */
	/* TURN, RFC 8656 18.  stun_decode() leaves these to turn_server.c,
	 * which reads them from stun_msg.attrs: a Binding request carrying
	 * one still gets its 420. */
	STUN_ATTR_CHANNEL_NUMBER = 0x000C,
	STUN_ATTR_LIFETIME = 0x000D,
	STUN_ATTR_XOR_PEER_ADDRESS = 0x0012,
	STUN_ATTR_DATA = 0x0013,
	STUN_ATTR_XOR_RELAYED_ADDRESS = 0x0016,
	STUN_ATTR_REQUESTED_ADDRESS_FAMILY = 0x0017,
	STUN_ATTR_EVEN_PORT = 0x0018,
	STUN_ATTR_REQUESTED_TRANSPORT = 0x0019,
	STUN_ATTR_DONT_FRAGMENT = 0x001A,
	STUN_ATTR_RESERVATION_TOKEN = 0x0022,
	/* Comprehension-optional (0x8000-0xFFFF) */
	STUN_ATTR_SOFTWARE = 0x8022,
	STUN_ATTR_FINGERPRINT = 0x8028,
	STUN_ATTR_ICE_CONTROLLED = 0x8029,
	STUN_ATTR_ICE_CONTROLLING = 0x802A,
	STUN_ATTR_RESPONSE_ORIGIN = 0x802B,         /* RFC 5780 7.3 */
	STUN_ATTR_OTHER_ADDRESS = 0x802C,           /* RFC 5780 7.4 */
	STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY = 0x8000, /* RFC 8656 18.12 */
	STUN_ATTR_ADDRESS_ERROR_CODE = 0x8001,      /* RFC 8656 18.13 */
	STUN_ATTR_ICMP = 0x8004,                    /* RFC 8656 18.14 */
};

/* CHANGE-REQUEST flags (RFC 5780 7.2) */
enum {
	STUN_CHANGE_IP = 0x4,
	STUN_CHANGE_PORT = 0x2,
};

/* Why stun_decode() refused a buffer.  All are "drop and count". */
enum stun_err {
	STUN_OK = 0,
	STUN_ERR_SHORT = -1,           /* under 20 bytes */
	STUN_ERR_NOT_STUN = -2,        /* top two bits set: not STUN (RFC 9443) */
	STUN_ERR_COOKIE = -3,          /* wrong magic cookie */
	STUN_ERR_LENGTH = -4,          /* header length disagrees with datagram */
	STUN_ERR_ATTR_TRUNCATED = -5,  /* an attribute runs past the end */
	STUN_ERR_ATTR_VALUE = -6,      /* a known attribute has a bad value */
	STUN_ERR_TOO_MANY_ATTRS = -7,
	STUN_ERR_FINGERPRINT = -8,     /* FINGERPRINT present and wrong */
	STUN_ERR_AFTER_FINGERPRINT = -9, /* anything after FINGERPRINT */
	STUN_ERR_CLASS = -10,          /* an error response without ERROR-CODE */
	STUN_ERR_INTEGRITY = -11,      /* MESSAGE-INTEGRITY check failed */
	STUN_ERR_NO_INTEGRITY = -12,   /* integrity asked for, none present */
	STUN_ERR_NOSPACE = -13,        /* encoder: buffer too small */
	STUN_ERR_ARG = -14,            /* encoder: bad argument */
};

/* Bits of stun_msg.present, one per attribute the codec understands. */
enum {
	STUN_HAS_MAPPED = 1u << 0,
	STUN_HAS_XOR_MAPPED = 1u << 1,
	STUN_HAS_USERNAME = 1u << 2,
	STUN_HAS_INTEGRITY = 1u << 3,
	STUN_HAS_INTEGRITY_SHA256 = 1u << 4,
	STUN_HAS_FINGERPRINT = 1u << 5,
	STUN_HAS_ERROR_CODE = 1u << 6,
	STUN_HAS_UNKNOWN_ATTRS = 1u << 7,
	STUN_HAS_SOFTWARE = 1u << 8,
	STUN_HAS_CHANGE_REQUEST = 1u << 9,
	STUN_HAS_RESPONSE_ORIGIN = 1u << 10,
	STUN_HAS_OTHER_ADDRESS = 1u << 11,
	STUN_HAS_RESPONSE_PORT = 1u << 12,
	STUN_HAS_PRIORITY = 1u << 13,
	STUN_HAS_USE_CANDIDATE = 1u << 14,
	STUN_HAS_ICE_CONTROLLED = 1u << 15,
	STUN_HAS_ICE_CONTROLLING = 1u << 16,
	STUN_HAS_REALM = 1u << 17,
	STUN_HAS_NONCE = 1u << 18,
	STUN_HAS_PADDING = 1u << 19,
};

struct stun_bytes {
	const uint8_t *ptr;
	size_t len;
};

/* One attribute as it stood on the wire, in order, known or not. */
struct stun_attr {
	uint16_t type;
	uint16_t len;
	const uint8_t *value;
};

struct stun_msg {
	uint16_t method;
	uint8_t cls;        /* enum stun_class */
	uint8_t txid[STUN_TXID_LEN];
	uint32_t present;                 /* STUN_HAS_* */

	struct stun_bytes username;
	struct stun_bytes software;
	struct stun_bytes realm;
	struct stun_bytes nonce;
	struct stun_bytes padding;
	uint16_t error_code;              /* 300..699 */
	struct stun_bytes reason;
	uint32_t change_request;          /* STUN_CHANGE_* */
	uint16_t response_port;
	uint32_t priority;
	uint64_t tiebreaker;              /* ICE-CONTROLLED / ICE-CONTROLLING */
	uint32_t fingerprint;
	size_t unknown_attrs_count;
	size_t unknown_required_count;
	size_t attrs_count;

	/* Offsets of the integrity attributes from the message start, so that
	 * stun_check_integrity() can hash exactly the covered prefix. */
	size_t integrity_offset;
	size_t integrity_sha256_offset;
	size_t integrity_sha256_len;      /* 16..32, RFC 8489 14.6 */

	/*
	 * Everything from here on is valid only as the fields above say: an
	 * address when its STUN_HAS_ bit is set, an array up to its count.
	 * stun_decode() zeroes only the part above, which keeps the server's
	 * per-request cost down (this part is over 1 KB).
	 */
	struct sockaddr_storage mapped;
	struct sockaddr_storage xor_mapped;
	struct sockaddr_storage response_origin;
	struct sockaddr_storage other_address;
	uint16_t unknown_attrs[STUN_MAX_UNKNOWN]; /* from UNKNOWN-ATTRIBUTES */
	/* Comprehension-required attribute types this codec does not know;
	 * a server answers them with 420 (RFC 8489 7.3.1). */
	uint16_t unknown_required[STUN_MAX_UNKNOWN];
	uint8_t integrity[STUN_HMAC_SHA1_LEN];
	uint8_t integrity_sha256[STUN_HMAC_SHA256_LEN];
	struct stun_attr attrs[STUN_MAX_ATTRS];
};

/* Does this datagram look like STUN at all?  RFC 9443: first byte 0..3 and
 * the magic cookie in place.  Cheap, for demultiplexing. */
int stun_is_stun(const uint8_t *buf, size_t len);

/* The method of what looks like STUN, for dispatch; -1 if not STUN. */
int stun_peek_method(const uint8_t *buf, size_t len);

/* Decode and validate buf.  Returns STUN_OK or a negative enum stun_err.
 * FINGERPRINT, when present, is verified.  Integrity is not: that needs a
 * key, see stun_check_integrity(). */
int stun_decode(struct stun_msg *m, const uint8_t *buf, size_t len);

/* Verify MESSAGE-INTEGRITY-SHA256 if present, else MESSAGE-INTEGRITY, with
 * a constant-time comparison.  msg must be the result of stun_decode() on the
 * same buf.  Returns STUN_OK, STUN_ERR_INTEGRITY or STUN_ERR_NO_INTEGRITY. */
int stun_check_integrity(const struct stun_msg *m, const uint8_t *buf,
                         size_t len, const uint8_t *key, size_t key_len);

/*
 * Encoding.  A writer appends attributes to a caller's buffer; the first error
 * sticks, so callers may add several attributes and check once at the end.
 *
 *	struct stun_writer w;
 *	stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING, STUN_SUCCESS, txid);
 *	stun_put_xor_addr(&w, STUN_ATTR_XOR_MAPPED_ADDRESS, from);
 *	stun_put_fingerprint(&w);
 *	n = stun_writer_finish(&w);   // length, or a negative enum stun_err
 */
struct stun_writer {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err;
};

void stun_writer_init(struct stun_writer *w, uint8_t *buf, size_t cap,
                      uint16_t method, uint8_t cls,
                      const uint8_t txid[STUN_TXID_LEN]);
/* v may be NULL only when len is 0. */
void stun_put_bytes(struct stun_writer *w, uint16_t type, const void *v,
                    size_t len);
void stun_put_u32(struct stun_writer *w, uint16_t type, uint32_t v);
void stun_put_u64(struct stun_writer *w, uint16_t type, uint64_t v);
void stun_put_addr(struct stun_writer *w, uint16_t type,
                   const struct sockaddr *sa);
void stun_put_xor_addr(struct stun_writer *w, uint16_t type,
                       const struct sockaddr *sa);
void stun_put_error(struct stun_writer *w, uint16_t code, const char *reason);
void stun_put_unknown(struct stun_writer *w, const uint16_t *types, size_t n);
void stun_put_integrity(struct stun_writer *w, const uint8_t *key,
                        size_t key_len);
void stun_put_integrity_sha256(struct stun_writer *w, const uint8_t *key,
                               size_t key_len);
void stun_put_fingerprint(struct stun_writer *w);
int stun_writer_finish(struct stun_writer *w);

/* The (XOR-)MAPPED-ADDRESS value format on its own, for attributes that
 * embed an address: decode value v, or encode sa into out (20 bytes is
 * enough).  txid selects the XOR form; NULL the plain one.  Encoding
 * returns the length written or a negative enum stun_err. */
int stun_addr_decode(struct sockaddr_storage *out, const uint8_t *v,
                     size_t len, const uint8_t *txid);
int stun_addr_encode(uint8_t *out, size_t cap, const struct sockaddr *sa,
                     const uint8_t *txid);

/* The first attribute of this type that counts: before MESSAGE-INTEGRITY,
 * MESSAGE-INTEGRITY-SHA256 and FINGERPRINT (RFC 8489 14.5: what follows
 * them is not covered).  For attributes the codec leaves undecoded (TURN's,
 * RFC 8656 18); NULL if there is none. */
const struct stun_attr *stun_attr_find(const struct stun_msg *m,
                                       uint16_t type);

/* Size an attribute of value length len takes on the wire, with padding. */
size_t stun_attr_size(size_t len);

/* Re-encode every attribute of a decoded message that this codec knows, in a
 * canonical order, plus FINGERPRINT if the original had one.  Integrity is
 * recomputed with key when the original carried it and key is given.
 * Used by the fuzzer's decode/encode/decode round trip and by tests. */
int stun_encode(const struct stun_msg *m, uint8_t *buf, size_t cap,
                const uint8_t *key, size_t key_len);

/* Short names for logs. */
const char *stun_err_str(int err);
const char *stun_class_str(uint8_t cls);

#endif
