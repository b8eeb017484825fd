/*
 * One forwarded TCP connection and its bidirectional QUIC stream, for
 * app_forward.c: the request and answer lines (app_forward.h), bytes both
 * ways with back-pressure, ends of input passed on as FIN and TCP shutdown,
 * and the connection's memory, freed once its socket is closed, no libuv
 * request is outstanding, and QUIC has closed its stream (or the link is
 * going away).
 */
#ifndef PUNCH_FORWARD_CONN_H
#define PUNCH_FORWARD_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "app.h"
#include "forward_spec.h"

enum {
	FWD_READ_BYTES = 65536,
	FWD_QUEUE_MAX_BYTES = 16 << 20, /* toward one slow TCP reader */
};

struct fwd_conn;

/* The app's lifecycle (app_forward.c sets it; the connections read it). */
enum fwd_app_state {
	FWD_APP_WAITING,  /* for the peer's hello: not listening yet */
	FWD_APP_RUNNING,  /* listening on every -L, serving the peer */
	FWD_APP_CLOSING,  /* the link is going away */
};

/* What the connections share with the app. */
struct fwd_ctx {
	struct app_env env;
	struct fwd_conn *conns;   /* every connection not yet freed */
	unsigned serial;          /* numbers connections in messages */
	struct forward_target allow[FORWARD_ALLOW_MAX]; /* -allow */
	int n_allow;
	enum fwd_app_state state;
	uint8_t rbuf[FWD_READ_BYTES]; /* TCP reads, consumed at once */
};

/* Accept a connection on server and carry it to the peer's HOST:PORT on a
 * stream of its own. */
void fwd_conn_accept(struct fwd_ctx *x, uv_stream_t *server,
                     const char *host, uint16_t port, uint16_t lport);
/* Stream events for bidirectional stream id: a stream the peer opened
 * starts a connection to what its first line asks for. */
void fwd_conn_data(struct fwd_ctx *x, int64_t id, const uint8_t *data,
                   size_t len, int fin);
void fwd_conn_writable(struct fwd_ctx *x, int64_t id);
void fwd_conn_stream_close(struct fwd_ctx *x, int64_t id, uint64_t err);
unsigned fwd_conn_count(const struct fwd_ctx *x);
/* Once the loop has closed every handle and run every callback. */
void fwd_conn_free_all(struct fwd_ctx *x);

#endif
