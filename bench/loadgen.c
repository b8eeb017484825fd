/*
 * loadgen.c - STUN Binding load generator for benchmarking punch's server.
 *
 * Keeps a bounded window of STUN Binding requests (RFC 8489) outstanding on
 * one or more connected UDP sockets, sent and received with sendmmsg/recvmmsg
 * in batches, and checks every response on its own: it must be a Binding
 * success response to a transaction that is outstanding on that socket, and
 * its XOR-MAPPED-ADDRESS must be the socket's own address. The STUN parser
 * here is deliberately independent of src/stun.c, so that it checks the
 * server rather than agreeing with it.
 *
 * With -e the peer is a plain UDP echo (bench/echo.c): an answer is then
 * the request itself, which gives the machine's ceiling for this traffic.
 *
 * The run is a warm-up (-W), the measurement (-d), then a drain of at most
 * one timeout (-t) for the answers still outstanding. It prints one line:
 *
 *   loadgen: server=127.0.0.1:3478 mode=stun duration=5.00s sockets=1
 *     window=256 batch=32 sent=... ok=... bad=... lost=... late=...
 *     rtt_p50=700us rtt_p99=900us idle=3% cpu=5.41s rate=301234 req/s
 *
 * sent, ok, bad, lost and late count the whole run: lost requests were not
 * answered within the timeout (or not usably); late answers came after it,
 * or were a second answer to one request.
 * rate is good answers per second during the measurement only; rtt too.
 * idle is the share of the measurement that the generator spent waiting
 * for answers with nothing to send: its slack. cpu is its own CPU time.
 *
 * Exits 0, or 1 if any response was bad or none was good, or 2 on a usage
 * or setup error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "hostport.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* RFC 8489 constants */
#define STUN_MAGIC_COOKIE 0x2112A442u
#define STUN_FINGERPRINT_XOR 0x5354554Eu /* RFC 8489 14.7: "STUN" */
enum {
	STUN_HEADER_LEN = 20,
	STUN_TXID_LEN = 12,
	STUN_ATTR_HEADER_LEN = 4,
	STUN_BINDING_REQUEST = 0x0001,
	STUN_BINDING_SUCCESS = 0x0101,
	STUN_ATTR_MAPPED_ADDRESS = 0x0001,
	STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
	STUN_ATTR_FINGERPRINT = 0x8028,
	STUN_FINGERPRINT_LEN = 4,
	STUN_FAMILY_IPV4 = 0x01,
	STUN_FAMILY_IPV6 = 0x02,
};

/* Limits and defaults of the load generator */
enum {
	LG_REQ_MAX = STUN_HEADER_LEN + STUN_ATTR_HEADER_LEN + STUN_FINGERPRINT_LEN,
	LG_RECV_BUF = 1500,          /* larger than any sane Binding response */
	LG_DEFAULT_WINDOW = 256,     /* outstanding requests, all sockets together */
	LG_DEFAULT_BATCH = 32,       /* messages per sendmmsg/recvmmsg */
	LG_DEFAULT_SOCKETS = 1,
	LG_DEFAULT_TIMEOUT_MS = 100, /* unanswered after this: lost */
	LG_DEFAULT_WARMUP_MS = 500,  /* before the measurement starts */
	LG_MAX_WINDOW = 1 << 20,
	LG_MAX_BATCH = 1024,         /* UIO_MAXIOV */
	LG_MAX_SOCKETS = 1024,
	LG_MAX_DURATION_S = 3600,
	LG_SCAN_INTERVAL_MS = 10,    /* how often lost requests are looked for */
	LG_SOCK_BUF_BYTES = 4 << 20,
	LG_RTT_BUCKETS_US = 65536,   /* 1 us buckets; the last one is "or more" */
	LG_BAD_SAMPLES = 5,          /* bad responses described on stderr */
	LG_GSO_MAX_SEGMENTS = 64,    /* the kernel's UDP_MAX_SEGMENTS before 6.9 */
};

/* Why a response was bad. Keep verdict_names[] in the same order. */
enum verdict {
	V_OK = 0,
	V_TRUNCATED,
	V_SHORT,
	V_NOT_STUN,
	V_BAD_COOKIE,
	V_BAD_LENGTH,
	V_ATTR_OVERRUN,
	V_FP_NOT_LAST,
	V_FP_BAD_LENGTH,
	V_FP_MISMATCH,
	V_XMA_BAD,
	V_MA_BAD,
	V_NOT_SUCCESS,
	V_UNKNOWN_TXID,
	V_NO_XMA,
	V_XMA_WRONG,
	V_MA_WRONG,
	V_ECHO_MISMATCH,
	V_COUNT
};

static const char *const verdict_names[V_COUNT] = {
	[V_OK] = "ok",
	[V_TRUNCATED] = "truncated-datagram",
	[V_SHORT] = "shorter-than-header",
	[V_NOT_STUN] = "first-two-bits-not-zero",
	[V_BAD_COOKIE] = "bad-magic-cookie",
	[V_BAD_LENGTH] = "length-field-mismatch",
	[V_ATTR_OVERRUN] = "attribute-overruns-message",
	[V_FP_NOT_LAST] = "fingerprint-not-last",
	[V_FP_BAD_LENGTH] = "fingerprint-bad-length",
	[V_FP_MISMATCH] = "fingerprint-mismatch",
	[V_XMA_BAD] = "xor-mapped-address-malformed",
	[V_MA_BAD] = "mapped-address-malformed",
	[V_NOT_SUCCESS] = "not-binding-success",
	[V_UNKNOWN_TXID] = "transaction-id-never-sent",
	[V_NO_XMA] = "no-xor-mapped-address",
	[V_XMA_WRONG] = "xor-mapped-address-not-our-address",
	[V_MA_WRONG] = "mapped-address-not-our-address",
	[V_ECHO_MISMATCH] = "echo-differs-from-request",
};

/* ---- STUN response parser: pure, bounds-checked ------------------------ */

struct stun_view {
	uint16_t type;
	const uint8_t *txid; /* STUN_TXID_LEN bytes inside the message */
	bool has_xma, has_ma, has_fp;
	struct sockaddr_storage xma, ma;
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/*
 * RFC 8489 14.1 (MAPPED-ADDRESS) and 14.2 (XOR-MAPPED-ADDRESS):
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |0 0 0 0 0 0 0 0|    Family     |         (X-)Port              |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                 (X-)Address (32 bits or 128 bits)             |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * With xor set, the port is XORed with the cookie's top 16 bits and the
 * address with the cookie (IPv4) or the cookie then the transaction id (IPv6).
 */
static int stun_decode_addr(const uint8_t *val, size_t len, const uint8_t *hdr, bool xor,
                            struct sockaddr_storage *out)
{
	if (len < 4)
		return -1;
	uint8_t family = val[1];
	uint16_t port = rd16(val + 2);
	if (xor)
		port ^= (uint16_t)(STUN_MAGIC_COOKIE >> 16);

	memset(out, 0, sizeof(*out));
	if (family == STUN_FAMILY_IPV4 && len == 8) {
		struct sockaddr_in *in = (struct sockaddr_in *)out;
		uint8_t a[4];
		for (int i = 0; i < 4; i++)
			a[i] = (uint8_t)(val[4 + i] ^ (xor ? hdr[4 + i] : 0));
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, a, 4);
		return 0;
	}
	if (family == STUN_FAMILY_IPV6 && len == 20) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
		uint8_t a[16];
		/* hdr + 4 is the cookie followed by the transaction id: 16 bytes */
		for (int i = 0; i < 16; i++)
			a[i] = (uint8_t)(val[4 + i] ^ (xor ? hdr[4 + i] : 0));
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		memcpy(&in6->sin6_addr, a, 16);
		return 0;
	}
	return -1;
}

/* RFC 8489 14.7: CRC-32 of the message up to the attribute, XOR "STUN" */
static uint32_t stun_fingerprint(const uint8_t *msg, size_t len)
{
	return (uint32_t)crc32(0L, msg, (uInt)len) ^ STUN_FINGERPRINT_XOR;
}

/* Parse one datagram as a STUN message (RFC 8489 5 and 14). Checks framing,
 * FINGERPRINT (if present) and the address attributes; not the semantics. */
static enum verdict stun_parse(const uint8_t *msg, size_t len, struct stun_view *v)
{
	memset(v, 0, sizeof(*v));
	if (len < STUN_HEADER_LEN)
		return V_SHORT;
	if (msg[0] & 0xC0)
		return V_NOT_STUN;
	if (rd32(msg + 4) != STUN_MAGIC_COOKIE)
		return V_BAD_COOKIE;
	size_t body = rd16(msg + 2);
	if (body % 4 != 0 || STUN_HEADER_LEN + body != len)
		return V_BAD_LENGTH;
	v->type = rd16(msg);
	v->txid = msg + 8;

	size_t off = STUN_HEADER_LEN;
	while (off < len) {
		if (v->has_fp)
			return V_FP_NOT_LAST;
		if (len - off < STUN_ATTR_HEADER_LEN)
			return V_ATTR_OVERRUN;
		uint16_t atype = rd16(msg + off);
		size_t alen = rd16(msg + off + 2);
		size_t padded = (alen + 3) & ~(size_t)3;
		const uint8_t *val = msg + off + STUN_ATTR_HEADER_LEN;
		if (padded > len - off - STUN_ATTR_HEADER_LEN)
			return V_ATTR_OVERRUN;

		/* RFC 8489 14: only the first of a repeated attribute counts */
		if (atype == STUN_ATTR_XOR_MAPPED_ADDRESS && !v->has_xma) {
			if (stun_decode_addr(val, alen, msg, true, &v->xma) < 0)
				return V_XMA_BAD;
			v->has_xma = true;
		} else if (atype == STUN_ATTR_MAPPED_ADDRESS && !v->has_ma) {
			if (stun_decode_addr(val, alen, msg, false, &v->ma) < 0)
				return V_MA_BAD;
			v->has_ma = true;
		} else if (atype == STUN_ATTR_FINGERPRINT) {
			if (alen != STUN_FINGERPRINT_LEN)
				return V_FP_BAD_LENGTH;
			if (rd32(val) != stun_fingerprint(msg, off))
				return V_FP_MISMATCH;
			v->has_fp = true;
		}
		off += STUN_ATTR_HEADER_LEN + padded;
	}
	return V_OK;
}

static bool addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

/* ---- transaction ids ------------------------------------------------------ */

/*
 * A transaction id is 64 random bits, then a 32-bit tag: the CRC-32 of a
 * random key of this run, the socket's number and those 64 bits. So an
 * answer whose id is no longer outstanding (it came after the timeout, or
 * twice) is told apart, without remembering old ids, from an answer with an
 * id that this socket never sent (a server bug): only the first has a good
 * tag. The tag is not a secret (CRC-32 is linear); it only has to catch
 * mistakes.
 *
 * The random bits come from xoshiro256**, seeded once from getrandom():
 * ids must be unpredictable to an off-path attacker only in real clients;
 * here they must be unique, and a syscall per request would cost more than
 * the server's work.
 */
static uint64_t rng_state[4];
static uint8_t txid_key[16];

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void)
{
	uint64_t *s = rng_state;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

static int rng_seed(void)
{
	if (getrandom(rng_state, sizeof(rng_state), 0) != (ssize_t)sizeof(rng_state))
		return -1;
	if (getrandom(txid_key, sizeof(txid_key), 0) != (ssize_t)sizeof(txid_key))
		return -1;
	if ((rng_state[0] | rng_state[1] | rng_state[2] | rng_state[3]) == 0)
		rng_state[0] = 1;
	return 0;
}

/* ---- per-socket transaction bookkeeping ---------------------------------- */

enum slot_state { SLOT_FREE, SLOT_OUTSTANDING };

struct slot {
	uint8_t txid[STUN_TXID_LEN];
	uint8_t state;
	int64_t sent_ns;
};

union gso_cmsg {
	char buf[CMSG_SPACE(sizeof(uint16_t))];
	struct cmsghdr align;
};

/* One UDP socket, connected to the server, with its own window: a slot for
 * each request that may be outstanding. Transaction ids are found through
 * an open-addressing table (linear probing, backward shift deletion) of
 * slot indexes. */
struct lg_sock {
	int fd;
	uLong tag_seed; /* CRC-32 of txid_key and the socket's number */
	struct sockaddr_storage local;
	uint32_t window, outstanding;
	struct slot *slots;
	uint32_t nslots, nfree;
	uint32_t *free_list;
	int32_t *table;
	uint32_t table_mask;
	uint32_t *batch_slots;
	uint8_t *sbuf; /* request i at i * cfg.req_len: back to back, as GSO needs */
	struct iovec *siov;
	struct mmsghdr *smsg;
	union gso_cmsg *gso_ctl; /* one UDP_SEGMENT cmsg per GSO message */
	uint8_t (*rbuf)[LG_RECV_BUF];
	struct iovec *riov;
	struct mmsghdr *rmsg;
};

struct lg_config {
	struct sockaddr_storage server;
	socklen_t server_len;
	char server_text[80];
	double duration_s;
	uint32_t window, batch, nsockets;
	int timeout_ms, warmup_ms;
	bool echo, fingerprint, quiet, gso, busy_poll;
	size_t req_len; /* every request has the same length */
};

struct lg_stats {
	uint64_t sent, ok, ok_in_run, bad, lost, late, refused;
	int64_t waited_ns; /* waiting for answers while measuring: the generator's slack */
	bool measuring;    /* in PHASE_MEASURE: round trips go into rtt_us */
	uint64_t by_verdict[V_COUNT];
	uint64_t rtt_us[LG_RTT_BUCKETS_US];
	int samples;
};

static struct lg_config cfg;
static struct lg_stats st;

static uint32_t table_home(const struct lg_sock *s, const uint8_t *txid)
{
	uint32_t h;
	memcpy(&h, txid, sizeof(h)); /* the id is random: its bytes are the hash */
	return h & s->table_mask;
}

static int32_t table_find(const struct lg_sock *s, const uint8_t *txid)
{
	for (uint32_t i = table_home(s, txid);; i = (i + 1) & s->table_mask) {
		int32_t idx = s->table[i];
		if (idx < 0)
			return -1;
		if (memcmp(s->slots[idx].txid, txid, STUN_TXID_LEN) == 0)
			return (int32_t)i;
	}
}

static void table_insert(struct lg_sock *s, uint32_t slot)
{
	uint32_t i = table_home(s, s->slots[slot].txid);
	while (s->table[i] >= 0)
		i = (i + 1) & s->table_mask;
	s->table[i] = (int32_t)slot;
}

static void table_remove_at(struct lg_sock *s, uint32_t i)
{
	uint32_t m = s->table_mask;
	s->table[i] = -1;
	for (uint32_t j = (i + 1) & m; s->table[j] >= 0; j = (j + 1) & m) {
		uint32_t k = table_home(s, s->slots[s->table[j]].txid);
		/* leave entry j where it is if its home k lies cyclically in (i, j] */
		bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
		if (!stays) {
			s->table[i] = s->table[j];
			s->table[j] = -1;
			i = j;
		}
	}
}

static void slot_release(struct lg_sock *s, uint32_t table_pos)
{
	uint32_t slot = (uint32_t)s->table[table_pos];
	table_remove_at(s, table_pos);
	s->slots[slot].state = SLOT_FREE;
	s->free_list[s->nfree++] = slot;
}

/* Requests unanswered after the timeout are lost: they leave the window. */
static void sock_expire(struct lg_sock *s, int64_t now, int64_t timeout_ns)
{
	for (uint32_t i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];
		if (sl->state != SLOT_OUTSTANDING || now - sl->sent_ns <= timeout_ns)
			continue;
		int32_t pos = table_find(s, sl->txid);
		if (pos >= 0)
			slot_release(s, (uint32_t)pos);
		s->outstanding--;
		st.lost++;
	}
}

static uint32_t txid_tag(const struct lg_sock *s, const uint8_t *nonce)
{
	return (uint32_t)crc32(s->tag_seed, nonce, 8);
}

/* Did this socket ever send this transaction id? */
static bool txid_is_ours(const struct lg_sock *s, const uint8_t *txid)
{
	return rd32(txid + 8) == txid_tag(s, txid);
}

/* ---- sending ------------------------------------------------------------- */

/*
 * RFC 8489 5: a Binding request is the 20-byte header alone, optionally
 * followed by FINGERPRINT (14.7), which must be the last attribute.
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
 */
static size_t request_len(bool fingerprint)
{
	return STUN_HEADER_LEN + (fingerprint ? STUN_ATTR_HEADER_LEN + STUN_FINGERPRINT_LEN : 0);
}

static void request_build(const struct lg_sock *s, uint8_t *buf, uint8_t *txid_out)
{
	uint64_t r = rng_next();
	size_t len = STUN_HEADER_LEN;

	wr16(buf, STUN_BINDING_REQUEST);
	wr16(buf + 2, (uint16_t)(cfg.req_len - STUN_HEADER_LEN));
	wr32(buf + 4, STUN_MAGIC_COOKIE);
	memcpy(buf + 8, &r, 8);
	wr32(buf + 16, txid_tag(s, buf + 8));
	if (cfg.fingerprint) {
		wr16(buf + len, STUN_ATTR_FINGERPRINT);
		wr16(buf + len + 2, STUN_FINGERPRINT_LEN);
		wr32(buf + len + 4, stun_fingerprint(buf, len));
	}
	memcpy(txid_out, buf + 8, STUN_TXID_LEN);
}

/* Send n requests of len bytes each, one datagram per message. Returns how
 * many were sent, or -1 with errno. */
static int send_plain(struct lg_sock *s, uint32_t n, size_t len)
{
	for (uint32_t i = 0; i < n; i++) {
		s->siov[i].iov_base = s->sbuf + i * len;
		s->siov[i].iov_len = len;
		s->smsg[i].msg_hdr.msg_control = NULL;
		s->smsg[i].msg_hdr.msg_controllen = 0;
	}
	return sendmmsg(s->fd, s->smsg, n, MSG_DONTWAIT);
}

/* The same with UDP GSO (UDP_SEGMENT): each message carries up to
 * LG_GSO_MAX_SEGMENTS requests that the kernel splits into datagrams after
 * one pass down the send path. The server still sees one datagram per
 * request; only the generator's cost per request drops, which shows how
 * much slack it has. (On loopback a server answered the split datagrams a
 * few per cent slower than plain ones, so stun_vs_coturn.sh does not use
 * it.) A message is sent whole or not at all. */
static int send_gso(struct lg_sock *s, uint32_t n, size_t len)
{
	uint32_t nmsg = 0;
	for (uint32_t first = 0; first < n; first += LG_GSO_MAX_SEGMENTS, nmsg++) {
		uint32_t segs = n - first < LG_GSO_MAX_SEGMENTS ? n - first : LG_GSO_MAX_SEGMENTS;
		struct msghdr *mh = &s->smsg[nmsg].msg_hdr;
		s->siov[nmsg].iov_base = s->sbuf + first * len;
		s->siov[nmsg].iov_len = segs * len;
		mh->msg_control = s->gso_ctl[nmsg].buf;
		mh->msg_controllen = sizeof(s->gso_ctl[nmsg].buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(mh);
		cm->cmsg_level = SOL_UDP;
		cm->cmsg_type = UDP_SEGMENT;
		cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
		uint16_t gso_size = (uint16_t)len;
		memcpy(CMSG_DATA(cm), &gso_size, sizeof(gso_size));
	}
	int k = sendmmsg(s->fd, s->smsg, nmsg, MSG_DONTWAIT);
	if (k <= 0)
		return k;
	uint32_t sent = (uint32_t)k * LG_GSO_MAX_SEGMENTS;
	return (int)(sent < n ? sent : n);
}

/* Fill the socket's window with one batch. Returns how many were sent. */
static int sock_send(struct lg_sock *s, int64_t now)
{
	uint32_t room = s->window - s->outstanding;
	uint32_t n = cfg.batch;
	if (n > room)
		n = room;
	if (n > s->nfree)
		n = s->nfree;
	if (n == 0)
		return 0;

	size_t len = cfg.req_len;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slot = s->free_list[--s->nfree];
		s->batch_slots[i] = slot;
		request_build(s, s->sbuf + i * len, s->slots[slot].txid);
	}
	int k = cfg.gso ? send_gso(s, n, len) : send_plain(s, n, len);
	if (k < 0) {
		if (errno == ECONNREFUSED)
			st.refused++;
		else if (errno == EIO || errno == EINVAL) {
			perror(cfg.gso ? "stun_loadgen: UDP GSO send (try without -g)" : "stun_loadgen: sendmmsg");
			exit(2);
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
			perror("stun_loadgen: sendmmsg");
			exit(2);
		}
		k = 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slot = s->batch_slots[i];
		if (i < (uint32_t)k) {
			s->slots[slot].state = SLOT_OUTSTANDING;
			s->slots[slot].sent_ns = now;
			table_insert(s, slot);
		} else {
			s->free_list[s->nfree++] = slot;
		}
	}
	s->outstanding += (uint32_t)k;
	st.sent += (uint64_t)k;
	return k;
}

/* ---- receiving ----------------------------------------------------------- */

static void note_bad(enum verdict v, const struct lg_sock *s, const struct stun_view *view)
{
	st.bad++;
	st.by_verdict[v]++;
	if (cfg.quiet || st.samples >= LG_BAD_SAMPLES)
		return;
	st.samples++;
	char local[80], got[80] = "";
	hostport_format((const struct sockaddr *)&s->local, local, sizeof(local));
	if (v == V_XMA_WRONG)
		hostport_format((const struct sockaddr *)&view->xma, got, sizeof(got));
	else if (v == V_MA_WRONG)
		hostport_format((const struct sockaddr *)&view->ma, got, sizeof(got));
	fprintf(stderr, "stun_loadgen: bad response on %s: %s%s%s (type 0x%04x)\n", local,
	        verdict_names[v], got[0] ? " " : "", got, view->type);
}

/* What an answer to an outstanding request must say. */
static enum verdict answer_check(const struct lg_sock *s, const struct stun_view *v, size_t len)
{
	if (cfg.echo) {
		if (v->type != STUN_BINDING_REQUEST || len != cfg.req_len || v->has_fp != cfg.fingerprint)
			return V_ECHO_MISMATCH;
		return V_OK;
	}
	if (v->type != STUN_BINDING_SUCCESS)
		return V_NOT_SUCCESS;
	if (!v->has_xma)
		return V_NO_XMA;
	if (!addr_equal(&v->xma, &s->local))
		return V_XMA_WRONG;
	/* RFC 8489 14.1: MAPPED-ADDRESS, kept for old clients, must agree */
	if (v->has_ma && !addr_equal(&v->ma, &s->local))
		return V_MA_WRONG;
	return V_OK;
}

static void rtt_record(int64_t ns)
{
	int64_t us = ns / 1000;
	if (us < 0)
		us = 0;
	if (us >= LG_RTT_BUCKETS_US)
		us = LG_RTT_BUCKETS_US - 1;
	st.rtt_us[us]++;
}

static void response_handle(struct lg_sock *s, const uint8_t *msg, size_t len, bool truncated,
                            int64_t now)
{
	struct stun_view v;
	enum verdict verdict = truncated ? V_TRUNCATED : stun_parse(msg, len, &v);
	if (truncated)
		memset(&v, 0, sizeof(v));
	if (verdict != V_OK) {
		note_bad(verdict, s, &v);
		return;
	}
	int32_t pos = table_find(s, v.txid);
	if (pos < 0 && !txid_is_ours(s, v.txid)) {
		note_bad(V_UNKNOWN_TXID, s, &v);
		return;
	}
	verdict = answer_check(s, &v, len);
	if (verdict != V_OK)
		note_bad(verdict, s, &v);
	else if (pos < 0)
		st.late++; /* after the timeout (already counted lost), or twice */
	else {
		st.ok++;
		if (st.measuring)
			rtt_record(now - s->slots[s->table[pos]].sent_ns);
	}
	if (pos >= 0) {
		slot_release(s, (uint32_t)pos);
		s->outstanding--;
	}
}

/* Drain one batch of responses. Returns how many datagrams were read. */
static int sock_recv(struct lg_sock *s, int64_t now)
{
	for (uint32_t i = 0; i < cfg.batch; i++)
		s->rmsg[i].msg_hdr.msg_flags = 0;
	int n = recvmmsg(s->fd, s->rmsg, cfg.batch, MSG_DONTWAIT, NULL);
	if (n < 0) {
		if (errno == ECONNREFUSED) {
			st.refused++;
			return 0;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		perror("stun_loadgen: recvmmsg");
		exit(2);
	}
	for (int i = 0; i < n; i++) {
		bool trunc = (s->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
		response_handle(s, s->rbuf[i], s->rmsg[i].msg_len, trunc, now);
	}
	return n;
}

/* ---- setup --------------------------------------------------------------- */

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (p == NULL) {
		fprintf(stderr, "stun_loadgen: out of memory\n");
		exit(2);
	}
	return p;
}

static void sock_bufsize(int fd)
{
	int size = LG_SOCK_BUF_BYTES;
	/* The FORCE variants pass net.core.*mem_max when we are root. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

static int sock_open(struct lg_sock *s, uint32_t index, uint32_t window)
{
	uint8_t idx[4];
	wr32(idx, index);
	s->tag_seed = crc32(crc32(0L, txid_key, sizeof(txid_key)), idx, sizeof(idx));

	s->fd = socket(cfg.server.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -1;
	sock_bufsize(s->fd);
	/* Connected: the kernel drops datagrams from anyone but the server,
	 * and getsockname() then gives the address the server will see. */
	if (connect(s->fd, (const struct sockaddr *)&cfg.server, cfg.server_len) < 0)
		return -1;
	socklen_t len = sizeof(s->local);
	if (getsockname(s->fd, (struct sockaddr *)&s->local, &len) < 0)
		return -1;

	s->window = window;
	s->nslots = window;
	s->slots = xcalloc(s->nslots, sizeof(*s->slots));
	s->free_list = xcalloc(s->nslots, sizeof(*s->free_list));
	for (uint32_t i = 0; i < s->nslots; i++)
		s->free_list[s->nfree++] = s->nslots - 1 - i;
	uint32_t tsize = 1;
	while (tsize < 2 * s->nslots)
		tsize <<= 1;
	s->table = xcalloc(tsize, sizeof(*s->table));
	memset(s->table, 0xff, tsize * sizeof(*s->table)); /* all -1: empty */
	s->table_mask = tsize - 1;

	uint32_t b = cfg.batch;
	s->batch_slots = xcalloc(b, sizeof(*s->batch_slots));
	s->sbuf = xcalloc(b, LG_REQ_MAX);
	s->siov = xcalloc(b, sizeof(*s->siov));
	s->smsg = xcalloc(b, sizeof(*s->smsg));
	s->gso_ctl = xcalloc(b, sizeof(*s->gso_ctl));
	s->rbuf = xcalloc(b, sizeof(*s->rbuf));
	s->riov = xcalloc(b, sizeof(*s->riov));
	s->rmsg = xcalloc(b, sizeof(*s->rmsg));
	for (uint32_t i = 0; i < b; i++) {
		s->smsg[i].msg_hdr.msg_iov = &s->siov[i];
		s->smsg[i].msg_hdr.msg_iovlen = 1;
		s->riov[i].iov_base = s->rbuf[i];
		s->riov[i].iov_len = sizeof(s->rbuf[i]);
		s->rmsg[i].msg_hdr.msg_iov = &s->riov[i];
		s->rmsg[i].msg_hdr.msg_iovlen = 1;
	}
	return 0;
}

static void sock_free(struct lg_sock *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->slots);
	free(s->free_list);
	free(s->table);
	free(s->batch_slots);
	free(s->sbuf);
	free(s->siov);
	free(s->smsg);
	free(s->gso_ctl);
	free(s->rbuf);
	free(s->riov);
	free(s->rmsg);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint32_t rtt_percentile(double p)
{
	uint64_t total = 0, seen = 0;
	for (uint32_t i = 0; i < LG_RTT_BUCKETS_US; i++)
		total += st.rtt_us[i];
	if (total == 0)
		return 0;
	uint64_t want = (uint64_t)(p * (double)total);
	for (uint32_t i = 0; i < LG_RTT_BUCKETS_US; i++) {
		seen += st.rtt_us[i];
		if (seen > want)
			return i;
	}
	return LG_RTT_BUCKETS_US - 1;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: stun_loadgen -s HOST:PORT [-d SECONDS] [-w WINDOW] [-b BATCH] [-n SOCKETS]\n"
	        "                    [-t TIMEOUT_MS] [-W WARMUP_MS] [-f] [-e] [-g] [-p] [-q]\n"
	        "  -s  server, IPv4 or [IPv6] with port (required)\n"
	        "  -d  how long to measure, seconds (default 5, at most %d)\n"
	        "  -w  requests outstanding, all sockets together (default %d)\n"
	        "  -b  messages per sendmmsg/recvmmsg (default %d, at most %d)\n"
	        "  -n  sockets, each with its own source port (default %d)\n"
	        "  -t  a request unanswered this long is lost, ms (default %d)\n"
	        "  -W  send this long before measuring, ms (default %d)\n"
	        "  -f  add FINGERPRINT to each request\n"
	        "  -e  the peer is a UDP echo: an answer is the request itself\n"
	        "  -g  send with UDP GSO (%d requests per send): cheaper for the generator\n"
	        "  -p  busy-poll instead of sleeping in ppoll (needs a CPU of its own)\n"
	        "  -q  quiet: only the summary line\n",
	        LG_MAX_DURATION_S, LG_DEFAULT_WINDOW, LG_DEFAULT_BATCH, LG_MAX_BATCH,
	        LG_DEFAULT_SOCKETS, LG_DEFAULT_TIMEOUT_MS, LG_DEFAULT_WARMUP_MS, LG_GSO_MAX_SEGMENTS);
}

static long parse_num(const char *arg, char opt, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || *arg == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "stun_loadgen: -%c must be a number from %ld to %ld\n", opt, lo, hi);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	const char *server = NULL;
	int c;

	cfg.duration_s = 5;
	cfg.window = LG_DEFAULT_WINDOW;
	cfg.batch = LG_DEFAULT_BATCH;
	cfg.nsockets = LG_DEFAULT_SOCKETS;
	cfg.timeout_ms = LG_DEFAULT_TIMEOUT_MS;
	cfg.warmup_ms = LG_DEFAULT_WARMUP_MS;
	while ((c = getopt(argc, argv, "s:d:w:b:n:t:W:fegpqh")) != -1) {
		switch (c) {
		case 's': server = optarg; break;
		case 'd': {
			char *end;
			cfg.duration_s = strtod(optarg, &end);
			if (*end != '\0' || !(cfg.duration_s > 0 && cfg.duration_s <= LG_MAX_DURATION_S)) {
				fprintf(stderr, "stun_loadgen: -d must be seconds, more than 0 and at most %d\n",
				        LG_MAX_DURATION_S);
				exit(2);
			}
			break;
		}
		case 'w': cfg.window = (uint32_t)parse_num(optarg, 'w', 1, LG_MAX_WINDOW); break;
		case 'b': cfg.batch = (uint32_t)parse_num(optarg, 'b', 1, LG_MAX_BATCH); break;
		case 'n': cfg.nsockets = (uint32_t)parse_num(optarg, 'n', 1, LG_MAX_SOCKETS); break;
		case 't': cfg.timeout_ms = (int)parse_num(optarg, 't', 1, 60000); break;
		case 'W': cfg.warmup_ms = (int)parse_num(optarg, 'W', 0, 60000); break;
		case 'f': cfg.fingerprint = true; break;
		case 'e': cfg.echo = true; break;
		case 'g': cfg.gso = true; break;
		case 'p': cfg.busy_poll = true; break;
		case 'q': cfg.quiet = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (server == NULL || optind != argc) {
		usage(stderr);
		exit(2);
	}
	char err[160];
	if (hostport_parse(server, &cfg.server, &cfg.server_len, err, sizeof(err)) < 0) {
		fprintf(stderr, "stun_loadgen: bad -s %s\n", err);
		exit(2);
	}
	cfg.req_len = request_len(cfg.fingerprint);
	hostport_format((const struct sockaddr *)&cfg.server, cfg.server_text,
	                sizeof(cfg.server_text));
	if (cfg.window < cfg.nsockets) {
		fprintf(stderr, "stun_loadgen: -w %u is less than -n %u; give each socket at least one\n",
		        cfg.window, cfg.nsockets);
		exit(2);
	}
}

/* ---- main loop ----------------------------------------------------------- */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* Sleep until a socket is readable or until the deadline, whichever is first. */
static void wait_readable(struct pollfd *pfd, uint32_t n, int64_t now, int64_t deadline)
{
	int64_t ns = deadline - now;
	if (ns <= 0)
		return;
	struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
	if (ppoll(pfd, n, &ts, NULL) < 0 && errno != EINTR) {
		perror("stun_loadgen: ppoll");
		exit(2);
	}
}

/* The run goes through these phases in order. Only MEASURE counts towards
 * the rate; WARMUP lets the window fill and the server settle, and DRAIN
 * waits (at most one timeout) for the answers still outstanding. */
enum phase { PHASE_WARMUP, PHASE_MEASURE, PHASE_DRAIN, PHASE_DONE };

struct run_clock {
	enum phase phase;
	int64_t measure_start, measure_end, drain_end, next_scan;
	uint64_t ok_at_start; /* st.ok when MEASURE began */
};

static void phase_advance(struct run_clock *rc, struct lg_sock *socks, int64_t now)
{
	const int64_t timeout_ns = (int64_t)cfg.timeout_ms * 1000000;

	if (rc->phase == PHASE_WARMUP && (now >= rc->measure_start || stop_requested)) {
		rc->phase = PHASE_MEASURE;
		rc->measure_start = now;
		rc->ok_at_start = st.ok;
		st.measuring = true;
	}
	if (rc->phase == PHASE_MEASURE && (now >= rc->measure_end || stop_requested)) {
		rc->phase = PHASE_DRAIN;
		rc->measure_end = now;
		st.ok_in_run = st.ok - rc->ok_at_start;
		st.measuring = false;
		rc->drain_end = now + timeout_ns;
	}
	if (now >= rc->next_scan) {
		for (uint32_t i = 0; i < cfg.nsockets; i++)
			sock_expire(&socks[i], now, timeout_ns);
		rc->next_scan = now + (int64_t)LG_SCAN_INTERVAL_MS * 1000000;
	}
	if (rc->phase == PHASE_DRAIN) {
		uint32_t outstanding = 0;
		for (uint32_t i = 0; i < cfg.nsockets; i++)
			outstanding += socks[i].outstanding;
		if (outstanding == 0 || now >= rc->drain_end)
			rc->phase = PHASE_DONE;
	}
}

/* Returns the length of the measured phase in seconds. */
static double run(struct lg_sock *socks, struct pollfd *pfd)
{
	int64_t start = now_ns();
	struct run_clock rc = {
		.phase = PHASE_WARMUP,
		.measure_start = start + (int64_t)cfg.warmup_ms * 1000000,
		.next_scan = start,
	};
	rc.measure_end = rc.measure_start + (int64_t)(cfg.duration_s * 1e9);

	for (;;) {
		int64_t now = now_ns();
		phase_advance(&rc, socks, now);
		if (rc.phase == PHASE_DONE)
			break;
		bool sending = rc.phase != PHASE_DRAIN;
		int progress = 0;
		for (uint32_t i = 0; i < cfg.nsockets; i++) {
			progress += sock_recv(&socks[i], now);
			if (sending)
				progress += sock_send(&socks[i], now);
		}
		if (progress > 0)
			continue;
		if (!cfg.busy_poll) {
			int64_t deadline = rc.next_scan;
			int64_t phase_end = rc.phase == PHASE_WARMUP  ? rc.measure_start
			                    : rc.phase == PHASE_MEASURE ? rc.measure_end
			                                                : rc.drain_end;
			if (phase_end < deadline)
				deadline = phase_end;
			wait_readable(pfd, cfg.nsockets, now, deadline);
		}
		/* else spin: then the server never pays for waking us up */
		if (rc.phase == PHASE_MEASURE)
			st.waited_ns += now_ns() - now;
	}
	/* whatever is still unanswered after the drain is lost */
	for (uint32_t i = 0; i < cfg.nsockets; i++) {
		st.lost += socks[i].outstanding;
		socks[i].outstanding = 0;
	}
	return (double)(rc.measure_end - rc.measure_start) / 1e9;
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	if (rng_seed() < 0) {
		perror("stun_loadgen: getrandom");
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct lg_sock *socks = xcalloc(cfg.nsockets, sizeof(*socks));
	struct pollfd *pfd = xcalloc(cfg.nsockets, sizeof(*pfd));
	int rc = 2;
	for (uint32_t i = 0; i < cfg.nsockets; i++)
		socks[i].fd = -1;
	for (uint32_t i = 0; i < cfg.nsockets; i++) {
		uint32_t w = cfg.window / cfg.nsockets + (i < cfg.window % cfg.nsockets ? 1 : 0);
		if (sock_open(&socks[i], i, w) < 0) {
			fprintf(stderr, "stun_loadgen: cannot open a UDP socket to %s: %s\n",
			        cfg.server_text, strerror(errno));
			goto out;
		}
		pfd[i].fd = socks[i].fd;
		pfd[i].events = POLLIN;
	}

	double elapsed = run(socks, pfd);
	double rate = elapsed > 0 ? (double)st.ok_in_run / elapsed : 0;
	double idle = elapsed > 0 ? 100.0 * (double)st.waited_ns / 1e9 / elapsed : 0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru); /* lets a script tell our CPU use from others' */
	double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	             (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	printf("loadgen: server=%s mode=%s%s%s duration=%.2fs sockets=%u window=%u batch=%u"
	       " sent=%" PRIu64 " ok=%" PRIu64 " bad=%" PRIu64 " lost=%" PRIu64 " late=%" PRIu64
	       " rtt_p50=%uus rtt_p99=%uus idle=%.0f%% cpu=%.2fs rate=%.0f req/s\n",
	       cfg.server_text, cfg.echo ? "echo" : "stun", cfg.gso ? "+gso" : "",
	       cfg.busy_poll ? "+poll" : "", elapsed, cfg.nsockets, cfg.window, cfg.batch, st.sent,
	       st.ok, st.bad, st.lost, st.late, rtt_percentile(0.50), rtt_percentile(0.99), idle,
	       cpu, rate);
	fflush(stdout);

	rc = 0;
	if (st.bad > 0) {
		fprintf(stderr, "stun_loadgen: %" PRIu64 " bad responses:", st.bad);
		for (int v = 1; v < V_COUNT; v++)
			if (st.by_verdict[v])
				fprintf(stderr, " %s=%" PRIu64, verdict_names[v], st.by_verdict[v]);
		fprintf(stderr, "\n");
		rc = 1;
	}
	if (st.ok == 0) {
		fprintf(stderr, "stun_loadgen: no valid answer from %s%s; is the server running there?\n",
		        cfg.server_text, st.refused ? " (port unreachable)" : "");
		rc = 1;
	}
out:
	for (uint32_t i = 0; i < cfg.nsockets; i++)
		sock_free(&socks[i]);
	free(socks);
	free(pfd);
	return rc;
}
