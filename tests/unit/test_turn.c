/*
 * turn_server.c on a fake clock with fake sockets: credentials (401, 438),
 * allocations and their lifetimes, permissions, channels, quotas (486,
 * 508, 403) and expiry.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <gnutls/crypto.h>

#include "turn_server.h"

#define WALL0 1700000000ULL  /* Unix time at now = 0 */
#define FUTURE "1800000000"  /* an expiry well after WALL0 */

static const uint8_t secret[] = "s3cret";

/* The fake socket layer: which slots are open, on which port, and ports
 * another program holds. */
struct fake {
	int open[64];
	uint16_t port[64];
	int opens, closes;
	uint16_t busy_port;
};

static struct fake fk;

static int fake_open(void *ctx, int slot, const struct sockaddr *addr)
{
	(void)ctx;
	assert_true(slot >= 0 && slot < 64);
	assert_false(fk.open[slot]);
	if (addr_port(addr) == fk.busy_port)
		return -1;
	fk.open[slot] = 1;
	fk.port[slot] = addr_port(addr);
	fk.opens++;
	return 0;
}

static void fake_close(void *ctx, int slot)
{
	(void)ctx;
	assert_true(fk.open[slot]);
	fk.open[slot] = 0;
	fk.closes++;
}

static const struct turn_ops ops = { fake_open, fake_close, NULL, NULL };

static struct turn_config config(void)
{
	struct turn_config c = { 0 };

	c.secret = secret;
	c.secret_len = sizeof(secret) - 1;
	c.relay4 = sa_make("192.0.2.1", 0);
	c.port_lo = 50000;
	c.port_hi = 50009;
	c.max_allocs = 8;
	c.max_per_prefix = 4;
	return c;
}

static struct turn_server *server(const struct turn_config *c)
{
	struct turn_server *t;

	memset(&fk, 0, sizeof(fk));
	t = turn_server_new(c, &ops);
	assert_non_null(t);
	turn_server_set_wall(t, WALL0);
	return t;
}

/* A client: its address, credentials and the nonce it was last given. */
struct client {
	struct sockaddr_storage addr;
	char user[64], pass[64];
	char nonce[64];
	uint8_t key[16];
	uint8_t txid[STUN_TXID_LEN];
};

static void client_init(struct client *c, const char *ip, uint16_t port,
                        const char *user, const uint8_t *sec, size_t sec_len)
{
	char buf[256];

	memset(c, 0, sizeof(*c));
	c->addr = sa_make(ip, port);
	snprintf(c->user, sizeof(c->user), "%s", user);
	assert_int_equal(turn_rest_password(sec, sec_len, user, c->pass,
	                                    sizeof(c->pass)),
	                 0);
	snprintf(buf, sizeof(buf), "%s:punch:%s", c->user, c->pass);
	gnutls_hash_fast(GNUTLS_DIG_MD5, buf, strlen(buf), c->key);
}

enum { WITH_AUTH = 1,
       NO_AUTH = 0 };

struct extra {
	int lifetime;                 /* -1: none */
	int transport;                /* -1: none, else the protocol */
	const struct sockaddr_storage *peer;
	int channel;
	const char *data;
};

static size_t request(struct client *c, uint16_t method, struct extra x,
                      int auth, uint8_t *buf, size_t cap)
{
	struct stun_writer w;
	int n;

	c->txid[0]++;
	stun_writer_init(&w, buf, cap, method,
	                 method == STUN_SEND ? STUN_INDICATION : STUN_REQUEST,
	                 c->txid);
	if (x.transport >= 0)
		stun_put_u32(&w, STUN_ATTR_REQUESTED_TRANSPORT,
		             (uint32_t)x.transport << 24);
	if (x.lifetime >= 0)
		stun_put_u32(&w, STUN_ATTR_LIFETIME, (uint32_t)x.lifetime);
	if (x.channel)
		stun_put_u32(&w, STUN_ATTR_CHANNEL_NUMBER,
		             (uint32_t)x.channel << 16);
	if (x.peer)
		stun_put_xor_addr(&w, STUN_ATTR_XOR_PEER_ADDRESS,
		                  (const struct sockaddr *)x.peer);
	if (x.data)
		stun_put_bytes(&w, STUN_ATTR_DATA, x.data, strlen(x.data));
	if (auth) {
		stun_put_bytes(&w, STUN_ATTR_USERNAME, c->user, strlen(c->user));
		stun_put_bytes(&w, STUN_ATTR_REALM, "punch", 5);
		stun_put_bytes(&w, STUN_ATTR_NONCE, c->nonce, strlen(c->nonce));
		stun_put_integrity(&w, c->key, sizeof(c->key));
	}
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	assert_true(n > 0);
	return (size_t)n;
}

static uint8_t out[TURN_OUT_MAX];
static struct stun_msg resp;

/* Send a request and decode the response; returns its error code, or 0
 * for a success.  A 401/438 updates the client's nonce. */
static int exchange(struct turn_server *t, struct client *c, uint16_t method,
                    struct extra x, int auth, uint64_t now)
{
	uint8_t buf[1024];
	size_t n = request(c, method, x, auth, buf, sizeof(buf));
	struct turn_out o;
	int rc = turn_handle_client(t, 0, buf, n, (struct sockaddr *)&c->addr,
	                            now, out, sizeof(out), &o);

	assert_int_equal(rc, TURN_TO_CLIENT);
	assert_int_equal(o.sock, 0);
	assert_addr(&o.to, &c->addr);
	decode_ok(&resp, out, o.len);
	assert_int_equal(resp.method, method);
	if (resp.present & STUN_HAS_NONCE) {
		assert_true(resp.nonce.len < sizeof(c->nonce));
		memcpy(c->nonce, resp.nonce.ptr, resp.nonce.len);
		c->nonce[resp.nonce.len] = '\0';
		assert_bytes_str(resp.realm, "punch");
	}
	if (resp.cls == STUN_SUCCESS) {
		/* Every success is signed with the long-term key */
		assert_int_equal(stun_check_integrity(&resp, out, o.len, c->key,
		                                      sizeof(c->key)),
		                 STUN_OK);
		return 0;
	}
	assert_int_equal(resp.cls, STUN_ERROR);
	return resp.error_code;
}

#define ALLOC ((struct extra){ .lifetime = -1, .transport = 17 })
#define NONE ((struct extra){ .lifetime = -1, .transport = -1 })

static const struct stun_attr *find_attr(uint16_t type)
{
	for (size_t i = 0; i < resp.attrs_count; i++)
		if (resp.attrs[i].type == type)
			return &resp.attrs[i];
	return NULL;
}

static uint32_t resp_lifetime(void)
{
	const struct stun_attr *a = find_attr(STUN_ATTR_LIFETIME);

	assert_non_null(a);
	return (uint32_t)a->value[0] << 24 | (uint32_t)a->value[1] << 16 |
	       (uint32_t)a->value[2] << 8 | a->value[3];
}

static struct sockaddr_storage resp_relayed(void)
{
	const struct stun_attr *a = find_attr(STUN_ATTR_XOR_RELAYED_ADDRESS);
	struct sockaddr_storage ss;

	assert_non_null(a);
	assert_int_equal(stun_addr_decode(&ss, a->value, a->len, resp.txid), 0);
	return ss;
}

/* Allocate with the usual challenge first; returns the relayed port. */
static uint16_t allocate(struct turn_server *t, struct client *c,
                         uint64_t now)
{
	struct sockaddr_storage relayed;

	assert_int_equal(exchange(t, c, STUN_ALLOCATE, ALLOC, NO_AUTH, now), 401);
	assert_int_equal(exchange(t, c, STUN_ALLOCATE, ALLOC, WITH_AUTH, now), 0);
	relayed = resp_relayed();
	assert_int_equal(relayed.ss_family, AF_INET);
	return addr_port((struct sockaddr *)&relayed);
}

static void test_rest_password(void **state)
{
	char pass[64];
	static const uint8_t sec[] = "secret";

	(void)state;
	/* Python: base64(hmac.new(b'secret', b'1700000000:alice', sha1)) */
	assert_int_equal(turn_rest_password(sec, 6, "1700000000:alice", pass,
	                                    sizeof(pass)),
	                 0);
	assert_string_equal(pass, "d8soP47RbdIKLDUOpnJPVQyq5Ts=");
}

static void test_no_integrity_gets_401_and_nothing(void **state)
{
	struct turn_config cfg = config();
	struct turn_server *t = server(&cfg);
	struct client c;

	(void)state;
	client_init(&c, "198.51.100.7", 40000, FUTURE ":alice", secret, 6);
	for (int i = 0; i < 5; i++)
		assert_int_equal(exchange(t, &c, STUN_ALLOCATE, ALLOC, NO_AUTH,
		                          1000),
		                 401);
	assert_true(strlen(c.nonce) > 0);
	assert_size(turn_alloc_count(t), 0);
	assert_int_equal(fk.opens, 0);
	turn_server_free(t);
}

/* A bare 20-byte Allocate would get an 88-byte 401: more than 4 times its
 * size, so it gets nothing. */
static void test_amplification_bound(void **state)
{
	struct turn_config cfg = config();
	struct turn_server *t = server(&cfg);
	struct client c;
	struct turn_out o;
	uint8_t buf[64];
	struct stun_writer w;
	int n;

	(void)state;
	client_init(&c, "198.51.100.7", 40000, FUTURE ":alice", secret, 6);
	stun_writer_init(&w, buf, sizeof(buf), STUN_ALLOCATE, STUN_REQUEST,
	                 c.txid);
	n = stun_writer_finish(&w);
	assert_int_equal(n, 20);
	assert_int_equal(turn_handle_client(t, 0, buf, (size_t)n,
	                                    (struct sockaddr *)&c.addr, 0, out,
	                                    sizeof(out), &o),
	                 TURN_DROP);
	/* With REQUESTED-TRANSPORT (28 bytes) the 401 fits */
	assert_int_equal(exchange(t, &c, STUN_ALLOCATE, ALLOC, NO_AUTH, 0), 401);
	turn_server_free(t);
}

static void test_bad_credentials_get_401(void **state)
{
	static const uint8_t wrong[] = "not-the-secret";
	struct turn_config cfg = config();
	struct turn_server *t = server(&cfg);
	struct client bad, expired, noname;

	(void)state;
	client_init(&bad, "198.51.100.7", 40000, FUTURE ":mallory", wrong, 14);
	assert_int_equal(exchange(t, &bad, STUN_ALLOCATE, ALLOC, NO_AUTH, 0), 401);
	assert_int_equal(exchange(t, &bad, STUN_ALLOCATE, ALLOC, WITH_AUTH, 0),
	                 401);
	/* Right secret, but the username's time has passed */
	client_init(&expired, "198.51.100.8", 40000, "1699999000:old", secret, 6);
	assert_int_equal(exchange(t, &expired, STUN_ALLOCATE, ALLOC, NO_AUTH, 0),
	                 401);
	assert_int_equal(exchange(t, &expired, STUN_ALLOCATE, ALLOC, WITH_AUTH,
	                          0),
	                 401);
	/* Not a REST username at all */
	client_init(&noname, "198.51.100.9", 40000, "alice", secret, 6);
	assert_int_equal(exchange(t, &noname, STUN_ALLOCATE, ALLOC, NO_AUTH, 0),
	                 401);
	assert_int_equal(exchange(t, &noname, STUN_ALLOCATE, ALLOC, WITH_AUTH, 0),
	                 401);
	assert_size(turn_alloc_count(t), 0);
	assert_int_equal(fk.opens, 0);
	turn_server_free(t);
}

static void test_stale_nonce_gets_438(void **state)
{
	struct turn_config cfg = config();
	struct turn_server *t = server(&cfg);
	struct client c, other;

	(void)state;
	client_init(&c, "198.51.100.7", 40000, FUTURE ":alice", secret, 6);
	assert_int_equal(exchange(t, &c, STUN_ALLOCATE, ALLOC, NO_AUTH, 0), 401);
	/* Past the nonce's life: 438 and a fresh one that works */
	assert_int_equal(exchange(t, &c, STUN_ALLOCATE, ALLOC, WITH_AUTH,
	                          (TURN_NONCE_S + 1) * 1000ULL),
	                 438);
	assert_size(turn_alloc_count(t), 0);
	assert_int_equal(exchange(t, &c, STUN_ALLOCATE, ALLOC, WITH_AUTH,
	                          (TURN_NONCE_S + 2) * 1000ULL),
	                 0);
	/* A nonce made for another address is not good here */
	client_init(&other, "203.0.113.5", 40000, FUTURE ":bob", secret, 6);
	memcpy(other.nonce, c.nonce, sizeof(c.nonce));
	assert_int_equal(exchange(t, &other, STUN_ALLOCATE, ALLOC, WITH_AUTH,
	                          (TURN_NONCE_S + 2) * 1000ULL),
	                 438);
	turn_server_free(t);
}

static void test_allocate_refresh_delete(void **state)
{
	struct turn_config cfg = config();
	struct turn_server *t = server(&cfg);
	struct client c;
	uint16_t port;
	struct extra x = NONE;
	struct sockaddr_storage relayed;

	(void)state;
	client_init(&c, "198.51.100.7", 40000, FUTURE ":alice", secret, 6);
	port = allocate(t, &c, 0);
	assert_true(port >= 50000 && port <= 50009);
	assert_int_equal(resp_lifetime(), TURN_LIFETIME_DEFAULT_S);
	assert_size(turn_alloc_count(t), 1);
	assert_true(turn_alloc_size() <= 4096);

	/* A retransmission gets the same answer; a new Allocate gets 437 */
	c.txid[0]--;
	assert_int_equal(exchange(t, &c, STUN_ALLOCATE, ALLOC, WITH_AUTH, 10), 0);
	relayed = resp_relayed();
	assert_int_equal(addr_port((struct sockaddr *)&relayed), port);
	assert_int_equal(exchange(t, &c, STUN_ALLOCATE, ALLOC, WITH_AUTH, 10),
	                 437);

	/* Refresh: past the maximum is cut to it */
	x.lifetime = 100000;
	assert_int_equal(exchange(t, &c, STUN_REFRESH, x, WITH_AUTH, 20), 0);
	assert_int_equal(resp_lifetime(), TURN_LIFETIME_MAX_S);
	/* Lifetime 0 deletes, and closes the relayed socket */
	x.lifetime = 0;
	assert_int_equal(exchange(t, &c, STUN_REFRESH, x, WITH_AUTH, 30), 0);
	assert_int_equal(resp_lifetime(), 0);
	assert_size(turn_alloc_count(t), 0);
	assert_int_equal(fk.closes, 1);
	/* Nothing left to refresh */
	x.lifetime = 600;
	assert_int_equal(exchange(t, &c, STUN_REFRESH, x, WITH_AUTH, 40), 437);
	turn_server_free(t);
}

static void test_allocate_checks(void **state)
{
	struct turn_config cfg = config();
	struct turn_server *t = server(&cfg);
	struct client c;
	struct extra tcp = ALLOC, none = NONE;

	(void)state;
	client_init(&c, "198.51.100.7", 40000, FUTURE ":alice", secret, 6);
	assert_int_equal(exchange(t, &c, STUN_ALLOCATE, ALLOC, NO_AUTH, 0), 401);
	tcp.transport = 6;
	assert_int_equal(exchange(t, &c, STUN_ALLOCATE, tcp, WITH_AUTH, 0), 442);
	assert_int_equal(exchange(t, &c, STUN_ALLOCATE, none, WITH_AUTH, 0), 400);
	/* Other methods before any allocation */
	assert_int_equal(exchange(t, &c, STUN_CREATE_PERMISSION, none, WITH_AUTH,
	                          0),
	                 437);
	assert_size(turn_alloc_count(t), 0);
	turn_server_free(t);
}

static void test_permission_required(void **state)
{
	struct turn_config cfg = config();
	struct turn_server *t = server(&cfg);
	struct sockaddr_storage peer = sa_make("203.0.113.9", 7000);
	struct sockaddr_storage stranger = sa_make("203.0.113.10", 7000);
	struct extra send = NONE, perm = NONE;
	struct client c;
	struct turn_out o;
	uint8_t buf[512];
	size_t n;
	int rc;

	(void)state;
	client_init(&c, "198.51.100.7", 40000, FUTURE ":alice", secret, 6);
	allocate(t, &c, 0);
	send.peer = &peer;
	send.data = "hello";
	n = request(&c, STUN_SEND, send, NO_AUTH, buf, sizeof(buf));
	/* No permission yet: dropped */
	assert_int_equal(turn_handle_client(t, 0, buf, n,
	                                    (struct sockaddr *)&c.addr, 100, out,
	                                    sizeof(out), &o),
	                 TURN_DROP);
	/* Nor does the peer reach the client */
	assert_int_equal(turn_handle_peer(t, 0, (const uint8_t *)"hi", 2,
	                                  (struct sockaddr *)&peer, 100, out,
	                                  sizeof(out), &o),
	                 TURN_DROP);
	perm.peer = &peer;
	assert_int_equal(exchange(t, &c, STUN_CREATE_PERMISSION, perm, WITH_AUTH,
	                          200),
	                 0);
	rc = turn_handle_client(t, 0, buf, n, (struct sockaddr *)&c.addr, 300,
	                        out, sizeof(out), &o);
	assert_int_equal(rc, TURN_TO_PEER);
	assert_int_equal(o.slot, 0);
	assert_addr(&o.to, &peer);
	assert_size(o.len, 5);
	assert_memory_equal(o.data, "hello", 5);
	/* The peer answers: a Data indication to the client */
	rc = turn_handle_peer(t, 0, (const uint8_t *)"back", 4,
	                      (struct sockaddr *)&peer, 400, out, sizeof(out), &o);
	assert_int_equal(rc, TURN_TO_CLIENT);
	assert_addr(&o.to, &c.addr);
	decode_ok(&resp, out, o.len);
	assert_int_equal(resp.method, STUN_DATA);
	assert_int_equal(resp.cls, STUN_INDICATION);
	assert_memory_equal(find_attr(STUN_ATTR_DATA)->value, "back", 4);
	/* Another address: still nothing */
	assert_int_equal(turn_handle_peer(t, 0, (const uint8_t *)"hi", 2,
	                                  (struct sockaddr *)&stranger, 400, out,
	                                  sizeof(out), &o),
	                 TURN_DROP);
	/* The permission lapses after 5 minutes */
	assert_int_equal(turn_handle_client(t, 0, buf, n,
	                                    (struct sockaddr *)&c.addr,
	                                    200 + TURN_PERMISSION_S * 1000ULL,
	                                    out, sizeof(out), &o),
	                 TURN_DROP);
	assert_true(turn_stats(t)->no_permission >= 3);
	turn_server_free(t);
}

static void test_forbidden_peers(void **state)
{
	struct turn_config cfg = config();
	struct turn_server *t = server(&cfg);
	static const char *bad[] = { "127.0.0.1", "10.1.2.3", "192.168.1.1",
		                     "172.16.0.1", "100.64.0.1", "0.0.0.0",
		                     "224.0.0.1" };
	struct sockaddr_storage p;
	struct extra perm = NONE;
	struct client c;

	(void)state;
	client_init(&c, "198.51.100.7", 40000, FUTURE ":alice", secret, 6);
	allocate(t, &c, 0);
	perm.peer = &p;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = sa_make(bad[i], 9);
		assert_int_equal(exchange(t, &c, STUN_CREATE_PERMISSION, perm,
		                          WITH_AUTH, 10),
		                 403);
	}
	p = sa_make("2001:db8::1", 9);
	assert_int_equal(exchange(t, &c, STUN_CREATE_PERMISSION, perm, WITH_AUTH,
	                          10),
	                 443);
	turn_server_free(t);

	/* The operator may allow loopback and private peers */
	cfg.allow_private = 1;
	t = server(&cfg);
	allocate(t, &c, 0);
	p = sa_make("127.0.0.1", 9);
	assert_int_equal(exchange(t, &c, STUN_CREATE_PERMISSION, perm, WITH_AUTH,
	                          10),
	                 0);
	turn_server_free(t);
}

static void channel_data(uint8_t *buf, uint16_t number, const char *s,
                         size_t *n)
{
	size_t len = strlen(s);

	buf[0] = (uint8_t)(number >> 8);
	buf[1] = (uint8_t)number;
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
	memcpy(buf + 4, s, len);
	*n = 4 + len;
}

static void test_channels(void **state)
{
	struct turn_config cfg = config();
	struct turn_server *t = server(&cfg);
	struct sockaddr_storage a = sa_make("203.0.113.9", 7000);
	struct sockaddr_storage b = sa_make("203.0.113.9", 7001);
	struct extra x = NONE;
	struct client c;
	struct turn_out o;
	uint8_t buf[64];
	size_t n;

	(void)state;
	client_init(&c, "198.51.100.7", 40000, FUTURE ":alice", secret, 6);
	allocate(t, &c, 0);
	x.peer = &a;
	x.channel = 0x3FFF; /* below the range */
	assert_int_equal(exchange(t, &c, STUN_CHANNEL_BIND, x, WITH_AUTH, 1), 400);
	x.channel = 0x8000; /* above it */
	assert_int_equal(exchange(t, &c, STUN_CHANNEL_BIND, x, WITH_AUTH, 1), 400);
	x.channel = 0x4000;
	assert_int_equal(exchange(t, &c, STUN_CHANNEL_BIND, x, WITH_AUTH, 1), 0);
	/* Refreshing the same binding is fine */
	assert_int_equal(exchange(t, &c, STUN_CHANNEL_BIND, x, WITH_AUTH, 2), 0);
	/* The number to another peer, or the peer to another number: 400 */
	x.peer = &b;
	assert_int_equal(exchange(t, &c, STUN_CHANNEL_BIND, x, WITH_AUTH, 3), 400);
	x.peer = &a;
	x.channel = 0x4001;
	assert_int_equal(exchange(t, &c, STUN_CHANNEL_BIND, x, WITH_AUTH, 3), 400);

	/* ChannelData both ways (the binding gave the permission) */
	channel_data(buf, 0x4000, "ping", &n);
	assert_int_equal(turn_handle_client(t, 0, buf, n,
	                                    (struct sockaddr *)&c.addr, 10, out,
	                                    sizeof(out), &o),
	                 TURN_TO_PEER);
	assert_addr(&o.to, &a);
	assert_size(o.len, 4);
	assert_memory_equal(o.data, "ping", 4);
	assert_int_equal(turn_handle_peer(t, 0, (const uint8_t *)"pong", 4,
	                                  (struct sockaddr *)&a, 10, out,
	                                  sizeof(out), &o),
	                 TURN_TO_CLIENT);
	assert_size(o.len, 8);
	assert_memory_equal(out, "\x40\x00\x00\x04pong", 8);
	/* An unbound channel: dropped; malformed ones: dropped and counted */
	channel_data(buf, 0x4002, "ping", &n);
	assert_int_equal(turn_handle_client(t, 0, buf, n,
	                                    (struct sockaddr *)&c.addr, 10, out,
	                                    sizeof(out), &o),
	                 TURN_DROP);
	channel_data(buf, 0x4000, "ping", &n);
	buf[3] = 9; /* longer than the datagram */
	assert_int_equal(turn_handle_client(t, 0, buf, n,
	                                    (struct sockaddr *)&c.addr, 10, out,
	                                    sizeof(out), &o),
	                 TURN_DROP);
	channel_data(buf, 0x4000, "ping", &n);
	n += 4; /* more than 3 bytes of padding */
	assert_int_equal(turn_handle_client(t, 0, buf, n,
	                                    (struct sockaddr *)&c.addr, 10, out,
	                                    sizeof(out), &o),
	                 TURN_DROP);
	assert_int_equal(turn_handle_client(t, 0, buf, 3,
	                                    (struct sockaddr *)&c.addr, 10, out,
	                                    sizeof(out), &o),
	                 TURN_DROP);
	assert_u64(turn_stats(t)->malformed_channel, 3);

	/* After 10 minutes the channel is gone, but for 5 more minutes its
	 * number still cannot go to another peer */
	channel_data(buf, 0x4000, "late", &n);
	assert_int_equal(turn_handle_client(t, 0, buf, n,
	                                    (struct sockaddr *)&c.addr,
	                                    2 + TURN_CHANNEL_S * 1000ULL, out,
	                                    sizeof(out), &o),
	                 TURN_DROP);
	x.peer = &b;
	x.channel = 0x4000;
	assert_int_equal(exchange(t, &c, STUN_CHANNEL_BIND, x, WITH_AUTH,
	                          3 + TURN_CHANNEL_S * 1000ULL),
	                 400);
	turn_server_free(t);
}

static void test_quotas(void **state)
{
	struct turn_config cfg = config();
	struct turn_server *t;
	struct client c[6];
	char ip[32];

	(void)state;
	cfg.max_per_prefix = 2;
	cfg.max_allocs = 3;
	t = server(&cfg);
	/* Two from one /24, a third from it: 486 */
	for (int i = 0; i < 3; i++) {
		snprintf(ip, sizeof(ip), "198.51.100.%d", 10 + i);
		client_init(&c[i], ip, 40000, FUTURE ":a", secret, 6);
	}
	allocate(t, &c[0], 0);
	allocate(t, &c[1], 0);
	assert_int_equal(exchange(t, &c[2], STUN_ALLOCATE, ALLOC, NO_AUTH, 0),
	                 401);
	assert_int_equal(exchange(t, &c[2], STUN_ALLOCATE, ALLOC, WITH_AUTH, 0),
	                 486);
	/* Another prefix, up to the total; then 508 */
	client_init(&c[3], "203.0.113.1", 40000, FUTURE ":b", secret, 6);
	client_init(&c[4], "192.0.2.77", 40000, FUTURE ":c", secret, 6);
	allocate(t, &c[3], 0);
	assert_int_equal(exchange(t, &c[4], STUN_ALLOCATE, ALLOC, NO_AUTH, 0),
	                 401);
	assert_int_equal(exchange(t, &c[4], STUN_ALLOCATE, ALLOC, WITH_AUTH, 0),
	                 508);
	assert_size(turn_alloc_count(t), 3);
	assert_u64(turn_stats(t)->quota, 2);
	turn_server_free(t);

	/* One relay port, held by another program: 508, nothing kept */
	cfg = config();
	cfg.port_hi = cfg.port_lo;
	t = server(&cfg);
	fk.busy_port = cfg.port_lo;
	assert_int_equal(exchange(t, &c[0], STUN_ALLOCATE, ALLOC, NO_AUTH, 0),
	                 401);
	assert_int_equal(exchange(t, &c[0], STUN_ALLOCATE, ALLOC, WITH_AUTH, 0),
	                 508);
	assert_size(turn_alloc_count(t), 0);
	turn_server_free(t);
}

/* A client that allocates and dies: at the end of the lifetime the
 * allocation goes, its port is closed and can be allocated again. */
static void test_expiry_frees_port(void **state)
{
	struct turn_config cfg = config();
	struct turn_server *t;
	struct client dead, next;
	uint16_t port, port2;

	(void)state;
	cfg.port_hi = cfg.port_lo; /* one port: the next one must reuse it */
	t = server(&cfg);
	client_init(&dead, "198.51.100.7", 40000, FUTURE ":a", secret, 6);
	client_init(&next, "203.0.113.7", 40000, FUTURE ":b", secret, 6);
	port = allocate(t, &dead, 0);
	assert_int_equal(exchange(t, &next, STUN_ALLOCATE, ALLOC, NO_AUTH, 1000),
	                 401);
	assert_int_equal(exchange(t, &next, STUN_ALLOCATE, ALLOC, WITH_AUTH,
	                          1000),
	                 508);
	turn_tick(t, TURN_LIFETIME_DEFAULT_S * 1000ULL - 1);
	assert_size(turn_alloc_count(t), 1);
	turn_tick(t, TURN_LIFETIME_DEFAULT_S * 1000ULL + 1);
	assert_size(turn_alloc_count(t), 0);
	assert_int_equal(fk.closes, 1);
	assert_u64(turn_stats(t)->expired, 1);
	port2 = allocate(t, &next, TURN_LIFETIME_DEFAULT_S * 1000ULL + 2);
	assert_int_equal(port2, port);
	turn_server_free(t);
}

static void test_wrong_user_on_refresh(void **state)
{
	struct turn_config cfg = config();
	struct turn_server *t = server(&cfg);
	struct client c, thief;
	struct extra x = NONE;

	(void)state;
	client_init(&c, "198.51.100.7", 40000, FUTURE ":alice", secret, 6);
	allocate(t, &c, 0);
	/* Same 5-tuple, other valid credentials: 441 */
	client_init(&thief, "198.51.100.7", 40000, FUTURE ":eve", secret, 6);
	memcpy(thief.nonce, c.nonce, sizeof(c.nonce));
	x.lifetime = 0;
	assert_int_equal(exchange(t, &thief, STUN_REFRESH, x, WITH_AUTH, 5), 441);
	assert_size(turn_alloc_count(t), 1);
	turn_server_free(t);
}

/* RFC 8656 3.1: over TCP the allocation is the connection's, and goes
 * when it closes (server_tcp.c calls turn_client_gone()). */
static void test_connection_closed(void **state)
{
	struct turn_config cfg = config();
	struct turn_server *t = server(&cfg);
	struct client c;
	struct sockaddr_storage other = sa_make("198.51.100.7", 40001);

	(void)state;
	client_init(&c, "198.51.100.7", 40000, FUTURE ":alice", secret, 6);
	allocate(t, &c, 0);
	assert_true(turn_client_has_alloc(t, 0, (struct sockaddr *)&c.addr));
	/* another connection, or another source port: not this one */
	assert_int_equal(turn_client_gone(t, 1, (struct sockaddr *)&c.addr), 0);
	assert_int_equal(turn_client_gone(t, 0, (struct sockaddr *)&other), 0);
	assert_size(turn_alloc_count(t), 1);
	assert_int_equal(turn_client_gone(t, 0, (struct sockaddr *)&c.addr), 1);
	assert_size(turn_alloc_count(t), 0);
	assert_false(turn_client_has_alloc(t, 0, (struct sockaddr *)&c.addr));
	assert_int_equal(fk.closes, 1);
	assert_u64(turn_stats(t)->closed, 1);
	assert_int_equal(turn_client_gone(t, 0, (struct sockaddr *)&c.addr), 0);
	turn_server_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rest_password),
		cmocka_unit_test(test_no_integrity_gets_401_and_nothing),
		cmocka_unit_test(test_amplification_bound),
		cmocka_unit_test(test_bad_credentials_get_401),
		cmocka_unit_test(test_stale_nonce_gets_438),
		cmocka_unit_test(test_allocate_refresh_delete),
		cmocka_unit_test(test_allocate_checks),
		cmocka_unit_test(test_permission_required),
		cmocka_unit_test(test_forbidden_peers),
		cmocka_unit_test(test_channels),
		cmocka_unit_test(test_quotas),
		cmocka_unit_test(test_expiry_frees_port),
		cmocka_unit_test(test_wrong_user_on_refresh),
		cmocka_unit_test(test_connection_closed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
