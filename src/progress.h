/*
 * A transfer's progress on standard error: on a terminal, one line redrawn
 * in place at most 10 times a second (percent, bytes, MB/s, time left);
 * anywhere, one summary line at the end.  MB is 10^6 bytes.
 */
#ifndef PUNCH_PROGRESS_H
#define PUNCH_PROGRESS_H

#include <stdint.h>
#include <uv.h>

enum {
	PROGRESS_MS = 100,        /* redraw at most this often */
};

struct progress {
	uv_timer_t timer;
	int tty, drawn;
	const char *verb;         /* "sending", "receiving" */
	uint64_t total, done;
	uint64_t t0;              /* uv_hrtime() at the start */
	uint64_t (*poll)(void *ctx); /* bytes done now */
	void *ctx;
};

/* The timer lives on loop; the loop's owner closes it. */
void progress_init(struct progress *p, uv_loop_t *loop, int tty,
                   const char *verb, uint64_t (*poll_fn)(void *), void *ctx);
void progress_start(struct progress *p, uint64_t total);
/* The final bar, then "WHAT: N bytes in S s, R MB/s" and TAIL. */
void progress_end(struct progress *p, const char *what, const char *tail);
/* Stop, and leave the terminal on a fresh line for an error message. */
void progress_abort(struct progress *p);

#endif
