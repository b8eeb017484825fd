/*
 * Fuzz harness for punch forward's parsers (src/forward_spec.c): -L specs,
 * -allow targets, and the peer's stream request "HOST PORT", which comes
 * from the network.
 *
 * The first byte picks the parser; the rest is its input.  Whatever parses
 * is written back out and parsed again (c-ares style), and both parses must
 * agree; a parsed request must match itself as an -allow target.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward_spec.h"
#include "fuzz.h"

enum { INPUT_MAX = 1024 };

/* HOST as the command line wants it: an IPv6 literal in brackets. */
static void host_fmt(const char *host, char *out, size_t len)
{
	snprintf(out, len, strchr(host, ':') ? "[%s]" : "%s", host);
}

static void spec_case(const char *s)
{
	struct forward_spec a, b;
	char why[512], h[FORWARD_HOST_MAX + 3], again[FORWARD_HOST_MAX + 20];

	if (forward_spec_parse(s, &a, why, sizeof(why)))
		return;
	if (!forward_host_ok(a.host) || !a.port)
		abort();
	host_fmt(a.host, h, sizeof(h));
	snprintf(again, sizeof(again), "%u:%s:%u", a.lport, h, a.port);
	if (forward_spec_parse(again, &b, why, sizeof(why)) ||
	    memcmp(&a, &b, sizeof(a)))
		abort();
}

static void allow_case(const char *s)
{
	struct forward_target a, b;
	char why[512], h[FORWARD_HOST_MAX + 3], again[FORWARD_HOST_MAX + 20];

	if (forward_allow_parse(s, &a, why, sizeof(why)))
		return;
	if (!forward_host_ok(a.host) || !a.port || !forward_allowed(&a, 1, &a))
		abort();
	host_fmt(a.host, h, sizeof(h));
	snprintf(again, sizeof(again), "%s:%u", h, a.port);
	if (forward_allow_parse(again, &b, why, sizeof(why)) ||
	    memcmp(&a, &b, sizeof(a)))
		abort();
}

/* Not NUL-terminated: the request is n bytes of a header line. */
static void request_case(const uint8_t *data, size_t n)
{
	struct forward_target a, b;
	char again[FORWARD_HOST_MAX + 20];
	char *copy = malloc(n ? n : 1);
	int len;

	if (!copy)
		return;
	memcpy(copy, data, n);
	if (forward_request_parse(copy, n, &a)) {
		free(copy);
		return;
	}
	free(copy);
	if (!forward_host_ok(a.host) || !a.port || !forward_allowed(&a, 1, &a))
		abort();
	len = snprintf(again, sizeof(again), "%s %u", a.host, a.port);
	if (forward_request_parse(again, (size_t)len, &b) ||
	    memcmp(&a, &b, sizeof(a)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[INPUT_MAX + 1];
	size_t n;

	if (!size || size > INPUT_MAX + 1)
		return 0;
	n = size - 1;
	memcpy(s, data + 1, n);
	s[n] = '\0';
	switch (data[0] % 3) {
	case 0:
		spec_case(s);
		break;
	case 1:
		allow_case(s);
		break;
	default:
		request_case(data + 1, n);
		break;
	}
	return 0;
}
