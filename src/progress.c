/* Progress of a transfer on standard error: see progress.h. */
#include "progress.h"

#include <stdio.h>
#include <string.h>

static void human(char *out, size_t len, double bytes)
{
	if (bytes >= 1e9)
		snprintf(out, len, "%.2f GB", bytes / 1e9);
	else if (bytes >= 1e6)
		snprintf(out, len, "%.1f MB", bytes / 1e6);
	else if (bytes >= 1e3)
		snprintf(out, len, "%.1f kB", bytes / 1e3);
	else
		snprintf(out, len, "%.0f B", bytes);
}

static double elapsed_s(const struct progress *p)
{
	double s = (double)(uv_hrtime() - p->t0) / 1e9;

	return s > 1e-6 ? s : 1e-6;
}

static void progress_draw(struct progress *p)
{
	char done[32], total[32], eta[32] = "0:00";
	double s = elapsed_s(p), rate = (double)p->done / s;
	int pct = p->total ? (int)(p->done * 100 / p->total) : 100;

	if (p->done < p->total && rate <= 0) {
		snprintf(eta, sizeof(eta), "--:--");
	} else if (p->done < p->total) {
		unsigned long left = (unsigned long)((double)(p->total - p->done) / rate);

		snprintf(eta, sizeof(eta), "%lu:%02lu", left / 60, left % 60);
	}
	human(done, sizeof(done), (double)p->done);
	human(total, sizeof(total), (double)p->total);
	/* \r and "erase to end of line": one line, redrawn in place */
	fprintf(stderr, "\r%s %3d%% %s / %s  %.1f MB/s  ETA %s\033[K", p->verb,
	        pct, done, total, rate / 1e6, eta);
	fflush(stderr);
	p->drawn = 1;
}

static void on_progress(uv_timer_t *t)
{
	struct progress *p = t->data;

	p->done = p->poll(p->ctx);
	progress_draw(p);
}

void progress_init(struct progress *p, uv_loop_t *loop, int tty,
                   const char *verb, uint64_t (*poll_fn)(void *), void *ctx)
{
	memset(p, 0, sizeof(*p));
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	p->tty = tty;
	p->verb = verb;
	p->poll = poll_fn;
	p->ctx = ctx;
}

void progress_start(struct progress *p, uint64_t total)
{
	p->total = total;
	p->t0 = uv_hrtime();
	if (p->tty)
		uv_timer_start(&p->timer, on_progress, PROGRESS_MS, PROGRESS_MS);
}

/* The last bar (at its final value), then the one summary line that a
 * non-terminal gets too. */
void progress_end(struct progress *p, const char *what, const char *tail)
{
	double s = elapsed_s(p);

	uv_timer_stop(&p->timer);
	if (p->tty) {
		p->done = p->poll(p->ctx);
		progress_draw(p);
		fputc('\n', stderr);
	}
	fprintf(stderr, "%s: %llu bytes in %.2f s, %.2f MB/s%s\n", what,
	        (unsigned long long)p->total, s, (double)p->total / s / 1e6, tail);
}

/* Leave the terminal on a fresh line before an error message. */
void progress_abort(struct progress *p)
{
	uv_timer_stop(&p->timer);
	if (p->drawn)
		fputc('\n', stderr);
	p->drawn = 0;
}
