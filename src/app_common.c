/* What the apps share: writing a stream's first line, and input on the
 * loop.  (The parsers are in app_parse.c.) */
#include "app.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char magic[] = "punch/1 ";

int app_header_write(struct quic *q, int64_t id, const char *name,
                     const char *rest)
{
	char line[APP_HEADER_MAX];
	int n = snprintf(line, sizeof(line), "%s%s%s%s\n", magic, name,
	                 rest && *rest ? " " : "", rest ? rest : "");

	if (n <= 0 || (size_t)n >= sizeof(line))
		return -1;
	return quic_write(q, id, line, (size_t)n) == n ? n : -1;
}

/* ---- input ---------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct app_input *in = h->data;

	(void)suggested;
	*buf = uv_buf_init((char *)in->buf, sizeof(in->buf));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct app_input *in = s->data;

	(void)buf;
	if (n == 0)
		return;
	if (n < 0) {
		in->eof = 1;
		app_input_pause(in);
		in->on_data(in->ctx, NULL, 0);
		return;
	}
	in->on_data(in->ctx, in->buf, (size_t)n);
}

enum {
	/* chunks read from a file per loop turn (2 MiB): as libuv reads a
	 * pipe, up to 32 reads per readiness */
	APP_INPUT_FILE_READS = 32,
};

/* A regular file never blocks: read chunks while the app wants more, up to
 * APP_INPUT_FILE_READS per loop turn.  One chunk per turn kept the loop
 * spinning (the idle handle polls without waiting) while the stream's
 * buffer never filled: the process then ran only when the scheduler gave
 * it a turn, and acknowledgements waited for it (the sender's srtt was
 * 6-13 ms, pipe's 1-3.5 ms).  Filling the buffer at once lets the app
 * pause reading, and the loop sleep until acks (bench/README.md). */
static void idle_cb(uv_idle_t *h)
{
	struct app_input *in = h->data;

	for (int i = 0; i < APP_INPUT_FILE_READS && in->reading; i++) {
		ssize_t n = read(in->fd, in->buf, sizeof(in->buf));

		if (n < 0 && errno == EINTR)
			return;
		if (n <= 0) {
			in->eof = 1;
			app_input_pause(in);
			in->on_data(in->ctx, NULL, 0);
			return;
		}
		in->on_data(in->ctx, in->buf, (size_t)n);
	}
}

int app_input_open(struct app_input *in, uv_loop_t *loop, int fd,
                   void (*on_data)(void *, const uint8_t *, size_t),
                   void *ctx)
{
	struct stat st;
	int rc;

	memset(in, 0, sizeof(*in));
	in->fd = fd;
	in->on_data = on_data;
	in->ctx = ctx;
	if (fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISCHR(st.st_mode)) &&
	    uv_guess_handle(fd) != UV_TTY) {
		in->kind = 1; /* files and /dev/null */
		rc = uv_idle_init(loop, &in->h.idle);
	} else if (uv_guess_handle(fd) == UV_TTY) {
		rc = uv_tty_init(loop, &in->h.tty, fd, 1);
	} else if ((rc = uv_pipe_init(loop, &in->h.pipe, 0)) == 0) {
		rc = uv_pipe_open(&in->h.pipe, fd);
	}
	if (rc)
		return rc;
	in->h.pipe.data = in;
	in->open = 1;
	app_input_resume(in);
	return 0;
}

void app_input_pause(struct app_input *in)
{
	if (!in->open || !in->reading)
		return;
	in->reading = 0;
	if (in->kind == 1)
		uv_idle_stop(&in->h.idle);
	else
		uv_read_stop((uv_stream_t *)&in->h.pipe);
}

void app_input_resume(struct app_input *in)
{
	if (!in->open || in->reading || in->eof)
		return;
	in->reading = 1;
	if (in->kind == 1)
		uv_idle_start(&in->h.idle, idle_cb);
	else if (uv_read_start((uv_stream_t *)&in->h.pipe, alloc_cb, read_cb))
		in->reading = 0;
}

void app_input_close(struct app_input *in)
{
	if (!in->open)
		return;
	app_input_pause(in);
	in->open = 0;
	if (!uv_is_closing((uv_handle_t *)&in->h.pipe))
		uv_close((uv_handle_t *)&in->h.pipe, NULL);
}
