/*
 * The client's stream connection to its punch server, for networks that
 * drop UDP (beside udp.c): one TCP connection, or TLS over TCP, to the
 * server, carrying STUN (Binding, the rendezvous, TURN) and
 * ChannelData, framed as RFC 8489 6.2.2 and RFC 8656 12.5 say
 * (stream_frame.c, the server's framer too).
 *
 * Each whole message from the server goes to on_message as if it were a
 * datagram; server_conn_send() writes one out, padding ChannelData to 4
 * bytes.  A write the kernel cannot take at once waits in a queue of at
 * most SCONN_WRITE_QUEUE_MAX bytes; beyond that a message is dropped
 * whole, as a full UDP socket would drop it (every sender here
 * retransmits, and QUIC recovers its own losses).
 *
 * Input that is neither STUN nor ChannelData, or a message longer than
 * FRAME_MAX, breaks the stream: the connection closes with a reason, as it
 * does when the server closes it or the connect times out.  Every state
 * change goes through one function and reaches on_state with the old and
 * new state and, on closing, why.
 */
#ifndef PUNCH_SERVER_CONN_H
#define PUNCH_SERVER_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "stream_frame.h"

enum {
	SCONN_CONNECT_MS = 2000,             /* connect, TLS handshake included */
	SCONN_WRITE_QUEUE_MAX = 256 << 10,   /* bytes waiting to be written */
	SCONN_REASON_MAX = 160,
};

enum sconn_state {
	SCONN_IDLE,
	SCONN_CONNECTING,
	SCONN_OPEN,
	SCONN_CLOSED,    /* for good: a new try is a new server_conn */
};

struct server_conn;

typedef void sconn_message_fn(void *ctx, enum frame_kind kind,
                              const uint8_t *msg, size_t len);
/* why: NULL, except on the way to SCONN_CLOSED */
typedef void sconn_state_fn(void *ctx, enum sconn_state old,
                            enum sconn_state now, const char *why);

struct server_conn *server_conn_new(uv_loop_t *loop,
                                    sconn_message_fn *on_message,
                                    sconn_state_fn *on_state, void *ctx);
/* Connect to addr.  0, or a negative libuv error (then closed). */
int server_conn_open(struct server_conn *sc, const struct sockaddr *addr,
                     uint64_t now_ms);
/* The same over TLS: host (a DNS name or an IP address) must be what the
 * server's certificate names, and the certificate must chain to the CA
 * file ca (PEM), or to the system's CAs when ca is NULL (tls_stream.h).
 * Open once the handshake is done, within SCONN_CONNECT_MS. */
int server_conn_open_tls(struct server_conn *sc, const struct sockaddr *addr,
                         const char *host, const char *ca, uint64_t now_ms);
/* One message (STUN or ChannelData, unpadded).  0; -1 when not open or
 * dropped (the queue is full). */
int server_conn_send(struct server_conn *sc, const uint8_t *buf, size_t len);
/* The connect deadline: closes the connection when it has passed.  Returns
 * the next deadline, or UINT64_MAX. */
uint64_t server_conn_tick(struct server_conn *sc, uint64_t now_ms);
enum sconn_state server_conn_state(const struct server_conn *sc);
const char *server_conn_state_str(enum sconn_state s);
/* Close it now (on_state says so, with why); safe inside a callback. */
void server_conn_close(struct server_conn *sc, const char *why);
/* Close (no more callbacks) and free once libuv has closed the socket:
 * run the loop afterwards.  NULL is fine. */
void server_conn_free(struct server_conn *sc);

/* Bytes as if read from the socket (the tests' and the fuzzer's way in; a
 * server_conn never opened takes them as an open one with no socket):
 * messages go to on_message; broken framing closes the connection. */
void server_conn_feed(struct server_conn *sc, const uint8_t *buf, size_t len);

/* Counters, for the client's debug line. */
struct sconn_stats {
	uint64_t rx_msgs, tx_msgs, tx_dropped;
};
const struct sconn_stats *server_conn_stats(const struct server_conn *sc);

#endif
