/*
 * punch forward's parsers: see forward_spec.h.  Pure and bounds-checked:
 * the request line comes from the peer.
 */
#include "forward_spec.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int forward_host_ok(const char *host)
{
	return addr_host_ok(host, strnlen(host, FORWARD_HOST_MAX + 1));
}

/* HOST from [h, he), brackets around an IPv6 literal removed: 0 or -1. */
static int host_take(const char *h, const char *he, char out[FORWARD_HOST_MAX + 1])
{
	if (he - h >= 2 && *h == '[' && he[-1] == ']') {
		h++;
		he--;
	}
	if (he < h || (size_t)(he - h) > FORWARD_HOST_MAX)
		return -1;
	memcpy(out, h, (size_t)(he - h));
	out[he - h] = '\0';
	return forward_host_ok(out) ? 0 : -1;
}

int forward_spec_parse(const char *s, struct forward_spec *out, char *why,
                       size_t len)
{
	const char *c1 = strchr(s, ':'), *c2 = strrchr(s, ':');

	memset(out, 0, sizeof(*out));
	if (!c1 || c1 == c2)
		goto bad;
	if (addr_port_parse(s, (size_t)(c1 - s), 1, &out->lport)) {
		snprintf(why, len, "-L '%s': LPORT must be a number 0-65535", s);
		return -1;
	}
	if (addr_port_parse(c2 + 1, strlen(c2 + 1), 0, &out->port)) {
		snprintf(why, len, "-L '%s': PORT must be a number 1-65535", s);
		return -1;
	}
	if (host_take(c1 + 1, c2, out->host) == 0)
		return 0;
bad:
	snprintf(why, len, "-L wants LPORT:HOST:PORT (an IPv6 HOST in brackets), got '%s'", s);
	return -1;
}

int forward_allow_parse(const char *s, struct forward_target *out, char *why,
                        size_t len)
{
	const char *c = strrchr(s, ':');

	memset(out, 0, sizeof(*out));
	if (!c)
		goto bad;
	if (addr_port_parse(c + 1, strlen(c + 1), 0, &out->port)) {
		snprintf(why, len, "-allow '%s': PORT must be a number 1-65535", s);
		return -1;
	}
	/* An IPv6 literal must be in brackets, or its last group would be
	 * taken for the port. */
	if (strchr(s, ':') != c && s[0] != '[')
		goto bad;
	if (host_take(s, c, out->host) == 0)
		return 0;
bad:
	snprintf(why, len, "-allow wants HOST:PORT (an IPv6 HOST in brackets), got '%s'", s);
	return -1;
}

int forward_request_parse(const char *s, size_t n, struct forward_target *out)
{
	const char *sp = memchr(s, ' ', n);

	memset(out, 0, sizeof(*out));
	if (!sp || sp == s || (size_t)(sp - s) > FORWARD_HOST_MAX ||
	    memchr(s, '\0', (size_t)(sp - s)))
		return -1;
	memcpy(out->host, s, (size_t)(sp - s));
	out->host[sp - s] = '\0';
	if (!forward_host_ok(out->host) ||
	    addr_port_parse(sp + 1, n - (size_t)(sp + 1 - s), 0, &out->port))
		return -1;
	return 0;
}

int forward_allowed(const struct forward_target *allow, int n,
                    const struct forward_target *t)
{
	for (int i = 0; i < n; i++)
		if (allow[i].port == t->port && !strcasecmp(allow[i].host, t->host))
			return 1;
	return 0;
}
