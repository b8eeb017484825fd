/*
 * The secure link on the chosen path: QUIC set up by quic.c, the peer's
 * key checked against what the user trusts, and an app (app.h) on top.
 *
 * Which key to trust, first match wins:
 *   1. a fingerprint the user pinned with -peer-key;
 *   2. known_peers: the key this peer id had before (trust on first use);
 *      a different key now is refused, naming the file and line;
 *   3. the fingerprint the rendezvous server relayed from the peer's
 *      registration (and, on first use, remembered in known_peers), said
 *      to be unverified.
 * With a pairing code (link_pair.h), the TLS handshake takes the peer's
 * key whatever it is (a -peer-key still has to match), and the code
 * decides before the app starts; a key it proves is pinned in known_peers.
 */
#ifndef PUNCH_LINK_H
#define PUNCH_LINK_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "app.h"
#include "identity.h"

struct link_env {
	uv_loop_t *loop;
	const struct identity *id;
	const char *peer_id;
	const uint8_t *pinned;    /* -peer-key, or NULL */
	const uint8_t *relayed;   /* from PEER-INFO, or NULL */
	const char *code;         /* -code, canonical, or NULL */
	int is_client;            /* the controlling peer is the QUIC client */
	struct sockaddr_storage local, remote;
	/* Send a datagram to the peer on the chosen path. */
	void (*send)(void *ctx, const struct sockaddr *to, const uint8_t *buf,
	             size_t len);
	/* Optional: several packets in one call (quic.h, send_segments). */
	void (*send_segments)(void *ctx, const struct sockaddr *to,
	                      const uint8_t *buf, size_t len, size_t seg);
	void (*finish)(void *ctx, int exit_code);
	void (*kick)(void *ctx);
	void *ctx;
};

struct link;

struct link *link_new(const struct link_env *env, const struct app_ops *app,
                      const struct app_args *args, uint64_t now_ns,
                      char *err, size_t errlen);
void link_free(struct link *l);
void link_on_datagram(struct link *l, const struct sockaddr *from,
                      const uint8_t *buf, size_t len, uint64_t now_ns);
/* Returns the next deadline in nanoseconds (UINT64_MAX: none). */
uint64_t link_tick(struct link *l, uint64_t now_ns);
/* Ctrl-C: let the app wind down, then close. */
void link_interrupt(struct link *l, uint64_t now_ns);
/* Close now with an application error code. */
void link_close(struct link *l, uint64_t app_error, uint64_t now_ns);

#endif
