#include "udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"

/* RFC 8489 5: a STUN message starts with two zero bits, and its 32-bit
 * magic cookie follows the type and length.  (The STUN codec is a layer
 * above; this is all the demultiplexer needs of it.) */
enum {
	STUN_HDR_BYTES = 20,
	STUN_COOKIE = 0x2112A442,
	GRO_CMSG_SPACE = 64,   /* room for the UDP_GRO cmsg (an int) */
};

struct udp_rx {
	struct mmsghdr msgs[UDP_RX_BATCH];
	struct iovec iov[UDP_RX_BATCH];
	struct sockaddr_storage from[UDP_RX_BATCH];
	uint8_t ctrl[UDP_RX_BATCH][GRO_CMSG_SPACE];
	uint8_t buf[UDP_RX_BATCH][UDP_RX_SLOT];
};

enum udp_kind udp_classify(const uint8_t *buf, size_t len)
{
	if (len >= STUN_HDR_BYTES && buf[0] < 4 &&
	    ((uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
	     (uint32_t)buf[6] << 8 | buf[7]) == STUN_COOKIE)
		return UDP_KIND_STUN;
	return UDP_KIND_QUIC;
}

void udp_init(struct udp *u, uv_loop_t *loop, udp_datagram_fn *on_datagram,
              udp_batch_end_fn *on_batch_end, void *ctx)
{
	memset(u, 0, sizeof(*u));
	u->loop = loop;
	u->on_datagram = on_datagram;
	u->on_batch_end = on_batch_end;
	u->ctx = ctx;
	for (int i = 0; i < UDP_SOCKETS; i++) {
		u->s[i].fd = -1;
		u->s[i].owner = u;
	}
}

int udp_is_open(const struct udp *u, int sock)
{
	return sock >= 0 && sock < UDP_SOCKETS && u->s[sock].fd >= 0;
}

uint16_t udp_port(const struct udp *u, int sock)
{
	return udp_is_open(u, sock) ? u->s[sock].port : 0;
}

/* ---- receiving -------------------------------------------------------- */

/* The segment size of a GRO burst, or 0 for a plain datagram. */
static size_t gro_size(const struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)mh); c;
	     c = CMSG_NXTHDR((struct msghdr *)mh, c)) {
		int v;

		if (c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_GRO ||
		    c->cmsg_len < CMSG_LEN(sizeof(v)))
			continue;
		memcpy(&v, CMSG_DATA(c), sizeof(v));
		return v > 0 ? (size_t)v : 0;
	}
	return 0;
}

/* One received datagram, or a GRO burst cut back into its datagrams. */
static void deliver(struct udp *u, int sock, struct mmsghdr *m,
                    const uint8_t *buf)
{
	const struct sockaddr *from = m->msg_hdr.msg_name;
	size_t len = m->msg_len, seg = gro_size(&m->msg_hdr);
	char a[ADDR_STRLEN];

	if (m->msg_hdr.msg_flags & MSG_TRUNC) {
		u->truncated++;
		log_debug("drop a datagram from %s: larger than %d bytes",
		          addr_str(from, a, sizeof(a)), UDP_RX_SLOT);
		return;
	}
	if (!seg || seg > len)
		seg = len;
	for (size_t off = 0; off < len; off += seg) {
		size_t n = len - off < seg ? len - off : seg;

		u->on_datagram(u->ctx, sock, udp_classify(buf + off, n), from,
		               buf + off, n);
	}
}

static int read_batch(struct udp *u, int sock)
{
	struct udp_rx *rx = u->rx;
	int n;

	for (int i = 0; i < UDP_RX_BATCH; i++) {
		rx->iov[i] = (struct iovec){ rx->buf[i], UDP_RX_SLOT };
		rx->msgs[i].msg_hdr = (struct msghdr){
			.msg_name = &rx->from[i],
			.msg_namelen = sizeof(rx->from[i]),
			.msg_iov = &rx->iov[i],
			.msg_iovlen = 1,
			.msg_control = rx->ctrl[i],
			.msg_controllen = sizeof(rx->ctrl[i]),
		};
	}
	do
		n = recvmmsg(u->s[sock].fd, rx->msgs, UDP_RX_BATCH, MSG_DONTWAIT,
		             NULL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_debug("recvmmsg: %s", strerror(errno));
		return 0;
	}
	for (int i = 0; i < n; i++)
		deliver(u, sock, &rx->msgs[i], rx->buf[i]);
	if (n > 0 && u->on_batch_end)
		u->on_batch_end(u->ctx);
	return n;
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	struct udp_sock *s = h->data;
	struct udp *u = s->owner;
	int sock = (int)(s - u->s);

	(void)events;
	if (status < 0)
		return;
	/* Bounded, so that the other socket and the timers get their turn. */
	for (int round = 0; round < UDP_RX_BATCHES_PER_WAKE; round++)
		if (read_batch(u, sock) < UDP_RX_BATCH || s->fd < 0)
			break;
}

/* ---- opening ----------------------------------------------------------- */

/* Big buffers: a burst of a fast link must not overflow the default
 * 208 KiB.  SO_RCVBUFFORCE passes net.core.rmem_max when we may (root,
 * CAP_NET_ADMIN); otherwise the kernel caps what we ask. */
static void size_buffers(int fd)
{
	int want = UDP_BUF_BYTES, rcv = 0, snd = 0;
	socklen_t l = sizeof(rcv);

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
	getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, &l);
	l = sizeof(snd);
	getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, &l);
	/* Linux reports twice what it grants for data (socket(7)). */
	log_debug("udp: socket buffers: receive %d, send %d bytes (asked %d)",
	          rcv, snd, want);
}

static int open_fd(int family, uint16_t *port, int *gso, int *gro)
{
	struct sockaddr_storage any = { 0 }, bound;
	socklen_t len = sizeof(bound);
	int one = 1, fd, err;

	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	any.ss_family = (sa_family_t)family;
	if ((family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&any, addr_len((struct sockaddr *)&any)) ||
	    getsockname(fd, (struct sockaddr *)&bound, &len)) {
		err = -errno;
		close(fd);
		return err;
	}
	*port = addr_port((struct sockaddr *)&bound);
	size_buffers(fd);
	/* A kernel that knows UDP_SEGMENT answers for it. */
	len = sizeof(err);
	*gso = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &err, &len) == 0;
	*gro = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
	return fd;
}

int udp_open(struct udp *u, int sock)
{
	struct udp_sock *s = &u->s[sock];
	int fd, rc;

	if (!u->rx && !(u->rx = calloc(1, sizeof(*u->rx))))
		return -ENOMEM;
	fd = open_fd(sock ? AF_INET6 : AF_INET, &s->port, &s->gso, &s->gro);
	if (fd < 0)
		return fd;
	if ((rc = uv_poll_init_socket(u->loop, &s->poll, fd)) ||
	    (s->poll.data = s, rc = uv_poll_start(&s->poll, UV_READABLE,
	                                          on_readable))) {
		close(fd);
		return rc;
	}
	s->fd = fd;
	log_debug("udp: socket %d on port %u; GSO %s, GRO %s", sock, s->port,
	          s->gso ? "yes" : "no", s->gro ? "yes" : "no");
	return 0;
}

void udp_stop(struct udp *u)
{
	for (int i = 0; i < UDP_SOCKETS; i++)
		if (u->s[i].fd >= 0 && !uv_is_closing((uv_handle_t *)&u->s[i].poll))
			uv_close((uv_handle_t *)&u->s[i].poll, NULL);
}

void udp_free(struct udp *u)
{
	for (int i = 0; i < UDP_SOCKETS; i++) {
		if (u->s[i].fd >= 0)
			close(u->s[i].fd);
		u->s[i].fd = -1;
	}
	free(u->rx);
	u->rx = NULL;
}

/* ---- sending ----------------------------------------------------------- */

static int set_ttl(int fd, int family, int ttl)
{
	return family == AF_INET6 ?
	               setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl)) :
	               setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
}

int udp_send(struct udp *u, int sock, const struct sockaddr *to,
             const uint8_t *buf, size_t len, int ttl)
{
	int fd, rc = 0;

	if (!udp_is_open(u, sock))
		return -EBADF;
	fd = u->s[sock].fd;
	if (ttl)
		set_ttl(fd, to->sa_family, ttl);
	if (sendto(fd, buf, len, 0, to, addr_len(to)) < 0)
		rc = -errno;
	if (ttl)
		set_ttl(fd, to->sa_family, -1); /* -1: the system's default */
	if (rc)
		u->send_failed++;
	return rc;
}

static int send_gso(int fd, const struct sockaddr *to, const uint8_t *buf,
                    size_t len, size_t seg)
{
	union {
		uint8_t b[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = {
		.msg_name = (void *)to,
		.msg_namelen = addr_len(to),
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctrl.b,
		.msg_controllen = sizeof(ctrl.b),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	uint16_t size = (uint16_t)seg;

	memset(&ctrl, 0, sizeof(ctrl));
	c->cmsg_level = SOL_UDP;
	c->cmsg_type = UDP_SEGMENT;
	c->cmsg_len = CMSG_LEN(sizeof(size));
	memcpy(CMSG_DATA(c), &size, sizeof(size));
	return sendmsg(fd, &mh, 0) < 0 ? -errno : 0;
}

static int send_mmsg(int fd, const struct sockaddr *to, const uint8_t *buf,
                     size_t len, size_t seg)
{
	struct mmsghdr m[UDP_SEG_MAX];
	struct iovec iov[UDP_SEG_MAX];
	unsigned n = 0, done = 0;

	for (size_t off = 0; off < len && n < UDP_SEG_MAX; off += seg, n++) {
		iov[n] = (struct iovec){ (void *)(buf + off),
			                 len - off < seg ? len - off : seg };
		m[n].msg_hdr = (struct msghdr){
			.msg_name = (void *)to,
			.msg_namelen = addr_len(to),
			.msg_iov = &iov[n],
			.msg_iovlen = 1,
		};
	}
	while (done < n) {
		int rc = sendmmsg(fd, m + done, n - done, 0);

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return rc < 0 ? -errno : -EAGAIN;
		done += (unsigned)rc;
	}
	return 0;
}

void udp_disable_gso(struct udp *u, int sock)
{
	if (sock >= 0 && sock < UDP_SOCKETS)
		u->s[sock].gso = 0;
}

int udp_send_segments(struct udp *u, int sock, const struct sockaddr *to,
                      const uint8_t *buf, size_t len, size_t seg)
{
	struct udp_sock *s;
	int rc;

	if (!udp_is_open(u, sock))
		return -EBADF;
	if (!seg || len > seg * UDP_SEG_MAX)
		return -EINVAL;
	s = &u->s[sock];
	if (len <= seg)
		return udp_send(u, sock, to, buf, len, 0);
	if (s->gso) {
		rc = send_gso(s->fd, to, buf, len, seg);
		/* EIO: the route's device cannot checksum for GSO; EINVAL or
		 * ENOPROTOOPT: this kernel has no UDP_SEGMENT.  Either way
		 * the next sends use sendmmsg. */
		if (rc == -EIO || rc == -EINVAL || rc == -ENOPROTOOPT) {
			log_debug("udp: GSO send failed (%s); using sendmmsg",
			          strerror(-rc));
			s->gso = 0;
		} else {
			u->gso_sends++;
			if (rc)
				u->send_failed++;
			return rc;
		}
	}
	u->mmsg_sends++;
	rc = send_mmsg(s->fd, to, buf, len, seg);
	if (rc)
		u->send_failed++;
	return rc;
}

/* ---- the early-packet buffer ------------------------------------------- */

int udp_early_push(struct udp_early *e, int sock, const struct sockaddr *from,
                   const uint8_t *buf, size_t len)
{
	if (e->n >= UDP_EARLY_MAX || len > sizeof(e->pkt[0].data))
		return -1;
	memcpy(e->pkt[e->n].data, buf, len);
	e->pkt[e->n].len = len;
	e->pkt[e->n].sock = sock;
	memset(&e->pkt[e->n].from, 0, sizeof(e->pkt[e->n].from));
	memcpy(&e->pkt[e->n].from, from, addr_len(from));
	e->n++;
	return 0;
}

void udp_early_drain(struct udp_early *e, udp_datagram_fn *fn, void *ctx)
{
	/* fn must not push: the consumer exists now. */
	for (int i = 0; i < e->n; i++)
		fn(ctx, e->pkt[i].sock, udp_classify(e->pkt[i].data, e->pkt[i].len),
		   (const struct sockaddr *)&e->pkt[i].from, e->pkt[i].data,
		   e->pkt[i].len);
	e->n = 0;
}
