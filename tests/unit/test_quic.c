/*
 * Unit tests for the secure link's QUIC (src/quic.c), two ends in one
 * process: datagrams go through an in-memory queue, time is simulated, and
 * a third party can inject datagrams from an address of its own.
 *
 * A forged Initial from a third address, just before the real client's,
 * must not take the place of the chosen peer: the QUIC server side listens
 * only to the nominated pair's remote address until the handshake is done.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "identity.h"
#include "quic.h"

enum {
	NET_QUEUE_MAX = 256,
	DGRAM_MAX = 1500,
	STEP_NS = 1000000,          /* 1 ms of simulated time per step */
	STEPS_MAX = 5000,           /* 5 s: far more than a handshake takes */
};

struct dgram {
	struct sockaddr_storage from;
	int to;       /* index of the receiving end */
	size_t len;
	uint8_t data[DGRAM_MAX];
};

struct end {
	struct quic *q;
	struct sockaddr_storage addr;
	int index, peer, ready;
	char closed[160];
	struct net *net;
};

struct net {
	struct dgram queue[NET_QUEUE_MAX];
	size_t n;
	struct end ends[3];         /* 0: client, 1: server, 2: third party */
};

static void on_send(void *ctx, const struct sockaddr *to, const uint8_t *buf,
                    size_t len)
{
	struct end *e = ctx;
	struct net *net = e->net;
	struct dgram *d;

	(void)to;
	if (net->n == NET_QUEUE_MAX || len > DGRAM_MAX || e->peer < 0)
		return;  /* a full queue loses packets, as a network would */
	d = &net->queue[net->n++];
	memcpy(&d->from, &e->addr, sizeof(d->from));
	d->to = e->peer;
	d->len = len;
	memcpy(d->data, buf, len);
}

static int on_verify(void *ctx, const uint8_t fp[IDENTITY_FP_LEN])
{
	(void)ctx;
	(void)fp;
	return 0;
}

static void on_ready(void *ctx)
{
	((struct end *)ctx)->ready = 1;
}

static void on_data(void *ctx, int64_t id, const uint8_t *data, size_t len,
                    int fin)
{
	(void)ctx, (void)id, (void)data, (void)len, (void)fin;
}

static void on_closed(void *ctx, const char *reason)
{
	struct end *e = ctx;

	snprintf(e->closed, sizeof(e->closed), "%s", reason ? reason : "closed");
}

static const struct quic_callbacks cbs = {
	.send = on_send,
	.verify_peer = on_verify,
	.on_ready = on_ready,
	.on_stream_data = on_data,
	.on_closed = on_closed,
};

/* An identity of its own for each end, in a scratch folder. */
static void load_identity(struct identity *id, const char *dir)
{
	char err[256];

	setenv("XDG_CONFIG_HOME", dir, 1);
	if (identity_load(id, err, sizeof(err)))
		fail_msg("identity in %s: %s", dir, err);
}

static void end_init(struct net *net, int i, int is_client, int peer,
                     const char *ip, const struct identity *id,
                     const struct sockaddr *remote, uint64_t now)
{
	struct end *e = &net->ends[i];
	char err[256];

	e->net = net;
	e->index = i;
	e->peer = peer;
	e->addr = sa_make(ip, 4000);
	e->q = quic_new(is_client, id, SA(e->addr), remote, NULL, &cbs, e, now, err,
	                sizeof(err));
	if (!e->q)
		fail_msg("quic_new: %s", err);
}

/* Deliver what is queued, then run every end's timers. */
static void net_step(struct net *net, uint64_t now)
{
	struct dgram batch[NET_QUEUE_MAX];
	size_t n = net->n;

	memcpy(batch, net->queue, n * sizeof(batch[0]));
	net->n = 0;
	for (size_t i = 0; i < n; i++) {
		struct end *e = &net->ends[batch[i].to];

		if (e->q)
			quic_on_datagram(e->q, SA(batch[i].from), batch[i].data,
			                 batch[i].len, now);
	}
	for (int i = 0; i < 3; i++)
		if (net->ends[i].q)
			quic_tick(net->ends[i].q, now);
}

static void test_forged_initial_from_third_address(void **state)
{
	static struct net net;
	struct identity ids[3];
	char dirs[3][64];
	uint64_t now = 1000000000ull;
	struct sockaddr_storage client = sa_make("192.0.2.1", 4000),
				server = sa_make("192.0.2.2", 4000);
	int steps;

	(void)state;
	memset(&net, 0, sizeof(net));
	for (int i = 0; i < 3; i++) {
		snprintf(dirs[i], sizeof(dirs[i]), "/tmp/punch-test-quic.XXXXXX");
		if (!mkdtemp(dirs[i]))
			fail_msg("mkdtemp failed");
		load_identity(&ids[i], dirs[i]);
	}
	/* The server expects the client at 192.0.2.1; the third party, at
	 * 198.51.100.9, builds an Initial of its own aimed at the server. */
	end_init(&net, 1, 0, 0, "192.0.2.2", &ids[1], SA(client), now);
	end_init(&net, 2, 1, 1, "198.51.100.9", &ids[2], SA(server), now);
	quic_tick(net.ends[2].q, now);
	assert_true(net.n > 0);
	net_step(&net, now);      /* the forged Initial reaches the server */
	net.ends[2].peer = -1;    /* and the third party says no more */
	end_init(&net, 0, 1, 1, "192.0.2.1", &ids[0], SA(server), now);
	for (steps = 0; steps < STEPS_MAX; steps++) {
		if (net.ends[0].ready && net.ends[1].ready)
			break;
		now += STEP_NS;
		net_step(&net, now);
	}
	if (!net.ends[0].ready || !net.ends[1].ready)
		print_error("expected the handshake done after the forged Initial; "
		            "client ready %d (%s), server ready %d (%s)\n",
		            net.ends[0].ready, net.ends[0].closed,
		            net.ends[1].ready, net.ends[1].closed);
	assert_true(net.ends[0].ready && net.ends[1].ready);
	assert_true(quic_dropped_offpath(net.ends[1].q) >= 1);
	for (int i = 0; i < 3; i++) {
		quic_free(net.ends[i].q);
		identity_free(&ids[i]);
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dirs[i]);
		if (system(cmd))
			print_error("cannot remove %s\n", dirs[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forged_initial_from_third_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
