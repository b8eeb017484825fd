/*
 * `punch server` over TCP: STUN Binding, the rendezvous and the TURN relay
 * on stream connections, on the same addresses and ports as UDP (RFC 8489 6.2.2,
 * RFC 8656 3.1: a TCP control connection, the relayed address still UDP).
 *
 * Each connection is its own TURN "listen socket": turn_server.c sees it as
 * sock TCP_SOCK_BASE + its index, so an allocation's 5-tuple is the
 * connection, and the allocation is deleted when the connection closes.
 * The framing is stream_frame.c's; this file holds the sockets.
 *
 * The limits, all counted on the stop line ("tcp stopped: ..."):
 *   - at most max_conns connections; one more is accepted and closed;
 *   - FRAME_MAX bytes per message: a longer one, or bytes that are neither
 *     STUN nor ChannelData, close the connection (malformed);
 *   - TCP_IDLE_MS without a message, on a connection without an
 *     allocation, close it (idle);
 *   - a TLS connection (-tls-listen) costs about 22 KB more: its session's
 *     read and write buffers;
 *   - TCP_WRITE_QUEUE_MAX bytes waiting to be written to one client:
 *     beyond, what would be written is dropped (dropped), as a full UDP
 *     socket would drop it, rather than buffered without bound.
 */
#ifndef PUNCH_SERVER_TCP_H
#define PUNCH_SERVER_TCP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "binding.h"
#include "turn_server.h"

enum {
	TCP_CONNS_DEFAULT = 1000,        /* -max-tcp */
	TCP_CONNS_MAX = 100000,
	TCP_IDLE_MS = 30000,
	TCP_SWEEP_MS = 1000,             /* how often idleness is checked */
	TCP_WRITE_QUEUE_MAX = 256 << 10, /* bytes per connection */
	TCP_BACKLOG = 128,
	TCP_SOCK_BASE = 1 << 24,         /* turn_server.h sock of a connection */
	TCP_LISTEN_MAX = 8,              /* SERVER_LISTEN_MAX */
};

struct tcp_stats {
	uint64_t accepted;
	uint64_t over_cap;     /* accepted and closed: max_conns reached */
	uint64_t idle;         /* closed: TCP_IDLE_MS without an allocation */
	uint64_t malformed;    /* closed: broken framing or malformed STUN */
	uint64_t answered;     /* Binding success responses */
	uint64_t ignored;      /* valid, not for TCP (CHANGE-REQUEST, no relay) */
	uint64_t dropped;      /* not written: TCP_WRITE_QUEUE_MAX */
	uint64_t write_failed; /* closed: the write failed */
};

/* The server's side: datagrams from clients for their relayed sockets. */
struct tcp_hooks {
	/* Send o->data[0..o->len) to o->to from allocation o->slot's relayed
	 * socket; o->data stays valid until flush(). */
	void (*to_peer)(void *ctx, const struct turn_out *o);
	void (*flush)(void *ctx);
	/* A response to request req went out on a connection (for the
	 * metrics, as the UDP path counts its own); may be NULL. */
	void (*replied)(void *ctx, const uint8_t *req, size_t req_len,
	                const uint8_t *resp, size_t resp_len, int is_error);
	void *ctx;
};

struct tcp_server;
struct rdv_server;

struct tcp_server *tcp_server_new(uv_loop_t *loop, size_t max_conns,
                                  const struct tcp_hooks *hooks);
/* Listen on addr (a specific port), answering Binding as socket index of
 * svc.  0, or a negative libuv error (UV_EADDRINUSE: the port is taken). */
int tcp_server_listen(struct tcp_server *ts, const struct sockaddr *addr,
                      const struct binding_service *svc, int index);
/* TLS (-tls-listen): load the certificate chain and key (PEM files) once,
 * then listen; the same protocol as on TCP, inside TLS.  0, or -1 with a
 * sentence in why; tcp_server_listen_tls() as tcp_server_listen(). */
int tcp_server_set_tls(struct tcp_server *ts, const char *cert, const char *key,
                       char *why, size_t why_len);
int tcp_server_listen_tls(struct tcp_server *ts, const struct sockaddr *addr,
                          const struct binding_service *svc, int index);
/* The relay, once it runs; NULL: TURN over TCP is not answered. */
void tcp_server_set_turn(struct tcp_server *ts, struct turn_server *turn);
/* The rendezvous, answered over TCP too; NULL: ignored.  Its PEER-INFO
 * requests to a connection's sock go through tcp_server_send_to().  lock
 * (or NULL) is held around every call into it (-threads share it). */
void tcp_server_set_rdv(struct tcp_server *ts, struct rdv_server *rdv,
                        uv_mutex_t *lock);
/* Is this turn_out sock a connection's? */
int tcp_sock_is(int sock);
/* Data from a peer (turn_handle_peer()'s TURN_TO_CLIENT) to connection
 * sock, ChannelData padded (RFC 8656 12.5); dropped under backpressure. */
void tcp_server_send(struct tcp_server *ts, int sock, const uint8_t *data,
                     size_t len);
/* A rendezvous message to connection sock, if that connection is still
 * the one from `to` (a closed connection's sock may be reused). */
void tcp_server_send_to(struct tcp_server *ts, int sock,
                        const struct sockaddr *to, const uint8_t *data,
                        size_t len);
/* Close every connection (deleting their allocations) and the listeners;
 * the caller then runs the loop for the close callbacks, then frees. */
void tcp_server_close(struct tcp_server *ts);
void tcp_server_free(struct tcp_server *ts);
const struct tcp_stats *tcp_server_stats(const struct tcp_server *ts);

#endif
