/*
 * The secure link: QUIC v1 (ngtcp2) with TLS 1.3 (GnuTLS) on the punched
 * path.  ngtcp2 stays inside quic.c; the rest of punch sees connections and
 * streams.
 *
 * No sockets and no event loop here: datagrams come in through
 * quic_on_datagram(), go out through the send callback, and quic_tick()
 * runs the timers and returns the next deadline (nanoseconds, monotonic).
 *
 * Both ends present a self-signed certificate made from their identity key;
 * each checks the other's key fingerprint through the verify callback
 * before the handshake can complete.
 */
#ifndef PUNCH_QUIC_H
#define PUNCH_QUIC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "identity.h"

/*
 * Memory against a hostile peer.  What we send is kept until acknowledged:
 * at most QUIC_STREAM_BUF per stream and QUIC_SEND_TOTAL_MAX in all.  What
 * the peer sends is bounded by the credit we give it (RFC 9000 4): credit
 * goes back only as the app consumes data (quic_consume), so at most
 * QUIC_RX_STREAM_WINDOW_MAX per stream and QUIC_RX_WINDOW_MAX in all wait
 * in the app, however slow its output.  The peer may have only the streams
 * struct quic_limits allows open at once (RFC 9000 4.6).
 */
enum {
	QUIC_STREAM_BUF = 1 << 22,           /* send: bytes per stream until acked */
	QUIC_SEND_TOTAL_MAX = 16 << 20,      /* send: bytes until acked, all streams */
	QUIC_RX_STREAM_WINDOW = 4 << 20,     /* receive: first credit per stream */
	QUIC_RX_STREAM_WINDOW_MAX = 8 << 20, /* ngtcp2 grows it up to this */
	QUIC_RX_WINDOW = 16 << 20,           /* receive: first credit, all streams */
	QUIC_RX_WINDOW_MAX = 16 << 20,       /* ngtcp2 grows it up to this */
	QUIC_STREAMS_MAX = 256,              /* ours and the peer's, open at once */
	QUIC_PEER_STREAMS_MAX = 128,         /* the peer's share of them */
	QUIC_IDLE_TIMEOUT_S = 30,
	QUIC_KEEPALIVE_S = 10,               /* a PING when idle this long */
	QUIC_BURST_PKTS = 44,                /* packets per send_segments call: < 64 KiB */
	QUIC_RX_RUN = 64 << 10,              /* receive: bytes gathered per app call */
};

/* How many streams of each kind the peer may have open at once. */
struct quic_limits {
	uint64_t peer_bidi, peer_uni;
};

struct quic_callbacks {
	void (*send)(void *ctx, const struct sockaddr *to, const uint8_t *buf,
	             size_t len);
	/* Optional: len bytes of packets, seg bytes each but the last (which
	 * may be shorter), at most QUIC_BURST_PKTS of them, in one call (UDP
	 * GSO).  Without it, send() gets them one by one. */
	void (*send_segments)(void *ctx, const struct sockaddr *to,
	                      const uint8_t *buf, size_t len, size_t seg);
	/* The peer's key fingerprint: 0 to accept, -1 to refuse. */
	int (*verify_peer)(void *ctx, const uint8_t fp[IDENTITY_FP_LEN]);
	void (*on_ready)(void *ctx);
	/* Data from the peer: the peer gets no credit for it until
	 * quic_consume() says it is consumed.  Consecutive data of one stream
	 * is gathered over the datagrams between two quic_tick() calls, and
	 * comes at the latest in the next quic_tick(). */
	void (*on_stream_data)(void *ctx, int64_t id, const uint8_t *data,
	                       size_t len, int fin);
	/* The stream's buffer has room again after being full. */
	void (*on_writable)(void *ctx, int64_t id);
	void (*on_stream_close)(void *ctx, int64_t id, uint64_t app_error);
	/* The peer abandoned what it was sending on stream id (RESET_STREAM,
	 * RFC 9000 19.4): nothing more will come on it.  Not called when the
	 * reset answers our own quic_stop_sending(). */
	void (*on_stream_reset)(void *ctx, int64_t id, uint64_t app_error);
	/* The peer will not read stream id of ours (STOP_SENDING, RFC 9000
	 * 19.5): what was queued on it is dropped.  Reported as the stream
	 * closes, just before on_stream_close. */
	void (*on_stop_sending)(void *ctx, int64_t id, uint64_t app_error);
	/* The connection is over; reason says why (NULL: a clean close). */
	void (*on_closed)(void *ctx, const char *reason);
};

struct quic;

/* A client connects at once; a server waits for the client's first packet
 * from `remote`.  Until the handshake is done, datagrams from any other
 * address are dropped (quic_dropped_offpath counts them).  Returns NULL with a sentence in err. */
struct quic *quic_new(int is_client, const struct identity *id,
                      const struct sockaddr *local,
                      const struct sockaddr *remote,
                      const struct quic_limits *lim,
                      const struct quic_callbacks *cb, void *ctx,
                      uint64_t now_ns, char *err, size_t errlen);
void quic_free(struct quic *q);

void quic_on_datagram(struct quic *q, const struct sockaddr *from,
                      const uint8_t *buf, size_t len, uint64_t now_ns);
/* Hand gathered stream data to the app, run timers and send what can be
 * sent; returns the next deadline.  Call it after each batch of
 * datagrams (one write pass per batch). */
uint64_t quic_tick(struct quic *q, uint64_t now_ns);

int quic_ready(const struct quic *q);
/* Datagrams dropped before the handshake was done because they came from
 * an address other than the chosen peer's. */
uint64_t quic_dropped_offpath(const struct quic *q);
/* Open a stream, bidirectional or unidirectional (ours to write); -1 if
 * none can be opened now.  on_stream_close reports when it is done: for a
 * unidirectional stream of ours, when the peer has acknowledged all of it
 * and its FIN. */
int64_t quic_open_stream(struct quic *q, int bidi);
/* Is this stream one we opened? */
int quic_stream_is_ours(const struct quic *q, int64_t id);
/* Queue data on a stream; returns the bytes taken (fewer when the stream's
 * buffer or the total is full: wait for on_writable), or -1 if the stream
 * is gone. */
long quic_write(struct quic *q, int64_t id, const void *data, size_t len);
int quic_write_fin(struct quic *q, int64_t id);
/* The app is done with n bytes it was given on stream id (written them
 * out, or dropped them): give the peer as much credit again.  Every byte
 * delivered must be consumed once, even after its stream has closed (id
 * -1 then), or the connection's window shrinks for good. */
void quic_consume(struct quic *q, int64_t id, size_t n);
/* Abandon our sending side of stream id: what is queued is dropped and the
 * peer is told (RESET_STREAM, RFC 9000 3.1).  0, or -1 if the stream is
 * gone or not ours to write. */
int quic_reset_stream(struct quic *q, int64_t id, uint64_t app_error);
/* Ask the peer to stop sending on stream id, and drop what else comes on
 * it (STOP_SENDING, RFC 9000 3.5).  A peer's unidirectional stream is
 * closed at once (on_stream_close runs before this returns).  0, or -1 if
 * the stream is gone or not ours to read. */
int quic_stop_sending(struct quic *q, int64_t id, uint64_t app_error);
/* Bytes queued on the stream and not yet acknowledged by the peer. */
size_t quic_unacked(const struct quic *q, int64_t id);
/* Close the connection with an application error (0: no error). */
/* The application error code of the peer's CONNECTION_CLOSE;
 * QUIC_NO_APP_ERROR if it sent none (or a transport error). */
#define QUIC_NO_APP_ERROR UINT64_MAX
uint64_t quic_peer_app_error(const struct quic *q);

void quic_close(struct quic *q, uint64_t app_error, const char *reason,
                uint64_t now_ns);

/* len bytes of the TLS session's RFC 5705 exporter under label, once the
 * handshake is complete: both ends get the same bytes only if no one is in
 * the middle.  0 or -1. */
int quic_export(struct quic *q, const char *label, uint8_t *out, size_t len);

#endif
