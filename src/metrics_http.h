/*
 * `punch server -metrics ADDR:PORT`: GET /metrics over HTTP, with
 * libmicrohttpd, on the server's libuv loop.
 *
 * Threads: none of its own.  MHD runs in its "external polling" mode with
 * epoll: its one epoll descriptor is watched by a uv_poll, and MHD_run()
 * is called on the loop's thread when that is readable or when MHD's own
 * timeout (MHD_get_timeout(), a uv_timer) comes.  MHD's sockets are
 * non-blocking in this mode, and the only work done per request is
 * formatting a few kilobytes of text, so the loop is never held up; and
 * since the request handler runs on the loop's thread, it reads the
 * server's counters where they are, without locks or copies.  (The other
 * design, MHD's own thread reading a snapshot the loop publishes, would
 * cost a copy per tick and a lock to serve numbers up to a tick old.)
 */
#ifndef PUNCH_METRICS_HTTP_H
#define PUNCH_METRICS_HTTP_H

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "metrics.h"

enum {
	METRICS_HTTP_CONNECTIONS_MAX = 16, /* at once; scrapers are few */
	METRICS_HTTP_TIMEOUT_S = 10,       /* an idle connection is closed */
};

/* Fill in the snapshot for one scrape, on the loop's thread. */
typedef void metrics_fill_fn(void *ctx, struct metrics_snapshot *s);

struct metrics_http;

/* Listen on addr (port 0: the kernel picks one; metrics_http_addr() says
 * which) and serve GET /metrics with what fill gives.  NULL on failure,
 * with a sentence in err. */
struct metrics_http *metrics_http_start(uv_loop_t *loop,
                                        const struct sockaddr *addr,
                                        metrics_fill_fn *fill, void *ctx,
                                        char *err, size_t err_len);
const struct sockaddr *metrics_http_addr(const struct metrics_http *m);
/* Stop serving and close the loop's handles; the rest is freed from their
 * close callbacks, so the loop must run once more (server_close() does).
 * NULL is fine. */
void metrics_http_close(struct metrics_http *m);

#endif
