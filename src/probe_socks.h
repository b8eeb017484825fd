/*
 * The hard side's extra sockets for birthday probing (probe.h): n UDP
 * sockets on any IPv4 address, each on a port the kernel picks, read
 * through libuv.  Probing sends one check from each; the one that a probe
 * reaches is kept (the agent's AGENT_SOCK_PROBE, carrying the link from
 * then on) and the others close at once.
 *
 * Plain uv_udp_t handles rather than udp.c's batched sockets: they carry a
 * few packets each while probing, and the kept one only the link's.
 */
#ifndef PUNCH_PROBE_SOCKS_H
#define PUNCH_PROBE_SOCKS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

/* A datagram that arrived on socket i. */
typedef void probe_socks_recv_fn(void *ctx, int i, const struct sockaddr *from,
                                 const uint8_t *buf, size_t len);

struct probe_socks {
	uv_udp_t *h;        /* n handles; NULL when none */
	uint8_t *open;      /* open[i]: handle i is open (not closing) */
	unsigned n;
	unsigned closing;   /* handles whose close callback is still due */
	int kept;           /* the socket kept after a hit, or -1 */
	uint64_t send_failed;
	probe_socks_recv_fn *on_recv;
	void *ctx;
	uint8_t buf[65536];
};

void probe_socks_init(struct probe_socks *s, probe_socks_recv_fn *on_recv,
                      void *ctx);
/* Open up to n sockets (fewer if the process runs out of descriptors);
 * returns how many, 0..n, or a negative errno if not even one. */
int probe_socks_open(struct probe_socks *s, uv_loop_t *loop, unsigned n);
int probe_socks_send(struct probe_socks *s, int i, const struct sockaddr *to,
                     const uint8_t *buf, size_t len, int ttl);
uint16_t probe_socks_port(const struct probe_socks *s, int i);
/* Keep socket i, close every other one. */
void probe_socks_keep(struct probe_socks *s, int i);
/* Close them all (the kept one too). */
void probe_socks_close(struct probe_socks *s);
/* After the loop has run the close callbacks: release the memory. */
void probe_socks_free(struct probe_socks *s);

#endif
