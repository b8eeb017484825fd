#include "probe_socks.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void probe_socks_init(struct probe_socks *s, probe_socks_recv_fn *on_recv,
                      void *ctx)
{
	memset(s, 0, sizeof(*s));
	s->kept = -1;
	s->on_recv = on_recv;
	s->ctx = ctx;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct probe_socks *s = h->data;

	(void)suggested;
	/* libuv reads into it and calls on_read at once: one will do */
	*buf = uv_buf_init((char *)s->buf, sizeof(s->buf));
}

static void on_read(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *from, unsigned flags)
{
	struct probe_socks *s = h->data;

	if (nread <= 0 || !from || (flags & UV_UDP_PARTIAL))
		return;
	s->on_recv(s->ctx, (int)(h - s->h), from, (const uint8_t *)buf->base,
	           (size_t)nread);
}

static void on_closed(uv_handle_t *h);

static int open_one(struct probe_socks *s, uv_loop_t *loop, unsigned i)
{
	struct sockaddr_in any = { .sin_family = AF_INET };
	int rc;

	if ((rc = uv_udp_init(loop, &s->h[i])))
		return rc;
	s->h[i].data = s;
	if ((rc = uv_udp_bind(&s->h[i], (const struct sockaddr *)&any, 0)) ||
	    (rc = uv_udp_recv_start(&s->h[i], on_alloc, on_read))) {
		s->closing++;
		uv_close((uv_handle_t *)&s->h[i], on_closed);
		return rc;
	}
	s->open[i] = 1;
	return 0;
}

int probe_socks_open(struct probe_socks *s, uv_loop_t *loop, unsigned n)
{
	unsigned i;
	int rc = 0;

	if (s->h || !n)
		return -EINVAL;
	s->h = calloc(n, sizeof(*s->h));
	s->open = calloc(n, 1);
	if (!s->h || !s->open) {
		free(s->h);
		free(s->open);
		s->h = NULL;
		s->open = NULL;
		return -ENOMEM;
	}
	s->n = n;
	for (i = 0; i < n; i++)
		if ((rc = open_one(s, loop, i)))
			break;
	if (rc)
		log_debug("probe: opened %u of %u sockets: %s", i, n,
		          uv_strerror(rc));
	/* the handles past the failure were never initialised */
	s->n = i + (rc ? 1 : 0);
	return i ? (int)i : rc;
}

int probe_socks_send(struct probe_socks *s, int i, const struct sockaddr *to,
                     const uint8_t *buf, size_t len, int ttl)
{
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
	uv_os_fd_t fd;
	int rc, def = -1;

	if (i < 0 || (unsigned)i >= s->n || !s->open[i])
		return -EBADF;
	if (ttl && !uv_fileno((uv_handle_t *)&s->h[i], &fd))
		setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
	rc = uv_udp_try_send(&s->h[i], &b, 1, to);
	if (ttl && !uv_fileno((uv_handle_t *)&s->h[i], &fd))
		setsockopt(fd, IPPROTO_IP, IP_TTL, &def, sizeof(def));
	if (rc < 0)
		s->send_failed++;
	return rc < 0 ? rc : 0;
}

uint16_t probe_socks_port(const struct probe_socks *s, int i)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (i < 0 || (unsigned)i >= s->n || !s->open[i] ||
	    uv_udp_getsockname(&s->h[i], (struct sockaddr *)&ss, &len))
		return 0;
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void on_closed(uv_handle_t *h)
{
	struct probe_socks *s = h->data;

	s->closing--;
}

static void close_one(struct probe_socks *s, unsigned i)
{
	if (!s->open[i])
		return;
	s->open[i] = 0;
	if (uv_is_closing((uv_handle_t *)&s->h[i]))
		return;
	s->closing++;
	uv_close((uv_handle_t *)&s->h[i], on_closed);
}

void probe_socks_keep(struct probe_socks *s, int i)
{
	for (unsigned k = 0; k < s->n; k++)
		if ((int)k != i)
			close_one(s, k);
	s->kept = i;
}

void probe_socks_close(struct probe_socks *s)
{
	for (unsigned k = 0; k < s->n; k++)
		close_one(s, k);
	s->kept = -1;
}

void probe_socks_free(struct probe_socks *s)
{
	free(s->h);
	free(s->open);
	s->h = NULL;
	s->open = NULL;
	s->n = 0;
}
