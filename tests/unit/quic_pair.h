/*
 * quic_pair: two ends of the secure link (src/quic.c) back to back over a
 * fake network with a fake clock, for unit tests of the upper half, as
 * agent_net.h is for the agent.
 *
 * The network delays every datagram by delay_ns and, from a seeded
 * xorshift generator (so a failing run repeats exactly), loses, reorders
 * (holds a datagram back by up to three more delays, so later ones
 * overtake it) and duplicates a given share of them.  Its queue is
 * bounded; what does not fit is lost, as at a router.  The clock jumps
 * from event to event (the next delivery or the next deadline quic_tick
 * returned), so a 30-second idle timeout costs a few steps.
 *
 * Each end records what the callbacks told it: ready, closed and why,
 * and for each stream the bytes received (checked against the pattern
 * qp_pattern() makes, so megabytes need no copy), FIN, reset, stop and
 * close codes.  A source per stream writes pattern bytes as quic_write
 * takes them, then the FIN.  An end that defers credit leaves
 * quic_consume() to the test; otherwise each byte is consumed as it comes.
 *
 * qp_init_links() puts two links (src/link.c) with an app of the test's
 * own on the same network instead: the link's key check, its handling of
 * stream errors and its close are then under test, and the app's table
 * records what reached it.
 */
#ifndef PUNCH_TEST_QUIC_PAIR_H
#define PUNCH_TEST_QUIC_PAIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "app.h"
#include "identity.h"
#include "link.h"
#include "quic.h"

enum {
	QP_CLIENT = 0,
	QP_SERVER = 1,
	QP_QUEUE_MAX = 4096,        /* datagrams in flight */
	QP_DGRAM_MAX = 1500,
	QP_STREAMS_MAX = 64,        /* streams an end keeps records of */
	QP_REASON_MAX = 256,
	QP_STEPS_MAX = 2000000,     /* the bound on any qp_run() */
};

/* What one end saw of one stream. */
struct qp_stream {
	int64_t id;
	int used;
	/* receive side */
	uint64_t rx;               /* bytes delivered */
	uint64_t bad;              /* of them, not the pattern: corruption */
	uint64_t unconsumed;       /* delivered, not yet given back as credit */
	int fin, reset, closed;
	uint64_t reset_code, close_code;
	/* send side: a source of `total` pattern bytes, then FIN */
	uint64_t total, written;
	int sending, fin_done, stopped;
	uint64_t stop_code;
	int writable;              /* on_writable calls */
};

struct qp;

struct qp_end {
	struct qp *pair;
	int index;
	struct quic *q;            /* the end's QUIC, bare or its link's */
	struct link *l;            /* qp_init_links() only */
	int finished, finish_code; /* the link's finish() */
	struct identity id;
	char dir[64];
	struct sockaddr_storage addr;
	/* verify_peer: accept any key, or only `pin` */
	int pinned;
	uint8_t pin[IDENTITY_FP_LEN];
	int verify_calls, verify_refused;
	int ready;
	uint64_t ready_at;
	int closed;
	uint64_t closed_at;
	char reason[QP_REASON_MAX]; /* "" for a clean close */
	int defer_credit;
	struct qp_stream streams[QP_STREAMS_MAX];
	uint64_t stream_overflow;   /* streams past QP_STREAMS_MAX */
};

struct qp_net {
	unsigned loss_pct, reorder_pct, dup_pct;
	uint64_t delay_ns;         /* one way; 0 means 1 ms */
	uint32_t seed;             /* 0 means 1 */
};

struct qp_dgram {
	uint64_t at;               /* delivery time */
	uint64_t seq;              /* send order, to keep delivery stable */
	int to;
	size_t len;
	uint8_t data[QP_DGRAM_MAX];
};

struct qp {
	struct qp_end e[2];
	struct qp_net net;
	uint32_t rng;
	uint64_t now;
	int cut;     /* the network loses everything */
	struct qp_dgram *queue;    /* QP_QUEUE_MAX, unordered */
	size_t nq;
	uint64_t seq;
	uint64_t deadline[2];      /* what quic_tick last returned */
	/* counters */
	uint64_t sent, lost, reordered, duplicated, overflowed, delivered;
};

/* Two fresh identities in scratch folders, the QUIC server waiting and
 * the client started; limits may be NULL (quic.c's default).  0 or -1. */
int qp_init(struct qp *p, const struct qp_net *net,
            const struct quic_limits *client_lim,
            const struct quic_limits *server_lim);
/* Two links running the apps ops[0] (client) and ops[1] (server), each
 * with the other's key pinned; names "alice" (client) and "bob".  0 or
 * -1. */
int qp_init_links(struct qp *p, const struct qp_net *net,
                  const struct app_ops *ops[2]);
/* Frees both ends and removes their folders. */
void qp_free(struct qp *p);

/* Advance to the next event and handle it: deliver what is due, tick
 * both ends, feed the sources.  Returns 0, or -1 when nothing is left to
 * happen (no datagram in flight and no deadline). */
int qp_step(struct qp *p);
/* Step until done(p, arg) is true or the fake clock has run max_ns more;
 * returns 1 if done became true. */
int qp_run(struct qp *p, int (*done)(struct qp *p, void *arg), void *arg,
           uint64_t max_ns);

int qp_both_ready(struct qp *p, void *arg);
int qp_both_closed(struct qp *p, void *arg);

/* The record of stream id at end e (made if new; NULL if out of room). */
struct qp_stream *qp_stream(struct qp_end *e, int64_t id);
/* Open a stream at end e and give it a source of total bytes (then FIN
 * if fin).  Returns the stream id, or -1 as quic_open_stream does. */
int64_t qp_open(struct qp_end *e, int bidi, uint64_t total, int fin);
/* Give an existing stream (a peer's bidirectional one) a source. */
void qp_send(struct qp_end *e, int64_t id, uint64_t total, int fin);
/* Give n bytes of stream id's credit back (quic_consume). */
void qp_consume(struct qp_end *e, int64_t id, uint64_t n);

/* The byte at offset off of stream id. */
uint8_t qp_pattern(int64_t id, uint64_t off);

#endif
