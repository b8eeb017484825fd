/*
 * Fuzz harness for the TURN client (turn_client.c): whatever a relay, or
 * someone pretending to be one, sends it, in each of its states.
 *
 * The first byte picks the state the client is brought to, by answers
 * forged here as a relay would give them:
 *   0  Allocate sent, bare (no key yet)
 *   1  the 401 answered: Allocate sent with credentials
 *   2  allocated, with a permission and a channel bound to the peer
 * The rest is a list of steps, each [op][length: 2 bytes][bytes]:
 *   0  the bytes as a STUN message from the relay (if they decode)
 *   1  the same, made an answer to the client's latest request of the
 *      same method as the bytes (its transaction id), signed with the key
 *   2  the bytes as ChannelData from the relay
 *   3  the clock moves on bytes[0] seconds (1 if none), and tick runs
 *   4  the bytes sent to the peer through the relay
 *   5  the bytes' first 4 as an IPv4 address to permit
 * Everything the client sends must decode (or be well-formed
 * ChannelData), each deadline must lie in the future, the relayed address
 * be there exactly when allocated, and data handed up lie within the
 * input.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <gnutls/crypto.h>

#include "stun.h"
#include "turn_client.h"
#include "fuzz.h"

enum { SENT_MAX = 16 };

static const char user[] = "4000000000:fuzz";
static const char pass[] = "fuzz-password";

static struct turn_client tc;
static uint64_t now;
static uint8_t key[16];
static struct sockaddr_in peer, relayed;
static const uint8_t *in_lo, *in_hi; /* the input, for data_fn's check */

/* The client's last requests, for answers to match. */
static struct {
	uint8_t buf[TURNC_DATA_MAX + 64];
	size_t len;
} sent[SENT_MAX];
static size_t nsent;

static void on_send(void *ctx, const uint8_t *buf, size_t len)
{
	static struct stun_msg m;

	(void)ctx;
	CHECK(len <= sizeof(sent[0].buf));
	if ((buf[0] & 0xC0) == 0x40) {
		CHECK(len >= TURNC_CHANNEL_HEADER &&
		      (size_t)(buf[2] << 8 | buf[3]) + TURNC_CHANNEL_HEADER ==
		              len);
		return;
	}
	CHECK(stun_decode(&m, buf, len) == STUN_OK);
	memcpy(sent[nsent % SENT_MAX].buf, buf, len);
	sent[nsent % SENT_MAX].len = len;
	nsent++;
}

static void on_data(void *ctx, const struct sockaddr *from,
                    const uint8_t *buf, size_t len)
{
	(void)ctx;
	CHECK(from->sa_family == AF_INET || from->sa_family == AF_INET6);
	CHECK(len == 0 || (buf >= in_lo && buf + len <= in_hi));
}

static void on_event(void *ctx, int event, const void *arg)
{
	(void)ctx;
	CHECK(arg);
	if (event == TURN_CLIENT_EV_FAILED)
		CHECK(strlen(arg) < TURNC_REASON_MAX);
}

/* The transaction id of the latest request of method; 0 if none. */
static int latest(uint16_t method, uint8_t txid[STUN_TXID_LEN])
{
	static struct stun_msg m;

	for (size_t i = nsent; i > 0 && i + SENT_MAX > nsent; i--) {
		const uint8_t *b = sent[(i - 1) % SENT_MAX].buf;

		if (stun_decode(&m, b, sent[(i - 1) % SENT_MAX].len) == STUN_OK &&
		    m.cls == STUN_REQUEST && m.method == method) {
			memcpy(txid, m.txid, STUN_TXID_LEN);
			return 1;
		}
	}
	return 0;
}

static void deliver(const uint8_t *buf, size_t len)
{
	static struct stun_msg m;

	if (stun_decode(&m, buf, len) == STUN_OK)
		turn_client_on_stun(&tc, buf, len, &m, now);
}

/* An answer to the latest request of method, as a relay would write it. */
static void answer(uint16_t method, uint8_t cls, uint16_t code, int sign)
{
	uint8_t buf[512], txid[STUN_TXID_LEN];
	struct stun_writer w;
	int n;

	if (!latest(method, txid))
		return;
	stun_writer_init(&w, buf, sizeof(buf), method, cls, txid);
	if (code) {
		stun_put_error(&w, code, "Unauthorized");
		stun_put_bytes(&w, STUN_ATTR_REALM, "punch", 5);
		stun_put_bytes(&w, STUN_ATTR_NONCE, "fuzz-nonce", 10);
	}
	if (method == STUN_ALLOCATE && cls == STUN_SUCCESS) {
		stun_put_xor_addr(&w, STUN_ATTR_XOR_RELAYED_ADDRESS,
		                  (const struct sockaddr *)&relayed);
		stun_put_u32(&w, STUN_ATTR_LIFETIME, 600);
	}
	if (sign)
		stun_put_integrity(&w, key, sizeof(key));
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	CHECK(n > 0);
	deliver(buf, (size_t)n);
}

static void setup(int state)
{
	char buf[128];

	now = 1000;
	nsent = 0;
	CHECK(turn_client_init(&tc, user, pass, on_send, on_data, on_event,
	                       NULL) == 0);
	peer = (struct sockaddr_in){ .sin_family = AF_INET,
	                             .sin_port = htons(7000),
	                             .sin_addr.s_addr = htonl(0xCB007109) };
	relayed = (struct sockaddr_in){ .sin_family = AF_INET,
	                                .sin_port = htons(50000),
	                                .sin_addr.s_addr = htonl(0xC0000201) };
	snprintf(buf, sizeof(buf), "%s:punch:%s", user, pass);
	CHECK(gnutls_hash_fast(GNUTLS_DIG_MD5, buf, strlen(buf), key) == 0);
	turn_client_allocate(&tc, AF_INET, now);
	if (state < 1)
		return;
	answer(STUN_ALLOCATE, STUN_ERROR, 401, 0);
	if (state < 2)
		return;
	answer(STUN_ALLOCATE, STUN_SUCCESS, 0, 1);
	CHECK(turn_client_is_allocated(&tc));
	CHECK(turn_client_send(&tc, (const struct sockaddr *)&peer,
	                       (const uint8_t *)"x", 1, now) == 0);
	answer(STUN_CREATE_PERMISSION, STUN_SUCCESS, 0, 1);
	answer(STUN_CHANNEL_BIND, STUN_SUCCESS, 0, 1);
}

/* Step 1: the bytes' attributes in an answer to our request. */
static void resigned(const uint8_t *in, size_t len)
{
	static struct stun_msg m;
	uint8_t buf[4096], txid[STUN_TXID_LEN];
	struct stun_writer w;
	int n;

	if (stun_decode(&m, in, len) != STUN_OK || !latest(m.method, txid))
		return;
	stun_writer_init(&w, buf, sizeof(buf), m.method, m.cls, txid);
	for (size_t i = 0; i < m.attrs_count; i++) {
		uint16_t type = m.attrs[i].type;

		if (type == STUN_ATTR_MESSAGE_INTEGRITY ||
		    type == STUN_ATTR_MESSAGE_INTEGRITY_SHA256 ||
		    type == STUN_ATTR_FINGERPRINT)
			break;
		stun_put_bytes(&w, type, m.attrs[i].value, m.attrs[i].len);
	}
	stun_put_integrity(&w, key, sizeof(key));
	stun_put_fingerprint(&w);
	if ((n = stun_writer_finish(&w)) > 0) {
		in_lo = buf;
		in_hi = buf + n;
		deliver(buf, (size_t)n);
	}
}

static void check_state(void)
{
	uint64_t d = turn_client_tick(&tc, now);

	CHECK(d > now);
	CHECK(!turn_client_is_allocated(&tc) == !turn_client_relayed(&tc));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in other;

	if (size < 1)
		return 0;
	setup(data[0] % 3);
	data++;
	size--;
	while (size >= 3) {
		uint8_t op = data[0];
		size_t len = (size_t)(data[1] << 8 | data[2]);
		const uint8_t *b = data + 3;

		if (len > size - 3)
			len = size - 3;
		in_lo = b;
		in_hi = b + len;
		switch (op % 6) {
		case 0:
			deliver(b, len);
			break;
		case 1:
			resigned(b, len);
			break;
		case 2:
			turn_client_on_channel(&tc, b, len);
			break;
		case 3:
			now += 1000ULL * (len ? b[0] : 1);
			break;
		case 4:
			turn_client_send(&tc, (const struct sockaddr *)&peer, b,
			                 len, now);
			break;
		default:
			other = peer;
			if (len >= 4)
				memcpy(&other.sin_addr, b, 4);
			turn_client_permit(&tc, (const struct sockaddr *)&other,
			                   now);
			break;
		}
		check_state();
		data += 3 + len;
		size -= 3 + len;
	}
	turn_client_release(&tc, now);
	return 0;
}
