/* What the commands share: the one-sentence usage error. */
#include <stdarg.h>
#include <stdio.h>

#include "cmd.h"

int cmd_bad(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "punch %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'punch %s -help'.\n", cmd);
	return EXIT_USAGE;
}
