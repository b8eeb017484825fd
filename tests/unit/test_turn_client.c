/*
 * turn_client.c against punch's own relay (turn_server.c), in process, on
 * a fake clock: what the client sends goes through a queue into
 * turn_handle_client(), and what the relay answers comes back into the
 * client.  Credentials (401, 438, a wrong password), permissions, Send
 * indications, channels, data from the peer both ways, refreshes, no
 * answer, release, and hostile input (bad ChannelData, bad integrity).
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <gnutls/crypto.h>

#include "turn_client.h"
#include "turn_server.h"

#define WALL0 1700000000ULL        /* Unix time at now = 0 */
#define USER "1800000000:alice"    /* a REST username, expiry after WALL0 */

static const uint8_t secret[] = "s3cret";

enum { QMAX = 64,
       LOGMAX = 512,
       MSG_MAX = 2200 };

struct msg {
	uint8_t buf[MSG_MAX];
	size_t len;
	uint64_t at;
};

/* The whole world: relay, client, peer, clock, and what each saw. */
struct net {
	struct turn_server *srv;
	struct turn_client tc;
	char pass[64];
	struct sockaddr_storage client, peer;
	uint64_t now;
	int drop_all;                 /* the relay is not there */
	int unclaimed;                /* the relay's answers the client
	                               * did not take */

	int slot, opens, closes;      /* the relay's relayed socket */
	uint16_t relay_port;

	struct msg q[QMAX];           /* client -> relay, undelivered */
	size_t qhead, qtail;
	struct msg sent[LOGMAX];      /* everything the client sent */
	size_t nsent;
	struct msg to_peer[16];       /* out of the relayed socket */
	struct sockaddr_storage to_peer_addr[16];
	size_t npeer;
	int last_was_channel;         /* the relay's last message to us */

	uint8_t got[MSG_MAX];         /* data_fn */
	size_t got_len;
	struct sockaddr_storage got_from;
	int ngot;

	int allocated, failed;        /* events */
	uint64_t failed_at;
	char reason[TURNC_REASON_MAX];
	struct sockaddr_storage relayed;
};

static struct net N;

static int fake_open(void *ctx, int slot, const struct sockaddr *addr)
{
	(void)ctx;
	N.slot = slot;
	N.relay_port = addr_port(addr);
	N.opens++;
	return 0;
}

static void fake_close(void *ctx, int slot)
{
	(void)ctx;
	assert_int_equal(slot, N.slot);
	N.closes++;
}

static const struct turn_ops ops = { fake_open, fake_close, NULL, NULL };

static void on_send(void *ctx, const uint8_t *buf, size_t len)
{
	struct msg *m;

	assert_ptr_equal(ctx, &N);
	assert_true(len <= MSG_MAX);
	assert_true(N.nsent < LOGMAX);
	m = &N.sent[N.nsent++];
	memcpy(m->buf, buf, len);
	m->len = len;
	m->at = N.now;
	if (N.drop_all)
		return;
	assert_true(N.qtail - N.qhead < QMAX);
	N.q[N.qtail++ % QMAX] = *m;
}

static void on_data(void *ctx, const struct sockaddr *peer,
                    const uint8_t *buf, size_t len)
{
	(void)ctx;
	assert_true(len <= sizeof(N.got));
	memcpy(N.got, buf, len);
	N.got_len = len;
	memset(&N.got_from, 0, sizeof(N.got_from));
	memcpy(&N.got_from, peer, addr_len(peer));
	N.ngot++;
}

static void on_event(void *ctx, int event, const void *arg)
{
	(void)ctx;
	if (event == TURN_CLIENT_EV_ALLOCATED) {
		const struct sockaddr *sa = arg;

		N.allocated++;
		memset(&N.relayed, 0, sizeof(N.relayed));
		memcpy(&N.relayed, sa, addr_len(sa));
	} else {
		assert_int_equal(event, TURN_CLIENT_EV_FAILED);
		N.failed++;
		N.failed_at = N.now;
		snprintf(N.reason, sizeof(N.reason), "%s", (const char *)arg);
	}
}

/* A relay on 192.0.2.1 and a client with password pass (NULL: the right
 * one). */
static void setup(const char *pass)
{
	struct turn_config c = { 0 };

	memset(&N, 0, sizeof(N));
	N.slot = -1;
	c.secret = secret;
	c.secret_len = sizeof(secret) - 1;
	c.relay4 = sa_make("192.0.2.1", 0);
	c.port_lo = 50000;
	c.port_hi = 50009;
	N.srv = turn_server_new(&c, &ops);
	assert_non_null(N.srv);
	turn_server_set_wall(N.srv, WALL0);
	assert_int_equal(turn_rest_password(secret, sizeof(secret) - 1, USER,
	                                    N.pass, sizeof(N.pass)),
	                 0);
	N.client = sa_make("198.51.100.7", 40000);
	N.peer = sa_make("203.0.113.9", 7000);
	assert_int_equal(turn_client_init(&N.tc, USER, pass ? pass : N.pass,
	                                  on_send, on_data, on_event, &N),
	                 0);
}

static void teardown(void)
{
	turn_server_free(N.srv);
}

/* What the relay sends to the client, into the client. */
static void to_client(const uint8_t *buf, size_t len)
{
	static struct stun_msg m;

	N.last_was_channel = turn_is_channel_data(buf, len);
	if (N.last_was_channel) {
		assert_int_equal(turn_client_on_channel(&N.tc, buf, len), 1);
		return;
	}
	decode_ok(&m, buf, len);
	if (!turn_client_on_stun(&N.tc, buf, len, &m, N.now))
		N.unclaimed++;
}

/* Deliver one queued message to the relay, and its answer back; 0 when
 * the queue was empty. */
static int pump_one(void)
{
	static uint8_t out[TURN_OUT_MAX];
	struct turn_out o;
	struct msg m;
	int rc;

	if (N.qhead == N.qtail)
		return 0;
	m = N.q[N.qhead++ % QMAX];
	rc = turn_handle_client(N.srv, 0, m.buf, m.len, SA(N.client), N.now,
	                        out, sizeof(out), &o);
	if (rc == TURN_TO_CLIENT) {
		to_client(out, o.len);
	} else if (rc == TURN_TO_PEER) {
		assert_true(N.npeer < 16);
		assert_int_equal(o.slot, N.slot);
		N.to_peer[N.npeer].len = o.len;
		memcpy(N.to_peer[N.npeer].buf, o.data, o.len);
		N.to_peer_addr[N.npeer++] = o.to;
	}
	return 1;
}

/* Deliver everything; every answer must be the client's. */
static void pump(void)
{
	for (int i = 0; i < 1000 && pump_one(); i++)
		;
	assert_true(N.qhead == N.qtail);
	assert_int_equal(N.unclaimed, 0);
}

/* A datagram from the peer to the relayed address. */
static void from_peer(const char *data)
{
	static uint8_t out[TURN_OUT_MAX];
	struct turn_out o;

	assert_int_equal(turn_handle_peer(N.srv, N.slot, (const uint8_t *)data,
	                                  strlen(data), SA(N.peer), N.now, out,
	                                  sizeof(out), &o),
	                 TURN_TO_CLIENT);
	to_client(out, o.len);
}

/* Run both sides' timers up to until, delivering everything at once. */
static void run_until(uint64_t until)
{
	for (int i = 0; i < 100000; i++) {
		uint64_t d = turn_client_tick(&N.tc, N.now);

		turn_tick(N.srv, N.now);
		pump();
		if (d > until)
			break;
		assert_true(d > N.now); /* no busy loop */
		N.now = d;
	}
	N.now = until;
	turn_client_tick(&N.tc, N.now);
	turn_tick(N.srv, N.now);
	pump();
}

static void allocate(void)
{
	turn_client_allocate(&N.tc, AF_INET, N.now);
	pump();
	assert_int_equal(N.failed, 0);
	assert_int_equal(N.allocated, 1);
}

/* ---- looking at what the client sent ---------------------------------- */

static struct stun_msg sm;

static const struct stun_msg *sent_msg(size_t i)
{
	assert_true(i < N.nsent);
	decode_ok(&sm, N.sent[i].buf, N.sent[i].len);
	return &sm;
}

/* How many requests (or indications) of method the client sent. */
static int count_sent(uint16_t method)
{
	int n = 0;

	for (size_t i = 0; i < N.nsent; i++)
		if (stun_is_stun(N.sent[i].buf, N.sent[i].len) &&
		    sent_msg(i)->method == method)
			n++;
	return n;
}

/* The index of the n-th (0-based) message of method, or -1. */
static long nth_sent(uint16_t method, int n)
{
	for (size_t i = 0; i < N.nsent; i++)
		if (stun_is_stun(N.sent[i].buf, N.sent[i].len) &&
		    sent_msg(i)->method == method && n-- == 0)
			return (long)i;
	return -1;
}

static uint32_t attr_u32(const struct stun_msg *m, uint16_t type)
{
	const struct stun_attr *a = stun_attr_find(m, type);

	assert_non_null(a);
	assert_int_equal(a->len, 4);
	return (uint32_t)a->value[0] << 24 | (uint32_t)a->value[1] << 16 |
	       (uint32_t)a->value[2] << 8 | a->value[3];
}

static void long_term_key(const char *pass, uint8_t key[16])
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s:punch:%s", USER, pass);
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_MD5, buf, strlen(buf), key),
	                 0);
}

/* ---- allocation ---------------------------------------------------------- */

static void test_allocate_with_challenge(void **state)
{
	const uint32_t auth = STUN_HAS_USERNAME | STUN_HAS_REALM |
	                      STUN_HAS_NONCE | STUN_HAS_INTEGRITY |
	                      STUN_HAS_FINGERPRINT;
	struct sockaddr_storage want = sa_make("192.0.2.1", 0);
	uint8_t key[16];
	const struct stun_msg *m;

	(void)state;
	setup(NULL);
	assert_null(turn_client_relayed(&N.tc));
	allocate();
	/* The first Allocate goes bare, the second with credentials */
	assert_size(N.nsent, 2);
	m = sent_msg(0);
	assert_int_equal(m->method, STUN_ALLOCATE);
	assert_int_equal(m->present & auth, STUN_HAS_FINGERPRINT);
	assert_int_equal(attr_u32(m, STUN_ATTR_REQUESTED_TRANSPORT) >> 24, 17);
	assert_null(stun_attr_find(m, STUN_ATTR_REQUESTED_ADDRESS_FAMILY));
	m = sent_msg(1);
	assert_int_equal(m->method, STUN_ALLOCATE);
	assert_int_equal(m->present & auth, auth);
	assert_bytes_str(m->username, USER);
	assert_bytes_str(m->realm, "punch");
	long_term_key(N.pass, key);
	assert_stun_rc(stun_check_integrity(m, N.sent[1].buf, N.sent[1].len,
	                                    key, sizeof(key)),
	               STUN_OK);
	/* The relayed address the relay opened */
	addr_set_port(SA(want), N.relay_port);
	assert_int_equal(N.opens, 1);
	assert_addr(&N.relayed, &want);
	assert_true(turn_client_is_allocated(&N.tc));
	assert_non_null(turn_client_relayed(&N.tc));
	assert_size(turn_alloc_count(N.srv), 1);
	teardown();
}

static void test_wrong_password_fails(void **state)
{
	(void)state;
	setup("not-the-password");
	turn_client_allocate(&N.tc, AF_INET, 0);
	pump();
	assert_int_equal(N.allocated, 0);
	assert_int_equal(N.failed, 1);
	assert_non_null(strstr(N.reason, "401"));
	assert_non_null(strstr(N.reason, "wrong credentials"));
	/* One bare Allocate, one with credentials, and no loop */
	assert_size(N.nsent, 2);
	assert_u64(turn_client_tick(&N.tc, 100000), UINT64_MAX);
	assert_size(N.nsent, 2);
	assert_size(turn_alloc_count(N.srv), 0);
	teardown();
}

static void test_stale_nonce_retried(void **state)
{
	uint64_t stale;

	(void)state;
	setup(NULL);
	turn_client_allocate(&N.tc, AF_INET, 0);
	assert_int_equal(pump_one(), 1); /* the bare Allocate: 401 */
	/* The credentials reach the relay after the nonce's life: 438, and
	 * the client tries again with the new one */
	N.now = (TURN_NONCE_S + 1) * 1000ULL;
	pump();
	assert_int_equal(N.allocated, 1);
	assert_int_equal(N.failed, 0);
	assert_u64(turn_stats(N.srv)->stale, 1);
	assert_int_equal(count_sent(STUN_ALLOCATE), 3);

	/* Later, a CreatePermission with a nonce gone stale */
	run_until(N.now + (TURN_NONCE_S + 1) * 1000ULL);
	stale = turn_stats(N.srv)->stale;
	assert_int_equal(turn_client_permit(&N.tc, SA(N.peer), N.now), 0);
	pump();
	assert_u64(turn_stats(N.srv)->stale, stale + 1);
	assert_int_equal(count_sent(STUN_CREATE_PERMISSION), 2);
	assert_int_equal(N.tc.perms[0].state, TURNC_ITEM_OK);
	from_peer("after 438");
	assert_int_equal(N.ngot, 1);
	assert_int_equal(N.failed, 0);
	teardown();
}

/* ---- data ------------------------------------------------------------------ */

static void test_permit_then_send_indication(void **state)
{
	const struct stun_msg *m;
	long i;

	(void)state;
	setup(NULL);
	allocate();
	assert_int_equal(turn_client_permit(&N.tc, SA(N.peer), N.now), 0);
	assert_int_equal(turn_client_permit(&N.tc, SA(N.peer), N.now), 0);
	pump();
	assert_int_equal(count_sent(STUN_CREATE_PERMISSION), 1);
	assert_int_equal(turn_client_send(&N.tc, SA(N.peer),
	                                  (const uint8_t *)"hello", 5, N.now),
	                 0);
	/* A Send indication, without integrity */
	i = nth_sent(STUN_SEND, 0);
	assert_true(i >= 0);
	m = sent_msg((size_t)i);
	assert_int_equal(m->cls, STUN_INDICATION);
	assert_int_equal(m->present & STUN_HAS_INTEGRITY, 0);
	pump();
	assert_size(N.npeer, 1);
	assert_size(N.to_peer[0].len, 5);
	assert_memory_equal(N.to_peer[0].buf, "hello", 5);
	assert_addr(&N.to_peer_addr[0], &N.peer);
	teardown();
}

static void test_channel_after_first_send(void **state)
{
	const struct stun_msg *m;
	const uint8_t *cd;
	long send_i, bind_i;

	(void)state;
	setup(NULL);
	allocate();
	/* No permit: send asks for it */
	assert_int_equal(turn_client_send(&N.tc, SA(N.peer),
	                                  (const uint8_t *)"one", 3, N.now),
	                 0);
	send_i = nth_sent(STUN_SEND, 0);
	bind_i = nth_sent(STUN_CHANNEL_BIND, 0);
	assert_true(nth_sent(STUN_CREATE_PERMISSION, 0) >= 0);
	assert_true(send_i >= 0 && bind_i > send_i);
	m = sent_msg((size_t)bind_i);
	assert_int_equal(attr_u32(m, STUN_ATTR_CHANNEL_NUMBER) >> 16,
	                 TURNC_CHANNEL_FIRST);
	assert_true(m->present & STUN_HAS_INTEGRITY);
	pump();
	assert_size(N.npeer, 1);
	assert_memory_equal(N.to_peer[0].buf, "one", 3);

	/* Bound: the next datagram goes as ChannelData, 4 bytes of header */
	assert_int_equal(turn_client_send(&N.tc, SA(N.peer),
	                                  (const uint8_t *)"second", 6, N.now),
	                 0);
	cd = N.sent[N.nsent - 1].buf;
	assert_size(N.sent[N.nsent - 1].len, TURNC_CHANNEL_HEADER + 6);
	assert_int_equal(cd[0] << 8 | cd[1], TURNC_CHANNEL_FIRST);
	assert_int_equal(cd[2] << 8 | cd[3], 6);
	assert_int_equal(count_sent(STUN_CHANNEL_BIND), 1);
	pump();
	assert_size(N.npeer, 2);
	assert_size(N.to_peer[1].len, 6);
	assert_memory_equal(N.to_peer[1].buf, "second", 6);
	assert_addr(&N.to_peer_addr[1], &N.peer);
	teardown();
}

static void test_data_back_both_ways(void **state)
{
	(void)state;
	setup(NULL);
	allocate();
	assert_int_equal(turn_client_permit(&N.tc, SA(N.peer), N.now), 0);
	pump();
	/* No channel yet: a Data indication */
	from_peer("pong");
	assert_false(N.last_was_channel);
	assert_int_equal(N.ngot, 1);
	assert_size(N.got_len, 4);
	assert_memory_equal(N.got, "pong", 4);
	assert_addr(&N.got_from, &N.peer);
	/* A channel: ChannelData */
	assert_int_equal(turn_client_send(&N.tc, SA(N.peer),
	                                  (const uint8_t *)"x", 1, N.now),
	                 0);
	pump();
	from_peer("pong two");
	assert_true(N.last_was_channel);
	assert_int_equal(N.ngot, 2);
	assert_size(N.got_len, 8);
	assert_memory_equal(N.got, "pong two", 8);
	assert_addr(&N.got_from, &N.peer);
	assert_u64(N.tc.malformed, 0);
	teardown();
}

/* ---- timers ------------------------------------------------------------- */

static void test_refreshes_keep_it_alive(void **state)
{
	uint64_t alloc_at, perm_at, chan_at, end;
	long i;

	(void)state;
	setup(NULL);
	allocate();
	alloc_at = N.sent[nth_sent(STUN_ALLOCATE, 1)].at;
	assert_int_equal(turn_client_send(&N.tc, SA(N.peer),
	                                  (const uint8_t *)"x", 1, N.now),
	                 0);
	pump();
	perm_at = N.sent[nth_sent(STUN_CREATE_PERMISSION, 0)].at;
	chan_at = N.sent[nth_sent(STUN_CHANNEL_BIND, 0)].at;
	/* Past every lifetime: allocation, permission, channel */
	end = alloc_at + (TURN_LIFETIME_DEFAULT_S + TURN_CHANNEL_S) * 1000ULL;
	run_until(end);
	assert_int_equal(N.failed, 0);
	/* Each refreshed before its end */
	assert_true((i = nth_sent(STUN_REFRESH, 0)) >= 0);
	assert_true(N.sent[i].at > alloc_at &&
	            N.sent[i].at < alloc_at + TURN_LIFETIME_DEFAULT_S * 1000ULL);
	assert_true((i = nth_sent(STUN_CREATE_PERMISSION, 1)) >= 0);
	assert_true(N.sent[i].at > perm_at &&
	            N.sent[i].at < perm_at + TURN_PERMISSION_S * 1000ULL);
	assert_true((i = nth_sent(STUN_CHANNEL_BIND, 1)) >= 0);
	assert_true(N.sent[i].at > chan_at &&
	            N.sent[i].at < chan_at + TURN_CHANNEL_S * 1000ULL);
	assert_u64(turn_stats(N.srv)->refreshed, (uint64_t)count_sent(STUN_REFRESH));
	/* And the relay agrees: still allocated, data still flows */
	turn_tick(N.srv, N.now);
	assert_size(turn_alloc_count(N.srv), 1);
	assert_u64(turn_stats(N.srv)->expired, 0);
	from_peer("still here");
	assert_true(N.last_was_channel);
	assert_memory_equal(N.got, "still here", 10);
	assert_int_equal(turn_client_send(&N.tc, SA(N.peer),
	                                  (const uint8_t *)"me too", 6, N.now),
	                 0);
	pump();
	assert_memory_equal(N.to_peer[N.npeer - 1].buf, "me too", 6);
	teardown();
}

static void test_no_answer_fails(void **state)
{
	uint64_t give_up = 0, wait = RTX_RTO_MS;

	(void)state;
	setup(NULL);
	N.drop_all = 1;
	turn_client_allocate(&N.tc, AF_INET, 0);
	run_until(200000);
	assert_int_equal(N.failed, 1);
	assert_int_equal(N.allocated, 0);
	assert_str(N.reason, "no answer from the relay");
	assert_size(N.nsent, RTX_RC);
	/* RFC 8489 6.2.1: Rc sends, doubling waits, then Rm * RTO; jitter
	 * only lengthens them */
	for (int k = 0; k < RTX_RC - 1; k++, wait *= 2)
		give_up += wait;
	give_up += (uint64_t)RTX_RM * RTX_RTO_MS;
	assert_true(N.failed_at >= give_up);
	assert_true(N.failed_at <= give_up + give_up * RTX_JITTER_PCT / 100);
	teardown();
}

static void test_release_sends_lifetime_zero(void **state)
{
	const struct stun_msg *m;
	size_t before;

	(void)state;
	setup(NULL);
	allocate();
	assert_int_equal(turn_client_permit(&N.tc, SA(N.peer), N.now), 0);
	pump();
	before = N.nsent;
	turn_client_release(&N.tc, N.now);
	assert_size(N.nsent, before + 1);
	m = sent_msg(before);
	assert_int_equal(m->method, STUN_REFRESH);
	assert_int_equal(attr_u32(m, STUN_ATTR_LIFETIME), 0);
	assert_true(m->present & STUN_HAS_INTEGRITY);
	/* Sent once and forgotten: the relay's answer is no one's */
	assert_int_equal(pump_one(), 1);
	assert_int_equal(N.unclaimed, 1);
	assert_size(turn_alloc_count(N.srv), 0);
	assert_int_equal(N.closes, 1);
	assert_false(turn_client_is_allocated(&N.tc));
	assert_null(turn_client_relayed(&N.tc));
	/* Nothing more, ever */
	assert_u64(turn_client_tick(&N.tc, N.now + 3600000), UINT64_MAX);
	assert_size(N.nsent, before + 1);
	assert_int_equal(turn_client_send(&N.tc, SA(N.peer),
	                                  (const uint8_t *)"x", 1, N.now),
	                 -1);
	teardown();
}

/* ---- hostile input ------------------------------------------------------ */

static void test_bad_channel_data_dropped(void **state)
{
	static const uint8_t good[] = { 0x40, 0x00, 0x00, 0x03, 'a', 'b', 'c' };
	static const uint8_t padded[] = { 0x40, 0x00, 0x00, 0x03, 'a', 'b', 'c',
		                          0 };
	static const uint8_t shorter[] = { 0x40, 0x00, 0x00 };
	static const uint8_t beyond[] = { 0x40, 0x00, 0x00, 0x0A, 'a', 'b', 'c' };
	static const uint8_t overpad[] = { 0x40, 0x00, 0x00, 0x01, 'a', 0, 0, 0,
		                           0 };
	static const uint8_t unbound[] = { 0x40, 0x05, 0x00, 0x01, 'a' };
	static const uint8_t outside[] = { 0x7F, 0xFF, 0x00, 0x01, 'a' };
	static const struct {
		const uint8_t *b;
		size_t len;
	} bad[] = {
		{ shorter, sizeof(shorter) }, { beyond, sizeof(beyond) }, { overpad, sizeof(overpad) }, { unbound, sizeof(unbound) }, { outside, sizeof(outside) }
	};
	uint8_t dind[128], txid[STUN_TXID_LEN] = { 7 };
	struct stun_writer w;
	struct stun_msg m;
	int n, got;

	(void)state;
	setup(NULL);
	/* Before any allocation, even good ChannelData is no one's */
	assert_int_equal(turn_client_on_channel(&N.tc, good, sizeof(good)), 0);
	assert_u64(N.tc.malformed, 1);
	allocate();
	assert_int_equal(turn_client_send(&N.tc, SA(N.peer),
	                                  (const uint8_t *)"x", 1, N.now),
	                 0);
	pump();
	assert_int_equal(N.tc.chans[0].state, TURNC_ITEM_OK);
	assert_int_equal(turn_client_on_channel(&N.tc, good, sizeof(good)), 1);
	assert_int_equal(turn_client_on_channel(&N.tc, padded, sizeof(padded)),
	                 1);
	assert_int_equal(N.ngot, 2);
	assert_size(N.got_len, 3);
	got = N.ngot;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(turn_client_on_channel(&N.tc, bad[i].b,
		                                        bad[i].len),
		                 0);
	assert_u64(N.tc.malformed, 1 + sizeof(bad) / sizeof(bad[0]));
	assert_int_equal(N.ngot, got);

	/* A Data indication without DATA, and one from an IP never
	 * permitted: consumed (they are TURN's), dropped, counted */
	stun_writer_init(&w, dind, sizeof(dind), STUN_DATA, STUN_INDICATION,
	                 txid);
	stun_put_xor_addr(&w, STUN_ATTR_XOR_PEER_ADDRESS, SA(N.peer));
	n = stun_writer_finish(&w);
	assert_true(n > 0);
	decode_ok(&m, dind, (size_t)n);
	assert_int_equal(turn_client_on_stun(&N.tc, dind, (size_t)n, &m, N.now),
	                 1);
	{
		struct sockaddr_storage stranger = sa_make("203.0.113.66", 7000);

		stun_writer_init(&w, dind, sizeof(dind), STUN_DATA,
		                 STUN_INDICATION, txid);
		stun_put_xor_addr(&w, STUN_ATTR_XOR_PEER_ADDRESS, SA(stranger));
		stun_put_bytes(&w, STUN_ATTR_DATA, "hi", 2);
		n = stun_writer_finish(&w);
		assert_true(n > 0);
		decode_ok(&m, dind, (size_t)n);
		assert_int_equal(turn_client_on_stun(&N.tc, dind, (size_t)n, &m,
		                                     N.now),
		                 1);
	}
	assert_u64(N.tc.malformed, 3 + sizeof(bad) / sizeof(bad[0]));
	assert_int_equal(N.ngot, got);
	teardown();
}

/* A success response to our request, signed with key (or not at all). */
static size_t forge(uint16_t method, uint8_t cls, const uint8_t *txid,
                    const uint8_t *key, uint16_t code, const char *reason,
                    uint8_t *buf, size_t cap)
{
	struct stun_writer w;
	int n;

	stun_writer_init(&w, buf, cap, method, cls, txid);
	if (code)
		stun_put_error(&w, code, reason);
	if (key)
		stun_put_integrity(&w, key, 16);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	assert_true(n > 0);
	return (size_t)n;
}

/* The transaction id of the message the client sent last. */
static const uint8_t *last_txid(void)
{
	return sent_msg(N.nsent - 1)->txid;
}

static void test_bad_integrity_dropped(void **state)
{
	static const uint8_t wrong[16] = { 1, 2, 3 };
	uint8_t buf[256], txid[STUN_TXID_LEN], key[16];
	struct stun_msg m;
	size_t n;

	(void)state;
	setup(NULL);
	allocate();
	assert_int_equal(turn_client_permit(&N.tc, SA(N.peer), N.now), 0);
	memcpy(txid, last_txid(), sizeof(txid));
	/* Signed with another key, and not signed at all: dropped */
	n = forge(STUN_CREATE_PERMISSION, STUN_SUCCESS, txid, wrong, 0, NULL,
	          buf, sizeof(buf));
	decode_ok(&m, buf, n);
	assert_int_equal(turn_client_on_stun(&N.tc, buf, n, &m, N.now), 1);
	n = forge(STUN_CREATE_PERMISSION, STUN_SUCCESS, txid, NULL, 0, NULL,
	          buf, sizeof(buf));
	decode_ok(&m, buf, n);
	assert_int_equal(turn_client_on_stun(&N.tc, buf, n, &m, N.now), 1);
	assert_u64(N.tc.bad_integrity, 2);
	assert_int_equal(N.tc.perms[0].state, TURNC_ITEM_WANTED);
	/* A signed error with a bad signature too */
	n = forge(STUN_CREATE_PERMISSION, STUN_ERROR, txid, wrong, 403,
	          "Forbidden", buf, sizeof(buf));
	decode_ok(&m, buf, n);
	assert_int_equal(turn_client_on_stun(&N.tc, buf, n, &m, N.now), 1);
	assert_u64(N.tc.bad_integrity, 3);
	assert_int_equal(N.tc.perms[0].state, TURNC_ITEM_WANTED);
	/* Not our transaction: not ours at all */
	txid[0] ^= 1;
	long_term_key(N.pass, key);
	n = forge(STUN_CREATE_PERMISSION, STUN_SUCCESS, txid, key, 0, NULL,
	          buf, sizeof(buf));
	decode_ok(&m, buf, n);
	assert_int_equal(turn_client_on_stun(&N.tc, buf, n, &m, N.now), 0);
	/* The relay's own answer still counts */
	pump();
	assert_int_equal(N.tc.perms[0].state, TURNC_ITEM_OK);
	assert_u64(N.tc.bad_integrity, 3);
	teardown();
}

/* ---- errors ---------------------------------------------------------------- */

static void test_allocate_errors(void **state)
{
	uint8_t buf[256];
	struct stun_msg m;
	size_t n;

	(void)state;
	/* The relay has no IPv6 address: 440 */
	setup(NULL);
	turn_client_allocate(&N.tc, AF_INET6, 0);
	assert_non_null(stun_attr_find(sent_msg(0),
	                               STUN_ATTR_REQUESTED_ADDRESS_FAMILY));
	pump();
	assert_int_equal(N.failed, 1);
	assert_str(N.reason, "440 Address Family not Supported");
	teardown();

	/* 486 from a relay, its reason phrase escaped for the terminal */
	setup(NULL);
	turn_client_allocate(&N.tc, AF_INET, 0);
	n = forge(STUN_ALLOCATE, STUN_ERROR, last_txid(), NULL, 486,
	          "Quota\x1b]0;owned\x07", buf, sizeof(buf));
	decode_ok(&m, buf, n);
	assert_int_equal(turn_client_on_stun(&N.tc, buf, n, &m, 0), 1);
	assert_int_equal(N.failed, 1);
	assert_str(N.reason, "486 Quota\\x1b]0;owned\\x07");
	assert_u64(turn_client_tick(&N.tc, 100000), UINT64_MAX);
	teardown();
}

static void test_permission_refused_not_fatal(void **state)
{
	struct sockaddr_storage private_peer = sa_make("10.0.0.1", 7000);

	(void)state;
	setup(NULL);
	allocate();
	/* The relay refuses private peers: 403, logged, not asked again */
	assert_int_equal(turn_client_permit(&N.tc, SA(private_peer), N.now), 0);
	pump();
	assert_u64(turn_stats(N.srv)->forbidden, 1);
	assert_true(turn_client_is_allocated(&N.tc));
	assert_int_equal(N.failed, 0);
	assert_int_equal(turn_client_permit(&N.tc, SA(private_peer), N.now), -1);
	assert_int_equal(turn_client_send(&N.tc, SA(private_peer),
	                                  (const uint8_t *)"x", 1, N.now),
	                 -1);
	assert_int_equal(count_sent(STUN_CREATE_PERMISSION), 1);
	/* Nor is anything taken from it */
	{
		uint8_t buf[128], txid[STUN_TXID_LEN] = { 9 };
		struct stun_writer w;
		struct stun_msg m;
		int n;

		stun_writer_init(&w, buf, sizeof(buf), STUN_DATA,
		                 STUN_INDICATION, txid);
		stun_put_xor_addr(&w, STUN_ATTR_XOR_PEER_ADDRESS,
		                  SA(private_peer));
		stun_put_bytes(&w, STUN_ATTR_DATA, "hi", 2);
		n = stun_writer_finish(&w);
		assert_true(n > 0);
		decode_ok(&m, buf, (size_t)n);
		assert_int_equal(turn_client_on_stun(&N.tc, buf, (size_t)n, &m,
		                                     N.now),
		                 1);
		assert_int_equal(N.ngot, 0);
		assert_u64(N.tc.malformed, 1);
	}
	/* Another peer still works */
	assert_int_equal(turn_client_send(&N.tc, SA(N.peer),
	                                  (const uint8_t *)"ok", 2, N.now),
	                 0);
	pump();
	assert_size(N.npeer, 1);
	/* A peer of the other family is refused at once */
	{
		struct sockaddr_storage v6 = sa_make("2001:db8::1", 7000);

		assert_int_equal(turn_client_permit(&N.tc, SA(v6), N.now), -1);
	}
	teardown();
}

static void test_permit_before_allocation(void **state)
{
	(void)state;
	setup(NULL);
	assert_int_equal(turn_client_send(&N.tc, SA(N.peer),
	                                  (const uint8_t *)"x", 1, 0),
	                 -1);
	assert_int_equal(turn_client_permit(&N.tc, SA(N.peer), 0), 0);
	assert_size(N.nsent, 0);
	allocate();
	/* Asked for as soon as the allocation exists */
	assert_int_equal(count_sent(STUN_CREATE_PERMISSION), 1);
	from_peer("early bird");
	assert_int_equal(N.ngot, 1);
	assert_memory_equal(N.got, "early bird", 10);
	teardown();
}

/* -turn's argument: turn:USER:PASS@HOST:PORT, USER may hold ':'. */
static void test_uri_parse(void **state)
{
	char user[TURNC_USERNAME_MAX + 1], pass[TURNC_PASSWORD_MAX + 1];
	char host[64], longer[300];
	const char *why = NULL;
	static const char *const bad[] = {
		"stun:u:p@h:1",        /* not turn: */
		"turn:u:p",            /* no @ */
		"turn:up@h:1",         /* no password */
		"turn::p@h:1",         /* empty user */
		"turn:u:@h:1",         /* empty password */
		"turn:u:p@",           /* no host */
		"turn:u:p@host",       /* no port */
		"turn:u:p@host:",      /* empty port */
		"turn:u:p w@h:1",      /* a space */
		"turn:u:p\x01@h:1",   /* a control character */
	};

	(void)state;
	assert_int_equal(turn_uri_parse("turn:alice:s3cret@198.51.100.10:3479",
	                                user, pass, host, sizeof(host), &why),
	                 0);
	assert_string_equal(user, "alice");
	assert_string_equal(pass, "s3cret");
	assert_string_equal(host, "198.51.100.10:3479");
	/* a REST username, and a password with '@' is split at the last */
	assert_int_equal(turn_uri_parse("turn:1700000000:bob:pw@[2001:db8::1]:3478",
	                                user, pass, host, sizeof(host), &why),
	                 0);
	assert_string_equal(user, "1700000000:bob");
	assert_string_equal(pass, "pw");
	assert_string_equal(host, "[2001:db8::1]:3478");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (!turn_uri_parse(bad[i], user, pass, host, sizeof(host), &why))
			fail_msg("accepted '%s'", bad[i]);
		assert_non_null(why);
	}
	/* too long for the host buffer, or for the credentials */
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	memcpy(longer, "turn:u:p@", 9);
	memcpy(longer + sizeof(longer) - 3, ":1", 2);
	assert_int_equal(turn_uri_parse(longer, user, pass, host, sizeof(host),
	                                &why),
	                 -1);
	memcpy(longer, "turn:", 5);
	longer[200] = ':';
	longer[250] = '@';
	assert_int_equal(turn_uri_parse(longer, user, pass, host, sizeof(host),
	                                &why),
	                 -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_parse),
		cmocka_unit_test(test_allocate_with_challenge),
		cmocka_unit_test(test_wrong_password_fails),
		cmocka_unit_test(test_stale_nonce_retried),
		cmocka_unit_test(test_permit_then_send_indication),
		cmocka_unit_test(test_channel_after_first_send),
		cmocka_unit_test(test_data_back_both_ways),
		cmocka_unit_test(test_refreshes_keep_it_alive),
		cmocka_unit_test(test_no_answer_fails),
		cmocka_unit_test(test_release_sends_lifetime_zero),
		cmocka_unit_test(test_bad_channel_data_dropped),
		cmocka_unit_test(test_bad_integrity_dropped),
		cmocka_unit_test(test_allocate_errors),
		cmocka_unit_test(test_permission_refused_not_fatal),
		cmocka_unit_test(test_permit_before_allocation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
