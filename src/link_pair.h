/*
 * Pairing with a one-time code on the secure link, before the app starts
 * (docs/protocol.md, "Pairing with a code").  Each side opens its first
 * unidirectional stream and writes the header, its CPace share (pake.h),
 * then its confirmation once it has the peer's share, then FIN once the
 * peer's confirmation is right.  The app starts when the peer's FIN (or,
 * after the peer's confirmation, any app data of the peer) arrives: so no
 * app data is ever accepted from a peer that has not proven the code.
 *
 * The channel identifier binds both identity keys as this side sees them,
 * and the session id is a TLS exporter of this very link: a man in the
 * middle runs two TLS sessions with two exporters, so it can only run
 * CPace itself on each side, with one guess of the code each time.
 *
 * A side without a code only watches the peer's first unidirectional
 * stream: if it starts "punch/1 pair ", the peer wants to pair, and this
 * side says that it needs the code too.
 */
#ifndef PUNCH_LINK_PAIR_H
#define PUNCH_LINK_PAIR_H

#include <stdint.h>

#include "identity.h"
#include "pake.h"
#include "quic.h"

enum {
	PAIR_TIMEOUT_MS = 10000,  /* from our share to the app starting */
};

enum pair_state {
	PAIR_STATE_OFF = 0,       /* no code */
	PAIR_STATE_WAIT_LINK,     /* a code; the TLS handshake is not done */
	PAIR_STATE_SHARE,         /* our share is out; the peer's is awaited */
	PAIR_STATE_CONFIRM,       /* our confirmation is out; the peer's is awaited */
	PAIR_STATE_FINISH,        /* the peer proved the code; its FIN is awaited */
	PAIR_STATE_DONE,          /* the app runs */
	PAIR_STATE_FAILED,
};

/* What link_pair_on_data() made of some stream data. */
enum pair_verdict {
	PAIR_PASS = 0,            /* the app's: hand it on */
	PAIR_TAKEN = 1,           /* pairing data, used up */
	PAIR_FAIL = -1,           /* close the link; link_pair_why() says why */
};

struct link_pair {
	enum pair_state state;
	char code[PAKE_CODE_MAX];
	const char *peer_id, *dir;
	int is_client;
	struct pake pake;
	struct pake_rx rx;
	int64_t out;              /* our pairing stream */
	uint64_t deadline_ns;
	uint8_t peer_fp[IDENTITY_FP_LEN];
	size_t peek;              /* no code: bytes of the peer's stream checked */
	char why[320];
};

/* code: the canonical pairing code, or NULL for none.  peer_id and dir
 * (known_peers' folder) must outlive p. */
void link_pair_init(struct link_pair *p, const char *code,
                    const char *peer_id, const char *dir, int is_client);
/* A code was given and the app has not started yet. */
int link_pair_pending(const struct link_pair *p);
/* The handshake is complete: send our share.  0, or PAIR_FAIL. */
int link_pair_start(struct link_pair *p, struct quic *q,
                    const uint8_t own_fp[IDENTITY_FP_LEN],
                    const uint8_t peer_fp[IDENTITY_FP_LEN], uint64_t now_ns);
/* Stream data from the peer, before the app sees it. */
int link_pair_on_data(struct link_pair *p, struct quic *q, int64_t id,
                      const uint8_t *data, size_t len, int fin);
/* Is stream id the pairing's (its events are not the app's)? */
int link_pair_owns(const struct link_pair *p, int64_t id);
/* PAIR_FAIL once the deadline has passed; lowers *next to our deadline. */
int link_pair_tick(struct link_pair *p, uint64_t now_ns, uint64_t *next);
const char *link_pair_why(const struct link_pair *p);
void link_pair_wipe(struct link_pair *p);

#endif
