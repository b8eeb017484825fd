/*
 * GET /metrics with libmicrohttpd on the libuv loop (metrics_http.h says
 * why in external polling mode rather than in a thread of its own).
 */
#include "metrics_http.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "log.h"

struct metrics_http {
	struct MHD_Daemon *mhd;
	uv_poll_t poll;          /* MHD's epoll descriptor */
	uv_timer_t timer;        /* MHD_get_timeout() */
	int open_handles;        /* closed handles free the rest */
	struct sockaddr_storage bound;
	metrics_fill_fn *fill;
	void *ctx;
};

static const char not_found[] = "only /metrics is here\n";
static const char not_allowed[] = "only GET and HEAD\n";
/* Prometheus's text format, version 0.0.4 */
static const char content_type[] = "text/plain; version=0.0.4; charset=utf-8";

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
                             struct MHD_Response *r)
{
	enum MHD_Result rc;

	if (!r)
		return MHD_NO; /* out of memory: MHD closes the connection */
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        status == MHD_HTTP_OK ? content_type :
	                                                "text/plain");
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static struct MHD_Response *static_text(const char *text)
{
	return MHD_create_response_from_buffer(strlen(text), (void *)text,
	                                       MHD_RESPMEM_PERSISTENT);
}

/* MHD's access handler, on the loop's thread.  A request with a body
 * (POST) is answered at the first call, before its body is read; MHD then
 * closes the connection. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_len, void **req_ctx)
{
	struct metrics_http *m = cls;
	struct metrics_snapshot s;
	size_t len;
	char *body;

	(void)version;
	(void)upload;
	(void)upload_len;
	(void)req_ctx;
	if (strcmp(method, MHD_HTTP_METHOD_GET) &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		             static_text(not_allowed));
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, static_text(not_found));
	memset(&s, 0, sizeof(s));
	m->fill(m->ctx, &s);
	body = metrics_format(&s, &len);
	if (!body)
		return MHD_NO;
	return reply(c, MHD_HTTP_OK,
	             MHD_create_response_from_buffer(len, body,
	                                             MHD_RESPMEM_MUST_FREE));
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* MHD's messages (a client that went away, say) are for -v only. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];

	(void)cls;
	if (LOG_DEBUG > log_threshold)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("metrics: %s", line);
}

static void on_timer(uv_timer_t *t);

/* Let MHD do what is ready, then wake it when its timeout says (a
 * timeout of 0: data MHD has read but not handled yet). */
static void mhd_drive(struct metrics_http *m)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(m->mhd);
	if (MHD_get_timeout(m->mhd, &ms) == MHD_YES)
		uv_timer_start(&m->timer, on_timer, ms, 0);
	else
		uv_timer_stop(&m->timer);
}

static void on_timer(uv_timer_t *t)
{
	mhd_drive(t->data);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	(void)status;
	(void)events;
	mhd_drive(h->data);
}

struct metrics_http *metrics_http_start(uv_loop_t *loop,
                                        const struct sockaddr *addr,
                                        metrics_fill_fn *fill, void *ctx,
                                        char *err, size_t err_len)
{
	struct metrics_http *m = calloc(1, sizeof(*m));
	const union MHD_DaemonInfo *info;
	socklen_t len = sizeof(struct sockaddr_storage);
	char a[ADDR_STRLEN];
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

	if (!m) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	if (addr->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->fill = fill;
	m->ctx = ctx;
	/* No MHD_USE_INTERNAL_POLLING_THREAD: external polling, below. */
	m->mhd = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, m,
		MHD_OPTION_SOCK_ADDR, addr,
		MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)METRICS_HTTP_CONNECTIONS_MAX,
		MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)METRICS_HTTP_TIMEOUT_S,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_END);
	info = m->mhd ? MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD) :
	                NULL;
	if (!info) {
		snprintf(err, err_len,
		         "cannot serve metrics on %s (address in use, or not this host's?)",
		         addr_str(addr, a, sizeof(a)));
		if (m->mhd)
			MHD_stop_daemon(m->mhd);
		free(m);
		return NULL;
	}
	/* The bound address, for the start line (port 0 picks one). */
	if (getsockname(MHD_get_daemon_info(m->mhd,
	                                    MHD_DAEMON_INFO_LISTEN_FD)
	                        ->listen_fd,
	                (struct sockaddr *)&m->bound, &len))
		memcpy(&m->bound, addr, addr_len(addr));
	uv_poll_init(loop, &m->poll, info->epoll_fd);
	uv_timer_init(loop, &m->timer);
	m->poll.data = m->timer.data = m;
	m->open_handles = 2;
	uv_poll_start(&m->poll, UV_READABLE, on_readable);
	return m;
}

const struct sockaddr *metrics_http_addr(const struct metrics_http *m)
{
	return (const struct sockaddr *)&m->bound;
}

static void on_closed(uv_handle_t *h)
{
	struct metrics_http *m = h->data;

	if (--m->open_handles)
		return;
	/* Both handles are off the loop: MHD may close its descriptors. */
	MHD_stop_daemon(m->mhd);
	free(m);
}

void metrics_http_close(struct metrics_http *m)
{
	if (!m)
		return;
	uv_close((uv_handle_t *)&m->poll, on_closed);
	uv_close((uv_handle_t *)&m->timer, on_closed);
}
