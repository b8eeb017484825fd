/*
 * Fuzz harness for the TURN relay (turn_server.c, turn_req.c, turn_alloc.c,
 * turn_auth.c): one server lives across inputs, so that allocations,
 * permissions and channels made by one input meet the next.
 *
 * The first byte picks what the rest is:
 *   0  a datagram from a client, as it is
 *   1  the same, re-signed here with valid credentials and a fresh NONCE,
 *      so that the fuzzer reaches the methods behind authentication
 *   2  a datagram from a peer to the relayed socket of slot rest[0] % 4
 *   3  the clock moves on rest[0] seconds, and expiry runs
 * Every answer must decode (STUN) or be well-formed ChannelData, stay
 * inside its buffer, and the table must stay inside its limit.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <gnutls/crypto.h>

#include "stun.h"
#include "turn_server.h"
#include "fuzz.h"

enum { SLOTS = 4 };

static const uint8_t secret[] = "fuzz-secret";
static const char user[] = "4000000000:fuzz";
static int open_slots[SLOTS];

static int fake_open(void *ctx, int slot, const struct sockaddr *addr)
{
	(void)ctx;
	(void)addr;
	CHECK(slot >= 0 && slot < SLOTS && !open_slots[slot]);
	open_slots[slot] = 1;
	return 0;
}

static void fake_close(void *ctx, int slot)
{
	(void)ctx;
	CHECK(slot >= 0 && slot < SLOTS && open_slots[slot]);
	open_slots[slot] = 0;
}

static struct turn_server *t;
static uint64_t now = 1000;
static uint8_t key[16];
static struct sockaddr_in client, peer;

static void setup(void)
{
	struct turn_config c = { 0 };
	struct turn_ops ops = { fake_open, fake_close, NULL, NULL };
	char pass[64], buf[256];

	c.secret = secret;
	c.secret_len = sizeof(secret) - 1;
	c.port_lo = 50000;
	c.port_hi = 50009;
	c.max_allocs = SLOTS;
	c.relay_bps = 100000;
	c.relay4.ss_family = AF_INET;
	t = turn_server_new(&c, &ops);
	CHECK(t);
	turn_server_set_wall(t, 1700000000);
	CHECK(!turn_rest_password(secret, sizeof(secret) - 1, user, pass,
	                          sizeof(pass)));
	snprintf(buf, sizeof(buf), "%s:punch:%s", user, pass);
	CHECK(gnutls_hash_fast(GNUTLS_DIG_MD5, buf, strlen(buf), key) == 0);
	client = (struct sockaddr_in){ .sin_family = AF_INET,
	                               .sin_port = htons(40000),
	                               .sin_addr.s_addr = htonl(0xC6336407) };
	peer = (struct sockaddr_in){ .sin_family = AF_INET,
	                             .sin_port = htons(7000),
	                             .sin_addr.s_addr = htonl(0xCB007109) };
}

static void check_out(int rc, const struct turn_out *o, const uint8_t *out,
                      size_t cap, const uint8_t *in, size_t len)
{
	static struct stun_msg m;

	if (rc == TURN_TO_PEER) {
		CHECK(o->slot >= 0 && o->slot < SLOTS && open_slots[o->slot]);
		CHECK(o->data >= in && o->data + o->len <= in + len);
	} else if (rc == TURN_TO_CLIENT) {
		CHECK(o->len <= cap && o->data == out);
		if (turn_is_channel_data(out, o->len))
			CHECK(o->len >= 4 &&
			      (size_t)(out[2] << 8 | out[3]) + 4 == o->len);
		else
			CHECK(stun_decode(&m, out, o->len) == STUN_OK);
	}
	CHECK(turn_alloc_count(t) <= SLOTS);
}

/* A fresh NONCE, from the 401 to a bare Allocate. */
static size_t fresh_nonce(char *nonce, size_t cap)
{
	static const uint8_t txid[STUN_TXID_LEN] = { 1 };
	static struct stun_msg m;
	uint8_t req[64], out[512];
	struct stun_writer w;
	struct turn_out o;
	int n;

	stun_writer_init(&w, req, sizeof(req), STUN_ALLOCATE, STUN_REQUEST, txid);
	stun_put_u32(&w, STUN_ATTR_REQUESTED_TRANSPORT, 17u << 24);
	n = stun_writer_finish(&w);
	CHECK(n > 0);
	CHECK(turn_handle_client(t, 0, req, (size_t)n,
	                         (struct sockaddr *)&client, now, out,
	                         sizeof(out), &o) == TURN_TO_CLIENT);
	CHECK(stun_decode(&m, out, o.len) == STUN_OK);
	CHECK((m.present & STUN_HAS_NONCE) && m.nonce.len < cap);
	memcpy(nonce, m.nonce.ptr, m.nonce.len);
	return m.nonce.len;
}

/* The input's attributes, then USERNAME, REALM, NONCE, MESSAGE-INTEGRITY. */
static size_t resign(const uint8_t *in, size_t len, uint8_t *buf, size_t cap)
{
	static struct stun_msg m;
	struct stun_writer w;
	char nonce[64];
	size_t nlen;
	int n;

	if (stun_decode(&m, in, len) != STUN_OK)
		return 0;
	nlen = fresh_nonce(nonce, sizeof(nonce));
	stun_writer_init(&w, buf, cap, m.method, m.cls, m.txid);
	for (size_t i = 0; i < m.attrs_count; i++) {
		uint16_t type = m.attrs[i].type;

		if (type == STUN_ATTR_MESSAGE_INTEGRITY ||
		    type == STUN_ATTR_MESSAGE_INTEGRITY_SHA256 ||
		    type == STUN_ATTR_FINGERPRINT)
			break;
		if (type == STUN_ATTR_USERNAME || type == STUN_ATTR_REALM ||
		    type == STUN_ATTR_NONCE)
			continue;
		stun_put_bytes(&w, type, m.attrs[i].value, m.attrs[i].len);
	}
	stun_put_bytes(&w, STUN_ATTR_USERNAME, user, strlen(user));
	stun_put_bytes(&w, STUN_ATTR_REALM, "punch", 5);
	stun_put_bytes(&w, STUN_ATTR_NONCE, nonce, nlen);
	stun_put_integrity(&w, key, sizeof(key));
	n = stun_writer_finish(&w);
	return n > 0 ? (size_t)n : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[TURN_OUT_MAX], buf[4096];
	struct turn_out o;
	const uint8_t *in;
	size_t len;
	int rc;

	if (!t)
		setup();
	if (size < 1)
		return 0;
	in = data + 1;
	len = size - 1;
	switch (data[0] % 4) {
	case 0:
		rc = turn_handle_client(t, 0, in, len, (struct sockaddr *)&client,
		                        now, out, sizeof(out), &o);
		break;
	case 1:
		if (!(len = resign(in, len, buf, sizeof(buf))))
			return 0;
		in = buf;
		rc = turn_handle_client(t, 0, in, len, (struct sockaddr *)&client,
		                        now, out, sizeof(out), &o);
		break;
	case 2:
		if (!len)
			return 0;
		rc = turn_handle_peer(t, in[0] % SLOTS, in + 1, len - 1,
		                      (struct sockaddr *)&peer, now, out,
		                      sizeof(out), &o);
		in++;
		len--;
		break;
	default:
		now += 1000ULL * (len ? in[0] : 1);
		turn_tick(t, now);
		CHECK(turn_alloc_count(t) <= SLOTS);
		return 0;
	}
	check_out(rc, &o, out, sizeof(out), in, len);
	now += 10;
	return 0;
}
