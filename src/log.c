#include "log.h"

#include <stdarg.h>
#include <stdio.h>

enum log_level log_threshold = LOG_INFO;
static const char *log_tag = "punch";

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

void log_set_tag(const char *tag)
{
	log_tag = tag;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *prefix[] = { "error: ", "warning: ", "", "",
		                        "debug: " };
	va_list ap;

	/* One line at a time, whole, when threads log (punch server
	 * -threads). */
	flockfile(stderr);
	fprintf(stderr, "%s: %s", log_tag, prefix[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}
