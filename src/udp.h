/*
 * The client's UDP sockets (the io layer of DESIGN.md): one per address
 * family, read and written in batches on the raw descriptor that libuv
 * polls, and told apart by what they carry.
 *
 * Receiving: recvmmsg reads up to UDP_RX_BATCH datagrams at a time, and a
 * socket with UDP_GRO (Linux 5.0) may get a whole GSO burst as one
 * datagram, which is cut back into its segments here.  Every datagram goes
 * to on_datagram, classified (udp_classify); after each batch comes one
 * on_batch_end, where the caller does its one write pass, so that a burst
 * of packets costs one tick, not one per packet.
 *
 * Sending: udp_send_segments sends a run of equal-sized packets (the last
 * may be shorter) with one sendmsg and a UDP_SEGMENT cmsg (UDP GSO, Linux
 * 4.18) where the kernel and the route allow it, and with sendmmsg
 * otherwise: a socket whose GSO send fails with EIO, EINVAL or ENOPROTOOPT
 * never tries it again.
 *
 * TTL priming: udp_send's ttl sends one datagram with a small TTL, so that
 * it opens our own NAT's mapping and dies before the peer's NAT (see
 * DESIGN.md, "The lab").
 */
#ifndef PUNCH_UDP_H
#define PUNCH_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

enum {
	UDP_SOCKETS = 2,              /* [0] IPv4, [1] IPv6 */
	UDP_RX_BATCH = 32,            /* datagrams per recvmmsg */
	UDP_RX_BATCHES_PER_WAKE = 8,  /* then back to the loop */
	UDP_RX_SLOT = 65536,          /* bytes per slot: a whole GRO burst */
	UDP_SEG_MAX = 44,             /* segments per GSO send: 44 x 1452 < 64 KiB */
	UDP_BUF_BYTES = 4 << 20,      /* SO_RCVBUF and SO_SNDBUF asked for */
	UDP_EARLY_MAX = 8,            /* datagrams kept by struct udp_early */
	UDP_EARLY_BYTES = 1500,       /* the largest one kept */
};

/* What a datagram carries.  RFC 9443 tells STUN (first byte 0-3) from
 * QUIC (64-255) by the first byte, but a QUIC peer may grease the QUIC
 * bit (RFC 9287; ngtcp2 0.12 always allows it), which puts QUIC's first
 * byte anywhere.  So STUN is what has the magic cookie in place, and
 * everything else is QUIC, which authenticates every packet it accepts. */
enum udp_kind {
	UDP_KIND_STUN,
	UDP_KIND_QUIC,
	/* TURN (RFC 8656): Data indications are STUN and come as
	 * UDP_KIND_STUN from the relay's address.  ChannelData (first byte
	 * 0x40-0x4f) overlaps greased QUIC, so it can only be recognised by
	 * its source: the relay client will mark the relay's address, and
	 * udp_classify's caller will return this kind for datagrams from it
	 * that are not STUN.  Nothing produces it yet. */
	UDP_KIND_TURN_CHANNEL,
};

enum udp_kind udp_classify(const uint8_t *buf, size_t len);

/* One datagram: sock is the index of the socket it came in on. */
typedef void udp_datagram_fn(void *ctx, int sock, enum udp_kind kind,
                             const struct sockaddr *from, const uint8_t *buf,
                             size_t len);
typedef void udp_batch_end_fn(void *ctx);

struct udp_rx;

struct udp_sock {
	uv_poll_t poll;
	int fd;     /* -1: not open */
	uint16_t port;
	int gso;    /* UDP_SEGMENT may be tried */
	int gro;    /* UDP_GRO is on */
	struct udp *owner;
};

struct udp {
	uv_loop_t *loop;
	struct udp_sock s[UDP_SOCKETS];
	udp_datagram_fn *on_datagram;
	udp_batch_end_fn *on_batch_end;
	void *ctx;
	struct udp_rx *rx;        /* receive buffers, shared by the sockets */
	uint64_t truncated;       /* datagrams larger than a slot, dropped */
	uint64_t send_failed;     /* datagrams the kernel refused */
	uint64_t gso_sends, mmsg_sends;
};

void udp_init(struct udp *u, uv_loop_t *loop, udp_datagram_fn *on_datagram,
              udp_batch_end_fn *on_batch_end, void *ctx);
/* Open socket `sock` (0 IPv4, 1 IPv6 only) on any address and a port the
 * kernel picks, and start reading.  0, or a negative errno. */
int udp_open(struct udp *u, int sock);
int udp_is_open(const struct udp *u, int sock);
uint16_t udp_port(const struct udp *u, int sock);
/* Stop reading (the poll handles are closed through the loop) ... */
void udp_stop(struct udp *u);
/* ... and, once the loop has closed them, release the descriptors. */
void udp_free(struct udp *u);

/* One datagram; ttl 0 is the default.  0, or a negative errno. */
int udp_send(struct udp *u, int sock, const struct sockaddr *to,
             const uint8_t *buf, size_t len, int ttl);
/* len bytes of packets seg bytes each (the last may be shorter), at most
 * UDP_SEG_MAX of them: one GSO send, or one sendmmsg.  0, or a negative
 * errno. */
int udp_send_segments(struct udp *u, int sock, const struct sockaddr *to,
                      const uint8_t *buf, size_t len, size_t seg);
/* Never try GSO on this socket again (as after a failed GSO send). */
void udp_disable_gso(struct udp *u, int sock);

/* Datagrams that arrive before their consumer exists (QUIC packets that
 * beat our own nomination), kept in order and replayed once. */
struct udp_early {
	struct {
		uint8_t data[UDP_EARLY_BYTES];
		size_t len;
		int sock;
		struct sockaddr_storage from;
	} pkt[UDP_EARLY_MAX];
	int n;
};

/* Keep one; -1 (and nothing kept) when full or too large. */
int udp_early_push(struct udp_early *e, int sock, const struct sockaddr *from,
                   const uint8_t *buf, size_t len);
/* Hand every kept datagram to fn, oldest first, and forget them. */
void udp_early_drain(struct udp_early *e, udp_datagram_fn *fn, void *ctx);

#endif
