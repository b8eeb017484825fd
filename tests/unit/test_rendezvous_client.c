/*
 * Unit tests for the rendezvous client (src/rendezvous_client.c), with a
 * fake clock and no sockets: two clients wired to a real rdv_server and
 * Binding responder through an in-memory queue, and answers built by hand
 * where a real server would not send them.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include "binding.h"
#include "log.h"
#include "punch_attr.h"
#include "registry.h"
#include "rendezvous_client.h"
#include "rendezvous_server.h"

enum { OUT_CAP = 1500 };

/* The server, freed by the teardown even when a test fails. */
static struct rdv_server *srv;

static int teardown(void **state)
{
	(void)state;
	rdv_server_free(srv);
	srv = NULL;
	return 0;
}

/* A small world: one server (Binding + rendezvous on one socket), two
 * clients, and the datagrams between them. */
enum { WIRE_MAX = 256,
       EV_MAX = 64 };

struct wire_msg {
	int to_server;                /* else to client `client` */
	int sock;       /* the server's: 1 is the alternate */
	int client;                   /* sender or receiver */
	uint8_t buf[PUNCH_MSG_MAX];
	size_t len;
};

struct event {
	int type;
	uint32_t status;
	struct punch_peer peer;
	char reason[STUN_MAX_REASON + 32];
	uint64_t at;
};

struct tclient {
	struct rdv_client rc;
	struct sockaddr_storage addr;
	struct event ev[EV_MAX];
	size_t n_ev;
	size_t sent;                  /* datagrams it sent */
	int auto_register;            /* rdvc_register() on DISCOVERED */
	/* where the server's alternate address sees it (its NAT's mapping
	 * toward there); unset: the same as addr */
	struct sockaddr_storage alt_addr;
};

static struct {
	struct tclient c[2];
	struct wire_msg q[WIRE_MAX];
	size_t n;
	uint64_t now;
	int server_down;
	int alt_down;                 /* the alternate address is silent */
	int answers_lost;             /* drop this many server answers */
	struct binding_service svc;
	struct sockaddr_storage server_addr;
} world;

static void w_push(int to_server, int client, const uint8_t *buf, size_t len)
{
	struct wire_msg *m;

	assert_true(world.n < WIRE_MAX);
	assert_true(len <= PUNCH_MSG_MAX);
	m = &world.q[world.n++];
	m->to_server = to_server;
	m->client = client;
	memcpy(m->buf, buf, len);
	m->len = len;
}

static void w_client_send(void *ctx, const struct sockaddr *to,
                          const uint8_t *buf, size_t len)
{
	struct tclient *c = ctx;
	int alt = world.svc.have[1] && addr_equal(to, SA(world.svc.local[1]));

	assert_true(alt || addr_equal(to, SA(world.server_addr)));
	c->sent++;
	w_push(1, (int)(c - world.c), buf, len);
	world.q[world.n - 1].sock = alt;
}

static void w_server_send(void *ctx, int sock, const struct sockaddr *to,
                          const uint8_t *buf, size_t len)
{
	(void)ctx;
	assert_int_equal(sock, 0);
	for (int i = 0; i < 2; i++)
		if (addr_equal(to, SA(world.c[i].addr)))
			w_push(0, i, buf, len);
}

static void w_event(void *ctx, int type, const void *arg)
{
	struct tclient *c = ctx;
	struct event *e;

	assert_true(c->n_ev < EV_MAX);
	e = &c->ev[c->n_ev++];
	memset(e, 0, sizeof(*e));
	e->type = type;
	e->at = world.now;
	if (type == RDVC_EV_REGISTERED)
		e->status = *(const uint32_t *)arg;
	else if (type == RDVC_EV_PEER_INFO)
		e->peer = *(const struct punch_peer *)arg;
	else if (type == RDVC_EV_REFUSED)
		snprintf(e->reason, sizeof(e->reason), "%s", (const char *)arg);
	else if (type == RDVC_EV_DISCOVERED) {
		assert_addr(arg, &c->addr);
		if (c->auto_register)
			rdvc_register(&c->rc, world.now);
	}
}

/* Deliver everything queued (and what that causes) at the current time. */
static void w_pump(void)
{
	for (size_t i = 0; i < world.n; i++) {
		struct wire_msg *m = &world.q[i];
		struct tclient *c = &world.c[m->client];
		struct stun_msg sm;

		if (m->to_server) {
			struct binding_reply reply;
			uint8_t out[OUT_CAP];
			const char *why;
			int v;

			const struct sockaddr *from = SA(c->addr);

			if (world.server_down || (m->sock && world.alt_down))
				continue;
			if (m->sock && c->alt_addr.ss_family)
				from = SA(c->alt_addr);
			if (punch_method_is_rendezvous(
				    stun_peek_method(m->buf, m->len)))
				v = rdv_handle(srv, 0, m->buf, m->len,
				               SA(c->addr), world.now, out,
				               sizeof(out), &reply, &why);
			else
				v = binding_handle(&world.svc, m->sock, m->buf,
				                   m->len, from, out,
				                   sizeof(out), &reply, &why);
			assert_int_not_equal(v, BINDING_DROP);
			if (v == BINDING_REPLY)
				w_push(0, m->client, out, reply.len);
		} else {
			if (world.answers_lost > 0) {
				world.answers_lost--;
				continue;
			}
			decode_ok(&sm, m->buf, m->len);
			assert_int_equal(rdvc_on_stun(&c->rc, m->buf, m->len,
			                              &sm, world.now),
			                 1);
		}
	}
	world.n = 0;
}

/* Advance the clock to `until`, a millisecond at a time. */
static void w_run(uint64_t until)
{
	for (; world.now <= until; world.now++) {
		for (int i = 0; i < 2; i++)
			rdvc_tick(&world.c[i].rc, world.now);
		rdv_tick(srv, world.now);
		w_pump();
	}
	world.now = until;
}

static struct sign_key client_keys[2];
/* The server's key: the world's server and the answers built by hand. */
static struct sign_key server_key;

static struct rdv_server *server_make(uint8_t seed_byte)
{
	uint8_t seed[SIGN_SEED_LEN];
	struct rdv_server *s = rdv_server_new(64, w_server_send, NULL);

	assert_non_null(s);
	memset(seed, seed_byte, sizeof(seed));
	assert_int_equal(rdv_server_set_key(s, seed), 0);
	return s;
}

/* Pin the server key, as known_servers would (no first-use event). */
static void pin_server(int i)
{
	uint8_t fp[SIGN_FP_LEN];

	sign_fp(server_key.pk, fp);
	rdvc_pin_server(&world.c[i].rc, fp);
}

/* Sign a hand-built answer as the server would. */
static int finish_signed(struct stun_writer *w)
{
	sign_put(w, PUNCH_ATTR_SERVER_KEY, &server_key);
	stun_put_fingerprint(w);
	return stun_writer_finish(w);
}

static void w_init(void)
{
	static const char *ids[2] = { "alice", "bob" };
	uint8_t seed[SIGN_SEED_LEN];

	memset(&world, 0, sizeof(world));
	world.server_addr = sa_make("192.0.2.10", 3478);
	world.svc.local[0] = world.server_addr;
	world.svc.have[0] = 1;
	rdv_server_free(srv);
	memset(seed, 0x5E, sizeof(seed));
	assert_int_equal(sign_key_from_seed(&server_key, seed), 0);
	srv = server_make(0x5E);
	for (int i = 0; i < 2; i++) {
		struct punch_peer self;

		memset(&self, 0, sizeof(self));
		snprintf(self.id, sizeof(self.id), "%s", ids[i]);
		snprintf(self.peer_id, sizeof(self.peer_id), "%s", ids[!i]);
		snprintf(self.ufrag, sizeof(self.ufrag), "uf%d", i);
		snprintf(self.pwd, sizeof(self.pwd), "pwd-%d-0123456789", i);
		self.session = 0x5E55000 + (uint64_t)i;
		self.cand[0].type = CAND_HOST;
		self.cand[0].priority = punch_cand_priority(CAND_HOST, 65535);
		self.cand[0].addr = sa_make(i ? "10.0.0.2" : "10.0.0.1", 5000);
		self.n_cand = 1;
		world.c[i].addr = sa_make(i ? "203.0.113.2" : "203.0.113.1",
		                          (uint16_t)(60000 + i));
		world.c[i].auto_register = 1;
		rdvc_init(&world.c[i].rc, SA(world.server_addr), &self,
		          w_client_send, w_event, &world.c[i]);
		memset(seed, 0xC0 + i, sizeof(seed));
		assert_int_equal(sign_key_from_seed(&client_keys[i], seed), 0);
		rdvc_set_key(&world.c[i].rc, &client_keys[i]);
	}
}

static int w_setup(void **state)
{
	(void)state;
	log_set_level(LOG_WARN);
	w_init();
	return 0;
}

static const struct event *find_event(const struct tclient *c, int type,
                                      size_t nth)
{
	for (size_t i = 0; i < c->n_ev; i++)
		if (c->ev[i].type == type && nth-- == 0)
			return &c->ev[i];
	return NULL;
}

static size_t count_events(const struct tclient *c, int type)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_ev; i++)
		n += c->ev[i].type == type;
	return n;
}

static void test_client_flow(void **state)
{
	const struct event *e;

	(void)state;
	rdvc_start(&world.c[0].rc, 0);
	assert_int_equal(world.c[0].rc.state, RDVC_DISCOVERING);
	w_run(100);
	/* Binding, REGISTER (438), REGISTER with the nonce */
	assert_size(world.c[0].sent, 3);
	assert_int_equal(world.c[0].rc.state, RDVC_REGISTERED);
	assert_addr(&world.c[0].rc.srflx, &world.c[0].addr);
	assert_size(world.c[0].n_ev, 3);
	assert_int_equal(world.c[0].ev[0].type, RDVC_EV_DISCOVERED);
	/* the first signed answer pins the server's key (first use) */
	assert_int_equal(world.c[0].ev[1].type, RDVC_EV_SERVER_KEY);
	assert_int_equal(world.c[0].ev[2].type, RDVC_EV_REGISTERED);
	assert_int_equal(world.c[0].ev[2].status, PUNCH_STATUS_WAITING);
	assert_true(world.c[0].rc.server_pinned);
	assert_int_equal(world.c[0].rc.lifetime_s, REGISTRY_LIFETIME_MS / 1000);

	rdvc_start(&world.c[1].rc, 100);
	w_run(200);
	e = find_event(&world.c[1], RDVC_EV_REGISTERED, 0);
	assert_non_null(e);
	assert_int_equal(e->status, PUNCH_STATUS_PAIRED);
	for (int i = 0; i < 2; i++) {
		e = find_event(&world.c[i], RDVC_EV_PEER_INFO, 0);
		assert_non_null(e);
		assert_str(e->peer.id, i ? "alice" : "bob");
		assert_true(e->peer.session == 0x5E55000 + (uint64_t)!i);
		assert_true(e->peer.has_observed);
		assert_addr(&e->peer.observed, &world.c[!i].addr);
		assert_size(e->peer.n_cand, 1);
		assert_addr(&e->peer.cand[0].addr,
		            &world.c[!i].rc.self.cand[0].addr);
	}
	/* the clients' answers stop the server's retransmissions */
	assert_u64(rdv_stats(srv)->acked, 2);
	w_run(40000);
	for (int i = 0; i < 2; i++)
		assert_size(count_events(&world.c[i], RDVC_EV_PEER_INFO), 1);
	assert_u64(rdv_stats(srv)->gave_up, 0);
	assert_u64(rdv_stats(srv)->introduced, 1);
}

/* The mapping test: a server with an alternate port (RFC 5780's OTHER-
 * ADDRESS) gets a second Binding, from which the client learns whether its
 * NAT maps endpoint-independently; PUNCH-NAT then reaches the peer in
 * PEER-INFO.  Bob's NAT here gives the alternate another port. */
static void test_client_mapping_test(void **state)
{
	const struct event *e;

	(void)state;
	world.svc.local[1] = sa_make("192.0.2.10", 3479);
	world.svc.have[1] = 1;
	world.svc.rfc5780 = 1;
	world.c[1].alt_addr = sa_make("203.0.113.2", 61234);
	/* what the app would classify from the two mapped addresses */
	world.c[0].rc.self.nat = (struct punch_nat){ PUNCH_NAT_INDEPENDENT,
		                                     PUNCH_PORTS_PRESERVED, 0 };
	world.c[1].rc.self.nat = (struct punch_nat){ PUNCH_NAT_DEPENDENT,
		                                     PUNCH_PORTS_RANDOM, 1234 };
	rdvc_start(&world.c[0].rc, 0);
	w_run(100);
	/* Binding, the mapping test's Binding, REGISTER (438), REGISTER */
	assert_size(world.c[0].sent, 4);
	assert_true(world.c[0].rc.has_srflx_alt);
	assert_addr(&world.c[0].rc.srflx_alt, &world.c[0].addr);
	assert_true(rdvc_is_server(&world.c[0].rc, SA(world.server_addr)));
	/* once answered, the alternate is no longer the server's */
	assert_false(rdvc_is_server(&world.c[0].rc, SA(world.svc.local[1])));

	rdvc_start(&world.c[1].rc, 100);
	w_run(150);
	assert_true(world.c[1].rc.has_srflx_alt);
	assert_addr(&world.c[1].rc.srflx_alt, &world.c[1].alt_addr);
	w_run(300);
	e = find_event(&world.c[0], RDVC_EV_PEER_INFO, 0);
	assert_non_null(e);
	assert_int_equal(e->peer.nat.mapping, PUNCH_NAT_DEPENDENT);
	assert_int_equal(e->peer.nat.ports, PUNCH_PORTS_RANDOM);
	assert_int_equal(e->peer.nat.delta, 1234);
	e = find_event(&world.c[1], RDVC_EV_PEER_INFO, 0);
	assert_non_null(e);
	assert_int_equal(e->peer.nat.mapping, PUNCH_NAT_INDEPENDENT);
}

/* A silent alternate address costs at most RDVC_ALT_TIMEOUT_MS: then the
 * client registers with the mapping unknown. */
static void test_client_mapping_test_silent(void **state)
{
	const struct event *e;

	(void)state;
	world.svc.local[1] = sa_make("192.0.2.10", 3479);
	world.svc.have[1] = 1;
	world.svc.rfc5780 = 1;
	world.alt_down = 1;
	rdvc_start(&world.c[0].rc, 0);
	w_run(RDVC_ALT_TIMEOUT_MS - 10);
	assert_int_equal(world.c[0].rc.state, RDVC_DISCOVERING);
	/* sent at 0, 100 and 300 ms: the first Binding, then the test's */
	assert_size(world.c[0].sent, 1 + 3);
	w_run(RDVC_ALT_TIMEOUT_MS + 50);
	e = find_event(&world.c[0], RDVC_EV_DISCOVERED, 0);
	assert_non_null(e);
	assert_true(e->at <= RDVC_ALT_TIMEOUT_MS + 1);
	assert_false(world.c[0].rc.has_srflx_alt);
	assert_int_equal(world.c[0].rc.state, RDVC_REGISTERED);
}

/* A relaying server's REGISTER success carries the relay credentials; the
 * client keeps them, and they are the ones the relay takes. */
static void test_client_relay_credentials(void **state)
{
	static const uint8_t secret[] = "lab-secret";

	(void)state;
	assert_int_equal(rdv_server_set_relay_secret(srv, secret,
	                                             sizeof(secret) - 1),
	                 0);
	rdvc_start(&world.c[0].rc, 0);
	w_run(100);
	assert_int_equal(world.c[0].rc.state, RDVC_REGISTERED);
	assert_true(world.c[0].rc.has_relay);
	assert_true(!strncmp(world.c[0].rc.relay_user, "rdv:", 4));
	assert_true(strlen(world.c[0].rc.relay_pass) > 0);
	assert_int_equal(rdv_minted_check(srv, world.c[0].rc.relay_user, NULL),
	                 0);
}

/* PUNCH-RELAY that does not add up is ignored, and the registration
 * stands. */
static void test_client_relay_malformed(void **state)
{
	static const uint8_t bad[][8] = {
		{ 9, 'u', 's', 'e', 'r', 'p', 'w', 'd' }, /* length past the end */
		{ 0, 'u', 's', 'e', 'r', 'p', 'w', 'd' }, /* no username */
		{ 7, 'u', 's', 'e', 'r', 'p', 'w', 'd' }, /* no password */
		{ 4, 'u', 's', 0x01, 'r', 'p', 'w', 'd' }, /* a control byte */
	};

	(void)state;
	world.server_down = 1;
	pin_server(0);
	world.c[0].rc.state = RDVC_DISCOVERED;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct stun_writer w;
		uint8_t buf[256];
		struct stun_msg m;
		int n;

		rdvc_register(&world.c[0].rc, 1000);
		stun_writer_init(&w, buf, sizeof(buf), PUNCH_REGISTER,
		                 STUN_SUCCESS, world.c[0].rc.txid);
		stun_put_u32(&w, PUNCH_ATTR_LIFETIME, 9);
		stun_put_bytes(&w, PUNCH_ATTR_RELAY, bad[i], sizeof(bad[i]));
		n = finish_signed(&w);
		assert_true(n > 0);
		decode_ok(&m, buf, (size_t)n);
		assert_int_equal(rdvc_on_stun(&world.c[0].rc, buf, (size_t)n,
		                              &m, 1100),
		                 1);
		assert_int_equal(world.c[0].rc.state, RDVC_REGISTERED);
		assert_false(world.c[0].rc.has_relay);
	}
}

/* RFC 8489 6.2.1's doubling, from 250 ms for the first Binding: 0, 250,
 * 750, ..., 31750, then 16 RTO of silence; each wait lengthened by up to
 * RTX_JITTER_PCT percent (retransmit.h).  Three go out in the first
 * second, the client's wait for UDP before TCP. */
static void test_client_retransmissions(void **state)
{
	/* the nominal waits before each transmission, and after the last:
	 * the first Binding's schedule (RDVC_FIRST_RTO_MS) */
	static const uint64_t wait[RDVC_FIRST_RC + 1] = {
		0, 250, 500, 1000, 2000, 4000, 8000, 16000, 16 * 250
	};
	size_t sends = 1; /* the first went out from rdvc_start() itself */
	uint64_t t0 = 5000, last = t0, next_want = 0;

	(void)state;
	world.server_down = 1;
	world.now = t0;
	rdvc_start(&world.c[0].rc, t0);
	for (uint64_t t = t0; t <= t0 + 60000; t++) {
		size_t before = world.c[0].sent;
		uint64_t next;

		world.now = t;
		next = rdvc_tick(&world.c[0].rc, t);
		if (world.c[0].sent != before) {
			assert_true(sends < RDVC_FIRST_RC);
			assert_in_range(t - last, wait[sends],
			                wait[sends] * (100 + RTX_JITTER_PCT) / 100);
			/* at the deadline rdvc_tick() gave, not later */
			assert_u64(t, next_want);
			last = t;
			sends++;
		}
		if (!world.c[0].n_ev) {
			assert_in_range(next - last, wait[sends],
			                wait[sends] * (100 + RTX_JITTER_PCT) / 100);
			next_want = next;
		}
		w_pump();
	}
	assert_size(sends, RDVC_FIRST_RC);
	assert_size(world.c[0].sent, RDVC_FIRST_RC);
	assert_size(world.c[0].n_ev, 1);
	assert_int_equal(world.c[0].ev[0].type, RDVC_EV_UNREACHABLE);
	assert_u64(world.c[0].ev[0].at, next_want);
	assert_in_range(next_want - last, 16 * 250,
	                16 * 250 * (100 + RTX_JITTER_PCT) / 100);
	assert_false(world.c[0].rc.busy);
}

static void test_client_refresh(void **state)
{
	const struct event *e;
	size_t sent;

	(void)state;
	rdvc_start(&world.c[0].rc, 0);
	w_run(10);
	assert_int_equal(world.c[0].rc.state, RDVC_REGISTERED);
	sent = world.c[0].sent;
	/* a third of the 30 s lifetime later, one REGISTER (the nonce is
	 * still good), then the next */
	w_run(9999);
	assert_size(world.c[0].sent, sent);
	w_run(10000);
	assert_size(world.c[0].sent, sent + 1);
	assert_size(count_events(&world.c[0], RDVC_EV_REGISTERED), 2);
	w_run(20000);
	assert_size(world.c[0].sent, sent + 2);
	/* the registration never lapses */
	w_run(200000);
	assert_non_null(registry_find(rdv_registry(srv), "alice"));
	/* nonces go stale every 60-120 s: a new dance, no REFUSED */
	assert_size(count_events(&world.c[0], RDVC_EV_REFUSED), 0);
	assert_true(world.c[0].sent >= sent + 20);
	e = find_event(&world.c[0], RDVC_EV_REGISTERED, 20);
	assert_non_null(e);
}

/* A registration answered with a short lifetime is refreshed sooner. */
static void test_client_lifetime(void **state)
{
	struct stun_writer w;
	uint8_t buf[256];
	struct stun_msg m;
	int n;

	(void)state;
	world.server_down = 1;
	pin_server(0);
	world.c[0].rc.state = RDVC_DISCOVERED;
	rdvc_register(&world.c[0].rc, 1000);
	assert_int_equal(world.c[0].rc.state, RDVC_REGISTERING);
	stun_writer_init(&w, buf, sizeof(buf), PUNCH_REGISTER, STUN_SUCCESS,
	                 world.c[0].rc.txid);
	stun_put_u32(&w, PUNCH_ATTR_STATUS, PUNCH_STATUS_PAIRED);
	stun_put_u32(&w, PUNCH_ATTR_LIFETIME, 9);
	n = finish_signed(&w);
	assert_true(n > 0);
	decode_ok(&m, buf, (size_t)n);
	/* the wrong method, or another transaction: not ours */
	m.method = STUN_BINDING;
	assert_int_equal(rdvc_on_stun(&world.c[0].rc, buf, (size_t)n, &m, 1100),
	                 0);
	m.method = PUNCH_REGISTER;
	m.txid[0] ^= 1;
	assert_int_equal(rdvc_on_stun(&world.c[0].rc, buf, (size_t)n, &m, 1100),
	                 0);
	m.txid[0] ^= 1;
	assert_int_equal(rdvc_on_stun(&world.c[0].rc, buf, (size_t)n, &m, 1100),
	                 1);
	assert_int_equal(world.c[0].rc.state, RDVC_REGISTERED);
	assert_u64(world.c[0].rc.refresh_ms, 1100 + 3000);
	assert_u64(rdvc_tick(&world.c[0].rc, 1200), 1100 + 3000);
	assert_size(world.c[0].n_ev, 1);
	assert_int_equal(world.c[0].ev[0].status, PUNCH_STATUS_PAIRED);
	/* a duplicate of the answer is not ours any more */
	assert_int_equal(rdvc_on_stun(&world.c[0].rc, buf, (size_t)n, &m, 1101),
	                 0);

	/* a lifetime under 3 s is taken as 3 s */
	for (uint32_t life = 0; life <= 4; life++) {
		rdvc_register(&world.c[0].rc, 2000);
		stun_writer_init(&w, buf, sizeof(buf), PUNCH_REGISTER,
		                 STUN_SUCCESS, world.c[0].rc.txid);
		stun_put_u32(&w, PUNCH_ATTR_LIFETIME, life);
		n = finish_signed(&w);
		decode_ok(&m, buf, (size_t)n);
		assert_int_equal(rdvc_on_stun(&world.c[0].rc, buf, (size_t)n,
		                              &m, 2000),
		                 1);
		assert_u64(world.c[0].rc.refresh_ms,
		           2000 + (life < 3 ? 3 : life) * 1000 / 3);
	}
}

static void test_client_refused(void **state)
{
	const struct event *e;

	(void)state;
	snprintf(world.c[0].rc.self.id, sizeof(world.c[0].rc.self.id),
	         "al ice");
	rdvc_start(&world.c[0].rc, 0);
	w_run(100);
	e = find_event(&world.c[0], RDVC_EV_REFUSED, 0);
	assert_non_null(e);
	assert_str(e->reason,
	           "400 Bad Request: id contains a space or control character");
	assert_size(world.c[0].sent, 3);
	/* refused is final: nothing is retransmitted */
	w_run(60000);
	assert_size(world.c[0].sent, 3);
}

/* The answer to a Binding request must carry an address. */
static void test_client_binding_without_address(void **state)
{
	struct stun_writer w;
	uint8_t buf[64];
	struct stun_msg m;
	int n;

	(void)state;
	world.server_down = 1;
	rdvc_start(&world.c[0].rc, 0);
	stun_writer_init(&w, buf, sizeof(buf), STUN_BINDING, STUN_SUCCESS,
	                 world.c[0].rc.txid);
	n = stun_writer_finish(&w);
	decode_ok(&m, buf, (size_t)n);
	assert_int_equal(rdvc_on_stun(&world.c[0].rc, buf, (size_t)n, &m, 5),
	                 1);
	assert_size(world.c[0].n_ev, 1);
	assert_int_equal(world.c[0].ev[0].type, RDVC_EV_REFUSED);
	assert_int_equal(rdvc_tick(&world.c[0].rc, 100000), UINT64_MAX);
}

/* Exactly one datagram went to the server: a PEER-INFO success response
 * with txid and a FINGERPRINT.  Clears the queue. */
static void expect_peer_info_answer(const uint8_t txid[STUN_TXID_LEN])
{
	struct stun_msg m;

	assert_size(world.n, 1);
	assert_true(world.q[0].to_server);
	decode_ok(&m, world.q[0].buf, world.q[0].len);
	assert_int_equal(m.method, PUNCH_PEER_INFO);
	assert_int_equal(m.cls, STUN_SUCCESS);
	assert_memory_equal(m.txid, txid, STUN_TXID_LEN);
	assert_true(m.present & STUN_HAS_FINGERPRINT);
	world.n = 0;
}

/* A PEER-INFO request from the server to `client`, which must answer it
 * with exactly one datagram to the server: a PEER-INFO success response
 * with the request's transaction id and a FINGERPRINT. */
static void peer_info_to(int client, const struct punch_peer *p,
                         const uint8_t txid[STUN_TXID_LEN])
{
	struct stun_writer w;
	uint8_t buf[PUNCH_MSG_MAX];
	struct stun_msg m;
	size_t sent = world.c[client].sent;
	int n;

	stun_writer_init(&w, buf, sizeof(buf), PUNCH_PEER_INFO, STUN_REQUEST,
	                 txid);
	punch_peer_put(&w, p, 0);
	n = finish_signed(&w);
	assert_true(n > 0);
	decode_ok(&m, buf, (size_t)n);
	assert_size(world.n, 0);
	assert_int_equal(rdvc_on_stun(&world.c[client].rc, buf, (size_t)n, &m,
	                              world.now),
	                 1);
	assert_size(world.c[client].sent, sent + 1);
	expect_peer_info_answer(txid);
}

static void test_client_answers_peer_info(void **state)
{
	struct punch_peer p;
	uint8_t txid[STUN_TXID_LEN] = { 7 };
	uint8_t other[STUN_TXID_LEN] = { 8 }, bad[STUN_TXID_LEN] = { 9 };

	(void)state;
	world.server_down = 1;
	pin_server(0);
	memset(&p, 0, sizeof(p));
	snprintf(p.id, sizeof(p.id), "bob");
	snprintf(p.ufrag, sizeof(p.ufrag), "u");
	snprintf(p.pwd, sizeof(p.pwd), "p");
	p.session = 42;
	peer_info_to(0, &p, txid);
	assert_size(count_events(&world.c[0], RDVC_EV_PEER_INFO), 1);
	/* a repeat is answered again, and reported again: the app decides
	 * by session */
	peer_info_to(0, &p, txid);
	assert_size(count_events(&world.c[0], RDVC_EV_PEER_INFO), 2);
	/* about someone else: answered, not reported */
	snprintf(p.id, sizeof(p.id), "mallory");
	peer_info_to(0, &p, other);
	/* malformed (no credentials): answered, not reported */
	snprintf(p.id, sizeof(p.id), "bob");
	p.pwd[0] = '\0';
	peer_info_to(0, &p, bad);
	assert_size(count_events(&world.c[0], RDVC_EV_PEER_INFO), 2);
	/* every one was answered (peer_info_to decoded each answer: a
	 * success carrying its request's txid), and nothing else was sent */
	assert_size(world.c[0].sent, 4);
}

/* Capture the answers the client sends, without a server. */
static void test_client_peer_info_answer_bytes(void **state)
{
	struct punch_peer p;
	uint8_t txid[STUN_TXID_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	struct stun_writer w;
	uint8_t buf[PUNCH_MSG_MAX];
	struct stun_msg m;
	int n;

	(void)state;
	world.server_down = 1;
	memset(&p, 0, sizeof(p));
	snprintf(p.id, sizeof(p.id), "bob");
	snprintf(p.ufrag, sizeof(p.ufrag), "u");
	snprintf(p.pwd, sizeof(p.pwd), "p");
	pin_server(0);
	stun_writer_init(&w, buf, sizeof(buf), PUNCH_PEER_INFO, STUN_REQUEST,
	                 txid);
	punch_peer_put(&w, &p, 0);
	n = finish_signed(&w);
	decode_ok(&m, buf, (size_t)n);
	assert_int_equal(rdvc_on_stun(&world.c[0].rc, buf, (size_t)n, &m, 0),
	                 1);
	expect_peer_info_answer(txid);
}

/* The server restarts between refreshes: the client's old nonce gets a
 * 438, it registers again, and both are introduced again with the same
 * sessions. */
static void test_client_server_restart(void **state)
{
	(void)state;
	rdvc_start(&world.c[0].rc, 0);
	rdvc_start(&world.c[1].rc, 0);
	w_run(100);
	for (int i = 0; i < 2; i++)
		assert_size(count_events(&world.c[i], RDVC_EV_PEER_INFO), 1);
	/* the same key, from the state directory */
	rdv_server_free(srv);
	srv = server_make(0x5E);
	w_run(10100);
	for (int i = 0; i < 2; i++) {
		const struct event *e = find_event(&world.c[i],
		                                   RDVC_EV_PEER_INFO, 1);

		assert_non_null(e);
		assert_true(e->peer.session == 0x5E55000 + (uint64_t)!i);
		assert_size(count_events(&world.c[i], RDVC_EV_REFUSED), 0);
		assert_int_equal(world.c[i].rc.state, RDVC_REGISTERED);
	}
	assert_size(registry_count(rdv_registry(srv)), 2);
}

/* The server goes away after the client registered: the client keeps
 * trying, and says nothing fatal.  Each refresh is missed after
 * RDVC_REFRESH_TIMEOUT_MS; the third missed says the server is lost (the
 * caller may fail over), and the tries then come once an interval. */
static void test_client_server_gone(void **state)
{
	size_t sent;

	(void)state;
	rdvc_start(&world.c[0].rc, 0);
	w_run(100);
	assert_int_equal(world.c[0].rc.state, RDVC_REGISTERED);
	world.server_down = 1;
	sent = world.c[0].sent;
	/* the refresh at 10 s: sent at 0, 0.5, 1.5 and 3.5 s (and up to 10 %
	 * of jitter on each wait), missed at 5 s */
	w_run(10000 + RDVC_REFRESH_TIMEOUT_MS - 1);
	assert_size(world.c[0].sent, sent + 4);
	assert_int_equal(world.c[0].rc.missed, 0);
	/* missed; the next at once */
	w_run(10000 + RDVC_REFRESH_TIMEOUT_MS);
	assert_int_equal(world.c[0].rc.missed, 1);
	assert_size(world.c[0].sent, sent + 5);
	assert_size(count_events(&world.c[0], RDVC_EV_SERVER_LOST), 0);
	/* the third missed: lost, once */
	w_run(10000 + 3 * RDVC_REFRESH_TIMEOUT_MS);
	assert_int_equal(world.c[0].rc.missed, RDVC_MISSED_MAX);
	assert_size(count_events(&world.c[0], RDVC_EV_SERVER_LOST), 1);
	assert_size(world.c[0].sent, sent + 3 * 4);
	/* then a refresh interval (10 s, plus jitter) before the next */
	w_run(10000 + 3 * RDVC_REFRESH_TIMEOUT_MS + 10000 - 1);
	assert_size(world.c[0].sent, sent + 3 * 4);
	assert_size(count_events(&world.c[0], RDVC_EV_UNREACHABLE), 0);
	assert_size(count_events(&world.c[0], RDVC_EV_REFUSED), 0);
	/* and when the server is back, it registers again */
	world.server_down = 0;
	w_run(10000 + 3 * RDVC_REFRESH_TIMEOUT_MS + 11000 + 600);
	assert_int_equal(world.c[0].rc.state, RDVC_REGISTERED);
	assert_int_equal(world.c[0].rc.missed, 0);
	assert_false(world.c[0].rc.busy);
}


/* A forged PEER-INFO (from the server's address, as a spoofed source
 * would be): unsigned, signed by another key, or before the server's key
 * is known.  Each is dropped, counted and not answered. */
static void test_client_forged_peer_info(void **state)
{
	struct punch_peer p;
	uint8_t txid[STUN_TXID_LEN] = { 9 };
	struct sign_key other;
	struct stun_writer w;
	uint8_t buf[PUNCH_MSG_MAX];
	uint32_t crc;
	int n;

	(void)state;
	world.server_down = 1;
	memset(&p, 0, sizeof(p));
	snprintf(p.id, sizeof(p.id), "bob");
	snprintf(p.ufrag, sizeof(p.ufrag), "u");
	snprintf(p.pwd, sizeof(p.pwd), "p");
	p.session = 7;
	/* before any key is pinned, even a well-signed one is not taken */
	stun_writer_init(&w, buf, sizeof(buf), PUNCH_PEER_INFO, STUN_REQUEST,
	                 txid);
	punch_peer_put(&w, &p, 0);
	n = finish_signed(&w);
	w_push(0, 0, buf, (size_t)n);
	w_pump();
	assert_size(count_events(&world.c[0], RDVC_EV_PEER_INFO), 0);
	assert_size(world.c[0].sent, 0);
	pin_server(0);
	/* unsigned */
	stun_writer_init(&w, buf, sizeof(buf), PUNCH_PEER_INFO, STUN_REQUEST,
	                 txid);
	punch_peer_put(&w, &p, 0);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	w_push(0, 0, buf, (size_t)n);
	w_pump();
	/* signed by another key */
	assert_int_equal(sign_key_from_seed(&other, NULL), 0);
	stun_writer_init(&w, buf, sizeof(buf), PUNCH_PEER_INFO, STUN_REQUEST,
	                 txid);
	punch_peer_put(&w, &p, 0);
	sign_put(&w, PUNCH_ATTR_SERVER_KEY, &other);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	w_push(0, 0, buf, (size_t)n);
	w_pump();
	/* the server's signature over other bytes: one bit of the id
	 * flipped, FINGERPRINT recomputed so that only the signature fails */
	stun_writer_init(&w, buf, sizeof(buf), PUNCH_PEER_INFO, STUN_REQUEST,
	                 txid);
	punch_peer_put(&w, &p, 0);
	n = finish_signed(&w);
	buf[STUN_HEADER_LEN + 4] ^= 1;
	crc = (uint32_t)crc32(0, buf, (uInt)(n - 8)) ^ STUN_FINGERPRINT_XOR;
	raw_put32(buf + n - 4, crc);
	w_push(0, 0, buf, (size_t)n);
	w_pump();
	assert_size(count_events(&world.c[0], RDVC_EV_PEER_INFO), 0);
	assert_size(world.c[0].sent, 0);
	assert_u64(world.c[0].rc.unsigned_dropped, 4);
	/* the real one still works */
	peer_info_to(0, &p, txid);
	assert_size(count_events(&world.c[0], RDVC_EV_PEER_INFO), 1);
	assert_size(world.c[0].sent, 1);
}

/* The server comes back with another key: the answer to our refresh is
 * signed by it, and the client is told to stop; its pin is unchanged. */
static void test_client_server_key_changed(void **state)
{
	uint8_t fp[SIGN_FP_LEN];

	(void)state;
	rdvc_start(&world.c[0].rc, 0);
	w_run(100);
	assert_int_equal(world.c[0].rc.state, RDVC_REGISTERED);
	rdv_server_free(srv);
	srv = server_make(0x77);
	w_run(12000);
	assert_size(count_events(&world.c[0], RDVC_EV_SERVER_KEY_CHANGED), 1);
	assert_size(count_events(&world.c[0], RDVC_EV_REGISTERED), 1);
	sign_fp(server_key.pk, fp);
	assert_memory_equal(world.c[0].rc.server_fp, fp, SIGN_FP_LEN);
}

/* Refreshes are RENEWs (docs/protocol.md, "RENEW") once the signed
 * REGISTER's success gave the key: no signature either way, and the
 * registration never lapses. */
static void test_client_renews(void **state)
{
	uint64_t registered;

	(void)state;
	rdvc_start(&world.c[0].rc, 0);
	w_run(10);
	assert_int_equal(world.c[0].rc.state, RDVC_REGISTERED);
	assert_true(world.c[0].rc.has_renew_key);
	registered = rdv_stats(srv)->registered;
	w_run(200000);
	assert_non_null(registry_find(rdv_registry(srv), "alice"));
	/* a third of the lifetime apart: 20 in 200 s, all RENEWs */
	assert_u64(rdv_stats(srv)->renewed, 20);
	assert_u64(world.c[0].rc.renewed, 20);
	assert_u64(world.c[0].rc.renew_seq, 20);
	assert_u64(rdv_stats(srv)->registered, registered);
	assert_u64(rdv_stats(srv)->renew_refused, 0);
	assert_size(count_events(&world.c[0], RDVC_EV_REGISTERED), 21);
}

/* alice registered, then her first RENEW sent to a server that is down:
 * it is outstanding when this returns. */
static void renew_pending(struct rdv_client *rc)
{
	rdvc_start(rc, 0);
	w_run(10);
	world.server_down = 1;
	w_run(10000);
	assert_true(rc->busy);
	assert_int_equal(rc->method, PUNCH_RENEW);
}

/* Whether answer_with() adds a PUNCH-RELAY (before the MAC or signature). */
enum forged_relay { RELAY_NONE,
	            RELAY_INSIDE };

static const uint8_t forged_relay[] = "\x04"
				      "evilpassword";

/* A success of `method` to rc's outstanding request, as a forger or the
 * server would send it: LIFETIME `lifetime`, then signed by the server's
 * key (key NULL) or under `key` (MESSAGE-INTEGRITY-SHA256), with a
 * PUNCH-RELAY if `relay` says so.  Handed to rc. */
static void answer_with(struct rdv_client *rc, uint16_t method,
                        uint32_t lifetime, const uint8_t *key,
                        enum forged_relay relay)
{
	uint8_t buf[256];
	struct stun_writer w;
	struct stun_msg m;
	int n;

	stun_writer_init(&w, buf, sizeof(buf), method, STUN_SUCCESS, rc->txid);
	stun_put_xor_addr(&w, STUN_ATTR_XOR_MAPPED_ADDRESS, SA(world.c[0].addr));
	stun_put_u32(&w, PUNCH_ATTR_LIFETIME, lifetime);
	if (relay == RELAY_INSIDE)
		stun_put_bytes(&w, PUNCH_ATTR_RELAY, forged_relay,
		               sizeof(forged_relay) - 1);
	if (!key) {
		n = finish_signed(&w);
	} else {
		stun_put_integrity_sha256(&w, key, PUNCH_RENEW_KEY_LEN);
		stun_put_fingerprint(&w);
		n = stun_writer_finish(&w);
	}
	assert_true(n > 0);
	decode_ok(&m, buf, (size_t)n);
	assert_int_equal(rdvc_on_stun(rc, buf, (size_t)n, &m, world.now), 1);
}

static void answer(struct rdv_client *rc, uint16_t method, uint32_t lifetime,
                   const uint8_t *key)
{
	answer_with(rc, method, lifetime, key, RELAY_NONE);
}

/* Relay credentials come from a signed REGISTER success only.  A RENEW's
 * answer never carries them: its MAC's key went in clear, and whoever saw
 * it could write any. */
static void test_client_renew_answer_relay(void **state)
{
	struct rdv_client *rc = &world.c[0].rc;

	(void)state;
	renew_pending(rc);
	assert_false(rc->has_relay);
	answer_with(rc, PUNCH_RENEW, 30, rc->renew_key, RELAY_INSIDE);
	assert_false(rc->busy);
	assert_false(rc->has_relay);
	/* the same after a signed REGISTER's signature: taken */
	rdvc_register(rc, world.now);
	answer_with(rc, PUNCH_REGISTER, 30, NULL, RELAY_INSIDE);
	assert_false(rc->busy);
	assert_true(rc->has_relay);
	assert_string_equal(rc->relay_user, "evil");
}

/* An answer to our RENEW without our MAC (signed by the server's key, or
 * under another key) is dropped; the RENEW goes on and is answered. */
static void test_client_renew_forged_answer(void **state)
{
	uint8_t other[PUNCH_RENEW_KEY_LEN];
	struct rdv_client *rc = &world.c[0].rc;
	uint64_t dropped;

	(void)state;
	renew_pending(rc);
	dropped = rc->unsigned_dropped;
	memcpy(other, rc->renew_key, sizeof(other));
	other[0] ^= 1;
	for (int kind = 0; kind < 2; kind++) {
		answer(rc, PUNCH_RENEW, 3600, kind == 0 ? NULL : other);
		assert_true(rc->busy);
		assert_u64(rc->unsigned_dropped, dropped + 1 + (uint64_t)kind);
	}
	assert_int_equal(rc->lifetime_s, REGISTRY_LIFETIME_MS / 1000);
	world.server_down = 0;
	w_run(12000);
	assert_false(rc->busy);
	assert_u64(rc->renewed, 1);
}

/* A refused RENEW (the server restarted and lost us): at once a signed
 * REGISTER, and RENEWs again under the new key. */
static void test_client_renew_refused_registers(void **state)
{
	struct rdv_client *rc = &world.c[0].rc;
	uint8_t old[PUNCH_RENEW_KEY_LEN];

	(void)state;
	rdvc_start(rc, 0);
	w_run(10);
	memcpy(old, rc->renew_key, sizeof(old));
	rdv_server_free(srv);
	srv = server_make(0x5E);
	w_run(10100);
	assert_u64(rdv_stats(srv)->renew_refused, 1);
	assert_u64(rdv_stats(srv)->registered, 1);
	assert_int_equal(rc->state, RDVC_REGISTERED);
	assert_true(rc->has_renew_key);
	assert_memory_not_equal(rc->renew_key, old, sizeof(old));
	assert_size(count_events(&world.c[0], RDVC_EV_REFUSED), 0);
	w_run(20200);
	assert_u64(rdv_stats(srv)->renewed, 1);
}

/* A RENEW's answer is lost: the server took it, so the retransmission
 * (the same number) is refused and a signed REGISTER follows, which gives
 * the same key back.  The RENEWs after it are numbered above the last the
 * server took, and accepted: one lost answer costs one REGISTER, not
 * RENEW for the rest of the session. */
static void test_client_renew_answer_lost(void **state)
{
	struct rdv_client *rc = &world.c[0].rc;

	(void)state;
	rdvc_start(rc, 0);
	w_run(9000);
	assert_true(rc->has_renew_key);
	world.answers_lost = 1;
	w_run(41000);
	assert_u64(rdv_stats(srv)->renew_refused, 1);
	/* the one lost, then (after the REGISTER at 10.5 s) 20.5, 30.5, 40.5 */
	assert_u64(rdv_stats(srv)->renewed, 4);
	assert_u64(rc->renewed, 3);
	assert_true(rc->has_renew_key);
	assert_int_equal(rc->state, RDVC_REGISTERED);
}

/* LIFETIME is believed only up to a day, and only from a signed answer:
 * a RENEW's answer is under a key that went in clear, and a forger who
 * saw it must not be able to put our next refresh off for years. */
static void test_client_lifetime_bounds(void **state)
{
	struct rdv_client *rc = &world.c[0].rc;

	(void)state;
	renew_pending(rc);
	answer(rc, PUNCH_RENEW, 0xffffffff, rc->renew_key);
	assert_false(rc->busy);
	assert_int_equal(rc->lifetime_s, REGISTRY_LIFETIME_MS / 1000);
	assert_true(rc->refresh_ms <= world.now + REGISTRY_LIFETIME_MS / 3);

	/* a signed REGISTER success: a day at most, refreshed every 25 s */
	rdvc_register(rc, world.now);
	assert_true(rc->busy);
	answer(rc, PUNCH_REGISTER, 0xffffffff, NULL);
	assert_false(rc->busy);
	assert_int_equal(rc->lifetime_s, RDVC_LIFETIME_MAX_S);
	assert_true(rc->refresh_ms == world.now + RDVC_REFRESH_MAX_MS);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, w_setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_client_flow),
		T(test_client_mapping_test),
		T(test_client_mapping_test_silent),
		T(test_client_relay_credentials),
		T(test_client_relay_malformed),
		T(test_client_retransmissions),
		T(test_client_refresh),
		T(test_client_lifetime),
		T(test_client_refused),
		T(test_client_binding_without_address),
		T(test_client_answers_peer_info),
		T(test_client_peer_info_answer_bytes),
		T(test_client_server_restart),
		T(test_client_server_gone),
		T(test_client_forged_peer_info),
		T(test_client_server_key_changed),
		T(test_client_renews),
		T(test_client_renew_forged_answer),
		T(test_client_renew_refused_registers),
		T(test_client_renew_answer_lost),
		T(test_client_lifetime_bounds),
		T(test_client_renew_answer_relay),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
