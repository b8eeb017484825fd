/*
 * The secure link's QUIC (src/quic.c), both ends back to back over the
 * fake network of quic_pair.h: the handshake, a refused key, streams under
 * loss, reordering and duplication, flow control, the idle timeout,
 * stream limits, and RESET_STREAM and STOP_SENDING both ways.
 */
#include "unit.h"

#include <stdio.h>

#include "quic_pair.h"

#define MS 1000000ull         /* a millisecond of the fake clock, in ns */
#define S (1000ull * MS)
enum { SEED = 12345 };

#define assert_ok(p) assert_ok_at(p, __FILE__, __LINE__)

/* Neither end closed: print why if one did. */
static void assert_ok_at(const struct qp *p, const char *file, int line)
{
	for (int i = 0; i < 2; i++)
		if (p->e[i].closed) {
			print_error("%s:%d: expected the %s up, saw it closed at "
			            "%llu ms: \"%s\"\n",
			            file, line,
			            i ? "server" : "client",
			            (unsigned long long)(p->e[i].closed_at / MS),
			            p->e[i].reason);
			fail();
		}
}

static void pair_up(struct qp *p, const struct qp_net *net,
                    const struct quic_limits *client_lim,
                    const struct quic_limits *server_lim)
{
	if (qp_init(p, net, client_lim, server_lim))
		fail_msg("quic_pair set-up failed");
	if (!qp_run(p, qp_both_ready, NULL, 10 * S)) {
		print_error("expected both ends up within 10 s; client ready %d "
		            "(\"%s\"), server ready %d (\"%s\")\n",
		            p->e[0].ready, p->e[0].reason, p->e[1].ready,
		            p->e[1].reason);
		fail();
	}
}

/* ---- handshake ------------------------------------------------------------ */

static void test_handshake(void **state)
{
	static struct qp p;

	(void)state;
	pair_up(&p, NULL, NULL, NULL);
	assert_ok(&p);
	assert_int_equal(p.e[QP_CLIENT].verify_calls, 1);
	assert_int_equal(p.e[QP_SERVER].verify_calls, 1);
	assert_true(quic_ready(p.e[QP_CLIENT].q) && quic_ready(p.e[QP_SERVER].q));
	qp_free(&p);
}

/* The two ends are up one way apart (the client's Finished flight, or the
 * server's HANDSHAKE_DONE), not a pacing interval: ngtcp2 0.12 paces from
 * the 333 ms initial RTT until it has a sample, which held the client's
 * Finished about 22 ms after its Initial on any fast path. */
static void test_handshake_no_gap(void **state)
{
	static struct qp p;
	const struct qp_net net = { .delay_ns = 500000 };
	uint64_t c, sv;

	(void)state;
	pair_up(&p, &net, NULL, NULL);
	c = p.e[QP_CLIENT].ready_at;
	sv = p.e[QP_SERVER].ready_at;
	if ((c > sv ? c - sv : sv - c) > 2 * net.delay_ns) {
		print_error("expected the ends up at most %llu us apart; saw the "
		            "server up %lld us after the client\n",
		            (unsigned long long)(2 * net.delay_ns / 1000),
		            ((long long)sv - (long long)c) / 1000);
		fail();
	}
	qp_free(&p);
}

/* A refused key, on either side, ends the link on both, with a reason
 * that says so, and neither side ever reports the link up: a client that
 * took its own Finished for the end of the handshake would start its app
 * and then hear that the server refused it. */
static void key_mismatch(int refuser)
{
	static struct qp p;
	struct qp_end *r, *o;

	if (qp_init(&p, NULL, NULL, NULL))
		fail_msg("quic_pair set-up failed");
	r = &p.e[refuser];
	o = &p.e[!refuser];
	r->pinned = 1;
	memcpy(r->pin, o->id.fp, IDENTITY_FP_LEN);
	r->pin[0] ^= 1;
	if (!qp_run(&p, qp_both_closed, NULL, 30 * S))
		print_error("expected both ends closed; %s closed %d (\"%s\"), "
		            "%s closed %d (\"%s\")\n",
		            refuser ? "server" : "client", r->closed, r->reason,
		            refuser ? "client" : "server", o->closed, o->reason);
	assert_true(r->closed && o->closed);
	assert_int_equal(r->verify_refused, 1);
	if (r->ready || o->ready)
		print_error("expected neither end up; %s (refusing) up %d, %s up %d "
		            "then closed: \"%s\"\n",
		            refuser ? "server" : "client",
		            r->ready, refuser ? "client" : "server", o->ready,
		            o->reason);
	assert_false(r->ready || o->ready);
	assert_str(r->reason, "the peer's key was refused");
	if (!strstr(o->reason, "refused our key")) {
		print_error("expected the refused side told so; saw \"%s\"\n",
		            o->reason);
		fail();
	}
	assert_int_equal(r->closed, 1);
	assert_int_equal(o->closed, 1);
	qp_free(&p);
}

static void test_key_mismatch_client_refuses(void **state)
{
	(void)state;
	key_mismatch(QP_CLIENT);
}

static void test_key_mismatch_server_refuses(void **state)
{
	(void)state;
	key_mismatch(QP_SERVER);
}

/* ---- streams --------------------------------------------------------------- */

struct want_stream {
	int end;
	int64_t id;
	uint64_t bytes;
};

/* The stream has all its bytes, FIN, and is closed at both ends. */
static int stream_done(struct qp *p, void *arg)
{
	const struct want_stream *w = arg;
	struct qp_stream *rx = qp_stream(&p->e[w->end], w->id);
	struct qp_stream *tx = qp_stream(&p->e[!w->end], w->id);

	return rx && tx && rx->rx == w->bytes && rx->fin && rx->closed &&
	       tx->closed;
}

static void assert_stream_intact(struct qp *p, int end, int64_t id,
                                 uint64_t bytes)
{
	struct want_stream w = { end, id, bytes };
	struct qp_stream *s;

	if (!qp_run(p, stream_done, &w, 120 * S)) {
		s = qp_stream(&p->e[end], id);
		print_error("stream %lld: expected %llu bytes, FIN and close at "
		            "both ends; saw %llu bytes, fin %d, closed %d, sender's "
		            "closed %d (sent %llu, lost %llu, reordered %llu, "
		            "duplicated %llu)\n",
		            (long long)id,
		            (unsigned long long)bytes, (unsigned long long)s->rx,
		            s->fin, s->closed, qp_stream(&p->e[!end], id)->closed,
		            (unsigned long long)p->sent,
		            (unsigned long long)p->lost,
		            (unsigned long long)p->reordered,
		            (unsigned long long)p->duplicated);
		fail();
	}
	assert_u64(qp_stream(&p->e[end], id)->bad, 0);
	assert_u64(qp_stream(&p->e[end], id)->close_code, 0);
}

struct want_close {
	int end;
	int64_t id;
};

static int got_bytes(struct qp *p, void *arg)
{
	const struct want_close *w = arg;

	return qp_stream(&p->e[w->end], w->id)->rx >= 100000;
}

static void test_streams_under_loss(void **state)
{
	static struct qp p;
	const struct qp_net net = { .loss_pct = 10, .reorder_pct = 10, .dup_pct = 10, .seed = SEED };
	const struct quic_limits lim = { 2, 4 };
	int64_t up, bidi;
	struct want_close w;

	(void)state;
	pair_up(&p, &net, &lim, &lim);
	up = qp_open(&p.e[QP_CLIENT], 0, 1 << 20, 1);
	bidi = qp_open(&p.e[QP_CLIENT], 1, 256 << 10, 1);
	assert_true(up >= 0 && bidi >= 0);
	/* The server answers on the client's bidirectional stream, once it
	 * has heard of it. */
	w = (struct want_close){ QP_SERVER, bidi };
	assert_true(qp_run(&p, got_bytes, &w, 10 * S));
	qp_send(&p.e[QP_SERVER], bidi, 300 << 10, 1);
	assert_stream_intact(&p, QP_SERVER, up, 1 << 20);
	assert_stream_intact(&p, QP_SERVER, bidi, 256 << 10);
	assert_stream_intact(&p, QP_CLIENT, bidi, 300 << 10);
	assert_ok(&p);
	assert_true(p.lost > 0 && p.reordered > 0 && p.duplicated > 0);
	qp_free(&p);
}

/* ---- flow control ----------------------------------------------------------- */

static int rx_settled(struct qp *p, void *arg)
{
	(void)arg;
	return p->nq == 0 && p->deadline[0] > p->now + 100 * MS &&
	       p->deadline[1] > p->now + 100 * MS;
}

/* With no credit given back, the sender stops at the receiver's window;
 * each quic_consume() lets as much more come, and no more than the
 * window ever waits unconsumed. */
static void test_flow_control(void **state)
{
	static struct qp p;
	struct qp_end *rx = &p.e[QP_SERVER];
	struct qp_stream *s;
	const uint64_t total = 3 * QUIC_RX_STREAM_WINDOW;
	int64_t id;

	(void)state;
	pair_up(&p, NULL, NULL, NULL);
	rx->defer_credit = 1;
	id = qp_open(&p.e[QP_CLIENT], 0, total, 1);
	assert_true(id >= 0);
	qp_run(&p, rx_settled, NULL, 10 * S);
	qp_run(&p, NULL, NULL, 2 * S);   /* and nothing more comes */
	s = qp_stream(rx, id);
	assert_u64(s->rx, QUIC_RX_STREAM_WINDOW);
	assert_false(s->fin);
	assert_ok(&p);

	/* ngtcp2 sends MAX_STREAM_DATA once more than half the window is
	 * consumed. */
	qp_consume(rx, id, QUIC_RX_STREAM_WINDOW / 2 + 1);
	qp_run(&p, NULL, NULL, 2 * S);
	if (s->rx <= QUIC_RX_STREAM_WINDOW ||
	    s->unconsumed > QUIC_RX_STREAM_WINDOW_MAX) {
		print_error("after consuming half the window: expected more than %d bytes, "
		            "at most %d unconsumed; saw %llu, %llu unconsumed\n",
		            QUIC_RX_STREAM_WINDOW, QUIC_RX_STREAM_WINDOW_MAX,
		            (unsigned long long)s->rx,
		            (unsigned long long)s->unconsumed);
		fail();
	}
	/* Now consume as it comes: all of it arrives. */
	for (int i = 0; i < 1000 && !(s->fin && s->rx == total); i++) {
		qp_consume(rx, id, s->unconsumed);
		qp_run(&p, NULL, NULL, 50 * MS);
		assert_true(s->unconsumed <= QUIC_RX_STREAM_WINDOW_MAX);
	}
	assert_u64(s->rx, total);
	assert_true(s->fin);
	assert_u64(s->bad, 0);
	/* The sender's buffer filled, and it was told when it had room. */
	assert_true(qp_stream(&p.e[QP_CLIENT], id)->writable > 0);
	assert_ok(&p);
	qp_free(&p);
}

/* ---- idle timeout -------------------------------------------------------------- */

/* A quiet link stays up (PINGs), and one whose peer goes silent closes
 * QUIC_IDLE_TIMEOUT_S after the last packet from it, give or take one
 * keep-alive interval (RFC 9000 10.1 restarts the timer on the first
 * ack-eliciting packet sent after one is received). */
static void test_idle_timeout(void **state)
{
	static struct qp p;
	uint64_t cut_at;

	(void)state;
	pair_up(&p, NULL, NULL, NULL);
	qp_run(&p, NULL, NULL, 4 * QUIC_IDLE_TIMEOUT_S * S);
	assert_ok(&p);

	p.cut = 1;
	cut_at = p.now;
	qp_run(&p, qp_both_closed, NULL, 4 * QUIC_IDLE_TIMEOUT_S * S);
	for (int i = 0; i < 2; i++) {
		struct qp_end *e = &p.e[i];
		uint64_t after = e->closed_at - cut_at;

		if (!e->closed || !strstr(e->reason, "idle timeout") ||
		    after < (uint64_t)QUIC_IDLE_TIMEOUT_S * S ||
		    after > (uint64_t)(QUIC_IDLE_TIMEOUT_S + QUIC_KEEPALIVE_S) * S) {
			print_error("%s: expected the idle timeout %d to %d s after "
			            "the cut; saw closed %d after %llu ms: \"%s\"\n",
			            i ? "server" : "client", QUIC_IDLE_TIMEOUT_S,
			            QUIC_IDLE_TIMEOUT_S + QUIC_KEEPALIVE_S, e->closed,
			            (unsigned long long)(after / MS), e->reason);
			fail();
		}
	}
	qp_free(&p);
}

/* ---- stream limits ----------------------------------------------------------- */

/* The peer lets us have two unidirectional streams and no bidirectional
 * one: a third is refused with -1 and nothing breaks; when one closes,
 * MAX_STREAMS lets another open (RFC 9000 4.6). */
static void test_stream_limits(void **state)
{
	static struct qp p;
	const struct quic_limits server_lim = { 0, 2 };
	struct qp_end *c = &p.e[QP_CLIENT];
	int64_t a, b, id;

	(void)state;
	pair_up(&p, NULL, NULL, &server_lim);
	a = qp_open(c, 0, 1000, 0);
	b = qp_open(c, 0, 1000, 0);
	assert_true(a >= 0 && b >= 0);
	assert_true(qp_open(c, 0, 1000, 0) < 0);
	assert_true(qp_open(c, 1, 1000, 0) < 0);
	qp_run(&p, NULL, NULL, 1 * S);
	assert_true(qp_open(c, 0, 1000, 0) < 0);
	assert_ok(&p);
	assert_u64(qp_stream(&p.e[QP_SERVER], a)->rx, 1000);

	quic_write_fin(c->q, a);
	assert_stream_intact(&p, QP_SERVER, a, 1000);
	qp_run(&p, NULL, NULL, 100 * MS);
	id = qp_open(c, 0, 1000, 1);
	assert_true(id >= 0);
	assert_true(qp_open(c, 0, 1000, 0) < 0);
	assert_stream_intact(&p, QP_SERVER, id, 1000);
	assert_ok(&p);
	qp_free(&p);
}

/* ---- RESET_STREAM and STOP_SENDING -------------------------------------------- */

static int closed_both(struct qp *p, void *arg)
{
	const struct want_close *w = arg;

	return qp_stream(&p->e[w->end], w->id)->closed &&
	       qp_stream(&p->e[!w->end], w->id)->closed;
}

/* The sender abandons a stream half way: the receiver hears the code,
 * the stream closes at both ends, and the link carries on. */
static void reset_by(int sender)
{
	static struct qp p;
	const struct qp_net net = { .loss_pct = 5, .seed = SEED };
	struct qp_end *tx, *rx;
	int64_t id, next;
	struct want_close w;

	pair_up(&p, &net, NULL, NULL);
	tx = &p.e[sender];
	rx = &p.e[!sender];
	id = qp_open(tx, 0, 64 << 20, 1);
	assert_true(id >= 0);
	w = (struct want_close){ !sender, id };
	assert_true(qp_run(&p, got_bytes, &w, 10 * S));
	assert_int_equal(quic_reset_stream(tx->q, id, 2), 0);
	assert_true(quic_write(tx->q, id, "x", 1) < 0);
	assert_true(quic_reset_stream(tx->q, id, 2) < 0);
	assert_true(qp_run(&p, closed_both, &w, 10 * S));
	assert_int_equal(qp_stream(rx, id)->reset, 1);
	assert_u64(qp_stream(rx, id)->reset_code, 2);
	assert_false(qp_stream(rx, id)->fin);
	assert_u64(qp_stream(rx, id)->bad, 0);
	assert_int_equal(qp_stream(tx, id)->stopped, 0);
	assert_size(quic_unacked(tx->q, id), 0);
	next = qp_open(tx, 0, 1 << 20, 1);
	assert_true(next >= 0);
	assert_stream_intact(&p, !sender, next, 1 << 20);
	assert_ok(&p);
	qp_free(&p);
}

static void test_reset_by_client(void **state)
{
	(void)state;
	reset_by(QP_CLIENT);
}

static void test_reset_by_server(void **state)
{
	(void)state;
	reset_by(QP_SERVER);
}

/* The receiver stops reading a stream that is still sending: the sender
 * hears the code, the stream closes at both ends without a reset reported
 * to the receiver, and the connection's credit is whole again (more than
 * a window's worth goes through afterwards). */
static void stop_by(int receiver)
{
	static struct qp p;
	const struct qp_net net = { .loss_pct = 5, .seed = SEED };
	struct qp_end *tx, *rx;
	int64_t id, next;
	struct want_close w;

	pair_up(&p, &net, NULL, NULL);
	rx = &p.e[receiver];
	tx = &p.e[!receiver];
	id = qp_open(tx, 0, 64 << 20, 1);
	assert_true(id >= 0);
	w = (struct want_close){ receiver, id };
	assert_true(qp_run(&p, got_bytes, &w, 10 * S));
	assert_int_equal(quic_stop_sending(rx->q, id, 3), 0);
	assert_true(quic_stop_sending(rx->q, id, 3) < 0);
	assert_true(quic_stop_sending(tx->q, id, 3) < 0);
	assert_true(qp_run(&p, closed_both, &w, 10 * S));
	assert_int_equal(qp_stream(tx, id)->stopped, 1);
	assert_u64(qp_stream(tx, id)->stop_code, 3);
	assert_int_equal(qp_stream(rx, id)->reset, 0);
	assert_false(qp_stream(rx, id)->fin);
	assert_u64(qp_stream(rx, id)->bad, 0);
	next = qp_open(tx, 0, QUIC_RX_WINDOW + (1 << 20), 1);
	assert_true(next >= 0);
	assert_stream_intact(&p, receiver, next, QUIC_RX_WINDOW + (1 << 20));
	assert_ok(&p);
	qp_free(&p);
}

static void test_stop_sending_by_server(void **state)
{
	(void)state;
	stop_by(QP_SERVER);
}

static void test_stop_sending_by_client(void **state)
{
	(void)state;
	stop_by(QP_CLIENT);
}

/* On a bidirectional stream each side stops or resets on its own: the
 * server resets its side of one stream (the client hears a reset and no
 * STOP_SENDING, and its own side completes), and stops reading the other
 * (the client hears a stop and no reset). */
static void test_bidi_reset_and_stop(void **state)
{
	static struct qp p;
	const struct quic_limits lim = { 2, 4 };
	struct qp_end *c = &p.e[QP_CLIENT], *sv = &p.e[QP_SERVER];
	struct want_close wa, wb;
	int64_t a, b;

	(void)state;
	pair_up(&p, NULL, &lim, &lim);
	a = qp_open(c, 1, 200000, 1);
	b = qp_open(c, 1, 64 << 20, 1);
	assert_true(a >= 0 && b >= 0);
	wa = (struct want_close){ QP_SERVER, a };
	wb = (struct want_close){ QP_SERVER, b };
	assert_true(qp_run(&p, got_bytes, &wa, 10 * S));
	assert_true(qp_run(&p, got_bytes, &wb, 10 * S));
	qp_send(sv, a, 64 << 20, 1);
	qp_send(sv, b, 1000, 1);
	qp_run(&p, NULL, NULL, 10 * MS);
	assert_int_equal(quic_reset_stream(sv->q, a, 5), 0);
	assert_int_equal(quic_stop_sending(sv->q, b, 4), 0);
	assert_true(qp_run(&p, closed_both, &wa, 10 * S));
	assert_true(qp_run(&p, closed_both, &wb, 10 * S));

	assert_int_equal(qp_stream(c, a)->reset, 1);
	assert_u64(qp_stream(c, a)->reset_code, 5);
	assert_int_equal(qp_stream(c, a)->stopped, 0);
	assert_u64(qp_stream(sv, a)->rx, 200000);
	assert_true(qp_stream(sv, a)->fin);

	assert_int_equal(qp_stream(c, b)->stopped, 1);
	assert_u64(qp_stream(c, b)->stop_code, 4);
	assert_int_equal(qp_stream(c, b)->reset, 0);
	assert_u64(qp_stream(c, b)->rx, 1000);
	assert_true(qp_stream(c, b)->fin);
	assert_ok(&p);
	qp_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_handshake_no_gap),
		cmocka_unit_test(test_key_mismatch_client_refuses),
		cmocka_unit_test(test_key_mismatch_server_refuses),
		cmocka_unit_test(test_streams_under_loss),
		cmocka_unit_test(test_flow_control),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_stream_limits),
		cmocka_unit_test(test_reset_by_client),
		cmocka_unit_test(test_reset_by_server),
		cmocka_unit_test(test_stop_sending_by_server),
		cmocka_unit_test(test_stop_sending_by_client),
		cmocka_unit_test(test_bidi_reset_and_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
